//! Networks through the whole router against the host's swarm: an overlay network created
//! with a subnet, listed with the service attached to it, its removal refused while the service
//! uses it and done once it is gone; bad input refused by field, viewers refused.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{try_docker, unique, wait_for, TestApp, TestService, SLEEP};

struct MadeNetwork(String);

impl Drop for MadeNetwork {
    fn drop(&mut self) {
        let _ = try_docker(&["network", "rm", &self.0]);
    }
}

fn row<'a>(list: &'a Value, name: &str) -> Option<&'a Value> {
    list["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
}

#[tokio::test]
async fn an_overlay_network_is_created_listed_guarded_and_removed() {
    let app = TestApp::new().await;
    let (v, op) = (&app.viewer, &app.operator);
    let name = unique("net");
    let _made = MadeNetwork(name.clone());
    // A subnet of its own per run, so that parallel runs do not collide.
    let subnet = format!(
        "10.{}.{}.0/24",
        200 + std::process::id() % 50,
        std::process::id() % 250
    );

    app.call(
        support::Call::post("/api/networks")
            .bearer(&v.token)
            .json(&json!({"name": name})),
    )
    .await
    .expect_json_error(403);
    let message = app
        .call(
            support::Call::post("/api/networks")
                .bearer(&op.token)
                .json(&json!({"name": name, "subnet": "10.0.0.0/40"})),
        )
        .await
        .expect_json_error(400);
    assert!(message.starts_with("subnet: "), "{message}");
    let page = app
        .call(
            support::Call::post("/networks")
                .session(op)
                .form(&[("name", "bad name"), ("subnet", "")]),
        )
        .await;
    page.expect(422);
    assert!(
        page.text().contains("may hold only letters"),
        "{}",
        page.text()
    );
    // Tryout 13 finding 5: both fields wrong, both in one answer.
    let message = app
        .call(
            support::Call::post("/api/networks")
                .bearer(&op.token)
                .json(&json!({"name": "bad name", "subnet": "10.0.0.0/40"})),
        )
        .await
        .expect_json_error(400);
    assert!(
        message.starts_with("name: ") && message.contains("; subnet: "),
        "{message}"
    );
    assert!(try_docker(&["network", "inspect", &name]).is_err());

    // Created by the form, attachable, with its subnet.
    app.call(support::Call::post("/networks").session(op).form(&[
        ("name", &name),
        ("subnet", &subnet),
        ("attachable", "on"),
    ]))
    .await
    .expect(303);
    let service = TestService::running(
        "netuser",
        &["--network", &name, "--stop-grace-period", "1s"],
        SLEEP,
    );
    service.wait_running(1);
    let list = app
        .call(support::Call::get("/api/networks").bearer(&v.token))
        .await;
    list.expect(200);
    let list = list.json();
    let listed = row(&list, &name).expect("the network is listed");
    assert_eq!(listed["driver"], "overlay");
    assert_eq!(listed["scope"], "swarm");
    assert_eq!(listed["attachable"], true);
    assert!(
        listed["subnets"][0].as_str().unwrap().starts_with(&subnet),
        "{listed}"
    );
    assert_eq!(listed["services"], json!([service.name]));
    assert!(listed["tasks"].as_u64().unwrap() >= 1, "{listed}");
    let ingress = list["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["ingress"] == true);
    if let Some(ingress) = ingress {
        let message = app
            .call(
                support::Call::delete(&format!(
                    "/api/networks/{}",
                    ingress["name"].as_str().unwrap()
                ))
                .bearer(&op.token),
            )
            .await
            .expect_json_error(409);
        assert!(message.contains("engine itself"), "{message}");
    }

    // In use: refused, naming the service.
    let message = app
        .call(support::Call::delete(&format!("/api/networks/{name}")).bearer(&op.token))
        .await
        .expect_json_error(409);
    assert!(message.contains(&service.name), "{message}");
    let service_name = service.name.clone();
    drop(service);
    wait_for("the service to be gone", Duration::from_secs(30), || {
        try_docker(&["service", "inspect", &service_name]).is_err()
    });
    // Its tasks detach shortly after the service goes.
    wait_for("the network to be unused", Duration::from_secs(60), || {
        try_docker(&[
            "network",
            "inspect",
            "--format",
            "{{len .Containers}}",
            &name,
        ])
        .is_ok_and(|n| n.trim() == "0")
    });
    let mut removed = false;
    for _ in 0..30 {
        let answer = app
            .call(support::Call::delete(&format!("/api/networks/{name}")).bearer(&op.token))
            .await;
        if answer.status.as_u16() == 204 {
            removed = true;
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(removed, "the unused network is removed");
    // The manager answers the removal before every node's copy is gone.
    let mut gone = false;
    for _ in 0..20 {
        if try_docker(&["network", "inspect", &name]).is_err() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(gone, "the network is gone from the engine");
    let audit = app.audit().await;
    assert_eq!(
        audit
            .iter()
            .filter(|e| e["action"] == "manage-networks" && e["target"] == name.as_str())
            .count(),
        2,
        "{audit:?}"
    );
}

/// A subnet that overlaps an existing network's is refused before anything is created (Swarm
/// would create the network and fail to allocate it, silently), naming that network.
#[tokio::test]
async fn an_overlapping_subnet_is_refused_naming_the_network_that_has_it() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let (first, second) = (unique("neta"), unique("netb"));
    let _made = (MadeNetwork(first.clone()), MadeNetwork(second.clone()));
    let subnet = format!(
        "10.{}.{}.0/24",
        200 + (std::process::id() + 7) % 50,
        (std::process::id() + 7) % 250
    );
    let create = |name: &str, subnet: &str| {
        support::Call::post("/api/networks")
            .bearer(&op.token)
            .json(&json!({"name": name, "subnet": subnet}))
    };
    app.call(create(&first, &subnet)).await.expect(201);
    // Its removal, as every removal, asks first.
    let list = app
        .call(support::Call::get("/networks").session(op))
        .await
        .text();
    assert!(
        list.contains(&format!("data-confirm=\"Remove network {first}?")),
        "{list}"
    );
    let narrower = subnet.replace(".0/24", ".128/25");
    for overlapping in [subnet.as_str(), narrower.as_str()] {
        let message = app
            .call(create(&second, overlapping))
            .await
            .expect_json_error(400);
        assert!(message.contains("subnet"), "{message}");
        assert!(message.contains(&first), "{message}");
        assert!(
            try_docker(&["network", "inspect", &second]).is_err(),
            "nothing created"
        );
    }
    let page = app
        .call(
            support::Call::post("/networks")
                .session(op)
                .form(&[("name", second.as_str()), ("subnet", subnet.as_str())]),
        )
        .await;
    page.expect(422);
    assert!(page.text().contains(&first), "{}", page.text());
}

/// A JSON body's key that no field takes (a typo) is refused by name, and nothing is created:
/// the engine would otherwise have picked a subnet other than the one meant.
#[tokio::test]
async fn an_unknown_field_is_refused_by_name_and_nothing_is_created() {
    let app = TestApp::new().await;
    let name = unique("nettypo");
    let _made = MadeNetwork(name.clone());
    let message = app
        .call(
            support::Call::post("/api/networks")
                .bearer(&app.operator.token)
                .json(&json!({"name": name, "subnett": "10.79.0.0/24"})),
        )
        .await
        .expect_json_error(400);
    assert!(message.contains("subnett: unknown field"), "{message}");
    assert!(
        try_docker(&["network", "inspect", &name]).is_err(),
        "nothing created"
    );
}

/// Tryout 14 findings 9 and 10: an encrypted overlay (`--opt encrypted`), shown as such; a
/// label without a key refused, as on secrets and configs.
#[tokio::test]
async fn an_encrypted_overlay_is_made_and_shown_and_a_keyless_label_refused() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let (name, keyless) = (unique("netenc"), unique("netlbl"));
    let _made = (MadeNetwork(name.clone()), MadeNetwork(keyless.clone()));
    app.call(
        support::Call::post("/api/networks")
            .bearer(&op.token)
            .json(&json!({"name": name, "encrypted": true})),
    )
    .await
    .expect(201);
    let options = support::docker(&["network", "inspect", "--format", "{{json .Options}}", &name]);
    assert!(options.contains("\"encrypted\""), "{options}");
    let list = app
        .call(support::Call::get("/api/networks").bearer(&op.token))
        .await
        .json();
    assert_eq!(row(&list, &name).unwrap()["encrypted"], true, "{list}");
    let message = app
        .call(
            support::Call::post("/api/networks")
                .bearer(&op.token)
                .json(&json!({"name": keyless, "labels": {"": "x"}})),
        )
        .await
        .expect_json_error(400);
    assert!(message.starts_with("labels: "), "{message}");
    assert!(try_docker(&["network", "inspect", &keyless]).is_err());
}
