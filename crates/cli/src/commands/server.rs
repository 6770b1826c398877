//! `swarmkeeper server`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use swarmkeeper_auth::{
    initial_admin_password, SealingKey, SessionPolicy, ADMIN_PASSWORD_SECRET_FILE,
    SECRET_KEY_SECRET_FILE,
};
use swarmkeeper_engine::Engine;
use swarmkeeper_gc::parse_duration;
use swarmkeeper_notify::{Channel, ChannelKind, Secret};
use swarmkeeper_registry::DockerConfig;
use swarmkeeper_report::PressurePolicy;
use swarmkeeper_rollout::revisions::DEFAULT_KEEP_REVISIONS;
use swarmkeeper_server::{tls, AppState, Limits, ServerConfig, TrustedProxies};

use crate::exit::{init_logging, CmdResult, Failure};

/// The server's default state directory, beside an agent's on a manager.
pub(crate) const DEFAULT_SERVER_STATE_DIR: &str = "/var/lib/swarmkeeper-server";

/// The flags that say where the server keeps its state and which certificate it serves:
/// `swarmkeeper server` and `swarmkeeper healthcheck` (which asks it over TLS, trusting that
/// certificate alone) read them, with the same variables, so that the stack file's
/// healthcheck needs no option. Each command words the help its own way (`mut_arg`).
#[derive(Args)]
pub(crate) struct ServerTlsArgs {
    /// Keep users, sessions, the audit log and node reports here (one SQLite file); the deploy
    /// history is the swarm's (a history earlier versions kept here is imported once).
    #[arg(long, env = "SWARMKEEPER_STATE_DIR", default_value = DEFAULT_SERVER_STATE_DIR, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key. Browsers
    /// keep the session cookie only over HTTPS or on localhost.
    #[arg(
        long,
        env = "SWARMKEEPER_TLS_CERT",
        value_name = "FILE",
        conflicts_with = "tls_self_signed"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate made at the first start and kept in the state
    /// directory (tls/self-signed.crt: give it to browsers or `curl --cacert`), for the machine's
    /// host name, localhost, the --listen address, the swarm's node names and addresses, and
    /// --tls-san.
    #[arg(long, env = "SWARMKEEPER_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,
}

