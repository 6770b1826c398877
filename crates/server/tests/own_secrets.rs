//! swarmkeeper's own secrets against the host's swarm: a secret its server or agent uses is
//! not rotated from the dashboard (409 saying why and where the procedure is, no rotate form
//! on its page), and a rotation whose services moved but whose move did not succeed never
//! removes the version they use and says what it applied.

mod support;

use serde_json::json;
use support::{try_docker, unique, TestApp, TestService};

/// Secrets a test made, removed when it ends, passed or not.
struct Made(Vec<String>);

impl Drop for Made {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = try_docker(&["secret", "rm", name]);
        }
    }
}

fn exists(name: &str) -> bool {
    try_docker(&["secret", "inspect", name]).is_ok()
}

fn create_secret(name: &str, value: &str) {
    let file = std::env::temp_dir().join(format!("{name}.value"));
    std::fs::write(&file, value).unwrap();
    let made = try_docker(&["secret", "create", name, file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    made.unwrap();
}

/// The secret names a service's spec references.
fn secret_names(service: &TestService) -> Vec<String> {
    service
        .spec()
        .pointer("/TaskTemplate/ContainerSpec/Secrets")
        .and_then(|s| s.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|r| r["SecretName"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_servers_seal_key_and_the_agents_report_secret_are_not_rotated_here() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let key = unique("skkey");
    let report = unique("skreport");
    let _made = Made(vec![
        key.clone(),
        format!("{key}.v2"),
        report.clone(),
        format!("{report}.v2"),
    ]);
    create_secret(&key, "0123456789abcdef0123456789abcdef");
    create_secret(&report, "fedcba9876543210fedcba9876543210");
    // As deploy/swarmkeeper.yml runs them: the server reads its seal key and the report
    // secret, the agent the report secret.
    let server = TestService::create(
        "skserver",
        &[
            "--label",
            "swarmkeeper.server=true",
            "--secret",
            &format!("source={key},target=swarmkeeper_secret_key"),
            "--secret",
            &format!("source={report},target=swarmkeeper_report_secret"),
        ],
    );
    let agent = TestService::create(
        "skagent",
        &[
            "--label",
            "swarmkeeper.agent=true",
            "--secret",
            &format!("source={report},target=swarmkeeper_report_secret"),
        ],
    );

    let refusal = app
        .call(
            support::Call::post(&format!("/api/secrets/{key}/rotate"))
                .bearer(&op.token)
                .json(&json!({"data": "ffffffffffffffffffffffffffffffff"})),
        )
        .await
        .expect_json_error(409);
    assert!(refusal.contains(&server.name), "{refusal}");
    assert!(refusal.contains("restarts this dashboard"), "{refusal}");
    assert!(
        refusal.contains("a new value cannot open them"),
        "{refusal}"
    );
    assert!(
        refusal.contains("Rotating swarmkeeper's own secrets"),
        "{refusal}"
    );
    assert!(!exists(&format!("{key}.v2")), "nothing was created");
    assert_eq!(secret_names(&server), [key.as_str(), report.as_str()]);

    let refusal = app
        .call(
            support::Call::post(&format!("/api/secrets/{report}/rotate"))
                .bearer(&op.token)
                .json(&json!({"data": "ffffffffffffffffffffffffffffffff"})),
        )
        .await
        .expect_json_error(409);
    assert!(refusal.contains(&agent.name), "{refusal}");
    assert!(refusal.contains("paused or drained nodes"), "{refusal}");
    assert!(!refusal.contains("cannot open"), "{refusal}");
    assert!(!exists(&format!("{report}.v2")));
    assert_eq!(secret_names(&agent), [report.as_str()]);

    // The page offers no rotate form, and says why instead; the JSON twin says it too.
    let page = app
        .call(support::Call::get(&format!("/secrets/{key}")).session(op))
        .await;
    page.expect(200);
    let html = page.text();
    assert!(!html.contains("Rotate</button>"), "{html}");
    assert!(html.contains("id=\"own-secret\""), "{html}");
    assert!(html.contains("a new value cannot open them"), "{html}");
    let one = app
        .call(support::Call::get(&format!("/api/secrets/{report}")).bearer(&op.token))
        .await;
    one.expect(200);
    let why = one.json()["not_rotatable"].as_str().unwrap().to_owned();
    assert!(why.contains("paused or drained nodes"), "{why}");

    // An operator's secret still offers the form.
    let plain = unique("skplain");
    let _plain = Made(vec![plain.clone()]);
    create_secret(&plain, "x");
    let page = app
        .call(support::Call::get(&format!("/secrets/{plain}")).session(op))
        .await;
    page.expect(200);
    assert!(page.text().contains("Rotate</button>"));
    assert!(!page.text().contains("id=\"own-secret\""));
    drop(agent);
    drop(server);
}
