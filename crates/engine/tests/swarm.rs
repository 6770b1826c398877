//! The swarm calls against the real single-node swarm: uniquely named objects, removed when
//! the test ends, passed or not.

#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::StreamExt;
use serde_json::json;
use swarmkeeper_engine::{
    is_out_of_sequence, Engine, EngineError, LogOptions, NodeChange, Task, TaskState,
    STACK_NAMESPACE_LABEL,
};

use common::{docker, unique, Scratch};

/// Removes a service, network, secret and config when dropped.
#[derive(Default)]
struct Cleanup {
    services: Vec<String>,
    networks: Vec<String>,
    secrets: Vec<String>,
    configs: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let rm = |kind: &str, ids: &[String]| {
            for id in ids {
                let _ = std::process::Command::new("docker")
                    .args([kind, "rm", id])
                    .output();
            }
        };
        rm("service", &self.services);
        // Task containers must be gone before their network and image can go.
        let deadline = Instant::now() + Duration::from_secs(30);
        for id in &self.services {
            let filter = format!("label=com.docker.swarm.service.id={id}");
            while Instant::now() < deadline {
                let left = std::process::Command::new("docker")
                    .args(["ps", "-aq", "--filter", &filter])
                    .output();
                match left {
                    Ok(out) if out.status.success() && !out.stdout.trim_ascii().is_empty() => {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    _ => break,
                }
            }
        }
        rm("network", &self.networks);
        rm("secret", &self.secrets);
        rm("config", &self.configs);
    }
}

