//! Image references and content digests, parsed as docker parses them.
//!
//! The grammar is the one of `github.com/distribution/reference` (what `docker pull`,
//! `docker service create` and `docker stack deploy` accept):
//!
//! ```text
//! reference      := name [ ":" tag ] [ "@" digest ]
//! name           := [ domain "/" ] path-component { "/" path-component }
//! domain         := domain-component { "." domain-component } [ ":" port ]  |  "[" ipv6 "]" [ ":" port ]
//! path-component := [a-z0-9]+ { separator [a-z0-9]+ }      separator := "." | "_" | "__" | "-"+
//! tag            := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
//! digest         := algorithm ":" encoded
//! ```
//!
//! Normalisation is docker's: a first component that has no `.` or `:`, is not `localhost`
//! and is lowercase is not a domain, so the domain is `docker.io`; `index.docker.io` is
//! `docker.io`; a one-component path on Docker Hub lives under `library/`. The name (domain and
//! path) has at most 255 characters. A reference with neither tag nor digest means tag
//! `latest` ([`Reference::tag_or_latest`]).
//!
//! Pure: no I/O. Used by the registry client (what to ask which registry) and by the pure
//! auto-deploy decisions (which tag a service follows, which digest it runs).

use std::fmt;

/// Docker Hub's domain in a normalised reference.
pub const DOCKER_HUB_DOMAIN: &str = "docker.io";
/// The path prefix of Docker Hub's official images (`busybox` is `docker.io/library/busybox`).
pub const OFFICIAL_REPOSITORY_PREFIX: &str = "library/";
/// The tag a reference without tag or digest means.
pub const DEFAULT_TAG: &str = "latest";

const NAME_MAX_LEN: usize = 255;
const TAG_MAX_LEN: usize = 128;

/// Why a text is not an image reference. The messages follow docker's (`invalid reference
/// format: …`) so operators recognise them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format: {0:?} is empty")]
    Empty(String),
    #[error("invalid reference format: repository name {0:?} must be lowercase")]
    Uppercase(String),
    #[error("invalid reference format: {reference:?}: {why}")]
    Format {
        reference: String,
        why: &'static str,
    },
    #[error("invalid reference format: repository name {0:?} must have at most 255 characters")]
    NameTooLong(String),
    #[error("invalid repository name {0:?}: cannot specify 64-byte hexadecimal strings")]
    HexIdentifier(String),
    #[error("invalid digest {digest:?}: {why}")]
    Digest { digest: String, why: &'static str },
}

/// A content digest, `ALGORITHM:ENCODED`, e.g. `sha256:…` (64 lowercase hex digits).
///
/// Algorithms other than `sha256`/`sha384`/`sha512` are accepted when they follow the grammar
/// (`[a-z0-9]+([+._-][a-z0-9]+)*`), as the OCI image spec allows; the encoded part of the known
/// ones must have their exact lowercase-hex length.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(String);

impl Digest {
    /// Parses `sha256:…`. Errors: a missing `:`, a bad algorithm, an encoded part of the wrong
    /// length or alphabet.
    pub fn parse(text: &str) -> Result<Digest, ReferenceError> {
        let bad = |why| ReferenceError::Digest {
            digest: text.to_string(),
            why,
        };
        let (algorithm, encoded) = text
            .split_once(':')
            .ok_or_else(|| bad("expected ALGORITHM:HEX"))?;
        let algorithm_ok = !algorithm.is_empty()
            && algorithm.split(['+', '.', '_', '-']).all(|part| {
                !part.is_empty()
                    && part
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if !algorithm_ok {
            return Err(bad("the algorithm must be lowercase letters and digits"));
        }
        let hex_len = match algorithm {
            "sha256" => Some(64),
            "sha384" => Some(96),
            "sha512" => Some(128),
            _ => None,
        };
        match hex_len {
            Some(len) => {
                if encoded.len() != len
                    || !encoded
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
                {
                    return Err(bad(
                        "the encoded part must be lowercase hex of the algorithm's length",
                    ));
                }
            }
            None => {
                if encoded.is_empty()
                    || !encoded
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'))
                {
                    return Err(bad("the encoded part must be [a-zA-Z0-9=_-]+"));
                }
            }
        }
        Ok(Digest(text.to_string()))
    }

    /// The `sha256:` digest of `hex`, 64 lowercase hex digits (what a SHA-256 of content gives).
    pub fn sha256_from_hex(hex: &str) -> Result<Digest, ReferenceError> {
        Digest::parse(&format!("sha256:{hex}"))
    }

    /// `sha256:…` in full.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The algorithm, e.g. `sha256`.
    pub fn algorithm(&self) -> &str {
        self.0.split_once(':').map_or("", |(a, _)| a)
    }

    /// The encoded part (hex for sha256).
    pub fn encoded(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, e)| e)
    }

