//! `swarmkeeper deploy -c FILE… STACK`: deploy a stack like `docker stack deploy`, with safe
//! defaults, live progress, and a stack-wide rollback when any service fails.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use swarmkeeper_deploy::{
    Action, DeployError, Options, Outcome, Progress, Request, Stack, Stop, SwarmHistory,
};
use swarmkeeper_engine::Engine;
use swarmkeeper_rollout::revisions::DEFAULT_KEEP_REVISIONS;
use swarmkeeper_store::Store;
use swarmkeeper_units::parse_duration;

use super::diff::PlanArgs;
use super::registry::RegistryArgs;
use super::ComposeFiles;
use crate::exit::{block_on, CmdResult, Failure};

#[derive(Args)]
pub struct DeployArgs {
    #[command(flatten)]
    compose: ComposeFiles,
    /// The stack's name (the `com.docker.stack.namespace` label and the services' prefix).
    #[arg(value_parser = super::stack_name)]
    stack: String,
    #[command(flatten)]
    common: RolloutArgs,
    #[command(flatten)]
    plan: PlanArgs,
    /// Show what the deploy would do (as `swarmkeeper diff` does) and change nothing; exit 0
    /// when nothing would change, 1 when something would.
    #[arg(long)]
    dry_run: bool,
    /// Deploy even when lint finds error-level problems in the files.
    #[arg(long)]
    ignore_lint: bool,
}

/// What `deploy` and `rollback` share.
#[derive(Args)]
pub struct RolloutArgs {
    /// Roll back a service that has not converged after this long.
    #[arg(long, default_value = "10m", value_parser = parse_duration, value_name = "DURATION")]
    pub timeout: Duration,
    /// Live view on a terminal, or one line per change (the default when stdout is not a
    /// terminal).
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Who deploys, for the history [default: the OS user's name].
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// Fail at once when another deploy of the stack runs, instead of waiting for it.
    #[arg(long)]
    pub no_wait: bool,
    /// Keep the newest N revisions of the stack in the swarm's history.
    #[arg(long, env = "SWARMKEEPER_KEEP_REVISIONS", default_value_t = DEFAULT_KEEP_REVISIONS as u64,
          value_parser = clap::value_parser!(u64).range(1..), value_name = "N")]
    pub keep_revisions: u64,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub registry: RegistryArgs,
}

impl RolloutArgs {
    /// The options both commands take from these flags.
    pub fn options(&self) -> Options {
        Options {
            timeout: self.timeout,
            wait: !self.no_wait,
            ..Options::default()
        }
    }

    /// The swarm's history, this machine's local one imported first (see
    /// [`StateArgs::history`]).
    pub async fn history(&self, engine: &Engine) -> SwarmHistory {
        self.state.history(engine, self.keep_revisions).await
    }
}

#[derive(Args)]
pub struct StateArgs {
    /// Where earlier versions kept this machine's deploy history; it is imported into the
    /// swarm once, then no longer written [default: ~/.local/state/swarmkeeper].
    #[arg(long, env = "SWARMKEEPER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

impl StateArgs {
    /// The deploy history kept in the swarm, after this machine's local history (if any) has
    /// been imported into it, once. What the import did goes to stderr, so that stdout stays
    /// the command's own (`history --json`).
    pub async fn history(&self, engine: &Engine, keep: u64) -> SwarmHistory {
        let history = SwarmHistory::new(engine.clone())
            .keep_revisions(usize::try_from(keep).unwrap_or(usize::MAX));
        let Some(dir) = self.state_dir.clone().or_else(default_state_dir) else {
            return history;
        };
        let imported = match Store::open_existing(&dir) {
            Ok(Some(store)) => history.import(&store).await,
            Ok(None) => return history,
            Err(e) => Err(e.into()),
        };
        let file = dir.join(swarmkeeper_store::DB_FILE);
        match imported {
            Ok(done) => {
                for (stack, count) in done.imported {
                    eprintln!(
                        "imported {count} revision(s) of {stack} from {} into the swarm's \
                         history; that file is no longer written",
                        file.display()
                    );
                }
                for (stack, count) in done.skipped {
                    eprintln!(
                        "note: the swarm already has a history of {stack}: the {count} \
                         revision(s) of it in {} were not imported",
                        file.display()
                    );
                }
            }
            Err(e) => eprintln!(
                "warning: the deploy history in {} could not be imported into the swarm: {e}",
                file.display()
            ),
        }
        history
    }
}

/// Where earlier versions kept the deploy history: `$XDG_STATE_HOME/swarmkeeper`, else
/// `~/.local/state/swarmkeeper`.
fn default_state_dir() -> Option<PathBuf> {
    if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(state).join("swarmkeeper"));
    }
    std::env::var_os("HOME")
        .filter(|s| !s.is_empty())
        .map(|home| PathBuf::from(home).join(".local/state/swarmkeeper"))
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Live lines on a terminal, plain lines otherwise.
    Auto,
    /// One timestamped line per change.
    Plain,
}

