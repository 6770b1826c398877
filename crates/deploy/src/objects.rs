//! The stack's secrets, configs and networks: created when missing, found by name otherwise,
//! so that the service specs can name them by id.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde::Serialize;
use swarmkeeper_compose::spec::{FileObjectCreate, NetworkCreate};
use swarmkeeper_compose::StackSpec;
use swarmkeeper_engine::{Engine, SwarmObject, Task, TaskState};

use crate::digest::{base64, sha256_hex};
use crate::{Action, DeployError, Progress, Stop};

/// Label on the secrets and configs swarmkeeper creates: the SHA-256 of their content, so that a
/// changed file is noticed (Swarm cannot change a secret's or config's data in place).
pub const LABEL_DATA_SHA256: &str = "swarmkeeper.data-sha256";

/// The engine's ids of the stack's objects, by name.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ids {
    pub secrets: BTreeMap<String, String>,
    pub configs: BTreeMap<String, String>,
    pub networks: HashMap<String, String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Secret,
    Config,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }

    fn created(self) -> Action {
        match self {
            Kind::Secret => Action::CreateSecret,
            Kind::Config => Action::CreateConfig,
        }
    }
}

/// The body of `POST /secrets/create` or `/configs/create`: the compose crate's spec, its
/// content and the content's digest label, made JSON once.
#[derive(Debug, Serialize)]
pub(crate) struct Body<'a> {
    #[serde(flatten)]
    pub spec: FileObjectCreate,
    #[serde(rename = "Data", skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip)]
    pub name: &'a str,
}

/// What to do about the secrets or configs a stack declares, decided before anything is
/// created.
#[derive(Debug, Default)]
pub(crate) struct Plan<'a> {
    pub create: Vec<Body<'a>>,
    pub warnings: Vec<String>,
}

/// Which of `wanted` to create (with their content from `files` and its digest label), and
/// which exist already. Pure. A file whose content differs from the object of the same name is
/// refused: deploying would silently keep the old content.
pub(crate) fn plan<'a>(
    kind: Kind,
    wanted: &'a [FileObjectCreate],
    existing: &[SwarmObject],
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Plan<'a>, DeployError> {
    let word = kind.word();
    let mut plan = Plan::default();
    for object in wanted {
        let data = if object.file.is_empty() {
            None
        } else {
            Some(files.get(&object.file).ok_or_else(|| {
                DeployError::Input(format!(
                    "{word} {}: the content of {} was not loaded",
                    object.name, object.file
                ))
            })?)
        };
        let digest = data.map(|data| sha256_hex(data));
        match existing.iter().find(|o| o.name == object.name) {
            Some(current) => match (current.labels.get(LABEL_DATA_SHA256), &digest) {
                (Some(have), Some(want)) if have != want => {
                    return Err(DeployError::Input(format!(
                        "{word} {} exists with other content than {}, and Swarm cannot change \
                         a {word} in place: give the changed {word} a new name in the file \
                         (for example `name: {}_v2`)",
                        object.name, object.file, object.name
                    )));
                }
                (None, Some(_)) => plan.warnings.push(format!(
                    "{word} {} was not created by swarmkeeper: whether {} still matches it \
                     cannot be checked",
                    object.name, object.file
                )),
                _ => {}
            },
            None => {
                let mut spec = object.clone();
                if let Some(digest) = digest {
                    spec.labels.insert(LABEL_DATA_SHA256.to_string(), digest);
                }
                plan.create.push(Body {
                    spec,
                    data: data.map(|data| base64(data)),
                    name: &object.name,
                });
            }
        }
    }
    Ok(plan)
}

/// A network, secret or config of the stack, and what a deploy does or would do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackObject {
    /// `network`, `secret` or `config`.
    pub kind: &'static str,
    pub name: String,
    /// Created by this deploy (or, in a dry run, would be); otherwise it exists already.
    pub create: bool,
}

