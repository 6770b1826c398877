//! Container GC: which stopped containers to remove before images are planned.
//!
//! Swarm keeps the containers of finished tasks (up to its task-history limit per slot), and each
//! one pins its image. swarmkeeper removes Swarm task containers that have been in a terminal
//! state for at least `container_min_age`, keeping the newest one of each service slot, because
//! its logs explain the slot's last failure. Under space pressure the min-age does not hold
//! them: a service updated every few seconds would otherwise pin its last versions' images
//! until the disk is full. Standalone containers belong to an operator and are touched only
//! when the policy says so.

use jiff::Timestamp;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::{Container, Policy, LABEL_PIN, LABEL_SERVICE_NAME, LABEL_TASK_ID, LABEL_TASK_NAME};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContainerRemoval<'a> {
    pub id: &'a str,
    pub image_id: &'a str,
    pub reason: ContainerRemovalReason,
    /// The Swarm service the container ran a task of, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContainerRemovalReason {
    /// A finished Swarm task container, superseded by a newer one in its slot.
    DeadTask,
    /// A stopped standalone container, removed because the policy prunes them.
    Standalone,
}

/// The containers to remove, in the order the snapshot lists them. With `space_needed`, a
/// finished Swarm task container goes whatever its age (the newest of its slot still stays).
pub fn plan_containers<'a>(
    containers: &'a [Container],
    policy: &Policy,
    now: Timestamp,
    space_needed: bool,
) -> Vec<ContainerRemoval<'a>> {
    let finished_long_enough = |c: &Container| {
        let finished = c.finished_at.unwrap_or(c.created);
        let min_age = if space_needed && task_slot(c).is_some() {
            std::time::Duration::ZERO
        } else {
            policy.container_min_age()
        };
        c.state.is_terminal()
            && now.duration_since(finished).unsigned_abs() >= min_age
            && now >= finished
            && c.labels.get(LABEL_PIN).map(String::as_str) != Some("true")
    };

    // The newest terminal container of each slot is kept whatever its age.
    let mut newest_per_slot: FxHashMap<&str, &Container> = FxHashMap::default();
    for c in containers.iter().filter(|c| c.state.is_terminal()) {
        if let Some(slot) = task_slot(c) {
            newest_per_slot
                .entry(slot)
                .and_modify(|kept| {
                    if recency(c) > recency(kept) {
                        *kept = c;
                    }
                })
                .or_insert(c);
        }
    }

    containers
        .iter()
        .filter(|c| finished_long_enough(c))
        .filter_map(|c| {
            let service = c.labels.get(LABEL_SERVICE_NAME).map(String::as_str);
            let reason = match task_slot(c) {
                Some(slot) if newest_per_slot[slot].id != c.id => ContainerRemovalReason::DeadTask,
                Some(_) => return None,
                None if policy.prune_standalone_containers() => ContainerRemovalReason::Standalone,
                None => return None,
            };
            Some(ContainerRemoval {
                id: &c.id,
                image_id: &c.image_id,
                reason,
                service,
            })
        })
        .collect()
}

fn recency(c: &Container) -> (Timestamp, Timestamp, &str) {
    (c.finished_at.unwrap_or(c.created), c.created, &c.id)
}

