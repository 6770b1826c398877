//! The service form's mount options reach the engine: a volume mount with `volume.nocopy`
//! and read-only, a tmpfs mount with `tmpfs.size`, created through the API against the
//! host's swarm; an option that does not fit its mount type is refused naming the field,
//! nothing created; the edit form shows them back.

mod support;

use serde_json::json;
use support::{
    remove_history, test_image, try_docker, unique, Call, TestApp, TestService, TEST_LABEL,
};

#[tokio::test]
async fn volume_and_tmpfs_options_reach_the_engine() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let name = unique("mountopts");
    let volume = unique("mountvol");
    let service = TestService { name: name.clone() };
    let mounts = format!(
        "type=volume,source={volume},target=/data,volume.nocopy=true,read_only=true\n\
         type=tmpfs,target=/cache,tmpfs.size=16m"
    );
    let mut form = json!({
        "name": name,
        "image": test_image(),
        "command": "/bin/busybox sleep 3600",
        "replicas": 1,
        "labels": [TEST_LABEL],
        "mounts": "type=tmpfs,target=/cache,volume.nocopy=true",
    });
    let message = app
        .call(Call::post("/api/services").bearer(&op.token).json(&form))
        .await
        .expect_json_error(400);
    assert!(message.contains("mounts"), "{message}");
    assert!(try_docker(&["service", "inspect", &name]).is_err());

    form["mounts"] = json!(mounts);
    let created = app
        .call(Call::post("/api/services").bearer(&op.token).json(&form))
        .await;
    created.expect(201);
    remove_history(&name);
    let spec = service.spec();
    let mounts = &spec["TaskTemplate"]["ContainerSpec"]["Mounts"];
    assert_eq!(mounts[0]["Source"], volume.as_str(), "{mounts}");
    assert_eq!(mounts[0]["ReadOnly"], true, "{mounts}");
    assert_eq!(mounts[0]["VolumeOptions"]["NoCopy"], true, "{mounts}");
    assert_eq!(mounts[1]["Type"], "tmpfs", "{mounts}");
    assert_eq!(mounts[1]["TmpfsOptions"]["SizeBytes"], 16 << 20, "{mounts}");
    // The edit form shows them back, so that saving it keeps them.
    let edit = app
        .call(Call::get(&format!("/services/{name}/edit")).session(op))
        .await;
    edit.expect(200);
    let text = edit.text();
    assert!(
        text.contains("volume.nocopy=true") && text.contains("tmpfs.size=16M"),
        "{text}"
    );
    service.wait_running(1);
    drop(service);
    // The volume the task made, once its container is gone.
    support::wait_for(
        "the volume freed",
        std::time::Duration::from_secs(30),
        || {
            try_docker(&["volume", "rm", &volume]).is_ok()
                || try_docker(&["volume", "inspect", &volume]).is_err()
        },
    );
}
