//! Safe defaults on specs made from real compose files, and properties of the pure decisions.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Value};
use swarmkeeper_compose::spec::ServiceSpec;
use swarmkeeper_compose::{load, stack_spec, Environment, SourceFile};
use swarmkeeper_rollout::{
    apply_safe_defaults, assess, spec_matches, verdict, Follow, Monitor, ObservedService,
    ObservedTask, ServiceState, Verdict,
};
use swarmkeeper_swarm::{ServiceMode, TaskState, UpdateState};

fn spec(yaml: &str) -> ServiceSpec {
    let variables = HashMap::new();
    let read = |_: &str| Err(std::io::Error::other("no files"));
    let env = Environment {
        variables: &variables,
        working_dir: Path::new("/"),
        read_file: &read,
    };
    let stack = load(
        &[SourceFile {
            name: "s.yml",
            text: yaml,
        }],
        &env,
    )
    .unwrap();
    stack_spec("st", &stack)
        .unwrap()
        .services
        .into_values()
        .next()
        .unwrap()
}

#[test]
fn a_bare_service_gets_every_default_and_each_is_reported() {
    let mut s = spec("services:\n  web:\n    image: a:1\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 2s\n      timeout: 1s\n      retries: 2\n");
    let notes = apply_safe_defaults(&mut s);
    let update = s.update_config.as_ref().unwrap();
    assert_eq!(update.failure_action, "rollback");
    assert_eq!(update.order, "start-first");
    assert_eq!(update.monitor.as_nanos(), 5_000_000_000);
    assert_eq!(s.rollback_config.as_ref().unwrap().failure_action, "pause");
    let log = s.task_template.log_driver.as_ref().unwrap();
    assert_eq!(log.name, "local");
    assert_eq!(log.options["max-size"], "20m");
    let settings: Vec<&str> = notes.iter().map(|n| n.setting).collect();
    assert_eq!(
        settings,
        [
            "update_config.failure_action",
            "update_config.order",
            "update_config.monitor",
            "rollback_config.failure_action",
            "rollback_config.order",
            "rollback_config.monitor",
            "logging"
        ]
    );
    assert!(notes[0]
        .to_string()
        .starts_with("st_web: update_config.failure_action = rollback"));
}

/// tryout11 finding 4: start-first on a service with a volume runs the old and the new task
/// on one data directory during every update (a database corrupts).
#[test]
fn a_service_writing_to_a_volume_or_bind_mount_gets_stop_first_and_is_told_why() {
    for mount in [
        "      - data:/var/lib/db\n",
        "      - /srv/db:/var/lib/db\n",
        "      - type: volume\n        source: data\n        target: /var/lib/db\n",
    ] {
        let mut s = spec(&format!(
            "services:\n  db:\n    image: a:1\n    volumes:\n{mount}volumes:\n  data: {{}}\n"
        ));
        let notes = apply_safe_defaults(&mut s);
        assert_eq!(
            s.update_config.as_ref().unwrap().order,
            "stop-first",
            "{mount}"
        );
        assert_eq!(
            s.rollback_config.as_ref().unwrap().order,
            "stop-first",
            "{mount}"
        );
        let orders: Vec<String> = notes
            .iter()
            .filter(|n| n.setting.ends_with(".order"))
            .map(|n| n.to_string())
            .collect();
        assert_eq!(orders.len(), 2, "{mount}");
        for order in orders {
            assert!(
                order.contains("= stop-first (the service writes to a volume or bind mount"),
                "{order}"
            );
        }
    }
}

#[test]
fn a_read_only_or_anonymous_mount_keeps_start_first() {
    for mount in [
        "      - data:/etc/app:ro\n",
        "      - /srv/conf:/etc/app:ro\n",
        "      - type: volume\n        target: /cache\n",
        "      - type: tmpfs\n        target: /tmp\n",
    ] {
        let mut s = spec(&format!(
            "services:\n  web:\n    image: a:1\n    volumes:\n{mount}volumes:\n  data: {{}}\n"
        ));
        apply_safe_defaults(&mut s);
        assert_eq!(
            s.update_config.as_ref().unwrap().order,
            "start-first",
            "{mount}"
        );
        assert_eq!(
            s.rollback_config.as_ref().unwrap().order,
            "start-first",
            "{mount}"
        );
    }
}

#[test]
fn what_the_file_says_wins() {
    let mut s = spec(
        "services:\n  web:\n    image: a:1\n    logging:\n      driver: json-file\n    deploy:\n      update_config:\n        failure_action: pause\n        order: stop-first\n        monitor: 7s\n",
    );
    let notes = apply_safe_defaults(&mut s);
    let update = s.update_config.as_ref().unwrap();
    assert_eq!(update.failure_action, "pause");
    assert_eq!(update.order, "stop-first");
    assert_eq!(update.monitor.as_nanos(), 7_000_000_000);
    assert_eq!(
        s.task_template.log_driver.as_ref().unwrap().name,
        "json-file"
    );
    assert!(
        notes
            .iter()
            .all(|n| n.setting.starts_with("rollback_config")),
        "{notes:?}"
    );
}

