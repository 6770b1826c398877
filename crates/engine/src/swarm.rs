//! Swarm objects: services, tasks, networks, secrets and configs of a stack, service events,
//! and registry digests (`/distribution`), as `docker stack deploy` uses them. Service logs are
//! in [`crate::logs`].
//!
//! Specs are written raw, read typed. They travel as [`serde_json::Value`]: the caller builds
//! them (the compose crate serialises Engine-shaped specs) and compares them with what the
//! engine holds, so this crate neither drops nor reorders a field it does not know. The
//! engine's raw spec is returned (no `insertDefaults`), which is what a later update must send
//! back, together with its typed [`crate::ServiceView`] for everything that reads it.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;

use crate::edit::{force_update, set_replicas};
use crate::http::encode;
use crate::wire::{engine_time, nullable};
use crate::STACK_NAMESPACE_LABEL;
use crate::{Engine, EngineError, Service, Task, TaskState, UpdateState, UpdateStatus};

/// Bounds one request/answer exchange (not a followed stream).
pub(crate) const SWARM_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How often [`Engine::scale_service`] and [`Engine::force_update_service`] read and send a
/// service whose version keeps moving. Once more is not enough: Swarm's own updater bumps the
/// version when it records an update's start (`UpdateStatus`), so a change sent right after
/// another one can be out of sequence twice in a row (seen on 20.10 with two changes at once).
const CHANGE_ATTEMPTS: u32 = 4;

/// A network, secret or config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwarmObject {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `CreatedAt` (`Created` for a network); `None` when the engine gives none.
    pub created_at: Option<Timestamp>,
}

/// A network as `GET /networks` reports it, for the networks page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// `overlay`, `bridge`, `host`, `null`, …
    pub driver: String,
    /// `swarm` or `local`.
    pub scope: String,
    /// Standalone containers may attach (`docker run --network`).
    pub attachable: bool,
    /// No route out of the network.
    pub internal: bool,
    /// An overlay whose traffic between nodes is encrypted (IPsec): the driver option
    /// `encrypted` (`docker network create --opt encrypted`).
    pub encrypted: bool,
    /// Swarm's routing-mesh network.
    pub ingress: bool,
    pub labels: BTreeMap<String, String>,
    /// `IPAM.Config[]`: (subnet, gateway), either may be empty.
    pub subnets: Vec<(String, String)>,
    pub created_at: Option<Timestamp>,
}

/// A config with its data and the manager's bookkeeping: what a record kept in the swarm
/// (the deploy history, its locks) reads back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigObject {
    pub id: String,
    /// `Version.Index`: a label update names it, and a stale one is refused (HTTP 500 "update
    /// out of sequence", [`is_out_of_sequence`]).
    pub version: u64,
    /// Set by the managers, so every reader compares times of one clock.
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `Spec.Data`, decoded from base64.
    pub data: Vec<u8>,
}

/// A network, secret or config as its create request takes it back (`POST /networks/create`,
/// `/secrets/create`, `/configs/create`): what a deploy revision records of the objects its
/// services use, so that a rollback can create one again once it is gone.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectSpec {
    /// The id the services' specs name it by.
    pub id: String,
    pub name: String,
    /// The create body: a network's name, driver, scope, options, IPAM, flags and labels; a
    /// secret's or config's `Spec` as the engine keeps it (a secret's without data, which the
    /// engine never gives back; a config's with its base64 `Data`).
    pub spec: Value,
}

/// What a rollback reads of a recorded [`ObjectSpec::spec`]: its labels, and whether a driver
/// (an external secret store) supplies its data, so that no data has to be given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectSpecView {
    pub labels: BTreeMap<String, String>,
    /// `Driver.Name` of a secret or config; `None` when its data is in the spec (or was).
    pub driver: Option<String>,
}

impl ObjectSpecView {
    /// Reads a recorded create body; a field of the wrong type is an error.
    pub fn read_json(spec: &str) -> Result<ObjectSpecView, serde_json::Error> {
        #[derive(Deserialize)]
        struct DriverWire {
            #[serde(rename = "Name", default)]
            name: String,
        }
        #[derive(Deserialize)]
        struct Wire {
            #[serde(rename = "Labels", default, deserialize_with = "nullable")]
            labels: BTreeMap<String, String>,
            // A network's `Driver` is a word; a secret's or config's an object.
            #[serde(rename = "Driver", default)]
            driver: Option<Value>,
        }
        let wire: Wire = serde_json::from_str(spec)?;
        let driver = match wire.driver {
            Some(driver @ Value::Object(_)) => Some(DriverWire::deserialize(driver)?.name),
            Some(Value::String(name)) => Some(name),
            _ => None,
        };
        Ok(ObjectSpecView {
            labels: wire.labels,
            driver: driver.filter(|name| !name.is_empty()),
        })
    }
}

