//! How the located YAML tree ([`crate::yaml`]) becomes typed values: a struct macro that knows
//! compose's rules for keys (extension `x-` keys are skipped, keys `docker stack deploy`
//! ignores are noted, unknown keys are errors that suggest the key meant), and the "this or
//! that" shapes compose allows (a string or a list, a list or a map).
//!
//! Messages name the value that was wrong and what was expected, in the words of the file
//! (`invalid replicas "abc": expected a whole number`), and say which `${…}` the value came
//! from when interpolation produced it.
//!
//! Deliberately more lenient than the docker CLI, whose schema wants the YAML type itself:
//! a number or a boolean may be written as a string (`replicas: "3"`, `read_only: "yes"`),
//! and a string setting may be written as a number (`user: 1000`). The docker CLI accepts
//! these only where interpolation produced them.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Invalid;
use crate::located::Located;
use crate::yaml::{Entry, Node, Value};
use crate::Location;

/// Reads a typed value from a node. `key` is the mapping key the value was written under,
/// for messages.
pub(crate) trait FromNode: Sized {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid>;
}

/// What reading a file learns besides the values: the keys that are accepted and do nothing.
#[derive(Default)]
pub(crate) struct Reader {
    path: Vec<String>,
    pub(crate) ignored: Vec<Noted>,
}

/// A key accepted and not used, with its full path from the top of the file.
pub(crate) struct Noted {
    pub(crate) path: Vec<String>,
    pub(crate) at: Location,
    pub(crate) reason: String,
}

impl Reader {
    /// Runs `read` with `key` added to the path of what is being read.
    pub(crate) fn within<T>(
        &mut self,
        key: &str,
        read: impl FnOnce(&mut Self) -> Result<T, Invalid>,
    ) -> Result<T, Invalid> {
        self.path.push(key.to_string());
        let result = read(self);
        self.path.pop();
        result
    }

    /// Notes that `key`, here, is accepted and ignored.
    pub(crate) fn ignore(&mut self, key: &str, at: Location, reason: impl Into<String>) {
        let mut path = self.path.clone();
        path.push(key.to_string());
        self.ignored.push(Noted {
            path,
            at,
            reason: reason.into(),
        });
    }
}

/// A key that `docker stack deploy` accepts and does nothing with, where it was written and
/// why it does nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IgnoredKey {
    /// Dotted path from the service (`build`, `networks.front.ipv4_address`), or from the top
    /// of the file for keys outside services.
    pub key: String,
    pub at: Location,
    pub reason: String,
}

/// How an object treats keys it does not read.
pub(crate) struct KeyPolicy {
    /// Unknown keys are ignored (with a note) rather than refused: the docker CLI's schema
    /// allows any key in this object.
    pub(crate) open: bool,
    /// Keys accepted and ignored, with why.
    pub(crate) ignored: &'static [(&'static str, &'static str)],
    /// Keys refused, with the docker CLI's reason.
    pub(crate) forbidden: &'static [(&'static str, &'static str)],
}

pub(crate) const STRICT: KeyPolicy = KeyPolicy {
    open: false,
    ignored: &[],
    forbidden: &[],
};

pub(crate) const OPEN: KeyPolicy = KeyPolicy {
    open: true,
    ignored: &[],
    forbidden: &[],
};

/// What happens to a key an object does not read.
pub(crate) fn other_key(
    entry: &Entry,
    what: &str,
    keys: &[&str],
    policy: &KeyPolicy,
    r: &mut Reader,
) -> Result<(), Invalid> {
    let key = entry.key.as_str();
    if key.starts_with("x-") {
        return Ok(());
    }
    // A note points at the value, where a reader of the finding looks for what is ignored.
    if let Some((_, reason)) = policy.ignored.iter().find(|(k, _)| *k == key) {
        r.ignore(key, entry.value.at, *reason);
        return Ok(());
    }
    if let Some((_, reason)) = policy.forbidden.iter().find(|(k, _)| *k == key) {
        return Err(Invalid::new(
            entry.at,
            format!("`{key}` is not allowed in a stack file: {reason}"),
        ));
    }
    if policy.open {
        r.ignore(key, entry.value.at, "docker stack deploy does not read it");
        return Ok(());
    }
    Err(Invalid::new(entry.at, unknown_key_message(key, what, keys)))
}

