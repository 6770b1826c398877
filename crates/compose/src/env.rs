//! Environment files (`env_file:`) as the docker CLI reads them, and the paths in a compose
//! file that are relative to its directory.

use std::path::{Component, Path, PathBuf};

/// Variables in file order; `None` is a variable without a value.
pub type EnvVariables = Vec<(String, Option<String>)>;

/// Parses an env file like the docker CLI's `opts.ParseEnvFile`: one `KEY=VALUE` a line,
/// taken literally (no quotes are removed, nothing is interpolated); blank lines and lines
/// starting with `#` are skipped; a line with a key alone takes the variable's value from
/// `lookup`, or has no value. Errors carry the 1-based line number.
pub fn parse_env_file(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<EnvVariables, (usize, String)> {
    let mut variables = Vec::new();
    for (index, line) in text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .lines()
        .enumerate()
    {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once('=') {
            Some((key, value)) => (key, Some(value.to_string())),
            None => (line, None),
        };
        if key.is_empty() {
            return Err((index + 1, format!("no variable name on line {line:?}")));
        }
        if key.contains(char::is_whitespace) {
            return Err((index + 1, format!("variable {key:?} contains whitespace")));
        }
        let value = value.or_else(|| lookup(key));
        variables.push((key.to_string(), value));
    }
    Ok(variables)
}

/// `path` made absolute against `base` and cleaned of `.` and `..` without touching the
/// disk, like Go's `filepath.Join`; a leading `~` is the home directory when one is known.
pub fn resolve_path(base: &Path, path: &str, home: Option<&str>) -> String {
    let expanded = match (path.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{home}{rest}")
        }
        _ => path.to_string(),
    };
    let joined = base.join(&expanded);
    let mut clean = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !clean.pop() {
                    clean.push("..");
                }
            }
            other => clean.push(other),
        }
    }
    clean.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_env_files_literally() {
        let text = "# comment\n\nA=1\n  B=two words\nC=\"quoted\"\nD\nE\nF=x=y\n";
        let lookup = |key: &str| (key == "D").then(|| "from-env".to_string());
        let parsed = parse_env_file(text, lookup).unwrap();
        let expected = [
            ("A", Some("1")),
            ("B", Some("two words")),
            ("C", Some("\"quoted\"")),
            ("D", Some("from-env")),
            ("E", None),
            ("F", Some("x=y")),
        ];
        let expected: Vec<(String, Option<String>)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(str::to_string)))
            .collect();
        assert_eq!(parsed, expected);
    }

    #[test]
    fn refuses_keys_with_spaces() {
        assert_eq!(
            parse_env_file("A=1\nBAD KEY=2\n", |_| None),
            Err((2, "variable \"BAD KEY\" contains whitespace".to_string()))
        );
        assert!(parse_env_file("=1", |_| None).is_err());
    }

    #[test]
    fn resolves_paths_like_filepath_join() {
        let base = Path::new("/srv/app");
        assert_eq!(resolve_path(base, "./data", None), "/srv/app/data");
        assert_eq!(
            resolve_path(base, "../shared/x.env", None),
            "/srv/shared/x.env"
        );
        assert_eq!(resolve_path(base, "/etc/hosts", None), "/etc/hosts");
        assert_eq!(
            resolve_path(base, "~/certs", Some("/home/ops")),
            "/home/ops/certs"
        );
        assert_eq!(resolve_path(Path::new("."), "a.env", None), "a.env");
    }
}