/// A service event (`type=service`): `create`, `update` or `remove`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceEvent {
    pub action: String,
    pub service_id: String,
    pub name: String,
    pub time: Timestamp,
}

/// The answer to a create: the new object's id and the engine's warnings (e.g. that an image's
/// digest could not be recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Created {
    pub id: String,
    pub warnings: Vec<String>,
}

/// What [`Engine::change_service`] did: the service as it was when the change went through
/// (its `spec` is the one the change replaced) and the engine's warnings.
#[derive(Clone, Debug, PartialEq)]
pub struct Changed {
    pub before: Service,
    pub warnings: Vec<String>,
}

/// The engine refused an update made against a stale `version`.
pub fn is_out_of_sequence(error: &EngineError) -> bool {
    matches!(error, EngineError::Api { message, .. } if message.contains("update out of sequence"))
}

fn namespace_filter(key: &str, values: &[String]) -> String {
    let filter = serde_json::json!({ key: values });
    encode(&filter.to_string(), b"")
}

impl Engine {
    /// Services, all or those of one stack (by the `com.docker.stack.namespace` label).
    pub async fn list_services(&self, stack: Option<&str>) -> Result<Vec<Service>, EngineError> {
        let path = match stack {
            Some(stack) => format!(
                "/services?filters={}",
                namespace_filter("label", &[format!("{STACK_NAMESPACE_LABEL}={stack}")])
            ),
            None => "/services".to_string(),
        };
        let items: Vec<ServiceWire> = self.raw.get_json(&path).await?;
        items
            .into_iter()
            .map(ServiceWire::into_service)
            .collect::<Result<_, _>>()
            .map_err(|e| self.raw.decode_error(&path, e))
    }

    /// One service by id or name; a missing one is an error for which
    /// [`EngineError::is_not_found`] holds.
    pub async fn inspect_service(&self, id_or_name: &str) -> Result<Service, EngineError> {
        let path = format!("/services/{}", encode(id_or_name, b""));
        let wire: ServiceWire = self.raw.get_json(&path).await?;
        wire.into_service()
            .map_err(|e| self.raw.decode_error(&path, e))
    }

    /// `POST /services/create`. With `registry_auth` (an `X-Registry-Auth` value, see
    /// [`crate::RegistryAuth`]) the engine hands the nodes the credentials to pull a private
    /// image; without, nodes pull with what they have.
    pub async fn create_service(
        &self,
        spec: &Value,
        registry_auth: Option<&str>,
    ) -> Result<Created, EngineError> {
        let answer: CreatedWire = self
            .raw
            .post_json_with_auth("/services/create", spec, registry_auth)
            .await?;
        Ok(answer.into())
    }

    /// `POST /services/{id}/update?version=N` with a whole new spec, and the registry
    /// credentials as for [`Engine::create_service`]. A stale `version` fails with an error for
    /// which [`is_out_of_sequence`] holds; [`Engine::change_service`] retries those. Returns
    /// the engine's warnings.
    pub async fn update_service(
        &self,
        id: &str,
        version: u64,
        spec: &Value,
        registry_auth: Option<&str>,
    ) -> Result<Vec<String>, EngineError> {
        let path = format!("/services/{}/update?version={version}", encode(id, b""));
        let answer: WarningsWire = self
            .raw
            .post_json_with_auth(&path, spec, registry_auth)
            .await?;
        Ok(answer.warnings.unwrap_or_default())
    }

    /// Sets a replicated service's replica count, like `docker service scale`: the current spec
    /// with `Mode.Replicated.Replicas` changed, through [`Engine::change_service`]. A global
    /// service or a job has no replica count: [`EngineError::NotScalable`]. Returns the
    /// engine's warnings.
    pub async fn scale_service(&self, id: &str, replicas: u64) -> Result<Vec<String>, EngineError> {
        let service = self.inspect_service(id).await?;
        let changed = self
            .change_service(service, None, |service| {
                let mode = &service.view.mode;
                if mode.replicas().is_none() {
                    return Err(EngineError::NotScalable {
                        host: self.host().to_string(),
                        service: service.name.clone(),
                        reason: if mode.is_job() {
                            "a job runs its tasks to completion and cannot be scaled".to_string()
                        } else {
                            "it runs one task per node and cannot be scaled".to_string()
                        },
                        mode: mode.as_str().to_string(),
                    });
                }
                let mut spec = service.spec.clone();
                set_replicas(&mut spec, replicas);
                Ok(spec)
            })
            .await?;
        Ok(changed.warnings)
    }