/// Declares a compose object: a struct whose fields are read from the YAML keys named on the
/// left, each optional. Other keys follow the object's [`KeyPolicy`] (strict unless one is
/// named after the description). Fields after `;` are not read from YAML.
macro_rules! compose_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident ($what:literal $(, $policy:expr)?) {
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

        impl $name {
            /// The keys this object reads.
            #[allow(dead_code)]
            pub(crate) const KEYS: &'static [&'static str] = &[$($key),*];
        }

        impl $crate::de::FromNode for $name {
            fn from_node(
                node: &$crate::yaml::Node,
                key: &str,
                r: &mut $crate::de::Reader,
            ) -> Result<Self, $crate::error::Invalid> {
                let entries = $crate::de::expect_map(node, key, concat!("a mapping (", $what, ")"))?;
                let mut object = $name::default();
                for entry in entries {
                    match entry.key.as_str() {
                        $( $key => {
                            object.$field = r.within($key, |r| {
                                $crate::de::FromNode::from_node(&entry.value, $key, r)
                            })?
                        } )*
                        _ => $crate::de::other_key(
                            entry,
                            $what,
                            Self::KEYS,
                            compose_struct!(@policy $($policy)?),
                            r,
                        )?,
                    }
                }
                Ok(object)
            }
        }
    };
    (@policy) => { &$crate::de::STRICT };
    (@policy $policy:expr) => { &$policy };
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

            /// The variant spelled `text`, if any.
            #[allow(dead_code)]
            pub(crate) fn parse(text: &str) -> Option<Self> {
                match text {
                    $( $text => Some($name::$variant), )*
                    _ => None,
                }
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

        impl $crate::de::FromNode for $name {
            fn from_node(
                node: &$crate::yaml::Node,
                key: &str,
                r: &mut $crate::de::Reader,
            ) -> Result<Self, $crate::error::Invalid> {
                let text = <String as $crate::de::FromNode>::from_node(node, key, r)?;
                $name::parse(&text).ok_or_else(|| {
                    $crate::de::invalid(
                        node,
                        format!(
                            "invalid {} {:?}: expected {}",
                            $what,
                            text,
                            $crate::de::one_of(&[$($text),*]),
                        ),
                    )
                })
            }
        }
    };
}

/// An error at `node`, saying which `${…}` the value came from when interpolation made it.
pub(crate) fn invalid(node: &Node, message: impl Into<String>) -> Invalid {
    let mut message = message.into();
    if let Some(template) = &node.template {
        message.push_str(&format!(" (from `{template}`)"));
    }
    Invalid::new(node.at, message)
}

/// `invalid KEY: expected WHAT, found …`.
pub(crate) fn wrong_kind(node: &Node, key: &str, expected: &str) -> Invalid {
    invalid(
        node,
        format!(
            "invalid {key}: expected {expected}, found {}",
            node.describe()
        ),
    )
}

/// The entries of a mapping.
pub(crate) fn expect_map<'a>(
    node: &'a Node,
    key: &str,
    expected: &str,
) -> Result<&'a [Entry], Invalid> {
    match &node.value {
        Value::Map(entries) => Ok(entries),
        _ => Err(wrong_kind(node, key, expected)),
    }
}

/// The value as it appears in a message: strings quoted, numbers as written.
pub(crate) fn shown(node: &Node) -> String {
    match &node.value {
        Value::Str(s) => format!("{s:?}"),
        _ => node.scalar_text().unwrap_or_else(|| node.describe()),
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

impl<T: FromNode> FromNode for Option<T> {
    /// Null is "not written".
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        match node.value {
            Value::Null => Ok(None),
            _ => T::from_node(node, key, r).map(Some),
        }
    }
}

impl<T: FromNode> FromNode for Located<T> {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        Ok(Located::new(T::from_node(node, key, r)?, node.at))
    }
}

impl FromNode for String {
    /// A string, or a number or boolean as the docker CLI prints it; null (in a list or as a
    /// map value) is empty, as in the docker CLI's `toString`.
    fn from_node(node: &Node, key: &str, _: &mut Reader) -> Result<Self, Invalid> {
        match node.value {
            Value::Null => Ok(String::new()),
            _ => node
                .scalar_text()
                .ok_or_else(|| wrong_kind(node, key, "a string")),
        }
    }
}