impl ServerTlsArgs {
    /// The certificate the server serves, if it serves HTTPS ([`tls::certificate`]).
    pub(crate) fn certificate(&self) -> Option<PathBuf> {
        tls::certificate(
            self.tls_cert.as_deref(),
            self.tls_self_signed,
            &self.state_dir,
        )
    }
}

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
#[command(mut_arg("tls_cert", |arg| arg.requires("tls_key")))]
pub struct ServerArgs {
    #[command(subcommand)]
    command: Option<ServerCommand>,
    /// Serve the dashboard and the API here.
    #[arg(
        long,
        env = "SWARMKEEPER_LISTEN",
        default_value = "0.0.0.0:8080",
        value_name = "ADDR"
    )]
    listen: SocketAddr,
    /// Also serve the agents' reports (and `/healthz`), and nothing else, over plain HTTP
    /// here: with --tls-cert or --tls-self-signed the dashboard speaks only HTTPS, while agents
    /// report over plain HTTP inside the stack's overlay network. deploy/swarmkeeper.yml uses
    /// port 8081, published nowhere. Empty means none.
    #[arg(long, env = "SWARMKEEPER_REPORT_LISTEN", value_name = "ADDR")]
    report_listen: Option<SocketAddr>,
    #[command(flatten)]
    tls: ServerTlsArgs,
    /// With --tls-self-signed: also name these host names or IP addresses in the certificate
    /// (repeatable or comma-separated), those operators reach the dashboard by, e.g. a load
    /// balancer's name. The swarm's node addresses and host names (each reaches the server
    /// through Swarm's routing mesh) are named at the first start; a name here the kept
    /// certificate lacks makes a new one, which keeps the names it had.
    #[arg(
        long = "tls-san",
        env = "SWARMKEEPER_TLS_SAN",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    tls_san: Vec<String>,
    /// The secret agents send with their reports, read from this file (a Swarm secret).
    /// Without it the server refuses reports.
    #[arg(long, env = "SWARMKEEPER_REPORT_SECRET_FILE", value_name = "FILE")]
    report_secret_file: Option<PathBuf>,
    /// The first admin's password, read from this file (a Swarm secret); used only while no
    /// user exists. Without it (and without SWARMKEEPER_ADMIN_PASSWORD) the server prints a
    /// one-time setup token to its log.
    #[arg(long, env = "SWARMKEEPER_ADMIN_PASSWORD_FILE", default_value = ADMIN_PASSWORD_SECRET_FILE, value_name = "FILE")]
    admin_password_file: PathBuf,
    /// Log a browser session out after this long without a request.
    #[arg(long, env = "SWARMKEEPER_SESSION_IDLE", default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    session_idle: Duration,
    /// A deploy from the dashboard gives up on a service after this long and rolls the stack
    /// back.
    #[arg(long, env = "SWARMKEEPER_DEPLOY_TIMEOUT", default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    deploy_timeout: Duration,
    /// A reverse proxy (an address or CIDR range) whose X-Forwarded-For or Forwarded header
    /// names the client: login limits then apply per client, not to the proxy as a whole
    /// (repeatable). Only list proxies that overwrite or append to the header.
    #[arg(
        long = "trusted-proxy",
        env = "SWARMKEEPER_TRUSTED_PROXY",
        value_delimiter = ',',
        value_name = "CIDR"
    )]
    trusted_proxies: Vec<String>,
    /// Pause a node (availability `pause`: its tasks keep running, no new ones go there) whose
    /// disk usage reaches this percentage after a GC pass that could not free enough; 0 turns
    /// disk pressure off (and releases the nodes swarmkeeper paused).
    #[arg(
        long,
        env = "SWARMKEEPER_DISK_PRESSURE_THRESHOLD",
        default_value_t = 95,
        allow_negative_numbers = true,
        value_name = "PCT"
    )]
    disk_pressure_threshold: i64,
    /// Set a node swarmkeeper paused active again once its usage has stayed below its agent's
    /// high threshold this long.
    #[arg(long, env = "SWARMKEEPER_DISK_PRESSURE_RELEASE", default_value = "5m", value_parser = parse_duration, value_name = "DURATION")]
    disk_pressure_release: Duration,
    /// The key that seals registry credentials stored from the Registries page, read from
    /// this file (a Swarm secret, 32 bytes or more, e.g. `openssl rand -hex 32`). By default
    /// /run/secrets/swarmkeeper_secret_key when it exists; without a key the server stores no
    /// credential.
    #[arg(long, env = "SWARMKEEPER_SECRET_KEY_FILE", value_name = "FILE")]
    secret_key_file: Option<PathBuf>,
    /// Registry credentials as a docker `config.json` (for example a Swarm secret), besides
    /// those added on the Registries page (which win for the same host).
    #[arg(long, env = "SWARMKEEPER_DOCKER_CONFIG", value_name = "FILE")]
    docker_config: Option<PathBuf>,
    /// Keep the newest N revisions of each stack in the swarm's deploy history when the
    /// dashboard deploys (as `swarmkeeper deploy --keep-revisions`).
    #[arg(long, env = "SWARMKEEPER_KEEP_REVISIONS", default_value_t = DEFAULT_KEEP_REVISIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    keep_revisions: u64,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(
        long,
        env = "SWARMKEEPER_TLS_KEY",
        value_name = "FILE",
        requires = "tls_cert"
    )]
    tls_key: Option<PathBuf>,
    /// Send alerts (disk full while GC falls short, disk predicted full, node down, agent
    /// silent, service not converged or rolled back, OOM kill) to this URL as JSON: `{"status":
    /// "firing"|"resolved", "rule", "subject", "summary", "started_at"}` (repeatable). The URL
    /// may carry a token: it is never logged.
    #[arg(
        long = "alert-webhook",
        env = "SWARMKEEPER_ALERT_WEBHOOK",
        value_delimiter = ',',
        value_name = "URL",
        hide_env_values = true
    )]
    alert_webhooks: Vec<String>,
    /// Like --alert-webhook, the URLs read from this file, one a line (empty lines and lines
    /// starting with `#` skipped): a Swarm secret keeps a URL that carries a token out of the
    /// service's environment, which every operator reads on the dashboard's edit page.
    #[arg(
        long = "alert-webhook-file",
        env = "SWARMKEEPER_ALERT_WEBHOOK_FILE",
        value_name = "FILE"
    )]
    alert_webhook_file: Option<PathBuf>,
    /// After a restart, an alert that was pending keeps the time it had spent pending if the
    /// server was down no longer than this (Prometheus' `--rules.alert.for-outage-tolerance`);
    /// after a longer outage its `for` starts over.
    #[arg(long, env = "SWARMKEEPER_ALERT_FOR_OUTAGE_TOLERANCE", default_value = "1h", value_parser = parse_duration, value_name = "DURATION")]
    alert_for_outage_tolerance: Duration,
    /// After a restart, no alert that was pending fires sooner than this (Prometheus'
    /// `--rules.alert.for-grace-period`): time for every agent to report again.
    #[arg(long, env = "SWARMKEEPER_ALERT_FOR_GRACE_PERIOD", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    alert_for_grace_period: Duration,
}

