//! Deploys and rollbacks of the server — from the dashboard, the API and auto-deploy — run
//! here: `swarmkeeper_deploy`, the same code as `swarmkeeper deploy`, on a thread of its own.
//! A dashboard change followed live hands its [`Job`] to [`run_deploy_followed`]: each
//! progress line reaches the job's page as the deploy engine reports it.

use std::sync::Arc;

use swarmkeeper_deploy::{DeployError, Progress, SwarmHistory};

use crate::error::AppError;
use crate::jobs::Job;
use crate::state::AppState;

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
    std::thread::Builder::new()
        .name("deploy".into())
        .spawn(move || {
            let outcome = (|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                let mut lines = Vec::new();
                let mut progress = |p: Progress<'_>| {
                    let line = progress_line(&p);
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
        Progress::State { service, state } => match state.why() {
            Some(why) => format!("{service}: {} ({why})", state.label()),
            None => format!("{service}: {}", state.label()),
        },
        Progress::StackRollback { reason } => format!("rolling the stack back: {reason}"),
    }
}
