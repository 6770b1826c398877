//! A task of a service.

use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::image::ImageRef;
use crate::state::TaskState;
use crate::users::FileKind;
use crate::view::{template_files, template_limits, template_volumes, FileRef, ResourceAmounts};

/// One task of a service, as `GET /tasks` reports it. Its [`Default`] is a task Swarm has
/// just made (`new`), of no service yet.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Task {
    pub id: String,
    pub service_id: String,
    /// Replicated services number their tasks; global ones have none.
    pub slot: Option<u64>,
    pub node_id: String,
    /// What Swarm wants of the task: `running`, `shutdown`, `complete` (a job's), ….
    pub desired_state: TaskState,
    /// `Status.State`.
    pub state: TaskState,
    pub message: String,
    /// `Status.Err`, e.g. `no suitable node (…)` or `task: non-zero exit (1)`.
    pub err: String,
    pub timestamp: Option<Timestamp>,
    /// `Status.ContainerStatus.ExitCode`, only once the task has ended
    /// ([`TaskState::has_ended`]): a running container has no exit code, whatever `0` the
    /// engine reports for it.
    pub exit_code: Option<i64>,
    /// `Status.ContainerStatus.ContainerID`: set once the node has created the container.
    pub container_id: Option<String>,
    /// `CreatedAt`: when Swarm made the task.
    pub created_at: Option<Timestamp>,
    /// The task's own spec: the service's `TaskTemplate` when the task was made.
    pub spec: Value,
    /// `NetworksAttachments[].Network.ID`: the networks the task is attached to.
    pub networks: Vec<String>,
}

impl Task {
    /// `Spec.ContainerSpec.Image`: the image the task runs, as Swarm pinned it (often
    /// `name:tag@sha256:…`); empty when the spec names none.
    pub fn image(&self) -> ImageRef {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Spec<'a> {
            #[serde(borrow)]
            container_spec: Option<Container<'a>>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Container<'a> {
            #[serde(borrow)]
            image: Option<&'a str>,
        }
        let image = Spec::deserialize(&self.spec)
            .ok()
            .and_then(|s| s.container_spec)
            .and_then(|c| c.image)
            .unwrap_or_default();
        ImageRef::parse(image)
    }

    /// Swarm wants the task to run (its desired state is `running`): it counts towards the
    /// service's replicas, whatever its state now.
    pub fn is_wanted(&self) -> bool {
        self.desired_state == TaskState::Running
    }

    /// The task ended by itself (its process exited or failed, or its node rejected it)
    /// rather than being shut down by Swarm for an update, a scale-down or a drain: Swarm
    /// replaces such a task of a service, so each one is a restart (what the restart-loop
    /// alert counts). A job's task that completes is done, not restarted.
    pub fn ended_on_its_own(&self) -> bool {
        match self.state {
            TaskState::Failed | TaskState::Rejected => true,
            TaskState::Complete => self.desired_state != TaskState::Complete,
            _ => false,
        }
    }

    /// Swarm asked the task to stop before it exited (an update, a scale-down, a drain, a
    /// removal): its node's agent stopped the container and reported `shutdown`. A task that
    /// exited on its own is `failed` or `complete` even though Swarm then sets its desired
    /// state to `shutdown`, so the desired state alone does not tell.
    pub fn stopped_by_swarm(&self) -> bool {
        self.state == TaskState::Shutdown
    }

    /// Its slot as one key: the slot's number, or for a global service's task (which has
    /// none) its node's id. A slot keeps its key across the tasks that replace each other.
    pub fn slot_key(&self) -> String {
        match self.slot {
            Some(slot) => slot.to_string(),
            None => self.node_id.clone(),
        }
    }

    /// The named volumes the task's container mounts (`Spec.ContainerSpec.Mounts` of type
    /// `volume`): on its node, those volumes are in use while the task is.
    pub fn volumes(&self) -> Vec<String> {
        template_volumes(&self.spec)
    }

    /// The secrets or configs the task's own spec gives its container
    /// (`Spec.ContainerSpec.Secrets` or `.Configs`): those it was made with, which stay its
    /// own while its service moves on to other versions.
    pub fn files(&self, kind: FileKind) -> Vec<FileRef> {
        template_files(&self.spec, kind)
    }

    /// `Spec.Resources.Limits`: what the task's container may use (0: no limit).
    pub fn limits(&self) -> ResourceAmounts {
        template_limits(&self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tasks_that_ended_on_their_own_are_restarts_but_shut_down_ones_are_not() {
        let task = |state, desired_state| Task {
            state,
            desired_state,
            ..Task::default()
        };
        use TaskState::*;
        assert!(task(Failed, Shutdown).ended_on_its_own());
        assert!(task(Rejected, Shutdown).ended_on_its_own());
        assert!(task(Complete, Shutdown).ended_on_its_own());
        assert!(
            !task(Complete, Complete).ended_on_its_own(),
            "a job is done"
        );
        assert!(!task(Shutdown, Shutdown).ended_on_its_own(), "an update");
        assert!(!task(Running, Running).ended_on_its_own());
        assert!(task(Shutdown, Shutdown).stopped_by_swarm());
        assert!(
            !task(Failed, Shutdown).stopped_by_swarm(),
            "it failed, then Swarm wanted it gone"
        );
        assert!(!task(Complete, Shutdown).stopped_by_swarm());
    }

    #[test]
    fn a_task_mounts_its_named_volumes_not_binds_tmpfs_or_anonymous_ones() {
        let task = Task {
            spec: json!({"ContainerSpec": {"Mounts": [
                {"Type": "volume", "Source": "db_data", "Target": "/data"},
                {"Source": "cache", "Target": "/cache"},
                {"Type": "volume", "Target": "/anonymous"},
                {"Type": "bind", "Source": "/srv", "Target": "/srv"},
                {"Type": "tmpfs", "Target": "/tmp"}
            ]}}),
            ..Task::default()
        };
        assert_eq!(task.volumes(), ["db_data", "cache"]);
        assert!(Task::default().volumes().is_empty());
    }

    #[test]
    fn a_slot_is_its_number_or_a_global_tasks_node_and_limits_come_from_the_spec() {
        let task = Task {
            slot: Some(3),
            node_id: "n1".into(),
            spec: json!({"Resources": {"Limits": {"MemoryBytes": 16777216}}}),
            ..Task::default()
        };
        assert_eq!(task.slot_key(), "3");
        assert_eq!(task.limits().memory_bytes, 16 << 20);
        let global = Task { slot: None, ..task };
        assert_eq!(global.slot_key(), "n1");
        assert_eq!(Task::default().limits(), ResourceAmounts::default());
    }

    #[test]
    fn the_image_comes_from_the_task_spec() {
        let mut task = Task {
            desired_state: TaskState::Running,
            spec: json!({"ContainerSpec": {"Image": "app:1@sha256:abc"}}),
            ..Task::default()
        };
        assert_eq!(task.image().name, "app:1");
        assert!(task.is_wanted());
        task.spec = json!({"ContainerSpec": null});
        assert_eq!(task.image(), ImageRef::default());
    }
}
