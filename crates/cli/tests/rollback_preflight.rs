//! `swarmkeeper rollback` runs the deploy's placement preflight on the revision it re-applies
//! (tryout 8, finding 9): a revision no ready, active node can run is refused before anything
//! changes, naming the service and the reason, exit 2 as a deploy's preflight exits, with
//! nothing applied and nothing recorded. Against the real single-node swarm; the stack and the
//! node label are the test's own and removed when it ends.

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
