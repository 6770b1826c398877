//! One service rolled out to another image — what auto-deploy does when a followed tag moved —
//! as a revision of its stack: the same lock, following, stack-wide rollback and history as
//! a deploy of files. The stack's other services are part of the revision, unchanged (no
//! spec written), so the revision is a whole stack that a rollback can return to.
//!
//! The service is read just before the change: if it no longer runs the image the change was
//! decided on (someone deployed meanwhile), nothing is changed. The image edit is made on the
//! spec as read, so every other setting stays as its owner left it.

use std::collections::HashMap;

use swarmkeeper_engine::{set_image, Service, STACK_NAMESPACE_LABEL};

use crate::apply::{registry_auths, Target};
use crate::{current_services, DeployError, Request};

/// A service to roll out to another image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageUpdate {
    /// The service's name.
    pub service: String,
    /// The image to run, pinned: `registry:5000/app:1@sha256:…`.
    pub image: String,
    /// `ContainerSpec.Image` when the update was decided. If the service runs another image
    /// now, nothing is changed ([`DeployError::Input`]).
    pub expected: String,
    /// The revision's summary, e.g. `auto-deploy: tag app:1 moved to sha256:…`.
    pub reason: String,
}

/// The stack whose history a service's revisions go to: its `com.docker.stack.namespace`
/// label, else (a service created outside any stack) its own name.
pub fn history_stack(service: &Service) -> &str {
    service
        .view
        .labels
        .get(STACK_NAMESPACE_LABEL)
        .map_or(service.name.as_str(), String::as_str)
}

/// The services as they are and the targets: the updated one with its image changed, every
/// other service of the stack as it is.
pub(crate) async fn prepare(
    engine: &swarmkeeper_engine::Engine,
    request: &Request,
    update: &ImageUpdate,
) -> Result<(HashMap<String, Service>, Vec<Target>), DeployError> {
    let auths = registry_auths(request, [update.image.clone()]).await?;
    let service = engine.inspect_service(&update.service).await?;
    let stack = history_stack(&service).to_string();
    if stack != request.stack {
        return Err(DeployError::Input(format!(
            "service {} belongs to {stack}, not to {}",
            update.service, request.stack
        )));
    }
    let current = if service.view.labels.contains_key(STACK_NAMESPACE_LABEL) {
        current_services(engine, &stack).await?
    } else {
        HashMap::from([(service.name.clone(), service)])
    };
    let Some(now) = current.get(&update.service) else {
        return Err(DeployError::Input(format!(
            "service {} was removed meanwhile; nothing changed",
            update.service
        )));
    };
    let running = now.view.image.to_string();
    if running != update.expected {
        return Err(DeployError::Input(format!(
            "service {} runs {running} now, not {}: it was changed meanwhile; nothing changed",
            update.service, update.expected
        )));
    }
    let mut names: Vec<&String> = current.keys().collect();
    names.sort();
    let targets = names
        .into_iter()
        .map(|name| {
            let mut desired = current[name].spec.clone();
            let registry_auth = if *name == update.service {
                set_image(&mut desired, &update.image);
                auths.get(&update.image).cloned().flatten()
            } else {
                None
            };
            Target {
                name: name.clone(),
                desired,
                registry_auth,
            }
        })
        .collect();
    Ok((current, targets))
}
