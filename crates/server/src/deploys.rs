//! Deploys and rollbacks of the server — from the dashboard, the API and auto-deploy — run
//! here: `swarmkeeper_deploy`, the same code as `swarmkeeper deploy`, on a thread of its own.
//! A dashboard change followed live hands its [`Job`] to [`run_deploy_followed`]: each
//! progress line reaches the job's page as the deploy engine reports it.
//!
//! On shutdown ([`Runs::stop_all`]) every deploy is asked to stop at its next safe point
//! (the deploy engine's [`Stop`]): it records its revision `interrupted` with what it applied,
//! gives its stack's lock back, and Swarm goes on with the rollouts it started. The server
//! waits for that at most [`STOP_GRACE`], within Docker's default 10 s stop grace period.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use swarmkeeper_deploy::{DeployError, Options, Progress, Stop, SwarmHistory};
use tokio::sync::watch;

use crate::error::AppError;
use crate::jobs::Job;
use crate::state::AppState;

/// How long a shutdown waits for the deploys it stopped to record themselves.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// The deploys running on this server: how to stop them and how many there are.
pub struct Runs {
    stop: Stop,
    running: watch::Sender<usize>,
}

impl Default for Runs {
    fn default() -> Runs {
        Runs {
            stop: Stop::default(),
            running: watch::Sender::new(0),
        }
    }
}

impl Runs {
    /// The options of every deploy, preview and rollback of the server: the defaults, with its
    /// `--deploy-timeout`, stopped by [`Runs::stop_all`].
    pub fn options(&self, timeout: Duration) -> Options {
        Options {
            timeout,
            stop: self.stop.clone(),
            ..Options::default()
        }
    }

    /// Asks every deploy, running or to come, to stop (`why` goes into their records), then
    /// waits until none runs, at most `grace`; answers whether none does.
    pub async fn stop_all(&self, why: &str, grace: Duration) -> bool {
        self.stop.request(why);
        let mut running = self.running.subscribe();
        let idle = tokio::time::timeout(grace, running.wait_for(|&n| n == 0)).await;
        idle.is_ok()
    }

    /// Counts a deploy as running until the guard goes.
    fn enter(&self) -> Running<'_> {
        self.running.send_modify(|n| *n += 1);
        Running(&self.running)
    }
}

struct Running<'a>(&'a watch::Sender<usize>);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// What a job given to [`run_deploy`] returns: the deploy, borrowing the history and the
/// progress callback.
pub(crate) type DeployRun<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, DeployError>> + 'a>>;

/// Runs a deploy or rollback on its own thread with a runtime of its own: the deploy holds
/// its progress callback (not `Send`) across its awaits. The history is the swarm's; the
/// lock's heartbeat runs on that runtime while the deploy does.
///
/// A job may answer something else than an [`Outcome`](swarmkeeper_deploy::Outcome): a deploy's preview (`T`) runs the same
/// way, since it holds the progress callback too.
pub(crate) async fn run_deploy<F, T>(
    state: &AppState,
    job: F,
) -> Result<(Result<T, DeployError>, Vec<String>), AppError>
where
    T: Send + 'static,
    F: for<'a> FnOnce(&'a SwarmHistory, &'a mut dyn FnMut(Progress<'_>)) -> DeployRun<'a, T>
        + Send
        + 'static,
{
    run_deploy_followed(state, None, job).await
}

/// [`run_deploy`], each progress line also given to `follower` the moment it is reported.
pub(crate) async fn run_deploy_followed<F, T>(
    state: &AppState,
    follower: Option<Arc<Job>>,
    job: F,
) -> Result<(Result<T, DeployError>, Vec<String>), AppError>
where
    T: Send + 'static,
    F: for<'a> FnOnce(&'a SwarmHistory, &'a mut dyn FnMut(Progress<'_>)) -> DeployRun<'a, T>
        + Send
        + 'static,
{
    let history = state.history();
    let (done, result) = tokio::sync::oneshot::channel();
    let counted = state.clone();
    std::thread::Builder::new()
        .name("deploy".into())
        .spawn(move || {
            let _running = counted.deploys.enter();
            let outcome = (|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                let mut lines = Vec::new();
                // A service's state is reported at each poll; a line that says nothing new is
                // left out (tryout 14: "updating" seven times in a row).
                let mut last_state: HashMap<String, String> = HashMap::new();
                let mut progress = |p: Progress<'_>| {
                    let line = progress_line(&p);
                    if let Progress::State { service, .. } = &p {
                        if last_state.get(*service) == Some(&line) {
                            return;
                        }
                        last_state.insert(service.to_string(), line.clone());
                    }
                    if let Some(follower) = &follower {
                        follower.line(&line);
                    }
                    lines.push(line);
                };
                let outcome = runtime.block_on(job(&history, &mut progress));
                Ok::<_, String>((outcome, lines))
            })();
            let _ = done.send(outcome);
        })
        .map_err(AppError::internal)?;
    result
        .await
        .map_err(AppError::internal)?
        .map_err(AppError::internal)
}

