//! The distribution client and docker credentials against real registries: Debian's
//! `docker-registry` with htpasswd auth and with token auth (fixtures/token_issuer.py), images
//! pushed by the docker CLI, credentials as `docker login` wrote them or as a credential helper
//! gives them, and the `X-Registry-Auth` header checked by the engine itself.

mod common;

use std::time::Duration;

use common::*;
use swarmkeeper_registry::{AuthConfig, Client, DockerConfig, Reference, RegistryError};

const USER: &str = "ci-user";
const PASSWORD: &str = "ci-pass-Zq9";

fn reference(text: &str) -> Reference {
    Reference::parse(text).unwrap()
}

#[tokio::test(flavor = "current_thread")]
async fn htpasswd_registry_with_docker_login_credentials_and_helpers() {
    let (Some(registry), Some(cli)) = (Registry::htpasswd(USER, PASSWORD), DockerCli::new()) else {
        return;
    };
    let repo = format!("{}/{}", registry.addr, repository("basic"));
    cli.login(&registry.addr, USER, PASSWORD);
    let v1 = cli.push(&format!("{repo}:1"), "one");
    let v2 = cli.push(&format!("{repo}:2"), "two");
    assert_ne!(v1, v2);

    // The credentials exactly as `docker login` stored them.
    let config = DockerConfig::load(&cli.config_file()).unwrap();
    let auth = config
        .credentials_for(&registry.addr)
        .unwrap()
        .expect("docker login stored credentials");
    assert_eq!(auth.username, USER);
    let client = Client::new().unwrap();
    let digest = client
        .manifest_digest(&reference(&format!("{repo}:1")), Some(&auth))
        .await
        .unwrap();
    assert_eq!(digest.to_string(), v1);
    let mut tags = client.tags(&reference(&repo), Some(&auth)).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["1", "2"]);
    client
        .check_login(&registry.addr, Some(&auth))
        .await
        .unwrap();

    // The tag moves: the next check sees the new digest.
    let v1b = cli.push(&format!("{repo}:1"), "one-again");
    let moved = client
        .manifest_digest(&reference(&format!("{repo}:1")), Some(&auth))
        .await
        .unwrap();
    assert_eq!(moved.to_string(), v1b);
    assert_ne!(v1b, v1);

    // Anonymous, wrong password, unknown tag and repository: each its own error.
    let err = client
        .manifest_digest(&reference(&format!("{repo}:1")), None)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    let wrong = AuthConfig::basic(&registry.addr, USER, "wrong");
    let err = client
        .manifest_digest(&reference(&format!("{repo}:1")), Some(&wrong))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(
        !format!("{err} {err:?}").contains("wrong"),
        "no password in errors: {err:?}"
    );
    let err = client
        .check_login(&registry.addr, Some(&wrong))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    let err = client
        .manifest_digest(&reference(&format!("{repo}:nope")), Some(&auth))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("nope"), "{err}");
    let err = client
        .manifest_digest(
            &reference(&format!("{}/no/such-repo:1", registry.addr)),
            Some(&auth),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::NotFound { .. }), "{err}");

    // The same credentials from a credential helper, through credHelpers and credsStore.
    let helpers = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("docker-credential-fixture"),
        helpers.path().join("docker-credential-fixture"),
    )
    .unwrap();
    std::fs::create_dir(helpers.path().join("store")).unwrap();
    std::fs::write(
        helpers
            .path()
            .join("store")
            .join(registry.addr.replace(':', "_")),
        format!(
            r#"{{"ServerURL":"{}","Username":"{USER}","Secret":"{PASSWORD}"}}"#,
            registry.addr
        ),
    )
    .unwrap();
    for json in [
        format!(r#"{{"credHelpers": {{"{}": "fixture"}}}}"#, registry.addr),
        r#"{"credsStore": "fixture"}"#.to_string(),
    ] {
        let config = DockerConfig::parse(std::path::Path::new("config.json"), json.as_bytes())
            .unwrap()
            .with_helper_dir(helpers.path());
        let auth = config
            .credentials_for(&registry.addr)
            .unwrap()
            .expect("the helper's credentials");
        let digest = client
            .manifest_digest(&reference(&format!("{repo}:2")), Some(&auth))
            .await
            .unwrap();
        assert_eq!(digest.to_string(), v2, "through {json}");
    }

    // X-Registry-Auth as the engine reads it: with it the engine resolves the private tag,
    // without it the engine cannot.
    let header = auth.x_registry_auth();
    let engine = engine_distribution_digest(&format!("{repo}:2"), Some(&header)).await;
    assert_eq!(engine.as_deref(), Ok(v2.as_str()));
    let refused = engine_distribution_digest(&format!("{repo}:2"), None).await;
    assert!(
        refused.is_err(),
        "the engine resolved a private image without credentials: {refused:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn token_registry_like_docker_hub() {
    let Some(issuer) = Issuer::start(USER, PASSWORD) else {
        return;
    };
    let (Some(registry), Some(cli)) = (Registry::token(&issuer), DockerCli::new()) else {
        return;
    };
    let repo = format!("{}/{}", registry.addr, repository("token"));
    cli.login(&registry.addr, USER, PASSWORD);
    let pushed = cli.push(&format!("{repo}:1"), "token");

    let config = DockerConfig::load(&cli.config_file()).unwrap();
    let stored = config
        .credentials_for(&registry.addr)
        .unwrap()
        .expect("docker login stored credentials");
    let client = Client::new().unwrap();
    let tag = reference(&format!("{repo}:1"));
    // As docker login stored it: the issuer gave a refresh token, so an identity token, which
    // is exchanged with an OAuth2 POST.
    assert!(
        stored.identity_token.is_some() && stored.password.is_none(),
        "{stored:?}"
    );
    let before = issuer.issued().await;
    for _ in 0..2 {
        let digest = client.manifest_digest(&tag, Some(&stored)).await.unwrap();
        assert_eq!(digest.to_string(), pushed);
    }
    assert_eq!(
        issuer.issued().await - before,
        1,
        "the second check reuses the cached token"
    );
    // With the user name and password: a token fetched with basic auth.
    let basic = AuthConfig::basic(&registry.addr, USER, PASSWORD);
    assert_eq!(
        client
            .manifest_digest(&tag, Some(&basic))
            .await
            .unwrap()
            .to_string(),
        pushed
    );
    assert_eq!(
        client.tags(&reference(&repo), Some(&basic)).await.unwrap(),
        ["1"]
    );
    client
        .check_login(&registry.addr, Some(&basic))
        .await
        .unwrap();

    // Anonymous: a token without access, then the registry's 401.
    let err = client.manifest_digest(&tag, None).await.unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    // Wrong password: the token server refuses.
    let wrong = AuthConfig::basic(&registry.addr, USER, "wrong");
    let err = client
        .manifest_digest(&tag, Some(&wrong))
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err}");
    assert!(
        err.to_string().contains("token server")
            && err.to_string().contains("incorrect username or password"),
        "{err}"
    );
    // Throttled: 429 with Retry-After, typed.
    let throttled = AuthConfig::basic(&registry.addr, Issuer::THROTTLED, "x");
    let err = client
        .manifest_digest(&tag, Some(&throttled))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::TooManyRequests { .. }),
        "{err}"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
}
