//! Tryout finding 6 (issue #14, "bad input in every form"): form input the engine would
//! accept and then leave the service down or pending until the deploy timeout — a log driver
//! no node has, a relative mount target, a reservation larger than any node, an environment
//! line without `=` — is refused next to its field on the form, and with the file's line and
//! column (or the service) on "edit as compose", with nothing applied: the service's
//! `Version.Index` stays as it was. Against the host's single-node swarm.

mod support;

use serde_json::json;
use support::{compose_text_of, test_image, try_docker, Call, TestApp, TestService};

fn version(name: &str) -> String {
    try_docker(&["service", "inspect", "--format", "{{.Version.Index}}", name]).unwrap()
}

#[tokio::test]
async fn input_that_would_take_the_service_down_is_refused_at_its_field() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let service = TestService::running("formcheck", &[], &["/bin/busybox", "sleep", "3600"]);
    let name = service.name.clone();
    service.wait_running(1);
    let image = test_image();
    let before = version(&name);

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
        ("env", "A=1\nNOEQUALS", "each line is NAME=VALUE"),
    ] {
        let page = app
            .call(
                Call::post(&format!("/services/{name}/edit"))
                    .session(op)
                    .form(&[("name", name.as_str()), ("image", image), (field, value)]),
            )
            .await;
        page.expect(422);
        let text = page.text();
        assert!(
            text.contains(&format!("data-field=\"{field}\"")),
            "{field}: {text}"
        );
        assert!(text.contains(message), "{field}: {text}");
        let refused = app
            .call(
                Call::put(&format!("/api/services/{name}"))
                    .bearer(&op.token)
                    .json(&json!({"name": name, "image": image, field: value})),
            )
            .await
            .expect_json_error(400);
        assert!(refused.contains(message), "{field}: {refused}");
        assert_eq!(version(&name), before, "{field}: nothing was applied");
    }
    // The drivers the engine has are fine.
    let preview = app
        .call(
            Call::post(&format!("/services/{name}/edit"))
                .session(op)
                .form(&[
                    ("name", name.as_str()),
                    ("image", image),
                    ("log_driver", "json-file"),
                ]),
        )
        .await;
    preview.expect(200);

    // Edit as compose: the same checks, with the line and column or the service.
    let page = app
        .call(Call::get(&format!("/services/{name}/compose")).session(op))
        .await;
    page.expect(200);
    let compose = compose_text_of(&page.text());
    let at_image = |extra: &str| {
        let line = compose
            .lines()
            .find(|l| l.trim_start().starts_with("image:"))
            .expect("an image line");
        compose.replacen(line, &format!("{line}\n{extra}"), 1)
    };
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
            .call(
                Call::post(&format!("/api/services/{name}/compose"))
                    .bearer(&op.token)
                    .json(&json!({"compose": text})),
            )
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
        assert_eq!(version(&name), before, "{message}: nothing was applied");
    }
}
