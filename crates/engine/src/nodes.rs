//! Swarm nodes (`GET /nodes`, `GET /nodes/{id}`), answered only by a manager.
//!
//! As with services, the node's raw `Spec` is kept as it came: a later update (availability,
//! labels) must send it back whole with the node's `version`.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::http::encode;
use crate::wire::{engine_time, nullable};
use crate::{Engine, EngineError};

/// A node of the swarm as a manager reports it. Texts the engine enumerates (`role`,
/// `availability`, `state`, `manager_reachability`) are kept as text: the engine may know more
/// values than this crate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SwarmNode {
    pub id: String,
    /// `Version.Index`, needed by an update.
    pub version: u64,
    /// `Description.Hostname`.
    pub hostname: String,
    /// `Spec.Role`: `manager` or `worker`.
    pub role: String,
    /// `Spec.Availability`: `active`, `pause` or `drain`.
    pub availability: String,
    /// `Spec.Labels`: the node labels placement constraints match (`node.labels.…`).
    pub labels: BTreeMap<String, String>,
    /// `Status.State`: `ready`, `down`, `unknown` or `disconnected`.
    pub state: String,
    /// `Status.Message`, e.g. `heartbeat failure` for a node that is down.
    pub status_message: String,
    /// `Status.Addr`: the address the node's engine is reached at.
    pub addr: String,
    /// `ManagerStatus.Leader`: this manager leads the Raft cluster.
    pub leader: bool,
    /// `ManagerStatus.Reachability` (`reachable`, `unreachable`, `unknown`); `None` for a
    /// worker.
    pub manager_reachability: Option<String>,
    /// `Description.Engine.EngineVersion`, e.g. `20.10.24+dfsg1`.
    pub engine_version: String,
    /// `Description.Resources.NanoCPUs`: CPUs × 10⁹.
    pub nano_cpus: u64,
    /// `Description.Resources.MemoryBytes`.
    pub memory_bytes: u64,
    /// `Description.Platform.OS`, e.g. `linux`.
    pub os: String,
    /// `Description.Platform.Architecture`, e.g. `x86_64`.
    pub architecture: String,
    /// `Description.Engine.Labels`: the engine's own labels (`dockerd --label`), matched by
    /// `engine.labels.…` constraints.
    pub engine_labels: BTreeMap<String, String>,
    /// The log drivers the node's engine has (`Description.Engine.Plugins` of `Type` `Log`),
    /// which Swarm's scheduler matches a service's log driver against.
    pub log_drivers: Vec<String>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    /// The raw spec (`Spec`), as a later update must send it back.
    pub spec: Value,
}

impl Engine {
    /// Every node of the swarm (`GET /nodes`). Only a manager answers; elsewhere the engine's
    /// refusal (`This node is not a swarm manager…`) comes back as [`EngineError::Api`].
    pub async fn list_nodes(&self) -> Result<Vec<SwarmNode>, EngineError> {
        let path = "/nodes";
        let items: Vec<NodeWire> = self.raw.get_json(path).await?;
        items
            .into_iter()
            .map(NodeWire::into_node)
            .collect::<Result<_, _>>()
            .map_err(|e| self.raw.decode_error(path, e))
    }

    /// One node by id, id prefix or hostname; a missing one is an error for which
    /// [`EngineError::is_not_found`] holds.
    pub async fn inspect_node(&self, id_or_name: &str) -> Result<SwarmNode, EngineError> {
        let path = format!("/nodes/{}", encode(id_or_name, b""));
        let wire: NodeWire = self.raw.get_json(&path).await?;
        wire.into_node()
            .map_err(|e| self.raw.decode_error(&path, e))
    }

    /// Removes a node from the swarm (`DELETE /nodes/{id}`). Without `force` the engine
    /// refuses a node that is not down, and a manager.
    pub async fn remove_node(&self, id: &str, force: bool) -> Result<(), EngineError> {
        self.raw
            .delete(&format!("/nodes/{}?force={force}", encode(id, b"")))
            .await
    }
}

