//! The cost of one stats pass of an agent: reading every figure of 100 running containers
//! and the node. Starts 100 `busybox sleep` containers on the host engine (named
//! `skcgbench-<pid>-N`, removed at the end); needs Debian's busybox-static.
//!
//! At a 10 s interval, the agent's share of one core is (time per sweep) / 10 s.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};
use support::{build_busybox_image, docker};
use swarmkeeper_cgroup::Reader;

const CONTAINERS: usize = 100;
const IMAGE: &str = "skcgbench:busybox";

/// Removes the bench's containers and image, however the bench ends.
struct Containers(Vec<String>);

impl Drop for Containers {
    fn drop(&mut self) {
        let mut args = vec!["rm", "-f"];
        args.extend(self.0.iter().map(String::as_str));
        let _ = Command::new("docker").args(&args).output();
        let _ = Command::new("docker").args(["rmi", IMAGE]).output();
    }
}

fn start_containers() -> Containers {
    build_busybox_image(IMAGE);
    let mut containers = Containers(Vec::new());
    for n in 0..CONTAINERS {
        let name = format!("skcgbench-{}-{n}", std::process::id());
        let id = docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "-m",
            "64m",
            IMAGE,
            "/bin/busybox",
            "sleep",
            "3600",
        ]);
        containers.0.push(id);
    }
    containers
}

fn sweep(c: &mut Criterion) {
    let containers = start_containers();
    let mut reader = Reader::new("/sys/fs/cgroup", "/proc").expect("a cgroup hierarchy");
    let ids: Vec<&str> = containers.0.iter().map(String::as_str).collect();
    c.bench_function("read 100 containers and the node", |b| {
        b.iter(|| {
            for id in &ids {
                reader.container(id).expect("a running container's figures");
            }
            reader.node().expect("the node's figures");
        })
    });
    // What the agent's first pass pays: finding every container's cgroup too.
    c.bench_function("read 100 containers, locating each", |b| {
        b.iter(|| {
            reader.retain(&[]);
            for id in &ids {
                reader.container(id).expect("a running container's figures");
            }
        })
    });
}

criterion_group!(benches, sweep);
criterion_main!(benches);
