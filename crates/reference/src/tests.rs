use super::*;
use proptest::prelude::*;

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn parts(text: &str) -> (String, String, Option<String>, Option<String>) {
    let r = Reference::parse(text).unwrap();
    (
        r.domain().to_string(),
        r.path().to_string(),
        r.tag().map(str::to_string),
        r.digest().map(|d| d.to_string()),
    )
}

#[test]
fn normalises_like_docker() {
    let s = |x: &str| x.to_string();
    assert_eq!(
        parts("busybox"),
        (s("docker.io"), s("library/busybox"), None, None)
    );
    assert_eq!(
        parts("busybox:1.36"),
        (s("docker.io"), s("library/busybox"), Some(s("1.36")), None)
    );
    assert_eq!(
        parts("team/app"),
        (s("docker.io"), s("team/app"), None, None)
    );
    assert_eq!(parts("index.docker.io/team/app:1").0, "docker.io");
    assert_eq!(parts("docker.io/busybox").1, "library/busybox");
    assert_eq!(parts("localhost/app").0, "localhost");
    assert_eq!(
        parts("localhost:5000/app:1"),
        (s("localhost:5000"), s("app"), Some(s("1")), None)
    );
    assert_eq!(parts("127.0.0.1:5000/a/b/c:v2").1, "a/b/c");
    assert_eq!(
        parts("123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:1").0,
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    );
    assert_eq!(parts("Registry.Example/app").0, "Registry.Example");
    assert_eq!(parts("[::1]:5000/app").0, "[::1]:5000");
    // A one-component path on another registry is not put under library/.
    assert_eq!(parts("ghcr.io/app").1, "app");
    let pinned = format!("app:1@sha256:{HEX}");
    assert_eq!(parts(&pinned).2.as_deref(), Some("1"));
    assert_eq!(parts(&pinned).3, Some(format!("sha256:{HEX}")));
}

#[test]
fn tag_or_latest() {
    let r = |t: &str| Reference::parse(t).unwrap();
    assert_eq!(r("busybox").tag_or_latest(), Some("latest"));
    assert_eq!(r("busybox:1").tag_or_latest(), Some("1"));
    assert_eq!(
        r(&format!("busybox:1@sha256:{HEX}")).tag_or_latest(),
        Some("1")
    );
    assert_eq!(r(&format!("busybox@sha256:{HEX}")).tag_or_latest(), None);
}

#[test]
fn prints_full_and_familiar_forms() {
    let r = Reference::parse("busybox:1").unwrap();
    assert_eq!(r.to_string(), "docker.io/library/busybox:1");
    assert_eq!(r.familiar(), "busybox:1");
    let r = Reference::parse("team/app").unwrap();
    assert_eq!(r.familiar(), "team/app");
    let r = Reference::parse("localhost:5000/app:1").unwrap();
    assert_eq!(r.familiar(), "localhost:5000/app:1");
    let digest = Digest::sha256_from_hex(HEX).unwrap();
    let pinned = r.with_digest(digest.clone());
    assert_eq!(pinned.to_string(), format!("localhost:5000/app:1@{digest}"));
    assert_eq!(pinned.with_tag("2").to_string(), "localhost:5000/app:2");
    assert_eq!(format!("{r:?}"), "Reference(localhost:5000/app:1)");
}

#[test]
fn refuses_what_docker_refuses() {
    let err = |t: &str| Reference::parse(t).unwrap_err();
    assert!(matches!(err(""), ReferenceError::Empty(_)));
    assert!(matches!(err("Busybox"), ReferenceError::Uppercase(_)));
    assert!(matches!(err("team/App"), ReferenceError::Uppercase(_)));
    assert!(matches!(err(HEX), ReferenceError::HexIdentifier(_)));
    for bad in [
        "app:",
        "app:-x",
        "app:.x",
        "app::1",
        "/app",
        "app/",
        "a//b",
        "app_-x",
        "app..x",
        "-app",
        "app-",
        "host:port/app",
        "bad_host.com/app",
        "-host.com/app",
        "app:tag with space",
    ] {
        assert!(
            matches!(err(bad), ReferenceError::Format { .. }),
            "{bad:?} should be refused, got {:?}",
            Reference::parse(bad)
        );
    }
    assert!(matches!(
        err("app@sha256:abc"),
        ReferenceError::Digest { .. }
    ));
    assert!(matches!(err("app@sha256"), ReferenceError::Digest { .. }));
    let long = format!("example.com/{}", "a".repeat(250));
    assert!(matches!(err(&long), ReferenceError::NameTooLong(_)));
    assert!(matches!(
        err(&format!("app:{}", "t".repeat(129))),
        ReferenceError::Format { .. }
    ));
    assert!(Reference::parse(&format!("app:{}", "t".repeat(128))).is_ok());
    // Docker's own messages lead with "invalid reference format".
    assert!(err("app:")
        .to_string()
        .starts_with("invalid reference format"));
}

#[test]
fn accepts_separators() {
    for good in [
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a---b",
        "a.b-c_d__e",
        "x/y.z/w-1",
    ] {
        assert!(Reference::parse(good).is_ok(), "{good:?}");
    }
}

#[test]
fn digests() {
    let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
    assert_eq!(d.algorithm(), "sha256");
    assert_eq!(d.encoded(), HEX);
    assert_eq!(d.short(), "sha256:0123456789ab");
    assert!(Digest::parse(&format!("sha256:{}", HEX.to_uppercase())).is_err());
    assert!(Digest::parse(&format!("sha512:{HEX}")).is_err());
    assert!(
        Digest::parse("multihash+base58:QmRZxt2b1FVZPNqd8hsiykDL3TdBDeTSPX9Kv46HmX4Gx8").is_ok()
    );
    assert!(Digest::parse(":abc").is_err());
    assert_eq!(
        serde_json::to_string(&d).unwrap(),
        format!("\"sha256:{HEX}\"")
    );
    assert_eq!(
        serde_json::from_str::<Digest>(&format!("\"sha256:{HEX}\"")).unwrap(),
        d
    );
    assert!(serde_json::from_str::<Digest>("\"sha256:x\"").is_err());
    assert!(Digest::parse("SHA256:abc").is_err());
}

/// Path components without dots: a first component with a dot is a domain, as in docker.
fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,5}((_|__|-+)[a-z0-9]{1,5}){0,2}"
}

proptest! {
    /// What is printed parses back to the same reference.
    #[test]
    fn printing_round_trips(
        domain in prop::option::of("[a-z][a-z0-9]{0,6}\\.[a-z]{2,3}(:[0-9]{1,5})?"),
        path in prop::collection::vec(component(), 1..4),
        tag in prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"),
        digest in prop::option::of("[0-9a-f]{64}"),
    ) {
        let mut text = domain.map(|d| format!("{d}/")).unwrap_or_default();
        text.push_str(&path.join("/"));
        if let Some(tag) = &tag { text.push(':'); text.push_str(tag); }
        if let Some(hex) = &digest { text.push_str("@sha256:"); text.push_str(hex); }
        let parsed = Reference::parse(&text).unwrap();
        prop_assert_eq!(&Reference::parse(&parsed.to_string()).unwrap(), &parsed);
        prop_assert_eq!(&Reference::parse(&parsed.familiar()).unwrap(), &parsed);
        prop_assert_eq!(parsed.tag(), tag.as_deref());
    }

    /// Parsing never panics, whatever the text.
    #[test]
    fn never_panics(text in "\\PC{0,80}") {
        let _ = Reference::parse(&text);
        let _ = Digest::parse(&text);
    }
}