/// What the engine has of the stack's objects and what to create, read before anything is
/// created: a changed file or a missing external network stops the deploy here.
pub(crate) struct Survey<'a> {
    secrets: (Vec<SwarmObject>, Plan<'a>),
    configs: (Vec<SwarmObject>, Plan<'a>),
    networks: HashMap<String, String>,
    create_networks: Vec<&'a NetworkCreate>,
}

/// Reads the engine's secrets, configs and networks and decides what the stack needs created.
pub(crate) async fn survey<'a>(
    engine: &Engine,
    spec: &'a StackSpec,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<Survey<'a>, DeployError> {
    let secrets = engine.list_secrets(None).await?;
    let configs = engine.list_configs(None).await?;
    let secret_plan = plan(Kind::Secret, &spec.secrets, &secrets, files)?;
    let config_plan = plan(Kind::Config, &spec.configs, &configs, files)?;
    let networks: HashMap<String, String> = engine
        .list_networks(None)
        .await?
        .into_iter()
        .map(|n| (n.name, n.id))
        .collect();
    if let Some(name) = spec
        .external_networks
        .iter()
        .find(|name| !networks.contains_key(*name))
    {
        return Err(DeployError::Input(format!(
            "network {name} is declared external but does not exist"
        )));
    }
    let create_networks = spec
        .networks
        .iter()
        .filter(|n| !networks.contains_key(&n.name))
        .collect();
    Ok(Survey {
        secrets: (secrets, secret_plan),
        configs: (configs, config_plan),
        networks,
        create_networks,
    })
}

impl Survey<'_> {
    /// Every object the stack declares, created or found (external networks included).
    pub(crate) fn objects(&self, spec: &StackSpec) -> Vec<StackObject> {
        let mut objects = Vec::new();
        for (kind, wanted, plan) in [
            ("secret", &spec.secrets, &self.secrets.1),
            ("config", &spec.configs, &self.configs.1),
        ] {
            objects.extend(wanted.iter().map(|o| StackObject {
                kind,
                name: o.name.clone(),
                create: plan.create.iter().any(|b| b.name == o.name),
            }));
        }
        let networks = spec.networks.iter().map(|n| &n.name);
        objects.extend(
            networks
                .chain(&spec.external_networks)
                .map(|name| StackObject {
                    kind: "network",
                    name: name.clone(),
                    create: self.create_networks.iter().any(|n| &n.name == name),
                }),
        );
        objects
    }

    /// The ids the specs would name without creating anything: an object not created yet is
    /// named `(new NAME)`, so that a service naming it shows as changed.
    pub(crate) fn preview_ids(self) -> Ids {
        let new = |name: &str| format!("(new {name})");
        let ids = |(existing, plan): (Vec<SwarmObject>, Plan<'_>)| {
            let mut ids: BTreeMap<String, String> =
                existing.into_iter().map(|o| (o.name, o.id)).collect();
            ids.extend(
                plan.create
                    .iter()
                    .map(|b| (b.name.to_string(), new(b.name))),
            );
            ids
        };
        let mut networks = self.networks;
        networks.extend(
            self.create_networks
                .iter()
                .map(|n| (n.name.clone(), new(&n.name))),
        );
        Ids {
            secrets: ids(self.secrets),
            configs: ids(self.configs),
            networks,
        }
    }

    /// Secrets and configs first, then networks: service specs name them all by id.
    pub(crate) async fn create(
        self,
        engine: &Engine,
        progress: &mut dyn FnMut(Progress<'_>),
    ) -> Result<Ids, DeployError> {
        let (secrets, secret_plan) = self.secrets;
        let (configs, config_plan) = self.configs;
        let secrets = create(engine, Kind::Secret, secrets, secret_plan, progress).await?;
        let configs = create(engine, Kind::Config, configs, config_plan, progress).await?;
        let mut networks = self.networks;
        for network in self.create_networks {
            let body = serde_json::to_value(network).expect("a network spec serialises");
            let created = engine.create_network(&body).await?;
            progress(Progress::Action {
                service: &network.name,
                action: Action::CreateNetwork,
            });
            networks.insert(network.name.clone(), created.id);
        }
        Ok(Ids {
            secrets,
            configs,
            networks,
        })
    }
}

const NETWORK_REMOVAL_POLL: Duration = Duration::from_millis(250);

/// How [`wait_for_network_removal`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waited {
    /// No network named is being removed any more: each is gone, or there to use.
    Ready,
    /// A stop was asked for ([`Stop`]) while it waited.
    Stopped,
}

/// The networks among `listed` that may still be being removed, by name. Pure.
///
/// Swarm accepts `docker network rm` (and `docker stack rm`'s) of a network no service names
/// while tasks that are no longer meant to run are still attached to it: it stays listed,
/// under its old id, until they are gone, and a service created on it meanwhile fails with
/// "network … not found". So a network is held while a task attached to it is no longer
/// wanted (its desired state is not `running`) and has not stopped yet, or belongs to a
/// removed service (it goes once Swarm reaps the task). A network a service names cannot be
/// being removed (Swarm refuses that), and one left behind with nothing stopping on it (after
/// `docker service rm`) is there to use.
pub(crate) fn held_networks(
    listed: &[SwarmObject],
    services: &[swarmkeeper_engine::Service],
    tasks: &[Task],
) -> Vec<String> {
    let service_ids: HashSet<&str> = services.iter().map(|s| s.id.as_str()).collect();
    let named: HashSet<&str> = services
        .iter()
        .flat_map(|s| s.view.networks.iter().map(String::as_str))
        .collect();
    listed
        .iter()
        .filter(|n| !named.contains(n.id.as_str()))
        .filter(|n| {
            tasks.iter().any(|t| {
                let removed = !service_ids.contains(t.service_id.as_str());
                let stopping = t.state == TaskState::Running || t.state.is_waiting();
                t.networks.contains(&n.id) && !t.is_wanted() && (removed || stopping)
            })
        })
        .map(|n| n.name.clone())
        .collect()
}

