//! A compose file's YAML as a tree whose every node and key remembers where it was written,
//! read the way the docker CLI's YAML reader (go-yaml v3) reads it: YAML 1.2 scalars (only
//! `true`/`false` are booleans, `0755` is octal as in Go), a key written twice in one mapping
//! refused, `<<` merge keys expanded with the mapping's own keys winning and, in a list of
//! mappings, the first one winning.
//!
//! serde-saphyr does the parsing (anchors, aliases, flow and block styles); duplicates and
//! merge keys are handled here, because its own errors speak to programmers ("set
//! DuplicateKeyPolicy…") and it would accept two `<<` keys in one mapping.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::options::{DuplicateKeyPolicy, MergeKeyPolicy, NonFiniteFloatPolicy};
use serde_saphyr::{Budget, Options, Spanned};

use crate::Location;

/// One node of the tree. `template` is the text as written when `${…}` interpolation changed
/// it, so that a message about a bad value can say where the value came from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) at: Location,
    pub(crate) template: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A key of a mapping (always read as text, as the docker CLI converts keys to strings) and
/// its value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) key: String,
    pub(crate) at: Location,
    pub(crate) value: Node,
}

/// The merge key of YAML 1.1, which go-yaml v3 still honours.
const MERGE_KEY: &str = "<<";

impl Node {
    /// What kind of value this is, for messages: `a list`, `the number 5`.
    pub(crate) fn describe(&self) -> String {
        match &self.value {
            Value::Null => "nothing (null)".to_string(),
            Value::Bool(b) => format!("the boolean {b}"),
            Value::Int(i) => format!("the number {i}"),
            Value::Float(f) => format!("the number {}", go_float(*f)),
            Value::Str(s) => format!("the string {s:?}"),
            Value::Seq(_) => "a list".to_string(),
            Value::Map(_) => "a mapping".to_string(),
        }
    }

    /// A scalar as the docker CLI turns it into text (`fmt.Sprint`): numbers in Go's
    /// notation, booleans as `true`/`false`; `None` for null, lists and mappings.
    pub(crate) fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(go_float(*f)),
            Value::Str(s) => Some(s.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

/// A float as Go's `fmt.Sprint` writes it (`%v`, which is `strconv`'s shortest `'g'`): the
/// shortest digits that read back the same, in exponent form when the decimal exponent is
/// below -4 or at least 6 (`1e+06`, `1e-05`), a rule of Go's `ftoa.go`.
pub(crate) fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let scientific = format!("{value:e}");
    let (mantissa, exponent) = scientific
        .split_once('e')
        .expect("`{:e}` always writes an exponent");
    let exponent: i32 = exponent.parse().expect("`{:e}` writes a decimal exponent");
    if (-4..6).contains(&exponent) {
        return format!("{value}");
    }
    let sign = if exponent < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exponent.abs())
}

/// Why a file is not a YAML document the docker CLI would read.
#[derive(Debug, PartialEq)]
pub(crate) struct YamlError {
    pub(crate) line: u32,
    pub(crate) column: u32,
    pub(crate) message: String,
}

/// What one file's YAML holds: its first document, and where a second one starts when there
/// is one (the docker CLI reads the first document only).
#[derive(Debug)]
pub(crate) struct Parsed {
    pub(crate) root: Option<Node>,
    pub(crate) more_documents: Option<Location>,
}

/// Parses `text` into a tree whose locations are in file number `file`. `root` is `None` for
/// an empty document.
pub(crate) fn parse(file: usize, text: &str) -> Result<Parsed, YamlError> {
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    options.merge_keys = MergeKeyPolicy::AsOrdinary;
    // go-yaml reads `0440` as octal (Go's `strconv.ParseInt(s, 0, 64)`), and file modes in
    // stack files are written that way.
    options.legacy_octal_numbers = true;
    // YAML 1.2: `yes`, `no`, `on`, `off` are strings.
    options.strict_booleans = true;
    options.non_finite_float_policy = NonFiniteFloatPolicy::PassThrough;
    options.with_snippet = false;
    // A stack of 100 services using one `*logging` anchor each is ordinary; go-yaml allows
    // almost any share of aliases in a document of normal size. The absolute limits on
    // aliases, events and alias replay still stop alias bombs.
    let mut budget = Budget::default();
    budget.enforce_alias_anchor_ratio = false;
    options.budget = Some(budget);
    let mut input = text.as_bytes();
    let mut documents = serde_saphyr::read_with_options::<_, Spanned<Raw>>(&mut input, options);
    let root = documents
        .next()
        .transpose()
        .map_err(yaml_error)?
        .map(|raw| build(file, raw))
        .transpose()?;
    let more_documents = documents.next().map(|next| match next {
        Ok(document) => location(file, &document.referenced),
        Err(error) => {
            let error = yaml_error(error);
            Location {
                file,
                line: error.line,
                column: error.column,
            }
        }
    });
    Ok(Parsed {
        root,
        more_documents,
    })
}

