//! AWS ECR: registry credentials from `GetAuthorizationToken`.
//!
//! ECR registries (`ACCOUNT.dkr.ecr.REGION.amazonaws.com`) take the user `AWS` and a password
//! that `GetAuthorizationToken` gives for 12 hours. [`EcrTokenSource`] calls it (a SigV4-signed
//! `POST` to `https://api.ecr.REGION.amazonaws.com/`, `X-Amz-Target:
//! AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken`), caches the answer and calls
//! again once three quarters of the token's lifetime have passed, so a token in use never
//! expires. The endpoint can be overridden (tests use an AWS emulator).

mod aws;

use std::time::{Duration, SystemTime};

use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use base64::Engine as _;
use serde::Deserialize;

pub use aws::AwsCredentials;

use crate::credentials::AuthConfig;
use swarmkeeper_auth::Secret;

const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The account and region of an ECR registry host
/// (`123456789012.dkr.ecr.eu-west-1.amazonaws.com`, also `.amazonaws.com.cn` and the
/// `dkr-ecr-fips` form); `None` for any other host.
pub fn parse_ecr_host(host: &str) -> Option<(&str, &str)> {
    let host = host.strip_suffix(":443").unwrap_or(host);
    let rest = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))?;
    let (account, rest) = rest.split_once('.')?;
    let region = rest
        .strip_prefix("dkr.ecr.")
        .or_else(|| rest.strip_prefix("dkr.ecr-fips."))
        .or_else(|| rest.strip_prefix("dkr-ecr-fips."))?;
    let valid_account = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    let valid_region = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    (valid_account && valid_region).then_some((account, region))
}

/// Why no ECR token could be had. Never holds a credential.
#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    #[error("AWS credentials: {0}")]
    Credentials(String),
    #[error("ECR {endpoint}: {code}: {message} (HTTP {status})")]
    Aws {
        endpoint: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("ECR {endpoint}: cannot be reached: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("ECR {endpoint}: unexpected answer: {message}")]
    Protocol { endpoint: String, message: String },
    #[error("signing the ECR request: {0}")]
    Signing(String),
}

/// Where a token source's AWS credentials come from.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    /// An access key given (e.g. on the Registries page).
    Static(AwsCredentials),
    /// The default chain, read at each token refresh (rotated keys are picked up); `Some`
    /// profile overrides `AWS_PROFILE`.
    DefaultChain { profile: Option<String> },
}

/// An ECR token: registry credentials until `expires_at`.
#[derive(Debug, Clone)]
pub struct EcrToken {
    /// User `AWS`, the token's password, the registry host as server address.
    pub auth: AuthConfig,
    pub expires_at: SystemTime,
    /// When it was fetched.
    pub fetched_at: SystemTime,
}

impl EcrToken {
    /// Whether it is time to fetch a new one: three quarters of its lifetime gone (9 h of 12),
    /// or it expired (a token already expired when given is always refreshed).
    pub fn needs_refresh(&self, now: SystemTime) -> bool {
        let lifetime = self
            .expires_at
            .duration_since(self.fetched_at)
            .unwrap_or(Duration::ZERO);
        now >= self.fetched_at + lifetime * 3 / 4 || now >= self.expires_at
    }
}

/// `GetAuthorizationToken` for one region, cached.
#[derive(Debug)]
pub struct EcrTokenSource {
    http: reqwest::Client,
    credentials: CredentialSource,
    region: String,
    endpoint: String,
    cached: tokio::sync::Mutex<Option<EcrToken>>,
}

impl EcrTokenSource {
    /// A source for `region`, calling AWS's endpoint for it.
    pub fn new(credentials: CredentialSource, region: &str) -> Result<EcrTokenSource, EcrError> {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        let endpoint = format!("https://api.ecr.{region}.{suffix}/");
        EcrTokenSource::with_endpoint(credentials, region, &endpoint)
    }

    /// A source for the registry host `ACCOUNT.dkr.ecr.REGION.amazonaws.com`.
    pub fn for_registry(
        credentials: CredentialSource,
        host: &str,
    ) -> Result<EcrTokenSource, EcrError> {
        let (_, region) = parse_ecr_host(host).ok_or_else(|| EcrError::Protocol {
            endpoint: host.to_string(),
            message: "not an ECR registry host (ACCOUNT.dkr.ecr.REGION.amazonaws.com)".into(),
        })?;
        EcrTokenSource::new(credentials, region)
    }

