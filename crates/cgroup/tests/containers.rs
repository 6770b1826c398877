//! The reader against real containers on the host engine (/var/run/docker.sock): their
//! figures are there and move when the container works. Needs Debian's busybox-static.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use support::{build_busybox_image, docker};
use swarmkeeper_cgroup::{Hierarchy, ReadError, Reader};

const MIB: u64 = 1 << 20;

/// `FROM scratch` + busybox, built once per test binary under a name of this process.
fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let tag = format!("skcgtest-{}:busybox", std::process::id());
        build_busybox_image(&tag);
        tag
    })
}

/// A running `busybox sleep` container, removed (with the image, by the last one) when
/// dropped.
struct Container {
    name: String,
    id: String,
}

static LIVE: AtomicUsize = AtomicUsize::new(0);

impl Container {
    fn run(what: &str, options: &[&str]) -> Container {
        let name = format!("skcgtest-{}-{what}", std::process::id());
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend_from_slice(options);
        let image = image();
        args.extend_from_slice(&[image, "/bin/busybox", "sleep", "300"]);
        LIVE.fetch_add(1, Ordering::SeqCst);
        let id = docker(&args);
        Container { name, id }
    }

    fn exec(&self, script: &str) -> std::process::Output {
        Command::new("docker")
            .args(["exec", &self.name, "/bin/busybox", "sh", "-c", script])
            .output()
            .unwrap()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", &self.name])
            .output();
        if LIVE.fetch_sub(1, Ordering::SeqCst) == 1 {
            let _ = Command::new("docker").args(["rmi", image()]).output();
        }
    }
}

fn reader() -> Reader {
    Reader::new("/sys/fs/cgroup", "/proc").expect("a cgroup hierarchy at /sys/fs/cgroup")
}

#[test]
fn a_containers_figures_are_read_and_move() {
    let c = Container::run("moves", &["-m", "32m"]);
    let mut reader = reader();
    let before = reader.container(&c.id).unwrap();
    assert_eq!(before.memory_limit_bytes, Some(32 * MIB));
    assert_eq!(before.oom_kills, Some(0));
    assert!(before.cpu_nanoseconds > 0, "{before:?}");
    assert!(before.memory_usage_bytes > 0);
    assert!(before.memory_working_set_bytes <= before.memory_usage_bytes);
    let net_before = before
        .network
        .expect("a container on a bridge network has its own");

    let gateway = docker(&["inspect", "--format", "{{.NetworkSettings.Gateway}}", &c.id]);
    // CPU work, 8 MiB in its /dev/shm (tmpfs, charged to its memory cgroup), and one ping to
    // the bridge's own address on this machine.
    let out = c.exec(&format!(
        "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; \
         /bin/busybox dd if=/dev/zero of=/dev/shm/fill bs=1M count=8 2>/dev/null; \
         /bin/busybox ping -c 1 -W 2 {gateway} >/dev/null"
    ));
    assert!(out.status.success(), "{out:?}");
    let after = reader.container(&c.id).unwrap();
    assert!(
        after.cpu_nanoseconds >= before.cpu_nanoseconds + 10_000_000,
        "CPU time should grow by the loop: {} -> {}",
        before.cpu_nanoseconds,
        after.cpu_nanoseconds
    );
    assert!(
        after.memory_working_set_bytes >= before.memory_working_set_bytes + 7 * MIB,
        "8 MiB in /dev/shm: {} -> {}",
        before.memory_working_set_bytes,
        after.memory_working_set_bytes
    );
    let net_after = after.network.unwrap();
    assert!(net_after.transmit_bytes > net_before.transmit_bytes);
    assert!(net_after.receive_bytes > net_before.receive_bytes);
}