    /// `sha256:` and the first 12 hex digits, as `docker images --digests` abbreviates.
    pub fn short(&self) -> String {
        let encoded = self.encoded();
        format!("{}:{}", self.algorithm(), &encoded[..encoded.len().min(12)])
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

/// As its text, `"sha256:…"`; parsing checks the grammar.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
        let text = String::deserialize(deserializer)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Digest {
    type Err = ReferenceError;
    fn from_str(text: &str) -> Result<Digest, ReferenceError> {
        Digest::parse(text)
    }
}

/// A normalised image reference: domain, repository path, optional tag, optional digest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises an image reference as docker does (`busybox` is
    /// `docker.io/library/busybox`, `localhost:5000/app:1` keeps its domain).
    pub fn parse(text: &str) -> Result<Reference, ReferenceError> {
        let format = |why| ReferenceError::Format {
            reference: text.to_string(),
            why,
        };
        if text.is_empty() {
            return Err(ReferenceError::Empty(text.to_string()));
        }
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ReferenceError::HexIdentifier(text.to_string()));
        }
        let (name_tag, digest) = match text.split_once('@') {
            Some((name_tag, digest)) => (name_tag, Some(Digest::parse(digest)?)),
            None => (text, None),
        };
        // A tag follows the last `:` after the last `/`; a `:` before it belongs to a port.
        let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name_tag[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                (&name_tag[..at], Some(&name_tag[at + 1..]))
            }
            None => (name_tag, None),
        };
        if let Some(tag) = tag {
            if !valid_tag(tag) {
                return Err(format(
                    "a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        let (domain, path) = split_domain(name);
        if !valid_domain(domain) {
            return Err(format("the registry's host name is not valid"));
        }
        if path.is_empty() {
            return Err(format("the repository path is empty"));
        }
        for component in path.split('/') {
            if component.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(ReferenceError::Uppercase(name.to_string()));
            }
            if !valid_path_component(component) {
                return Err(format(
                    "each repository path component is lowercase letters and digits, separated by ., _, __ or dashes",
                ));
            }
        }
        let path = if domain == DOCKER_HUB_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_REPOSITORY_PREFIX}{path}")
        } else {
            path.to_string()
        };
        if domain.len() + 1 + path.len() > NAME_MAX_LEN {
            return Err(ReferenceError::NameTooLong(name.to_string()));
        }
        Ok(Reference {
            domain: domain.to_string(),
            path,
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The registry's domain as written (with its port), `docker.io` for Docker Hub.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry, e.g. `library/busybox` or `team/app`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The tag as written, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest as written, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The tag a pull of this reference follows: the tag written, else `latest` when no digest
    /// is written either. `None` for a digest-only reference (`app@sha256:…`): it follows nothing.
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some(DEFAULT_TAG),
            (None, Some(_)) => None,
        }
    }

    /// `domain/path`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The same repository at `tag`, without a digest.
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same reference pinned to `digest` (its tag kept), as Swarm records `image:tag@sha256:…`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The short form docker prints: `busybox:1`, `team/app:1`, `localhost:5000/app:1`.
    pub fn familiar(&self) -> String {
        let mut out = if self.domain == DOCKER_HUB_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_REPOSITORY_PREFIX)
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        };
        push_tag_digest(&mut out, self);
        out
    }
}

fn push_tag_digest(out: &mut String, reference: &Reference) {
    if let Some(tag) = &reference.tag {
        out.push(':');
        out.push_str(tag);
    }
    if let Some(digest) = &reference.digest {
        out.push('@');
        out.push_str(digest.as_str());
    }
}

/// The fully qualified form, `docker.io/library/busybox:1@sha256:…`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.name();
        push_tag_digest(&mut out, self);
        f.write_str(&out)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(text: &str) -> Result<Reference, ReferenceError> {
        Reference::parse(text)
    }
}

/// docker's `splitDockerDomain`: the first component is a domain when it has a `.` or `:`, is
/// `localhost`, or has an uppercase letter (a path component cannot).
fn split_domain(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            if first == "index.docker.io" {
                (DOCKER_HUB_DOMAIN, rest)
            } else {
                (first, rest)
            }
        }
        _ => (DOCKER_HUB_DOMAIN, name),
    }
}

fn valid_domain(domain: &str) -> bool {
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                    return false;
                }
                match after {
                    "" => return true,
                    _ => match after.strip_prefix(':') {
                        Some(port) => ("", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match domain.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (domain, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if domain.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|component| {
            !component.is_empty()
                && component
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !component.starts_with('-')
                && !component.ends_with('-')
        })
}

fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    !tag.is_empty()
        && tag.len() <= TAG_MAX_LEN
        && word(tag.as_bytes()[0])
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-')
}

#[cfg(test)]
mod tests;
