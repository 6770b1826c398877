//! Which environment values are credentials, and how a change shows them: never by value.
//!
//! One rule for every place a service's environment is shown: the dashboard's form and its
//! compose text, the change list of a form or an edit, the stack diff page, a deploy's progress
//! lines (which any logged-in viewer reads on the job page) and `swarmkeeper diff` (whose output
//! lands in CI logs). Pure.

use serde_json::Value;

use crate::diff::FieldChange;

/// What is shown for the value of a variable that [`holds_credential`]: angle brackets no
/// password generator writes (nor a URL, a path, a number), and which YAML reads as a plain
/// string.
pub const HIDDEN: &str = "<hidden>";

/// What a change shows for the new value of a variable that [`holds_credential`] when the
/// value is new or differs from the old one (shown as [`HIDDEN`]).
pub const CHANGED: &str = "<changed>";

/// The parts of a variable's name that say it holds a credential, matched anywhere in the
/// name, case-insensitively. The words Portainer, gitleaks' generic-secret rule and docker
/// scout's secret scan key on (`password`, `secret`, `token`, `api_key`, `private_key`,
/// `credential`, `access_key`, `auth`), kept short: `DB_PASSWORD`, `DB_PASS`,
/// `SWARMKEEPER_ADMIN_PASSWORD`, `API_TOKEN`, `AWS_SECRET_ACCESS_KEY`, `GITHUB_APIKEY`,
/// `BASIC_AUTH` all hold one; with `PWD` (the MySQL client's `MYSQL_PWD`) and `DSN` (Sentry's
/// `SENTRY_DSN` carries its key). A name that merely contains one (`PWD`, the shell's working
/// directory) is hidden too: hiding a harmless value costs a retype, showing a password does
/// not come back.
pub const CREDENTIAL_WORDS: &[&str] = &[
    "PASS",
    "PWD",
    "DSN",
    "SECRET",
    "TOKEN",
    "API_KEY",
    "APIKEY",
    "PRIVATE_KEY",
    "CREDENTIAL",
    "ACCESS_KEY",
    "AUTH",
];

/// Whether an environment variable named `name` holds a credential by its name
/// ([`CREDENTIAL_WORDS`]).
pub fn holds_credential(name: &str) -> bool {
    let name = name.to_ascii_uppercase();
    CREDENTIAL_WORDS.iter().any(|word| name.contains(word))
}

/// A `KEY=VALUE` entry as shown: `KEY={shown}` when `KEY` [`holds_credential`] and the value
/// is not empty; else, whatever the name, the password of a URL in the value replaced
/// (`DATABASE_URL=postgres://app:{shown}@db/app`, RFC 3986's `userinfo`); the entry as it is
/// otherwise.
pub fn shown_entry(entry: &str, shown: &str) -> String {
    match entry.split_once('=') {
        Some((key, value)) if !value.is_empty() && holds_credential(key) => {
            format!("{key}={shown}")
        }
        Some((key, value)) => match url_password(value) {
            Some(at) => format!("{key}={}{shown}{}", &value[..at.start], &value[at.end..]),
            None => entry.to_owned(),
        },
        None => entry.to_owned(),
    }
}

/// Where the password of the first URL in `value` is (`scheme://user:PASSWORD@host…`), when
/// it has a non-empty one.
fn url_password(value: &str) -> Option<std::ops::Range<usize>> {
    let start = value.find("://")? + 3;
    let authority_end = value[start..]
        .find(['/', '?', '#', ' '])
        .map_or(value.len(), |end| start + end);
    let userinfo_end = start + value[start..authority_end].rfind('@')?;
    let password = start + value[start..userinfo_end].find(':')? + 1;
    (password < userinfo_end).then_some(password..userinfo_end)
}

/// Where the service environment is, as a path of [`crate::changes`].
const ENV_PATH: &str = "TaskTemplate.ContainerSpec.Env";

