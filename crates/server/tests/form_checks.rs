//! Tryout finding 6 (issue #14, "bad input in every form"): form input the engine would
//! accept and then leave the service down or pending until the deploy timeout — a log driver
//! no node has, a relative mount target, a reservation larger than any node, an environment
//! line without `=` — is refused next to its field on the form, and with the file's line and
//! column (or the service) on "edit as compose", with nothing applied: the service's
//! `Version.Index` stays as it was. Tryout 7 finding 18: a port another service already
//! publishes is refused at the Ports field, naming the service that has it (the engine
//! refused it only after Apply, or, next to a host-mode port, took it away), and a label
//! swarmkeeper writes from the stack (`com.docker.stack.namespace`) at the Labels field
//! instead of being dropped. Against the host's single-node swarm.

mod support;

use std::net::TcpListener;

use serde_json::json;
use support::{
    after_image_line, service_form, service_version, test_image, Call, TestApp, TestService, SLEEP,
};

/// A port nothing on this machine listens on now.
fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The service form's post and the API's `PUT /api/services/{name}` of `name` on the test
/// image with `field` set to `value`: the form answers 422 with `message` next to `field`, the
/// API 400 with `message`, and the engine took nothing (the service's `Version.Index` stays).
async fn refused_at_field(app: &TestApp, name: &str, field: &str, value: &str, message: &str) {
    let op = &app.operator;
    let image = test_image();
    let before = service_version(name);
    let page = app
        .call(service_form(
            op,
            name,
            &[("name", name), ("image", image), (field, value)],
        ))
        .await;
    page.expect(422);
    let text = page.text();
    assert!(
        text.contains(&format!("data-field=\"{field}\"")),
        "{field}={value}: {text}"
    );
    assert!(text.contains(message), "{field}={value}: {text}");
    let refused = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&json!({"name": name, "image": image, field: value})),
        )
        .await
        .expect_json_error(400);
    assert!(refused.contains(message), "{field}={value}: {refused}");
    assert_eq!(
        service_version(name),
        before,
        "{field}={value}: nothing was applied"
    );
}

#[tokio::test]
async fn input_that_would_take_the_service_down_is_refused_at_its_field() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let service = TestService::sleeping("formcheck");
    let name = service.name.clone();
    let image = test_image();
    let before = service_version(&name);

    for (field, value, message) in [
        (
            "log_driver",
            "nosuchdriver",
            "log driver `nosuchdriver` is on none of the 1 ready, active node(s); they have",
        ),
        (
            "mounts",
            "type=volume,target=relative",
            "mount target `relative` must be an absolute path in the container",
        ),
        (
            "reserve_memory",
            "1000T",
            "a memory reservation of 1000 TiB is more than any of the 1 ready, active node(s)",
        ),
        ("reserve_cpus", "100000", "a reservation of 100000 CPUs"),
        (
            "env",
            "A=1\nNOEQUALS",
            "has no value and none is set where it is deployed",
        ),
    ] {
        refused_at_field(&app, &name, field, value, message).await;
    }
    // The drivers the engine has are fine.
    let preview = app
        .call(service_form(
            op,
            &name,
            &[
                ("name", name.as_str()),
                ("image", image),
                ("log_driver", "json-file"),
            ],
        ))
        .await;
    preview.expect(200);

    // Edit as compose: the same checks, with the line and column or the service.
    let compose = app.service_compose(&name, op).await;
    let at_image = |extra: &str| after_image_line(&compose, extra);
    for (text, message) in [
        (
            at_image("    volumes: [{type: tmpfs, target: relative}]"),
            "mount target `relative` must be an absolute path",
        ),
        (
            at_image("    logging: {driver: nosuchdriver}"),
            "cannot be placed: log driver `nosuchdriver` is on none of the",
        ),
        (
            compose.replace(
                "mode: \"replicated\"",
                "mode: \"replicated\"\n      resources: {reservations: {memory: 1000T}}",
            ),
            "cannot be placed: a memory reservation of 1000 TiB",
        ),
    ] {
        assert_ne!(text, compose);
        let refused = app
            .post_compose(&name, op, &text)
            .await
            .expect_json_error(400);
        assert!(refused.contains(&format!("{name}.yml:")), "{refused}");
        assert!(refused.contains(message), "{refused}");
        let page = app
            .call(
                Call::post(&format!("/services/{name}/compose"))
                    .session(op)
                    .form(&[("compose", text.as_str())]),
            )
            .await;
        page.expect(422);
        assert_eq!(
            service_version(&name),
            before,
            "{message}: nothing was applied"
        );
    }
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
        SLEEP,
    );
    let service = TestService::sleeping("portwant");
    let name = service.name.clone();
    holder.wait_running(1);
    let image = test_image();
    let before = service_version(&name);

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
        refused_at_field(&app, &name, "ports", &ports, &message).await;
    }
    // Two host-mode ports of one number: Swarm's scheduler keeps their tasks apart, on
    // different nodes; this swarm's only node has it taken, so the task would stay pending.
    let host_too = format!("mode=host,published={host},target=80");
    let hostname = support::docker(&[
        "node",
        "inspect",
        "self",
        "--format",
        "{{.Description.Hostname}}",
    ]);
    let taken = format!(
        "port {host}/tcp in host mode with 1 replica: each task needs a node of its own where \
         no other task publishes that port, and 0 of the 1 ready, active node that can run it \
         have it free (taken on {hostname} by service {})",
        holder.name
    );
    refused_at_field(&app, &name, "ports", &host_too, &taken).await;
    // The holder keeps its own ports when its form is saved.
    for (target, ports) in [(&holder.name, format!("{mesh}:80"))] {
        let preview = app
            .call(service_form(
                op,
                target,
                &[
                    ("name", target.as_str()),
                    ("image", image),
                    ("ports", ports.as_str()),
                ],
            ))
            .await;
        preview.expect(200);
    }

    // Edit as compose: the same rule, at the port's place in the text.
    let compose = app.service_compose(&name, op).await;
    let text = after_image_line(&compose, &format!("    ports: [\"{mesh}:80\"]"));
    let line = 1 + text
        .lines()
        .position(|l| l.starts_with("    ports: ["))
        .unwrap();
    let refused = app
        .post_compose(&name, op, &text)
        .await
        .expect_json_error(400);
    assert!(
        refused.starts_with(&format!(
            "{name}.yml:{line}:13: {name}: would publish port {mesh}/tcp, which service {} \
             already publishes",
            holder.name
        )),
        "{refused}"
    );
    assert_eq!(
        service_version(&name),
        before,
        "compose: nothing was applied"
    );
}

