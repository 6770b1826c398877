//! Private registries as the server keeps them. Two sources make the [`Keychain`] that every
//! deploy, service change and auto-deploy check of the server takes:
//!
//! - registries added on the Registries page (admin): a user and password (or personal access
//!   token) for Docker Hub and any v2 registry, basic or bearer-token auth alike; a bearer
//!   token sent as is; or AWS ECR, from an access key or the AWS default credential chain.
//!   Their secrets are sealed with the server's [`SealingKey`] (purpose `registry:HOST`) in
//!   the state database, never shown again, never logged, never in the audit log (which
//!   records who added or removed which registry);
//! - a docker `config.json` given with `--docker-config` (for example a Swarm secret), for
//!   credentials managed as code. A host added on the page wins over the file.
//!
//! Without a sealing key the server stores no secret: a registry that needs one is refused
//! with what to do, and registries stored under another key are listed as unusable.

use std::sync::{Arc, OnceLock, RwLock};

use serde::{Deserialize, Serialize};
use swarmkeeper_auth::SealingKey;
use swarmkeeper_engine::{Engine, RegistryAuth};
use swarmkeeper_reference::Reference;
use swarmkeeper_registry::ecr::{parse_ecr_host, AwsCredentials, CredentialSource, EcrTokenSource};
use swarmkeeper_registry::host::{credential_key, is_docker_hub};
use swarmkeeper_registry::{AuthConfig, Client, DockerConfig, Keychain, Secret, Source};
use swarmkeeper_store::StoredRegistry;

use crate::error::AppError;
use crate::views::{FieldError, Retype};

/// What to do without a key, as the page and the API say it.
pub const NO_KEY: &str = "registry credentials are stored sealed with the server's secret key, \
     and none is set: create it (`openssl rand -hex 32 | docker secret create \
     swarmkeeper_secret_key -`) and add it to the server's secrets (it is read from \
     /run/secrets/swarmkeeper_secret_key, or give --secret-key-file), or keep credentials in a \
     docker config.json given with --docker-config";

/// How a registry's credentials are had.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A user name and a password or personal access token: Docker Hub, GHCR, GitLab, any v2
    /// registry (the registry's challenge decides basic or bearer-token auth).
    Password,
    /// A bearer token sent as is (docker's `registrytoken`).
    Token,
    /// AWS ECR: `GetAuthorizationToken` with an access key, or the AWS default chain when no
    /// key is given.
    Ecr,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Password => "password",
            Kind::Token => "token",
            Kind::Ecr => "ecr",
        }
    }

    fn parse(text: &str) -> Option<Kind> {
        [Kind::Password, Kind::Token, Kind::Ecr]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// A registry to add, as the form or the JSON API posts it. Secrets are [`Secret`]s from the
/// moment they are read.
#[derive(Deserialize)]
pub struct NewRegistry {
    /// As image references name it: `docker.io`, `ghcr.io`, `registry.example:5000`.
    pub host: String,
    pub kind: Kind,
    #[serde(default)]
    pub username: String,
    #[serde(default, deserialize_with = "secret")]
    pub password: Secret,
    #[serde(default, deserialize_with = "secret")]
    pub token: Secret,
    /// ECR: empty for the AWS default chain.
    #[serde(default)]
    pub access_key_id: String,
    #[serde(default, deserialize_with = "secret")]
    pub secret_access_key: Secret,
    /// ECR: by default the one the host names.
    #[serde(default)]
    pub region: String,
    /// ECR with the default chain: a profile of the shared files instead of `AWS_PROFILE`.
    #[serde(default)]
    pub profile: String,
    /// ECR: another API endpoint (a VPC endpoint, an emulator).
    #[serde(default)]
    pub endpoint: String,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    String::deserialize(d).map(Secret::new)
}

/// Why a registry was not added.
#[derive(Debug)]
pub enum Refused {
    /// Every field to fix, each named as the form and the JSON body name it (never empty).
    Fields(Vec<FieldError>),
    /// A secret to seal and no key to seal it with ([`NO_KEY`]).
    NoKey,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Fields(errors) => f.write_str(&crate::views::one_line(errors)),
            Refused::NoKey => f.write_str(NO_KEY),
        }
    }
}

impl From<Refused> for AppError {
    fn from(refused: Refused) -> AppError {
        match refused {
            Refused::Fields(errors) => AppError::Fields {
                status: axum::http::StatusCode::BAD_REQUEST,
                errors,
            },
            Refused::NoKey => AppError::Conflict(NO_KEY.to_string()),
        }
    }
}