impl FromNode for bool {
    /// `true`/`false`, or in a string what the docker CLI's `toBoolean` accepts: `y`, `yes`,
    /// `on`, `n`, `no`, `off`, in any case.
    fn from_node(node: &Node, key: &str, _: &mut Reader) -> Result<Self, Invalid> {
        match &node.value {
            Value::Bool(b) => Ok(*b),
            Value::Str(s) => match s.to_ascii_lowercase().as_str() {
                "y" | "yes" | "true" | "on" => Ok(true),
                "n" | "no" | "false" | "off" => Ok(false),
                _ => Err(invalid(
                    node,
                    format!("invalid {key} {s:?}: expected true or false"),
                )),
            },
            _ => Err(wrong_kind(node, key, "true or false")),
        }
    }
}

/// A whole number as Go's `strconv.Atoi` reads it (an optional sign and decimal digits), or a
/// number with no fraction.
fn whole_number(node: &Node, key: &str) -> Result<i128, Invalid> {
    let not_whole = || {
        invalid(
            node,
            format!("invalid {key} {}: expected a whole number", shown(node)),
        )
    };
    match &node.value {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 1e30 => Ok(*f as i128),
        Value::Float(_) => Err(not_whole()),
        Value::Str(s) => {
            let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(not_whole());
            }
            s.parse::<i128>().map_err(|_| not_whole())
        }
        _ => Err(wrong_kind(node, key, "a whole number")),
    }
}

macro_rules! whole_number_types {
    ($($ty:ty => $expected:literal,)*) => {
        $(
            impl FromNode for $ty {
                fn from_node(node: &Node, key: &str, _: &mut Reader) -> Result<Self, Invalid> {
                    let number = whole_number(node, key)?;
                    <$ty>::try_from(number).map_err(|_| {
                        invalid(node, format!("invalid {key} {}: expected {}", shown(node), $expected))
                    })
                }
            }
        )*
    };
}

whole_number_types! {
    u64 => "a whole number, 0 or more",
    u32 => "a whole number from 0 to 4294967295",
    i64 => "a whole number",
}

impl FromNode for f64 {
    fn from_node(node: &Node, key: &str, _: &mut Reader) -> Result<Self, Invalid> {
        match &node.value {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) => Ok(*f),
            Value::Str(s) => s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| invalid(node, format!("invalid {key} {s:?}: expected a number"))),
            _ => Err(wrong_kind(node, key, "a number")),
        }
    }
}

impl FromNode for f32 {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        f64::from_node(node, key, r).map(|f| f as f32)
    }
}

impl<T: FromNode> FromNode for Vec<T> {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        match &node.value {
            Value::Seq(items) => items
                .iter()
                .map(|item| T::from_node(item, key, r))
                .collect(),
            _ => Err(wrong_kind(node, key, "a list")),
        }
    }
}

impl<T: FromNode> FromNode for BTreeMap<String, T> {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let entries = expect_map(node, key, "a mapping")?;
        let mut map = BTreeMap::new();
        for entry in entries {
            let value = r.within(&entry.key, |r| T::from_node(&entry.value, &entry.key, r))?;
            map.insert(entry.key.clone(), value);
        }
        Ok(map)
    }
}

/// A string or a list of strings (`env_file`, `dns`): always a list.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StringList(pub Vec<String>);

impl FromNode for StringList {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        match &node.value {
            Value::Seq(_) => Vec::<String>::from_node(node, key, r).map(StringList),
            _ => node
                .scalar_text()
                .map(|s| StringList(vec![s]))
                .ok_or_else(|| wrong_kind(node, key, "a string or a list of strings")),
        }
    }
}

/// `command` and `entrypoint`: a list of arguments, or a string split into arguments the way
/// the docker CLI splits it ([`crate::shlex::split`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ShellCommand(pub Vec<String>);

impl FromNode for ShellCommand {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        match &node.value {
            Value::Seq(_) => Vec::<String>::from_node(node, key, r).map(ShellCommand),
            Value::Str(s) => crate::shlex::split(s)
                .map(ShellCommand)
                .map_err(|e| invalid(node, format!("invalid {key} {s:?}: {e}"))),
            _ => Err(wrong_kind(
                node,
                key,
                "a command string or a list of arguments",
            )),
        }
    }
}

/// A list of `KEY=VALUE` strings or a map, as `environment` takes it: a key without `=` (or
/// with a null value in a map) has no value, which the loader fills in from the environment
/// ([`crate::bare_variable`]). The second map is where each key is written (a list item, or
/// a map's key), so a key left without a value is pointed at.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MappingWithEquals(
    pub BTreeMap<String, Option<String>>,
    pub BTreeMap<String, Location>,
);

/// Labels, sysctls and the like: a list of `KEY=VALUE` strings or a map; a missing value is
/// the empty string.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Mapping(pub BTreeMap<String, String>);

