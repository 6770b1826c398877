//! `swarmkeeper agent`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use swarmkeeper_agent::{AgentConfig, ReportConfig, ReportSecret, ServerUrl, StatsConfig};
use swarmkeeper_engine::Engine;
use swarmkeeper_gc::parse_duration;

use super::DEFAULT_STATE_DIR;
use crate::exit::{block_on, init_logging, CmdResult, Failure};
use crate::policy_args::PolicyArgs;

#[derive(Args)]
pub struct AgentArgs {
    /// Serve /metrics and /healthz here.
    #[arg(
        long,
        env = "SWARMKEEPER_LISTEN",
        default_value = "0.0.0.0:9465",
        value_name = "ADDR"
    )]
    listen: SocketAddr,
    /// Keep the agent's memory here (one SQLite file).
    #[arg(long, env = "SWARMKEEPER_STATE_DIR", default_value = DEFAULT_STATE_DIR, value_name = "DIR")]
    state_dir: PathBuf,
    /// Measure this filesystem instead of the engine's data root.
    #[arg(long, env = "SWARMKEEPER_FS_PATH", value_name = "PATH")]
    fs_path: Option<PathBuf>,
    /// Look at the disk this often even without events.
    #[arg(long, env = "SWARMKEEPER_INTERVAL", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    interval: Duration,
    /// Require `Authorization: Bearer TOKEN` on /metrics and /healthz, TOKEN read from this
    /// file (a Swarm secret).
    #[arg(long, env = "SWARMKEEPER_METRICS_TOKEN_FILE", value_name = "FILE")]
    metrics_token_file: Option<PathBuf>,
    /// Report this node to `swarmkeeper server` at this address after each pass, e.g.
    /// http://swarmkeeper_server:8080. Plain http:// only: the agent reaches the server inside
    /// the stack's overlay network. Needs --report-secret-file.
    #[arg(long, env = "SWARMKEEPER_SERVER", value_name = "URL")]
    server: Option<ServerUrl>,
    /// The secret the server expects with reports (a Swarm secret): the file's content
    /// without its trailing newline.
    #[arg(long, env = "SWARMKEEPER_REPORT_SECRET_FILE", value_name = "PATH")]
    report_secret_file: Option<PathBuf>,
    /// Read each task container's CPU, memory and I/O from the cgroup files this often and
    /// expose them on /metrics; 0 turns it off.
    #[arg(long, env = "SWARMKEEPER_STATS_INTERVAL", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    stats_interval: Duration,
    /// The host's cgroup hierarchy (bind-mount it there when the agent runs in a container).
    #[arg(
        long,
        env = "SWARMKEEPER_CGROUP_ROOT",
        default_value = "/sys/fs/cgroup",
        value_name = "DIR"
    )]
    cgroup_root: PathBuf,
    /// The host's /proc (bind-mounted in a container): containers' network counters are read
    /// through their processes.
    #[arg(
        long,
        env = "SWARMKEEPER_PROC_ROOT",
        default_value = "/proc",
        value_name = "DIR"
    )]
    proc_root: PathBuf,
    #[command(flatten)]
    policy: PolicyArgs,
}

pub fn run(args: AgentArgs) -> CmdResult {
    init_logging("info");
    let policy = args
        .policy
        .policy(swarmkeeper_gc::PolicySettings::default())?;
    if args.interval.is_zero() {
        return Err(Failure::Usage(
            "invalid --interval \"0\": must be greater than zero".into(),
        ));
    }
    let metrics_token = match &args.metrics_token_file {
        Some(path) => {
            let token = std::fs::read_to_string(path).map_err(|e| {
                Failure::Usage(format!("--metrics-token-file {}: {e}", path.display()))
            })?;
            let token = token.trim().to_string();
            if token.is_empty() {
                return Err(Failure::Usage(format!(
                    "--metrics-token-file {}: the file is empty",
                    path.display()
                )));
            }
            Some(token)
        }
        None => None,
    };
    let report = match (args.server, &args.report_secret_file) {
        (None, _) => None,
        (Some(_), None) => {
            return Err(Failure::Usage(
                "--server needs --report-secret-file (SWARMKEEPER_REPORT_SECRET_FILE): the \
                 server accepts reports only with its shared secret"
                    .into(),
            ))
        }
        (Some(server), Some(path)) => {
            let secret = std::fs::read_to_string(path)
                .map_err(|e| e.to_string())
                .and_then(|content| ReportSecret::from_file_content(&content))
                .map_err(|e| {
                    Failure::Usage(format!("--report-secret-file {}: {e}", path.display()))
                })?;
            Some(ReportConfig { server, secret })
        }
    };
    let engine = Engine::from_env()?;
    let config = AgentConfig {
        policy,
        state_dir: args.state_dir,
        listen: args.listen,
        interval: args.interval,
        fs_path: args.fs_path,
        metrics_token,
        report,
        stats: StatsConfig {
            interval: args.stats_interval,
            cgroup_root: args.cgroup_root,
            proc_root: args.proc_root,
        },
    };
    block_on(swarmkeeper_agent::run(engine, config, shutdown_signal()))?;
    Ok(())
}

/// SIGTERM (what `docker stop` and Swarm send) or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler works on Unix");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