/// The add-registry form as posted when it was refused, for showing it again: every field as
/// typed but the secrets (password, token, ECR secret access key), which come back empty with
/// "enter again" when they were filled in.
#[derive(Clone, Debug, Default)]
pub struct RegistryForm {
    pub host: String,
    /// `password`, `token` or `ecr`.
    pub kind: String,
    pub username: String,
    pub access_key_id: String,
    pub region: String,
    pub profile: String,
    pub endpoint: String,
    pub retype: Retype,
    /// Every refused field, with why.
    pub errors: Vec<FieldError>,
}

impl RegistryForm {
    /// What of `posted` may be shown again, with why each refused field was refused.
    pub fn of(posted: &NewRegistry, errors: Vec<FieldError>) -> RegistryForm {
        RegistryForm {
            host: posted.host.clone(),
            kind: posted.kind.as_str().to_owned(),
            username: posted.username.clone(),
            access_key_id: posted.access_key_id.clone(),
            region: posted.region.clone(),
            profile: posted.profile.clone(),
            endpoint: posted.endpoint.clone(),
            retype: Retype::of(&[
                ("password", posted.password.expose()),
                ("token", posted.token.expose()),
                ("secret_access_key", posted.secret_access_key.expose()),
            ]),
            errors,
        }
    }

    /// The message for `field`, if it was refused.
    pub fn error_of(&self, field: &str) -> Option<&str> {
        crate::views::message_of(&self.errors, field)
    }
}

/// What is stored in the clear beside the sealed part.
#[derive(Default, Serialize, Deserialize)]
struct Settings {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    region: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    access_key_id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    profile: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    endpoint: String,
}

/// The sealed part, as JSON inside the seal.
#[derive(Default, Serialize, Deserialize)]
struct Sealed {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    password: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    token: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    secret_access_key: String,
}

/// A registry as the page and `GET /api/registries` show it: never a secret.
#[derive(Clone, Debug, Serialize)]
pub struct RegistryRow {
    /// `None` for an entry of the `--docker-config` file (it is removed there, not here).
    pub id: Option<i64>,
    pub host: String,
    /// `password`, `token`, `ecr`, or `docker-config`.
    pub kind: String,
    pub username: String,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub profile: Option<String>,
    pub endpoint: Option<String>,
    pub added_by: Option<String>,
    pub added_at: Option<jiff::Timestamp>,
    /// Why it cannot be used (sealed with another key), if so.
    pub problem: Option<String>,
}

/// The host as stored: Docker Hub's names become `docker.io`; anything that is not a registry
/// host as references name it is refused with why, for the `host` field.
fn normalise_host(host: &str) -> Result<String, FieldError> {
    let host = host.trim();
    let bad = |why: &str| FieldError::new("host", format!("{host:?} {why}"));
    if host.is_empty() {
        return Err(bad(
            "is empty: name the registry, e.g. ghcr.io or registry.example:5000",
        ));
    }
    if host.contains("://") || host.contains('/') {
        return Err(bad(
            "is not a host: give it as in an image reference, without scheme or path (registry.example:5000)",
        ));
    }
    if is_docker_hub(host) {
        return Ok(swarmkeeper_reference::DOCKER_HUB_DOMAIN.to_string());
    }
    let reference = Reference::parse(&format!("{host}/probe"))
        .map_err(|e| bad(&format!("is not a registry host: {e}")))?;
    if reference.domain() != host {
        return Err(bad(
            "is not a registry host: a host has a dot or a port, or is localhost",
        ));
    }
    Ok(host.to_string())
}

