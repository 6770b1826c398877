//! What can go wrong talking to a registry, each kind apart so that callers can act on it
//! (back off on 429, say "wrong credentials", "no such tag").

use std::time::{Duration, SystemTime};

use crate::credentials::CredentialsError;
use crate::ecr::EcrError;

/// A registry call that did not give an answer. Messages name the registry and what it said;
/// they never hold a credential.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// HTTP 429 (Docker Hub's pull limit, any registry's rate limit).
    #[error("{registry}: too many requests (HTTP 429){}", retry_hint(.retry_after))]
    TooManyRequests {
        registry: String,
        retry_after: Option<Duration>,
    },
    /// The registry or its token server refused the credentials (or asked for some and none
    /// were given): HTTP 401 or 403.
    #[error("{registry}: {message}")]
    Unauthorized { registry: String, message: String },
    /// The repository or tag does not exist (HTTP 404, `MANIFEST_UNKNOWN`, `NAME_UNKNOWN`).
    #[error("{reference}: not found in the registry ({message})")]
    NotFound { reference: String, message: String },
    /// Any other error answer, with the registry's error codes when it sent them.
    #[error("{registry}: HTTP {status}: {message}{}", retry_hint(.retry_after))]
    Registry {
        registry: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// No answer: DNS, connection refused, TLS, timeout.
    #[error("{registry}: cannot be reached: {message}")]
    Unreachable { registry: String, message: String },
    /// An answer that breaks the protocol (bad JSON, a bad digest, a challenge without realm).
    #[error("{registry}: unexpected answer: {message}")]
    Protocol { registry: String, message: String },
    /// The credentials could not be found (config file, helper).
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// ECR gave no token (AWS credentials, AWS's refusal, its endpoint unreachable).
    #[error(transparent)]
    Ecr(#[from] EcrError),
    /// The image reference is not one docker accepts.
    #[error("image {reference:?}: {message}")]
    Reference { reference: String, message: String },
    /// The HTTP client could not be set up (TLS roots).
    #[error("HTTP client setup: {0}")]
    Setup(String),
}

impl RegistryError {
    /// Whether the operator must fix something on their side: credentials refused or not to
    /// be had, a repository or tag the registry does not know, a reference docker would not
    /// accept. The other errors are the registry's or the network's state (unreachable,
    /// throttled, failing) and may pass by themselves. The CLI exits 2 for the first kind,
    /// 3 for the second; the server answers 400 and 502.
    pub fn is_bad_input(&self) -> bool {
        match self {
            RegistryError::Unauthorized { .. }
            | RegistryError::NotFound { .. }
            | RegistryError::Credentials(_)
            | RegistryError::Reference { .. } => true,
            RegistryError::Ecr(e) => match e {
                EcrError::Aws { status, .. } => *status < 500,
                EcrError::Credentials(_) | EcrError::Signing(_) => true,
                EcrError::Unreachable { .. } | EcrError::Protocol { .. } => false,
            },
            RegistryError::TooManyRequests { .. }
            | RegistryError::Registry { .. }
            | RegistryError::Unreachable { .. }
            | RegistryError::Protocol { .. }
            | RegistryError::Setup(_) => false,
        }
    }

    /// How long the registry asked to wait (`Retry-After`), if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RegistryError::TooManyRequests { retry_after, .. }
            | RegistryError::Registry { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

fn retry_hint(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(", retry after {}s", d.as_secs()),
        None => String::new(),
    }
}

/// Reads `Retry-After`: delta-seconds or an HTTP date (RFC 9110 §10.2.3), relative to `now`.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = httpdate::parse_http_date("Sun, 29 Nov 2026 14:00:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 14:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Sun, 29 Nov 2026 13:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn messages() {
        let e = RegistryError::TooManyRequests {
            registry: "registry-1.docker.io".into(),
            retry_after: Some(Duration::from_secs(60)),
        };
        assert_eq!(
            e.to_string(),
            "registry-1.docker.io: too many requests (HTTP 429), retry after 60s"
        );
        assert_eq!(e.retry_after(), Some(Duration::from_secs(60)));
    }
}
