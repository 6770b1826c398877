//! How compose YAML becomes typed values: a struct macro that knows compose's rules for keys
//! (extension `x-` keys are skipped, unknown keys are errors that suggest the key meant), and
//! the "this or that" shapes compose allows (a string or a list, a list or a map).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::located::Located;

/// Declares a compose object: a struct whose fields are read from the YAML keys named on the
/// left. Every field is optional. Keys starting with `x-` are extensions and are skipped;
/// keys docker CLI rejects outright get docker's explanation; any other key is an error.
/// Fields after `;` are not read from YAML.
macro_rules! compose_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident ($what:literal) {
            $( $(#[$fmeta:meta])* $key:literal => $field:ident : $ty:ty, )*
            $( ; $( $(#[$xmeta:meta])* $xfield:ident : $xty:ty, )* )?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: $ty, )*
            $( $( $(#[$xmeta])* pub $xfield: $xty, )* )?
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;
                impl<'de> serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        write!(f, "a mapping ({})", $what)
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        const KEYS: &[&str] = &[$($key),*];
                        let mut object = $name::default();
                        let known = $crate::de::KnownKey { keys: KEYS, what: $what };
                        while let Some(key) = map.next_key_seed(known)? {
                            match key.as_str() {
                                $( $key => object.$field = map.next_value()?, )*
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(object)
                    }
                }
                deserializer.deserialize_map(ObjectVisitor)
            }
        }
    };
}

/// Declares an enum spelled as one of a few strings in YAML and in the Engine API.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) { $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $( $(#[$vmeta])* $variant, )* }

        impl $name {
            /// The spelling in compose files and in the Engine API.
            pub const fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                match text.as_str() {
                    $( $text => Ok($name::$variant), )*
                    other => Err(serde::de::Error::custom(format!(
                        "invalid {} {:?}: expected {}",
                        $what,
                        other,
                        $crate::de::one_of(&[$($text),*]),
                    ))),
                }
            }
        }
    };
}

/// Keys the docker CLI refuses in a stack file, with its reasons.
const FORBIDDEN_KEYS: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    ("volume_driver", "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there."),
    ("volumes_from", "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option."),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    ("memswap_limit", "Set resource limits using deploy.resources"),
];

/// Reads a key of a compose object and refuses it, right where it is written, unless it is
/// one of `keys` or an extension (`x-…`, which the object then skips).
#[derive(Clone, Copy)]
pub(crate) struct KnownKey {
    pub keys: &'static [&'static str],
    pub what: &'static str,
}

impl<'de> de::DeserializeSeed<'de> for KnownKey {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        let key = String::deserialize(deserializer)?;
        if self.keys.contains(&key.as_str()) || key.starts_with("x-") {
            return Ok(key);
        }
        if let Some((_, reason)) = FORBIDDEN_KEYS.iter().find(|(k, _)| *k == key) {
            return Err(de::Error::custom(format!(
                "`{key}` is not allowed in a stack file: {reason}"
            )));
        }
        Err(de::Error::custom(unknown_key_message(
            &key, self.what, self.keys,
        )))
    }
}

fn unknown_key_message(key: &str, what: &str, keys: &[&str]) -> String {
    let closest = keys
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .filter(|(distance, k)| *distance <= 2.max(k.len() / 3))
        .min();
    match closest {
        Some((_, suggestion)) => {
            format!("unknown key `{key}` in {what}: did you mean `{suggestion}`?")
        }
        None if keys.len() <= 12 => {
            format!("unknown key `{key}` in {what}: expected {}", one_of(keys))
        }
        None => format!("unknown key `{key}` in {what}"),
    }
}