#[test]
fn host_mode_ports_and_global_services_keep_stop_first() {
    let mut s = spec("services:\n  web:\n    image: a:1\n    ports:\n      - target: 80\n        published: 8080\n        mode: host\n");
    apply_safe_defaults(&mut s);
    assert_eq!(s.update_config.unwrap().order, "");
    let mut g = spec("services:\n  agent:\n    image: a:1\n    deploy:\n      mode: global\n");
    apply_safe_defaults(&mut g);
    assert_eq!(g.update_config.unwrap().order, "");
}

fn arb_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0u32..5).prop_map(|n| json!(n)),
        "[a-c]{0,2}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
            prop::collection::btree_map("[A-D]", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn arb_task() -> impl Strategy<Value = ObservedTask> {
    (
        prop_oneof![Just("running"), Just("shutdown")],
        prop_oneof![
            Just("pending"),
            Just("running"),
            Just("failed"),
            Just("complete")
        ],
        any::<bool>(),
    )
        .prop_map(|(desired, state, current)| ObservedTask {
            id: "t".into(),
            slot: Some(1),
            desired_state: desired.into(),
            state: state.into(),
            err: String::new(),
            message: "m".into(),
            timestamp: None,
            created_at: None,
            exit_code: None,
            current,
            oom_killed: false,
            oom_unknown: false,
            memory_limit_bytes: None,
        })
}

proptest! {
    #[test]
    fn specs_match_themselves(v in arb_value()) {
        prop_assert!(spec_matches(&v, &v));
    }

    #[test]
    fn matching_is_symmetric(a in arb_value(), b in arb_value()) {
        prop_assert_eq!(spec_matches(&a, &b), spec_matches(&b, &a));
    }

    #[test]
    fn safe_defaults_are_idempotent(replicated in any::<bool>(), health in any::<bool>()) {
        let mode = if replicated { "" } else { "    deploy:\n      mode: global\n" };
        let hc = if health { "    healthcheck:\n      test: [\"CMD\", \"true\"]\n" } else { "" };
        let mut s = spec(&format!("services:\n  web:\n    image: a:1\n{mode}{hc}"));
        apply_safe_defaults(&mut s);
        let once = s.clone();
        prop_assert!(apply_safe_defaults(&mut s).is_empty());
        prop_assert_eq!(s, once);
    }

    #[test]
    fn assessment_is_consistent(
        tasks in prop::collection::vec(arb_task(), 0..6),
        update in prop::option::of(prop_oneof![
            Just("updating"), Just("paused"), Just("completed"), Just("rollback_started"),
            Just("rollback_paused"), Just("rollback_completed")]),
        elapsed in 0u64..120,
    ) {
        let observed = ObservedService {
            update: update.map(UpdateState::parse),
            update_message: String::new(),
            update_started_at: None,
            mode: ServiceMode::Replicated { replicas: 1 },
            tasks,
        };
        let follow = Follow { elapsed: Duration::from_secs(elapsed), timeout: Duration::from_secs(60), max_failed_tasks: 3, monitor: None };
        let state = assess(&observed, &follow);
        // Past the timeout nothing is still in progress; a failure always fails the deploy.
        if elapsed >= 60 {
            prop_assert!(state.is_final());
        }
        if state.is_failure() {
            prop_assert_eq!(verdict([&state]), Verdict::Failed);
            prop_assert!(state.why().is_some());
        }
        if state == ServiceState::Converged {
            prop_assert_eq!(verdict([&state]), Verdict::Succeeded);
        }
    }

    #[test]
    fn a_created_service_converges_only_with_every_task_past_the_window(
        tasks in prop::collection::vec((arb_task(), 0i64..10), 0..6),
        now in 0i64..20,
    ) {
        let base = jiff::Timestamp::from_second(1_700_000_000).unwrap();
        let tasks: Vec<ObservedTask> = tasks
            .into_iter()
            .map(|(mut t, ran)| {
                t.timestamp = Some(base + jiff::SignedDuration::from_secs(ran));
                t
            })
            .collect();
        let observed = ObservedService {
            update: None,
            update_message: String::new(),
            update_started_at: None,
            mode: ServiceMode::Replicated { replicas: 1 },
            tasks,
        };
        let now_ts = base + jiff::SignedDuration::from_secs(now);
        let follow = Follow {
            elapsed: Duration::from_secs(1),
            timeout: Duration::from_secs(60),
            max_failed_tasks: 3,
            // The manager made the service at `base`; the deploy looks `now` s after.
            monitor: Some(Monitor {
                window: Duration::from_secs(5),
                changed_at: Some(base),
                since_change: Duration::from_secs(now as u64),
            }),
        };
        let state = assess(&observed, &follow);
        let ended = observed.tasks.iter().any(|t| {
            t.current && (t.state.is_failed() || t.state == TaskState::Complete)
        });
        // Any task of the new spec that ended fails the create; converged means every task
        // Swarm wants has run the whole window.
        prop_assert_eq!(ended, state.is_failure());
        if state == ServiceState::Converged {
            let window = jiff::SignedDuration::from_secs(5);
            let held = observed
                .tasks
                .iter()
                .filter(|t| t.current && t.desired_state == TaskState::Running)
                .all(|t| t.timestamp.unwrap() + window <= now_ts);
            prop_assert!(held);
        }
    }
}