fn progress_line(progress: &Progress<'_>) -> String {
    match progress {
        Progress::Note(note) => note.to_string(),
        Progress::Warning(warning) => format!("warning: {warning}"),
        Progress::Action { service, action } => format!("{service}: {action}"),
        Progress::State { service, state } => format!("{service}: {}", state.describe()),
        Progress::StackRollback { reason } => format!("rolling the stack back: {reason}"),
    }
}

/// What a server that stops does about its deploys: asks each to stop at its next safe point
/// (recorded `interrupted`, Swarm carrying on with what was applied), waits for them at most
/// [`STOP_GRACE`], and ends every job still running `interrupted` in memory and the ledger,
/// so its page says so after the restart.
pub(crate) async fn stop_for_shutdown(state: &AppState) {
    // A re-key moves this server to its new key: that move is what stops it (tryout 12: its
    // revision read like any interrupted deploy).
    let why = if state.rekeying.load(std::sync::atomic::Ordering::SeqCst) {
        "the server's restart onto the re-key's new key, as the re-key planned"
    } else {
        "the server's shutdown"
    };
    let deadline = tokio::time::Instant::now() + STOP_GRACE;
    if !state.deploys.stop_all(why, STOP_GRACE).await {
        tracing::warn!(
            "deploys still running at shutdown: their revisions show them interrupted once \
             their stack's lock expires"
        );
    }
    for job in state.jobs.running() {
        // The job ends once its deploy's outcome is audited and described.
        let mut changed = job.subscribe();
        let ended = tokio::time::timeout_at(deadline, async {
            while job.seen(usize::MAX).end.is_none() && changed.changed().await.is_ok() {}
        })
        .await;
        if ended.is_ok() {
            continue;
        }
        job.finish(crate::jobs::JobEnd {
            succeeded: false,
            outcome: format!("interrupted by {why}"),
            links: job.about.clone(),
            notes: vec![
                "The server stopped before this change recorded its end. Swarm goes on with \
                 any update it had started: each service's update_config decides whether \
                 Swarm rolls it back on failure (failure_action: rollback) or pauses it; the \
                 history and the service's page show where it stands."
                    .to_owned(),
            ],
        });
        if let Some(end) = job.seen(usize::MAX).end {
            crate::jobs::record_end(state, &job, &end);
        }
    }
}

/// What Swarm does now with the rollouts of `services` that an interrupted run no longer
/// follows, a sentence each, from each service's `update_config.failure_action` (Swarm's own
/// rollback, a pause, or carrying on) and its update state.
pub(crate) async fn swarm_carries_on(state: &AppState, services: &[String]) -> Vec<String> {
    use swarmkeeper_engine::FailureAction;
    let mut notes = Vec::with_capacity(services.len());
    for name in services {
        let note = match state.engine.inspect_service(name).await {
            Ok(service) => {
                let on_failure = match service.view.update_config.failure_action {
                    FailureAction::Rollback => {
                        "if a new task fails, Swarm rolls the service back by itself \
                         (update_config failure_action: rollback)"
                    }
                    FailureAction::Pause => {
                        "if a new task fails, Swarm pauses the update with the service half \
                         updated (failure_action: pause): roll back from its page"
                    }
                    FailureAction::Continue => {
                        "Swarm carries on even when new tasks fail (failure_action: continue)"
                    }
                    _ => "see its update_config failure_action",
                };
                format!(
                    "{name}: the update is Swarm's and goes on without swarmkeeper following \
                     it; {on_failure}."
                )
            }
            Err(e) => format!("{name}: cannot be read now ({e}); see its page."),
        };
        notes.push(note);
    }
    notes
}