/// `a`, `a or b`, `one of a, b, c`, with each value quoted.
pub(crate) fn one_of(values: &[&str]) -> String {
    match values {
        [] => "nothing".to_string(),
        [one] => format!("`{one}`"),
        [a, b] => format!("`{a}` or `{b}`"),
        many => format!(
            "one of {}",
            many.iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != *cb))
                .min(above + 1)
                .min(row[j] + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

/// A string or a list of strings (`env_file`, `dns`): always a list.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = StringList;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<StringList, E> {
                Ok(StringList(vec![value.to_string()]))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(StringList(items))
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

/// `command` and `entrypoint`: a list of arguments, or a string split into arguments the way
/// a POSIX shell would (the docker CLI uses go-shellwords for this).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ShellCommand(pub Vec<String>);

impl<'de> Deserialize<'de> for ShellCommand {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CommandVisitor;
        impl<'de> Visitor<'de> for CommandVisitor {
            type Value = ShellCommand;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a command string or a list of arguments")
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<ShellCommand, E> {
                split_shell_words(value)
                    .map(ShellCommand)
                    .map_err(E::custom)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ShellCommand, A::Error> {
                let mut args = Vec::new();
                while let Some(arg) = seq.next_element::<String>()? {
                    args.push(arg);
                }
                Ok(ShellCommand(args))
            }
        }
        deserializer.deserialize_any(CommandVisitor)
    }
}

/// Splits a command line into words: whitespace separates, single quotes keep everything,
/// double quotes keep all but `\"`, `\\` and `\$`, and a backslash outside quotes escapes
/// the next character.
pub fn split_shell_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => {
                            return Err(format!("unterminated single quote in command {line:?}"))
                        }
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => {
                                return Err(format!(
                                    "unterminated double quote in command {line:?}"
                                ))
                            }
                        },
                        Some(c) => word.push(c),
                        None => {
                            return Err(format!("unterminated double quote in command {line:?}"))
                        }
                    }
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// A list of `KEY=VALUE` strings or a map, as `environment` takes it: a key without `=` (or
/// with a null value in a map) has no value, which the loader may fill in from the
/// environment.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct MappingWithEquals(pub BTreeMap<String, Option<String>>);

/// Labels, sysctls and the like: a list of `KEY=VALUE` strings or a map; a missing value is
/// the empty string.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Mapping(pub BTreeMap<String, String>);

/// `extra_hosts`: a list of `HOST:IP` strings or a map of host to IP, kept as `HOST:IP`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct HostsList(pub Vec<String>);

/// Reads a list of `KEY<sep>VALUE` strings or a map into pairs; `None` is a missing value.
fn key_values<'de, D: Deserializer<'de>>(
    deserializer: D,
    separator: char,
    expecting: &'static str,
) -> Result<Vec<(String, Option<String>)>, D::Error> {
    struct PairsVisitor(char, &'static str);
    impl<'de> Visitor<'de> for PairsVisitor {
        type Value = Vec<(String, Option<String>)>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.1)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                match item.split_once(self.0) {
                    Some((key, value)) => pairs.push((key.to_string(), Some(value.to_string()))),
                    None => pairs.push((item, None)),
                }
            }
            Ok(pairs)
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut pairs = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                pairs.push((key, map.next_value::<Option<String>>()?));
            }
            Ok(pairs)
        }
    }
    deserializer.deserialize_any(PairsVisitor(separator, expecting))
}

impl<'de> Deserialize<'de> for MappingWithEquals {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = key_values(
            deserializer,
            '=',
            "a list of KEY=VALUE strings or a mapping",
        )?;
        Ok(MappingWithEquals(pairs.into_iter().collect()))
    }
}

impl<'de> Deserialize<'de> for Mapping {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let pairs = key_values(
            deserializer,
            '=',
            "a list of KEY=VALUE strings or a mapping",
        )?;
        Ok(Mapping(
            pairs
                .into_iter()
                .map(|(key, value)| (key, value.unwrap_or_default()))
                .collect(),
        ))
    }
}