/// `extra_hosts`: a list of `HOST:IP` (or `HOST=IP`) strings or a map of host to IP, kept as
/// `HOST:IP` with the brackets of an IPv6 address removed; a map comes out sorted, as from
/// the docker CLI.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostsList(pub Vec<String>);

/// Reads a list of `KEY<sep>VALUE` strings or a map into pairs, each with where it is
/// written; `None` is a missing value.
fn key_values(
    node: &Node,
    key: &str,
    r: &mut Reader,
) -> Result<Vec<(String, Option<String>, Location)>, Invalid> {
    match &node.value {
        Value::Seq(items) => items
            .iter()
            .map(|item| {
                let text = String::from_node(item, key, r)?;
                Ok(match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string()), item.at),
                    None => (text, None, item.at),
                })
            })
            .collect(),
        Value::Map(entries) => entries
            .iter()
            .map(|entry| {
                let value = match &entry.value.value {
                    Value::Null => None,
                    _ => Some(entry.value.scalar_text().ok_or_else(|| {
                        wrong_kind(&entry.value, &entry.key, "a string or a number")
                    })?),
                };
                Ok((entry.key.clone(), value, entry.at))
            })
            .collect(),
        _ => Err(wrong_kind(
            node,
            key,
            "a list of KEY=VALUE strings or a mapping",
        )),
    }
}

impl FromNode for MappingWithEquals {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let mut mapping = MappingWithEquals::default();
        for (key, value, at) in key_values(node, key, r)? {
            mapping.0.insert(key.clone(), value);
            mapping.1.insert(key, at);
        }
        Ok(mapping)
    }
}

impl FromNode for Mapping {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        Ok(Mapping(
            key_values(node, key, r)?
                .into_iter()
                .map(|(key, value, _)| (key, value.unwrap_or_default()))
                .collect(),
        ))
    }
}

impl FromNode for HostsList {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let strip_brackets =
            |ip: &str| match ip.strip_prefix('[').and_then(|ip| ip.strip_suffix(']')) {
                Some(inner) if !inner.is_empty() => inner.to_string(),
                _ => ip.to_string(),
            };
        let hosts = match &node.value {
            Value::Seq(_) => Vec::<String>::from_node(node, key, r)?
                .into_iter()
                // `HOST=IP` first, then `HOST:IP`; an entry with neither is dropped, as by
                // the docker CLI.
                .filter_map(|entry| {
                    entry
                        .split_once('=')
                        .or_else(|| entry.split_once(':'))
                        .map(|(host, ip)| format!("{host}:{}", strip_brackets(ip)))
                })
                .collect(),
            Value::Map(_) => {
                let mut hosts: Vec<String> = key_values(node, key, r)?
                    .into_iter()
                    .filter_map(|(host, ip, _)| {
                        ip.map(|ip| format!("{host}:{}", strip_brackets(&ip)))
                    })
                    .collect();
                hosts.sort();
                hosts
            }
            _ => {
                return Err(wrong_kind(
                    node,
                    key,
                    "a list of HOST:IP strings or a mapping of host to IP",
                ))
            }
        };
        Ok(HostsList(hosts))
    }
}

/// A list whose items are written either as one string (short syntax) or as a mapping (long
/// syntax); each short item may stand for several long ones (a port range).
pub(crate) struct ShortOrLong<T>(pub Vec<Located<T>>);

/// A list item type with a short string syntax.
pub(crate) trait FromShort: Sized {
    const WHAT: &'static str;
    type Long: FromNode;

    /// The items `text` stands for; may note ignored parts on `r` at `at`.
    fn from_short(text: &str, at: Location, r: &mut Reader) -> Result<Vec<Self>, String>;
    fn from_long(long: Self::Long) -> Result<Self, String>;
}

impl<T: FromShort> FromNode for ShortOrLong<T> {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let Value::Seq(items) = &node.value else {
            return Err(wrong_kind(node, key, &format!("a list of {}", T::WHAT)));
        };
        let mut list = Vec::new();
        for item in items {
            let values = match &item.value {
                Value::Map(_) => {
                    let long = T::Long::from_node(item, key, r)?;
                    vec![T::from_long(long).map_err(|e| invalid(item, e))?]
                }
                Value::Str(_) | Value::Int(_) => {
                    let text = item.scalar_text().unwrap_or_default();
                    T::from_short(&text, item.at, r).map_err(|e| invalid(item, e))?
                }
                _ => {
                    return Err(wrong_kind(
                        item,
                        key,
                        "a string (short syntax) or a mapping (long syntax)",
                    ))
                }
            };
            list.extend(values.into_iter().map(|value| Located::new(value, item.at)));
        }
        Ok(ShortOrLong(list))
    }
}

