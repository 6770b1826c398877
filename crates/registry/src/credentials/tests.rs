use super::*;

fn config(json: &str) -> DockerConfig {
    DockerConfig::parse(Path::new("config.json"), json.as_bytes()).unwrap()
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// A temporary folder holding the fixture helper and its store.
struct Helper {
    dir: tempfile::TempDir,
}

impl Helper {
    fn new() -> Helper {
        let dir = tempfile::tempdir().unwrap();
        let fixture =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/docker-credential-fixture");
        std::fs::copy(&fixture, dir.path().join("docker-credential-fixture")).unwrap();
        std::fs::create_dir(dir.path().join("store")).unwrap();
        Helper { dir }
    }

    fn store(&self, server: &str, answer: &str) {
        let name: String = server
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        std::fs::write(self.dir.path().join("store").join(name), answer).unwrap();
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn config(&self, json: &str) -> DockerConfig {
        config(json).with_helper_dir(self.dir.path())
    }
}

#[test]
fn reads_auths_like_docker() {
    let c = config(&format!(
        r#"{{"auths": {{
            "https://index.docker.io/v1/": {{"auth": "{}"}},
            "registry.example:5000": {{"username": "bob", "password": "pw"}},
            "https://old.example/v1/": {{"auth": "{}"}},
            "tokens.example": {{"auth": "{}", "identitytoken": "refresh-me"}},
            "empty.example": {{}}
        }}}}"#,
        b64("alice:s3cret:with:colons"),
        b64("old:pw"),
        b64("<token>:"),
    ));
    for hub in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
        let auth = c.credentials_for(hub).unwrap().unwrap();
        assert_eq!(auth.username, "alice");
        assert_eq!(
            auth.password.as_ref().unwrap().expose(),
            "s3cret:with:colons"
        );
        assert_eq!(auth.server_address, "https://index.docker.io/v1/");
    }
    let auth = c.credentials_for("registry.example:5000").unwrap().unwrap();
    assert_eq!(
        (auth.username.as_str(), auth.password.unwrap().expose()),
        ("bob", "pw")
    );
    // A legacy URL key matches its host name.
    assert_eq!(
        c.credentials_for("old.example").unwrap().unwrap().username,
        "old"
    );
    let auth = c.credentials_for("tokens.example").unwrap().unwrap();
    assert_eq!(auth.identity_token.unwrap().expose(), "refresh-me");
    assert_eq!(c.credentials_for("empty.example").unwrap(), None);
    assert_eq!(c.credentials_for("ghcr.io").unwrap(), None);
    // The port is part of the key.
    assert_eq!(c.credentials_for("registry.example").unwrap(), None);
}

#[test]
fn bad_files_are_named() {
    let err = DockerConfig::parse(Path::new("/x/config.json"), b"{\"auths\": [").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("/x/config.json: not a docker config file"),
        "{err}"
    );
    let err = DockerConfig::parse(
        Path::new("/x/config.json"),
        br#"{"auths": {"h": {"auth": "!!!"}}}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "/x/config.json: auths[\"h\"].auth is not base64 of USER:PASSWORD"
    );
    assert!(DockerConfig::parse(Path::new("c"), b"  \n").is_ok());
    let missing = DockerConfig::load(Path::new("/nonexistent/config.json")).unwrap();
    assert_eq!(missing.credentials_for("docker.io").unwrap(), None);
}

#[test]
fn debug_never_shows_secrets() {
    let c = config(&format!(
        r#"{{"auths": {{"h": {{"auth": "{}", "identitytoken": "tok-xyz"}}}}}}"#,
        b64("u:pass-xyz")
    ));
    let text = format!("{c:?} {:?}", c.credentials_for("h").unwrap());
    assert!(
        !text.contains("pass-xyz") && !text.contains("tok-xyz"),
        "{text}"
    );
    assert!(text.contains("Secret(***)"));
}