impl NewRegistry {
    /// Checks the fields and seals the secret part. Every wrong field is named in one answer
    /// ([`Refused::Fields`]), so that a form marks them all at once. `key` is needed for every
    /// kind that has a secret.
    pub fn seal(
        &self,
        key: Option<&SealingKey>,
        by: &str,
        now: jiff::Timestamp,
    ) -> Result<StoredRegistry, Refused> {
        let mut errors = Vec::new();
        let host = match normalise_host(&self.host) {
            Ok(host) => Some(host),
            Err(e) => {
                errors.push(e);
                None
            }
        };
        let mut required = |field: &'static str, value: &str| {
            if value.trim().is_empty() {
                errors.push(FieldError::new(
                    field,
                    format!("required for a registry of kind {}", self.kind.as_str()),
                ));
            }
        };
        let mut settings = Settings::default();
        let mut sealed = Sealed::default();
        match self.kind {
            Kind::Password => {
                required("username", &self.username);
                required("password", self.password.expose());
                sealed.password = self.password.expose().to_string();
            }
            Kind::Token => {
                required("token", self.token.expose());
                sealed.token = self.token.expose().to_string();
            }
            Kind::Ecr => {
                settings.access_key_id = self.access_key_id.trim().to_string();
                if !settings.access_key_id.is_empty() {
                    required("secret_access_key", self.secret_access_key.expose());
                    sealed.secret_access_key = self.secret_access_key.expose().to_string();
                }
                let named = host.as_deref().and_then(parse_ecr_host);
                settings.region = match (self.region.trim(), named, &host) {
                    ("", Some((_, region)), _) => region.to_string(),
                    ("", None, Some(host)) => {
                        errors.push(FieldError::new(
                            "region",
                            format!("required: {host} is not ACCOUNT.dkr.ecr.REGION.amazonaws.com"),
                        ));
                        String::new()
                    }
                    // A wrong host is named already; whether it names a region is unknown.
                    ("", None, None) => String::new(),
                    (region, _, _) => region.to_string(),
                };
                let endpoint = self.endpoint.trim();
                let is_url = endpoint.starts_with("https://") || endpoint.starts_with("http://");
                if !endpoint.is_empty() && !is_url {
                    errors.push(FieldError::new(
                        "endpoint",
                        format!("{endpoint:?} is not an http(s):// URL"),
                    ));
                }
                settings.endpoint = endpoint.to_string();
                settings.profile = self.profile.trim().to_string();
            }
        }
        let Some(host) = host.filter(|_| errors.is_empty()) else {
            return Err(Refused::Fields(errors));
        };
        let has_secret = !(sealed.password.is_empty()
            && sealed.token.is_empty()
            && sealed.secret_access_key.is_empty());
        let sealed = match (has_secret, key) {
            (false, _) => None,
            (true, None) => return Err(Refused::NoKey),
            (true, Some(key)) => Some(key.seal(
                &purpose(&host),
                &serde_json::to_vec(&sealed).expect("strings serialise"),
            )),
        };
        Ok(StoredRegistry {
            id: 0,
            kind: self.kind.as_str().to_string(),
            username: if self.kind == Kind::Password {
                self.username.trim().to_string()
            } else {
                String::new()
            },
            host,
            settings: serde_json::to_string(&settings).expect("strings serialise"),
            sealed,
            created_at: now,
            created_by: by.to_string(),
        })
    }
}

/// The seal's associated data: a sealed secret opens only for the host it was stored for.
pub(crate) fn purpose(host: &str) -> String {
    format!("registry:{host}")
}

/// Where a stored registry's credentials come from, its secret opened with `key`.
pub fn source(stored: &StoredRegistry, key: Option<&SealingKey>) -> Result<Source, String> {
    let settings: Settings = serde_json::from_str(&stored.settings)
        .map_err(|e| format!("its stored settings cannot be read: {e}"))?;
    let sealed: Sealed = match &stored.sealed {
        None => Sealed::default(),
        Some(bytes) => {
            let key = key.ok_or("its secret is sealed, and the server has no secret key")?;
            let open = key.open(&purpose(&stored.host), bytes).map_err(|e| {
                format!("its secret cannot be opened: {e}; remove it and add it again")
            })?;
            serde_json::from_slice(&open).map_err(|_| "its secret is not readable".to_string())?
        }
    };
    let server = credential_key(&stored.host).to_string();
    match Kind::parse(&stored.kind) {
        Some(Kind::Password) => Ok(Source::Static(AuthConfig::basic(
            server,
            stored.username.clone(),
            sealed.password,
        ))),
        Some(Kind::Token) => Ok(Source::Static(AuthConfig {
            server_address: server,
            registry_token: Some(Secret::new(sealed.token)),
            ..AuthConfig::default()
        })),
        Some(Kind::Ecr) => {
            let credentials = if settings.access_key_id.is_empty() {
                CredentialSource::DefaultChain {
                    profile: Some(settings.profile).filter(|p| !p.is_empty()),
                }
            } else {
                CredentialSource::Static(AwsCredentials::new(
                    settings.access_key_id,
                    sealed.secret_access_key,
                    None,
                ))
            };
            let ecr = if settings.endpoint.is_empty() {
                EcrTokenSource::new(credentials, &settings.region)
            } else {
                EcrTokenSource::with_endpoint(credentials, &settings.region, &settings.endpoint)
            };
            ecr.map(Source::Ecr).map_err(|e| e.to_string())
        }
        None => Err(format!("unknown kind {:?}", stored.kind)),
    }
}