/// The service slot a task container belongs to: its task name without the task id
/// (`web.3.<id>` is slot `web.3`; a global service's `agent.<node>.<id>` is one per node).
/// `None` for a container that is not a Swarm task.
fn task_slot(c: &Container) -> Option<&str> {
    let service = c.labels.get(LABEL_SERVICE_NAME)?;
    c.labels.get(LABEL_TASK_ID)?;
    let slot = c
        .labels
        .get(LABEL_TASK_NAME)
        .and_then(|name| name.rsplit_once('.').map(|(slot, _task)| slot))
        .unwrap_or(service);
    Some(slot)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::{ContainerState, PolicySettings};

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn task(id: &str, slot: &str, state: ContainerState, finished: &str) -> Container {
        let service = slot.split('.').next().unwrap();
        let labels = BTreeMap::from([
            (LABEL_SERVICE_NAME.to_string(), service.to_string()),
            (LABEL_TASK_ID.to_string(), id.to_string()),
            (LABEL_TASK_NAME.to_string(), format!("{slot}.{id}")),
        ]);
        Container {
            id: id.into(),
            image_id: format!("sha256:{id}"),
            state,
            created: ts("2026-11-26T09:00:00Z"),
            finished_at: Some(ts(finished)),
            labels,
        }
    }

    fn policy(prune_standalone: bool) -> Policy {
        Policy::new(PolicySettings {
            container_min_age: Duration::from_secs(60),
            prune_standalone_containers: prune_standalone,
            ..PolicySettings::default()
        })
        .unwrap()
    }

    const NOW: &str = "2026-11-26T12:00:00Z";

    #[test]
    fn keeps_the_newest_finished_task_of_each_slot() {
        use ContainerState::*;
        let containers = vec![
            task("a", "web.1", Exited, "2026-11-26T10:00:00Z"),
            task("b", "web.1", Exited, "2026-11-26T11:00:00Z"),
            task("c", "web.1", Running, "2026-11-26T11:00:00Z"),
            task("d", "web.2", Dead, "2026-11-26T10:00:00Z"),
            task("e", "agent.node1", Exited, "2026-11-26T10:00:00Z"),
            task("f", "agent.node1", Exited, "2026-11-26T10:30:00Z"),
        ];
        let removed: Vec<_> = plan_containers(&containers, &policy(false), ts(NOW), false)
            .into_iter()
            .map(|r| (r.id.to_string(), r.reason))
            .collect();
        assert_eq!(
            removed,
            vec![
                ("a".to_string(), ContainerRemovalReason::DeadTask),
                ("e".to_string(), ContainerRemovalReason::DeadTask)
            ]
        );
    }

    #[test]
    fn young_and_pinned_containers_stay() {
        use ContainerState::*;
        let mut pinned = task("p", "web.1", Exited, "2026-11-26T10:00:00Z");
        pinned.labels.insert(LABEL_PIN.into(), "true".into());
        let containers = vec![
            pinned,
            task("young", "web.1", Exited, "2026-11-26T11:59:30Z"),
            task("newest", "web.1", Exited, "2026-11-26T11:59:50Z"),
        ];
        assert!(plan_containers(&containers, &policy(false), ts(NOW), false).is_empty());
    }

    #[test]
    fn under_space_pressure_young_dead_tasks_go_too() {
        use ContainerState::*;
        let mut standalone = task("s", "x.1", Exited, "2026-11-26T11:59:50Z");
        standalone.labels.clear();
        let containers = vec![
            task("young", "web.1", Exited, "2026-11-26T11:59:30Z"),
            task("newest", "web.1", Exited, "2026-11-26T11:59:50Z"),
            standalone,
        ];
        assert!(plan_containers(&containers, &policy(true), ts(NOW), false).is_empty());
        let removed: Vec<_> = plan_containers(&containers, &policy(true), ts(NOW), true)
            .into_iter()
            .map(|r| r.id)
            .collect();
        // The newest of the slot keeps its logs; a standalone container keeps its min-age.
        assert_eq!(removed, ["young"]);
    }

    #[test]
    fn standalone_containers_only_with_the_flag() {
        let mut c = task("s", "x.1", ContainerState::Exited, "2026-11-26T10:00:00Z");
        c.labels.clear();
        assert!(
            plan_containers(std::slice::from_ref(&c), &policy(false), ts(NOW), false).is_empty()
        );
        let containers = [c];
        let removed = plan_containers(&containers, &policy(true), ts(NOW), false);
        assert_eq!(removed[0].reason, ContainerRemovalReason::Standalone);
        assert_eq!(removed[0].service, None);
    }

    #[test]
    fn a_finish_time_in_the_future_is_not_old() {
        let c = task("f", "web.1", ContainerState::Exited, "2026-11-26T13:00:00Z");
        let older = task("o", "web.1", ContainerState::Exited, "2026-11-26T12:30:00Z");
        assert!(plan_containers(&[c, older], &policy(false), ts(NOW), false).is_empty());
    }
}
