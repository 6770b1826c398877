//! Following changed services until each converges or fails: the engine's service events wake
//! the loop, a poll covers task changes, and `rollout` says what each look means.

use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use swarmkeeper_engine::{is_logs_unreadable, Engine, EngineError, LogOptions, Task, TaskState};
use swarmkeeper_rollout::{assess, observe, verdict, Follow, Monitor, ServiceState, Verdict};

use crate::apply::Applied;
use crate::{Action, FailureReport, Options, Progress};

/// Follows every applied service until the verdict is not `Wait`; `Wait` when stopped
/// ([`Options::stop`]) before that.
pub(crate) async fn follow(
    engine: &Engine,
    applied: &mut [Applied],
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Verdict, EngineError> {
    let mut events = engine.service_events(None);
    loop {
        let looks = futures_util::future::join_all(
            applied
                .iter()
                .filter(|a| !a.state.is_final())
                .map(|a| look(engine, a, options)),
        )
        .await;
        let mut looks = looks.into_iter();
        for change in applied.iter_mut().filter(|a| !a.state.is_final()) {
            let (state, failure_at, failing_task) = looks.next().expect("one look per service")?;
            change.failing_task = failing_task;
            if state != change.state {
                progress(Progress::State {
                    service: &change.name,
                    state: &state,
                });
                if state.is_failure() {
                    change.failure_at = Some(failure_at.unwrap_or_else(Timestamp::now));
                }
                change.state = state;
            }
        }
        let verdict = verdict(applied.iter().map(|a| &a.state));
        if verdict != Verdict::Wait {
            return Ok(verdict);
        }
        // An event about a service wakes us early; the timer covers task changes.
        tokio::select! {
            _ = events.next() => {}
            _ = tokio::time::sleep(options.poll) => {}
            _ = options.stop.wait() => return Ok(Verdict::Wait),
        }
    }
}

/// A task that failed before the change was made (an earlier, rolled back attempt at the same
/// spec) and that Swarm no longer means to run says nothing about this change. The margin
/// covers the clocks of this machine and the manager.
const EARLIER_ATTEMPT_MARGIN: jiff::SignedDuration = jiff::SignedDuration::from_secs(1);

/// One look at a service: its state, when it failed when the engine reported that, and the
/// task whose failure it reports.
pub(crate) async fn look(
    engine: &Engine,
    change: &Applied,
    options: &Options,
) -> Result<(ServiceState, Option<Timestamp>, Option<String>), EngineError> {
    let service = match engine.inspect_service(&change.id).await {
        Ok(service) => service,
        Err(e) if e.is_not_found() => {
            return Ok((
                ServiceState::Failed {
                    why: "the service was removed while the deploy followed it".to_string(),
                },
                None,
                None,
            ))
        }
        Err(e) => return Err(e),
    };
    let tasks = engine.list_tasks(&change.id).await?;
    let cutoff = change
        .applied_ts
        .checked_sub(EARLIER_ATTEMPT_MARGIN)
        .unwrap_or(change.applied_ts);
    let tasks: Vec<&Task> = tasks
        .iter()
        .filter(|t| {
            let earlier = t.created_at.is_some_and(|created| created < cutoff);
            !(earlier && t.desired_state != TaskState::Running && t.state.is_failed())
        })
        .collect();
    let observed = observe(&service, &tasks, change.baseline.as_ref());
    let follow = Follow {
        elapsed: change.applied_at.elapsed(),
        timeout: options.timeout,
        max_failed_tasks: options.max_failed_tasks,
        // A created service has no update for Swarm's updater to watch: its first tasks get
        // the same monitor window here (a job's tasks are meant to end), read from the
        // manager's times and this machine's monotonic clock, never the two compared.
        monitor: (change.action == Action::Create && !observed.mode.is_job()).then(|| Monitor {
            window: service.view.update_config.monitor,
            changed_at: service.created_at,
            since_change: change.applied_at.elapsed(),
        }),
    };
    let failing_task = observed.failing_task().map(|t| t.id.clone());
    Ok((
        assess(&observed, &follow),
        observed.failure_reported_at(),
        failing_task,
    ))
}

/// How many log lines a failure report shows, how many of the service's last lines are
/// searched for the failing task's, and how long reading them may take.
const REPORT_LINES: u64 = 10;
const REPORT_SEARCHED_LINES: u64 = 1000;
const REPORT_LOGS_WITHIN: Duration = Duration::from_secs(5);

/// The failing service's error and the last log lines of the task that failed (not those of
/// an older, healthy task of the service, which would say nothing about the failure).
pub(crate) async fn failure_report(engine: &Engine, change: &Applied) -> FailureReport {
    let mut report = FailureReport {
        service: change.name.clone(),
        why: change.state.why().unwrap_or_default().to_string(),
        logs: Vec::new(),
        logs_note: None,
    };
    let options = LogOptions {
        follow: false,
        since: None,
        tail: Some(REPORT_SEARCHED_LINES),
        timestamps: false,
    };
    let logs = tokio::time::timeout(REPORT_LOGS_WITHIN, async {
        let mut stream = engine.service_logs(&change.id, &options).await?;
        let mut lines = Vec::new();
        while let Some(line) = stream.next().await {
            let line = line?;
            let own = match (&change.failing_task, &line.task_id) {
                (Some(failing), Some(task)) => failing == task,
                _ => true,
            };
            if own {
                lines.push(line.text);
            }
        }
        Ok::<_, EngineError>(lines)
    })
    .await;
    match logs {
        Ok(Ok(lines)) if lines.is_empty() && change.failing_task.is_some() => {
            report.logs_note = Some("the failing task wrote no log lines".to_string());
        }
        Ok(Ok(lines)) => {
            let skip = lines.len().saturating_sub(REPORT_LINES as usize);
            report.logs = lines.into_iter().skip(skip).collect();
        }
        Ok(Err(e)) if is_logs_unreadable(&e) => report.logs_note = Some(
            "its log driver keeps nothing readable; use `logging: {driver: local}` to read logs"
                .to_string(),
        ),
        Ok(Err(e)) => report.logs_note = Some(format!("logs could not be read: {e}")),
        Err(_) => {
            report.logs_note = Some(format!(
                "logs did not come within {}s",
                REPORT_LOGS_WITHIN.as_secs()
            ))
        }
    }
    report
}