/// A replicated service publishing a port in host mode needs a node of its own for each
/// replica: on this single-node swarm, 2 replicas would leave one task pending until the
/// deploy's timeout. Refused before anything is created, at the Ports field, on create (form
/// and API) and in edit as compose at the port's line and column.
#[tokio::test]
async fn more_host_mode_replicas_than_nodes_are_refused_and_nothing_is_created() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let port = free_port();
    let name = support::unique("objs11hostport");
    let ports = format!("mode=host,published={port},target=80");
    let message = format!(
        "this service cannot be placed: it publishes port {port}/tcp in host mode with 2 \
         replicas: each task needs a node of its own where no other task publishes that port, \
         and 1 of the 1 ready, active node that can run it has it free; Swarm would leave 1 of \
         them pending"
    );
    let refused = app
        .call(Call::post("/api/services").bearer(&op.token).json(
            &json!({"name": name, "image": test_image(), "replicas": "2",
                              "ports": ports}),
        ))
        .await
        .expect_json_error(400);
    assert!(refused.starts_with("ports: "), "{refused}");
    assert!(refused.contains(&message), "{refused}");
    let page = app
        .call(Call::post("/services/new").session(op).form(&[
            ("name", name.as_str()),
            ("image", test_image()),
            ("mode", "replicated"),
            ("replicas", "2"),
            ("ports", ports.as_str()),
        ]))
        .await;
    page.expect(422);
    assert!(
        page.text().contains("data-field=\"ports\""),
        "{}",
        page.text()
    );
    assert!(page.text().contains(&message), "{}", page.text());
    assert!(!support::exists("service", &name), "nothing created");
    // One replica fits; two, as compose, are refused at the port's place.
    let service = TestService::running(
        "objs11hostport",
        &[
            "--publish",
            &format!("mode=host,published={port},target=80"),
        ],
        SLEEP,
    );
    let before = service_version(&service.name);
    let compose = app.service_compose(&service.name, op).await;
    assert!(compose.contains("replicas: 1"), "{compose}");
    let text = compose.replace("replicas: 1", "replicas: 2");
    let line = 1 + text
        .lines()
        .position(|l| l.trim_start().starts_with("- ") && l.contains(&port.to_string()))
        .unwrap_or_else(|| panic!("the port in {text}"));
    let refused = app
        .post_compose(&service.name, op, &text)
        .await
        .expect_json_error(400);
    assert!(
        refused.starts_with(&format!("{}.yml:{line}:", service.name)),
        "{refused}"
    );
    assert!(
        refused.contains(&format!(
            "cannot be placed: it publishes port {port}/tcp in host mode with 2 replicas"
        )),
        "{refused}"
    );
    assert_eq!(service_version(&service.name), before, "nothing applied");
}

#[tokio::test]
async fn a_label_docker_stack_writes_is_refused_at_the_labels_field() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let service = TestService::sleeping("stacklabel");
    let name = service.name.clone();
    let image = test_image();
    let before = service_version(&name);
    let page = app
        .call(service_form(
            op,
            &name,
            &[
                ("name", name.as_str()),
                ("image", image),
                ("labels", "team=shop\ncom.docker.stack.namespace=evil"),
            ],
        ))
        .await;
    page.expect(422);
    let text = page.text();
    assert!(text.contains("data-field=\"labels\""), "{text}");
    assert!(
        text.contains("com.docker.stack.namespace: reserved for docker stack"),
        "{text}"
    );
    assert_eq!(service_version(&name), before, "nothing was applied");
}
