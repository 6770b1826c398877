//! The distribution API (`/v2/`): a tag's manifest digest, tag lists, a login check.
//!
//! Authentication follows the registry's challenge, as docker does: a request goes out with
//! what is cached for its registry and scope (nothing at first); a `401` names `Basic` (then
//! the user name and password are sent) or `Bearer realm=…,service=…,scope=…` (then a token is
//! fetched from the realm: `GET` with basic auth or anonymously, or an OAuth2 `POST` with
//! `grant_type=refresh_token` for an identity token) and the request is sent again once.
//! Tokens are cached per realm, service, scope and credential until shortly before they
//! expire, so a thousand polled services do not each fetch a token per check.
//!
//! Registries are spoken to over HTTPS; hosts on the loopback network and those given to
//! [`ClientBuilder::insecure_registry`] may fall back to plain HTTP, as docker's
//! `insecure-registries`. Credentials are never sent to a plain-HTTP token realm of a registry
//! that is not insecure.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, LINK, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use swarmkeeper_reference::{Digest, Reference};

use crate::challenge::{self, Challenge};
use crate::credentials::AuthConfig;
use crate::error::{parse_retry_after, RegistryError};
use crate::host::{api_host, is_loopback};
use swarmkeeper_auth::Secret;

/// The manifest media types asked for, so that the digest is the one docker pins: an OCI index
/// or Docker manifest list for multi-platform tags, else the image manifest.
pub const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

const DIGEST_HEADER: &str = "docker-content-digest";
/// Tokens are dropped this long before they expire.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);
/// The lifetime of a token whose answer gives none (the token spec's default).
const TOKEN_DEFAULT_LIFETIME: Duration = Duration::from_secs(60);
const MAX_TAG_PAGES: usize = 1000;

/// Options for a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    insecure: Vec<String>,
    timeout: Duration,
    user_agent: String,
}

impl Default for ClientBuilder {
    fn default() -> ClientBuilder {
        ClientBuilder {
            insecure: Vec::new(),
            timeout: Duration::from_secs(30),
            user_agent: concat!("swarmkeeper/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

impl ClientBuilder {
    /// A registry (`host` or `host:port`; a bare host covers every port) that may be spoken to
    /// over plain HTTP, like an entry of docker's `insecure-registries`. Loopback hosts always
    /// may.
    pub fn insecure_registry(mut self, host: impl Into<String>) -> ClientBuilder {
        self.insecure.push(host.into());
        self
    }

    /// The limit for one HTTP exchange (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> ClientBuilder {
        self.timeout = timeout;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<Client, RegistryError> {
        Ok(Client {
            http: self.http_client()?,
            insecure: self.insecure,
            state: Arc::new(Mutex::new(State::default())),
        })
    }

    /// The HTTP client: TLS with rustls (ring), the system's CA roots and Mozilla's (a
    /// `FROM scratch` image has no system roots).
    pub(crate) fn http_client(&self) -> Result<reqwest::Client, RegistryError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new_with_extra_roots(
            webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned(),
            provider.clone(),
        )
        .map_err(|e| RegistryError::Setup(e.to_string()))?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| RegistryError::Setup(e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(self.timeout)
            .connect_timeout(self.timeout.min(Duration::from_secs(10)))
            .user_agent(self.user_agent.clone())
            .build()
            .map_err(|e| RegistryError::Setup(e.to_string()))
    }
}

#[derive(Default)]
struct State {
    /// `http` or `https`, once known, per API host.
    schemes: HashMap<String, &'static str>,
    /// Bearer tokens by (API host, scope, credential fingerprint).
    tokens: HashMap<TokenKey, CachedToken>,
    /// API hosts that answered a `Basic` challenge: later requests send basic auth at once.
    basic: HashMap<String, ()>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    host: String,
    scope: String,
    /// SHA-256 of the credential, so that a changed password never reuses a token.
    credential: String,
}

struct CachedToken {
    token: Secret,
    expires: Instant,
}

/// A registry client. Cheap to clone; clones share connections and cached tokens.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    insecure: Vec<String>,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("insecure", &self.insecure)
            .finish_non_exhaustive()
    }
}

/// A request's target and authorisation context.
struct Target<'a> {
    /// The API host, e.g. `registry-1.docker.io` or `127.0.0.1:5000`.
    host: &'a str,
    /// `repository:PATH:pull`, or `None` for `/v2/` itself.
    scope: Option<String>,
    auth: Option<&'a AuthConfig>,
}

impl Client {
    /// A client with the default options.
    pub fn new() -> Result<Client, RegistryError> {
        ClientBuilder::default().build()
    }

