//! A credential in memory: never printed, never in `Debug`, never serialised by accident.
//! Registry credentials and alert channels' webhook URLs, tokens and passwords alike.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};

/// A password, token, key or a URL that carries one. `Debug` shows `Secret(***)`; there is
/// no `Display` and no `Serialize`, so a secret reaches a log, a page or a JSON answer only
/// through [`Secret::expose`] (or [`Secret::serialize_exposed`], for the settings the server
/// seals before it stores them), which names the place where it leaves. It deserialises from
/// a plain string: a form or a JSON body gives it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The credential itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is the empty string (docker's "not set").
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// For `#[serde(serialize_with)]`: the secret as its plain string, in a value that is
    /// sealed before it is stored (an alert channel's settings).
    pub fn serialize_exposed<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&secret.0)
    }

    /// [`Secret::serialize_exposed`] for an optional secret.
    pub fn serialize_exposed_option<S: Serializer>(
        secret: &Option<Secret>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        secret.as_ref().map(Secret::expose).serialize(s)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(***))");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn it_reads_from_a_string_and_is_written_only_when_asked() {
        #[derive(Serialize, Deserialize)]
        struct Settings {
            #[serde(serialize_with = "Secret::serialize_exposed")]
            url: Secret,
            #[serde(serialize_with = "Secret::serialize_exposed_option")]
            token: Option<Secret>,
        }
        let s: Settings =
            serde_json::from_str(r#"{"url": "https://x/T0K3N", "token": null}"#).unwrap();
        assert_eq!(s.url.expose(), "https://x/T0K3N");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"url":"https://x/T0K3N","token":null}"#
        );
    }
}
