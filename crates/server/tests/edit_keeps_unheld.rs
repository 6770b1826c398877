//! Editing one field of a service `docker stack deploy` made keeps what the form does not hold
//! (tryout9 finding 19): `TaskTemplate.Placement.Platforms` and a volume mount's
//! `VolumeOptions.Labels` (the stack's namespace) stay as the engine has them; only the edited
//! field changes. The service is created through the Engine API with both, as the docker CLI
//! writes them.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{test_image, try_docker, unique, Call, HistoryOf, TestApp, TestService, SLEEP};

#[tokio::test]
async fn an_edit_keeps_platforms_and_the_volumes_labels() {
    let app = TestApp::new().await;
    let name = unique("keepunheld");
    let volume = format!("{name}_data");
    let platforms = json!([{"Architecture": "amd64", "OS": "linux"}]);
    let namespace = json!({"com.docker.stack.namespace": name});
    let spec = json!({
        "Name": name,
        "Labels": {"swarmkeeper.test": "server"},
        "Mode": {"Replicated": {"Replicas": 1}},
        "UpdateConfig": {"Monitor": 1_000_000_000u64, "FailureAction": "rollback"},
        "TaskTemplate": {
            "ContainerSpec": {
                "Image": test_image(),
                "Args": SLEEP,
                "Mounts": [{"Type": "volume", "Source": volume, "Target": "/data",
                            "VolumeOptions": {"Labels": namespace}}]
            },
            "Placement": {"Platforms": platforms},
            "RestartPolicy": {"Condition": "any", "Delay": 5_000_000_000u64},
            "LogDriver": {"Name": "local"}
        }
    });
    // Declared first, dropped last: after the service is gone, even when an assert fails.
    let _volume = RemoveVolume(volume.clone());
    let service = TestService { name: name.clone() };
    let _history = HistoryOf(name.clone());
    app.state
        .engine
        .create_service(&spec, None)
        .await
        .expect("the engine creates it");
    service.wait_running(1);

    let answer = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&app.operator.token)
                .json(&json!({"restart_delay": "6s"})),
        )
        .await;
    answer.expect(200);
    let changes = answer.json()["changes"].clone();
    let changes: Vec<&str> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        !changes
            .iter()
            .any(|c| c.contains("Platforms") || c.contains("VolumeOptions")),
        "{changes:?}"
    );
    let after = service.spec();
    let template = &after["TaskTemplate"];
    assert_eq!(template["Placement"]["Platforms"], platforms, "{after}");
    assert_eq!(
        template["ContainerSpec"]["Mounts"][0]["VolumeOptions"]["Labels"], namespace,
        "{after}"
    );
    assert_eq!(
        template["RestartPolicy"]["Delay"], 6_000_000_000u64,
        "{after}"
    );
}

/// The node's volume the service made, removed once its task is gone.
struct RemoveVolume(String);

impl Drop for RemoveVolume {
    fn drop(&mut self) {
        // Never panics: a drop may run while an assert's panic unwinds.
        let volume = &self.0;
        let start = std::time::Instant::now();
        while try_docker(&["volume", "rm", volume]).is_err()
            && try_docker(&["volume", "inspect", volume]).is_ok()
            && start.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}
