//! A deliberately small HTTP/1.1 client for the Engine API, over a unix socket or TCP.
//!
//! It reads answers into this crate's own lenient types: bollard's models follow a newer API than
//! the 1.41 engines in the field (its `df()` decodes to nothing there) and fail a whole answer on
//! an enum value they do not know. Paths carry no `/vX.Y` prefix, so the engine answers in its own
//! API version, as the docker CLI does after version negotiation.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::Stream;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::EngineError;

/// Bounds a whole request/answer exchange; `/system/df` on a busy node is the slowest we make.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The docker CLI's port for `tcp://HOST` without one.
const DEFAULT_TCP_PORT: u16 = 2375;

/// The header that carries registry credentials to the engine (base64url of an auth config
/// JSON), as the docker CLI sends it with `--with-registry-auth`.
const REGISTRY_AUTH_HEADER: &str = "X-Registry-Auth";

#[derive(Clone, Debug)]
enum Transport {
    Unix(PathBuf),
    Tcp(String),
}

#[derive(Clone, Debug)]
pub(crate) struct RawClient {
    host: String,
    transport: Transport,
}

impl RawClient {
    /// Accepts `unix:///PATH` and `tcp://HOST[:PORT]`, the forms `DOCKER_HOST` takes for a plain
    /// (non-TLS) engine.
    pub(crate) fn new(host: &str) -> Result<RawClient, EngineError> {
        let invalid = |detail: &str| EngineError::InvalidHost {
            host: host.to_string(),
            detail: detail.to_string(),
        };
        if let Some(path) = host.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(invalid(
                    "a unix socket must be given as unix:///ABSOLUTE/PATH",
                ));
            }
            return Ok(RawClient {
                host: host.to_string(),
                transport: Transport::Unix(PathBuf::from(path)),
            });
        }
        if let Some(rest) = host.strip_prefix("tcp://") {
            let addr = rest.strip_suffix('/').unwrap_or(rest);
            if addr.is_empty() || addr.contains('/') {
                return Err(invalid("a TCP engine must be given as tcp://HOST:PORT"));
            }
            let has_port = match addr.rfind(']') {
                Some(bracket) => addr[bracket..].contains(':'),
                None => addr.contains(':'),
            };
            let addr = if has_port {
                addr.to_string()
            } else {
                format!("{addr}:{DEFAULT_TCP_PORT}")
            };
            return Ok(RawClient {
                host: format!("tcp://{addr}"),
                transport: Transport::Tcp(addr),
            });
        }
        Err(invalid(
            "only unix:///PATH and tcp://HOST:PORT are supported",
        ))
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn unreachable(&self, detail: impl Into<String>) -> EngineError {
        EngineError::Unreachable {
            host: self.host.clone(),
            detail: detail.into(),
        }
    }

    pub(crate) fn decode_error(&self, request: &str, detail: impl Into<String>) -> EngineError {
        EngineError::Decode {
            host: self.host.clone(),
            request: request.to_string(),
            detail: detail.into(),
        }
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, EngineError> {
        match &self.transport {
            Transport::Unix(path) => {
                let stream = tokio::net::UnixStream::connect(path).await.map_err(|e| {
                    self.unreachable(format!("cannot connect to {}: {e}", path.display()))
                })?;
                self.handshake(stream).await
            }
            Transport::Tcp(addr) => {
                let stream = tokio::net::TcpStream::connect(addr)
                    .await
                    .map_err(|e| self.unreachable(format!("cannot connect to {addr}: {e}")))?;
                self.handshake(stream).await
            }
        }
    }

    async fn handshake<S>(&self, stream: S) -> Result<SendRequest<Full<Bytes>>, EngineError>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(format!("HTTP handshake failed: {e}")))?;
        // The connection ends by itself once the answer's body has been read or dropped.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "Docker Engine connection closed with an error");
            }
        });
        Ok(sender)
    }

    /// Sends one request, with a JSON body when one is given, on a fresh connection and returns
    /// the answer if its status is a success; an error status becomes [`EngineError::Api`] with
    /// the engine's message.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        json_body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, EngineError> {
        self.send_with_auth(method, path, json_body, None).await
    }

    /// [`RawClient::send`] with an `X-Registry-Auth` header when `registry_auth` is given.
    pub(crate) async fn send_with_auth(
        &self,
        method: Method,
        path: &str,
        json_body: Option<Vec<u8>>,
        registry_auth: Option<&str>,
    ) -> Result<Response<Incoming>, EngineError> {
        let mut sender = self.connect().await?;
        let authority = match &self.transport {
            Transport::Unix(_) => "docker",
            Transport::Tcp(addr) => addr.as_str(),
        };
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, authority);
        if json_body.is_some() {
            request = request.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        if let Some(auth) = registry_auth {
            request = request.header(REGISTRY_AUTH_HEADER, auth);
        }
        let request = request
            .body(Full::new(Bytes::from(json_body.unwrap_or_default())))
            .map_err(|e| self.unreachable(format!("cannot build the request {path}: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(format!("request {path} failed: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let body =
            response.into_body().collect().await.map_err(|e| {
                self.unreachable(format!("reading the answer to {path} failed: {e}"))
            })?;
        Err(EngineError::Api {
            host: self.host.clone(),
            status: status.as_u16(),
            message: error_message(&body.to_bytes(), status.canonical_reason()),
        })
    }

    async fn send_and_read(
        &self,
        method: Method,
        path: &str,
        json_body: Option<Vec<u8>>,
        registry_auth: Option<&str>,
    ) -> Result<Bytes, EngineError> {
        let exchange = async {
            let response = self
                .send_with_auth(method, path, json_body, registry_auth)
                .await?;
            let body = response.into_body().collect().await.map_err(|e| {
                self.unreachable(format!("reading the answer to {path} failed: {e}"))
            })?;
            Ok(body.to_bytes())
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                self.unreachable(format!(
                    "no answer to {path} within {}s",
                    REQUEST_TIMEOUT.as_secs()
                ))
            })?
    }

    pub(crate) async fn get_bytes(&self, path: &str) -> Result<Bytes, EngineError> {
        self.send_and_read(Method::GET, path, None, None).await
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, EngineError> {
        self.get_json_with_auth(path, None).await
    }

    /// GETs a JSON answer, with an `X-Registry-Auth` header when `registry_auth` is given.
    pub(crate) async fn get_json_with_auth<T: DeserializeOwned>(
        &self,
        path: &str,
        registry_auth: Option<&str>,
    ) -> Result<T, EngineError> {
        let body = self
            .send_and_read(Method::GET, path, None, registry_auth)
            .await?;
        serde_json::from_slice(&body).map_err(|e| self.decode_error(path, e.to_string()))
    }

    pub(crate) async fn delete(&self, path: &str) -> Result<(), EngineError> {
        self.send_and_read(Method::DELETE, path, None, None)
            .await
            .map(drop)
    }

    /// POSTs a JSON body to a call that answers with no body worth reading.
    pub(crate) async fn post_no_answer(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<(), EngineError> {
        let body = serde_json::to_vec(body).expect("a JSON value serialises");
        self.send_and_read(Method::POST, path, Some(body), None)
            .await
            .map(drop)
    }

    /// POSTs a JSON body and reads the JSON answer.
    pub(crate) async fn post_json<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, EngineError> {
        self.post_json_with_auth(path, body, None).await
    }

    /// [`RawClient::post_json`] with an `X-Registry-Auth` header when `registry_auth` is given.
    pub(crate) async fn post_json_with_auth<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
        registry_auth: Option<&str>,
    ) -> Result<T, EngineError> {
        let body = serde_json::to_vec(body).expect("a JSON value serialises");
        let answer = self
            .send_and_read(Method::POST, path, Some(body), registry_auth)
            .await?;
        serde_json::from_slice(&answer).map_err(|e| self.decode_error(path, e.to_string()))
    }

    /// GETs a streaming endpoint that answers one JSON document per line, and yields the lines.
    pub(crate) fn get_lines(
        &self,
        path: String,
    ) -> impl Stream<Item = Result<Bytes, EngineError>> + Send + 'static {
        futures_util::stream::unfold(
            LineState::Connecting(self.clone(), path),
            |state| async move { state.next().await },
        )
    }
}

enum LineState {
    Connecting(RawClient, String),
    Reading {
        client: RawClient,
        body: Incoming,
        buffer: Vec<u8>,
    },
    Done,
}

impl LineState {
    async fn next(self) -> Option<(Result<Bytes, EngineError>, LineState)> {
        let (client, mut body, mut buffer) = match self {
            LineState::Done => return None,
            LineState::Connecting(client, path) => {
                let response =
                    tokio::time::timeout(REQUEST_TIMEOUT, client.send(Method::GET, &path, None))
                        .await;
                match response {
                    Ok(Ok(response)) => (client, response.into_body(), Vec::new()),
                    Ok(Err(error)) => return Some((Err(error), LineState::Done)),
                    Err(_) => {
                        let error = client.unreachable(format!(
                            "no answer to {path} within {}s",
                            REQUEST_TIMEOUT.as_secs()
                        ));
                        return Some((Err(error), LineState::Done));
                    }
                }
            }
            LineState::Reading {
                client,
                body,
                buffer,
            } => (client, body, buffer),
        };
        loop {
            if let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let state = LineState::Reading {
                    client,
                    body,
                    buffer,
                };
                return Some((Ok(Bytes::from(line)), state));
            }
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buffer.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => {
                    let error = client.unreachable(format!("the stream broke: {e}"));
                    return Some((Err(error), LineState::Done));
                }
                None if buffer.iter().all(u8::is_ascii_whitespace) => return None,
                None => return Some((Ok(Bytes::from(buffer)), LineState::Done)),
            }
        }
    }
}