    /// Restarts every task of a service with an unchanged spec, like `docker service update
    /// --force`: `TaskTemplate.ForceUpdate` goes up by one (the engine replaces a task whenever
    /// its template differs), through [`Engine::change_service`]. The tasks are replaced
    /// following the service's update config. Returns the engine's warnings.
    pub async fn force_update_service(&self, id: &str) -> Result<Vec<String>, EngineError> {
        let service = self.inspect_service(id).await?;
        let changed = self
            .change_service(service, None, |service| {
                let mut spec = service.spec.clone();
                force_update(&mut spec);
                Ok(spec)
            })
            .await?;
        Ok(changed.warnings)
    }

    /// Updates a service to the spec `change` makes of it, sent with the service's version.
    /// When the version moved in between ("update out of sequence": another client, or
    /// Swarm's own updater recording an update's start), reads the service again and asks
    /// `change` again, up to four times. `current` is the service as the caller
    /// last read it, so a caller that has just listed it costs no extra request.
    ///
    /// The one place swarmkeeper retries an out-of-sequence update. Returns the service as it
    /// was when the change went through (its spec is the one replaced) and the warnings.
    pub async fn change_service(
        &self,
        current: Service,
        registry_auth: Option<&str>,
        change: impl Fn(&Service) -> Result<Value, EngineError>,
    ) -> Result<Changed, EngineError> {
        let mut service = current;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let spec = change(&service)?;
            match self
                .update_service(&service.id, service.version, &spec, registry_auth)
                .await
            {
                Ok(warnings) => {
                    return Ok(Changed {
                        before: service,
                        warnings,
                    })
                }
                Err(e) if attempts < CHANGE_ATTEMPTS && is_out_of_sequence(&e) => {
                    tracing::debug!(
                        service = service.name,
                        attempts,
                        "update out of sequence; reading the service again"
                    );
                    service = self.inspect_service(&service.id).await?;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `rollback=previous`: Swarm swaps `Spec` and `PreviousSpec` and rolls back with the
    /// service's rollback config. Needs the current spec and version, like the docker CLI sends.
    pub async fn rollback_service(&self, service: &Service) -> Result<Vec<String>, EngineError> {
        let path = format!(
            "/services/{}/update?version={}&rollback=previous",
            encode(&service.id, b""),
            service.version
        );
        let answer: WarningsWire = self.raw.post_json(&path, &service.spec).await?;
        Ok(answer.warnings.unwrap_or_default())
    }

    /// Removes a service; not-found counts as done.
    pub async fn remove_service(&self, id: &str) -> Result<(), EngineError> {
        self.delete_ok(&format!("/services/{}", encode(id, b"")))
            .await
    }

    /// The tasks of one service (by id or name), old ones included.
    pub async fn list_tasks(&self, service: &str) -> Result<Vec<Task>, EngineError> {
        self.tasks_at(&format!(
            "/tasks?filters={}",
            namespace_filter("service", &[service.to_string()])
        ))
        .await
    }

    /// The tasks of these services (by id or name), old ones included, in one request (the
    /// engine's `service` filter takes several values); none asked, none answered, without a
    /// request.
    pub async fn list_tasks_of(&self, services: &[String]) -> Result<Vec<Task>, EngineError> {
        if services.is_empty() {
            return Ok(Vec::new());
        }
        self.tasks_at(&format!(
            "/tasks?filters={}",
            namespace_filter("service", services)
        ))
        .await
    }

    /// Every task of every service, old ones included, in one request (`GET /tasks`): group by
    /// [`Task::service_id`] rather than asking per service.
    pub async fn list_all_tasks(&self) -> Result<Vec<Task>, EngineError> {
        self.tasks_at("/tasks").await
    }

    /// The tasks Swarm assigned to one node (by id or hostname), old ones included. An unknown
    /// node is an error for which [`EngineError::is_not_found`] holds.
    pub async fn list_node_tasks(&self, node: &str) -> Result<Vec<Task>, EngineError> {
        self.tasks_at(&format!(
            "/tasks?filters={}",
            namespace_filter("node", &[node.to_string()])
        ))
        .await
    }

    /// One task by id (`GET /tasks/{id}`); a missing one is an error for which
    /// [`EngineError::is_not_found`] holds.
    pub async fn inspect_task(&self, id: &str) -> Result<Task, EngineError> {
        let path = format!("/tasks/{}", encode(id, b""));
        let wire: TaskWire = self.raw.get_json(&path).await?;
        wire.into_task()
            .map_err(|e| self.raw.decode_error(&path, e))
    }

    async fn tasks_at(&self, path: &str) -> Result<Vec<Task>, EngineError> {
        let items: Vec<TaskWire> = self.raw.get_json(path).await?;
        items
            .into_iter()
            .map(TaskWire::into_task)
            .collect::<Result<_, _>>()
            .map_err(|e| self.raw.decode_error(path, e))
    }

    /// Networks, all or a stack's (by label).
    pub async fn list_networks(
        &self,
        stack: Option<&str>,
    ) -> Result<Vec<SwarmObject>, EngineError> {
        self.list_objects("/networks", stack).await
    }

    /// Every network the engine knows, with driver, scope and subnets (`GET /networks`; on a
    /// manager the swarm's overlay networks included).
    pub async fn networks(&self) -> Result<Vec<Network>, EngineError> {
        let items: Vec<NetworkWire> = self.raw.get_json("/networks").await?;
        Ok(items.into_iter().map(NetworkWire::into_network).collect())
    }

    /// `POST /networks/create`.
    pub async fn create_network(&self, spec: &Value) -> Result<Created, EngineError> {
        let answer: CreatedWire = self.raw.post_json("/networks/create", spec).await?;
        Ok(answer.into())
    }

    pub async fn remove_network(&self, id: &str) -> Result<(), EngineError> {
        self.delete_ok(&format!("/networks/{}", encode(id, b"")))
            .await
    }

    pub async fn list_secrets(&self, stack: Option<&str>) -> Result<Vec<SwarmObject>, EngineError> {
        self.list_objects("/secrets", stack).await
    }

    /// `POST /secrets/create`; `Data` is the base64 of the content.
    pub async fn create_secret(&self, spec: &Value) -> Result<Created, EngineError> {
        let answer: CreatedWire = self.raw.post_json("/secrets/create", spec).await?;
        Ok(answer.into())
    }

    pub async fn remove_secret(&self, id: &str) -> Result<(), EngineError> {
        self.delete_ok(&format!("/secrets/{}", encode(id, b"")))
            .await
    }

    pub async fn list_configs(&self, stack: Option<&str>) -> Result<Vec<SwarmObject>, EngineError> {
        self.list_objects("/configs", stack).await
    }

    /// `POST /configs/create`; `Data` is the base64 of the content.
    pub async fn create_config(&self, spec: &Value) -> Result<Created, EngineError> {
        let answer: CreatedWire = self.raw.post_json("/configs/create", spec).await?;
        Ok(answer.into())
    }

    pub async fn remove_config(&self, id: &str) -> Result<(), EngineError> {
        self.delete_ok(&format!("/configs/{}", encode(id, b"")))
            .await
    }

    /// The swarm-scoped networks among `ids`, as [`ObjectSpec`]s (`GET /networks`, filtered by
    /// id). Predefined and node-local networks and the ingress network are left out: a create
    /// cannot bring them back. The overlay's VXLAN id is left out too: the manager assigns one.
    pub async fn network_specs(&self, ids: &[String]) -> Result<Vec<ObjectSpec>, EngineError> {
        const KEPT: [&str; 10] = [
            "Name",
            "Driver",
            "Scope",
            "EnableIPv6",
            "IPAM",
            "Internal",
            "Attachable",
            "Options",
            "Labels",
            "ConfigFrom",
        ];
        let items = self.raw_objects("/networks", ids).await?;
        Ok(items
            .into_iter()
            .filter(|n| n["Scope"] == "swarm" && n["Ingress"] != true)
            .map(|n| {
                let mut spec: serde_json::Map<String, Value> = KEPT
                    .iter()
                    .filter_map(|key| Some((key.to_string(), n.get(*key)?.clone())))
                    .filter(|(_, value)| !value.is_null())
                    .collect();
                if let Some(options) = spec.get_mut("Options").and_then(Value::as_object_mut) {
                    options.remove("com.docker.network.driver.overlay.vxlanid_list");
                }
                ObjectSpec {
                    id: n["Id"].as_str().unwrap_or_default().to_owned(),
                    name: n["Name"].as_str().unwrap_or_default().to_owned(),
                    spec: Value::Object(spec),
                }
            })
            .collect())
    }

    /// The secrets among `ids` with their `Spec` (name, labels, driver, templating: never
    /// data, which the engine does not give back), as [`ObjectSpec`]s.
    pub async fn secret_specs(&self, ids: &[String]) -> Result<Vec<ObjectSpec>, EngineError> {
        self.file_object_specs("/secrets", ids).await
    }

    /// The configs among `ids` with their `Spec`, data included, as [`ObjectSpec`]s.
    pub async fn config_specs(&self, ids: &[String]) -> Result<Vec<ObjectSpec>, EngineError> {
        self.file_object_specs("/configs", ids).await
    }

    async fn file_object_specs(
        &self,
        kind: &str,
        ids: &[String],
    ) -> Result<Vec<ObjectSpec>, EngineError> {
        let items = self.raw_objects(kind, ids).await?;
        Ok(items
            .into_iter()
            .map(|mut o| {
                let spec = o["Spec"].take();
                ObjectSpec {
                    id: o["ID"].as_str().unwrap_or_default().to_owned(),
                    name: spec["Name"].as_str().unwrap_or_default().to_owned(),
                    spec,
                }
            })
            .collect())
    }

    /// The raw objects among `ids` (no request for none). The engine's `id` filter matches
    /// prefixes, so the answer is narrowed to the exact ids.
    async fn raw_objects(&self, kind: &str, ids: &[String]) -> Result<Vec<Value>, EngineError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let path = format!("{kind}?filters={}", namespace_filter("id", ids));
        let items: Vec<Value> = self.raw.get_json(&path).await?;
        Ok(items
            .into_iter()
            .filter(|o| {
                let id = o.get("ID").or_else(|| o.get("Id")).and_then(Value::as_str);
                id.is_some_and(|id| ids.iter().any(|want| want == id))
            })
            .collect())
    }

    /// Configs whose labels match every filter (`key` or `key=value`, as `docker config ls
    /// --filter label=…` takes them), with their data (`GET /configs`).
    pub async fn list_config_objects(
        &self,
        labels: &[String],
    ) -> Result<Vec<ConfigObject>, EngineError> {
        let path = format!("/configs?filters={}", namespace_filter("label", labels));
        let items: Vec<ConfigWire> = self.raw.get_json(&path).await?;
        items
            .into_iter()
            .map(ConfigWire::into_config)
            .collect::<Result<_, _>>()
            .map_err(|e| self.raw.decode_error(&path, e))
    }

    /// One config by id or name (`GET /configs/{id}`); an unknown one is an error for which
    /// [`EngineError::is_not_found`] holds.
    pub async fn inspect_config(&self, id_or_name: &str) -> Result<ConfigObject, EngineError> {
        let path = format!("/configs/{}", encode(id_or_name, b""));
        let wire: ConfigWire = self.raw.get_json(&path).await?;
        wire.into_config()
            .map_err(|e| self.raw.decode_error(&path, e))
    }

    /// Replaces a config's labels (`POST /configs/{id}/update?version=N`): Swarm lets nothing
    /// else of a config change, so its name and data are sent back as they are. Fails when
    /// `config.version` is stale ([`is_out_of_sequence`]) or the config is gone (404).
    pub async fn update_config_labels(
        &self,
        config: &ConfigObject,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        use base64::Engine as _;
        let path = format!(
            "/configs/{}/update?version={}",
            encode(&config.id, b""),
            config.version
        );
        let spec = serde_json::json!({
            "Name": config.name,
            "Labels": labels,
            "Data": base64::engine::general_purpose::STANDARD.encode(&config.data),
        });
        self.raw.post_no_answer(&path, &spec).await
    }

    /// The digest the registry gives for an image reference (`GET /distribution/{name}/json`),
    /// e.g. `sha256:…`, asked with `registry_auth` (an `X-Registry-Auth` value) when given.
    /// Fails when the registry cannot be reached or does not know the image.
    pub async fn distribution_digest(
        &self,
        image: &str,
        registry_auth: Option<&str>,
    ) -> Result<String, EngineError> {
        #[derive(Deserialize)]
        struct Inspect {
            #[serde(rename = "Descriptor")]
            descriptor: Descriptor,
        }
        #[derive(Deserialize)]
        struct Descriptor {
            #[serde(rename = "digest")]
            digest: String,
        }
        let path = format!("/distribution/{}/json", encode(image, b":/@"));
        let inspect: Inspect = self.raw.get_json_with_auth(&path, registry_auth).await?;
        Ok(inspect.descriptor.digest)
    }

    /// Service events (`create`, `update`, `remove`) from now on, or from `since`.
    pub fn service_events(
        &self,
        since: Option<Timestamp>,
    ) -> BoxStream<'static, Result<ServiceEvent, EngineError>> {
        let path = crate::events_path(r#"{"type":["service"]}"#, since);
        let raw = self.raw.clone();
        self.raw
            .get_lines(path)
            .map(move |line| {
                line.and_then(|line| {
                    serde_json::from_slice::<EventWire>(&line)
                        .map_err(|e| e.to_string())
                        .and_then(EventWire::into_event)
                        .map_err(|e| raw.decode_error("/events", e))
                })
            })
            .boxed()
    }

    async fn list_objects(
        &self,
        kind: &str,
        stack: Option<&str>,
    ) -> Result<Vec<SwarmObject>, EngineError> {
        let path = match stack {
            Some(stack) => format!(
                "{kind}?filters={}",
                namespace_filter("label", &[format!("{STACK_NAMESPACE_LABEL}={stack}")])
            ),
            None => kind.to_string(),
        };
        let items: Vec<ObjectWire> = self.raw.get_json(&path).await?;
        Ok(items.into_iter().map(ObjectWire::into_object).collect())
    }

    async fn delete_ok(&self, path: &str) -> Result<(), EngineError> {
        match self.raw.delete(path).await {
            Err(e) if e.is_not_found() => Ok(()),
            result => result,
        }
    }
}

/// The spec of a one-task job (`replicated-job`, never restarted) that runs `image` with
/// `args` on the node `node_id`, with that node's engine socket mounted at the default
/// path: how a manager has something done on one node's engine (only managers answer the
/// swarm API, and a node's volumes exist only on that node). `labels` mark it for whoever
/// cleans up.
pub fn node_job_spec(
    name: &str,
    image: &str,
    args: &[&str],
    node_id: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> Value {
    serde_json::json!({
        "Name": name,
        "Labels": labels,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Args": args,
                "Mounts": [{
                    "Type": "bind",
                    "Source": "/var/run/docker.sock",
                    "Target": "/var/run/docker.sock",
                }],
            },
            "RestartPolicy": {"Condition": "none", "MaxAttempts": 0},
            "Placement": {"Constraints": [format!("node.id=={node_id}")]},
        },
        "Mode": {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
    })
}

#[derive(Deserialize)]
struct ServiceWire {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Version", default)]
    version: VersionWire,
    #[serde(rename = "Spec")]
    spec: Value,
    #[serde(rename = "PreviousSpec", default)]
    previous_spec: Option<Value>,
    #[serde(rename = "UpdateStatus", default)]
    update_status: Option<UpdateStatusWire>,
    #[serde(rename = "CreatedAt", default)]
    created_at: String,
    #[serde(rename = "UpdatedAt", default)]
    updated_at: String,
}

#[derive(Deserialize, Default)]
struct VersionWire {
    #[serde(rename = "Index", default)]
    index: u64,
}

#[derive(Deserialize)]
struct UpdateStatusWire {
    #[serde(rename = "State", default)]
    state: String,
    #[serde(rename = "StartedAt", default)]
    started_at: String,
    #[serde(rename = "CompletedAt", default)]
    completed_at: String,
    #[serde(rename = "Message", default)]
    message: String,
}

impl ServiceWire {
    fn into_service(self) -> Result<Service, String> {
        let update_status = match self.update_status {
            Some(status) if !status.state.is_empty() => Some(UpdateStatus {
                state: UpdateState::parse(&status.state),
                started_at: engine_time(&status.started_at)?,
                completed_at: engine_time(&status.completed_at)?,
                message: status.message,
            }),
            _ => None,
        };
        let mut service = Service::new(
            self.id,
            self.version.index,
            self.spec,
            self.previous_spec,
            update_status,
        )
        .map_err(|e| e.to_string())?;
        service.created_at = engine_time(&self.created_at)?;
        service.updated_at = engine_time(&self.updated_at)?;
        Ok(service)
    }
}

#[derive(Deserialize)]
struct TaskWire {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "ServiceID", default)]
    service_id: String,
    #[serde(rename = "Slot", default)]
    slot: Option<u64>,
    #[serde(rename = "NodeID", default)]
    node_id: String,
    #[serde(rename = "DesiredState", default)]
    desired_state: String,
    #[serde(rename = "CreatedAt", default, deserialize_with = "nullable")]
    created_at: String,
    #[serde(rename = "Status", default)]
    status: TaskStatusWire,
    #[serde(rename = "Spec", default)]
    spec: Value,
    #[serde(rename = "NetworksAttachments", default, deserialize_with = "nullable")]
    networks_attachments: Vec<AttachmentWire>,
}