/// A change to a node's spec, as `docker node update` makes it: the rest of the spec is sent
/// back as it was.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeChange {
    /// `--availability`: `active`, `pause` or `drain`; `None` leaves it.
    pub availability: Option<String>,
    /// `--label-add KEY=VALUE`.
    pub add_labels: BTreeMap<String, String>,
    /// `--label-rm KEY`.
    pub remove_labels: Vec<String>,
    /// Every label at once, replacing the node's (before `remove_labels` and `add_labels`
    /// apply); `None` keeps the node's.
    pub labels: Option<BTreeMap<String, String>>,
    /// `--role`: `manager` (`docker node promote`) or `worker` (`demote`); `None` leaves it.
    pub role: Option<String>,
}

impl NodeChange {
    /// The node's raw spec with the change made.
    fn apply(&self, spec: &Value) -> Value {
        let mut spec = match spec {
            Value::Object(map) => map.clone(),
            _ => serde_json::Map::new(),
        };
        if let Some(availability) = &self.availability {
            spec.insert("Availability".into(), Value::String(availability.clone()));
        }
        if let Some(role) = &self.role {
            spec.insert("Role".into(), Value::String(role.clone()));
        }
        let mut labels = match (spec.remove("Labels"), &self.labels) {
            (_, Some(all)) => all
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
            (Some(Value::Object(labels)), None) => labels,
            _ => serde_json::Map::new(),
        };
        for key in &self.remove_labels {
            labels.remove(key);
        }
        for (key, value) in &self.add_labels {
            labels.insert(key.clone(), Value::String(value.clone()));
        }
        spec.insert("Labels".into(), Value::Object(labels));
        Value::Object(spec)
    }
}

impl Engine {
    /// Changes a node as `docker node update` does (`POST /nodes/{id}/update?version=N` with
    /// the whole spec), from `node` as last read. A stale version (someone changed the node
    /// meanwhile) is read again and tried once more; the engine's refusal comes back as
    /// [`EngineError::Api`].
    pub async fn update_node(
        &self,
        node: &SwarmNode,
        change: &NodeChange,
    ) -> Result<(), EngineError> {
        let send = |node: &SwarmNode| {
            let path = format!(
                "/nodes/{}/update?version={}",
                encode(&node.id, b""),
                node.version
            );
            let spec = change.apply(&node.spec);
            async move { self.raw.post_no_answer(&path, &spec).await }
        };
        match send(node).await {
            Err(e) if crate::is_out_of_sequence(&e) => {
                let fresh = self.inspect_node(&node.id).await?;
                send(&fresh).await
            }
            done => done,
        }
    }
}

#[derive(Deserialize)]
struct NodeWire {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Version", default, deserialize_with = "nullable")]
    version: NodeVersionWire,
    #[serde(rename = "CreatedAt", default, deserialize_with = "nullable")]
    created_at: String,
    #[serde(rename = "UpdatedAt", default, deserialize_with = "nullable")]
    updated_at: String,
    #[serde(rename = "Spec", default)]
    spec: Value,
    #[serde(rename = "Description", default, deserialize_with = "nullable")]
    description: DescriptionWire,
    #[serde(rename = "Status", default, deserialize_with = "nullable")]
    status: NodeStatusWire,
    #[serde(rename = "ManagerStatus", default)]
    manager_status: Option<ManagerStatusWire>,
}

#[derive(Deserialize, Default)]
struct NodeVersionWire {
    #[serde(rename = "Index", default, deserialize_with = "nullable")]
    index: u64,
}

#[derive(Deserialize, Default)]
struct NodeSpecWire {
    #[serde(rename = "Role", default, deserialize_with = "nullable")]
    role: String,
    #[serde(rename = "Availability", default, deserialize_with = "nullable")]
    availability: String,
    #[serde(rename = "Labels", default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct DescriptionWire {
    #[serde(rename = "Hostname", default, deserialize_with = "nullable")]
    hostname: String,
    #[serde(rename = "Platform", default, deserialize_with = "nullable")]
    platform: PlatformWire,
    #[serde(rename = "Resources", default, deserialize_with = "nullable")]
    resources: ResourcesWire,
    #[serde(rename = "Engine", default, deserialize_with = "nullable")]
    engine: NodeEngineWire,
}