#[tokio::test]
async fn services_tasks_updates_and_logs() {
    let mut scratch = Scratch::default();
    let tag = format!("{}:v1", unique("svcimg"));
    scratch.build(&tag, None, 1024);
    let mut cleanup = Cleanup::default();
    let engine = Engine::from_env().unwrap();
    let stack = unique("st");
    let name = format!("{stack}_web");
    let spec = json!({
        "Name": name,
        "Labels": {STACK_NAMESPACE_LABEL: stack},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": tag,
                "Command": ["/bin/busybox", "sh", "-c", "echo line-one; echo line-two >&2; exec /bin/busybox sleep 60"],
                "StopGracePeriod": 1_000_000_000u64
            },
            "LogDriver": {"Name": "local"}
        },
        "Mode": {"Replicated": {"Replicas": 1}}
    });
    let created = engine.create_service(&spec, None).await.unwrap();
    cleanup.services.push(created.id.clone());

    let listed = engine.list_services(Some(&stack)).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, created.id);
    assert_eq!(listed[0].labels()[STACK_NAMESPACE_LABEL], stack);
    assert!(engine
        .list_services(Some(&unique("none")))
        .await
        .unwrap()
        .is_empty());

    // The task comes up, and its logs name it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let task = loop {
        let tasks = engine.list_tasks(&created.id).await.unwrap();
        if let Some(task) = tasks.iter().find(|t| t.state == TaskState::Running) {
            break task.clone();
        }
        assert!(Instant::now() < deadline, "no running task: {tasks:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(task.slot, Some(1));
    assert_eq!(task.desired_state, TaskState::Running);
    let options = LogOptions {
        timestamps: true,
        ..LogOptions::default()
    };
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while lines.len() < 2 && Instant::now() < deadline {
        let stream = engine.service_logs(&created.id, &options).await.unwrap();
        lines = stream.map(Result::unwrap).collect::<Vec<_>>().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    assert!(
        texts.contains(&"line-one") && texts.contains(&"line-two"),
        "{lines:?}"
    );
    assert!(lines
        .iter()
        .all(|l| l.task_id.as_deref() == Some(task.id.as_str())));
    assert!(lines.iter().all(|l| l.timestamp.is_some()));
    let tail = LogOptions {
        tail: Some(1),
        ..LogOptions::default()
    };
    let stream = engine.service_logs(&created.id, &tail).await.unwrap();
    assert_eq!(stream.collect::<Vec<_>>().await.len(), 1);

    // Updates need the current version; a stale one is recognisable.
    let service = engine.inspect_service(&name).await.unwrap();
    assert!(service.update_status.is_none());
    // The manager's own times, which a created service's monitor window compares.
    let created_at = service.created_at.expect("the service's CreatedAt");
    assert!(service.updated_at.is_some_and(|u| u >= created_at));
    assert!(
        task.timestamp.is_some_and(|ran| ran >= created_at),
        "{task:?} {created_at}"
    );
    let mut updated = service.spec.clone();
    updated["Labels"]["extra"] = json!("1");
    engine
        .update_service(&service.id, service.version, &updated, None)
        .await
        .unwrap();
    let stale = engine
        .update_service(&service.id, service.version, &updated, None)
        .await
        .unwrap_err();
    assert!(is_out_of_sequence(&stale), "{stale}");
    let after = engine.inspect_service(&service.id).await.unwrap();
    assert!(after.version > service.version);
    assert_eq!(after.previous_spec.as_ref(), Some(&service.spec));

    // rollback=previous swaps Spec and PreviousSpec.
    engine.rollback_service(&after).await.unwrap();
    let back = engine.inspect_service(&service.id).await.unwrap();
    assert!(
        back.spec.pointer("/Labels/extra").is_none(),
        "{:?}",
        back.spec
    );
    // A label-only rollback may already be over by the time we look.
    let state = back.update_status.as_ref().map(|u| u.state.as_str());
    assert!(
        matches!(state, Some("rollback_started" | "rollback_completed")),
        "{state:?}"
    );

    // The registry cannot be reached here: a clear error, not a digest.
    assert!(engine.distribution_digest(&tag, None).await.is_err());

    engine.remove_service(&service.id).await.unwrap();
    engine.remove_service(&service.id).await.unwrap();
    assert!(engine
        .inspect_service(&service.id)
        .await
        .unwrap_err()
        .is_not_found());
}

#[tokio::test]
async fn networks_secrets_and_configs_of_a_stack() {
    let mut cleanup = Cleanup::default();
    let engine = Engine::from_env().unwrap();
    let stack = unique("objs");
    let labels = json!({STACK_NAMESPACE_LABEL: stack});
    let network = engine
        .create_network(
            &json!({"Name": format!("{stack}_net"), "Driver": "overlay", "Labels": labels}),
        )
        .await
        .unwrap();
    cleanup.networks.push(network.id.clone());
    let secret = engine
        .create_secret(&json!({"Name": format!("{stack}_s"), "Labels": labels, "Data": "aGVsbG8="}))
        .await
        .unwrap();
    cleanup.secrets.push(secret.id.clone());
    let config = engine
        .create_config(&json!({"Name": format!("{stack}_c"), "Labels": labels, "Data": "aGVsbG8="}))
        .await
        .unwrap();
    cleanup.configs.push(config.id.clone());

    let networks = engine.list_networks(Some(&stack)).await.unwrap();
    assert_eq!(networks.len(), 1);
    assert_eq!(networks[0].id, network.id);
    assert_eq!(networks[0].name, format!("{stack}_net"));
    let secrets = engine.list_secrets(Some(&stack)).await.unwrap();
    assert_eq!(
        (secrets.len(), secrets[0].name.as_str()),
        (1, format!("{stack}_s").as_str())
    );
    assert_eq!(secrets[0].labels[STACK_NAMESPACE_LABEL], stack);
    let configs = engine.list_configs(Some(&stack)).await.unwrap();
    assert_eq!(configs[0].id, config.id);

    engine.remove_network(&network.id).await.unwrap();
    engine.remove_secret(&secret.id).await.unwrap();
    engine.remove_config(&config.id).await.unwrap();
    assert!(engine.list_networks(Some(&stack)).await.unwrap().is_empty());
    assert!(engine.list_secrets(Some(&stack)).await.unwrap().is_empty());
}

#[tokio::test]
async fn configs_with_their_data_labels_and_versions() {
    let mut cleanup = Cleanup::default();
    let engine = Engine::from_env().unwrap();
    let name = unique("cfgobj");
    let data = (0..=255u8).collect::<Vec<u8>>();
    let created = engine
        .create_config(&json!({
            "Name": name,
            "Labels": {"swarmkeeper.test": name, "kind": "a"},
            "Data": base64::engine::general_purpose::STANDARD.encode(&data),
        }))
        .await
        .unwrap();
    cleanup.configs.push(created.id.clone());
    // Names are unique: a second create is refused with 409, which the history's lock uses.
    let again = engine
        .create_config(&json!({"Name": name, "Data": "eA=="}))
        .await
        .unwrap_err();
    assert!(again.is_conflict(), "{again}");

    let filter = |kind: &str| vec![format!("swarmkeeper.test={name}"), format!("kind={kind}")];
    let listed = engine.list_config_objects(&filter("a")).await.unwrap();
    assert_eq!(listed.len(), 1);
    let config = &listed[0];
    assert_eq!(
        (config.id.as_str(), config.name.as_str()),
        (created.id.as_str(), name.as_str())
    );
    assert_eq!(config.data, data, "the data comes back decoded");
    assert_eq!(config.created_at, config.updated_at);
    assert!(engine
        .list_config_objects(&filter("b"))
        .await
        .unwrap()
        .is_empty());

    // Only labels may change; the update moves the version and UpdatedAt.
    let mut labels = config.labels.clone();
    labels.insert("kind".into(), "b".into());
    engine.update_config_labels(config, &labels).await.unwrap();
    let updated = engine.inspect_config(&name).await.unwrap();
    assert_eq!(updated.labels["kind"], "b");
    assert_eq!(updated.data, data);
    assert!(updated.version > config.version && updated.updated_at > config.updated_at);
    let stale = engine
        .update_config_labels(config, &labels)
        .await
        .unwrap_err();
    assert!(is_out_of_sequence(&stale), "{stale}");

    // What Swarm takes in one config (1000 KiB on 20.10; 500 KiB on older engines, which the
    // history's chunks keep to).
    let too_big = engine
        .create_config(&json!({
            "Name": format!("{name}-big"),
            "Data": base64::engine::general_purpose::STANDARD.encode(vec![0u8; 1024 * 1000]),
        }))
        .await
        .unwrap_err();
    assert!(
        too_big.to_string().contains("config data must be"),
        "{too_big}"
    );

    engine.remove_config(&created.id).await.unwrap();
    let gone = engine.inspect_config(&name).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    let info = engine.info().await.unwrap();
    assert!(
        info.cluster_id.is_some() && info.system_time.is_some(),
        "{info:?}"
    );
}

/// A service that runs `busybox sleep` from `image` and stops within a second.
fn sleeper(name: &str, image: &str, mode: serde_json::Value) -> serde_json::Value {
    json!({
        "Name": name,
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": image,
                "Command": ["/bin/busybox", "sleep", "600"],
                "StopGracePeriod": 1_000_000_000u64
            }
        },
        "Mode": mode
    })
}