#[derive(Deserialize, Default)]
struct AttachmentWire {
    #[serde(rename = "Network", default, deserialize_with = "nullable")]
    network: AttachedNetworkWire,
}

#[derive(Deserialize, Default)]
struct AttachedNetworkWire {
    #[serde(rename = "ID", default, deserialize_with = "nullable")]
    id: String,
}

#[derive(Deserialize, Default)]
struct TaskStatusWire {
    #[serde(rename = "Timestamp", default)]
    timestamp: String,
    #[serde(rename = "State", default)]
    state: String,
    #[serde(rename = "Message", default)]
    message: String,
    #[serde(rename = "Err", default)]
    err: String,
    #[serde(rename = "ContainerStatus", default)]
    container: Option<ContainerStatusWire>,
}

#[derive(Deserialize)]
struct ContainerStatusWire {
    #[serde(rename = "ContainerID", default, deserialize_with = "nullable")]
    container_id: String,
    #[serde(rename = "ExitCode", default)]
    exit_code: Option<i64>,
}

impl TaskWire {
    fn into_task(self) -> Result<Task, String> {
        let state = TaskState::parse(&self.status.state);
        let (exit_code, container_id) = match self.status.container {
            Some(c) => (
                c.exit_code.filter(|_| state.has_ended()),
                Some(c.container_id).filter(|id| !id.is_empty()),
            ),
            None => (None, None),
        };
        Ok(Task {
            id: self.id,
            service_id: self.service_id,
            slot: self.slot.filter(|&s| s > 0),
            node_id: self.node_id,
            desired_state: TaskState::parse(&self.desired_state),
            state,
            message: self.status.message,
            err: self.status.err,
            timestamp: engine_time(&self.status.timestamp)?,
            exit_code,
            container_id,
            created_at: engine_time(&self.created_at)?,
            spec: self.spec,
            networks: self
                .networks_attachments
                .into_iter()
                .map(|a| a.network.id)
                .collect(),
        })
    }
}