#[test]
fn a_16_mib_container_allocating_64_mib_counts_one_oom_kill() {
    // The container's own process (sleep) stays; the shell that allocates is the one killed.
    let c = Container::run("oom", &["-m", "16m", "--memory-swap", "16m"]);
    let mut reader = reader();
    assert_eq!(reader.container(&c.id).unwrap().oom_kills, Some(0));
    let out = c
        .exec("x=$(/bin/busybox head -c 67108864 /dev/zero | /bin/busybox tr '\\0' a); echo ${#x}");
    assert_eq!(out.status.code(), Some(137), "killed by SIGKILL: {out:?}");
    let stats = reader.container(&c.id).unwrap();
    assert_eq!(stats.oom_kills, Some(1), "{stats:?}");
    assert_eq!(stats.memory_limit_bytes, Some(16 * MIB));
}

#[test]
fn block_io_is_counted_where_the_kernel_counts_it() {
    // cgroup v1 on recent kernels counts a device's I/O in blkio.throttle.* only while the
    // cgroup has a throttle rule for it (Linux 6.x here shows "Total 0" otherwise, as does
    // `docker stats`): give the container one on the disk of the data root.
    let device = root_device();
    let c = Container::run("blkio", &["--device-write-bps", &format!("{device}:1gb")]);
    let mut reader = reader();
    let before = reader.container(&c.id).unwrap().block_io.unwrap();
    let out = c.exec("/bin/busybox dd if=/dev/zero of=/written bs=1M count=4 oflag=direct");
    assert!(out.status.success(), "{out:?}");
    let after = reader.container(&c.id).unwrap().block_io.unwrap();
    assert!(
        after.write_bytes >= before.write_bytes + 4 * MIB,
        "{before:?} -> {after:?}"
    );
}

/// The block device under /var/lib/docker, e.g. /dev/vda.
fn root_device() -> String {
    let out = Command::new("df")
        .args(["--output=source", "/var/lib/docker"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let source = text.lines().nth(1).unwrap().trim().to_string();
    // A partition (/dev/vda1) is throttled through its disk.
    let disk = source.trim_end_matches(|c: char| c.is_ascii_digit());
    if std::path::Path::new(disk).exists() && !disk.ends_with('p') {
        disk.to_string()
    } else {
        source
    }
}

#[test]
fn a_cgroup_parent_is_followed() {
    // What `dockerd --cgroup-parent` does for every container (lab/small-engine.sh), one
    // container's --cgroup-parent does for it alone: its cgroup is <parent>/<id>.
    let parent = format!("/skcgtest-{}-parent", std::process::id());
    let c = Container::run("parent", &["--cgroup-parent", &parent, "-m", "24m"]);
    // Without being told the parent: found where the kernel has it (issue #15: lab nodes
    // had no container series at all).
    let mut plain = reader();
    assert_eq!(
        plain.container(&c.id).unwrap().memory_limit_bytes,
        Some(24 * MIB)
    );
    let mut reader = reader().with_cgroup_parents(vec![parent.clone()]);
    assert_eq!(
        reader.container(&c.id).unwrap().memory_limit_bytes,
        Some(24 * MIB)
    );
    drop(c);
    // The emptied parent cgroup stays behind in each v1 hierarchy; remove it.
    if plain.hierarchy() == Hierarchy::V1 {
        for controller in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
            let _ = std::fs::remove_dir(controller.path().join(parent.trim_start_matches('/')));
        }
    } else {
        let _ = std::fs::remove_dir(format!("/sys/fs/cgroup{parent}"));
    }
}

#[test]
fn a_removed_container_is_not_found_and_forgotten() {
    let c = Container::run("gone", &[]);
    let id = c.id.clone();
    let mut reader = reader();
    reader.container(&id).unwrap();
    drop(c);
    let err = reader.container(&id).unwrap_err();
    assert!(matches!(err, ReadError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(&id));
}

#[test]
fn the_nodes_figures_are_sane() {
    let mut reader = reader();
    let first = reader.node().unwrap();
    assert!(first.cpus >= 1);
    assert!(first.memory_available_bytes <= first.memory_total_bytes);
    assert!(first.cpu_busy_seconds <= first.cpu_total_seconds);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(200) {
        std::hint::black_box(0u64);
    }
    let second = reader.node().unwrap();
    assert!(second.cpu_busy_seconds > first.cpu_busy_seconds);
}