/// The parser's error as a user reads it: the place apart, and limits said in words.
fn yaml_error(error: serde_saphyr::Error) -> YamlError {
    let error = error.without_snippet();
    let (line, column) = error
        .location()
        .map_or((0, 0), |at| (to_u32(at.line()), to_u32(at.column())));
    let message = error.to_string();
    let suffix = format!(" at line {line}, column {column}");
    let message = message
        .strip_suffix(&suffix)
        .unwrap_or(&message)
        .to_string();
    let message = match message.strip_prefix("budget breached: ") {
        Some(limit) => {
            let limit = limit.split(" at line ").next().unwrap_or(limit);
            format!(
                "the file goes past the reader's limits once its aliases are expanded ({limit}); a stack file is never that large"
            )
        }
        None => message,
    };
    YamlError {
        line,
        column,
        message,
    }
}

fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn location(file: usize, at: &serde_saphyr::Location) -> Location {
    Location {
        file,
        line: to_u32(at.line()),
        column: to_u32(at.column()),
    }
}

/// The parser's view, before merge keys and duplicates are dealt with.
enum Raw {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Raw>>),
    Map(Vec<(Spanned<String>, Spanned<Raw>)>),
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any YAML value")
            }

            fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }

            fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
                Ok(Raw::Null)
            }

            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Raw, D::Error> {
                Raw::deserialize(deserializer)
            }

            fn visit_bool<E: de::Error>(self, value: bool) -> Result<Raw, E> {
                Ok(Raw::Bool(value))
            }

            fn visit_i64<E: de::Error>(self, value: i64) -> Result<Raw, E> {
                Ok(Raw::Int(value.into()))
            }

            fn visit_u64<E: de::Error>(self, value: u64) -> Result<Raw, E> {
                Ok(Raw::Int(value.into()))
            }

            fn visit_i128<E: de::Error>(self, value: i128) -> Result<Raw, E> {
                Ok(Raw::Int(value))
            }

            fn visit_f64<E: de::Error>(self, value: f64) -> Result<Raw, E> {
                Ok(Raw::Float(value))
            }

            fn visit_str<E: de::Error>(self, value: &str) -> Result<Raw, E> {
                Ok(Raw::Str(value.to_string()))
            }

            fn visit_string<E: de::Error>(self, value: String) -> Result<Raw, E> {
                Ok(Raw::Str(value))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Raw::Seq(items))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(Raw::Map(entries))
            }
        }
        deserializer.deserialize_any(RawVisitor)
    }
}

/// The tree, with each mapping's merge keys expanded. A node's place is where it is used: for
/// an alias, the alias.
fn build(file: usize, raw: Spanned<Raw>) -> Result<Node, YamlError> {
    let at = location(file, &raw.referenced);
    let value = match raw.value {
        Raw::Null => Value::Null,
        Raw::Bool(b) => Value::Bool(b),
        Raw::Int(i) => Value::Int(i),
        Raw::Float(f) => Value::Float(f),
        Raw::Str(s) => Value::Str(s),
        Raw::Seq(items) => Value::Seq(
            items
                .into_iter()
                .map(|item| build(file, item))
                .collect::<Result<_, _>>()?,
        ),
        Raw::Map(raw_entries) => Value::Map(mapping(file, raw_entries)?),
    };
    Ok(Node {
        value,
        at,
        template: None,
    })
}

