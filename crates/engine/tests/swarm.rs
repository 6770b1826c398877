//! The swarm calls against the real single-node swarm: uniquely named objects, removed when
//! the test ends, passed or not.

#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use swarmkeeper_engine::{is_out_of_sequence, Engine, LogOptions, STACK_NAMESPACE_LABEL};

use common::{unique, Scratch};

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
        // Tasks must be gone before their network can go.
        std::thread::sleep(Duration::from_millis(if self.services.is_empty() {
            0
        } else {
            2000
        }));
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
    let created = engine.create_service(&spec).await.unwrap();
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
        if let Some(task) = tasks.iter().find(|t| t.state == "running") {
            break task.clone();
        }
        assert!(Instant::now() < deadline, "no running task: {tasks:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(task.slot, Some(1));
    assert_eq!(task.desired_state, "running");
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
    let mut updated = service.spec.clone();
    updated["Labels"]["extra"] = json!("1");
    engine
        .update_service(&service.id, service.version, &updated)
        .await
        .unwrap();
    let stale = engine
        .update_service(&service.id, service.version, &updated)
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
    assert!(engine.distribution_digest(&tag).await.is_err());

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