/// A mapping from names to optional objects, in name order, with where each name is written.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct NamedMap<T>(pub BTreeMap<String, Located<T>>);

impl<T: FromNode + Default> FromNode for NamedMap<T> {
    fn from_node(node: &Node, key: &str, r: &mut Reader) -> Result<Self, Invalid> {
        let entries = expect_map(node, key, "a mapping of names to definitions")?;
        let mut named = BTreeMap::new();
        for entry in entries {
            let value = r
                .within(&entry.key, |r| {
                    Option::<T>::from_node(&entry.value, &entry.key, r)
                })?
                .unwrap_or_default();
            named.insert(entry.key.clone(), Located::new(value, entry.at));
        }
        Ok(NamedMap(named))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(text: &str) -> Node {
        crate::yaml::parse(0, &format!("v: {text}\n"))
            .unwrap()
            .root
            .map(|root| match root.value {
                Value::Map(mut entries) => entries.remove(0).value,
                _ => unreachable!(),
            })
            .unwrap()
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

    #[test]
    fn numbers_name_the_value_and_what_was_expected() {
        let r = &mut Reader::default();
        assert_eq!(u64::from_node(&node("3"), "replicas", r), Ok(3));
        assert_eq!(u64::from_node(&node("'3'"), "replicas", r), Ok(3));
        assert_eq!(u64::from_node(&node("3.0"), "replicas", r), Ok(3));
        assert_eq!(i64::from_node(&node("-500"), "oom_score_adj", r), Ok(-500));
        let mut message = |text: &str| {
            u64::from_node(&node(text), "replicas", r)
                .unwrap_err()
                .message
        };
        assert_eq!(
            message("abc"),
            "invalid replicas \"abc\": expected a whole number"
        );
        assert_eq!(
            message("3.5"),
            "invalid replicas 3.5: expected a whole number"
        );
        assert_eq!(
            message("-1"),
            "invalid replicas -1: expected a whole number, 0 or more"
        );
        assert_eq!(
            message("[1]"),
            "invalid replicas: expected a whole number, found a list"
        );
        let mut interpolated = node("abc");
        interpolated.template = Some("${N:-1}".to_string());
        assert_eq!(
            u64::from_node(&interpolated, "replicas", r)
                .unwrap_err()
                .message,
            "invalid replicas \"abc\": expected a whole number (from `${N:-1}`)"
        );
    }

    #[test]
    fn booleans_as_the_docker_cli_casts_them() {
        let r = &mut Reader::default();
        for (text, value) in [
            ("true", true),
            ("'yes'", true),
            ("On", true),
            ("n", false),
            ("FALSE", false),
        ] {
            assert_eq!(bool::from_node(&node(text), "tty", r), Ok(value), "{text}");
        }
        assert!(bool::from_node(&node("maybe"), "tty", r).is_err());
    }

    #[test]
    fn hosts_lists() {
        let r = &mut Reader::default();
        let hosts = HostsList::from_node(
            &node("[a=1.2.3.4, 'b:::1', 'c:[::2]', nothing]"),
            "extra_hosts",
            r,
        )
        .unwrap();
        assert_eq!(hosts.0, ["a:1.2.3.4", "b:::1", "c:::2"]);
        let hosts =
            HostsList::from_node(&node("{z: 1.1.1.1, a: 2.2.2.2}"), "extra_hosts", r).unwrap();
        assert_eq!(hosts.0, ["a:2.2.2.2", "z:1.1.1.1"]);
    }

    #[test]
    fn mappings_print_numbers_as_go_does() {
        let r = &mut Reader::default();
        let labels =
            Mapping::from_node(&node("{a: 1.10, b: 1000000.0, c: ~, d: 010}"), "labels", r)
                .unwrap();
        assert_eq!(labels.0["a"], "1.1");
        assert_eq!(labels.0["b"], "1e+06");
        assert_eq!(labels.0["c"], "");
        assert_eq!(labels.0["d"], "8");
        let env = MappingWithEquals::from_node(&node("[A=1, B, C=]"), "environment", r).unwrap();
        assert_eq!(env.0["A"].as_deref(), Some("1"));
        assert_eq!(env.0["B"], None);
        assert_eq!(env.0["C"].as_deref(), Some(""));
    }
}
