//! Following changed services until each converges or fails: the engine's service events wake
//! the loop, a poll covers task changes, and `rollout` says what each look means.

use std::time::Duration;

use futures_util::StreamExt;
use jiff::Timestamp;
use swarmkeeper_engine::{is_logs_unreadable, Engine, EngineError, LogOptions, Task};
use swarmkeeper_rollout::{assess, observe, verdict, Follow, ServiceState, Verdict};

use crate::apply::Applied;
use crate::{FailureReport, Options, Progress};

/// Follows every applied service until the verdict is not `Wait`.
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
            let (state, failure_at) = looks.next().expect("one look per service")?;
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
        }
    }
}

/// One look at a service: its state and, when it failed, when the engine reported that.
pub(crate) async fn look(
    engine: &Engine,
    change: &Applied,
    options: &Options,
) -> Result<(ServiceState, Option<Timestamp>), EngineError> {
    let service = match engine.inspect_service(&change.id).await {
        Ok(service) => service,
        Err(e) if e.is_not_found() => {
            return Ok((
                ServiceState::Failed {
                    why: "the service was removed while the deploy followed it".to_string(),
                },
                None,
            ))
        }
        Err(e) => return Err(e),
    };
    let tasks = engine.list_tasks(&change.id).await?;
    let tasks: Vec<&Task> = tasks.iter().collect();
    let observed = observe(&service, &tasks, change.baseline.as_ref());
    let follow = Follow {
        elapsed: change.applied_at.elapsed(),
        timeout: options.timeout,
        max_failed_tasks: options.max_failed_tasks,
    };
    Ok((assess(&observed, &follow), observed.failure_reported_at()))
}

/// How many log lines a failure report shows, and how long reading them may take.
const REPORT_LINES: u64 = 10;
const REPORT_LOGS_WITHIN: Duration = Duration::from_secs(5);

/// The failing service's error and its last log lines.
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
        tail: Some(REPORT_LINES),
        timestamps: false,
    };
    let logs = tokio::time::timeout(REPORT_LOGS_WITHIN, async {
        let mut stream = engine.service_logs(&change.id, &options).await?;
        let mut lines = Vec::new();
        while let Some(line) = stream.next().await {
            lines.push(line?.text);
        }
        Ok::<_, EngineError>(lines)
    })
    .await;
    match logs {
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
