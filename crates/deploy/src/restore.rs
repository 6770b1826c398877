//! Putting every service a failed deploy changed back as it was: restore its spec, remove it,
//! or follow Swarm's own rollback, then follow each until it settles.

use std::fmt;

use swarmkeeper_engine::{Engine, EngineError};
use swarmkeeper_rollout::{RollbackAction, ServiceState};

use crate::apply::{image_of, registry_auths, update_to, Applied};
use crate::follow::{look, nodes};
use crate::{Action, Options, Progress, Request};

/// How a service ended after a failed deploy was put back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Restored {
    /// It runs the spec it had before the deploy again.
    Restored,
    /// The deploy had created it; it is gone.
    Removed,
    /// Swarm had rolled it back by itself.
    RolledBackBySwarm,
    /// Putting it back did not converge either: the state it ended in and why.
    Failed { state: &'static str, why: String },
}

impl Restored {
    /// Where a service being put back ended. Pure.
    pub(crate) fn from_state(state: &ServiceState) -> Restored {
        match state {
            ServiceState::Converged | ServiceState::RolledBack { .. } => Restored::Restored,
            other => Restored::Failed {
                state: other.label(),
                why: other.why().unwrap_or_default().to_string(),
            },
        }
    }
}

impl fmt::Display for Restored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Restored::Restored => f.write_str("restored"),
            Restored::Removed => f.write_str("removed"),
            Restored::RolledBackBySwarm => f.write_str("rolled back by Swarm"),
            Restored::Failed { state, why } => write!(f, "{state}: {why}"),
        }
    }
}

/// What [`put_back`] did.
pub(crate) struct PutBack {
    /// Each service and how it ended.
    pub ended: Vec<(String, Restored)>,
    /// Stopped ([`Options::stop`]) while it followed: those still moving are left to Swarm.
    pub stopped: bool,
}

/// Carries out the stack rollback and follows it. Every change is sent even when a stop is
/// asked for meanwhile (a half rolled back stack is worse than a whole one); the following
/// stops.
pub(crate) async fn put_back(
    engine: &Engine,
    request: &Request,
    applied: &[Applied],
    actions: Vec<RollbackAction>,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<PutBack, EngineError> {
    let mut following: Vec<Applied> = Vec::new();
    let mut ended = Vec::new();
    for action in actions {
        let change = applied
            .iter()
            .find(|a| a.name == action.service())
            .expect("the rollback names services the deploy changed");
        match action {
            RollbackAction::Remove { service } => {
                engine.remove_service(&change.id).await?;
                progress(Progress::Action {
                    service: &service,
                    action: Action::Remove,
                });
                ended.push((service, Restored::Removed));
            }
            RollbackAction::Restore { service, spec } => {
                let auth = restore_auth(request, &spec, progress).await;
                let (id, baseline) = if change.action == Action::Remove {
                    // This run removed it: putting it back is creating it again.
                    let created = engine.create_service(&spec, auth.as_deref()).await?;
                    (created.id, None)
                } else {
                    let current = engine.inspect_service(&change.id).await?;
                    let before =
                        update_to(engine, current, &spec, auth.as_deref(), progress).await?;
                    (before.id, before.update_status)
                };
                progress(Progress::Action {
                    service: &service,
                    action: Action::Restore,
                });
                following.push(Applied::started(
                    service,
                    Action::Restore,
                    None,
                    spec,
                    id,
                    baseline,
                ));
            }
            RollbackAction::LeaveToSwarm { service } => {
                if matches!(change.state, ServiceState::RolledBack { .. }) {
                    ended.push((service, Restored::RolledBackBySwarm));
                    continue;
                }
                // Follow Swarm's own rollback until it completes.
                let current = engine.inspect_service(&change.id).await?;
                following.push(Applied::started(
                    service,
                    Action::SwarmRollback,
                    None,
                    current.spec,
                    current.id,
                    None,
                ));
            }
        }
    }
    let stopped =
        !following.is_empty() && follow_back(engine, &mut following, options, progress).await?;
    ended.extend(
        following
            .into_iter()
            .map(|f| (f.name, Restored::from_state(&f.state))),
    );
    Ok(PutBack { ended, stopped })
}

/// The credentials for the image a service goes back to. Putting back must go on without
/// them, so a failure to get them is a warning.
async fn restore_auth(
    request: &Request,
    spec: &serde_json::Value,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Option<String> {
    let found = match image_of(spec) {
        Ok(image) => registry_auths(request, [image.clone()])
            .await
            .map(|mut auths| auths.remove(&image).flatten()),
        Err(e) => Err(e),
    };
    found.unwrap_or_else(|e| {
        progress(Progress::Warning(&format!(
            "{e}; putting it back without them"
        )));
        None
    })
}

/// Follows services being put back: each until it converges or fails on its own; `true`
/// when stopped ([`Options::stop`]) before.
async fn follow_back(
    engine: &Engine,
    following: &mut [Applied],
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<bool, EngineError> {
    loop {
        let nodes = nodes(engine).await?;
        for change in following.iter_mut().filter(|a| !a.state.is_final()) {
            let look = look(engine, change, &nodes, options).await?;
            change.changed_at = change.changed_at.or(look.changed_at);
            let state = look.state;
            // Swarm's own rollback shows as rolling back until it completes.
            let state = match state {
                ServiceState::RollingBack { .. } => ServiceState::started(),
                other => other,
            };
            if state != change.state {
                progress(Progress::State {
                    service: &change.name,
                    state: &state,
                });
                change.state = state;
            }
        }
        if following.iter().all(|a| a.state.is_final()) {
            return Ok(false);
        }
        tokio::select! {
            _ = tokio::time::sleep(options.poll) => {}
            _ = options.stop.wait() => return Ok(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_put_back_ends_restored_or_says_why_not() {
        assert_eq!(
            Restored::from_state(&ServiceState::Converged),
            Restored::Restored
        );
        assert_eq!(
            Restored::from_state(&ServiceState::RolledBack { why: "x".into() }),
            Restored::Restored
        );
        let stuck = Restored::from_state(&ServiceState::TimedOut {
            why: "0/1 tasks running".into(),
        });
        assert_eq!(stuck.to_string(), "timed out: 0/1 tasks running");
        assert_eq!(
            Restored::RolledBackBySwarm.to_string(),
            "rolled back by Swarm"
        );
    }
}