    /// A source calling `endpoint` instead (an emulator, a VPC endpoint).
    pub fn with_endpoint(
        credentials: CredentialSource,
        region: &str,
        endpoint: &str,
    ) -> Result<EcrTokenSource, EcrError> {
        let http = crate::client::ClientBuilder::default()
            .http_client()
            .map_err(|e| EcrError::Protocol {
                endpoint: endpoint.to_string(),
                message: e.to_string(),
            })?;
        Ok(EcrTokenSource {
            http,
            credentials,
            region: region.to_string(),
            endpoint: endpoint.to_string(),
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// Registry credentials: the cached token while it is fresh, else a new one. Concurrent
    /// callers share one request.
    pub async fn auth_config(&self) -> Result<AuthConfig, EcrError> {
        let mut cached = self.cached.lock().await;
        let now = SystemTime::now();
        if let Some(token) = cached.as_ref().filter(|t| !t.needs_refresh(now)) {
            return Ok(token.auth.clone());
        }
        let token = self.fetch().await?;
        let auth = token.auth.clone();
        *cached = Some(token);
        Ok(auth)
    }

    /// Calls `GetAuthorizationToken` now, without the cache.
    pub async fn fetch(&self) -> Result<EcrToken, EcrError> {
        let credentials = match &self.credentials {
            CredentialSource::Static(c) => c.clone(),
            CredentialSource::DefaultChain { profile } => {
                AwsCredentials::from_default_chain(profile.as_deref())
                    .map_err(EcrError::Credentials)?
            }
        };
        let body = b"{}";
        let headers = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
        let identity = aws_credential_types::Credentials::new(
            credentials.access_key_id.clone(),
            credentials.secret_access_key.expose(),
            credentials
                .session_token
                .as_ref()
                .map(|t| t.expose().to_string()),
            None,
            "swarmkeeper",
        )
        .into();
        let fetched_at = SystemTime::now();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("ecr")
            .time(fetched_at)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| EcrError::Signing(e.to_string()))?
            .into();
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| EcrError::Signing(e.to_string()))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| EcrError::Signing(e.to_string()))?
            .into_parts();
        let mut request = self.http.post(&self.endpoint).body(body.as_slice());
        for (name, value) in headers.iter().copied().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        let endpoint = self.endpoint.clone();
        let response = request.send().await.map_err(|e| EcrError::Unreachable {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        })?;
        let status = response.status();
        let error_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(':').next().unwrap_or(v).to_string());
        let bytes = response.bytes().await.map_err(|e| EcrError::Unreachable {
            endpoint: endpoint.clone(),
            message: e.to_string(),
        })?;
        if !status.is_success() {
            let (code, message) = aws_error(&bytes, error_type.as_deref());
            return Err(EcrError::Aws {
                endpoint,
                status: status.as_u16(),
                code,
                message,
            });
        }
        parse_answer(&endpoint, &bytes, fetched_at)
    }
}

/// AWS's error code and message: the JSON protocol's `{"__type", "message"}` (or the
/// `x-amzn-ErrorType` header), else the query protocol's XML `<Code>`/`<Message>` (which
/// signature errors may come as).
fn aws_error(body: &[u8], error_type: Option<&str>) -> (String, String) {
    #[derive(Deserialize, Default)]
    struct Json {
        #[serde(rename = "__type", default)]
        kind: String,
        #[serde(alias = "Message", default)]
        message: String,
    }
    if let Ok(json) = serde_json::from_slice::<Json>(body) {
        let code = json.kind.rsplit('#').next().unwrap_or_default().to_string();
        let code = if code.is_empty() {
            error_type.unwrap_or("error").to_string()
        } else {
            code
        };
        return (code, json.message);
    }
    let text = String::from_utf8_lossy(body);
    let element = |name: &str| {
        let open = format!("<{name}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{name}>"))? + start;
        Some(text[start..end].to_string())
    };
    (
        element("Code")
            .or_else(|| error_type.map(str::to_string))
            .unwrap_or_else(|| "error".into()),
        element("Message").unwrap_or_default(),
    )
}

