//! The networks, secrets and configs a revision's services use: read from the engine when the
//! revision is recorded, and, when a rollback goes back to it, found again by name or created
//! again from the record before any service changes, so that the revision's specs name objects
//! that exist.
//!
//! A secret is recorded without its data: Swarm never gives a secret's data back, and
//! swarmkeeper keeps no copy of its own (a copy every deploying machine could open would need a
//! key they all share, and would be readable wherever the history is). A rollback that needs a
//! secret which is gone is refused before anything changes, naming the secret; one whose data
//! comes from a secret driver is created again (the driver supplies the data).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use swarmkeeper_engine::{
    swap_file_ref, swap_network, Engine, EngineError, FileKind, ObjectSpec, ObjectSpecView,
    ServiceView, SwarmObject,
};
use swarmkeeper_store::{DeployRecord, ObjectKind, ObjectRevision};

use crate::objects::{wait_for_network_removal, StackObject, Waited, LABEL_DATA_SHA256};
use crate::{Action, DeployError, Options, Progress};

/// The networks, secrets and configs the services' specs name, as the engine has them now
/// (at most three requests, none for a kind no spec uses). A spec that cannot be read names
/// nothing.
pub(crate) async fn used<'a>(
    engine: &Engine,
    specs: impl IntoIterator<Item = &'a Value>,
) -> Result<Vec<ObjectRevision>, EngineError> {
    let (mut networks, mut secrets, mut configs) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for view in specs.into_iter().filter_map(|s| ServiceView::read(s).ok()) {
        networks.extend(view.networks);
        secrets.extend(view.secrets.into_iter().map(|r| r.id));
        configs.extend(view.configs.into_iter().map(|r| r.id));
    }
    let ids = |set: BTreeSet<String>| set.into_iter().collect::<Vec<_>>();
    let mut objects = Vec::new();
    let found = [
        (
            ObjectKind::Network,
            engine.network_specs(&ids(networks)).await?,
        ),
        (
            ObjectKind::Secret,
            engine.secret_specs(&ids(secrets)).await?,
        ),
        (
            ObjectKind::Config,
            engine.config_specs(&ids(configs)).await?,
        ),
    ];
    for (kind, specs) in found {
        objects.extend(specs.into_iter().map(|o: ObjectSpec| ObjectRevision {
            kind: kind.clone(),
            id: o.id,
            name: o.name,
            spec: o.spec.to_string(),
        }));
    }
    Ok(objects)
}

/// The engine's networks, secrets and configs by name.
#[derive(Debug, Default)]
pub(crate) struct Existing {
    pub networks: BTreeMap<String, SwarmObject>,
    pub secrets: BTreeMap<String, SwarmObject>,
    pub configs: BTreeMap<String, SwarmObject>,
}

impl Existing {
    fn of(&self, kind: &ObjectKind) -> Option<&BTreeMap<String, SwarmObject>> {
        match kind {
            ObjectKind::Network => Some(&self.networks),
            ObjectKind::Secret => Some(&self.secrets),
            ObjectKind::Config => Some(&self.configs),
            ObjectKind::Other(_) => None,
        }
    }
}