#[derive(Deserialize)]
struct NetworkWire {
    #[serde(rename = "Id", alias = "ID")]
    id: String,
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    name: String,
    #[serde(rename = "Driver", default, deserialize_with = "nullable")]
    driver: String,
    #[serde(rename = "Scope", default, deserialize_with = "nullable")]
    scope: String,
    #[serde(rename = "Attachable", default, deserialize_with = "nullable")]
    attachable: bool,
    #[serde(rename = "Internal", default, deserialize_with = "nullable")]
    internal: bool,
    #[serde(rename = "Ingress", default, deserialize_with = "nullable")]
    ingress: bool,
    #[serde(rename = "Labels", default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(rename = "Options", default, deserialize_with = "nullable")]
    options: BTreeMap<String, String>,
    #[serde(rename = "IPAM", default, deserialize_with = "nullable")]
    ipam: IpamWire,
    #[serde(rename = "Created", default, deserialize_with = "nullable")]
    created: String,
}

#[derive(Deserialize, Default)]
struct IpamWire {
    #[serde(rename = "Config", default, deserialize_with = "nullable")]
    config: Vec<IpamConfigWire>,
}

#[derive(Deserialize, Default)]
struct IpamConfigWire {
    #[serde(rename = "Subnet", default, deserialize_with = "nullable")]
    subnet: String,
    #[serde(rename = "Gateway", default, deserialize_with = "nullable")]
    gateway: String,
}

