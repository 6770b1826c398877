//! The connection loop: hyper's HTTP/1 server with a deadline and a size cap on request heads,
//! a cap on open connections (in total and per client), and a shutdown that ends live streams
//! at once and cuts off whatever still runs after [`Limits::shutdown_grace`]. Over TLS the
//! same caps apply (a connection is counted from its accept, before the handshake) and the
//! handshake has the request head's deadline.
//!
//! [`Limits::shutdown_grace`]: crate::limits::Limits::shutdown_grace

use std::future::Future;
use std::net::SocketAddr;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::limits::Connections;
use crate::state::AppState;
use crate::tls::TlsConfig;

/// The first byte of a TLS connection: the content type of a handshake record (RFC 8446,
/// 5.1). Anything else on the TLS port is not TLS, most likely plain HTTP.
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Answers a plain-HTTP request sent to the TLS port with [`plain_http_answer`], read within
/// `deadline` (at most 8 KiB of its head), then closes the connection.
async fn answer_plain_http(mut stream: TcpStream, deadline: Duration) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        while head.len() < 8 * 1024 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    };
    let _ = tokio::time::timeout(deadline, read).await;
    let answer = plain_http_answer(&head);
    let _ = tokio::time::timeout(deadline, stream.write_all(answer.as_bytes())).await;
    let _ = stream.shutdown().await;
}

