//! Every place swarmkeeper takes registry credentials from, behind one lookup by registry host.
//!
//! A [`Keychain`] holds registries added one by one (the server's Registries page: a user and
//! password or token, or ECR) and, optionally, a docker `config.json` (the CLI's own, found as
//! the docker CLI finds it, or the server's `--docker-config`). A host's credentials are those
//! of the registry added for it, else the config's (its `auths`, `credsStore` or `credHelpers`
//! helper), else none: the engine then pulls anonymously, as docker does.
//!
//! Hosts are compared as the docker CLI keys them ([`credential_key`]): `docker.io`,
//! `index.docker.io` and `registry-1.docker.io` are one registry; `host:5000` and `host` are
//! two.
//!
//! A keychain is the [`RegistryAuth`] a deploy takes: each image's credentials become the
//! `X-Registry-Auth` value sent with the service create or update.

use std::sync::Arc;

use swarmkeeper_engine::{RegistryAuth, RegistryAuthFuture};
use swarmkeeper_reference::Reference;

use crate::credentials::{AuthConfig, DockerConfig};
use crate::ecr::EcrTokenSource;
use crate::error::RegistryError;
use crate::host::{convert_to_hostname, credential_key};

/// Where one added registry's credentials come from.
#[derive(Debug)]
pub enum Source {
    /// A user name and password, or a token: Docker Hub, GHCR, GitLab, any v2 registry.
    Static(AuthConfig),
    /// AWS ECR: a `GetAuthorizationToken` token, cached and refreshed before it expires.
    Ecr(EcrTokenSource),
}

/// Registry credentials by host. Cheap to clone (the sources are shared).
#[derive(Debug, Clone, Default)]
pub struct Keychain {
    /// `(credential key, source)`, in the order added; the first match wins.
    registries: Vec<(String, Arc<Source>)>,
    config: Option<Arc<DockerConfig>>,
}

impl Keychain {
    /// A keychain with nothing in it: every registry is asked anonymously.
    pub fn new() -> Keychain {
        Keychain::default()
    }

    /// Credentials from a docker `config.json` only (what the docker CLI would use).
    pub fn from_docker_config(config: DockerConfig) -> Keychain {
        Keychain {
            registries: Vec::new(),
            config: Some(Arc::new(config)),
        }
    }

    /// Adds a docker `config.json`, asked after the registries added one by one.
    pub fn with_docker_config(mut self, config: DockerConfig) -> Keychain {
        self.config = Some(Arc::new(config));
        self
    }

    /// Adds a registry (`docker.io`, `ghcr.io`, `registry.example:5000`, an ECR host). A host
    /// added twice keeps its first source.
    pub fn add(&mut self, host: &str, source: Source) {
        self.registries
            .push((key_of(host).to_string(), Arc::new(source)));
    }

    /// The credentials `docker pull` would use for a registry host, or `Ok(None)` to go
    /// anonymously. Runs a credential helper or asks ECR when that is where they are.
    pub async fn credentials_for(&self, host: &str) -> Result<Option<AuthConfig>, RegistryError> {
        let key = key_of(host).to_string();
        if let Some((_, source)) = self.registries.iter().find(|(k, _)| *k == key) {
            return match source.as_ref() {
                Source::Static(auth) => Ok(Some(auth.clone()).filter(|a| !a.is_empty())),
                Source::Ecr(ecr) => Ok(Some(ecr.auth_config().await?)),
            };
        }
        let Some(config) = self.config.clone() else {
            return Ok(None);
        };
        // A helper is a program that may take seconds (ecr-login asks AWS): off the runtime.
        let host = host.to_string();
        let found = tokio::task::spawn_blocking(move || config.credentials_for(&host))
            .await
            .map_err(|e| RegistryError::Setup(format!("credential lookup: {e}")))??;
        Ok(found)
    }

    /// The credentials for pulling `image` (any reference docker accepts: `app:1`,
    /// `registry:5000/team/app@sha256:…`).
    pub async fn for_image(&self, image: &str) -> Result<Option<AuthConfig>, RegistryError> {
        let reference = Reference::parse(image).map_err(|e| RegistryError::Reference {
            reference: image.to_string(),
            message: e.to_string(),
        })?;
        self.credentials_for(reference.domain()).await
    }
}

/// The `config.json` key a host's credentials are filed under, old URL keys reduced.
fn key_of(host: &str) -> &str {
    credential_key(convert_to_hostname(host))
}

impl RegistryAuth for Keychain {
    fn for_image<'a>(&'a self, image: &'a str) -> RegistryAuthFuture<'a> {
        Box::pin(async move {
            match Keychain::for_image(self, image).await {
                Ok(found) => Ok(found.map(|auth| auth.x_registry_auth())),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::Secret;

    fn config(json: &str) -> DockerConfig {
        DockerConfig::parse(Path::new("/cfg/config.json"), json.as_bytes()).unwrap()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn added_registries_come_before_the_config_file() {
        let file = config(
            r#"{"auths":{"registry.example:5000":{"auth":"ZmlsZTpmaWxlLXB3"},"https://index.docker.io/v1/":{"auth":"aHViOmh1Yi1wdw=="}}}"#,
        );
        let mut keychain = Keychain::new().with_docker_config(file);
        keychain.add(
            "registry.example:5000",
            Source::Static(AuthConfig::basic(
                "registry.example:5000",
                "page",
                "page-pw",
            )),
        );
        let page = keychain
            .for_image("registry.example:5000/team/app:1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(page.username, "page");
        // Docker Hub's aliases are one registry; the file answers for it.
        for image in [
            "busybox",
            "docker.io/library/busybox:1",
            "index.docker.io/x/y",
        ] {
            let hub = keychain.for_image(image).await.unwrap().unwrap();
            assert_eq!(hub.username, "hub", "{image}");
            assert_eq!(hub.password, Some(Secret::new("hub-pw")));
        }
        // Another port is another registry.
        assert!(keychain
            .for_image("registry.example:5001/app")
            .await
            .unwrap()
            .is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn hub_added_under_any_alias_answers_for_all() {
        let mut keychain = Keychain::new();
        keychain.add(
            "docker.io",
            Source::Static(AuthConfig::basic(crate::host::INDEX_SERVER, "u", "p")),
        );
        assert!(keychain
            .credentials_for("registry-1.docker.io")
            .await
            .unwrap()
            .is_some());
        assert!(keychain.for_image("ghcr.io/a/b").await.unwrap().is_none());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_engine_hook_gives_x_registry_auth_and_names_bad_references() {
        let keychain = Keychain::from_docker_config(config(
            r#"{"auths":{"127.0.0.1:5000":{"username":"u","password":"p"}}}"#,
        ));
        let hook: &dyn RegistryAuth = &keychain;
        let header = hook.for_image("127.0.0.1:5000/app:1").await.unwrap();
        assert_eq!(
            header,
            Some(AuthConfig::basic("127.0.0.1:5000", "u", "p").x_registry_auth())
        );
        assert_eq!(hook.for_image("other/app").await.unwrap(), None);
        let error = hook.for_image("App:1").await.unwrap_err();
        assert!(error.contains("App:1"), "{error}");
    }
}
