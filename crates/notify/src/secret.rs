//! A value that must not show up in logs, errors or pages.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A webhook URL with its token, an SMTP password, an ntfy token. `Debug` prints
/// `Secret(***)` and there is no `Display`; [`Secret::expose`] is the one way to the text, for
/// the request that needs it. Serialises as the plain string: the server stores channels
/// encrypted, like registry credentials, and never sends them back.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
