//! Tryout 7 finding 18: the service form and "edit as compose" offered to publish a port
//! another service already publishes, and the engine refused only after Apply (or, next to
//! a host-mode port, took it away). The deploy preflight's rule now refuses it at the Ports
//! field, naming the service that has the port, with nothing applied. A label Swarmkeeper
//! writes from the stack (`com.docker.stack.namespace`) is refused at the Labels field
//! instead of being dropped. Against the host's single-node swarm.

mod support;

use std::net::TcpListener;

use serde_json::json;
use support::{compose_text_of, test_image, try_docker, Call, TestApp, TestService};

fn version(name: &str) -> String {
    try_docker(&["service", "inspect", "--format", "{{.Version.Index}}", name]).unwrap()
}

/// A port nothing on this machine listens on now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_port_another_service_publishes_is_refused_at_the_ports_field() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let (mesh, host) = (free_port(), free_port());
    let holder = TestService::running(
        "portholder",
        &[
            "--publish",
            &format!("published={mesh},target=80"),
            "--publish",
            &format!("mode=host,published={host},target=81"),
        ],
        &["/bin/busybox", "sleep", "3600"],
    );
    let service = TestService::running("portwant", &[], &["/bin/busybox", "sleep", "3600"]);
    let name = service.name.clone();
    holder.wait_running(1);
    service.wait_running(1);
    let image = test_image();
    let before = version(&name);

    for (ports, message) in [
        (
            format!("{mesh}:80"),
            format!(
                "this service would publish port {mesh}/tcp, which service {} already \
                 publishes: a port of the routing mesh belongs to one service",
                holder.name
            ),
        ),
        (
            format!("{host}:80"),
            format!(
                "this service would publish port {host}/tcp, which service {} already \
                 publishes in host mode: the routing mesh takes a port on every node",
                holder.name
            ),
        ),
        (
            format!("mode=host,published={mesh},target=80"),
            format!(
                "port {mesh}/tcp, which service {} already publishes:",
                holder.name
            ),
        ),
    ] {
        let page = app
            .call(
                Call::post(&format!("/services/{name}/edit"))
                    .session(op)
                    .form(&[
                        ("name", name.as_str()),
                        ("image", image),
                        ("ports", ports.as_str()),
                    ]),
            )
            .await;
        page.expect(422);
        let text = page.text();
        assert!(text.contains("data-field=\"ports\""), "{ports}: {text}");
        assert!(text.contains(&message), "{ports}: {text}");
        let refused = app
            .call(
                Call::put(&format!("/api/services/{name}"))
                    .bearer(&op.token)
                    .json(&json!({"name": name, "image": image, "ports": ports})),
            )
            .await
            .expect_json_error(400);
        assert!(refused.contains(&message), "{ports}: {refused}");
        assert_eq!(version(&name), before, "{ports}: nothing was applied");
    }
    // Two host-mode ports of one number: Swarm's scheduler keeps their tasks apart. And the
    // holder keeps its own ports when its form is saved.
    let host_too = format!("mode=host,published={host},target=80");
    for (target, ports) in [(&name, host_too), (&holder.name, format!("{mesh}:80"))] {
        let preview = app
            .call(
                Call::post(&format!("/services/{target}/edit"))
                    .session(op)
                    .form(&[
                        ("name", target.as_str()),
                        ("image", image),
                        ("ports", ports.as_str()),
                    ]),
            )
            .await;
        preview.expect(200);
    }

    // Edit as compose: the same rule, naming the file and the service.
    let page = app
        .call(Call::get(&format!("/services/{name}/compose")).session(op))
        .await;
    page.expect(200);
    let compose = compose_text_of(&page.text());
    let line = compose
        .lines()
        .find(|l| l.trim_start().starts_with("image:"))
        .expect("an image line");
    let text = compose.replacen(line, &format!("{line}\n    ports: [\"{mesh}:80\"]"), 1);
    let refused = app
        .call(
            Call::post(&format!("/api/services/{name}/compose"))
                .bearer(&op.token)
                .json(&json!({"compose": text})),
        )
        .await
        .expect_json_error(400);
    assert!(
        refused.contains(&format!(
            "{name}.yml: service {name} would publish port {mesh}/tcp, which service {} already publishes",
            holder.name
        )),
        "{refused}"
    );
    assert_eq!(version(&name), before, "compose: nothing was applied");
}

#[tokio::test]
async fn a_label_docker_stack_writes_is_refused_at_the_labels_field() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let service = TestService::running("stacklabel", &[], &["/bin/busybox", "sleep", "3600"]);
    let name = service.name.clone();
    service.wait_running(1);
    let image = test_image();
    let before = version(&name);
    let page = app
        .call(
            Call::post(&format!("/services/{name}/edit"))
                .session(op)
                .form(&[
                    ("name", name.as_str()),
                    ("image", image),
                    ("labels", "team=shop\ncom.docker.stack.namespace=evil"),
                ]),
        )
        .await;
    page.expect(422);
    let text = page.text();
    assert!(text.contains("data-field=\"labels\""), "{text}");
    assert!(
        text.contains("com.docker.stack.namespace: reserved for docker stack"),
        "{text}"
    );
    assert_eq!(version(&name), before, "nothing was applied");
}