    /// Options first.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The digest a pull of `reference`'s tag would pin (`latest` when it has none): a
    /// manifest `HEAD` (which Docker Hub does not count against its pull limit) accepting OCI
    /// indexes and manifests and Docker manifest lists and v2 manifests; a `GET` when the
    /// registry does not answer `HEAD` or sends no `Docker-Content-Digest`, the digest then
    /// computed from the body. A reference that names a digest is answered with it unasked.
    ///
    /// Errors: [`RegistryError::NotFound`] for an unknown repository or tag,
    /// `Unauthorized`, `TooManyRequests`, `Registry`, `Unreachable`, `Protocol`.
    pub async fn manifest_digest(
        &self,
        reference: &Reference,
        auth: Option<&AuthConfig>,
    ) -> Result<Digest, RegistryError> {
        if let Some(digest) = reference.digest() {
            return Ok(digest.clone());
        }
        let tag = reference.tag_or_latest().unwrap_or("latest");
        let target = Target {
            host: api_host(reference.domain()),
            scope: Some(format!("repository:{}:pull", reference.path())),
            auth,
        };
        let path = format!("/v2/{}/manifests/{tag}", reference.path());
        let shown = reference.familiar();
        let head = self
            .request(&target, Method::HEAD, &path, Some(MANIFEST_ACCEPT))
            .await?;
        let head_status = head.status();
        if head_status.is_success() {
            if let Some(digest) = digest_header(head.headers(), target.host)? {
                return Ok(digest);
            }
        } else if !matches!(
            head_status,
            StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
        ) {
            return Err(error_for(head, target.host, &shown).await);
        }
        let get = self
            .request(&target, Method::GET, &path, Some(MANIFEST_ACCEPT))
            .await?;
        if !get.status().is_success() {
            return Err(error_for(get, target.host, &shown).await);
        }
        let header = digest_header(get.headers(), target.host)?;
        let body = get.bytes().await.map_err(|e| RegistryError::Unreachable {
            registry: target.host.to_string(),
            message: error_chain(&e),
        })?;
        match header {
            Some(digest) => Ok(digest),
            None => {
                let hex: String = Sha256::digest(&body)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                Ok(Digest::sha256_from_hex(&hex).expect("a SHA-256 is a valid digest"))
            }
        }
    }