/// Who deploys: `--by`, else `USER` or `LOGNAME`, else the name the system gives this
/// process's user (a CI job in a container often has no `USER`: it is `root`, not `uid 0`),
/// else the uid.
pub fn who(by: &Option<String>) -> String {
    by.clone()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .or_else(|| std::env::var("LOGNAME").ok().filter(|u| !u.is_empty()))
        .or_else(|| whoami::username().ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| format!("uid {}", rustix::process::getuid().as_raw()))
}

pub fn run(args: DeployArgs) -> CmdResult {
    let (Stack { spec, files }, digests) =
        super::diff::load(&args.compose, &args.stack, !args.ignore_lint)?;
    let engine = Engine::from_env()?;
    let request = Request {
        stack: args.stack.clone(),
        by: who(&args.common.by),
        action: None,
        files: digests,
        registry_auth: args.common.registry.registry_auth()?,
    };
    let options = Options {
        timeout: args.common.timeout,
        wait: !args.common.no_wait,
        ..args.plan.options()
    };
    if args.dry_run {
        return super::diff::show(&request, Stack { spec, files }, &options, false);
    }
    let mut view = View::new(args.common.progress);
    let result = block_on(async {
        stop_on_signals(&options.stop);
        let history = args.common.history(&engine).await;
        swarmkeeper_deploy::deploy(
            &engine,
            &history,
            &request,
            Stack { spec, files },
            &options,
            &mut |p| view.show(p),
        )
        .await
    });
    view.finish();
    conclude(&args.stack, "deploy", result)
}

/// A signal that stops a deploy or a rollback.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StopSignal {
    Interrupt,
    Terminate,
}

impl StopSignal {
    const ALL: [StopSignal; 2] = [StopSignal::Interrupt, StopSignal::Terminate];

    fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "SIGINT",
            StopSignal::Terminate => "SIGTERM",
        }
    }

    /// The exit status a shell reports for a process the signal ended: 128 + its number.
    /// PRODUCT.md gives no code of its own for an interrupted command.
    fn exit_code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 128 + 2,
            StopSignal::Terminate => 128 + 15,
        }
    }

    fn named(why: &str) -> Option<StopSignal> {
        StopSignal::ALL.into_iter().find(|s| s.name() == why)
    }
}

/// Ctrl-C, `timeout`, a CI job cancelled: the first SIGINT or SIGTERM asks the run to stop at
/// its next safe point (it records the revision as interrupted, with what it applied and what
/// it did not, and gives the stack's lock back, so the next deploy does not wait for the lock
/// to expire); a second one ends the process at once. Must be called on the runtime; when the
/// signals cannot be caught, says so and leaves them to end the process.
pub fn stop_on_signals(stop: &Stop) {
    use tokio::signal::unix::{signal, Signal, SignalKind};
    let caught =
        signal(SignalKind::interrupt()).and_then(|i| Ok((i, signal(SignalKind::terminate())?)));
    let (mut interrupt, mut terminate) = match caught {
        Ok(both) => both,
        Err(e) => {
            eprintln!(
                "warning: SIGINT and SIGTERM cannot be caught ({e}): they end the run at once"
            );
            return;
        }
    };
    async fn next(interrupt: &mut Signal, terminate: &mut Signal) -> StopSignal {
        tokio::select! {
            _ = interrupt.recv() => StopSignal::Interrupt,
            _ = terminate.recv() => StopSignal::Terminate,
        }
    }
    let stop = stop.clone();
    tokio::spawn(async move {
        stop.request(next(&mut interrupt, &mut terminate).await.name());
        let second = next(&mut interrupt, &mut terminate).await;
        eprintln!(
            "swarmkeeper: {} again: exiting at once; the revision is left unfinished and the \
             stack's lock expires within a minute",
            second.name()
        );
        std::process::exit(i32::from(second.exit_code()));
    });
}

