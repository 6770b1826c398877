//! The field cases operators reported (inputs under `fixtures/`), each with the value the
//! docker CLI gives, and the same kind of fault beyond the sample.

mod support;

use serde_json::json;
use support::{load_files, service_specs as specs};
use swarmkeeper_compose::stack_spec;

const DOLLARS: &str = include_str!("fixtures/compose-default-with-dollars/stack.yml");
const HASH: &str = "$2y$05$Qm9vZ2xlRm9vQmFyQmF6Lu/K1Ab2Cd3Ef4Gh5Ij6Kl7Mn8Op9Qr0St";

#[test]
fn a_default_keeps_its_dollar_signs() {
    let stack = load_files(&[("stack.yml", DOLLARS)], &[]).unwrap();
    let label = &specs(&stack)["web"]["Labels"]["proxy.auth.users"];
    assert_eq!(label, &json!(format!("admin:{HASH}")));

    // A set variable wins over the default; the default's `$` never reaches the lookup.
    let stack = load_files(
        &[("stack.yml", DOLLARS)],
        &[("WEB_USER", "ops"), ("Qm9vZ2xlRm9vQmFyQmF6Lu", "leak")],
    )
    .unwrap();
    let label = &specs(&stack)["web"]["Labels"]["proxy.auth.users"];
    assert_eq!(label, &json!(format!("ops:{HASH}")));
}

#[test]
fn defaults_are_not_unescaped_or_expanded_again() {
    let text = "services:\n  web:\n    image: a:1\n    environment:\n      ESCAPED: ${A:-x$$y}\n      NESTED: ${B:-${C:-z}}\n      PLAIN: $$HOME\n      HARD: ${EMPTY-unused}\n";
    let stack = load_files(&[("stack.yml", text)], &[("C", "c"), ("EMPTY", "")]).unwrap();
    let env = &specs(&stack)["web"]["TaskTemplate"]["ContainerSpec"]["Env"];
    assert_eq!(
        env,
        &json!(["ESCAPED=x$$y", "HARD=", "NESTED=${C:-z}", "PLAIN=$HOME"])
    );
}

#[test]
fn syntax_the_docker_cli_refuses_is_refused_where_it_is_written() {
    for (value, fragment) in [
        ("${A:+alt}", "${A:+alt}"),
        ("${ A}", "${ A}"),
        ("cost: 5$", "$"),
        ("$1", "$1"),
        ("${A:-unclosed", "${A:-unclosed"),
    ] {
        let text = format!("services:\n  web:\n    image: a:1\n    labels:\n      x: '{value}'\n");
        let err = load_files(&[("stack.yml", &text)], &[]).unwrap_err();
        assert_eq!((err.line, err.column), (5, 10), "{value}");
        assert!(
            err.message
                .starts_with(&format!("invalid interpolation {fragment:?}")),
            "{value}: {}",
            err.message
        );
    }
}

const TMPFS_OOM: &str = include_str!("fixtures/compose-docker-keys/tmpfs-oom.yml");
const MORE_KEYS: &str = include_str!("fixtures/compose-docker-keys/more-keys.yml");

#[test]
fn tmpfs_is_accepted_and_noted_and_oom_score_adj_is_converted() {
    let stack = load_files(&[("tmpfs-oom.yml", TMPFS_OOM)], &[]).unwrap();
    let app = &stack.services["app"];
    let ignored: Vec<&str> = app.ignored.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(ignored, ["tmpfs"]);
    assert_eq!((app.ignored[0].at.line, app.ignored[0].at.column), (6, 7));
    assert!(app.ignored[0].reason.contains("type: tmpfs"));
    let spec = specs(&stack);
    assert_eq!(
        spec["app"]["TaskTemplate"]["ContainerSpec"]["OomScoreAdj"],
        -500
    );
    assert!(spec["app"]["TaskTemplate"]["ContainerSpec"]["Mounts"].is_null());
}