/// `TaskTemplate.ForceUpdate`: the engine writes 0 into a new service's spec.
fn force_update(spec: &serde_json::Value) -> u64 {
    spec.pointer("/TaskTemplate/ForceUpdate")
        .map(|f| f.as_u64().expect("ForceUpdate is a number"))
        .unwrap_or(0)
}

/// Waits until `count` tasks of the service want to run and do, listing every task at once.
async fn running_tasks(engine: &Engine, service_id: &str, count: usize) -> Vec<Task> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let tasks: Vec<Task> = engine
            .list_all_tasks()
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.service_id == service_id && t.desired_state == TaskState::Running)
            .collect();
        if tasks.len() == count && tasks.iter().all(|t| t.state == TaskState::Running) {
            return tasks;
        }
        assert!(
            Instant::now() < deadline,
            "not {count} running tasks: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_single_node_is_a_ready_leading_manager() {
    let engine = Engine::from_env().unwrap();
    let info = engine.info().await.unwrap();
    assert_eq!(info.local_node_state, "active");
    assert!(info.is_manager);

    let nodes = engine.list_nodes().await.unwrap();
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let node = &nodes[0];
    assert_eq!(Some(&node.id), info.node_id.as_ref());
    assert_eq!(node.hostname, info.hostname);
    assert_eq!(node.role, "manager");
    assert_eq!(node.availability, "active");
    assert_eq!(node.state, "ready");
    assert!(node.leader);
    assert_eq!(node.manager_reachability.as_deref(), Some("reachable"));
    assert_eq!(node.engine_version, info.server_version);
    assert_eq!(
        node.addr,
        docker(&["node", "inspect", "self", "--format", "{{.Status.Addr}}"])
    );
    assert_eq!(
        node.nano_cpus,
        docker(&["info", "--format", "{{.NCPU}}"])
            .parse::<u64>()
            .unwrap()
            * 1_000_000_000
    );
    assert!(node.memory_bytes > 0);
    assert_eq!(node.os, "linux");
    assert!(!node.architecture.is_empty());
    assert!(node.created_at.is_some() && node.updated_at >= node.created_at);
    assert!(node.version > 0);
    assert_eq!(node.spec["Role"], "manager");

    // By id and by hostname: the same node (its version moves with each status report).
    for key in [node.id.as_str(), node.hostname.as_str()] {
        let inspected = engine.inspect_node(key).await.unwrap();
        assert_eq!(
            (
                &inspected.id,
                &inspected.hostname,
                &inspected.role,
                &inspected.spec
            ),
            (&node.id, &node.hostname, &node.role, &node.spec),
            "{key}"
        );
    }
    let missing = engine.inspect_node(&unique("nonode")).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
    assert!(missing.to_string().contains("not found"), "{missing}");
}

