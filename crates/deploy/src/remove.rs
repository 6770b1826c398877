//! A whole stack removed, as `docker stack rm` does: its services first, then its secrets and
//! configs, then its networks, each found by the `com.docker.stack.namespace` label.

use std::time::Duration;

use serde::Serialize;
use swarmkeeper_engine::{Engine, EngineError, SwarmObject};

/// What a stack holds, by name: what [`remove_stack`] removes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StackObjects {
    pub services: Vec<String>,
    pub secrets: Vec<String>,
    pub configs: Vec<String>,
    pub networks: Vec<String>,
}

impl StackObjects {
    /// Whether the stack holds nothing at all.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
            && self.secrets.is_empty()
            && self.configs.is_empty()
            && self.networks.is_empty()
    }
}

/// How long a network may stay in use by the removed services' tasks while they stop: Swarm
/// refuses to remove a network a task is still attached to.
const NETWORK_GRACE: Duration = Duration::from_secs(30);

/// A stack's objects as the engine lists them: services, secrets, configs, networks.
type Listed = (
    Vec<swarmkeeper_engine::Service>,
    Vec<SwarmObject>,
    Vec<SwarmObject>,
    Vec<SwarmObject>,
);

async fn list(engine: &Engine, stack: &str) -> Result<Listed, EngineError> {
    tokio::try_join!(
        engine.list_services(Some(stack)),
        engine.list_secrets(Some(stack)),
        engine.list_configs(Some(stack)),
        engine.list_networks(Some(stack)),
    )
}

fn named((services, secrets, configs, networks): &Listed) -> StackObjects {
    let mut service_names: Vec<String> = services.iter().map(|s| s.name.clone()).collect();
    service_names.sort();
    StackObjects {
        services: service_names,
        secrets: names(secrets),
        configs: names(configs),
        networks: names(networks),
    }
}

/// The objects labelled as `stack`'s, by name, sorted.
pub async fn stack_objects(engine: &Engine, stack: &str) -> Result<StackObjects, EngineError> {
    Ok(named(&list(engine, stack).await?))
}

fn names(objects: &[SwarmObject]) -> Vec<String> {
    let mut names: Vec<String> = objects.iter().map(|o| o.name.clone()).collect();
    names.sort();
    names
}

/// Removes every object of `stack` in `docker stack rm`'s order and answers what it removed.
/// An object already gone counts as removed; a network still in use by stopping tasks is
/// tried again for up to 30 s. The first other refusal stops the removal and is returned (what
/// was removed before it stays removed, as with `docker stack rm`).
pub async fn remove_stack(engine: &Engine, stack: &str) -> Result<StackObjects, EngineError> {
    let listed = list(engine, stack).await?;
    let (services, secrets, configs, networks) = &listed;
    for service in services {
        engine.remove_service(&service.id).await?;
    }
    for secret in secrets {
        engine.remove_secret(&secret.id).await?;
    }
    for config in configs {
        engine.remove_config(&config.id).await?;
    }
    for network in networks {
        remove_network(engine, network).await?;
    }
    Ok(named(&listed))
}

async fn remove_network(engine: &Engine, network: &SwarmObject) -> Result<(), EngineError> {
    let deadline = tokio::time::Instant::now() + NETWORK_GRACE;
    loop {
        match engine.remove_network(&network.id).await {
            Err(e) if in_use(&e) && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            result => return result,
        }
    }
}

/// Swarm's "network … is in use by task …", answered as 409 or, by some versions, 400 or 500.
fn in_use(error: &EngineError) -> bool {
    matches!(error, EngineError::Api { message, .. } if message.contains("in use"))
}
