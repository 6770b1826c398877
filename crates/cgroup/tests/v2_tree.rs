//! This machine's engine runs on cgroup v1; the v2 reading is checked on a file tree laid out
//! as the kernel lays out the unified hierarchy (systemd driver: system.slice/docker-ID.scope),
//! with the files' contents in the kernel's format.

use std::path::Path;

use swarmkeeper_cgroup::{BlockIo, Hierarchy, Network, Reader};

fn write(root: &Path, path: &str, content: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

#[test]
fn a_v2_container_is_read_from_its_scope() {
    let root = std::env::temp_dir().join(format!("skcgtest-v2-{}", std::process::id()));
    let id = "0123abcd";
    let cg = format!("cgroup/system.slice/docker-{id}.scope");
    write(
        &root,
        "cgroup/cgroup.controllers",
        "cpuset cpu io memory pids\n",
    );
    write(&root, &format!("{cg}/memory.current"), "20971520\n");
    write(&root, &format!("{cg}/memory.max"), "33554432\n");
    write(
        &root,
        &format!("{cg}/memory.stat"),
        "anon 8388608\nfile 12582912\nactive_file 4194304\ninactive_file 8388608\n",
    );
    write(
        &root,
        &format!("{cg}/memory.events"),
        "low 0\nhigh 0\nmax 7\noom 2\noom_kill 2\noom_group_kill 0\n",
    );
    write(
        &root,
        &format!("{cg}/cpu.stat"),
        "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
    );
    write(
        &root,
        &format!("{cg}/io.stat"),
        "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
    );
    write(&root, &format!("{cg}/cgroup.procs"), "4242\n");
    // A proc root where pid 4242 is in another network namespace than pid 1.
    let proc_root = root.join("proc");
    write(&root, "proc/4242/net/dev", "Inter-| Receive | Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed\n  eth0: 1000 1 0 0 0 0 0 0 2000 2 0 0 0 0 0 0\n");
    std::fs::create_dir_all(proc_root.join("4242/ns")).unwrap();
    std::fs::create_dir_all(proc_root.join("1/ns")).unwrap();
    std::os::unix::fs::symlink("net:[4026532001]", proc_root.join("4242/ns/net")).unwrap();
    std::os::unix::fs::symlink("net:[4026531992]", proc_root.join("1/ns/net")).unwrap();

    let mut reader = Reader::new(root.join("cgroup"), &proc_root).unwrap();
    assert_eq!(reader.hierarchy(), Hierarchy::V2);
    let stats = reader.container(id).unwrap();
    assert_eq!(stats.cpu_nanoseconds, 1_500_000_000);
    assert_eq!(stats.memory_usage_bytes, 20 << 20);
    assert_eq!(stats.memory_working_set_bytes, 12 << 20);
    assert_eq!(stats.memory_limit_bytes, Some(32 << 20));
    assert_eq!(stats.oom_kills, Some(2));
    assert_eq!(stats.memory_limit_hits, 7);
    assert_eq!(
        stats.block_io,
        Some(BlockIo {
            read_bytes: 4096,
            write_bytes: 8192
        })
    );
    assert_eq!(
        stats.network,
        Some(Network {
            receive_bytes: 1000,
            transmit_bytes: 2000
        })
    );

    // Host network: the same namespace as pid 1, so no figures of its own.
    std::fs::remove_file(proc_root.join("4242/ns/net")).unwrap();
    std::os::unix::fs::symlink("net:[4026531992]", proc_root.join("4242/ns/net")).unwrap();
    assert_eq!(reader.container(id).unwrap().network, None);

    // No limit, no io controller.
    write(&root, &format!("{cg}/memory.max"), "max\n");
    std::fs::remove_file(root.join(format!("{cg}/io.stat"))).unwrap();
    let stats = reader.container(id).unwrap();
    assert_eq!(stats.memory_limit_bytes, None);
    assert_eq!(stats.block_io, None);

    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn a_v2_container_under_an_unknown_parent_is_found_by_search() {
    // dockerd --cgroup-parent=/outer/inner, not given to the reader.
    let root = std::env::temp_dir().join(format!("skcgtest-v2p-{}", std::process::id()));
    write(&root, "cgroup/cgroup.controllers", "cpu io memory pids\n");
    write(&root, "cgroup/system.slice/other.service/cgroup.procs", "");
    for (id, limit) in [("feed01", "16777216"), ("feed02", "max")] {
        let cg = format!("cgroup/outer/inner/{id}");
        write(&root, &format!("{cg}/memory.current"), "1048576\n");
        write(&root, &format!("{cg}/memory.max"), &format!("{limit}\n"));
        write(&root, &format!("{cg}/memory.stat"), "inactive_file 0\n");
        write(&root, &format!("{cg}/memory.events"), "max 0\noom_kill 3\n");
        write(&root, &format!("{cg}/cpu.stat"), "usage_usec 10\n");
        write(&root, &format!("{cg}/cgroup.procs"), "");
    }
    let mut reader = Reader::new(root.join("cgroup"), root.join("proc")).unwrap();
    let first = reader.container("feed01").unwrap();
    assert_eq!(first.memory_limit_bytes, Some(16 << 20));
    assert_eq!(first.oom_kills, Some(3));
    assert_eq!(reader.container("feed02").unwrap().memory_limit_bytes, None);
    assert!(reader.container("feed03").is_err());
    std::fs::remove_dir_all(&root).unwrap();
}
