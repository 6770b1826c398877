//! Registry credentials found exactly as the docker CLI finds them.
//!
//! The config file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. For a
//! registry host, the key asked about is [`credential_key`] (`https://index.docker.io/v1/` for
//! Docker Hub). Its store is the helper `credHelpers[key]` names, else the `credsStore`
//! helper, else the file's own `auths`:
//!
//! - `auths[key]` (or, for old files whose keys are URLs, the entry whose key reduces to the
//!   host): `auth` (base64 of `user:password`), else `username` and `password`; `identitytoken`
//!   (an OAuth2 refresh token) and `registrytoken` (a bearer token) as written.
//! - a helper is the program `docker-credential-NAME`, run as `docker-credential-NAME get`
//!   with the server address on stdin; it answers `{"ServerURL", "Username", "Secret"}` on
//!   stdout, where the user name `<token>` means the secret is an identity token. Its output
//!   `credentials not found in native keychain` means "none", as for docker.
//!
//! Nothing here prints or logs a credential: they are [`Secret`]s.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::host::{convert_to_hostname, credential_key};
use swarmkeeper_auth::Secret;

/// The user name a credential helper answers when its secret is an identity token.
const TOKEN_USERNAME: &str = "<token>";
/// What helpers print when they hold nothing for a server (docker-credential-helpers' text).
const NOT_FOUND: &str = "credentials not found in native keychain";
/// How long a helper may take: helpers such as `ecr-login` make network calls.
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// Credentials for one registry (docker's `AuthConfig`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// The registry's key or server address, e.g. `https://index.docker.io/v1/` or
    /// `registry.example:5000`.
    pub server_address: String,
    pub username: String,
    pub password: Option<Secret>,
    /// An OAuth2 refresh token (`docker login` stores one when the token server gives it).
    pub identity_token: Option<Secret>,
    /// A bearer token to send as is.
    pub registry_token: Option<Secret>,
}

impl AuthConfig {
    /// A user name and password.
    pub fn basic(
        server_address: impl Into<String>,
        username: impl Into<String>,
        password: impl Into<Secret>,
    ) -> AuthConfig {
        AuthConfig {
            server_address: server_address.into(),
            username: username.into(),
            password: Some(password.into()),
            ..AuthConfig::default()
        }
    }

    /// Whether it holds nothing to authenticate with (docker then pulls anonymously).
    pub fn is_empty(&self) -> bool {
        let empty = |s: &Option<Secret>| s.as_ref().is_none_or(Secret::is_empty);
        self.username.is_empty()
            && empty(&self.password)
            && empty(&self.identity_token)
            && empty(&self.registry_token)
    }

    /// The `X-Registry-Auth` header value the docker CLI sends to the engine for service
    /// create/update and `/distribution` (`docker stack deploy --with-registry-auth`): the
    /// JSON `AuthConfig` (`username`, `password`, `serveraddress`, `identitytoken`,
    /// `registrytoken`, empty ones left out) in URL-safe base64 with padding.
    pub fn x_registry_auth(&self) -> String {
        #[derive(Serialize)]
        struct Wire<'a> {
            #[serde(skip_serializing_if = "str::is_empty")]
            username: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            password: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            serveraddress: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            identitytoken: &'a str,
            #[serde(skip_serializing_if = "str::is_empty")]
            registrytoken: &'a str,
        }
        fn secret(s: &Option<Secret>) -> &str {
            s.as_ref().map_or("", Secret::expose)
        }
        let wire = Wire {
            username: &self.username,
            password: secret(&self.password),
            serveraddress: &self.server_address,
            identitytoken: secret(&self.identity_token),
            registrytoken: secret(&self.registry_token),
        };
        let json = serde_json::to_vec(&wire).expect("plain strings serialise");
        base64::engine::general_purpose::URL_SAFE.encode(json)
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("server_address", &self.server_address)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("identity_token", &self.identity_token)
            .field("registry_token", &self.registry_token)
            .finish()
    }
}

/// Why credentials could not be read. Never carries a credential.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a docker config file: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: auths[{key:?}].auth is not base64 of USER:PASSWORD")]
    BadAuth { path: PathBuf, key: String },
    #[error("credential helper docker-credential-{helper} for {server}: {message}")]
    Helper {
        helper: String,
        server: String,
        message: String,
    },
}