    /// Every tag of `repository` (its tag and digest are ignored), following the registry's
    /// `Link` pages.
    pub async fn tags(
        &self,
        repository: &Reference,
        auth: Option<&AuthConfig>,
    ) -> Result<Vec<String>, RegistryError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let target = Target {
            host: api_host(repository.domain()),
            scope: Some(format!("repository:{}:pull", repository.path())),
            auth,
        };
        let mut path = format!("/v2/{}/tags/list", repository.path());
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let response = self.request(&target, Method::GET, &path, None).await?;
            if !response.status().is_success() {
                return Err(error_for(response, target.host, &repository.name()).await);
            }
            let next = next_link(response.headers());
            let body = response
                .bytes()
                .await
                .map_err(|e| RegistryError::Unreachable {
                    registry: target.host.to_string(),
                    message: error_chain(&e),
                })?;
            let page: Page =
                serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                    registry: target.host.to_string(),
                    message: format!("tag list: {e}"),
                })?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(next) => path = next,
                None => return Ok(tags),
            }
        }
        Err(RegistryError::Protocol {
            registry: target.host.to_string(),
            message: format!("more than {MAX_TAG_PAGES} pages of tags"),
        })
    }

    /// Whether the registry at `domain` (as in a reference: `docker.io`, `ghcr.io`,
    /// `host:5000`) accepts these credentials: `GET /v2/` as `docker login` does.
    pub async fn check_login(
        &self,
        domain: &str,
        auth: Option<&AuthConfig>,
    ) -> Result<(), RegistryError> {
        let target = Target {
            host: api_host(domain),
            scope: None,
            auth,
        };
        let response = self.request(&target, Method::GET, "/v2/", None).await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(error_for(response, target.host, domain).await)
        }
    }

    fn may_use_http(&self, host: &str) -> bool {
        let bare = host.rsplit_once(':').map_or(host, |(h, _)| h);
        is_loopback(host) || self.insecure.iter().any(|i| i == host || i == bare)
    }

    /// Sends a request with what is cached, answers a `401` challenge once, and returns the
    /// answer whatever its status (callers map errors).
    async fn request(
        &self,
        target: &Target<'_>,
        method: Method,
        path: &str,
        accept: Option<&str>,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut authorization = self.cached_authorization(target);
        let mut answered_challenge = false;
        loop {
            let response = self
                .send(
                    target.host,
                    method.clone(),
                    path,
                    accept,
                    authorization.as_ref(),
                )
                .await?;
            if response.status() != StatusCode::UNAUTHORIZED || answered_challenge {
                return Ok(response);
            }
            let challenges = response
                .headers()
                .get_all(WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(challenge::parse)
                .collect::<Vec<_>>();
            match self.answer(target, &challenges).await? {
                Some(answer) => authorization = Some(answer),
                None => return Ok(response),
            }
            answered_challenge = true;
        }
    }

    /// The `Authorization` to send at once: a cached token for this scope, or basic auth for a
    /// host known to want it.
    fn cached_authorization(&self, target: &Target<'_>) -> Option<Secret> {
        let state = self.state.lock().expect("registry client state");
        if state.basic.contains_key(target.host) {
            return target.auth.and_then(basic_header);
        }
        state
            .tokens
            .get(&token_key(target))
            .filter(|token| token.expires > Instant::now())
            .map(|token| Secret::new(format!("Bearer {}", token.token.expose())))
    }

    /// The `Authorization` that answers a challenge; `None` when there is nothing to answer
    /// with (a `Basic` challenge without credentials).
    async fn answer(
        &self,
        target: &Target<'_>,
        challenges: &[Challenge],
    ) -> Result<Option<Secret>, RegistryError> {
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            if let Some(token) = target.auth.and_then(|a| a.registry_token.as_ref()) {
                return Ok(Some(Secret::new(format!("Bearer {}", token.expose()))));
            }
            let token = self.fetch_token(target, bearer).await?;
            return Ok(Some(Secret::new(format!("Bearer {}", token.expose()))));
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let header = target.auth.and_then(basic_header);
            if header.is_some() {
                self.state
                    .lock()
                    .expect("registry client state")
                    .basic
                    .insert(target.host.to_string(), ());
            }
            return Ok(header);
        }
        Err(RegistryError::Protocol {
            registry: target.host.to_string(),
            message: "HTTP 401 without a Basic or Bearer challenge".into(),
        })
    }

    async fn fetch_token(
        &self,
        target: &Target<'_>,
        challenge: &Challenge,
    ) -> Result<Secret, RegistryError> {
        let protocol = |message: String| RegistryError::Protocol {
            registry: target.host.to_string(),
            message,
        };
        let realm = challenge
            .param("realm")
            .ok_or_else(|| protocol("a Bearer challenge without realm".into()))?;
        let realm_url = reqwest::Url::parse(realm)
            .map_err(|e| protocol(format!("token realm {realm:?}: {e}")))?;
        let realm_host = realm_url.host_str().unwrap_or_default().to_string();
        let realm_authority = match realm_url.port() {
            Some(port) => format!("{realm_host}:{port}"),
            None => realm_host.clone(),
        };
        match realm_url.scheme() {
            "https" => {}
            "http" if self.may_use_http(target.host) || self.may_use_http(&realm_authority) => {}
            _ => {
                return Err(protocol(format!(
                    "refusing to send credentials to token realm {realm}: not HTTPS"
                )))
            }
        }
        let service = challenge.param("service").unwrap_or_default().to_string();
        // Our scope, else the one the registry named (Docker Hub names it on /v2/ too).
        let scope = target
            .scope
            .clone()
            .or_else(|| challenge.param("scope").map(str::to_string))
            .unwrap_or_default();
        let identity_token = target
            .auth
            .and_then(|a| a.identity_token.as_ref())
            .filter(|t| !t.is_empty());
        let request = match identity_token {
            Some(refresh) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.expose()),
                    ("service", service.as_str()),
                    ("client_id", "swarmkeeper"),
                ];
                if !scope.is_empty() {
                    form.push(("scope", scope.as_str()));
                }
                self.http.post(realm_url.clone()).form(&form)
            }
            None => {
                let mut url = realm_url.clone();
                {
                    let mut query = url.query_pairs_mut();
                    if !service.is_empty() {
                        query.append_pair("service", &service);
                    }
                    if !scope.is_empty() {
                        query.append_pair("scope", &scope);
                    }
                    if let Some(auth) = target.auth.filter(|a| !a.username.is_empty()) {
                        query.append_pair("account", &auth.username);
                    }
                }
                let mut request = self.http.get(url);
                if let Some(header) = target.auth.and_then(basic_header) {
                    request = request.header(AUTHORIZATION, header.expose());
                }
                request
            }
        };
        let response = request
            .send()
            .await
            .map_err(|e| RegistryError::Unreachable {
                registry: realm_authority.clone(),
                message: error_chain(&e),
            })?;
        let status = response.status();
        if !status.is_success() {
            let mut error = error_for(response, &realm_authority, &realm_authority).await;
            if let RegistryError::Unauthorized { message, .. } = &mut error {
                *message = format!("token server {realm}: {message}");
            }
            return Err(error);
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| RegistryError::Unreachable {
                registry: realm_authority.clone(),
                message: error_chain(&e),
            })?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|e| protocol(format!("token server {realm}: {e}")))?;
        let token = if answer.token.is_empty() {
            answer.access_token
        } else {
            answer.token
        };
        if token.is_empty() {
            return Err(protocol(format!("token server {realm} answered no token")));
        }
        let lifetime = answer
            .expires_in
            .map(Duration::from_secs)
            .unwrap_or(TOKEN_DEFAULT_LIFETIME)
            .max(TOKEN_DEFAULT_LIFETIME);
        let token = Secret::new(token);
        let mut state = self.state.lock().expect("registry client state");
        let now = Instant::now();
        state.tokens.retain(|_, t| t.expires > now);
        state.tokens.insert(
            token_key(target),
            CachedToken {
                token: token.clone(),
                expires: now + lifetime.saturating_sub(TOKEN_MARGIN),
            },
        );
        Ok(token)
    }

    /// One HTTP exchange with the registry's API, over HTTPS, or HTTP where allowed and HTTPS
    /// does not answer.
    async fn send(
        &self,
        host: &str,
        method: Method,
        path: &str,
        accept: Option<&str>,
        authorization: Option<&Secret>,
    ) -> Result<reqwest::Response, RegistryError> {
        let known = self
            .state
            .lock()
            .expect("registry client state")
            .schemes
            .get(host)
            .copied();
        let schemes: Vec<&'static str> = match known {
            Some(scheme) => vec![scheme],
            None if self.may_use_http(host) => vec!["https", "http"],
            None => vec!["https"],
        };
        let mut last_error = None;
        for scheme in schemes {
            let mut request = self
                .http
                .request(method.clone(), format!("{scheme}://{host}{path}"));
            if let Some(accept) = accept {
                request = request.header(ACCEPT, accept);
            }
            if let Some(authorization) = authorization {
                request = request.header(AUTHORIZATION, authorization.expose());
            }
            match request.send().await {
                Ok(response) => {
                    self.state
                        .lock()
                        .expect("registry client state")
                        .schemes
                        .insert(host.to_string(), scheme);
                    return Ok(response);
                }
                Err(e) => last_error = Some(error_chain(&e)),
            }
        }
        Err(RegistryError::Unreachable {
            registry: host.to_string(),
            message: last_error.unwrap_or_default(),
        })
    }
}