impl NetworkWire {
    fn into_network(self) -> Network {
        Network {
            id: self.id,
            name: self.name,
            driver: self.driver,
            scope: self.scope,
            attachable: self.attachable,
            internal: self.internal,
            encrypted: self.options.contains_key("encrypted"),
            ingress: self.ingress,
            labels: self.labels,
            subnets: self
                .ipam
                .config
                .into_iter()
                .map(|c| (c.subnet, c.gateway))
                .collect(),
            created_at: engine_time(&self.created).ok().flatten(),
        }
    }
}

#[derive(Deserialize)]
struct ObjectWire {
    #[serde(rename = "ID", alias = "Id")]
    id: String,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "Spec", default)]
    spec: Option<ObjectSpecWire>,
    #[serde(rename = "CreatedAt", alias = "Created", default)]
    created_at: String,
}

#[derive(Deserialize)]
struct ObjectSpecWire {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Labels", default)]
    labels: Option<BTreeMap<String, String>>,
}

impl ObjectWire {
    /// Networks carry name and labels at the top, secrets and configs in `Spec`.
    fn into_object(self) -> SwarmObject {
        let (name, labels) = match self.spec {
            Some(spec) if self.name.is_empty() => (spec.name, spec.labels),
            _ => (self.name, self.labels),
        };
        SwarmObject {
            id: self.id,
            name,
            labels: labels.unwrap_or_default(),
            created_at: engine_time(&self.created_at).ok().flatten(),
        }
    }
}

