//! `swarmkeeper deploy` against the real single-node swarm, a task the kernel's OOM killer
//! kills: the failure line says so as the task page does ("exit 137 (killed: out of memory,
//! limit 16 MiB)"), not Swarm's "task: non-zero exit (137)".

mod support;

use support::deploy::{images, service, stack_file, text, Stack};

#[test]
fn a_deploy_whose_task_runs_out_of_memory_says_so() {
    let (ok, _) = images();
    let stack = Stack::new("oom");
    // 64 MiB read into one buffer, with 16 MiB allowed.
    let extra = "    command: [\"/bin/busybox\", \"dd\", \"if=/dev/zero\", \"of=/dev/null\", \
                 \"bs=64M\", \"count=1\"]\n    deploy:\n      resources:\n        limits:\n          \
                 memory: 16M\n";
    let web = service("web", ok, 1, "").replace("    deploy:\n", extra);
    let file = stack.file("s.yml", &stack_file(&[web]));
    let out = stack.deploy(&file, &[]);
    let said = text(&out);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("exit 137 (killed: out of memory, limit 16 MiB)"),
        "{said}"
    );
    assert!(!said.contains("non-zero exit (137)"), "{said}");
}