fn token_key(target: &Target<'_>) -> TokenKey {
    TokenKey {
        host: target.host.to_string(),
        scope: target.scope.clone().unwrap_or_default(),
        credential: fingerprint(target.auth),
    }
}

fn basic_header(auth: &AuthConfig) -> Option<Secret> {
    let password = auth.password.as_ref()?;
    if auth.username.is_empty() {
        return None;
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        auth.username,
        password.expose()
    ));
    Some(Secret::new(format!("Basic {encoded}")))
}

fn fingerprint(auth: Option<&AuthConfig>) -> String {
    let Some(auth) = auth else {
        return String::new();
    };
    let mut hasher = Sha256::new();
    for part in [
        Some(auth.username.as_str()),
        auth.password.as_ref().map(Secret::expose),
        auth.identity_token.as_ref().map(Secret::expose),
        auth.registry_token.as_ref().map(Secret::expose),
    ] {
        hasher.update(part.unwrap_or_default().as_bytes());
        hasher.update([0]);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn digest_header(headers: &HeaderMap, registry: &str) -> Result<Option<Digest>, RegistryError> {
    let Some(value) = headers.get(DIGEST_HEADER) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(None);
    }
    Digest::parse(text)
        .map(Some)
        .map_err(|e| RegistryError::Protocol {
            registry: registry.to_string(),
            message: format!("Docker-Content-Digest: {e}"),
        })
}

/// `Link: </v2/…/tags/list?last=x&n=100>; rel="next"` → the path and query to ask next.
fn next_link(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(LINK)?.to_str().ok()?;
    value.split(',').find_map(|link| {
        let (target, params) = link.split_once(';')?;
        if !params.replace(' ', "").contains("rel=\"next\"") {
            return None;
        }
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        match reqwest::Url::parse(target) {
            Ok(url) => Some(match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_string(),
            }),
            Err(_) => Some(target.to_string()),
        }
    })
}