/// The keychain of the stored registries and the `--docker-config` file, and the rows the
/// Registries page lists. A stored registry that cannot be opened is listed with its problem
/// and left out of the keychain.
pub fn keychain(
    stored: &[StoredRegistry],
    key: Option<&SealingKey>,
    docker_config: Option<&DockerConfig>,
) -> (Keychain, Vec<RegistryRow>) {
    let mut keychain = Keychain::new();
    let mut rows = Vec::new();
    for registry in stored {
        let settings: Settings = serde_json::from_str(&registry.settings).unwrap_or_default();
        let problem = match source(registry, key) {
            Ok(source) => {
                keychain.add(&registry.host, source);
                None
            }
            Err(problem) => Some(problem),
        };
        let some = |s: String| Some(s).filter(|s| !s.is_empty());
        rows.push(RegistryRow {
            id: Some(registry.id),
            host: registry.host.clone(),
            kind: registry.kind.clone(),
            username: registry.username.clone(),
            region: some(settings.region),
            access_key_id: some(settings.access_key_id),
            profile: some(settings.profile),
            endpoint: some(settings.endpoint),
            added_by: Some(registry.created_by.clone()),
            added_at: Some(registry.created_at),
            problem,
        });
    }
    if let Some(config) = docker_config {
        for entry in config.entries() {
            rows.push(RegistryRow {
                id: None,
                host: entry.host,
                kind: "docker-config".to_string(),
                username: entry.username,
                region: None,
                access_key_id: None,
                profile: None,
                endpoint: None,
                added_by: entry.helper.map(|h| format!("docker-credential-{h}")),
                added_at: None,
                problem: None,
            });
        }
        keychain = keychain.with_docker_config(config.clone());
    }
    (keychain, rows)
}

/// The server's registries as they are now: the keychain every deploy, service change and
/// check takes, and the rows the page lists; rebuilt from the store after each change.
pub struct Registries {
    key: Option<SealingKey>,
    docker_config: Option<DockerConfig>,
    current: RwLock<(Keychain, Arc<Vec<RegistryRow>>)>,
    client: OnceLock<Client>,
}

impl Registries {
    /// With the server's sealing key and `--docker-config` file, both optional; empty until
    /// [`Registries::reload`].
    pub fn new(key: Option<SealingKey>, docker_config: Option<DockerConfig>) -> Registries {
        let (keychain, rows) = keychain(&[], None, docker_config.as_ref());
        Registries {
            key,
            docker_config,
            current: RwLock::new((keychain, Arc::new(rows))),
            client: OnceLock::new(),
        }
    }

    /// Reads the stored registries again (after a change, and at start).
    pub fn reload(&self, stored: &[StoredRegistry]) {
        let (keychain, rows) = keychain(stored, self.key.as_ref(), self.docker_config.as_ref());
        for row in rows.iter().filter(|r| r.problem.is_some()) {
            tracing::warn!(
                registry = row.host,
                problem = row.problem.as_deref().unwrap_or_default(),
                "a stored registry cannot be used"
            );
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = (keychain, Arc::new(rows));
    }

    /// The key that seals stored secrets, if the server has one.
    pub fn key(&self) -> Option<&SealingKey> {
        self.key.as_ref()
    }

    pub fn keychain(&self) -> Keychain {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .0
            .clone()
    }

    /// What a deploy or a service change sends its nodes: the keychain as of now.
    pub fn registry_auth(&self) -> Arc<dyn RegistryAuth> {
        Arc::new(self.keychain())
    }

    /// The `X-Registry-Auth` value for pulling `image`; `None` without credentials, or (with a
    /// warning in the log) when they cannot be had: the change then goes without, as before.
    pub async fn x_registry_auth(&self, image: &str) -> Option<String> {
        match self.keychain().for_image(image).await {
            Ok(found) => found.map(|auth| auth.x_registry_auth()),
            Err(e) => {
                tracing::warn!(image, error = %e, "registry credentials cannot be had");
                None
            }
        }
    }

    /// The row of a stored registry.
    pub fn row(&self, id: i64) -> Option<RegistryRow> {
        self.rows().iter().find(|r| r.id == Some(id)).cloned()
    }

    pub fn rows(&self) -> Arc<Vec<RegistryRow>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .clone()
    }