/// What a rollback to `record` creates again: the recorded objects no longer found by name.
/// Pure. Refused, before anything is created: a missing secret whose data no driver supplies
/// (its data is not in the record), an object found under its name with other content than
/// the revision's (by the data digest label swarmkeeper puts on what it creates), and a
/// recorded spec that cannot be read.
pub(crate) fn missing<'a>(
    record: &'a DeployRecord,
    existing: &Existing,
) -> Result<Vec<&'a ObjectRevision>, DeployError> {
    let at = format!("revision {} of {}", record.revision, record.stack);
    let mut create = Vec::new();
    let mut secrets = Vec::new();
    for object in &record.objects {
        let Some(found) = existing.of(&object.kind) else {
            continue;
        };
        let view = ObjectSpecView::read_json(&object.spec).map_err(|e| {
            DeployError::Input(format!(
                "{at}: the recorded spec of {} {} cannot be read: {e}",
                object.kind, object.name
            ))
        })?;
        match found.get(&object.name) {
            Some(now) => {
                let digest =
                    |labels: &BTreeMap<String, String>| labels.get(LABEL_DATA_SHA256).cloned();
                if let (Some(then), Some(now)) = (digest(&view.labels), digest(&now.labels)) {
                    if then != now {
                        return Err(DeployError::Input(format!(
                            "{at} used {} {} with other content than the {} of that name \
                             now; Swarm cannot change it in place, so the revision cannot be \
                             restored while it exists (remove it, or deploy the files instead)",
                            object.kind, object.name, object.kind
                        )));
                    }
                }
            }
            None if object.kind == ObjectKind::Secret && view.driver.is_none() => {
                secrets.push(object.name.as_str());
            }
            None => create.push(object),
        }
    }
    if !secrets.is_empty() {
        let label = |name: &str| {
            record
                .objects
                .iter()
                .find(|o| o.name == name)
                .and_then(|o| ObjectSpecView::read_json(&o.spec).ok())
                .map(|v| {
                    v.labels
                        .iter()
                        .filter(|(k, _)| k.as_str() != LABEL_DATA_SHA256)
                        .map(|(k, v)| format!(" --label {k}={v}"))
                        .collect::<String>()
                })
                .unwrap_or_default()
        };
        return Err(DeployError::Input(format!(
            "{at} used secret {} which no longer exists; Swarm never gives a secret's data \
             back and swarmkeeper keeps no copy of it, so nothing was changed: create it again \
             ({}) and roll back again",
            secrets.join(", "),
            secrets
                .iter()
                .map(|name| format!("`docker secret create{} {name} FILE`", label(name)))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(create)
}

/// A recorded object now found (or created) under another id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Moved {
    pub kind: ObjectKind,
    pub name: String,
    pub from: String,
    pub to: String,
}

/// Points the references of `spec` to recorded objects that moved at their ids now.
pub(crate) fn repoint(spec: &mut Value, moved: &[Moved]) {
    for m in moved {
        match m.kind {
            ObjectKind::Network => {
                swap_network(spec, &m.from, &m.to);
            }
            ObjectKind::Secret => {
                swap_file_ref(spec, FileKind::Secret, &m.from, (&m.to, &m.name));
            }
            ObjectKind::Config => {
                swap_file_ref(spec, FileKind::Config, &m.from, (&m.to, &m.name));
            }
            ObjectKind::Other(_) => {}
        }
    }
}

/// Finds the objects `record` used by name, creates those that are gone from its record
/// (networks, configs, secrets a driver supplies; refused as [`missing`] says before any is
/// created), and returns those whose id changed, and the objects as a deploy lists them.
pub(crate) async fn revive(
    engine: &Engine,
    record: &DeployRecord,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Option<(Vec<Moved>, Vec<StackObject>)>, DeployError> {
    if record.objects.is_empty() {
        return Ok(Some((Vec::new(), Vec::new())));
    }
    let by_name = |list: Vec<SwarmObject>| {
        list.into_iter()
            .map(|o| (o.name.clone(), o))
            .collect::<BTreeMap<_, _>>()
    };
    // A recorded network `docker network rm` is removing is created again once it is gone.
    let networks = record
        .objects
        .iter()
        .filter(|o| o.kind == ObjectKind::Network)
        .map(|o| o.name.as_str())
        .collect();
    let waited =
        wait_for_network_removal(engine, networks, options.timeout, &options.stop, progress)
            .await?;
    if waited == Waited::Stopped {
        return Ok(None);
    }
    let existing = Existing {
        networks: by_name(engine.list_networks(None).await?),
        secrets: by_name(engine.list_secrets(None).await?),
        configs: by_name(engine.list_configs(None).await?),
    };
    let create = missing(record, &existing)?;
    let mut ids: BTreeMap<(String, String), String> = BTreeMap::new();
    for (kind, list) in [
        ("network", &existing.networks),
        ("secret", &existing.secrets),
        ("config", &existing.configs),
    ] {
        ids.extend(
            list.values()
                .map(|o| ((kind.to_owned(), o.name.clone()), o.id.clone())),
        );
    }
    for object in &create {
        let spec: Value = serde_json::from_str(&object.spec)
            .map_err(|e| DeployError::Input(format!("{} {}: {e}", object.kind, object.name)))?;
        let (created, action) = match object.kind {
            ObjectKind::Network => (engine.create_network(&spec).await?, Action::CreateNetwork),
            ObjectKind::Secret => (engine.create_secret(&spec).await?, Action::CreateSecret),
            _ => (engine.create_config(&spec).await?, Action::CreateConfig),
        };
        progress(Progress::Action {
            service: &object.name,
            action,
        });
        ids.insert(
            (object.kind.as_str().to_owned(), object.name.clone()),
            created.id,
        );
    }
    let moved = record
        .objects
        .iter()
        .filter_map(|o| {
            let now = ids.get(&(o.kind.as_str().to_owned(), o.name.clone()))?;
            (*now != o.id).then(|| Moved {
                kind: o.kind.clone(),
                name: o.name.clone(),
                from: o.id.clone(),
                to: now.clone(),
            })
        })
        .collect();
    let listed = record
        .objects
        .iter()
        .filter_map(|o| {
            let kind = match o.kind {
                ObjectKind::Network => "network",
                ObjectKind::Secret => "secret",
                ObjectKind::Config => "config",
                ObjectKind::Other(_) => return None,
            };
            Some(StackObject {
                kind,
                name: o.name.clone(),
                create: create.iter().any(|c| c.kind == o.kind && c.name == o.name),
            })
        })
        .collect();
    Ok(Some((moved, listed)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use serde_json::json;
    use swarmkeeper_store::{DeployKind, DeployOutcome};

    fn object(kind: ObjectKind, name: &str, spec: Value) -> ObjectRevision {
        ObjectRevision {
            kind,
            id: format!("old-{name}"),
            name: name.into(),
            spec: spec.to_string(),
        }
    }

    fn record(objects: Vec<ObjectRevision>) -> DeployRecord {
        DeployRecord {
            stack: "shop".into(),
            revision: 4,
            started_at: Timestamp::from_second(1_700_000_000).unwrap(),
            finished_at: None,
            by: "me".into(),
            action: None,
            kind: DeployKind::Deploy,
            files: Vec::new(),
            outcome: DeployOutcome::Succeeded,
            summary: String::new(),
            services: Vec::new(),
            objects,
        }
    }

    fn existing(name: &str, labels: &[(&str, &str)]) -> (String, SwarmObject) {
        (
            name.to_owned(),
            SwarmObject {
                id: format!("new-{name}"),
                name: name.into(),
                labels: labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                created_at: None,
            },
        )
    }

    #[test]
    fn gone_networks_configs_and_driver_secrets_are_created_again() {
        let r = record(vec![
            object(
                ObjectKind::Network,
                "shop_net",
                json!({"Name": "shop_net", "Driver": "overlay"}),
            ),
            object(
                ObjectKind::Network,
                "shop_kept",
                json!({"Name": "shop_kept"}),
            ),
            object(
                ObjectKind::Config,
                "shop_conf",
                json!({"Name": "shop_conf", "Data": "eA=="}),
            ),
            object(
                ObjectKind::Secret,
                "shop_vault",
                json!({"Name": "shop_vault", "Driver": {"Name": "vault"}}),
            ),
        ]);
        let now = Existing {
            networks: [existing("shop_kept", &[])].into(),
            ..Existing::default()
        };
        let names: Vec<&str> = missing(&r, &now)
            .unwrap()
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(names, ["shop_net", "shop_conf", "shop_vault"]);
    }

    #[test]
    fn a_gone_secret_is_refused_by_name_with_how_to_create_it() {
        let r = record(vec![
            object(ObjectKind::Network, "shop_net", json!({"Name": "shop_net"})),
            object(
                ObjectKind::Secret,
                "shop_db",
                json!({"Name": "shop_db", "Labels": {"com.docker.stack.namespace": "shop", LABEL_DATA_SHA256: "ab"}}),
            ),
        ]);
        let refused = missing(&r, &Existing::default()).unwrap_err().to_string();
        assert!(
            refused.contains("revision 4 of shop used secret shop_db which no longer exists"),
            "{refused}"
        );
        assert!(
            refused.contains(
                "`docker secret create --label com.docker.stack.namespace=shop shop_db FILE`"
            ),
            "{refused}"
        );
        assert!(refused.contains("nothing was changed"), "{refused}");
    }

    #[test]
    fn an_object_of_that_name_with_other_content_is_refused() {
        let r = record(vec![object(
            ObjectKind::Config,
            "shop_conf",
            json!({"Name": "shop_conf", "Labels": {LABEL_DATA_SHA256: "aa"}, "Data": "eA=="}),
        )]);
        let same = Existing {
            configs: [existing("shop_conf", &[(LABEL_DATA_SHA256, "aa")])].into(),
            ..Existing::default()
        };
        assert!(missing(&r, &same).unwrap().is_empty());
        let other = Existing {
            configs: [existing("shop_conf", &[(LABEL_DATA_SHA256, "bb")])].into(),
            ..Existing::default()
        };
        let refused = missing(&r, &other).unwrap_err().to_string();
        assert!(
            refused.contains("used config shop_conf with other content"),
            "{refused}"
        );
    }

    #[test]
    fn moved_objects_are_repointed_in_the_spec() {
        let mut spec = json!({"TaskTemplate": {
            "ContainerSpec": {
                "Secrets": [{"SecretID": "s-old", "SecretName": "shop_db", "File": {"Name": "db"}}],
                "Configs": [{"ConfigID": "c-keep", "ConfigName": "shop_conf"}]
            },
            "Networks": [{"Target": "n-old", "Aliases": ["web"]}]
        }});
        let moved = [
            Moved {
                kind: ObjectKind::Network,
                name: "shop_net".into(),
                from: "n-old".into(),
                to: "n-new".into(),
            },
            Moved {
                kind: ObjectKind::Secret,
                name: "shop_db".into(),
                from: "s-old".into(),
                to: "s-new".into(),
            },
        ];
        repoint(&mut spec, &moved);
        let template = &spec["TaskTemplate"];
        assert_eq!(template["Networks"][0]["Target"], "n-new");
        assert_eq!(template["ContainerSpec"]["Secrets"][0]["SecretID"], "s-new");
        assert_eq!(
            template["ContainerSpec"]["Secrets"][0]["File"]["Name"],
            "db"
        );
        assert_eq!(
            template["ContainerSpec"]["Configs"][0]["ConfigID"],
            "c-keep"
        );
    }
}
