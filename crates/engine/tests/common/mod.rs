//! Helpers for tests against the real engine: uniquely named images and containers made with the
//! docker CLI, removed again when the test ends, passed or not.

use std::io::Read;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Size of the `/bin/busybox` every base image contains.
pub fn busybox_size() -> u64 {
    std::fs::metadata("/bin/busybox")
        .expect("/bin/busybox (Debian's busybox-static) is needed to build test images")
        .len()
}

/// `skengtest-<pid>-<start>-<n>-<what>`: the start time keeps names apart from leftovers of an
/// earlier run that had the same pid.
pub fn unique(what: &str) -> String {
    static START: OnceLock<u128> = OnceLock::new();
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let start = START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_micros()
            % 1_000_000_000
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("skengtest-{}-{start}-{n}-{what}", std::process::id())
}

/// Runs the docker CLI and returns its trimmed stdout; panics with its stderr when it fails.
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("the docker CLI runs");
    assert!(
        output.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut bytes = vec![0; n];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .unwrap();
    bytes
}

/// Removes what a test made, containers first, images newest first, when dropped.
#[derive(Default)]
pub struct Scratch {
    containers: Vec<String>,
    images: Vec<String>,
}

impl Scratch {
    /// Builds an image tagged `tag` with the classic builder: `FROM scratch` plus busybox, or
    /// `FROM base`, plus a file of `blob_bytes` random bytes that makes its ID unique, so that no
    /// other test's image can share it. Returns the image ID.
    pub fn build(&mut self, tag: &str, base: Option<&str>, blob_bytes: usize) -> String {
        let dir = std::env::temp_dir().join(unique("context"));
        std::fs::create_dir(&dir).unwrap();
        let dockerfile = match base {
            None => {
                std::fs::copy("/bin/busybox", dir.join("busybox")).unwrap();
                "FROM scratch\nCOPY busybox /bin/busybox\nCOPY blob /blob\n".to_string()
            }
            Some(base) => format!("FROM {base}\nCOPY blob /blob2\n"),
        };
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(dir.join("blob"), random_bytes(blob_bytes)).unwrap();
        let built = Command::new("docker")
            .args(["build", "-q", "--no-cache", "-t", tag])
            .arg(&dir)
            .env("DOCKER_BUILDKIT", "0")
            .output()
            .expect("the docker CLI runs");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            built.status.success(),
            "docker build failed: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let id = String::from_utf8(built.stdout).unwrap().trim().to_string();
        assert!(id.starts_with("sha256:"), "unexpected build output {id:?}");
        self.images.push(id.clone());
        id
    }

    /// `docker run` of `/bin/busybox ARGS…` in a container named `name`; returns its ID once it
    /// has exited.
    pub fn run(&mut self, name: &str, image: &str, args: &[&str]) -> String {
        self.containers.push(name.to_string());
        let mut all = vec![
            "run",
            "--name",
            name,
            "--label",
            "skengtest=1",
            image,
            "/bin/busybox",
        ];
        all.extend_from_slice(args);
        docker(&all);
        docker(&["inspect", "--format", "{{.Id}}", name])
    }

    /// `docker create` without starting; returns the container ID.
    pub fn create(&mut self, name: &str, image: &str) -> String {
        self.containers.push(name.to_string());
        docker(&[
            "create",
            "--name",
            name,
            "--label",
            "skengtest=1",
            image,
            "/bin/busybox",
            "true",
        ])
    }

    /// Starts a container that keeps running until it is removed.
    pub fn run_detached(&mut self, name: &str, image: &str) -> String {
        self.containers.push(name.to_string());
        docker(&[
            "run",
            "-d",
            "--name",
            name,
            image,
            "/bin/busybox",
            "sleep",
            "60",
        ])
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for container in &self.containers {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v", container])
                .output();
        }
        for image in self.images.iter().rev() {
            let _ = Command::new("docker").args(["rmi", "-f", image]).output();
        }
    }
}

/// Whether the engine still has this image (by ID or reference).
pub fn image_exists(reference: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", reference])
        .output()
        .unwrap()
        .status
        .success()
}

/// The tags the engine lists for an image.
pub fn image_tags(id: &str) -> Vec<String> {
    let mut tags: Vec<String> = docker(&["image", "inspect", "--format", "{{json .RepoTags}}", id])
        .parse::<serde_json::Value>()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    tags.sort();
    tags
}

/// A path in the temp directory for a file the test writes and removes itself.
pub fn temp_file(name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(unique(name));
    assert!(!Path::new(&path).exists());
    path
}