#[derive(Deserialize, Default)]
struct FileAuth {
    #[serde(default)]
    auth: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    identitytoken: String,
    #[serde(default)]
    registrytoken: String,
}

#[derive(Deserialize, Default)]
struct File {
    #[serde(default)]
    auths: BTreeMap<String, FileAuth>,
    #[serde(default, rename = "credsStore")]
    creds_store: String,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

/// One registry a `config.json` names, as [`DockerConfig::entries`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The registry host; `*` for the `credsStore` helper, which answers for every host.
    pub host: String,
    /// The user name stored in `auths` (empty for a helper or a token).
    pub username: String,
    /// The `docker-credential-*` helper's name, for `credHelpers` and `credsStore`.
    pub helper: Option<String>,
}

/// A docker `config.json`, read once; credentials are looked up per registry host.
#[derive(Debug, Default, Clone)]
pub struct DockerConfig {
    path: Option<PathBuf>,
    /// `auths`, decoded.
    auths: BTreeMap<String, AuthConfig>,
    creds_store: String,
    cred_helpers: BTreeMap<String, String>,
    /// A folder searched for helpers before `PATH`.
    helper_dir: Option<PathBuf>,
}

impl DockerConfig {
    /// The config file the docker CLI would read: `$DOCKER_CONFIG/config.json`, else
    /// `$HOME/.docker/config.json`. A missing file is an empty config, as for docker.
    pub fn load_default() -> Result<DockerConfig, CredentialsError> {
        let dir = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                Some(home) => Path::new(&home).join(".docker"),
                None => return Ok(DockerConfig::default()),
            },
        };
        DockerConfig::load(&dir.join("config.json"))
    }

    /// Reads a `config.json` (for example one given with `--docker-config`, or a Swarm secret).
    /// A missing file is an empty config.
    pub fn load(path: &Path) -> Result<DockerConfig, CredentialsError> {
        match std::fs::read(path) {
            Ok(bytes) => DockerConfig::parse(path, &bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig {
                path: Some(path.to_path_buf()),
                ..DockerConfig::default()
            }),
            Err(source) => Err(CredentialsError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Parses a `config.json`'s bytes; `path` names it in errors. An empty file is an empty
    /// config (docker's rule).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<DockerConfig, CredentialsError> {
        let file: File = if bytes.iter().all(u8::is_ascii_whitespace) {
            File::default()
        } else {
            serde_json::from_slice(bytes).map_err(|e| CredentialsError::Parse {
                path: path.to_path_buf(),
                // serde_json's message names the line and column, never the value.
                message: e.to_string(),
            })?
        };
        let mut auths = BTreeMap::new();
        for (key, entry) in file.auths {
            let (username, password) = if entry.auth.is_empty() {
                (entry.username, entry.password)
            } else {
                decode_auth(&entry.auth).ok_or_else(|| CredentialsError::BadAuth {
                    path: path.to_path_buf(),
                    key: key.clone(),
                })?
            };
            let non_empty = |s: String| (!s.is_empty()).then(|| Secret::new(s));
            auths.insert(
                key.clone(),
                AuthConfig {
                    server_address: key,
                    username,
                    password: non_empty(password),
                    identity_token: non_empty(entry.identitytoken),
                    registry_token: non_empty(entry.registrytoken),
                },
            );
        }
        Ok(DockerConfig {
            path: Some(path.to_path_buf()),
            auths,
            creds_store: file.creds_store,
            cred_helpers: file.cred_helpers,
            helper_dir: None,
        })
    }

    /// Looks for `docker-credential-*` helpers in `dir` before `PATH` (the helper and its
    /// children still see the whole `PATH`).
    pub fn with_helper_dir(mut self, dir: impl Into<PathBuf>) -> DockerConfig {
        self.helper_dir = Some(dir.into());
        self
    }

    /// The file read, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// What the file holds, for a listing (never a secret): each `auths` key with its user
    /// name, each `credHelpers` key with its helper, and the `credsStore` helper.
    pub fn entries(&self) -> Vec<ConfigEntry> {
        let mut entries: Vec<ConfigEntry> = self
            .auths
            .iter()
            .map(|(key, auth)| ConfigEntry {
                host: convert_to_hostname(key).to_string(),
                username: auth.username.clone(),
                helper: None,
            })
            .collect();
        entries.extend(self.cred_helpers.iter().map(|(key, helper)| ConfigEntry {
            host: convert_to_hostname(key).to_string(),
            username: String::new(),
            helper: Some(helper.clone()),
        }));
        if !self.creds_store.is_empty() {
            entries.push(ConfigEntry {
                host: "*".to_string(),
                username: String::new(),
                helper: Some(self.creds_store.clone()),
            });
        }
        entries
    }

    /// The credentials for a registry host (`docker.io`, `ghcr.io`, `registry.example:5000`),
    /// as `docker pull` would use them; `Ok(None)` to go anonymously. Runs a credential helper
    /// when the config names one (blocking, up to 30 s).
    pub fn credentials_for(&self, host: &str) -> Result<Option<AuthConfig>, CredentialsError> {
        let key = credential_key(host);
        let helper = self
            .cred_helpers
            .get(key)
            .filter(|h| !h.is_empty())
            .or((!self.creds_store.is_empty()).then_some(&self.creds_store));
        let from_file = self.file_entry(key);
        let found = match helper {
            None => from_file,
            Some(helper) => self.run_helper(helper, key)?.map(|mut found| {
                // docker keeps the file's other fields and takes the helper's secret.
                if let Some(file) = from_file {
                    found.registry_token = found.registry_token.or(file.registry_token);
                }
                found
            }),
        };
        Ok(found.filter(|auth| !auth.is_empty()))
    }

    /// The docker CLI's file store lookup: the exact key, else the entry whose key reduces to
    /// the host (old files keep `https://host/v1/` keys).
    fn file_entry(&self, key: &str) -> Option<AuthConfig> {
        self.auths.get(key).cloned().or_else(|| {
            self.auths
                .iter()
                .find(|(k, _)| convert_to_hostname(k) == key)
                .map(|(_, auth)| auth.clone())
        })
    }

    fn run_helper(
        &self,
        helper: &str,
        server: &str,
    ) -> Result<Option<AuthConfig>, CredentialsError> {
        let error = |message: String| CredentialsError::Helper {
            helper: helper.to_string(),
            server: server.to_string(),
            message,
        };
        let program = format!("docker-credential-{helper}");
        let mut command = Command::new(&program);
        command
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = &self.helper_dir {
            let mut path = OsString::from(dir);
            if let Some(rest) = std::env::var_os("PATH") {
                path.push(":");
                path.push(rest);
            }
            command.env("PATH", path);
        }
        let mut child = command
            .spawn()
            .map_err(|e| error(format!("cannot run {program}: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading stdin is judged by its output below.
            let _ = stdin.write_all(server.as_bytes());
        }
        let (stdout, stderr, status) = wait_with_timeout(child, HELPER_TIMEOUT).map_err(&error)?;
        if !status.success() {
            let out = String::from_utf8_lossy(&stdout);
            let out = out.trim();
            if out == NOT_FOUND {
                return Ok(None);
            }
            // Helpers print their error message on stdout; stderr is a fallback. The message
            // is theirs: they never echo the secret on failure.
            let message = if out.is_empty() {
                String::from_utf8_lossy(&stderr).trim().to_string()
            } else {
                out.to_string()
            };
            return Err(error(format!("{status}: {message}")));
        }
        #[derive(Deserialize)]
        struct Answer {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let answer: Answer = serde_json::from_slice(&stdout)
            .map_err(|e| error(format!("its answer is not the helper protocol's JSON: {e}")))?;
        let mut auth = AuthConfig {
            server_address: server.to_string(),
            ..AuthConfig::default()
        };
        if answer.username == TOKEN_USERNAME {
            auth.identity_token = Some(Secret::new(answer.secret));
        } else {
            auth.username = answer.username;
            auth.password = Some(Secret::new(answer.secret));
        }
        Ok(Some(auth))
    }
}

fn decode_auth(auth: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((
        user.to_string(),
        password.trim_end_matches('\0').to_string(),
    ))
}

type Output = (Vec<u8>, Vec<u8>, std::process::ExitStatus);

/// Waits for a child, reading its output, and kills it after `timeout`.
fn wait_with_timeout(mut child: std::process::Child, timeout: Duration) -> Result<Output, String> {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let readers = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut out);
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut err);
        }
        (out, err)
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not answer within {}s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    };
    let (out, err) = readers
        .join()
        .map_err(|_| "reading its output failed".to_string())?;
    Ok((out, err, status))
}

#[cfg(test)]
mod tests;
