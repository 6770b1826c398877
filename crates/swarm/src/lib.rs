//! Swarm's objects as swarmkeeper reads them: a [`Service`] and its [`ServiceView`], a
//! [`Task`], and their states.
//!
//! **Specs are written raw, read typed.** A service's spec stays the engine's JSON
//! ([`Service::spec`], a [`serde_json::Value`]): an update sends it back whole, with every field
//! this crate does not know. Everything that *reads* a spec goes through [`ServiceView`] —
//! mode, replicas, image and digest, log driver, restart policy, healthcheck, update and
//! rollback configs with Swarm's defaults filled in — so each fact about a spec is read in one
//! place. States the engine enumerates ([`TaskState`], [`UpdateState`], …) are enums with an
//! `Other` case for values a newer engine may send.
//!
//! This is the engine crate's model, kept apart so that the pure crates (`rollout`, `lint`)
//! can read it: no I/O here. `swarmkeeper-engine` decodes the Engine API's answers into these
//! types and re-exports them; only those two crates know the Engine API's field names.

mod exit;
mod image;
mod service;
mod state;
mod task;
mod users;
mod view;

pub use exit::{exit_wording, processes_killed, sigkill_unverified, task_outcome, ExitFacts};
pub use image::ImageRef;
pub use service::{check_stack_name, Service, UpdateStatus, STACK_NAMESPACE_LABEL};
pub use state::{FailureAction, RestartCondition, TaskState, UpdateOrder, UpdateState};
pub use task::Task;
pub use users::{file_users, FileKind, FileUsers, TaskHolding};
pub use view::{
    FileRef, Healthcheck, LogDriver, MountView, Platform, PortConfig, PublishMode, ResourceAmounts,
    RestartPolicy, ServiceMode, ServiceView, SpecError, UpdateConfig, DEFAULT_HEALTH_INTERVAL,
    DEFAULT_HEALTH_RETRIES, DEFAULT_HEALTH_TIMEOUT,
};