/// Turns an error answer into the matching [`RegistryError`]; `what` names what was asked
/// for (a reference) in `NotFound`.
async fn error_for(response: reqwest::Response, registry: &str, what: &str) -> RegistryError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let body = response.bytes().await.unwrap_or_default();
    // A HEAD answer has no body: the status says it.
    let message = registry_message(&body).unwrap_or_else(|| match status {
        StatusCode::NOT_FOUND => "no such repository or tag".to_string(),
        _ => status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase(),
    });
    let registry = registry.to_string();
    match status {
        StatusCode::TOO_MANY_REQUESTS => RegistryError::TooManyRequests {
            registry,
            retry_after,
        },
        StatusCode::UNAUTHORIZED => RegistryError::Unauthorized {
            registry,
            message: format!("authentication required or refused (HTTP 401): {message}"),
        },
        StatusCode::FORBIDDEN => RegistryError::Unauthorized {
            registry,
            message: format!("access denied (HTTP 403): {message}"),
        },
        StatusCode::NOT_FOUND => RegistryError::NotFound {
            reference: what.to_string(),
            message,
        },
        _ => RegistryError::Registry {
            registry,
            status: status.as_u16(),
            message,
            retry_after,
        },
    }
}

/// The registry's error list (`{"errors":[{"code","message"}]}`) as one line, or a token
/// server's `{"details"|"error"|"message"}`.
fn registry_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<Entry>,
        #[serde(default)]
        details: String,
        #[serde(default)]
        error: String,
        #[serde(default)]
        message: String,
    }
    let parsed: Errors = serde_json::from_slice(body).ok()?;
    let mut parts: Vec<String> = parsed
        .errors
        .into_iter()
        .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
            (false, false) => format!("{}: {}", e.code, e.message),
            (false, true) => e.code,
            _ => e.message,
        })
        .filter(|p| !p.is_empty())
        .collect();
    for extra in [parsed.details, parsed.error, parsed.message] {
        if !extra.is_empty() {
            parts.push(extra);
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// A reqwest error with its causes (reqwest's own message is often just "error sending
/// request"). URLs in it carry no credentials: none are ever put in a URL.
fn error_chain(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_messages() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(
            registry_message(body).unwrap(),
            "MANIFEST_UNKNOWN: manifest unknown"
        );
        assert_eq!(
            registry_message(br#"{"details":"incorrect username or password"}"#).unwrap(),
            "incorrect username or password"
        );
        assert_eq!(registry_message(b"<html>"), None);
    }

    #[test]
    fn next_links() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            r#"</v2/app/tags/list?last=b&n=2>; rel="next""#.parse().unwrap(),
        );
        assert_eq!(next_link(&headers).unwrap(), "/v2/app/tags/list?last=b&n=2");
        headers.insert(
            LINK,
            r#"<https://r.example/v2/app/tags/list?n=2&last=c>; rel="next""#
                .parse()
                .unwrap(),
        );
        assert_eq!(next_link(&headers).unwrap(), "/v2/app/tags/list?n=2&last=c");
        headers.insert(LINK, r#"</x>; rel="prev""#.parse().unwrap());
        assert_eq!(next_link(&headers), None);
    }

    #[test]
    fn fingerprints_differ_by_secret_and_hide_it() {
        let a = AuthConfig::basic("h", "u", "p1");
        let b = AuthConfig::basic("h", "u", "p2");
        assert_ne!(fingerprint(Some(&a)), fingerprint(Some(&b)));
        assert!(!fingerprint(Some(&a)).contains("p1"));
        assert_eq!(fingerprint(None), "");
    }

    #[test]
    fn plain_http_only_where_allowed() {
        let client = Client::builder()
            .insecure_registry("10.1.0.1:5000")
            .insecure_registry("lab.registry")
            .build()
            .unwrap();
        assert!(client.may_use_http("127.0.0.1:5000"));
        assert!(client.may_use_http("localhost:5000"));
        assert!(client.may_use_http("10.1.0.1:5000"));
        assert!(!client.may_use_http("10.1.0.1:5001"));
        assert!(client.may_use_http("lab.registry:443"));
        assert!(!client.may_use_http("ghcr.io"));
    }
}