fn parse_answer(
    endpoint: &str,
    bytes: &[u8],
    fetched_at: SystemTime,
) -> Result<EcrToken, EcrError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Data {
        authorization_token: String,
        expires_at: f64,
        proxy_endpoint: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        authorization_data: Vec<Data>,
    }
    let protocol = |message: String| EcrError::Protocol {
        endpoint: endpoint.to_string(),
        message,
    };
    let answer: Answer = serde_json::from_slice(bytes).map_err(|e| protocol(e.to_string()))?;
    let data = answer
        .authorization_data
        .into_iter()
        .next()
        .ok_or_else(|| protocol("no authorizationData".into()))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.authorization_token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| protocol("authorizationToken is not base64 text".into()))?;
    let (username, password) = decoded
        .split_once(':')
        .ok_or_else(|| protocol("authorizationToken is not USER:PASSWORD".into()))?;
    let server = data
        .proxy_endpoint
        .strip_prefix("https://")
        .unwrap_or(&data.proxy_endpoint)
        .trim_end_matches('/')
        .to_string();
    let expires_at = if data.expires_at.is_finite() && data.expires_at > 0.0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(data.expires_at)
    } else {
        fetched_at
    };
    Ok(EcrToken {
        auth: AuthConfig {
            server_address: server,
            username: username.to_string(),
            password: Some(Secret::new(password)),
            ..AuthConfig::default()
        },
        expires_at,
        fetched_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecr_hosts() {
        assert_eq!(
            parse_ecr_host("123456789012.dkr.ecr.eu-west-1.amazonaws.com"),
            Some(("123456789012", "eu-west-1"))
        );
        assert_eq!(
            parse_ecr_host("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn"),
            Some(("123456789012", "cn-north-1"))
        );
        assert_eq!(
            parse_ecr_host("123456789012.dkr-ecr-fips.us-east-1.amazonaws.com"),
            Some(("123456789012", "us-east-1"))
        );
        assert_eq!(parse_ecr_host("ghcr.io"), None);
        assert_eq!(
            parse_ecr_host("12345.dkr.ecr.eu-west-1.amazonaws.com"),
            None
        );
    }

    #[test]
    fn aws_errors() {
        assert_eq!(
            aws_error(
                br#"{"__type":"com.amazonaws#InvalidSignatureException","message":"bad"}"#,
                None
            ),
            ("InvalidSignatureException".into(), "bad".into())
        );
        assert_eq!(
            aws_error(b"<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error></Errors></ErrorResponse>", None),
            ("InvalidClientTokenId".into(), "The security token included in the request is invalid.".into())
        );
        assert_eq!(
            aws_error(b"", Some("AccessDeniedException")).0,
            "AccessDeniedException"
        );
    }

    #[test]
    fn answers_and_refresh() {
        let token = base64::engine::general_purpose::STANDARD.encode("AWS:pass-word");
        let body = format!(
            r#"{{"authorizationData":[{{"authorizationToken":"{token}","expiresAt":1800043200.5,"proxyEndpoint":"https://123456789012.dkr.ecr.eu-west-1.amazonaws.com"}}]}}"#
        );
        let fetched = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let t = parse_answer("e", body.as_bytes(), fetched).unwrap();
        assert_eq!(t.auth.username, "AWS");
        assert_eq!(t.auth.password.as_ref().unwrap().expose(), "pass-word");
        assert_eq!(
            t.auth.server_address,
            "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
        );
        // 12 h token: fresh for 9 h, then refreshed.
        assert!(!t.needs_refresh(fetched + Duration::from_secs(9 * 3600 - 1)));
        assert!(t.needs_refresh(fetched + Duration::from_secs(9 * 3600 + 1)));
        assert!(!format!("{t:?}").contains("pass-word"));
        // A token that came already expired is never reused.
        let mut expired = t.clone();
        expired.expires_at = fetched - Duration::from_secs(1);
        assert!(expired.needs_refresh(fetched));
        assert!(parse_answer("e", b"{\"authorizationData\":[]}", fetched).is_err());
    }
}