/// `change` as it may be shown: in its old value every credential of the service's
/// environment ([`ENV_PATH`], whether the change is the whole spec, a part holding it, the
/// list or one entry) is [`HIDDEN`]; in its new value a credential the old value had exactly
/// is [`HIDDEN`] too, any other [`CHANGED`]. So a change list says that a credential was added,
/// changed or removed, and shows neither value.
pub fn shown(change: &FieldChange) -> FieldChange {
    let Some(pointer) = env_pointer(&change.path) else {
        return change.clone();
    };
    let entries = |value: &Option<Value>| -> Vec<String> {
        match value.as_ref().and_then(|v| v.pointer(&pointer)) {
            Some(Value::String(entry)) => vec![entry.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    };
    let was = entries(&change.before);
    let hide = |value: &Option<Value>, changed: &dyn Fn(&str) -> bool| {
        let mut value = value.clone();
        let mut hide_one = |entry: &mut Value| {
            if let Some(text) = entry.as_str() {
                let shown = if changed(text) { CHANGED } else { HIDDEN };
                *entry = Value::String(shown_entry(text, shown));
            }
        };
        match value.as_mut().and_then(|v| v.pointer_mut(&pointer)) {
            Some(Value::Array(items)) => items.iter_mut().for_each(&mut hide_one),
            Some(entry) => hide_one(entry),
            None => {}
        }
        value
    };
    FieldChange {
        path: change.path.clone(),
        before: hide(&change.before, &|_| false),
        after: hide(&change.after, &|entry| !was.iter().any(|w| w == entry)),
    }
}

/// The JSON pointer, inside the values of a change at `path`, of the environment or of its
/// entry: `""` for the list or one entry (`…Env[2]`), `/ContainerSpec/Env` for `TaskTemplate`,
/// the whole path for the spec; `None` when the change holds no environment.
fn env_pointer(path: &str) -> Option<String> {
    if let Some(rest) = path.strip_prefix(ENV_PATH) {
        return (rest.is_empty() || rest.starts_with('[')).then(String::new);
    }
    let rest = if path.is_empty() {
        ENV_PATH
    } else {
        ENV_PATH.strip_prefix(path)?.strip_prefix('.')?
    };
    Some(format!("/{}", rest.replace('.', "/")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{changes, describe_change};
    use serde_json::json;

    #[test]
    fn a_credential_is_known_by_its_name() {
        for name in [
            "DB_PASSWORD",
            "SWARMKEEPER_ADMIN_PASSWORD",
            "mysql_root_passwd",
            "JWT_SECRET",
            "API_TOKEN",
            "STRIPE_API_KEY",
            "GITHUB_APIKEY",
            "SSH_PRIVATE_KEY",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "AWS_ACCESS_KEY_ID",
            "BASIC_AUTH",
            "OAuth_Client",
        ] {
            assert!(holds_credential(name), "{name}");
        }
        // `TOKENS_PER_S` is a rate, and hidden all the same: a name is all the rule reads.
        for name in [
            "PLAIN",
            "DB_HOST",
            "PATH",
            "KEYBOARD",
            "LOG_LEVEL",
            "TOKENS_PER_S",
        ] {
            assert_eq!(holds_credential(name), name == "TOKENS_PER_S", "{name}");
        }
        assert_eq!(
            shown_entry("DB_PASSWORD=s3cret", HIDDEN),
            "DB_PASSWORD=<hidden>"
        );
        assert_eq!(shown_entry("API_TOKEN=", HIDDEN), "API_TOKEN=");
        assert_eq!(shown_entry("BARE_TOKEN", HIDDEN), "BARE_TOKEN");
        assert_eq!(shown_entry("PLAIN=1", HIDDEN), "PLAIN=1");
        // Tryout 13 finding 3: more names, and a URL's password whatever the name.
        for name in ["DB_PASS", "REDIS_PASS", "MYSQL_PWD", "SENTRY_DSN"] {
            assert!(holds_credential(name), "{name}");
        }
        for (entry, shown) in [
            (
                "DATABASE_URL=postgres://app:s3cret@db:5432/app",
                "DATABASE_URL=postgres://app:<hidden>@db:5432/app",
            ),
            (
                "CACHE=redis://:s3cret@cache",
                "CACHE=redis://:<hidden>@cache",
            ),
            (
                "UPSTREAM=http://u:p@w@proxy/x?y=a@b",
                "UPSTREAM=http://u:<hidden>@proxy/x?y=a@b",
            ),
            (
                "SITE=https://user@example.com/",
                "SITE=https://user@example.com/",
            ),
            (
                "SITE=https://example.com/a:b@c",
                "SITE=https://example.com/a:b@c",
            ),
            ("EMPTY=ftp://user:@host", "EMPTY=ftp://user:@host"),
            ("NOTURL=a:b@c", "NOTURL=a:b@c"),
        ] {
            assert_eq!(shown_entry(entry, HIDDEN), shown, "{entry}");
        }
    }

    fn spec(env: &[&str]) -> Value {
        json!({"Name": "db", "TaskTemplate": {"ContainerSpec": {"Image": "postgres", "Env": env}}})
    }

    /// Every line `describe_change` makes of the change from `current` to `desired`.
    fn lines(desired: &Value, current: &Value) -> Vec<String> {
        changes(desired, current)
            .iter()
            .map(describe_change)
            .collect()
    }

    #[test]
    fn a_change_of_the_list_says_which_credential_changed_and_shows_no_value() {
        let current = spec(&["DB_PASSWORD=s3cret", "API_TOKEN=t0k", "PLAIN=1"]);
        let desired = spec(&["DB_PASSWORD=n3w", "PLAIN=2"]);
        assert_eq!(
            lines(&desired, &current),
            [
                "TaskTemplate.ContainerSpec.Env: +DB_PASSWORD=<changed> +PLAIN=2 \
              -DB_PASSWORD=<hidden> -API_TOKEN=<hidden> -PLAIN=1"
            ]
        );
        // Kept as it was: hidden on both sides, so only the plain change is listed.
        let desired = spec(&["DB_PASSWORD=s3cret", "API_TOKEN=t0k", "PLAIN=2"]);
        assert_eq!(
            lines(&desired, &current),
            ["TaskTemplate.ContainerSpec.Env[2]: PLAIN=1 → PLAIN=2"]
        );
    }

    #[test]
    fn a_change_of_one_entry_shows_neither_value() {
        let current = spec(&["DB_PASSWORD=s3cret", "PLAIN=1"]);
        let desired = spec(&["DB_PASSWORD=n3w", "PLAIN=1"]);
        assert_eq!(
            lines(&desired, &current),
            ["TaskTemplate.ContainerSpec.Env[0]: DB_PASSWORD=<hidden> → DB_PASSWORD=<changed>"]
        );
    }

    #[test]
    fn a_change_that_holds_the_whole_environment_hides_it_too() {
        let with = spec(&["DB_PASSWORD=s3cret", "PLAIN=1"]);
        for (path, before, after) in [
            ("", None, Some(with.clone())),
            ("TaskTemplate", Some(with["TaskTemplate"].clone()), None),
            (
                "TaskTemplate.ContainerSpec",
                None,
                Some(with["TaskTemplate"]["ContainerSpec"].clone()),
            ),
        ] {
            let change = FieldChange {
                path: path.into(),
                before,
                after,
            };
            let shown = shown(&change);
            let text = format!(
                "{} {:?} {:?}",
                describe_change(&change),
                shown.before,
                shown.after
            );
            assert!(!text.contains("s3cret"), "{path}: {text}");
            assert!(text.contains("DB_PASSWORD=<"), "{path}: {text}");
            assert!(text.contains("PLAIN=1"), "{path}: {text}");
        }
        // A change elsewhere is shown as it is.
        let image = FieldChange {
            path: "TaskTemplate.ContainerSpec.Image".into(),
            before: Some(json!("app:1")),
            after: Some(json!("app:2")),
        };
        assert_eq!(shown(&image), image);
        let not_env = FieldChange {
            path: "TaskTemplate.ContainerSpec.Envoy".into(),
            before: None,
            after: Some(json!(["SECRET=x"])),
        };
        assert_eq!(shown(&not_env), not_env);
    }
}
