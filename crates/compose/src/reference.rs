//! Image references as the docker CLI reads them (the grammar of `distribution/reference`):
//! which ones it refuses, and the form its Engine client writes into a service spec
//! (`nginx` → `nginx:latest`, `docker.io/library/nginx:1` → `nginx:1`).

/// Why `image` is not a reference the docker CLI accepts.
pub fn validate(image: &str) -> Result<(), String> {
    if is_identifier(image) {
        return Ok(());
    }
    if let Some((algorithm, hex)) = image.split_once(':') {
        if is_digest(algorithm, hex) && !image.contains('/') {
            return Ok(());
        }
    }
    parse_normalized(image).map(|_| ())
}

/// The image as the Engine client writes it into a service spec: the familiar name (no
/// `docker.io/`, no `library/`) with `:latest` added when neither a tag nor a digest is given.
/// A reference it cannot parse as a name (a bare image id) is kept as written.
pub fn normalize(image: &str) -> String {
    match parse_normalized(image) {
        Ok(reference) => reference.familiar_with_default_tag(),
        Err(_) => image.to_string(),
    }
}

/// A parsed, normalised named reference.
struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    fn familiar_with_default_tag(&self) -> String {
        let mut name = if self.domain == "docker.io" {
            match self.path.strip_prefix("library/") {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            format!("{}/{}", self.domain, self.path)
        };
        match (&self.tag, &self.digest) {
            (None, None) => name.push_str(":latest"),
            (tag, digest) => {
                if let Some(tag) = tag {
                    name.push(':');
                    name.push_str(tag);
                }
                if let Some(digest) = digest {
                    name.push('@');
                    name.push_str(digest);
                }
            }
        }
        name
    }
}

/// A 64-character hexadecimal image id.
fn is_identifier(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `ParseNormalizedNamed`: the domain defaults to `docker.io`, an official image gets
/// `library/`, and the repository must be lower case.
fn parse_normalized(image: &str) -> Result<Reference, String> {
    if is_identifier(image) {
        return Err(format!(
            "invalid image {image:?}: a 64-character hexadecimal string is an image id, not a repository name"
        ));
    }
    let (domain, remainder) = match image.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first != first.to_lowercase() =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), image.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        "docker.io".to_string()
    } else {
        domain
    };
    let remainder = if domain == "docker.io" && !remainder.contains('/') {
        format!("library/{remainder}")
    } else {
        remainder
    };
    let name_end = remainder.find([':', '@']).unwrap_or(remainder.len());
    if remainder[..name_end] != remainder[..name_end].to_lowercase() {
        return Err(format!(
            "invalid image {image:?}: the repository name must be lower case"
        ));
    }
    parse(image, &domain, &remainder)
}

/// The grammar of a reference: `PATH[:TAG][@DIGEST]` after the domain.
fn parse(image: &str, domain: &str, remainder: &str) -> Result<Reference, String> {
    let invalid = |why: &str| format!("invalid image {image:?}: {why}");
    let (rest, digest) = match remainder.split_once('@') {
        Some((rest, digest)) => {
            let (algorithm, hex) = digest
                .split_once(':')
                .ok_or_else(|| invalid("a digest is written ALGORITHM:HEX"))?;
            if !is_digest(algorithm, hex) {
                return Err(invalid("the digest is not valid"));
            }
            (rest, Some(digest.to_string()))
        }
        None => (remainder, None),
    };
    let (path, tag) = match rest.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => (path, Some(tag)),
        _ => (rest, None),
    };
    if let Some(tag) = tag {
        let valid = !tag.is_empty()
            && tag.len() <= 128
            && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !valid {
            return Err(invalid(
                "a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
            ));
        }
    }
    if !is_domain(domain) {
        return Err(invalid("the registry address is not valid"));
    }
    if path.is_empty() || !path.split('/').all(is_path_component) {
        return Err(invalid(
            "a repository name is lower-case letters and digits, in parts separated by `/`, each part joining words with `.`, `_`, `__` or dashes",
        ));
    }
    if domain.len() + 1 + path.len() > 255 {
        return Err(invalid("the repository name is longer than 255 characters"));
    }
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    let word = |i: &mut usize| {
        let start = *i;
        while *i < bytes.len() && alnum(bytes[*i]) {
            *i += 1;
        }
        *i > start
    };
    if !word(&mut i) {
        return false;
    }
    while i < bytes.len() {
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if !word(&mut i) {
            return false;
        }
    }
    true
}

/// A host name (components of letters, digits and inner dashes, joined by dots) or a
/// bracketed IPv6 address, with an optional `:PORT`.
fn is_domain(domain: &str) -> bool {
    let (host, port) = match domain.strip_prefix('[') {
        Some(rest) => {
            let Some((ip, after)) = rest.split_once(']') else {
                return false;
            };
            if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
                return false;
            }
            match after {
                "" => (None, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (None, Some(port)),
                    None => return false,
                },
            }
        }
        None => match domain.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(domain), None),
        },
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    host.is_none_or(|host| {
        !host.is_empty()
            && host.split('.').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !part.starts_with('-')
                    && !part.ends_with('-')
            })
    })
}

/// `ALGORITHM:HEX` as `opencontainers/go-digest` accepts it: sha256 with 64, sha384 with 96,
/// sha512 with 128 lower-case hex digits.
fn is_digest(algorithm: &str, hex: &str) -> bool {
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == length && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4b9f8b6c2b2f3a1e0d9c8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e";

    #[test]
    fn the_engine_client_adds_latest_and_uses_familiar_names() {
        let cases = [
            ("nginx", "nginx:latest"),
            ("example/web", "example/web:latest"),
            ("example/web:1.4", "example/web:1.4"),
            ("docker.io/library/nginx:1.25", "nginx:1.25"),
            ("index.docker.io/example/web", "example/web:latest"),
            (
                "registry.example:5000/team/app",
                "registry.example:5000/team/app:latest",
            ),
            ("localhost/app:2", "localhost/app:2"),
            ("127.0.0.1:5000/app", "127.0.0.1:5000/app:latest"),
        ];
        for (image, expected) in cases {
            assert_eq!(normalize(image), expected, "{image}");
        }
        assert_eq!(normalize(&format!("app@{DIGEST}")), format!("app@{DIGEST}"));
        assert_eq!(
            normalize(&format!("app:1@{DIGEST}")),
            format!("app:1@{DIGEST}")
        );
    }

    #[test]
    fn refuses_what_the_docker_cli_refuses() {
        for image in [
            "example/Web",
            "web:",
            "web:-x",
            "web app",
            "web//x",
            "-web",
            "web@sha256:abc",
            "registry.example:port/app",
        ] {
            assert!(validate(image).is_err(), "{image} should be refused");
        }
        for image in [
            "web",
            "web_app",
            "w__a",
            "a---b",
            "MyRegistry.example/app",
            "Example/web",
            "[::1]:5000/app:1",
            &"a".repeat(64).replace('a', "0"),
        ] {
            assert!(validate(image).is_ok(), "{image}: {:?}", validate(image));
        }
        assert!(validate(&format!("sha256:{}", &DIGEST[7..])).is_ok());
    }
}