#[test]
fn helpers_take_precedence_as_in_docker() {
    let helper = Helper::new();
    helper.store(
        "ghcr.io",
        r#"{"ServerURL":"ghcr.io","Username":"gh","Secret":"gh-pat"}"#,
    );
    helper.store(
        "https://index.docker.io/v1/",
        r#"{"ServerURL":"https://index.docker.io/v1/","Username":"<token>","Secret":"refresh"}"#,
    );
    let c = helper.config(&format!(
        r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}, "plain.example": {{"auth": "{}"}}}},
            "credHelpers": {{"ghcr.io": "fixture", "https://index.docker.io/v1/": "fixture"}}}}"#,
        b64("file-user:file-pw"),
        b64("p:q"),
    ));
    let auth = c.credentials_for("ghcr.io").unwrap().unwrap();
    assert_eq!(auth.username, "gh");
    assert_eq!(auth.password.unwrap().expose(), "gh-pat");
    // "<token>" means an identity token.
    let auth = c.credentials_for("docker.io").unwrap().unwrap();
    assert_eq!(auth.username, "");
    assert_eq!(auth.identity_token.unwrap().expose(), "refresh");
    // No helper for this host and no credsStore: the file.
    assert_eq!(
        c.credentials_for("plain.example")
            .unwrap()
            .unwrap()
            .username,
        "p"
    );
    assert_eq!(helper.calls(), ["ghcr.io", "https://index.docker.io/v1/"]);
}

#[test]
fn creds_store_serves_every_other_host() {
    let helper = Helper::new();
    helper.store(
        "registry.example:5000",
        r#"{"ServerURL":"registry.example:5000","Username":"u","Secret":"p"}"#,
    );
    let c = helper.config(&format!(
        r#"{{"credsStore": "fixture", "auths": {{"other.example": {{"auth": "{}"}}}}}}"#,
        b64("file:only")
    ));
    assert_eq!(
        c.credentials_for("registry.example:5000")
            .unwrap()
            .unwrap()
            .username,
        "u"
    );
    // The store holds nothing for it: anonymous, as for docker (the file's auths are not used
    // when a store is configured).
    assert_eq!(c.credentials_for("other.example").unwrap(), None);
}

#[test]
fn helper_failures_are_clear() {
    let helper = Helper::new();
    std::fs::write(helper.dir.path().join("store/fail"), "keychain locked\n").unwrap();
    let c = helper.config(r#"{"credsStore": "fixture"}"#);
    let err = c.credentials_for("ghcr.io").unwrap_err().to_string();
    assert!(
        err.starts_with("credential helper docker-credential-fixture for ghcr.io:"),
        "{err}"
    );
    assert!(err.ends_with("keychain locked"), "{err}");
    let c = helper.config(r#"{"credsStore": "missing-helper"}"#);
    let err = c.credentials_for("ghcr.io").unwrap_err().to_string();
    assert!(
        err.contains("cannot run docker-credential-missing-helper"),
        "{err}"
    );
}

#[test]
fn x_registry_auth_is_what_the_docker_cli_sends() {
    let auth = AuthConfig::basic("127.0.0.1:5000", "u", "p?>");
    let header = auth.x_registry_auth();
    let json = base64::engine::general_purpose::URL_SAFE
        .decode(&header)
        .unwrap();
    assert_eq!(
        String::from_utf8(json).unwrap(),
        r#"{"username":"u","password":"p?>","serveraddress":"127.0.0.1:5000"}"#
    );
    // URL-safe alphabet, padded, as Go's base64.URLEncoding.
    assert!(!header.contains('+') && !header.contains('/'));
    assert_eq!(header.len() % 4, 0);
    let token = AuthConfig {
        server_address: "h".into(),
        identity_token: Some(Secret::new("t")),
        ..AuthConfig::default()
    };
    let json = base64::engine::general_purpose::URL_SAFE
        .decode(token.x_registry_auth())
        .unwrap();
    assert_eq!(
        String::from_utf8(json).unwrap(),
        r#"{"serveraddress":"h","identitytoken":"t"}"#
    );
}

#[test]
fn entries_list_hosts_users_and_helpers_never_secrets() {
    let c = config(&format!(
        r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{}"}},"ghcr.io":{{"identitytoken":"tok"}}}},
           "credHelpers":{{"123456789012.dkr.ecr.eu-west-1.amazonaws.com":"ecr-login"}},"credsStore":"pass"}}"#,
        b64("hubuser:hubpw")
    ));
    let entries = c.entries();
    let shown = format!("{entries:?}");
    assert!(
        !shown.contains("hubpw") && !shown.contains("tok\""),
        "{shown}"
    );
    assert_eq!(
        entries
            .iter()
            .map(|e| (e.host.as_str(), e.username.as_str(), e.helper.as_deref()))
            .collect::<Vec<_>>(),
        [
            ("ghcr.io", "", None),
            ("index.docker.io", "hubuser", None),
            (
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
                "",
                Some("ecr-login")
            ),
            ("*", "", Some("pass")),
        ]
    );
}