/// Waits (at most `limit`, or until `stop` is asked for) while a network of `names` is
/// listed but still being removed ([`held_networks`]), so that a deploy or a rollback decides
/// which networks exist only once they are gone, and nothing is half applied. Says so once.
/// The deploy and the rollback both wait here.
pub(crate) async fn wait_for_network_removal(
    engine: &Engine,
    names: BTreeSet<&str>,
    limit: Duration,
    stop: &Stop,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Waited, DeployError> {
    if names.is_empty() {
        return Ok(Waited::Ready);
    }
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        let listed: Vec<SwarmObject> = engine
            .list_networks(None)
            .await?
            .into_iter()
            .filter(|n| names.contains(n.name.as_str()))
            .collect();
        if listed.is_empty() {
            return Ok(Waited::Ready);
        }
        let services = engine.list_services(None).await?;
        let held = if listed
            .iter()
            .all(|n| services.iter().any(|s| s.view.networks.contains(&n.id)))
        {
            // Every one is in use: none can be being removed; no need to list the tasks.
            Vec::new()
        } else {
            held_networks(&listed, &services, &engine.list_all_tasks().await?)
        };
        if held.is_empty() {
            return Ok(Waited::Ready);
        }
        if started.elapsed() >= limit {
            return Err(DeployError::Input(format!(
                "network {} is still being removed after {}s (tasks attached to it are still \
                 stopping); nothing was changed: try again once `docker network ls` no longer \
                 lists it",
                held.join(", "),
                limit.as_secs()
            )));
        }
        if !told {
            progress(Progress::Note(&format!(
                "waiting for network {} to be removed (tasks attached to it are still stopping)",
                held.join(", ")
            )));
            told = true;
        }
        tokio::select! {
            _ = tokio::time::sleep(NETWORK_REMOVAL_POLL) => {}
            _ = stop.wait() => return Ok(Waited::Stopped),
        }
    }
}