impl<'de> Deserialize<'de> for HostsList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HostsVisitor;
        impl<'de> Visitor<'de> for HostsVisitor {
            type Value = HostsList;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of HOST:IP strings or a mapping of host to IP")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HostsList, A::Error> {
                let mut hosts = Vec::new();
                while let Some(entry) = seq.next_element::<String>()? {
                    // `HOST=IP` is accepted too, as by the docker CLI.
                    hosts.push(entry.replacen('=', ":", 1));
                }
                Ok(HostsList(hosts))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HostsList, A::Error> {
                let mut hosts = Vec::new();
                while let Some(host) = map.next_key::<String>()? {
                    let ip = map.next_value::<String>()?;
                    hosts.push(format!("{host}:{ip}"));
                }
                Ok(HostsList(hosts))
            }
        }
        deserializer.deserialize_any(HostsVisitor)
    }
}

/// A list whose items are written either as one string (short syntax) or as a mapping (long
/// syntax); each short item may stand for several long ones (a port range).
pub(crate) struct ShortOrLong<T>(pub Vec<Located<T>>);

/// A list item type with a short string syntax.
pub(crate) trait FromShort: Sized {
    const WHAT: &'static str;
    type Long: for<'de> Deserialize<'de>;

    fn from_short(text: &str) -> Result<Vec<Self>, String>;
    fn from_long(long: Self::Long) -> Result<Self, String>;
}

/// One item of such a list, converted where it is written, so that errors point at it.
struct Item<T>(Vec<T>);

impl<'de, T: FromShort> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ItemVisitor<T>(PhantomData<T>);
        impl<'de, T: FromShort> Visitor<'de> for ItemVisitor<T> {
            type Value = Item<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "{} as a string (short syntax) or a mapping (long syntax)",
                    T::WHAT
                )
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Item<T>, E> {
                T::from_short(value).map(Item).map_err(E::custom)
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Item<T>, E> {
                self.visit_str(&value.to_string())
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Item<T>, E> {
                self.visit_str(&value.to_string())
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Item<T>, A::Error> {
                let long = T::Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                T::from_long(long)
                    .map(|one| Item(vec![one]))
                    .map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_any(ItemVisitor(PhantomData))
    }
}

impl<'de, T: FromShort> Deserialize<'de> for ShortOrLong<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor<T>(PhantomData<T>);
        impl<'de, T: FromShort> Visitor<'de> for ListVisitor<T> {
            type Value = ShortOrLong<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of {}", T::WHAT)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Located<Item<T>>>()? {
                    let at = item.at;
                    items.extend(
                        item.value
                            .0
                            .into_iter()
                            .map(|value| Located::new(value, at)),
                    );
                }
                Ok(ShortOrLong(items))
            }
        }
        deserializer.deserialize_any(ListVisitor(PhantomData))
    }
}

/// A mapping from names to optional objects, in name order, with where each name is written.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct NamedMap<T>(pub BTreeMap<String, Located<T>>);

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for NamedMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for MapVisitor<T> {
            type Value = NamedMap<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of names to definitions")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut named = BTreeMap::new();
                while let Some(name) = map.next_key::<Located<String>>()? {
                    let value = map.next_value::<Option<T>>()?.unwrap_or_default();
                    named.insert(name.value, Located::new(value, name.at));
                }
                Ok(NamedMap(named))
            }
        }
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_commands_like_a_shell() {
        let cases: [(&str, &[&str]); 5] = [
            ("nginx -g 'daemon off;'", &["nginx", "-g", "daemon off;"]),
            (
                "sh -c \"echo \\\"hi\\\" $HOME\"",
                &["sh", "-c", "echo \"hi\" $HOME"],
            ),
            ("  a\\ b  c ", &["a b", "c"]),
            ("''", &[""]),
            ("", &[]),
        ];
        for (line, words) in cases {
            assert_eq!(split_shell_words(line).unwrap(), words, "{line}");
        }
        assert!(split_shell_words("echo 'oops").is_err());
    }

    #[test]
    fn suggests_the_key_meant() {
        let keys = ["image", "command", "deploy"];
        assert_eq!(
            unknown_key_message("imgae", "service", &keys),
            "unknown key `imgae` in service: did you mean `image`?"
        );
        assert_eq!(
            unknown_key_message("zzz", "service", &keys),
            "unknown key `zzz` in service: expected one of `image`, `command`, `deploy`"
        );
    }
}
