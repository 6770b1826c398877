//! `swarmkeeper agent`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use swarmkeeper_agent::AgentConfig;
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
    #[command(flatten)]
    policy: PolicyArgs,
}

pub fn run(args: AgentArgs) -> CmdResult {
    init_logging("info");
    let policy = args.policy.policy()?;
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
    let engine = Engine::from_env()?;
    let config = AgentConfig {
        policy,
        state_dir: args.state_dir,
        listen: args.listen,
        interval: args.interval,
        fs_path: args.fs_path,
        metrics_token,
    };
    block_on(swarmkeeper_agent::run(engine, config, shutdown_signal()))?;
    Ok(())
}

/// SIGTERM (what `docker stop` and Swarm send) or Ctrl-C.
async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler works on Unix");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
