//! "Edit as compose" applies every key the text writes that a stack deploy applies, not only
//! the form's (tryout finding 14, issue 14): a healthcheck, `read_only`, `stop_grace_period`
//! and an existing overlay network added to the text are in the running spec after the edit,
//! and the lint findings of the answer are those of that spec (no "no healthcheck"); the text
//! shown again holds them and changes nothing. A network the text names that the swarm does
//! not have is refused at its line and column with nothing applied, as `swarmkeeper deploy`
//! refuses a missing external network. What `docker service create` set that the form does
//! not hold (`--user`, `--cap-add`, `--dns-search`, `--init`) is shown, kept, and removed
//! when deleted from the text.
// test lane: waiting (a rolling update followed until its task is healthy)

mod support;

use std::time::Duration;

use support::{
    create_secret, docker, service_version, textarea_of, try_docker, unique, Call, HistoryOf,
    MadeSecrets, TestApp, TestService, SLEEP,
};

#[tokio::test]
async fn edit_as_compose_applies_the_keys_a_stack_deploy_applies() {
    let app = TestApp::new().await;
    let op = &app.operator;
    // Declared first, dropped last: after the service that uses it is gone.
    let network = Network::overlay(&unique("composekeysnet"));
    let service = TestService::running(
        "composekeys",
        &[
            "--update-monitor",
            "1s",
            "--update-failure-action",
            "rollback",
            // Settings `docker service create` gives that the form does not hold: the text
            // shows them (tryout 12), so they can be seen, kept and deleted.
            "--user",
            "1000",
            "--cap-add",
            "NET_ADMIN",
            "--dns-search",
            "lan",
            "--init",
        ],
        SLEEP,
    );
    let name = service.name.clone();
    let _history = HistoryOf(name.clone());
    service.wait_running(1);
    let text = app.service_compose(&name, op).await;
    let head = format!("  \"{name}\":\n");
    assert!(text.contains(&head), "{text}");
    for line in [
        "    user: \"1000\"\n",
        "    init: true\n",
        "    cap_add: [\"CAP_NET_ADMIN\"]\n",
        "    dns_search: [\"lan\"]\n",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let with = |keys: &str, networks: &str| {
        format!(
            "{}networks:\n{networks}",
            text.replace(&head, &format!("{head}{keys}"))
        )
    };

    // A network the swarm does not have: refused where the service names it, nothing applied.
    let missing = format!("{}_missing", network.0);
    let refused_text = with(
        "    read_only: true\n    networks:\n      - \"gone\"\n",
        &format!("  gone:\n    external: true\n    name: \"{missing}\"\n"),
    );
    let line = refused_text
        .lines()
        .position(|l| l == "      - \"gone\"")
        .unwrap()
        + 1;
    let before = service_version(&name);
    let message = app
        .post_compose(&name, op, &refused_text)
        .await
        .expect_json_error(400);
    assert!(
        message.contains(&format!("{name}.yml:{line}:"))
            && message.contains(&format!(
                "network {missing} is declared external but does not exist"
            )),
        "{message}"
    );
    assert_eq!(service_version(&name), before, "nothing applied");

    // Keys the form does not hold: applied, listed as changes, linted as they will run.
    let edited_text = with(
        "    read_only: true\n    stop_grace_period: 3s\n    healthcheck:\n      \
         test: [\"CMD\", \"/bin/busybox\", \"true\"]\n      interval: 1s\n    \
         networks:\n      - \"other\"\n",
        &format!(
            "  other:\n    external: true\n    name: \"{}\"\n",
            network.0
        ),
    );
    let answer = app.post_compose(&name, op, &edited_text).await;
    answer.expect(200);
    let edited = answer.json();
    assert_eq!(edited["action"], "edited as compose", "{edited}");
    let changes = edited["changes"].to_string();
    for field in ["Healthcheck", "ReadOnly", "StopGracePeriod", "Networks"] {
        assert!(changes.contains(field), "{field}: {edited}");
    }
    let findings = edited["findings"].to_string();
    assert!(!findings.contains("SK012"), "{edited}");
    let spec = service.spec();
    let container = &spec["TaskTemplate"]["ContainerSpec"];
    assert_eq!(
        container["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "/bin/busybox", "true"]),
        "{spec}"
    );
    assert_eq!(container["ReadOnly"], true, "{spec}");
    assert_eq!(container["StopGracePeriod"], 3_000_000_000u64, "{spec}");
    let network_id = docker(&["network", "inspect", "--format", "{{.Id}}", &network.0]);
    assert_eq!(
        spec["TaskTemplate"]["Networks"][0]["Target"],
        network_id.trim(),
        "{spec}"
    );

    // Shown again with the keys the text can show, it reads back to no change.
    let shown = app.service_compose(&name, op).await;
    assert!(
        shown.contains("    read_only: true\n") && shown.contains("    healthcheck:\n"),
        "{shown}"
    );
    let again = app.post_compose(&name, op, &shown).await;
    again.expect(200);
    assert_eq!(
        again.json()["changes"],
        serde_json::json!([]),
        "{}",
        again.json()
    );

    // A shown key deleted: removed from the service, the others kept.
    let without_user: String = shown
        .lines()
        .filter(|l| !l.starts_with("    user:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let answer = app.post_compose(&name, op, &without_user).await;
    answer.expect(200);
    let changes = answer.json()["changes"].to_string();
    assert!(changes.contains("User"), "{changes}");
    let container = service.spec()["TaskTemplate"]["ContainerSpec"].clone();
    assert_eq!(container.get("User"), None, "{container}");
    assert_eq!(
        container["CapabilityAdd"],
        serde_json::json!(["CAP_NET_ADMIN"])
    );
    assert_eq!(container["Init"], true, "{container}");
}

/// An attachable overlay network of the test, removed when dropped once no task uses it.
struct Network(String);

impl Network {
    fn overlay(name: &str) -> Network {
        docker(&[
            "network",
            "create",
            "--driver",
            "overlay",
            "--attachable",
            name,
        ]);
        Network(name.to_owned())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Never panics: a drop may run while an assert's panic unwinds. The service's tasks
        // leave the network a little after the service is removed.
        let start = std::time::Instant::now();
        while try_docker(&["network", "rm", &self.0]).is_err()
            && try_docker(&["network", "inspect", &self.0]).is_ok()
            && start.elapsed() < Duration::from_secs(30)
        {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// Tryout 13 finding 8: a secret's owner and mode (`uid=1000,gid=1000,mode=0400`) are shown
/// by the form and the compose text, so saving either as shown changes nothing, and an
/// environment change applied from the form keeps them (before: root and 0444, the file made
/// readable by every user of the container).
#[tokio::test]
async fn a_secrets_owner_and_mode_survive_edits() {
    let app = TestApp::new().await;
    let op = &app.operator;
    let secret = unique("ownedsecret");
    // Declared first, dropped last: after the service that uses it is gone.
    let _made = MadeSecrets(vec![secret.clone()]);
    create_secret(&secret, "key material");
    let service = TestService::running(
        "ownedsecret",
        &[
            "--secret",
            &format!("source={secret},target=s.key,uid=1000,gid=1000,mode=0400"),
            "--update-monitor",
            "1s",
        ],
        SLEEP,
    );
    let name = service.name.clone();
    let _history = HistoryOf(name.clone());
    service.wait_running(1);
    let file = || service.spec()["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["File"].clone();
    let owned = serde_json::json!({"Name": "s.key", "UID": "1000", "GID": "1000", "Mode": 0o400});
    assert_eq!(file(), owned);

    let page = app
        .call(Call::get(&format!("/services/{name}/edit")).session(op))
        .await;
    page.expect(200);
    let secrets = textarea_of(&page.text(), "secrets");
    assert_eq!(
        secrets,
        format!("{secret}:s.key,uid=1000,gid=1000,mode=0400")
    );
    let text = app.service_compose(&name, op).await;
    assert!(text.contains("        mode: 0400\n"), "{text}");
    let answer = app.post_compose(&name, op, &text).await;
    answer.expect(200);
    assert_eq!(
        answer.json()["changes"],
        serde_json::json!([]),
        "{}",
        answer.json()
    );

    let answer = app
        .call(
            Call::put(&format!("/api/services/{name}"))
                .bearer(&op.token)
                .json(&serde_json::json!({ "env": "X=1" })),
        )
        .await;
    answer.expect(200);
    let changes = answer.json()["changes"].to_string();
    assert!(!changes.contains("Secrets"), "{changes}");
    assert_eq!(file(), owned);
}
