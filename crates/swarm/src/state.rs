//! The values the engine enumerates as text. Each is an enum with an `Other` case that keeps a
//! value this crate does not know, so a newer engine never makes an answer unreadable
//! ([`swarmkeeper_units::words`]).

swarmkeeper_units::words! {
    /// A task's `Status.State` or `DesiredState`, in the order Swarm moves a task through them.
    pub enum TaskState {
        New => "new",
        Allocated => "allocated",
        Pending => "pending",
        Assigned => "assigned",
        Accepted => "accepted",
        Preparing => "preparing",
        Ready => "ready",
        Starting => "starting",
        Running => "running",
        Complete => "complete",
        Shutdown => "shutdown",
        Failed => "failed",
        Rejected => "rejected",
        Remove => "remove",
        Orphaned => "orphaned",
    }
}

/// A task Swarm has just made.
impl Default for TaskState {
    fn default() -> TaskState {
        TaskState::New
    }
}

impl TaskState {
    /// Swarm is still placing or starting the task (`new` … `starting`): why it waits is in
    /// the task's message or error.
    pub fn is_waiting(&self) -> bool {
        matches!(
            self,
            TaskState::New
                | TaskState::Allocated
                | TaskState::Pending
                | TaskState::Assigned
                | TaskState::Accepted
                | TaskState::Preparing
                | TaskState::Ready
                | TaskState::Starting
        )
    }

    /// The task is past running: its container, if it had one, has exited or been stopped
    /// (`complete`, `shutdown`, `failed`, `rejected`, `remove`, `orphaned`). Only then does
    /// its exit code mean anything: the engine reports `ExitCode: 0` for a running container.
    pub fn has_ended(&self) -> bool {
        matches!(
            self,
            TaskState::Complete
                | TaskState::Shutdown
                | TaskState::Failed
                | TaskState::Rejected
                | TaskState::Remove
                | TaskState::Orphaned
        )
    }

    /// The task ended badly: `failed`, `rejected` (the node could not start it, e.g. "No
    /// such image") or `orphaned` (its node went away).
    pub fn is_failed(&self) -> bool {
        matches!(
            self,
            TaskState::Failed | TaskState::Rejected | TaskState::Orphaned
        )
    }
}

swarmkeeper_units::words! {
    /// A service's `UpdateStatus.State`. The Engine API's swagger lists three; Swarm sends six.
    pub enum UpdateState {
        Updating => "updating",
        Paused => "paused",
        Completed => "completed",
        RollbackStarted => "rollback_started",
        RollbackPaused => "rollback_paused",
        RollbackCompleted => "rollback_completed",
    }
}

impl UpdateState {
    /// Swarm's updater is done with the service, one way or the other: nothing it does will
    /// change the tasks until the next update (`completed`, `rollback_completed`).
    pub fn is_settled(&self) -> bool {
        matches!(
            self,
            UpdateState::Completed | UpdateState::RollbackCompleted
        )
    }
}

swarmkeeper_units::words! {
    /// `UpdateConfig.FailureAction`: what Swarm does when an update's tasks fail.
    pub enum FailureAction {
        /// Swarm's default: stop where it is, with the service half-updated.
        Pause => "pause",
        Continue => "continue",
        Rollback => "rollback",
    }
}

swarmkeeper_units::words! {
    /// `UpdateConfig.Order`.
    pub enum UpdateOrder {
        /// Swarm's default: stop the old task, then start its replacement.
        StopFirst => "stop-first",
        /// Start the replacement first; the old task serves until then.
        StartFirst => "start-first",
    }
}

swarmkeeper_units::words! {
    /// `TaskTemplate.RestartPolicy.Condition`.
    pub enum RestartCondition {
        /// Swarm's default: restart whatever the exit.
        Any => "any",
        OnFailure => "on-failure",
        None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_unknown_ones_are_kept() {
        for state in ["new", "running", "complete", "rejected", "orphaned"] {
            assert_eq!(TaskState::parse(state).as_str(), state);
        }
        assert_eq!(
            TaskState::parse("hibernating"),
            TaskState::Other("hibernating".into())
        );
        assert_eq!(TaskState::from("running"), TaskState::Running);
        assert_eq!(
            UpdateState::parse("rollback_completed"),
            UpdateState::RollbackCompleted
        );
        assert_eq!(
            serde_json::to_string(&UpdateState::RollbackPaused).unwrap(),
            "\"rollback_paused\""
        );
        let parsed: FailureAction = serde_json::from_str("\"rollback\"").unwrap();
        assert_eq!(parsed, FailureAction::Rollback);
    }

    #[test]
    fn task_states_are_classified() {
        assert!(TaskState::Preparing.is_waiting() && !TaskState::Running.is_waiting());
        assert!(TaskState::Rejected.is_failed() && TaskState::Orphaned.is_failed());
        assert!(!TaskState::Complete.is_failed() && !TaskState::Shutdown.is_failed());
        assert!(!TaskState::Other("x".into()).is_failed());
    }
}