fn mapping(
    file: usize,
    raw_entries: Vec<(Spanned<String>, Spanned<Raw>)>,
) -> Result<Vec<Entry>, YamlError> {
    let mut entries: Vec<Entry> = Vec::with_capacity(raw_entries.len());
    let mut merges: Vec<Node> = Vec::new();
    let mut merge_at: Option<Location> = None;
    for (key, value) in raw_entries {
        let key_at = location(file, &key.referenced);
        if key.value == MERGE_KEY {
            if let Some(first) = merge_at {
                return Err(YamlError {
                    line: key_at.line,
                    column: key_at.column,
                    message: format!(
                        "two `<<` merge keys in one mapping (the first at line {}, column {}): merge several mappings with one list, `<<: [*a, *b]`",
                        first.line, first.column
                    ),
                });
            }
            merge_at = Some(key_at);
            merges.push(build(file, value)?);
            continue;
        }
        if let Some(first) = entries.iter().find(|e| e.key == key.value) {
            return Err(YamlError {
                line: key_at.line,
                column: key_at.column,
                message: format!(
                    "`{}` is written twice in this mapping (first at line {}, column {}): keep one",
                    key.value, first.at.line, first.at.column
                ),
            });
        }
        entries.push(Entry {
            key: key.value,
            at: key_at,
            value: build(file, value)?,
        });
    }
    for merge in merges {
        let sources = match merge.value {
            Value::Map(map) => vec![map],
            Value::Seq(items) => items
                .into_iter()
                .map(|item| match item.value {
                    Value::Map(map) => Ok(map),
                    _ => Err(not_a_merge_source(&item)),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(not_a_merge_source(&merge)),
        };
        for entry in sources.into_iter().flatten() {
            if !entries.iter().any(|e| e.key == entry.key) {
                entries.push(entry);
            }
        }
    }
    Ok(entries)
}

fn not_a_merge_source(node: &Node) -> YamlError {
    YamlError {
        line: node.at.line,
        column: node.at.column,
        message: format!(
            "a `<<` merge key takes a mapping or a list of mappings, not {}",
            node.describe()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(text: &str) -> Node {
        parse(0, text).unwrap().root.unwrap()
    }

    fn get<'a>(node: &'a Node, key: &str) -> &'a Node {
        match &node.value {
            Value::Map(entries) => {
                &entries
                    .iter()
                    .find(|e| e.key == key)
                    .unwrap_or_else(|| panic!("no {key}"))
                    .value
            }
            _ => panic!("not a mapping"),
        }
    }

    #[test]
    fn scalars_are_typed_as_go_yaml_types_them() {
        let root = tree(
            "a: yes\nb: 010\nc: 0x1F\nd: 1.10\ne: ~\nf: true\ng: '5'\nh: 18446744073709551615\n",
        );
        assert_eq!(get(&root, "a").value, Value::Str("yes".into()));
        assert_eq!(get(&root, "b").value, Value::Int(8));
        assert_eq!(get(&root, "c").value, Value::Int(31));
        assert_eq!(get(&root, "d").value, Value::Float(1.1));
        assert_eq!(get(&root, "e").value, Value::Null);
        assert_eq!(get(&root, "f").value, Value::Bool(true));
        assert_eq!(get(&root, "g").value, Value::Str("5".into()));
        assert_eq!(get(&root, "h").value, Value::Int(u64::MAX.into()));
    }

    #[test]
    fn floats_print_like_go() {
        for (value, text) in [
            (1.1, "1.1"),
            (1.0, "1"),
            (999999.0, "999999"),
            (1234567.0, "1.234567e+06"),
            (1e21, "1e+21"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
        ] {
            assert_eq!(go_float(value), text, "{value}");
        }
    }

    #[test]
    fn merge_keys_expand_with_own_keys_first_then_the_first_source() {
        let root = tree("x: &x {a: 1, b: 1}\ny: &y {b: 2, c: 2}\nm:\n  <<: [*x, *y]\n  a: 0\n");
        let m = get(&root, "m");
        assert_eq!(get(m, "a").value, Value::Int(0));
        assert_eq!(get(m, "b").value, Value::Int(1));
        assert_eq!(get(m, "c").value, Value::Int(2));
    }

    #[test]
    fn a_key_written_twice_is_refused_with_both_places() {
        let err = parse(0, "services:\n  app:\n    deploy: {}\n    deploy: {}\n").unwrap_err();
        assert_eq!((err.line, err.column), (4, 5));
        assert_eq!(
            err.message,
            "`deploy` is written twice in this mapping (first at line 3, column 5): keep one"
        );
        assert!(!err.message.contains("DuplicateKeyPolicy"));
    }

    #[test]
    fn two_merge_keys_in_one_mapping_are_refused() {
        let err = parse(0, "a: &a {x: 1}\nb: &b {y: 1}\nc:\n  <<: *a\n  <<: *b\n").unwrap_err();
        assert_eq!((err.line, err.column), (5, 3));
        assert!(
            err.message.starts_with("two `<<` merge keys"),
            "{}",
            err.message
        );
        let err = parse(0, "a: &a 5\nc:\n  <<: *a\n").unwrap_err();
        assert!(err.message.contains("not the number 5"), "{}", err.message);
    }

    #[test]
    fn many_aliases_of_few_anchors_are_fine_and_alias_bombs_are_not() {
        let mut text = String::from("x: &x {driver: local}\nservices:\n");
        for i in 0..300 {
            text.push_str(&format!("  s{i}: {{logging: *x}}\n"));
        }
        assert!(parse(0, &text).is_ok());
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..10 {
            let previous = (b'a' + level - 1) as char;
            let name = (b'a' + level) as char;
            bomb.push_str(&format!("{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"));
        }
        let err = parse(0, &bomb).err().unwrap();
        assert!(
            err.message
                .starts_with("the file goes past the reader's limits"),
            "{}",
            err.message
        );
    }

    #[test]
    fn only_the_first_document_is_read() {
        let parsed = parse(0, "a: 1\n---\nb: [unclosed\n").unwrap();
        assert!(parsed.root.is_some());
        assert_eq!(parsed.more_documents.map(|at| at.line), Some(3));
        assert_eq!(parse(0, "---\na: 1\n").unwrap().more_documents, None);
    }

    #[test]
    fn an_empty_document_is_none() {
        assert_eq!(parse(0, "").unwrap().root, None);
        assert_eq!(parse(0, "# nothing\n").unwrap().root, None);
    }
}