/// Only a label of its own is changed: the node is the whole team's manager, its availability
/// stays as it is.
#[tokio::test]
async fn a_node_update_changes_a_label_and_keeps_the_rest_of_the_spec() {
    let engine = Engine::from_env().unwrap();
    let info = engine.info().await.unwrap();
    let node = engine
        .inspect_node(info.node_id.as_deref().unwrap())
        .await
        .unwrap();
    let key = unique("sk-test-label");
    let add = NodeChange {
        availability: Some(node.availability.clone()),
        add_labels: [(key.clone(), "disk 96% >= 95%".to_string())].into(),
        ..NodeChange::default()
    };
    engine.update_node(&node, &add).await.unwrap();
    let changed = engine.inspect_node(&node.id).await.unwrap();
    assert_eq!(
        changed.labels.get(&key).map(String::as_str),
        Some("disk 96% >= 95%")
    );
    assert_eq!(changed.availability, node.availability);
    assert_eq!(changed.role, node.role);
    for (k, v) in &node.labels {
        assert_eq!(changed.labels.get(k), Some(v), "other labels stay");
    }
    // From the node as read before the first update: a stale version is read again and the
    // change made on the fresh spec.
    let remove = NodeChange {
        remove_labels: vec![key.clone()],
        ..NodeChange::default()
    };
    engine.update_node(&node, &remove).await.unwrap();
    let back = engine.inspect_node(&node.id).await.unwrap();
    assert!(!back.labels.contains_key(&key), "{:?}", back.labels);
    assert_eq!(back.availability, node.availability);
}

#[tokio::test]
async fn all_tasks_and_a_nodes_tasks_in_one_request_each() {
    let mut scratch = Scratch::default();
    let tag = format!("{}:v1", unique("tasksimg"));
    scratch.build(&tag, None, 1024);
    let mut cleanup = Cleanup::default();
    let engine = Engine::from_env().unwrap();
    let name = unique("tasks");
    let created = engine
        .create_service(
            &sleeper(&name, &tag, json!({"Replicated": {"Replicas": 2}})),
            None,
        )
        .await
        .unwrap();
    cleanup.services.push(created.id.clone());

    let tasks = running_tasks(&engine, &created.id, 2).await;
    let node = engine.info().await.unwrap().node_id.unwrap();
    let mut slots: Vec<_> = tasks.iter().map(|t| t.slot).collect();
    slots.sort();
    assert_eq!(slots, [Some(1), Some(2)]);
    for task in &tasks {
        assert_eq!(task.node_id, node);
        assert!(task.image().name.starts_with(&tag), "{}", task.image());
        assert!(task.created_at.is_some() && task.timestamp >= task.created_at);
        let container = task
            .container_id
            .as_deref()
            .expect("a running task's container");
        assert_eq!(
            docker(&[
                "inspect",
                "--format",
                "{{index .Config.Labels \"com.docker.swarm.task.id\"}}",
                container
            ]),
            task.id
        );
    }

    // The same tasks by node id and by hostname; by service, as before.
    let hostname = engine.info().await.unwrap().hostname;
    for key in [node.as_str(), hostname.as_str()] {
        let on_node = engine.list_node_tasks(key).await.unwrap();
        for task in &tasks {
            assert!(on_node.contains(task), "{key}: {task:?} not in {on_node:?}");
        }
        assert!(on_node.iter().all(|t| t.node_id == node));
    }
    let by_service = engine.list_tasks(&name).await.unwrap();
    assert_eq!(by_service.len(), 2);
    assert!(by_service.iter().all(|t| tasks.contains(t)));
    let missing = engine.list_node_tasks(&unique("nonode")).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
}