/// A deploy that could not run: bad input (and a rollback's target refused) exits 2, the
/// engine 3.
pub fn failure(error: DeployError) -> Failure {
    match error {
        DeployError::Engine(e) => e.into(),
        DeployError::Store(e) => Failure::Usage(e.to_string()),
        DeployError::Input(message) | DeployError::Refused(message) => Failure::Usage(message),
        busy @ DeployError::Busy { .. } => Failure::Failed(busy.to_string()),
    }
}

/// `println!` for `deploy` and `rollback`, which must not stop halfway when their output
/// closes (`deploy … | head`): a write error is ignored, so the run still follows, rolls back
/// and records its revision, and exits with its own code (the panic `println!` raises on a
/// closed pipe would end it with [`crate::exit::CLOSED_PIPE`] instead).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Prints the outcome and maps it to the exit code.
pub fn conclude(stack: &str, what: &str, result: Result<Outcome, DeployError>) -> CmdResult {
    let outcome = result.map_err(failure)?;
    if let Some(stopped) = &outcome.interrupted {
        let recorded = match outcome.revision {
            Some(r) => {
                format!("revision {r} is recorded as interrupted and the stack's lock is released")
            }
            None => "no revision was begun and the stack's lock is not held".to_owned(),
        };
        return Err(Failure::Interrupted {
            code: StopSignal::named(&stopped.why).map_or(1, StopSignal::exit_code),
            message: format!("{what} of {stack} {}; {recorded}", stopped.summary()),
        });
    }
    let revision = outcome
        .revision
        .map(|r| format!(" (revision {r})"))
        .unwrap_or_default();
    if outcome.succeeded {
        let changed = outcome
            .services
            .iter()
            .filter(|s| s.action != Action::Unchanged)
            .count();
        say!(
            "{what} of {stack} succeeded{revision}: {changed} service(s) changed, {} unchanged",
            outcome.services.len() - changed
        );
        return Ok(());
    }
    say!("{what} of {stack} failed{revision}; every service it changed was put back:");
    for failure in &outcome.failures {
        say!("  {} failed: {}", failure.service, failure.why);
        if let Some(note) = &failure.logs_note {
            say!("    logs: {note}");
        } else if !failure.logs.is_empty() {
            say!("    last log lines:");
            for line in &failure.logs {
                say!("      {line}");
            }
        }
    }
    for (service, end) in &outcome.rolled_back {
        say!("  {service}: {end}");
    }
    if let Some(reaction) = outcome.rollback_reaction {
        say!(
            "  rollback requested {} ms after the engine reported the failure",
            reaction.as_millis()
        );
    }
    let names: Vec<&str> = outcome
        .failures
        .iter()
        .map(|f| f.service.as_str())
        .collect();
    Err(Failure::Failed(format!(
        "{what} of {stack} rolled back: {} failed",
        names.join(", ")
    )))
}

/// The progress view: on a terminal, one live line per service (indicatif) with notes printed
/// above them; elsewhere, one timestamped line per change, for CI logs.
pub struct View {
    live: Option<MultiProgress>,
    started: Instant,
    bars: BTreeMap<String, ProgressBar>,
}

impl View {
    pub fn new(mode: ProgressMode) -> View {
        let live = mode == ProgressMode::Auto && std::io::stdout().is_terminal();
        View {
            live: live.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout())),
            started: Instant::now(),
            bars: BTreeMap::new(),
        }
    }

    pub fn show(&mut self, progress: Progress<'_>) {
        match progress {
            Progress::Note(text) => self.message(text.to_string()),
            Progress::Warning(text) => self.message(format!("warning: {text}")),
            Progress::Action { service, action } => self.message(format!("{service}: {action}")),
            Progress::StackRollback { reason } => self.message(format!(
                "rolling back every service this run changed: {reason}"
            )),
            Progress::State { service, state } => {
                let line = format!("{service}: {}", state.describe());
                let Some(multi) = &self.live else {
                    return self.plain(&line);
                };
                let bar = self.bars.entry(service.to_string()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {msg}")
                            .expect("a fixed template parses"),
                    );
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                bar.set_message(line);
            }
        }
    }

    fn plain(&self, line: &str) {
        say!("[{:6.1}s] {line}", self.started.elapsed().as_secs_f64());
    }

    fn message(&mut self, text: String) {
        match &self.live {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => self.plain(&text),
        }
    }

    /// Leaves each service's last line on the screen.
    pub fn finish(&mut self) {
        for bar in self.bars.values() {
            bar.finish();
        }
    }
}