#[derive(Subcommand)]
enum ServerCommand {
    /// Copy the server's SQLite file (users, sessions, tokens, the audit log, agent reports)
    /// while the server runs: an online, consistent copy, checked before it is put in place.
    /// Restore: stop the server, put the copy back as DIR/swarmkeeper.db, start it.
    Backup(BackupArgs),
}

#[derive(Args)]
struct BackupArgs {
    /// Write the copy here (replaced if it exists).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
    /// The server's state directory.
    #[arg(long, env = "SWARMKEEPER_STATE_DIR", default_value = DEFAULT_SERVER_STATE_DIR, value_name = "DIR")]
    state_dir: PathBuf,
}

fn backup(args: BackupArgs) -> CmdResult {
    let done = swarmkeeper_store::backup(&args.state_dir, &args.output).map_err(|e| match e {
        swarmkeeper_store::StoreError::Missing { .. } => {
            Failure::Usage(format!("--state-dir: {e}"))
        }
        other => Failure::Failed(other.to_string()),
    })?;
    println!(
        "copied {} to {} ({} KiB)",
        done.from.display(),
        args.output.display(),
        done.bytes.div_ceil(1024)
    );
    Ok(())
}

pub fn run(args: ServerArgs) -> CmdResult {
    if let Some(ServerCommand::Backup(backup_args)) = args.command {
        return backup(backup_args);
    }
    init_logging("info");
    let report_secret = args
        .report_secret_file
        .as_deref()
        .map(|path| super::read_secret_file("--report-secret-file", path))
        .transpose()?;
    let admin_password = initial_admin_password(
        std::fs::read_to_string(&args.admin_password_file)
            .ok()
            .as_deref(),
        std::env::var(swarmkeeper_auth::ADMIN_PASSWORD_ENV)
            .ok()
            .as_deref(),
    );
    let session_idle = jiff::SignedDuration::try_from(args.session_idle)
        .map_err(|e| Failure::Usage(format!("--session-idle: {e}")))?;
    if session_idle.is_zero() {
        return Err(Failure::Usage(
            "invalid --session-idle \"0\": must be greater than zero".into(),
        ));
    }
    let trusted_proxies = TrustedProxies::parse(&args.trusted_proxies)
        .map_err(|e| Failure::Usage(format!("--trusted-proxy: {e}")))?;
    let disk_pressure = PressurePolicy {
        threshold_percent: u8::try_from(args.disk_pressure_threshold)
            .ok()
            .filter(|p| *p <= 100)
            .ok_or_else(|| {
                Failure::Usage(format!(
                    "invalid --disk-pressure-threshold \"{}\": must be a percentage from 0 to 100 (0 turns disk pressure off)",
                    args.disk_pressure_threshold
                ))
            })?,
        release_after: jiff::SignedDuration::try_from(args.disk_pressure_release)
            .map_err(|e| Failure::Usage(format!("--disk-pressure-release: {e}")))?,
    };
    let secret_key = secret_key(args.secret_key_file.as_deref())?;
    let docker_config = args
        .docker_config
        .as_deref()
        .map(|path| {
            if !path.is_file() {
                return Err(Failure::Usage(format!(
                    "--docker-config {}: no such file",
                    path.display()
                )));
            }
            DockerConfig::load(path).map_err(|e| Failure::Usage(format!("--docker-config: {e}")))
        })
        .transpose()?;
    let mut alert_webhooks = alert_webhooks(&args.alert_webhooks)?;
    if let Some(file) = args
        .alert_webhook_file
        .as_deref()
        .filter(|f| !f.as_os_str().is_empty())
    {
        alert_webhooks.extend(alert_webhook_file(file)?);
    }
    raise_open_files_limit();
    let config = ServerConfig {
        state_dir: args.tls.state_dir.clone(),
        report_secret,
        session_policy: SessionPolicy {
            idle: session_idle,
            ..SessionPolicy::default()
        },
        deploy_timeout: args.deploy_timeout,
        trusted_proxies,
        limits: Limits::default(),
        disk_pressure,
        secret_key,
        docker_config,
        keep_revisions: usize::try_from(args.keep_revisions).unwrap_or(usize::MAX),
        alert_webhooks,
        alert_for_restore: swarmkeeper_server::ForRestore {
            outage_tolerance: args.alert_for_outage_tolerance,
            grace_period: args.alert_for_grace_period,
        },
    };
    let engine = Engine::from_env()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Failed(format!("cannot start the runtime: {e}")))?;
    let tls = tls_config(&args, &runtime, &engine)?;
    let served = runtime.block_on(async {
        let state = AppState::open(engine, config).map_err(|e| Failure::Usage(e.to_string()))?;
        swarmkeeper_server::bootstrap_users(&state, admin_password)
            .await
            .map_err(|e| Failure::Usage(e.to_string()))?;
        swarmkeeper_server::import_deploy_history(&state).await;
        swarmkeeper_server::settle_rekey_revisions(&state).await;
        swarmkeeper_server::serve(
            state,
            args.listen,
            tls,
            args.report_listen,
            super::agent::shutdown_signal(),
        )
        .await
        .map_err(|e| Failure::Usage(e.to_string()))
    });
    // `serve` has asked the deploys to stop and waited for them to record themselves
    // `interrupted`. One still running after that (a thread of its own), like a password
    // check on a blocking thread, does not hold the exit up: it stops renewing its stack's
    // lock, and the history shows it interrupted once the lock expires.
    runtime.shutdown_timeout(Duration::from_millis(200));
    served
}

