//! A distribution registry's push notifications, read: which tags a push moved. The registry
//! POSTs an envelope (`application/vnd.docker.distribution.events.v1+json`) to each endpoint
//! of its `notifications:` config; see the distribution project's `notifications.md`.
//!
//! A notification only says which tags to check: what is rolled out is always the digest the
//! registry answers to the check, never one named here. The digest it names is what the check
//! waits for: distribution sends the event when the manifest is stored, and may send it before
//! the tag points at it, so a check that still reads the old digest is repeated soon
//! ([`crate::Tracker::pushed`]).

use std::fmt;

use serde::Deserialize;
use swarmkeeper_reference::Digest;

/// A tag a push moved: `repository` is the path within the registry (`team/app`), as the
/// envelope names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedTag {
    pub repository: String,
    pub tag: String,
    /// The registry host the pusher used (`request.host`), when the envelope names it.
    pub host: Option<String>,
    /// The manifest pushed (`target.digest`), when the envelope names a valid one.
    pub digest: Option<Digest>,
}

/// An envelope that cannot be read; the message names where (line and column) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeError(pub String);

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not a registry notification envelope: {}", self.0)
    }
}

impl std::error::Error for EnvelopeError {}

#[derive(Deserialize)]
struct Envelope {
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: Target,
    #[serde(default)]
    request: Request,
}

#[derive(Deserialize, Default)]
struct Target {
    #[serde(default)]
    repository: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    digest: String,
}

#[derive(Deserialize, Default)]
struct Request {
    #[serde(default)]
    host: String,
}

/// The tags an envelope's `push` events moved, each once, in order (with the digest the last
/// push that names one named). Pushes by digest only (no tag) and other actions (`pull`,
/// `delete`, `mount`) move no tag and are skipped.
pub fn pushed_tags(body: &[u8]) -> Result<Vec<PushedTag>, EnvelopeError> {
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| EnvelopeError(e.to_string()))?;
    let mut pushed: Vec<PushedTag> = Vec::new();
    for event in envelope.events {
        if event.action != "push" || event.target.tag.is_empty() {
            continue;
        }
        let tag = PushedTag {
            repository: event.target.repository,
            tag: event.target.tag,
            host: Some(event.request.host).filter(|h| !h.is_empty()),
            digest: Digest::parse(&event.target.digest).ok(),
        };
        if tag.repository.is_empty() {
            return Err(EnvelopeError(format!(
                "a push of tag {:?} names no target.repository",
                tag.tag
            )));
        }
        match pushed
            .iter_mut()
            .find(|p| p.repository == tag.repository && p.tag == tag.tag && p.host == tag.host)
        {
            Some(seen) => {
                if tag.digest.is_some() {
                    seen.digest = tag.digest;
                }
            }
            None => pushed.push(tag),
        }
    }
    Ok(pushed)
}

impl crate::Followed {
    /// Whether a push moved the tag this service follows: same repository path and tag. The
    /// host is not compared (a registry behind a proxy or known by several names reports the
    /// name it was pushed to): a match only brings a check forward.
    pub fn moved_by(&self, push: &PushedTag) -> bool {
        self.tag.path() == push.repository && self.tag.tag() == Some(push.tag.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Debian's docker-registry sent to the lab's endpoint on `docker push`.
    const PUSH: &str = r#"{"events":[{"id":"9c8f","timestamp":"2026-11-26T14:00:00Z","action":"push",
        "target":{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":528,
        "digest":"sha256:47770a92e9f38a1b6674300f1fdff5a366cafa83c131fc25b4eda10771f372c5","length":528,
        "repository":"team/app","url":"http://169.254.0.1:5000/v2/team/app/manifests/sha256:47770a92e9f38a1b6674300f1fdff5a366cafa83c131fc25b4eda10771f372c5","tag":"1"},
        "request":{"id":"r1","addr":"169.254.0.2:40000","host":"169.254.0.1:5000","method":"PUT","useragent":"docker/20.10"},
        "actor":{"name":"ci"},"source":{"addr":"host:5000","instanceID":"i1"}},
        {"action":"pull","target":{"repository":"team/app","tag":"1"}},
        {"action":"push","target":{"repository":"team/app","digest":"sha256:00"}},
        {"action":"push","target":{"repository":"team/app","tag":"1"},"request":{"host":"169.254.0.1:5000"}}]}"#;

    #[test]
    fn reads_the_tags_pushes_moved() {
        let tags = pushed_tags(PUSH.as_bytes()).unwrap();
        assert_eq!(
            tags,
            [PushedTag {
                repository: "team/app".into(),
                tag: "1".into(),
                host: Some("169.254.0.1:5000".into()),
                digest: Some(
                    Digest::parse(
                        "sha256:47770a92e9f38a1b6674300f1fdff5a366cafa83c131fc25b4eda10771f372c5"
                    )
                    .unwrap()
                ),
            }]
        );
        let followed = crate::followed("registry.example/team/app:1").unwrap();
        assert!(followed.moved_by(&tags[0]));
        let other = crate::followed("registry.example/team/app:2").unwrap();
        assert!(!other.moved_by(&tags[0]));
        let hub = crate::followed("team/app:1").unwrap();
        assert!(hub.moved_by(&tags[0]), "the path is compared, not the host");
    }

    #[test]
    fn malformed_envelopes_say_where() {
        let error = pushed_tags(b"{\"events\": [").unwrap_err();
        assert!(error.to_string().contains("line 1 column 12"), "{error}");
        assert!(pushed_tags(b"{}")
            .unwrap_err()
            .to_string()
            .contains("events"));
        assert!(
            pushed_tags(br#"{"events":[{"action":"push","target":{"tag":"1"}}]}"#)
                .unwrap_err()
                .to_string()
                .contains("repository")
        );
        assert_eq!(pushed_tags(br#"{"events":[]}"#).unwrap(), []);
    }
}
