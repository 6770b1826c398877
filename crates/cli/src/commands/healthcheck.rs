//! `swarmkeeper healthcheck`: asks a running agent's or server's `/healthz` and exits 0 when it
//! answers.
//! The agent's image is `FROM scratch`, with no shell or curl for a Swarm healthcheck to call.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::exit::{CmdResult, Failure};

#[derive(Args)]
pub struct HealthcheckArgs {
    /// The agent's listen address (an unspecified address is asked on loopback).
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
    let timeout = Duration::from_secs(args.timeout.max(1));
    let status = ask(addr, &authorization, timeout)
        .map_err(|e| Failure::Failed(format!("the agent at {addr} does not answer: {e}")))?;
    if status.starts_with("HTTP/1.1 200") {
        println!("{status}");
        Ok(())
    } else {
        Err(Failure::Failed(format!(
            "the agent at {addr} answered {status}"
        )))
    }
}

/// The status line of `GET /healthz`.
fn ask(addr: SocketAddr, authorization: &str, timeout: Duration) -> std::io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\n{authorization}Connection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer.lines().next().unwrap_or_default().trim().to_string())
}