/// The sealing key from `--secret-key-file`, or from the Swarm secret's usual place when it
/// exists there. A file given but unreadable, empty or too short is refused (exit 2).
fn secret_key(file: Option<&Path>) -> Result<Option<SealingKey>, Failure> {
    let default = Path::new(SECRET_KEY_SECRET_FILE);
    let path = match file {
        Some(path) => path,
        None if default.is_file() => default,
        None => return Ok(None),
    };
    let text = super::read_secret_file("--secret-key-file", path)?;
    SealingKey::from_secret(text.as_bytes())
        .map(Some)
        .map_err(|e| Failure::Usage(format!("--secret-key-file {}: {e}", path.display())))
}

/// The `--alert-webhook` URLs, each checked as a webhook channel (an absolute http(s) URL); a
/// bad one is a usage error that names the flag and the position, never the URL (it may hold
/// a token). Empty entries are none: `deploy/swarmkeeper.yml` passes an unset
/// `SWARMKEEPER_ALERT_WEBHOOK` on as empty.
fn alert_webhooks(urls: &[String]) -> Result<Vec<Secret>, Failure> {
    urls.iter()
        .filter(|url| !url.trim().is_empty())
        .enumerate()
        .map(|(i, url)| webhook(format!("--alert-webhook (URL number {})", i + 1), url))
        .collect()
}

/// `url` checked as a webhook channel named `name` (the flag and where: an error names it,
/// never the URL).
fn webhook(name: String, url: &str) -> Result<Secret, Failure> {
    let url = Secret::new(url.trim());
    let channel = Channel {
        name,
        kind: ChannelKind::Webhook { url: url.clone() },
    };
    channel
        .validate()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(url)
}

/// The URLs of `--alert-webhook-file`, each checked as [`alert_webhooks`] checks one; an error
/// names the file and the line, never the URL.
fn alert_webhook_file(file: &Path) -> Result<Vec<Secret>, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::Usage(format!("--alert-webhook-file {}: {e}", file.display())))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(i, line)| {
            webhook(
                format!("--alert-webhook-file {} line {}", file.display(), i + 1),
                line,
            )
        })
        .collect()
}

