//! A service as the engine holds it.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::Value;

use crate::state::UpdateState;
use crate::view::{ServiceView, SpecError};

/// The spec's field with the template of its tasks.
const TASK_TEMPLATE: &str = "TaskTemplate";

/// The label `docker stack deploy` puts on everything of a stack.
pub const STACK_NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

/// Checks a stack's name before anything is asked of the engine: Swarm names the stack's
/// services and networks `STACK_NAME`, and swarmkit refuses an object name that is not a DNS
/// name component (letters and digits, with `-` or `_` only between them; at most 63
/// characters) — so a name it would refuse half-way through a deploy is refused here first.
/// An empty name matters most: as a filter it would select every stack's services.
///
/// Errors: the message to show, quoting the name.
pub fn check_stack_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let alphanumeric = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    let valid = !bytes.is_empty()
        && bytes.len() <= 63
        && alphanumeric(bytes.first())
        && alphanumeric(bytes.last())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid stack name {name:?}: use up to 63 letters, digits, '-' or '_', starting and \
             ending with a letter or digit (Swarm names the stack's services STACK_SERVICE, and \
             refuses names that are not DNS name components)"
        ))
    }
}

/// A service as the engine holds it: the raw spec to write back, and the same spec read typed.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub id: String,
    /// `Version.Index`, needed by an update.
    pub version: u64,
    /// `Spec.Name`.
    pub name: String,
    /// The raw spec (`Spec`), as a later update must send it back.
    pub spec: Value,
    /// `spec` read typed when the service was read; editing `spec` does not change it.
    pub view: ServiceView,
    /// The spec before the last update; cleared by an automatic rollback.
    pub previous_spec: Option<Value>,
    /// `None` when the engine reports none: the service was never updated, or only scaled.
    pub update_status: Option<UpdateStatus>,
    /// `CreatedAt`, by the manager's clock (`None` until the engine's answer sets it).
    pub created_at: Option<Timestamp>,
    /// `UpdatedAt`, by the manager's clock: the last change of the service's spec or status.
    pub updated_at: Option<Timestamp>,
}

impl Service {
    /// A service from the engine's parts, its spec read typed ([`ServiceView::read`]).
    pub fn new(
        id: String,
        version: u64,
        spec: Value,
        previous_spec: Option<Value>,
        update_status: Option<UpdateStatus>,
    ) -> Result<Service, SpecError> {
        let view = ServiceView::read(&spec)?;
        Ok(Service {
            id,
            version,
            name: view.name.clone(),
            spec,
            view,
            previous_spec: previous_spec.filter(|s| !s.is_null()),
            update_status,
            created_at: None,
            updated_at: None,
        })
    }

    /// `Spec.Labels`.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.view.labels
    }

    /// The stack the service belongs to, when it has one.
    pub fn stack(&self) -> Option<&str> {
        self.view.stack()
    }

    /// `Spec.TaskTemplate`, raw (`Null` when the spec has none): each task carries a copy of
    /// the template it was made from, which tells old tasks from current ones.
    pub fn task_template(&self) -> &Value {
        self.spec
            .as_object()
            .and_then(|spec| spec.get(TASK_TEMPLATE))
            .unwrap_or(&Value::Null)
    }

    /// The update state, when the engine reports one.
    pub fn update_state(&self) -> Option<&UpdateState> {
        self.update_status.as_ref().map(|u| &u.state)
    }
}

/// `UpdateStatus`: how Swarm's last update (or rollback) of the service went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateStatus {
    pub state: UpdateState,
    pub started_at: Option<Timestamp>,
    pub completed_at: Option<Timestamp>,
    /// Why it paused or rolled back, in the engine's words.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stack_names_are_those_swarm_accepts_for_its_services() {
        for name in ["shop", "shop_v2", "a-b_c1", "A", &"a".repeat(63)] {
            assert_eq!(check_stack_name(name), Ok(()), "{name}");
        }
        // What the engine refuses with "name must be valid as a DNS name component" (checked
        // against Docker 20.10: `a.b` and `a-` are refused as service names).
        let long = "a".repeat(64);
        for name in [
            "", " ", "a.b", "shop-", "-shop", "_x", "Try_Bad!", "a/b", &long,
        ] {
            let message = check_stack_name(name).unwrap_err();
            assert!(message.contains(&format!("{name:?}")), "{message}");
        }
    }
}
