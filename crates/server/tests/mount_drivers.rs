//! The service form's volume drivers and tmpfs modes, through the dashboard's form against
//! the host's swarm: a named volume with a driver and driver options
//! (`VolumeOptions.DriverConfig`) is created on the node with them, a tmpfs mount has the
//! mode the form gave in octal; the edit form shows exactly what was saved; a mode that is
//! not octal is refused next to the mounts field, nothing created.

mod support;

use std::time::Duration;

use support::{
    docker, remove_history, test_image, try_docker, unique, Call, TestApp, TestService, TEST_LABEL,
};

#[tokio::test]
async fn volume_drivers_and_tmpfs_modes_reach_the_engine_and_the_edit_form() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let name = unique("mountdrv");
    let volume = unique("mountdrvvol");
    let mounts = format!(
        "type=volume,source={volume},target=/data,volume.driver=local,\
         volume.driver_opts.device=tmpfs,\"volume.driver_opts.o=size=16m,mode=0750\",\
         volume.driver_opts.type=tmpfs\n\
         type=tmpfs,target=/cache,tmpfs.size=16M,tmpfs.mode=1770"
    );
    let image = test_image();
    let form = |mounts: &str| {
        Call::post("/services/new").session(op).form(&[
            ("name", name.as_str()),
            ("image", image),
            ("command", "/bin/busybox sleep 3600"),
            ("labels", TEST_LABEL),
            ("mounts", mounts),
            ("confirm", "yes"),
        ])
    };

    // Not octal: the form again with the message next to its field, nothing created.
    let refused = app
        .call(form("type=tmpfs,target=/cache,tmpfs.mode=u+rwx"))
        .await;
    assert_eq!(refused.status.as_u16(), 422, "{}", refused.text());
    let page = refused.text();
    let field_error = page
        .split("data-field=\"mounts\">")
        .nth(1)
        .unwrap_or_else(|| panic!("no error next to the mounts field:\n{page}"));
    assert!(
        field_error.starts_with("mode &#34;u+rwx&#34; is not an octal file mode")
            || field_error.contains("is not an octal file mode"),
        "{field_error}"
    );
    assert!(try_docker(&["service", "inspect", &name]).is_err());

    // Saved: a job, then the engine's spec, the node's volume and the task's tmpfs.
    let service = TestService { name: name.clone() };
    let created = app.call(form(&mounts)).await;
    let (_, end) = support::followed_job(&app, &created).await;
    // The creation's revision, recorded by the job's end.
    remove_history(&name);
    assert!(end.succeeded, "{end:?}");
    let spec = service.spec();
    let engine_mounts = &spec["TaskTemplate"]["ContainerSpec"]["Mounts"];
    let driver = &engine_mounts[0]["VolumeOptions"]["DriverConfig"];
    assert_eq!(driver["Name"], "local", "{engine_mounts}");
    assert_eq!(driver["Options"]["type"], "tmpfs", "{engine_mounts}");
    assert_eq!(
        driver["Options"]["o"], "size=16m,mode=0750",
        "{engine_mounts}"
    );
    assert_eq!(
        engine_mounts[1]["TmpfsOptions"]["Mode"], 0o1770,
        "{engine_mounts}"
    );
    service.wait_running(1);
    let options = docker(&[
        "volume",
        "inspect",
        &volume,
        "--format",
        "{{json .Options}}",
    ]);
    assert!(
        options.contains("\"o\":\"size=16m,mode=0750\"") && options.contains("\"type\":\"tmpfs\""),
        "the node's volume was made by the driver with the options: {options}"
    );
    let container = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=com.docker.swarm.service.name={name}"),
    ]);
    let modes = docker(&[
        "exec",
        container.lines().next().unwrap(),
        "/bin/busybox",
        "stat",
        "-c",
        "%a",
        "/cache",
        "/data",
    ]);
    assert_eq!(
        modes.split_whitespace().collect::<Vec<_>>(),
        ["1770", "750"]
    );

    // The edit form shows what was saved, line for line.
    let edit = app
        .call(Call::get(&format!("/services/{name}/edit")).session(op))
        .await;
    edit.expect(200);
    let text = edit.text();
    let shown = format!(
        "type=volume,target=/data,source={volume},volume.driver=local,\
         volume.driver_opts.device=tmpfs,&#34;volume.driver_opts.o=size=16m,mode=0750&#34;,\
         volume.driver_opts.type=tmpfs\n\
         type=tmpfs,target=/cache,tmpfs.size=16M,tmpfs.mode=1770"
    );
    assert!(text.contains(&shown), "{shown}\nnot in:\n{text}");

    drop(service);
    support::wait_for("the volume freed", Duration::from_secs(30), || {
        try_docker(&["volume", "rm", &volume]).is_ok()
            || try_docker(&["volume", "inspect", &volume]).is_err()
    });
}
