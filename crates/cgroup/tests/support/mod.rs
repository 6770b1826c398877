//! The docker CLI for the cgroup tests and the sweep bench: commands, and a `FROM scratch`
//! busybox image (Debian's busybox-static).

use std::process::Command;

/// Runs the docker CLI and returns its trimmed stdout; panics with its stderr when it fails.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Builds `tag`: `FROM scratch` with /bin/busybox.
pub fn build_busybox_image(tag: &str) {
    let dir = std::env::temp_dir().join(format!("skcg-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy("/bin/busybox", dir.join("busybox"))
        .expect("/bin/busybox (Debian's busybox-static) builds the test image");
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\n",
    )
    .unwrap();
    docker(&["build", "-q", "-t", tag, dir.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
}