#[derive(Deserialize, Default)]
struct PlatformWire {
    #[serde(rename = "Architecture", default, deserialize_with = "nullable")]
    architecture: String,
    #[serde(rename = "OS", default, deserialize_with = "nullable")]
    os: String,
}

#[derive(Deserialize, Default)]
struct ResourcesWire {
    #[serde(rename = "NanoCPUs", default, deserialize_with = "nullable")]
    nano_cpus: i64,
    #[serde(rename = "MemoryBytes", default, deserialize_with = "nullable")]
    memory_bytes: i64,
}

#[derive(Deserialize, Default)]
struct NodeEngineWire {
    #[serde(rename = "EngineVersion", default, deserialize_with = "nullable")]
    engine_version: String,
    #[serde(rename = "Labels", default, deserialize_with = "nullable")]
    labels: BTreeMap<String, String>,
    #[serde(rename = "Plugins", default, deserialize_with = "nullable")]
    plugins: Vec<PluginWire>,
}

#[derive(Deserialize, Default)]
struct PluginWire {
    #[serde(rename = "Type", default, deserialize_with = "nullable")]
    kind: String,
    #[serde(rename = "Name", default, deserialize_with = "nullable")]
    name: String,
}

#[derive(Deserialize, Default)]
struct NodeStatusWire {
    #[serde(rename = "State", default, deserialize_with = "nullable")]
    state: String,
    #[serde(rename = "Message", default, deserialize_with = "nullable")]
    message: String,
    #[serde(rename = "Addr", default, deserialize_with = "nullable")]
    addr: String,
}

#[derive(Deserialize)]
struct ManagerStatusWire {
    #[serde(rename = "Leader", default, deserialize_with = "nullable")]
    leader: bool,
    #[serde(rename = "Reachability", default, deserialize_with = "nullable")]
    reachability: String,
}

