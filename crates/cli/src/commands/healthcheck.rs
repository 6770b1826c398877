//! `swarmkeeper healthcheck`: asks a running agent's or server's `/healthz` and exits 0 when it
//! answers.
//! The images are `FROM scratch`, with no shell or curl for a Swarm healthcheck to call. The
//! command reads the same variables as the process it checks (`SWARMKEEPER_LISTEN`, the token
//! file, the server's TLS settings), so the stack file's `healthcheck: test:` needs no option.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use swarmkeeper_server::tls;

use super::server::ServerTlsArgs;
use crate::exit::{CmdResult, Failure};

#[derive(Args)]
#[command(
    mut_arg("tls_cert", |arg| arg.help(
        "The server serves HTTPS with this certificate (its --tls-cert): ask over TLS, \
         trusting that certificate alone"
    )),
    mut_arg("tls_self_signed", |arg| arg.help(
        "The server serves HTTPS with the self-signed certificate of its --state-dir: ask \
         over TLS, trusting that certificate alone"
    )),
    mut_arg("state_dir", |arg| arg.help(
        "The server's state directory, where --tls-self-signed keeps its certificate"
    ))
)]
pub struct HealthcheckArgs {
    /// The agent's or server's listen address (an unspecified address is asked on loopback).
    #[arg(
        long,
        env = "SWARMKEEPER_LISTEN",
        default_value = "0.0.0.0:9465",
        value_name = "ADDR"
    )]
    listen: SocketAddr,
    /// The agent's bearer token file, when it requires one.
    #[arg(long, env = "SWARMKEEPER_METRICS_TOKEN_FILE", value_name = "FILE")]
    metrics_token_file: Option<PathBuf>,
    // The server's TLS, read from the same flags and variables as the server's.
    #[command(flatten)]
    tls: ServerTlsArgs,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5)]
    timeout: u64,
}

pub fn run(args: HealthcheckArgs) -> CmdResult {
    let mut addr = args.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let authorization = match &args.metrics_token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path).map_err(|e| {
                Failure::Usage(format!("--metrics-token-file {}: {e}", path.display()))
            })?;
            format!("Authorization: Bearer {}\r\n", token.trim())
        }
        None => String::new(),
    };
    let cert = args.tls.certificate();
    let timeout = Duration::from_secs(args.timeout.max(1));
    let no_answer = |e: std::io::Error| Failure::Failed(format!("{addr} does not answer: {e}"));
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\n{authorization}Connection: close\r\n\r\n"
    );
    let stream = connect(addr, timeout).map_err(no_answer)?;
    let status = match cert {
        None => ask(stream, &request),
        Some(cert) => ask(
            tls::pinned_stream(&cert, stream).map_err(|e| Failure::Usage(e.to_string()))?,
            &request,
        ),
    }
    .map_err(no_answer)?;
    if status.starts_with("HTTP/1.1 200") {
        println!("{status}");
        Ok(())
    } else if status.starts_with('\u{15}') || status.starts_with("HTTP/1.1 308") {
        // A TLS alert record (content type 21), or the redirect to https:// the server's TLS
        // port answers plain HTTP with (`serve::plain_http_answer`): it speaks TLS and we
        // did not.
        Err(Failure::Failed(format!(
            "{addr} answered in TLS: set SWARMKEEPER_TLS_SELF_SIGNED or SWARMKEEPER_TLS_CERT \
             as for the server (or --tls-self-signed / --tls-cert)"
        )))
    } else {
        Err(Failure::Failed(format!("{addr} answered {status}")))
    }
}

fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Sends `request` and answers the status line of the reply.
fn ask(mut stream: impl Read + Write, request: &str) -> std::io::Result<String> {
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut answer = Vec::new();
    match stream.read_to_end(&mut answer) {
        Ok(_) => {}
        // A TLS peer that closes without close_notify, once it has answered.
        Err(e) if e.kind() == ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(e) => return Err(e),
    }
    let answer = String::from_utf8_lossy(&answer);
    Ok(answer.lines().next().unwrap_or_default().trim().to_string())
}
