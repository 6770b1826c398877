//! `swarmkeeper rollback` runs the deploy's placement preflight on the revision it re-applies
//! (tryout 8, finding 9): a revision no ready, active node can run is refused before anything
//! changes, naming the service and the reason, exit 2 as a deploy's preflight exits, with
//! nothing applied and nothing recorded. So is a revision that publishes a port another
//! service took since, and one that cannot be a rollback's target (issue 14). Against the real
//! single-node swarm; the stacks, services and node label are the test's own and removed when
//! it ends.

mod support;

use std::process::Command;

use support::deploy::{images, service, text, Stack, HOST};
use support::docker;

/// A label on the host's node, removed when dropped (passed or not).
struct NodeLabel {
    node: String,
    key: String,
}

impl Drop for NodeLabel {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["node", "update", "--label-rm", &self.key, &self.node])
            .output();
    }
}

#[test]
fn a_rollback_to_a_revision_no_node_can_run_is_refused_with_exit_2() {
    let (ok, _) = images();
    let stack = Stack::new("rbplace");
    let node = docker(HOST, &["info", "--format", "{{.Swarm.NodeID}}"])
        .trim()
        .to_owned();
    let key = format!("{}-place", stack.name);
    docker(
        HOST,
        &[
            "node",
            "update",
            "--label-add",
            &format!("{key}=yes"),
            &node,
        ],
    );
    let label = NodeLabel { node, key };
    // Revision 1 is placed by the label; revision 2 needs none. Then the node loses the label,
    // as a node that is paused or drained stops taking tasks.
    let placed = format!(
        "      placement:\n        constraints: [\"node.labels.{} == yes\"]\n",
        label.key
    );
    stack.deploy_services("v1.yml", &[service("web", ok, 1, &placed)]);
    stack.deploy_services("v2.yml", &[service("web", ok, 2, "")]);
    let key = label.key.clone();
    drop(label);

    let version = stack.version("web");
    let revisions = stack.history()["revisions"].as_array().unwrap().len();
    for args in [vec!["--to", "1"], vec![]] {
        let mut command = vec!["rollback", stack.name.as_str()];
        command.extend(args.iter().copied());
        let out = stack.run(&command);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "revision 1 of {} cannot be rolled back to",
                stack.name
            )) && stderr.contains(&format!("service {}_web cannot be placed", stack.name))
                && stderr.contains(&key),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert_eq!(stack.version("web"), version, "nothing was applied");
    assert!(stack.runs_rev("web", 2));
    assert_eq!(
        stack.history()["revisions"].as_array().unwrap().len(),
        revisions,
        "nothing was recorded"
    );
}

/// A service outside the stack, removed when dropped (passed or not).
struct OtherService(String);

impl Drop for OtherService {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["service", "rm", &self.0])
            .output();
    }
}

/// Revision 1 published a port that a service outside the stack took after revision 2 gave it
/// up: the engine would refuse the rollback's update half-way, after the revision was recorded.
/// It is refused first, by number and by default, naming the port and the service that has
/// it, exit 2, nothing applied and nothing recorded.
#[test]
fn a_rollback_to_a_revision_whose_port_another_service_took_is_refused_with_exit_2() {
    let (ok, _) = images();
    let stack = Stack::new("rbport");
    let port = 20_001 + (std::process::id() % 9_000) * 2;
    let published = format!("    ports:\n      - \"{port}:80\"\n");
    stack.deploy_services("v1.yml", &[service("web", ok, 1, &published)]);
    stack.deploy_services("v2.yml", &[service("web", ok, 2, "")]);
    let taker = OtherService(format!("{}-porty", stack.name));
    docker(
        HOST,
        &[
            "service",
            "create",
            "--detach",
            "--quiet",
            "--name",
            &taker.0,
            "--publish",
            &format!("{port}:80"),
            ok,
        ],
    );

    let version = stack.version("web");
    let revisions = stack.history()["revisions"].as_array().unwrap().len();
    for args in [vec!["--to", "1"], vec![]] {
        let mut command = vec!["rollback", stack.name.as_str()];
        command.extend(args.iter().copied());
        let out = stack.run(&command);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "revision 1 of {} cannot be rolled back to: service {}_web publishes port \
                 {port}/tcp, which service {} already publishes",
                stack.name, stack.name, taker.0
            )),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert_eq!(stack.version("web"), version, "nothing was applied");
    assert!(stack.runs_rev("web", 2));
    assert_eq!(
        stack.history()["revisions"].as_array().unwrap().len(),
        revisions,
        "nothing was recorded"
    );
}

/// `--to` a revision the stack page would not offer (the one that runs, one that changed
/// nothing) is refused by the same rule, exit 2, saying why and which revisions can be the
/// target; nothing applied, nothing recorded.
#[test]
fn a_rollback_to_what_runs_or_to_an_unchanged_revision_is_refused_with_exit_2() {
    let (ok, _) = images();
    let stack = Stack::new("rbrule");
    // 1 succeeded, 2 unchanged, 3 succeeded (runs now).
    stack.deploy_services("v1.yml", &[service("web", ok, 1, "")]);
    stack.deploy_services("v1.yml", &[service("web", ok, 1, "")]);
    stack.deploy_services("v2.yml", &[service("web", ok, 2, "")]);
    let version = stack.version("web");
    let revisions = stack.history()["revisions"].as_array().unwrap().len();
    assert_eq!(revisions, 3);
    for (to, why) in [
        (
            "3",
            "the stack runs its specs now, so re-applying them would change nothing",
        ),
        (
            "2",
            "it changed nothing: its specs are those of the succeeded revision before it",
        ),
    ] {
        let out = stack.run(&["rollback", &stack.name, "--to", to]);
        assert_eq!(out.status.code(), Some(2), "{to}: {}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("revision {to} of {} (", stack.name))
                && stderr.contains(why)
                && stderr.contains("the revisions that can be the target now: 1"),
            "{to}: {}",
            text(&out)
        );
    }
    assert_eq!(stack.version("web"), version, "nothing was applied");
    assert_eq!(
        stack.history()["revisions"].as_array().unwrap().len(),
        revisions,
        "nothing was recorded"
    );
}
