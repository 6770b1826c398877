//! What a deploy would do, computed from the same prepared specs a deploy applies
//! (`swarmkeeper diff`, `deploy --dry-run`). The comparison is `rollout::service_diff`'s.

use swarmkeeper_rollout::{service_diff, DiffKind, ServiceDiff};

use crate::objects::StackObject;
use crate::Prepared;

/// What a deploy would do to a stack.
#[derive(Clone, Debug)]
pub struct Preview {
    /// Each service of the files by name, then (with `prune`) each one it would remove.
    pub services: Vec<ServiceDiff>,
    /// The stack's networks, secrets and configs, and which would be created.
    pub objects: Vec<StackObject>,
    /// Services of the stack the files no longer name, which a deploy without `--prune`
    /// leaves as they are.
    pub left_alone: Vec<String>,
}

impl Preview {
    /// Whether the deploy would change anything at all.
    pub fn changes_anything(&self) -> bool {
        self.services.iter().any(|s| s.kind != DiffKind::Unchanged)
            || self.objects.iter().any(|o| o.create)
    }
}

pub(crate) fn compare(prepared: Prepared, prune: bool) -> Preview {
    let Prepared {
        current,
        mut targets,
        objects,
        ..
    } = prepared;
    targets.sort_by(|a, b| a.name.cmp(&b.name));
    let mut services: Vec<ServiceDiff> = targets
        .iter()
        .map(|t| {
            service_diff(
                &t.name,
                Some(&t.desired),
                current.get(&t.name).map(|s| &s.spec),
            )
        })
        .collect();
    let mut gone: Vec<&String> = current
        .keys()
        .filter(|name| !targets.iter().any(|t| &t.name == *name))
        .collect();
    gone.sort();
    let mut left_alone = Vec::new();
    for name in gone {
        if prune {
            services.push(service_diff(name, None, Some(&current[name].spec)));
        } else {
            left_alone.push(name.clone());
        }
    }
    Preview {
        services,
        objects,
        left_alone,
    }
}