#[derive(Deserialize)]
struct ConfigWire {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Version", default)]
    version: VersionWire,
    #[serde(rename = "CreatedAt", default)]
    created_at: String,
    #[serde(rename = "UpdatedAt", default)]
    updated_at: String,
    #[serde(rename = "Spec")]
    spec: ConfigSpecWire,
}

#[derive(Deserialize)]
struct ConfigSpecWire {
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Labels", default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(rename = "Data", default, deserialize_with = "nullable")]
    data: String,
}

impl ConfigWire {
    fn into_config(self) -> Result<ConfigObject, String> {
        use base64::Engine as _;
        let time = |text: &str| {
            engine_time(text)?.ok_or_else(|| format!("config {} has no time", self.id))
        };
        let data = base64::engine::general_purpose::STANDARD
            .decode(&self.spec.data)
            .map_err(|e| format!("config {}: Data is not base64: {e}", self.id))?;
        Ok(ConfigObject {
            version: self.version.index,
            created_at: time(&self.created_at)?,
            updated_at: time(&self.updated_at)?,
            name: self.spec.name,
            labels: self.spec.labels,
            data,
            id: self.id,
        })
    }
}

#[derive(Deserialize)]
struct CreatedWire {
    #[serde(rename = "ID", alias = "Id")]
    id: String,
    #[serde(rename = "Warnings", alias = "Warning", default)]
    warnings: Option<WarningsField>,
}

