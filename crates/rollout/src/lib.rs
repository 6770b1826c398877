//! Rollout decisions, with no I/O, one concern per module:
//!
//! - [`observe`] and [`assess`]: a service and its tasks as plain data, whether it has
//!   [`converged`] (the one definition the CLI and the dashboard share), and how one service's
//!   update is going;
//! - [`verdict`]: whether the whole deploy has succeeded, failed or must wait;
//! - [`stack_rollback`]: what to do to every other service when one fails;
//! - [`preflight`]: placement constraints that leave a service no node, ports two services
//!   would publish, checked before a deploy changes anything; whether a task fits a node
//!   (`preflight::misfit`), defined once for the preflight and [`placement`] (a drain's
//!   preview);
//! - [`apply_safe_defaults`]: the safe defaults swarmkeeper adds to a spec, as a table, and
//!   [`cured_findings`]: which lint findings they cure, as a deploy review marks them;
//! - [`spec_matches`]: whether a spec differs from the engine's at all, so that a deploy that
//!   changes nothing touches nothing, and [`service_diff`]: what a deploy would do to a
//!   service, field by field (`swarmkeeper diff`, `deploy --dry-run`);
//! - [`revisions`]: a history kept in the swarm — which revisions to forget, when a deploy
//!   lock has expired, whether a revision without an end still runs.
//!
//! The shell (the deploy crate, the server) observes the engine, hands the observation over as
//! plain data and carries the decisions out.

mod assess;
mod credentials;
mod cured;
mod defaults;
mod diff;
pub mod placement;
pub mod preflight;
pub mod revisions;
mod rollback;

pub use assess::{
    assess, converged, observe, requested_rollback, tally, verdict, waiting_reason,
    without_grpc_wrapper, Follow, Monitor, ObservedService, ObservedTask, ServiceState, Tally,
    Verdict, DEFAULT_MAX_FAILED_TASKS,
};
pub use credentials::{holds_credential, shown, shown_entry, CHANGED, CREDENTIAL_WORDS, HIDDEN};
pub use cured::{cured_findings, cured_rules};
pub use defaults::{apply_safe_defaults, Note, SAFE_DEFAULTS};
pub use diff::{
    changes, describe_change, describe_changes, drop_unsupported, service_diff, spec_matches,
    task_is_current, DiffKind, FieldChange, ServiceDiff, ADDED_IN_API, IMAGE_PATH,
};
pub use rollback::{stack_rollback, Change, RollbackAction};