#[test]
fn credential_spec_is_converted_and_cgroupns_mode_noted() {
    let stack = load_files(&[("more-keys.yml", MORE_KEYS)], &[]).unwrap();
    assert_eq!(
        stack.configs["gmsa"].file.as_deref(),
        Some("/srv/app/credspec.json")
    );
    let ignored: Vec<&str> = stack.services["linux"]
        .ignored
        .iter()
        .map(|i| i.key.as_str())
        .collect();
    assert_eq!(ignored, ["cgroupns_mode"]);
    let mut spec = stack_spec("demo", &stack).unwrap();
    let win = &mut spec
        .services
        .get_mut("win")
        .unwrap()
        .task_template
        .container_spec;
    let body = serde_json::to_value(&*win).unwrap();
    assert_eq!(
        body["Privileges"],
        json!({"CredentialSpec": {"Config": "demo_gmsa"}})
    );
    assert_eq!(
        body["Configs"],
        json!([
            {"File": {"Name": "gmsa", "UID": "0", "GID": "0", "Mode": 0o444}, "ConfigID": "", "ConfigName": "demo_gmsa"},
            {"Runtime": {}, "ConfigID": "", "ConfigName": "demo_gmsa"}
        ])
    );
    // The deployer fills in config ids; the credential spec then names the id.
    for config in &mut win.configs {
        config.config_id = "id-of-gmsa".to_string();
    }
    win.link_credential_spec();
    let body = serde_json::to_value(&*win).unwrap();
    assert_eq!(body["Privileges"]["CredentialSpec"]["Config"], "id-of-gmsa");
}

#[test]
fn a_credential_spec_is_one_thing_and_names_a_defined_config() {
    let text = "configs:\n  c: {file: ./c.json}\nservices:\n  win:\n    image: a:1\n    credential_spec: {config: c, file: x.json}\n";
    let err = load_files(&[("s.yml", text)], &[]).unwrap_err();
    assert_eq!((err.line, err.column), (6, 22));
    assert!(
        err.message.contains("not config and file"),
        "{}",
        err.message
    );
    let text = "services:\n  win:\n    image: a:1\n    credential_spec: {config: missing}\n";
    let err = load_files(&[("s.yml", text)], &[]).unwrap_err();
    assert!(err.message.contains("config `missing`"), "{}", err.message);
}

const DUPLICATES: &str = include_str!("fixtures/compose-duplicate-keys/stack.yml");

#[test]
fn two_merge_keys_in_one_mapping_are_refused() {
    let err = load_files(&[("stack.yml", DUPLICATES)], &[]).unwrap_err();
    assert_eq!((err.line, err.column), (10, 7));
    assert_eq!(
        err.message,
        "two `<<` merge keys in one mapping (the first at line 9, column 7): merge several mappings with one list, `<<: [*a, *b]`"
    );
}

#[test]
fn a_key_written_twice_names_both_places_in_words_for_users() {
    let one_merge = DUPLICATES.replace("      <<: *a\n      <<: *b\n", "      <<: [*a, *b]\n");
    let err = load_files(&[("stack.yml", &one_merge)], &[]).unwrap_err();
    assert_eq!((err.line, err.column), (10, 5));
    assert_eq!(
        err.message,
        "`deploy` is written twice in this mapping (first at line 8, column 5): keep one"
    );
    assert!(!err.to_string().contains("DuplicateKeyPolicy"));
    assert!(err.to_string().starts_with("stack.yml:10:5: "));

    // With one of each, the merge reads both anchors, the mapping's own keys first.
    let fixed = one_merge.replace("    deploy:\n      replicas: 2\n", "");
    let stack = load_files(&[("stack.yml", &fixed)], &[]).unwrap();
    let spec = specs(&stack);
    assert_eq!(
        spec["app"]["TaskTemplate"]["RestartPolicy"]["Condition"],
        "on-failure"
    );
    assert_eq!(spec["app"]["UpdateConfig"]["FailureAction"], "rollback");
}

const BASE: &str = include_str!("fixtures/compose-override-ports/base.yml");
const OVERRIDE: &str = include_str!("fixtures/compose-override-ports/override.yml");

#[test]
fn an_override_replaces_the_port_it_publishes_again() {
    let stack = load_files(&[("base.yml", BASE), ("override.yml", OVERRIDE)], &[]).unwrap();
    let spec = specs(&stack);
    assert_eq!(
        spec["web"]["EndpointSpec"]["Ports"],
        json!([{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}])
    );
    assert_eq!(
        spec["web"]["TaskTemplate"]["ContainerSpec"]["Mounts"],
        json!([{"Type": "bind", "Source": "/srv/app/prod_logs", "Target": "/app_logs"}])
    );
    // The port written later in the override is where lint and errors point.
    let port = &stack.services["web"].ports.as_ref().unwrap().0[0];
    assert_eq!((port.at.file, port.at.line), (1, 6));
}