/// `Warnings` is a list for services and a string for networks.
#[derive(Deserialize)]
#[serde(untagged)]
enum WarningsField {
    List(Option<Vec<String>>),
    One(String),
}

impl From<CreatedWire> for Created {
    fn from(wire: CreatedWire) -> Created {
        let warnings = match wire.warnings {
            Some(WarningsField::List(list)) => list.unwrap_or_default(),
            Some(WarningsField::One(one)) if !one.is_empty() => vec![one],
            _ => Vec::new(),
        };
        Created {
            id: wire.id,
            warnings,
        }
    }
}

#[derive(Deserialize)]
struct WarningsWire {
    #[serde(rename = "Warnings", default)]
    warnings: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct EventWire {
    #[serde(rename = "Action", default)]
    action: String,
    #[serde(rename = "Actor", default)]
    actor: EventActorWire,
    #[serde(rename = "timeNano", default)]
    time_nano: i128,
}

#[derive(Deserialize, Default)]
struct EventActorWire {
    #[serde(rename = "ID", default)]
    id: String,
    #[serde(rename = "Attributes", default)]
    attributes: Option<BTreeMap<String, String>>,
}

impl EventWire {
    fn into_event(self) -> Result<ServiceEvent, String> {
        let time = Timestamp::from_nanosecond(self.time_nano)
            .map_err(|e| format!("event time {} is out of range: {e}", self.time_nano))?;
        let attributes = self.actor.attributes.unwrap_or_default();
        Ok(ServiceEvent {
            action: self.action,
            service_id: self.actor.id,
            name: attributes.get("name").cloned().unwrap_or_default(),
            time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_global_service_is_refused_with_a_clear_message() {
        let error = EngineError::NotScalable {
            host: "unix:///x".into(),
            service: "web".into(),
            mode: "global".into(),
            reason: "it runs one task per node and cannot be scaled".into(),
        };
        assert_eq!(
            error.to_string(),
            "service web is global: it runs one task per node and cannot be scaled \
             (Docker Engine at unix:///x)"
        );
        assert!(!error.is_not_found() && !error.is_conflict() && !is_out_of_sequence(&error));
    }

    #[test]
    fn a_running_task_has_no_exit_code_an_ended_one_has() {
        let task = |state: &str| {
            let wire: TaskWire = serde_json::from_value(serde_json::json!({
                "ID": "t1",
                "Status": {"State": state, "ContainerStatus": {"ContainerID": "c1", "ExitCode": 0}},
            }))
            .unwrap();
            wire.into_task().unwrap()
        };
        assert_eq!(task("running").exit_code, None);
        assert_eq!(task("starting").exit_code, None);
        assert_eq!(task("running").container_id.as_deref(), Some("c1"));
        assert_eq!(task("complete").exit_code, Some(0));
        assert_eq!(task("shutdown").exit_code, Some(0));
    }
}
