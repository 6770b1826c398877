//! swarmkeeper's own secrets against the host's swarm: a secret its server or agent uses is
//! not rotated from the dashboard (409 saying why and where the procedure is, no rotate form
//! on its page), and a rotation whose services moved but whose move did not succeed never
//! removes the version they use and says what it applied.

mod support;

use serde_json::json;
use support::{create_secret, try_docker, unique, MadeSecrets, TestApp, TestService};

fn exists(name: &str) -> bool {
    try_docker(&["secret", "inspect", name]).is_ok()
}

/// The secret names a service's spec references, sorted (the engine keeps no order).
fn secret_names(service: &TestService) -> Vec<String> {
    let mut names: Vec<String> = service
        .spec()
        .pointer("/TaskTemplate/ContainerSpec/Secrets")
        .and_then(|s| s.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|r| r["SecretName"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn the_servers_seal_key_and_the_agents_report_secret_are_not_rotated_here() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let key = unique("skkey");
    let report = unique("skreport");
    let _made = MadeSecrets(vec![
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
    let mut both = [key.clone(), report.clone()];
    both.sort();
    assert_eq!(secret_names(&server), both);

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
    let _plain = MadeSecrets(vec![plain.clone()]);
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

/// Finding 8: the move was applied (the service runs the new version) but did not succeed —
/// here the server's shutdown interrupted it while it followed the service. The clean-up
/// leaves the new version the service uses (it used to try to remove it, and answered 502
/// with the engine's "in use"), keeps the old one (Swarm may still roll back to it), and the
/// answer says what was applied.
#[tokio::test(flavor = "multi_thread")]
async fn an_interrupted_rotation_keeps_both_versions_and_says_what_it_applied() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let name = unique("skint");
    let new_name = format!("{name}.v2");
    let _made = MadeSecrets(vec![name.clone(), new_name.clone()]);
    create_secret(&name, "old-value");
    // Followed for a minute after its update (the monitor window): time to interrupt it.
    let service = TestService::create(
        "skintsvc",
        &[
            "--secret",
            &format!("source={name},target=app_pw"),
            "--update-monitor",
            "60s",
            "--stop-grace-period",
            "1s",
        ],
    );
    service.wait_running(1);

    let watched = service.name.clone();
    let wanted = new_name.clone();
    let rotation = app.call(
        support::Call::post(&format!("/api/secrets/{name}/rotate"))
            .bearer(&op.token)
            .json(&json!({"data": "new-value"})),
    );
    let interrupt = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let (service, wanted) = (watched.clone(), wanted.clone());
            let moved = tokio::task::spawn_blocking(move || {
                try_docker(&[
                    "service",
                    "inspect",
                    "--format",
                    "{{json .Spec.TaskTemplate.ContainerSpec.Secrets}}",
                    &service,
                ])
                .is_ok_and(|secrets| secrets.contains(&format!("\"{wanted}\"")))
            })
            .await
            .unwrap();
            if moved {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the service moves within a minute"
            );
        }
        // As the server's SIGTERM does.
        assert!(
            app.state
                .deploys
                .stop_all("the server's shutdown", std::time::Duration::from_secs(30))
                .await
        );
    };
    let (answer, ()) = tokio::join!(rotation, interrupt);
    answer.expect(409);
    let rotated = answer.json();
    support::remove_history(&service.name);
    assert_eq!(rotated["succeeded"], false, "{rotated}");
    assert_eq!(rotated["groups"][0]["outcome"], "interrupted", "{rotated}");
    assert_eq!(rotated["moved"], json!([service.name]), "{rotated}");
    assert_eq!(rotated["still_on_old"], json!([]), "{rotated}");
    assert_eq!(rotated["removed_old"], false, "{rotated}");
    assert_eq!(rotated["removed_new"], false, "{rotated}");
    let summary = rotated["summary"].as_str().unwrap();
    assert!(
        summary.contains(&format!("{} moved to {new_name}", service.name)),
        "{summary}"
    );
    assert!(summary.contains(&format!("{name} is kept")), "{summary}");
    assert!(exists(&name), "the old version is kept");
    assert!(
        exists(&new_name),
        "the version the service uses is never removed"
    );
    assert_eq!(secret_names(&service), [new_name.as_str()]);
}
