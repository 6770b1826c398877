//! `${VARIABLE}` substitution in compose values, as the docker CLI's `cli/compose/template`
//! does it for `docker stack deploy`:
//!
//! - `$$` is a literal `$`.
//! - `$NAME` and `${NAME}`: the variable's value, empty when unset. A name is a letter or `_`
//!   followed by letters, digits and `_`, in either case.
//! - `${NAME:-default}` (unset or empty) and `${NAME-default}` (unset) give `default`, taken
//!   exactly as written up to the first `}`: `$` signs in it stay as they are (a bcrypt hash
//!   survives), `$$` is not unescaped, and a `${…}` in it is not expanded (`${B:-${C:-z}}` is
//!   `${C:-z}`: the default ends at the first `}`, the second `}` is plain text).
//! - `${NAME:?message}` (unset or empty) and `${NAME?message}` (unset) are errors.
//! - Unbraced, `$NAME` takes the same operators up to the first `}` or the end of the value
//!   (`$NAME:-default`).
//! - Any other `$` is refused: `${}`, `${ NAME}`, `${NAME:+alt}`, `$1`, a `$` at the end.
//!
//! Two things are deliberately stricter than the docker CLI, which reads the operator by
//! searching the whole reference for `:-`, `-`, `:?`, `?` in that order and keeps only the
//! last reference's error: here the operator is the one right after the name (docker reads
//! `${NAME?must-be-set}` as a default `be-set` for a variable called `NAME?must`), and an
//! invalid or missing-required reference is reported even when a later reference in the same
//! value is fine (docker then silently drops the bad one).

use std::borrow::Cow;

/// Why a value cannot be interpolated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TemplateError {
    /// A `$` that starts no valid reference; `fragment` is the text from the `$`.
    Invalid { fragment: String },
    /// `${NAME?message}` or `${NAME:?message}` with the variable unset (or empty).
    Required { name: String, message: String },
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TemplateError::Invalid { fragment } => write!(
                f,
                "invalid interpolation {fragment:?}: write `${{NAME}}`, `$NAME`, `${{NAME:-default}}` or `${{NAME:?error}}`, and `$$` for a literal `$`"
            ),
            TemplateError::Required { name, message } if message.is_empty() => {
                write!(f, "required variable {name} is missing a value")
            }
            TemplateError::Required { name, message } => {
                write!(f, "required variable {name} is missing a value: {message}")
            }
        }
    }
}

/// What follows a variable's name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Operator {
    /// `:-`
    DefaultIfUnsetOrEmpty,
    /// `-`
    DefaultIfUnset,
    /// `:?`
    ErrorIfUnsetOrEmpty,
    /// `?`
    ErrorIfUnset,
}

impl Operator {
    /// The operator at the start of `text` and its length.
    fn at_start(text: &str) -> Option<(Operator, usize)> {
        if text.starts_with(":-") {
            Some((Operator::DefaultIfUnsetOrEmpty, 2))
        } else if text.starts_with(":?") {
            Some((Operator::ErrorIfUnsetOrEmpty, 2))
        } else if text.starts_with('-') {
            Some((Operator::DefaultIfUnset, 1))
        } else if text.starts_with('?') {
            Some((Operator::ErrorIfUnset, 1))
        } else {
            None
        }
    }
}

/// Go's case-insensitive `[_a-z]`: its case folding also matches `ſ` (U+017F, folds to `s`)
/// and the Kelvin sign (U+212A, folds to `k`).
fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || c == '\u{17f}' || c == '\u{212a}'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// The length in bytes of the variable name at the start of `text` (0 if there is none).
fn name_len(text: &str) -> usize {
    let mut chars = text.char_indices();
    match chars.next() {
        Some((_, c)) if is_name_start(c) => {}
        _ => return 0,
    }
    chars
        .find(|(_, c)| !is_name_char(*c))
        .map_or(text.len(), |(i, _)| i)
}