/// What the TLS port answers a plain-HTTP request (tryout 11 finding 16: browsers showed a bare
/// "invalid response"): a redirect to the same host and path over `https://` (308, so the
/// method and body are kept; nginx answers the same case with its 497 page), or a 400 that
/// says to use `https://` when the request names no usable host. The host and path are taken
/// only when they hold no character that could end a header line.
pub(crate) fn plain_http_answer(head: &[u8]) -> String {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let target = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .filter(|t| t.starts_with('/') && t.bytes().all(|b| b.is_ascii_graphic()))
        .unwrap_or("/");
    let host = lines
        .take_while(|line| !line.is_empty())
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case("host")
                .then(|| value.trim())
        })
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
    let (status, location, body) = match host {
        Some(host) => {
            let url = format!("https://{host}{target}");
            (
                "308 Permanent Redirect",
                format!("Location: {url}\r\n"),
                format!("This port speaks HTTPS: {url}\n"),
            )
        }
        None => (
            "400 Bad Request",
            String::new(),
            "This port speaks HTTPS: use https:// with this address.\n".to_owned(),
        ),
    };
    format!(
        "HTTP/1.1 {status}\r\n{location}Content-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A request that came over the built-in TLS: the browser keeps the `Secure` session cookie.
#[derive(Clone, Copy, Debug)]
pub struct OverTls;

/// Serves [`crate::app`] on `listener` until `shutdown` completes, then stops within the
/// shutdown grace.
pub async fn serve_on(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_listeners(state, listener, None, None, shutdown).await
}

/// [`serve_on`] over TLS with `tls`: the same limits, deadlines and shutdown.
pub async fn serve_tls_on(
    state: AppState,
    listener: TcpListener,
    tls: TlsConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_listeners(state, listener, Some(tls), None, shutdown).await
}

/// [`serve_on`] (over TLS when `tls` is given), and on `agents`, when given, the agents'
/// routes alone ([`crate::agents_app`]) over plain HTTP: agents on the stack's overlay network
/// keep reporting while the dashboard serves HTTPS. One connection cap and one shutdown for
/// both listeners.
pub async fn serve_listeners(
    state: AppState,
    listener: TcpListener,
    tls: Option<TlsConfig>,
    agents: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = tls.map(TlsAcceptor::from);
    let limits = state.config.limits.clone();
    let trusted = state.config.trusted_proxies.clone();
    let app = crate::app(state.clone());
    let agents_app = crate::agents_app(state.clone());
    crate::routes::spawn_housekeeping(state.clone());
    crate::autodeploy::spawn(state.clone());
    crate::alerting::spawn(state.clone());
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // hyper refuses a read buffer under 8 KiB.
        .max_buf_size(limits.max_header_bytes.max(8192));
    let connections = Connections::new(limits.max_connections, limits.max_connections_per_client);
    let graceful = GracefulShutdown::new();
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    let mut turn = Turn::default();
    loop {
        let (accepted, from_agents) = tokio::select! {
            // Shutdown first, then the listeners in turn.
            biased;
            () = &mut shutdown => break,
            (accepted, which) = std::future::poll_fn(|cx| {
                turn.poll_accept(cx, [Some(&listener), agents.as_ref()])
            }) => (accepted, which == AGENTS),
        };
        while tasks.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors, most likely: the connection waits in the backlog
                // until one is closed.
                tracing::warn!(error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(slot) = connections.admit(peer.ip(), !trusted.contains(peer.ip())) else {
            tracing::debug!(%peer, "connection closed: too many open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let tls = if from_agents { None } else { tls.clone() };
        let over_tls = tls.is_some();
        let app = if from_agents { &agents_app } else { &app };
        let service = app
            .clone()
            .map_request(move |mut request: Request<Incoming>| {
                let extensions = request.extensions_mut();
                extensions.insert(ConnectInfo::<SocketAddr>(peer));
                if over_tls {
                    extensions.insert(OverTls);
                }
                request
            });
        let service = TowerToHyperService::new(service);
        let watcher = graceful.watcher();
        let http = http.clone();
        let handshake_deadline = limits.header_read_timeout;
        tasks.spawn(async move {
            let served = match tls {
                None => {
                    watcher
                        .watch(http.serve_connection(TokioIo::new(stream), service))
                        .await
                }
                Some(acceptor) => {
                    // A client that never finishes its handshake holds its slot no longer
                    // than one that never finishes its request head.
                    let mut first = [0u8; 1];
                    let peeked =
                        tokio::time::timeout(handshake_deadline, stream.peek(&mut first)).await;
                    if matches!(peeked, Ok(Ok(1))) && first[0] != TLS_HANDSHAKE_RECORD {
                        answer_plain_http(stream, handshake_deadline).await;
                        drop(slot);
                        return;
                    }
                    match tokio::time::timeout(handshake_deadline, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            watcher
                                .watch(http.serve_connection(TokioIo::new(stream), service))
                                .await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    drop(agents);
    state.shutdown.begin();
    crate::deploys::stop_for_shutdown(&state).await;
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!(
            open = connections.open(),
            "connections still busy at shutdown are cut off"
        );
    }
    tasks.shutdown().await;
    state.write_folded_audit(None);
    Ok(())
}

/// The index of the agents' listener in [`Turn::poll_accept`]'s listeners.
const AGENTS: usize = 1;

/// Which listener is asked first for the next connection: the one after the listener that
/// gave the last, so a flood of connections on the dashboard's port never keeps an agent's
/// report waiting in the other's backlog (nor the other way round).
#[derive(Debug, Default)]
struct Turn {
    first: usize,
}

impl Turn {
    /// The next connection on any of `listeners` (a `None` has none), with the index of its
    /// listener; the listeners are asked in turn, starting after the last one that gave one.
    fn poll_accept<const N: usize>(
        &mut self,
        cx: &mut Context<'_>,
        listeners: [Option<&TcpListener>; N],
    ) -> Poll<(std::io::Result<(TcpStream, SocketAddr)>, usize)> {
        for offset in 0..N {
            let which = (self.first + offset) % N;
            let Some(listener) = listeners[which] else {
                continue;
            };
            if let Poll::Ready(accepted) = listener.poll_accept(cx) {
                self.first = (which + 1) % N;
                return Poll::Ready((accepted, which));
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::plain_http_answer;

    #[test]
    fn plain_http_on_the_tls_port_is_sent_to_https() {
        let answer = plain_http_answer(b"GET /nodes?x=1 HTTP/1.1\r\nHost: 192.0.2.7:8080\r\n\r\n");
        assert!(
            answer.starts_with("HTTP/1.1 308 Permanent Redirect\r\n"),
            "{answer}"
        );
        assert!(
            answer.contains("\r\nLocation: https://192.0.2.7:8080/nodes?x=1\r\n"),
            "{answer}"
        );
        assert!(answer.ends_with("This port speaks HTTPS: https://192.0.2.7:8080/nodes?x=1\n"));
    }

    #[test]
    fn a_host_or_path_that_could_end_a_header_line_is_not_echoed() {
        let answer = plain_http_answer(b"GET / HTTP/1.1\r\nHost: a\x0bb\r\n\r\n");
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
        assert!(!answer.contains("Location"), "{answer}");
        let answer = plain_http_answer(b"GET /\x7fx HTTP/1.1\r\nhost: dash.example\r\n\r\n");
        assert!(
            answer.contains("Location: https://dash.example/\r\n"),
            "{answer}"
        );
        let answer = plain_http_answer(b"");
        assert!(
            answer.starts_with("HTTP/1.1 400 Bad Request\r\n"),
            "{answer}"
        );
    }
}