#[test]
fn ports_merge_by_published_port_and_keep_other_protocols() {
    let base = "services:\n  dns:\n    image: dns:1\n    ports: [\"53:53/udp\", \"53:53/tcp\", \"8080:80\", \"9000\"]\n";
    let later = "services:\n  dns:\n    ports:\n      - {target: 8081, published: 8080}\n      - \"9000\"\n";
    let stack = load_files(&[("a.yml", base), ("b.yml", later)], &[]).unwrap();
    let ports: Vec<(u64, u64, String)> = specs(&stack)["dns"]["EndpointSpec"]["Ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["PublishedPort"].as_u64().unwrap_or(0),
                p["TargetPort"].as_u64().unwrap(),
                p["Protocol"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    assert_eq!(
        ports,
        [
            (0, 9000, "tcp".to_string()),
            (53, 53, "tcp".to_string()),
            (53, 53, "udp".to_string()),
            (8080, 8081, "tcp".to_string()),
        ]
    );
}

const TAKEOVER: &str = include_str!("fixtures/compose-takeover-noop/stack.yml");

#[test]
fn specs_are_written_as_the_docker_cli_writes_them() {
    let stack = load_files(&[("stack.yml", TAKEOVER)], &[]).unwrap();
    let spec = specs(&stack);
    let web = &spec["web"];
    assert_eq!(
        web["TaskTemplate"]["ContainerSpec"]["Image"],
        "example/web:latest"
    );
    assert_eq!(web["Labels"]["com.docker.stack.image"], "example/web");
    assert_eq!(
        web["TaskTemplate"]["ContainerSpec"]["Mounts"][0]["Source"],
        "/var/lib/example/"
    );
    let published: Vec<u64> = web["EndpointSpec"]["Ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["PublishedPort"].as_u64().unwrap())
        .collect();
    assert_eq!(published, [80, 9000]);
    assert_eq!(
        spec["worker"]["TaskTemplate"]["ContainerSpec"]["Image"],
        "example/worker:latest"
    );
}

const VALUES: &str = include_str!("fixtures/compose-value-messages/stack.yml");

#[test]
fn the_defaults_load_and_ports_come_out_sorted() {
    let stack = load_files(&[("stack.yml", VALUES)], &[]).unwrap();
    let spec = specs(&stack);
    assert_eq!(spec["nc"]["Mode"]["Replicated"]["Replicas"], 1);
    assert_eq!(spec["nc"]["TaskTemplate"]["Placement"]["MaxReplicas"], 1);
    assert_eq!(
        spec["nc"]["TaskTemplate"]["ContainerSpec"]["Healthcheck"]["Retries"],
        3
    );
    let stack = load_files(&[("stack.yml", VALUES)], &[("NC_PORT", "9100")]).unwrap();
    let published: Vec<u64> = specs(&stack)["nc"]["EndpointSpec"]["Ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["PublishedPort"].as_u64().unwrap())
        .collect();
    assert_eq!(published, [9000, 9100]);
}

#[test]
fn a_bad_value_from_a_variable_is_named_with_what_was_expected() {
    let cases = [
        (
            ("NC_REPLICAS", "abc"),
            (11, 17),
            "invalid replicas \"abc\": expected a whole number (from `${NC_REPLICAS:-1}`)",
        ),
        (
            ("ADMIN_PORT", "70000"),
            (9, 20),
            "invalid published port \"70000\": expected a number from 0 to 65535 (from `${ADMIN_PORT:-9000}`)",
        ),
        (
            ("NC_PORT", "80x"),
            (7, 9),
            "invalid port \"80x:1789\": published port \"80x\" is not a number (from `${NC_PORT:-80}:1789`)",
        ),
        (
            ("PARALLELISM", "-1"),
            (15, 22),
            "invalid parallelism \"-1\": expected a whole number, 0 or more (from `${PARALLELISM:-1}`)",
        ),
        (
            ("HC_RETRIES", "1.5"),
            (25, 16),
            "invalid retries \"1.5\": expected a whole number (from `${HC_RETRIES:-3}`)",
        ),
    ];
    for ((variable, value), place, message) in cases {
        let err = load_files(&[("stack.yml", VALUES)], &[(variable, value)]).unwrap_err();
        assert_eq!(err.message, message, "{variable}={value}");
        assert_eq!((err.line, err.column), place, "{variable}={value}");
        assert!(!err.message.contains("u64"), "{}", err.message);
    }
}

#[test]
fn a_written_value_is_named_too() {
    let text = "services:\n  web:\n    image: a:1\n    deploy:\n      replicas: \"abc\"\n      placement: {max_replicas_per_node: -2}\n";
    let err = load_files(&[("stack.yml", text)], &[]).unwrap_err();
    assert_eq!(
        err.message,
        "invalid replicas \"abc\": expected a whole number"
    );
    let text = "services:\n  web:\n    image: a:1\n    ports: [{target: 70000}]\n";
    let err = load_files(&[("stack.yml", text)], &[]).unwrap_err();
    assert_eq!(
        err.message,
        "invalid target port 70000: expected a number from 0 to 65535"
    );
    assert_eq!((err.line, err.column), (4, 22));
}