/// The engine puts its explanation in `{"message": "..."}`; anything else is passed on as text.
fn error_message(body: &[u8], reason: Option<&str>) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: String,
    }
    if let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) {
        return parsed.message;
    }
    let text = String::from_utf8_lossy(body).trim().to_string();
    if text.is_empty() {
        reason.unwrap_or("no explanation given").to_string()
    } else {
        text
    }
}

/// Percent-encodes `value` for a URL, leaving alone the unreserved characters and `keep`.
pub(crate) fn encode(value: &str, keep: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &byte in value.as_bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) || keep.contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_parsed_like_the_docker_cli() {
        let unix = RawClient::new("unix:///var/run/docker.sock").unwrap();
        assert_eq!(unix.host(), "unix:///var/run/docker.sock");
        assert!(
            matches!(&unix.transport, Transport::Unix(p) if p == &PathBuf::from("/var/run/docker.sock"))
        );

        let tcp = RawClient::new("tcp://127.0.0.1:2376").unwrap();
        assert!(matches!(&tcp.transport, Transport::Tcp(a) if a == "127.0.0.1:2376"));
        let no_port = RawClient::new("tcp://engine.example/").unwrap();
        assert_eq!(no_port.host(), "tcp://engine.example:2375");
        let v6 = RawClient::new("tcp://[::1]").unwrap();
        assert!(matches!(&v6.transport, Transport::Tcp(a) if a == "[::1]:2375"));
        let v6_port = RawClient::new("tcp://[::1]:1234").unwrap();
        assert!(matches!(&v6_port.transport, Transport::Tcp(a) if a == "[::1]:1234"));

        for bad in [
            "ssh://me@host",
            "unix://relative.sock",
            "tcp://",
            "/var/run/docker.sock",
            "tcp://h:1/base",
        ] {
            let err = RawClient::new(bad).unwrap_err();
            assert!(
                matches!(err, EngineError::InvalidHost { .. }),
                "{bad}: {err}"
            );
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn error_messages_come_from_the_engine() {
        assert_eq!(
            error_message(
                br#"{"message":"conflict: unable to delete x"}"#,
                Some("Conflict")
            ),
            "conflict: unable to delete x"
        );
        assert_eq!(
            error_message(b"page not found\n", Some("Not Found")),
            "page not found"
        );
        assert_eq!(error_message(b"", Some("Not Found")), "Not Found");
    }

    #[test]
    fn encoding_keeps_references_readable() {
        assert_eq!(encode("registry:5000/app:1", b":/@"), "registry:5000/app:1");
        assert_eq!(
            encode(r#"{"type":["image"]}"#, b""),
            "%7B%22type%22%3A%5B%22image%22%5D%7D"
        );
        assert_eq!(encode("a b", b":/@"), "a%20b");
    }
}
