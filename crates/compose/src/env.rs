//! Environment files (`env_file:`) as the docker CLI reads them, and the paths in a compose
//! file that are relative to its directory.

use std::path::{Component, Path, PathBuf};

/// Variables in file order, each with its value.
pub type EnvVariables = Vec<(String, String)>;

/// Parses an env file like the docker CLI's `kvfile.Parse`: one `KEY=VALUE` a line, taken
/// literally (no quotes are removed, nothing is interpolated, trailing blanks are kept);
/// blank lines and lines starting with `#` are skipped; a line with a key alone takes the
/// variable's value from `lookup`, and is left out when `lookup` has none. Errors carry the
/// 1-based line number.
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
        if key.contains([' ', '\t']) {
            return Err((index + 1, format!("variable {key:?} contains whitespace")));
        }
        if let Some(value) = value.or_else(|| lookup(key)) {
            variables.push((key.to_string(), value));
        }
    }
    Ok(variables)
}

/// The one rule for an environment variable written without a value, `environment: [FOO]`
/// or `FOO:` with nothing after it (and `FOO` alone on a line of the dashboard's
/// Environment field, which is written as compose): it is `FOO` with the value `lookup`
/// gives, the deploying environment's, as in the docker CLI's loader (`updateEnvironment`).
/// When `lookup` has none, the docker CLI sends the bare name and the container gets no
/// variable at all; swarmkeeper refuses it instead (Err: why, and how to write it), so what
/// was meant is not silently lost. The server deploys with no shell: its `lookup` is empty,
/// so there a bare name is always refused. (An `env_file` line with a name alone keeps the
/// docker CLI's rule of [`parse_env_file`]: left out when unset.)
pub fn bare_variable(
    name: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    lookup(name).ok_or_else(|| {
        format!(
            "{name:?} has no value and none is set where it is deployed: write \
             {name}=VALUE ({name}= for an empty value)"
        )
    })
}

/// Where a bind mount's `source` points, as the docker CLI's `resolveVolumePaths` decides: a
/// leading `~` is the home directory (kept as written when none is known); an absolute path
/// is kept exactly as written, trailing `/` included; a relative one is joined to `base` and
/// cleaned like Go's `filepath.Join`.
pub fn resolve_bind_source(base: &Path, source: &str, home: Option<&str>) -> String {
    let expanded = match (source.starts_with('~'), home) {
        (true, Some(home)) => source.replacen('~', home, 1),
        _ => source.to_string(),
    };
    resolve_path(base, &expanded)
}

/// A file named in a compose file (`env_file`, a secret's or config's `file`): kept as
/// written when absolute, else joined to `base` and cleaned like Go's `filepath.Join`, as the
/// docker CLI's `absPath` does.
pub fn resolve_path(base: &Path, path: &str) -> String {
    if is_absolute(path) {
        return path.to_string();
    }
    let joined = base.join(path);
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
    let clean = clean.to_string_lossy().into_owned();
    if clean.is_empty() {
        ".".to_string()
    } else {
        clean
    }
}

/// Absolute on Unix (`/…`) or on Windows (`C:\…`, `C:/…`, `\\server\…`): a Windows client
/// may deploy to a Unix engine and the other way round.
fn is_absolute(path: &str) -> bool {
    let bytes = path.as_bytes();
    path.starts_with('/')
        || path.starts_with("\\\\")
        || (bytes.len() >= 3
            && bytes[0].is_ascii_alphabetic()
            && bytes[1] == b':'
            && matches!(bytes[2], b'\\' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_env_files_literally() {
        let text = "# comment\n\nA=1\n  B=two words \nC=\"quoted\"\nD\nE\nF=x=y\n";
        let lookup = |key: &str| (key == "D").then(|| "from-env".to_string());
        let parsed = parse_env_file(text, lookup).unwrap();
        let expected = [
            ("A", "1"),
            ("B", "two words "),
            ("C", "\"quoted\""),
            ("D", "from-env"),
            ("F", "x=y"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
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
    fn resolves_paths_like_the_docker_cli() {
        let base = Path::new("/srv/app");
        assert_eq!(resolve_path(base, "./data"), "/srv/app/data");
        assert_eq!(resolve_path(base, "../shared/x.env"), "/srv/shared/x.env");
        assert_eq!(resolve_path(base, "/etc/hosts"), "/etc/hosts");
        assert_eq!(resolve_path(base, "/etc/../etc/"), "/etc/../etc/");
        assert_eq!(resolve_path(Path::new("."), "a.env"), "a.env");
        assert_eq!(resolve_path(base, "C:\\data"), "C:\\data");
        assert_eq!(
            resolve_bind_source(base, "~/certs", Some("/home/ops")),
            "/home/ops/certs"
        );
        assert_eq!(
            resolve_bind_source(base, "~/certs", None),
            "/srv/app/~/certs"
        );
        assert_eq!(
            resolve_bind_source(base, "/var/lib/example/", None),
            "/var/lib/example/"
        );
        assert_eq!(resolve_bind_source(base, "./logs/", None), "/srv/app/logs");
    }
}
