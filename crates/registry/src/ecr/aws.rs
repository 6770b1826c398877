//! AWS credentials: a given access key, or the default chain's environment and shared-file
//! steps as the AWS CLI and SDKs read them.
//!
//! Chain order: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`); then
//! the profile (`AWS_PROFILE`, else `default`) in the shared credentials file
//! (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`, section `[NAME]`); then in the
//! config file (`AWS_CONFIG_FILE`, else `~/.aws/config`, section `[profile NAME]` or
//! `[default]`). Keys are `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`.
//! The chain's container and instance-metadata steps (ECS task roles, EC2 instance profiles)
//! are not read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use swarmkeeper_auth::Secret;

/// An AWS access key.
#[derive(Clone, Debug)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

impl AwsCredentials {
    /// A long-term access key (or a temporary one with its session token).
    pub fn new(
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<Secret>,
        session_token: Option<Secret>,
    ) -> AwsCredentials {
        AwsCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token,
        }
    }

    /// The default chain from this process's environment; `profile` overrides `AWS_PROFILE`.
    pub fn from_default_chain(profile: Option<&str>) -> Result<AwsCredentials, String> {
        AwsCredentials::from_chain(profile, &|name| std::env::var(name).ok())
    }

    /// The default chain with `env` for the environment (so tests need not change the
    /// process's). Errors name the files and profile tried, never a value.
    pub fn from_chain(
        profile: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AwsCredentials, String> {
        let var = |name: &str| env(name).filter(|v| !v.is_empty());
        if profile.is_none() {
            if let (Some(id), Some(secret)) =
                (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
            {
                return Ok(AwsCredentials::new(
                    id,
                    secret,
                    var("AWS_SESSION_TOKEN").map(Secret::new),
                ));
            }
        }
        let profile = profile
            .map(str::to_string)
            .or_else(|| var("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_string());
        let home = var("HOME").map(PathBuf::from);
        let file = |variable: &str, default: &str| {
            var(variable)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|h| h.join(default)))
        };
        let mut tried = Vec::new();
        let sources = [
            (
                file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
                profile.clone(),
            ),
            (
                file("AWS_CONFIG_FILE", ".aws/config"),
                if profile == "default" {
                    "default".to_string()
                } else {
                    format!("profile {profile}")
                },
            ),
        ];
        for (path, section) in sources {
            let Some(path) = path else { continue };
            tried.push(path.display().to_string());
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let sections = parse_ini(&text);
            let Some(keys) = sections.get(&section) else {
                continue;
            };
            if let (Some(id), Some(secret)) = (
                keys.get("aws_access_key_id"),
                keys.get("aws_secret_access_key"),
            ) {
                return Ok(AwsCredentials::new(
                    id.clone(),
                    secret.clone(),
                    keys.get("aws_session_token").cloned().map(Secret::new),
                ));
            }
        }
        Err(format!(
            "no AWS credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set and profile {profile:?} has no access key in {}",
            if tried.is_empty() { "any file (HOME is not set)".to_string() } else { tried.join(" or ") }
        ))
    }
}

/// Sections of an AWS INI file: `[name]` then `key = value` lines; `#` and `;` start comments.
fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            sections.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            sections
                .entry(section.clone())
                .or_default()
                .insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn environment_first() {
        let c = AwsCredentials::from_chain(
            None,
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKIA1"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                ("AWS_SESSION_TOKEN", "t"),
            ]),
        )
        .unwrap();
        assert_eq!(c.access_key_id, "AKIA1");
        assert_eq!(c.session_token.unwrap().expose(), "t");
        assert!(!format!("{:?}", c.secret_access_key).contains('s'));
    }

    #[test]
    fn shared_files_and_profiles() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(".aws")).unwrap();
        std::fs::write(
            dir.path().join(".aws/credentials"),
            "# comment\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n[ci]\naws_access_key_id=AKIACI\naws_secret_access_key=c\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(".aws/config"),
            "[default]\nregion = eu-west-1\n[profile  ops]\naws_access_key_id = AKIAOPS\naws_secret_access_key = o\n",
        )
        .unwrap();
        let home = dir.path().to_str().unwrap();
        let get = |profile: Option<&str>, extra: &[(&str, &str)]| {
            let mut pairs = vec![("HOME", home)];
            pairs.extend_from_slice(extra);
            AwsCredentials::from_chain(profile, &env(&pairs)).map(|c| c.access_key_id)
        };
        assert_eq!(get(None, &[]).unwrap(), "AKIADEFAULT");
        assert_eq!(get(None, &[("AWS_PROFILE", "ci")]).unwrap(), "AKIACI");
        assert_eq!(get(Some("ops"), &[]).unwrap(), "AKIAOPS");
        // An explicit profile beats the environment's keys.
        assert_eq!(
            get(
                Some("ci"),
                &[
                    ("AWS_ACCESS_KEY_ID", "AKIAENV"),
                    ("AWS_SECRET_ACCESS_KEY", "e")
                ]
            )
            .unwrap(),
            "AKIACI"
        );
        let err = get(Some("nope"), &[]).unwrap_err();
        assert!(
            err.contains("profile \"nope\"") && err.contains(".aws/credentials"),
            "{err}"
        );
        assert!(!err.contains("AKIA"), "{err}");
    }
}
