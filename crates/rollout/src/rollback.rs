//! What a failed deploy does to every service it changed.

use serde_json::Value;

use crate::assess::ServiceState;

/// One service this deploy changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub service: String,
    /// The spec before this deploy; `None` when the deploy created the service.
    pub before: Option<Value>,
    pub state: ServiceState,
}

/// What to do to one service when the deploy fails.
#[derive(Clone, Debug, PartialEq)]
pub enum RollbackAction {
    /// Put the spec it had before this deploy back.
    Restore { service: String, spec: Value },
    /// The deploy created it: remove it.
    Remove { service: String },
    /// Swarm is already rolling it back to the spec before this deploy (its `PreviousSpec`).
    LeaveToSwarm { service: String },
}

impl RollbackAction {
    /// The service the action is about.
    pub fn service(&self) -> &str {
        match self {
            RollbackAction::Restore { service, .. }
            | RollbackAction::Remove { service }
            | RollbackAction::LeaveToSwarm { service } => service,
        }
    }
}

/// Every service the deploy changed goes back to the spec it had before, the failed ones
/// included; services Swarm already rolls back are left to it.
pub fn stack_rollback(changes: &[Change]) -> Vec<RollbackAction> {
    changes
        .iter()
        .map(|change| {
            let service = change.service.clone();
            match (&change.state, &change.before) {
                (ServiceState::RollingBack { .. } | ServiceState::RolledBack { .. }, Some(_)) => {
                    RollbackAction::LeaveToSwarm { service }
                }
                (_, Some(spec)) => RollbackAction::Restore {
                    service,
                    spec: spec.clone(),
                },
                (_, None) => RollbackAction::Remove { service },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stack_rollback_restores_removes_or_leaves_to_swarm() {
        let changes = vec![
            Change {
                service: "a".into(),
                before: Some(json!({"Name": "a"})),
                state: ServiceState::RollingBack { why: "x".into() },
            },
            Change {
                service: "b".into(),
                before: Some(json!({"Name": "b"})),
                state: ServiceState::Converged,
            },
            Change {
                service: "c".into(),
                before: None,
                state: ServiceState::Converged,
            },
            Change {
                service: "d".into(),
                before: Some(json!({"Name": "d"})),
                state: ServiceState::TimedOut { why: "t".into() },
            },
        ];
        let actions = stack_rollback(&changes);
        assert_eq!(
            actions,
            vec![
                RollbackAction::LeaveToSwarm {
                    service: "a".into()
                },
                RollbackAction::Restore {
                    service: "b".into(),
                    spec: json!({"Name": "b"})
                },
                RollbackAction::Remove {
                    service: "c".into()
                },
                RollbackAction::Restore {
                    service: "d".into(),
                    spec: json!({"Name": "d"})
                },
            ]
        );
        let names: Vec<&str> = actions.iter().map(RollbackAction::service).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }
}