/// Creates what the plan says; returns every object's id by name (external ones included).
async fn create(
    engine: &Engine,
    kind: Kind,
    existing: Vec<SwarmObject>,
    plan: Plan<'_>,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<BTreeMap<String, String>, DeployError> {
    for warning in &plan.warnings {
        progress(Progress::Warning(warning));
    }
    let mut ids: BTreeMap<String, String> = existing.into_iter().map(|o| (o.name, o.id)).collect();
    for body in plan.create {
        let json = serde_json::to_value(&body).expect("a file object serialises");
        let created = match kind {
            Kind::Secret => engine.create_secret(&json).await?,
            Kind::Config => engine.create_config(&json).await?,
        };
        progress(Progress::Action {
            service: body.name,
            action: kind.created(),
        });
        ids.insert(body.name.to_string(), created.id);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(name: &str, file: &str) -> FileObjectCreate {
        FileObjectCreate {
            name: name.into(),
            labels: [("com.docker.stack.namespace".to_string(), "st".to_string())].into(),
            file: file.into(),
            driver: None,
            templating: None,
        }
    }

    fn existing(name: &str, digest: Option<&str>) -> SwarmObject {
        SwarmObject {
            id: format!("id-{name}"),
            name: name.into(),
            labels: digest
                .map(|d| (LABEL_DATA_SHA256.to_string(), d.to_string()))
                .into_iter()
                .collect(),
            created_at: None,
        }
    }

    fn files() -> BTreeMap<String, Vec<u8>> {
        [("/w/db.txt".to_string(), b"hunter2".to_vec())].into()
    }

    fn network(name: &str) -> SwarmObject {
        SwarmObject {
            id: format!("id-{name}"),
            name: name.into(),
            labels: BTreeMap::new(),
            created_at: None,
        }
    }

    fn service(id: &str, networks: &[&str]) -> swarmkeeper_engine::Service {
        let spec = serde_json::json!({
            "Name": id,
            "TaskTemplate": {
                "ContainerSpec": {"Image": "app:1"},
                "Networks": networks.iter().map(|n| serde_json::json!({"Target": format!("id-{n}")})).collect::<Vec<_>>(),
            },
        });
        swarmkeeper_engine::Service {
            id: id.into(),
            version: 1,
            name: id.into(),
            view: swarmkeeper_engine::ServiceView::read_json(&spec.to_string()).unwrap(),
            spec,
            previous_spec: None,
            update_status: None,
            created_at: None,
            updated_at: None,
        }
    }

    fn task(service: &str, desired: TaskState, state: TaskState, network: &str) -> Task {
        Task {
            service_id: service.into(),
            desired_state: desired,
            state,
            networks: vec![format!("id-{network}")],
            ..Task::default()
        }
    }

    #[test]
    fn a_network_is_held_only_while_a_task_no_longer_wanted_is_still_attached() {
        use TaskState::{Remove, Running, Shutdown};
        let listed = [network("st_default")];
        let held = |services: &[swarmkeeper_engine::Service], tasks: &[Task]| {
            held_networks(&listed, services, tasks)
        };
        // `docker stack rm` or `docker service rm`: the removed service's task still stops.
        let stopping = [task("gone", Remove, Running, "st_default")];
        assert_eq!(held(&[], &stopping), ["st_default"]);
        // Stopped but not reaped yet: still attached to the network being removed.
        let reaping = [task("gone", Remove, Shutdown, "st_default")];
        assert_eq!(held(&[], &reaping), ["st_default"]);
        // `docker network rm` after an update moved the service off it: the replaced task
        // stops; once it has stopped, it holds nothing.
        let moved = [service("web", &[])];
        let replaced = [task("web", Shutdown, Running, "st_default")];
        assert_eq!(held(&moved, &replaced), ["st_default"]);
        let stopped = [task("web", Shutdown, Shutdown, "st_default")];
        assert!(held(&moved, &stopped).is_empty());
        // Nothing stopping on it: left behind by `docker service rm`, there to use at once.
        assert!(held(&[], &[]).is_empty());
        let elsewhere = [task("gone", Remove, Running, "other")];
        assert!(held(&[], &elsewhere).is_empty());
        // A network a service names cannot be being removed (Swarm refuses it), whatever
        // stops on it: a redeploy right after a rolling update does not wait.
        let named = [service("web", &["st_default"])];
        let rolling = [task("web", Shutdown, Running, "st_default")];
        assert!(held(&named, &rolling).is_empty());
        assert!(held(&named, &stopping).is_empty());
    }

    #[test]
    fn a_new_object_gets_its_content_and_digest_in_one_body() {
        let wanted = [wanted("st_db", "/w/db.txt")];
        let plan = plan(Kind::Secret, &wanted, &[], &files()).unwrap();
        assert_eq!(plan.create.len(), 1);
        let body = serde_json::to_value(&plan.create[0]).unwrap();
        assert_eq!(body["Name"], "st_db");
        assert_eq!(body["Data"], base64(b"hunter2"));
        assert_eq!(body["Labels"][LABEL_DATA_SHA256], sha256_hex(b"hunter2"));
        assert_eq!(body["Labels"]["com.docker.stack.namespace"], "st");
        assert!(body.get("file").is_none() && body.get("File").is_none());
    }

    #[test]
    fn an_existing_object_is_kept_and_a_changed_one_refused() {
        let wanted = [wanted("st_db", "/w/db.txt")];
        let same = [existing("st_db", Some(&sha256_hex(b"hunter2")))];
        let plan_same = plan(Kind::Secret, &wanted, &same, &files()).unwrap();
        assert!(plan_same.create.is_empty() && plan_same.warnings.is_empty());
        let changed = [existing("st_db", Some("0000"))];
        let refused = plan(Kind::Config, &wanted, &changed, &files()).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("config st_db exists with other content"),
            "{refused}"
        );
        let foreign = [existing("st_db", None)];
        let warned = plan(Kind::Secret, &wanted, &foreign, &files()).unwrap();
        assert!(warned.warnings[0].contains("not created by swarmkeeper"));
    }

    #[test]
    fn content_that_was_not_loaded_is_refused_and_a_driver_needs_none() {
        let wanted_file = [wanted("st_db", "/w/other.txt")];
        let missing = plan(Kind::Secret, &wanted_file, &[], &files()).unwrap_err();
        assert!(missing.to_string().contains("/w/other.txt was not loaded"));
        let by_driver = [wanted("st_vault", "")];
        let plan = plan(Kind::Secret, &by_driver, &[], &BTreeMap::new()).unwrap();
        let body = serde_json::to_value(&plan.create[0]).unwrap();
        assert!(body.get("Data").is_none());
        assert!(body["Labels"].get(LABEL_DATA_SHA256).is_none());
    }
}