/// `text` with every reference replaced, looking variables up with `lookup`. Borrowed when
/// `text` has no `$`.
pub(crate) fn substitute<'a>(
    text: &'a str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Cow<'a, str>, TemplateError> {
    if !text.contains('$') {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let invalid = |fragment: &str| TemplateError::Invalid {
            fragment: fragment.to_string(),
        };
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        if let Some(braced) = after.strip_prefix('{') {
            let len = name_len(braced);
            let close = braced.find('}');
            let fragment = match close {
                Some(close) => &rest[dollar..dollar + 3 + close],
                None => &rest[dollar..],
            };
            if len == 0 {
                return Err(invalid(fragment));
            }
            let name = &braced[..len];
            let operand = &braced[len..];
            let (value, consumed) = if operand.starts_with('}') {
                (lookup(name).unwrap_or_default(), len + 1)
            } else {
                let Some((operator, op_len)) = Operator::at_start(operand) else {
                    return Err(invalid(fragment));
                };
                let Some(close) = operand.find('}') else {
                    return Err(invalid(fragment));
                };
                let argument = &operand[op_len..close];
                (apply(name, operator, argument, lookup)?, len + close + 1)
            };
            out.push_str(&value);
            rest = &braced[consumed..];
            continue;
        }
        let len = name_len(after);
        if len == 0 {
            let end = after.chars().next().map_or(0, char::len_utf8);
            return Err(invalid(&rest[dollar..dollar + 1 + end]));
        }
        let name = &after[..len];
        let operand = &after[len..];
        match Operator::at_start(operand) {
            Some((operator, op_len)) => {
                // Unbraced, the operand runs to the first `}` (which stays) or to the end.
                let end = operand.find('}').unwrap_or(operand.len());
                out.push_str(&apply(name, operator, &operand[op_len..end], lookup)?);
                rest = &operand[end..];
            }
            None => {
                out.push_str(&lookup(name).unwrap_or_default());
                rest = operand;
            }
        }
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

fn apply(
    name: &str,
    operator: Operator,
    argument: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, TemplateError> {
    let value = lookup(name);
    let unset_or_empty = value.as_deref().is_none_or(str::is_empty);
    match operator {
        Operator::DefaultIfUnsetOrEmpty if unset_or_empty => Ok(argument.to_string()),
        Operator::DefaultIfUnset if value.is_none() => Ok(argument.to_string()),
        Operator::ErrorIfUnsetOrEmpty if unset_or_empty => Err(TemplateError::Required {
            name: name.to_string(),
            message: argument.to_string(),
        }),
        Operator::ErrorIfUnset if value.is_none() => Err(TemplateError::Required {
            name: name.to_string(),
            message: argument.to_string(),
        }),
        _ => Ok(value.unwrap_or_default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<String> {
        match name {
            "FOO" => Some("first".to_string()),
            "BAR" => Some(String::new()),
            "lower" => Some("low".to_string()),
            _ => None,
        }
    }

    fn sub(text: &str) -> Result<String, TemplateError> {
        substitute(text, &lookup).map(Cow::into_owned)
    }

    #[test]
    fn values_and_defaults_as_the_docker_cli_substitutes_them() {
        let cases = [
            ("no dollar", "no dollar"),
            ("$${foo}", "${foo}"),
            ("This ${missing} var", "This  var"),
            ("This ${BAR} var", "This  var"),
            ("This $FOO var", "This first var"),
            ("This ${FOO} var", "This first var"),
            ("ok ${missing:-def}", "ok def"),
            ("ok ${missing-def}", "ok def"),
            ("ok ${BAR:-def}", "ok def"),
            ("ok ${BAR-def}", "ok "),
            ("ok ${FOO:-def}", "ok first"),
            ("ok ${BAR:-/non:-alphanumeric}", "ok /non:-alphanumeric"),
            ("ok ${FOO:?err}", "ok first"),
            ("ok ${BAR?err}", "ok "),
            ("$lower-case", "low"),
            ("$FOO/path", "first/path"),
            ("$FOO:bar", "first:bar"),
            ("$missing:-x}y", "x}y"),
            ("a$$b$$$FOO", "a$b$first"),
        ];
        for (template, expected) in cases {
            assert_eq!(sub(template).as_deref(), Ok(expected), "{template}");
        }
    }

    #[test]
    fn a_default_is_taken_as_written() {
        let hash = "$2y$05$Qm9vZ2xlRm9vQmFyQmF6Lu/K1Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9Qr0St";
        assert_eq!(
            sub(&format!(
                "${{WEB_USER:-admin}}:${{WEB_PASSWORD_HASH:-{hash}}}"
            ))
            .unwrap(),
            format!("admin:{hash}")
        );
        assert_eq!(sub("${A:-x$$y}").unwrap(), "x$$y");
        assert_eq!(sub("${B:-${C:-z}}").unwrap(), "${C:-z}");
        assert_eq!(sub("${FOO:-${C:-z}}").unwrap(), "first}");
    }

    #[test]
    fn what_the_docker_cli_refuses_is_refused() {
        for template in [
            "${",
            "$}",
            "${}",
            "${ }",
            "${ foo}",
            "${foo }",
            "${foo!}",
            "$1",
            "end$",
            "${A:+x}",
            "${A:-unclosed",
            "$ x",
        ] {
            assert!(
                matches!(sub(template), Err(TemplateError::Invalid { .. })),
                "{template} should be refused"
            );
        }
        assert_eq!(
            sub("x ${foo!} y"),
            Err(TemplateError::Invalid {
                fragment: "${foo!}".to_string()
            })
        );
    }

    #[test]
    fn required_variables() {
        assert_eq!(
            sub("not ok ${UNSET:?Mandatory Variable Unset}")
                .unwrap_err()
                .to_string(),
            "required variable UNSET is missing a value: Mandatory Variable Unset"
        );
        assert_eq!(
            sub("${BAR:?}").unwrap_err().to_string(),
            "required variable BAR is missing a value"
        );
        assert!(sub("${UNSET?must-be-set}").is_err());
        // The docker CLI forgets the first error when a later reference succeeds.
        assert!(sub("${UNSET:?x} ${FOO}").is_err());
        assert!(sub("$1 ${FOO}").is_err());
    }
}