#[tokio::test]
async fn scaling_and_forcing_an_update_keep_the_rest_of_the_spec() {
    let mut scratch = Scratch::default();
    let tag = format!("{}:v1", unique("scaleimg"));
    scratch.build(&tag, None, 1024);
    let mut cleanup = Cleanup::default();
    let engine = Engine::from_env().unwrap();
    let name = unique("scale");
    let created = engine
        .create_service(
            &sleeper(&name, &tag, json!({"Replicated": {"Replicas": 1}})),
            None,
        )
        .await
        .unwrap();
    cleanup.services.push(created.id.clone());
    let before = engine.inspect_service(&created.id).await.unwrap();
    let force = force_update(&before.spec);

    engine.scale_service(&name, 3).await.unwrap();
    let scaled = engine.inspect_service(&created.id).await.unwrap();
    assert_eq!(
        scaled.spec.pointer("/Mode/Replicated/Replicas"),
        Some(&json!(3))
    );
    assert!(scaled.version > before.version);
    let mut expected = before.spec.clone();
    expected["Mode"]["Replicated"]["Replicas"] = json!(3);
    assert_eq!(scaled.spec, expected);
    assert_eq!(
        docker(&[
            "service",
            "inspect",
            "--format",
            "{{.Spec.Mode.Replicated.Replicas}}",
            &name
        ]),
        "3"
    );
    let tasks = running_tasks(&engine, &created.id, 3).await;

    // --force: ForceUpdate goes up by one and every task is replaced.
    engine.force_update_service(&created.id).await.unwrap();
    let forced = engine.inspect_service(&created.id).await.unwrap();
    assert_eq!(force_update(&forced.spec), force + 1);
    let mut expected = scaled.spec.clone();
    expected["TaskTemplate"]["ForceUpdate"] = json!(force + 1);
    assert_eq!(forced.spec, expected);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let now = running_tasks(&engine, &created.id, 3).await;
        if now.iter().all(|t| !tasks.iter().any(|old| old.id == t.id)) {
            break;
        }
        assert!(Instant::now() < deadline, "tasks not replaced: {now:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Two changes at once: whichever loses the race reads the service again, so both land.
    let (scaled_again, forced_again) = tokio::join!(
        engine.scale_service(&created.id, 2),
        engine.force_update_service(&created.id)
    );
    scaled_again.unwrap();
    forced_again.unwrap();
    let both = engine.inspect_service(&created.id).await.unwrap();
    assert_eq!(
        both.spec.pointer("/Mode/Replicated/Replicas"),
        Some(&json!(2))
    );
    assert_eq!(force_update(&both.spec), force + 2);

    let missing = engine.scale_service(&unique("nosvc"), 1).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing}");
}

#[tokio::test]
async fn a_global_service_cannot_be_scaled() {
    let mut scratch = Scratch::default();
    let tag = format!("{}:v1", unique("globalimg"));
    scratch.build(&tag, None, 1024);
    let mut cleanup = Cleanup::default();
    let engine = Engine::from_env().unwrap();
    let name = unique("global");
    let created = engine
        .create_service(&sleeper(&name, &tag, json!({"Global": {}})), None)
        .await
        .unwrap();
    cleanup.services.push(created.id.clone());
    let before = engine.inspect_service(&created.id).await.unwrap();

    let err = engine.scale_service(&created.id, 3).await.unwrap_err();
    assert!(matches!(err, EngineError::NotScalable { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&format!(
            "service {name} is global: it runs one task per node and cannot be scaled"
        )),
        "{message}"
    );
    assert!(message.contains(engine.host()), "{message}");
    assert!(!err.is_not_found() && !is_out_of_sequence(&err));
    let after = engine.inspect_service(&created.id).await.unwrap();
    assert_eq!((after.version, &after.spec), (before.version, &before.spec));

    // A global service can still be forced to restart its tasks.
    engine.force_update_service(&name).await.unwrap();
    let forced = engine.inspect_service(&created.id).await.unwrap();
    assert_eq!(force_update(&forced.spec), force_update(&before.spec) + 1);
    assert!(forced.spec.pointer("/Mode/Global").is_some());
}