/// The TLS configuration the flags ask for, if any; a file that cannot be used is a usage
/// error naming the flag and the file.
fn tls_config(
    args: &ServerArgs,
    runtime: &tokio::runtime::Runtime,
    engine: &Engine,
) -> Result<Option<tls::TlsConfig>, Failure> {
    let usage = |e: tls::TlsError| Failure::Usage(e.to_string());
    // An empty SWARMKEEPER_TLS_SAN (the stack file's default) names nothing.
    let required: Vec<String> = args
        .tls_san
        .iter()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect();
    let Some(cert) = args.tls.certificate() else {
        return match required.first() {
            Some(name) => Err(Failure::Usage(format!(
                "invalid --tls-san \"{name}\": it names hosts in the self-signed certificate; give --tls-self-signed too"
            ))),
            None => Ok(None),
        };
    };
    let key = match &args.tls_key {
        // clap lets --tls-cert through only with --tls-key.
        Some(key) => {
            if let Some(name) = required.first() {
                return Err(Failure::Usage(format!(
                    "invalid --tls-san \"{name}\": with --tls-cert the certificate and its names are yours"
                )));
            }
            key.clone()
        }
        None => {
            let mut names = Vec::new();
            if let Ok(host) = rustix::system::uname().nodename().to_str() {
                names.push(host.to_owned());
            }
            if !args.listen.ip().is_unspecified() {
                names.push(args.listen.ip().to_string());
            }
            names.extend(swarm_node_names(runtime, engine));
            let (made, key) =
                tls::self_signed(&args.tls.state_dir, &names, &required).map_err(|e| {
                    if required.is_empty() {
                        usage(e)
                    } else {
                        Failure::Usage(format!("--tls-san {}: {e}", required.join(",")))
                    }
                })?;
            debug_assert_eq!(made, cert);
            tracing::info!(certificate = %cert.display(), "serving HTTPS with the self-signed certificate");
            key
        }
    };
    tls::load(&cert, &key).map(Some).map_err(usage)
}

/// The host names and addresses of the swarm's nodes, by which operators reach a dashboard
/// published through the routing mesh; none when the engine does not answer within 5 s or is
/// not a manager (the certificate then names this machine only, as before).
fn swarm_node_names(runtime: &tokio::runtime::Runtime, engine: &Engine) -> Vec<String> {
    let listed = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), engine.list_nodes()).await
    });
    match listed {
        Ok(Ok(nodes)) => nodes
            .into_iter()
            .flat_map(|node| [node.hostname, node.addr])
            .filter(|name| !name.is_empty() && name != "0.0.0.0")
            .collect(),
        Ok(Err(e)) => {
            tracing::info!(error = %e, "the self-signed certificate names no swarm node");
            Vec::new()
        }
        Err(_) => {
            tracing::info!(
                "the self-signed certificate names no swarm node: the engine did not answer in 5 s"
            );
            Vec::new()
        }
    }
}

/// Raises the soft limit on open files to the hard one, as Go programs do: the server may
/// hold thousands of connections (see `Limits::max_connections`), and a container's soft
/// limit can be 1024.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit {
            current: limit.maximum,
            ..limit
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(error = %e, "could not raise the open files limit");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_alert_webhooks_are_none() {
        let Ok(none) = alert_webhooks(&[String::new(), " ".into()]) else {
            panic!("empty entries refused")
        };
        assert!(none.is_empty());
        let Ok(one) = alert_webhooks(&[String::new(), "http://receiver:9000/h".into()]) else {
            panic!("a good URL refused")
        };
        assert_eq!(one.len(), 1);
    }

    /// Tryout 11 finding 12: a webhook URL given in the service's environment is shown to every
    /// operator on the edit page; a file (a Swarm secret) keeps it out.
    #[test]
    fn alert_webhook_file_reads_one_url_a_line_and_names_a_bad_line_not_its_url() {
        let dir = std::env::temp_dir().join(format!("sk-webhook-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hooks");
        std::fs::write(
            &file,
            "# alerts\nhttps://hooks.example.com/T0KEN\n\n  http://receiver:9000/h  \n",
        )
        .unwrap();
        let Ok(urls) = alert_webhook_file(&file) else {
            panic!("good URLs refused")
        };
        assert_eq!(urls.len(), 2);
        std::fs::write(&file, "https://ok.example/x\nftp://user:hunter2@x/y\n").unwrap();
        let Err(Failure::Usage(e)) = alert_webhook_file(&file) else {
            panic!("a bad URL accepted")
        };
        assert!(
            e.contains("--alert-webhook-file") && e.contains("line 2"),
            "{e}"
        );
        assert!(!e.contains("hunter2"), "{e}");
        let Err(Failure::Usage(e)) = alert_webhook_file(&dir.join("missing")) else {
            panic!("a missing file accepted")
        };
        assert!(e.starts_with("--alert-webhook-file "), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