impl NodeWire {
    fn into_node(self) -> Result<SwarmNode, String> {
        let node = |e: String| format!("node {}: {e}", self.id);
        let spec: NodeSpecWire = match &self.spec {
            Value::Null => NodeSpecWire::default(),
            spec => serde_json::from_value(spec.clone())
                .map_err(|e| node(format!("Spec cannot be read: {e}")))?,
        };
        let created_at = engine_time(&self.created_at).map_err(node)?;
        let updated_at = engine_time(&self.updated_at).map_err(node)?;
        let (leader, manager_reachability) = match self.manager_status {
            Some(status) => (status.leader, Some(status.reachability)),
            None => (false, None),
        };
        let description = self.description;
        Ok(SwarmNode {
            id: self.id,
            version: self.version.index,
            hostname: description.hostname,
            role: spec.role,
            availability: spec.availability,
            labels: spec.labels,
            state: self.status.state,
            status_message: self.status.message,
            addr: self.status.addr,
            leader,
            manager_reachability,
            engine_version: description.engine.engine_version,
            nano_cpus: u64::try_from(description.resources.nano_cpus).unwrap_or(0),
            memory_bytes: u64::try_from(description.resources.memory_bytes).unwrap_or(0),
            os: description.platform.os,
            architecture: description.platform.architecture,
            engine_labels: description.engine.labels,
            log_drivers: description
                .engine
                .plugins
                .into_iter()
                .filter(|p| p.kind == "Log")
                .map(|p| p.name)
                .collect(),
            created_at,
            updated_at,
            spec: self.spec,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manager_of_engine_1_41_is_read() {
        let json = r#"{
          "ID": "lkuqb6oz64hfgcogow5xr6sgp",
          "Version": {"Index": 4286},
          "CreatedAt": "2026-11-26T15:39:44.408158105Z",
          "UpdatedAt": "2026-11-27T00:03:32.075172323Z",
          "Spec": {"Labels": {"zone": "a"}, "Role": "manager", "Availability": "active"},
          "Description": {
            "Hostname": "vm",
            "Platform": {"Architecture": "x86_64", "OS": "linux"},
            "Resources": {"NanoCPUs": 2000000000, "MemoryBytes": 25276502016},
            "Engine": {"EngineVersion": "20.10.24+dfsg1", "Labels": {"disk": "ssd"},
                       "Plugins": [{"Type": "Log", "Name": "local"},
                                   {"Type": "Network", "Name": "overlay"},
                                   {"Type": "Log", "Name": "json-file"}]},
            "TLSInfo": {"TrustRoot": "…"}
          },
          "Status": {"State": "ready", "Addr": "192.0.2.2"},
          "ManagerStatus": {"Leader": true, "Reachability": "reachable", "Addr": "192.0.2.2:2377"}
        }"#;
        let node = serde_json::from_str::<NodeWire>(json)
            .unwrap()
            .into_node()
            .unwrap();
        assert_eq!(node.id, "lkuqb6oz64hfgcogow5xr6sgp");
        assert_eq!(node.version, 4286);
        assert_eq!(node.hostname, "vm");
        assert_eq!(
            (node.role.as_str(), node.availability.as_str()),
            ("manager", "active")
        );
        assert_eq!(node.labels["zone"], "a");
        assert_eq!(
            (node.state.as_str(), node.status_message.as_str()),
            ("ready", "")
        );
        assert_eq!(node.addr, "192.0.2.2");
        assert!(node.leader);
        assert_eq!(node.manager_reachability.as_deref(), Some("reachable"));
        assert_eq!(node.engine_version, "20.10.24+dfsg1");
        assert_eq!(
            (node.nano_cpus, node.memory_bytes),
            (2_000_000_000, 25_276_502_016)
        );
        assert_eq!(
            (node.os.as_str(), node.architecture.as_str()),
            ("linux", "x86_64")
        );
        assert_eq!(node.engine_labels["disk"], "ssd");
        assert_eq!(node.log_drivers, ["local", "json-file"]);
        assert_eq!(
            node.created_at,
            Some("2026-11-26T15:39:44.408158105Z".parse().unwrap())
        );
        assert!(node.updated_at > node.created_at);
        assert_eq!(node.spec["Labels"]["zone"], "a");
    }

    #[test]
    fn a_down_worker_with_nulls_and_missing_parts_is_read() {
        let json = r#"{
          "ID": "w1",
          "Version": {"Index": 9},
          "CreatedAt": "0001-01-01T00:00:00Z",
          "Spec": {"Labels": null, "Role": "worker", "Availability": "drain"},
          "Description": {"Hostname": "w1", "Platform": null, "Resources": {"NanoCPUs": -1},
                          "Engine": {"EngineVersion": "20.10.24", "Labels": null}},
          "Status": {"State": "down", "Message": "heartbeat failure", "Addr": null}
        }"#;
        let node = serde_json::from_str::<NodeWire>(json)
            .unwrap()
            .into_node()
            .unwrap();
        assert_eq!(
            (node.role.as_str(), node.availability.as_str()),
            ("worker", "drain")
        );
        assert!(node.labels.is_empty() && node.engine_labels.is_empty());
        assert_eq!(
            (node.state.as_str(), node.status_message.as_str()),
            ("down", "heartbeat failure")
        );
        assert_eq!(node.addr, "");
        assert!(!node.leader);
        assert_eq!(node.manager_reachability, None);
        assert_eq!((node.nano_cpus, node.memory_bytes), (0, 0));
        assert_eq!(node.os, "");
        assert_eq!((node.created_at, node.updated_at), (None, None));

        let bare = serde_json::from_str::<NodeWire>(r#"{"ID": "x", "Spec": null}"#)
            .unwrap()
            .into_node()
            .unwrap();
        assert_eq!((bare.version, bare.role.as_str()), (0, ""));
    }

    #[test]
    fn an_unreadable_time_names_the_node() {
        let json = r#"{"ID": "n1", "CreatedAt": "yesterday"}"#;
        let err = serde_json::from_str::<NodeWire>(json)
            .unwrap()
            .into_node()
            .unwrap_err();
        assert!(err.starts_with("node n1: "), "{err}");
    }
}