    /// The distribution API client, asking registries the engine reaches over plain HTTP
    /// (its `insecure-registries`) the same way. Made once, at the first call the engine
    /// answers.
    pub async fn client(&self, engine: &Engine) -> Result<Client, AppError> {
        if let Some(client) = self.client.get() {
            return Ok(client.clone());
        }
        let insecure = engine.info().await?.insecure_registries;
        let client = insecure
            .into_iter()
            .fold(Client::builder(), |b, r| b.insecure_registry(r))
            .build()
            .map_err(AppError::internal)?;
        Ok(self.client.get_or_init(|| client).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SealingKey {
        SealingKey::from_secret(b"0123456789abcdef0123456789abcdef").unwrap()
    }

    fn new(json: &str) -> NewRegistry {
        serde_json::from_str(json).unwrap()
    }

    const NOW: jiff::Timestamp = jiff::Timestamp::UNIX_EPOCH;

    #[tokio::test(flavor = "current_thread")]
    async fn a_password_is_sealed_for_its_host_and_opens_into_the_keychain() {
        let stored = new(r#"{"host":"registry.example:5000","kind":"password","username":"ci","password":"hunter2-pw"}"#)
            .seal(Some(&key()), "admin", NOW)
            .unwrap();
        let bytes = stored.sealed.clone().unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"hunter"), "sealed");
        assert!(!stored.settings.contains("hunter2") && !stored.username.contains("hunter2"));
        let (chain, rows) = keychain(std::slice::from_ref(&stored), Some(&key()), None);
        let auth = chain
            .credentials_for("registry.example:5000")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(auth.username, "ci");
        assert_eq!(auth.password.unwrap().expose(), "hunter2-pw");
        assert!(!serde_json::to_string(&rows).unwrap().contains("hunter2"));
        // Another key, or the secret moved to another host: listed, unusable, not used.
        let other = SealingKey::from_secret(b"another key of thirty-two bytes or more").unwrap();
        let moved = StoredRegistry {
            host: "evil.example".into(),
            ..stored.clone()
        };
        for (stored, key) in [(&stored, &other), (&moved, &key())] {
            let (chain, rows) = keychain(std::slice::from_ref(stored), Some(key), None);
            assert!(rows[0]
                .problem
                .as_deref()
                .unwrap()
                .contains("cannot be opened"));
            assert!(chain.credentials_for(&stored.host).await.unwrap().is_none());
        }
    }

    #[test]
    fn fields_are_checked_and_named() {
        let refused = |json: &str, key: Option<&SealingKey>| match new(json).seal(key, "a", NOW) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("accepted: {json}"),
        };
        let k = key();
        assert!(
            refused(r#"{"host":"","kind":"token","token":"t"}"#, Some(&k)).starts_with("host:")
        );
        assert!(refused(
            r#"{"host":"https://r.example/v2","kind":"token","token":"t"}"#,
            Some(&k)
        )
        .contains("without scheme"));
        assert!(refused(
            r#"{"host":"ghcr.io","kind":"password","password":"p"}"#,
            Some(&k)
        )
        .starts_with("username:"));
        assert!(refused(
            r#"{"host":"ghcr.io","kind":"password","username":"u"}"#,
            Some(&k)
        )
        .starts_with("password:"));
        assert!(refused(r#"{"host":"r.example","kind":"ecr"}"#, Some(&k)).starts_with("region:"));
        assert!(refused(
            r#"{"host":"r.example","kind":"ecr","region":"us-east-1","access_key_id":"AKIA"}"#,
            Some(&k)
        )
        .starts_with("secret_access_key:"));
        assert!(
            refused(r#"{"host":"ghcr.io","kind":"token","token":"t"}"#, None)
                .contains("secret key")
        );
        // Every wrong field in one answer, in the form's order.
        let all = refused(r#"{"host":"https://x/","kind":"password"}"#, Some(&k));
        assert!(
            all.starts_with("host:") && all.contains("; username:") && all.contains("; password:"),
            "{all}"
        );
        let ecr = refused(
            r#"{"host":"r.example","kind":"ecr","access_key_id":"AKIA","endpoint":"vpc"}"#,
            Some(&k),
        );
        for field in ["secret_access_key:", "region:", "endpoint:"] {
            assert!(ecr.contains(field), "{field} in {ecr}");
        }
        // Docker Hub's names are one registry; the default chain needs no key.
        let hub =
            new(r#"{"host":"index.docker.io","kind":"password","username":"u","password":"p"}"#)
                .seal(Some(&k), "a", NOW)
                .unwrap();
        assert_eq!(hub.host, "docker.io");
        let chain = new(r#"{"host":"123456789012.dkr.ecr.eu-west-1.amazonaws.com","kind":"ecr","profile":"ci"}"#)
            .seal(None, "a", NOW)
            .unwrap();
        assert_eq!(chain.sealed, None);
        assert!(chain.settings.contains("eu-west-1"));
        assert!(source(&chain, None).is_ok());
    }
}
