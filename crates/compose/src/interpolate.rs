//! Interpolation over a whole file, where the docker CLI does it: every string value,
//! however deep, in every section (extension `x-` values too); never a mapping key, never a
//! number or boolean written as such. A value that changes keeps its text as written
//! ([`Node::template`]) for messages.
//!
//! The docker CLI then casts some interpolated values (`replicas`, `published`, `read_only`
//! and a few more) to numbers or booleans; here every number or boolean is read from a string
//! that spells one, interpolated or not (see [`crate::de`]).

use crate::template::{substitute, TemplateError};
use crate::yaml::{Node, Value};
use crate::Location;

/// Substitutes every string value of `node` in place; the first reference that cannot be
/// substituted is an error at its value.
pub(crate) fn interpolate(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<(), (Location, TemplateError)> {
    match &mut node.value {
        Value::Str(text) => {
            let substituted = substitute(text, lookup).map_err(|e| (node.at, e))?;
            if substituted != text.as_str() {
                let substituted = substituted.into_owned();
                node.template = Some(std::mem::replace(text, substituted));
            }
        }
        Value::Seq(items) => {
            for item in items {
                interpolate(item, lookup)?;
            }
        }
        Value::Map(entries) => {
            for entry in entries {
                interpolate(&mut entry.value, lookup)?;
            }
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    #[test]
    fn values_change_and_keys_do_not() {
        let mut root = parse(0, "${KEY}: ${VALUE}\nlist: [$VALUE, 5, $$]\n")
            .unwrap()
            .root
            .unwrap();
        let lookup = |name: &str| (name == "VALUE").then(|| "v".to_string());
        interpolate(&mut root, &lookup).unwrap();
        let Value::Map(entries) = &root.value else {
            panic!()
        };
        assert_eq!(entries[0].key, "${KEY}");
        assert_eq!(entries[0].value.value, Value::Str("v".into()));
        assert_eq!(entries[0].value.template.as_deref(), Some("${VALUE}"));
        let Value::Seq(items) = &entries[1].value.value else {
            panic!()
        };
        assert_eq!(items[0].value, Value::Str("v".into()));
        assert_eq!(items[1].value, Value::Int(5));
        assert_eq!(items[2].value, Value::Str("$".into()));
    }

    #[test]
    fn an_error_is_at_the_value() {
        let mut root = parse(0, "a:\n  b: x${\n").unwrap().root.unwrap();
        let (at, error) = interpolate(&mut root, &|_| None).unwrap_err();
        assert_eq!((at.line, at.column), (2, 6));
        assert!(matches!(error, TemplateError::Invalid { .. }));
    }
}
