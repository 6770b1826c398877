//! Image references as specs name them.

use std::fmt;

use serde::Serialize;

/// An image reference split at its digest: Swarm pins `app:1` as `app:1@sha256:…`, which is
/// `name` `app:1` and `digest` `sha256:…`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct ImageRef {
    /// The reference without its digest, as written: `registry:5000/app:1`, `app`, ….
    pub name: String,
    /// `sha256:…`, when the reference pins one.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Any text: the part after the first `@` is the digest.
    pub fn parse(reference: &str) -> ImageRef {
        match reference.split_once('@') {
            Some((name, digest)) => ImageRef {
                name: name.to_owned(),
                digest: Some(digest.to_owned()),
            },
            None => ImageRef {
                name: reference.to_owned(),
                digest: None,
            },
        }
    }
}

impl ImageRef {
    /// Whether `self`, an edit of the reference a service ran (`current`), keeps `current`'s
    /// digest under another name: that digest is the old name's (`app:1`), not the new one's
    /// (`app:broken`), so the edit means the name as written and a deploy must resolve it
    /// again, not run the old image under the new name (tryout 14 finding 14). A reference
    /// with no tag (`app@sha256:…`) names its digest alone and never is.
    pub fn keeps_an_old_pin(&self, current: &ImageRef) -> bool {
        let tagged = self
            .name
            .rsplit('/')
            .next()
            .is_some_and(|last| last.contains(':'));
        tagged
            && self.digest.is_some()
            && self.digest == current.digest
            && self.name != current.name
    }

    /// The reference for people: the digest cut to its first 12 hex digits as the docker CLI
    /// shows ids (`app:1@sha256:0123456789ab`), so that a tag that moved still shows.
    pub fn short(&self) -> String {
        match &self.digest {
            Some(digest) => {
                let (algorithm, hex) = digest.split_once(':').unwrap_or(("", digest));
                let hex = hex.get(..12).unwrap_or(hex);
                if algorithm.is_empty() {
                    format!("{}@{hex}", self.name)
                } else {
                    format!("{}@{algorithm}:{hex}", self.name)
                }
            }
            None => self.name.clone(),
        }
    }
}

/// The reference as the spec writes it: `name@digest`, or `name`.
impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digest {
            Some(digest) => write!(f, "{}@{digest}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_edit_that_keeps_the_old_pin_under_a_new_name_is_told_apart() {
        let current = ImageRef::parse("registry.example:5000/app:1@sha256:aaa");
        for (edit, keeps) in [
            ("registry.example:5000/app:broken@sha256:aaa", true),
            ("registry.example:5000/other:1@sha256:aaa", true),
            ("registry.example:5000/app:1@sha256:aaa", false),
            ("registry.example:5000/app:2@sha256:bbb", false),
            ("registry.example:5000/app:2", false),
            ("registry.example:5000/app@sha256:aaa", false),
        ] {
            assert_eq!(
                ImageRef::parse(edit).keeps_an_old_pin(&current),
                keeps,
                "{edit}"
            );
        }
    }

    #[test]
    fn a_pinned_reference_splits_at_its_digest() {
        let pinned = ImageRef::parse("registry:5000/app:1@sha256:abc");
        assert_eq!(pinned.name, "registry:5000/app:1");
        assert_eq!(pinned.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(pinned.to_string(), "registry:5000/app:1@sha256:abc");
        assert_eq!(pinned.short(), "registry:5000/app:1@sha256:abc");
        let long = ImageRef::parse(&format!("app:1@sha256:{}", "0123456789abcdef".repeat(4)));
        assert_eq!(long.short(), "app:1@sha256:0123456789ab");
        assert_eq!(
            ImageRef::parse("app"),
            ImageRef {
                name: "app".into(),
                digest: None
            }
        );
    }
}
