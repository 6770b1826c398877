//! Real receivers on this machine for the notify tests and the latency bench: the Python
//! HTTP receiver and aiosmtpd SMTP server in tests/fixtures, and Debian's
//! prometheus-alertmanager. Each is a child process of the test, killed when dropped. The
//! server's tests include this module too (`#[path]`), for the channels driven through it.
//! scripts/ensure-engine.sh installs python3-aiosmtpd, prometheus-alertmanager and openssl.

#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Through `crates/notify` from either crate's directory: the server's tests use this module too.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../notify/tests/fixtures");

/// Debian's Python, which has python3-aiosmtpd; `SWARMKEEPER_TEST_PYTHON` overrides it.
fn python() -> String {
    std::env::var("SWARMKEEPER_TEST_PYTHON").unwrap_or_else(|_| "/usr/bin/python3".into())
}

/// A directory of its own under the temp directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("sknotify-{}-{n}-{what}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A receiver process that prints "listening PORT", then one JSON line per thing received.
pub struct Receiver {
    child: Child,
    pub port: u16,
    lines: mpsc::Receiver<(Instant, Value)>,
}

impl Receiver {
    fn spawn(script: &str, args: &[&str]) -> Receiver {
        let mut child = Command::new(python())
            .arg(Path::new(FIXTURES).join(script))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{} {script}: {e}", python()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let port = first
            .trim()
            .strip_prefix("listening ")
            .unwrap_or_else(|| panic!("{script} did not start: {first:?}"))
            .parse()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines() {
                let Ok(line) = line else { return };
                let value = serde_json::from_str(&line).expect("the receiver prints JSON");
                if tx.send((Instant::now(), value)).is_err() {
                    return;
                }
            }
        });
        Receiver { child, port, lines }
    }

    /// The HTTP receiver of tests/fixtures/http_receiver.py.
    pub fn http() -> Receiver {
        Receiver::spawn("http_receiver.py", &[])
    }

    /// aiosmtpd with STARTTLS (the certificate of `tls`) and AUTH for `user`/`password`.
    pub fn smtp(tls: &TestCa, user: &str, password: &str) -> Receiver {
        Receiver::spawn(
            "smtp_receiver.py",
            &[
                tls.cert.to_str().unwrap(),
                tls.key.to_str().unwrap(),
                user,
                password,
            ],
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The next thing received and when it was read; panics after `timeout`.
    pub fn next(&self, timeout: Duration) -> (Instant, Value) {
        self.lines
            .recv_timeout(timeout)
            .expect("the receiver got something in time")
    }

    /// Everything received within `wait`.
    pub fn drain(&self, wait: Duration) -> Vec<Value> {
        let end = Instant::now() + wait;
        let mut all = Vec::new();
        while let Ok((_, v)) = self
            .lines
            .recv_timeout(end.saturating_duration_since(Instant::now()))
        {
            all.push(v);
        }
        all
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA and a server certificate it signed for 127.0.0.1 and localhost, made with
/// the openssl CLI: what a relay with a company CA has. (rustls refuses a self-signed
/// certificate that is its own CA as a server certificate: `CaUsedAsEndEntity`.)
pub struct TestCa {
    _dir: TempDir,
    ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCa {
    pub fn new() -> TestCa {
        let dir = TempDir::new("tls");
        let path = |name: &str| dir.0.join(name);
        let openssl = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir.0)
                .output()
                .expect("openssl runs");
            assert!(out.status.success(), "openssl {args:?}: {out:?}");
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=swarmkeeper test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            path("server.ext"),
            "basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ]);
        TestCa {
            ca: path("ca.pem"),
            cert: path("server.pem"),
            key: path("server.key"),
            _dir: dir,
        }
    }

    /// The CA's certificate, to trust.
    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.ca).unwrap()
    }
}

/// Debian's prometheus-alertmanager on a free loopback port, no clustering.
pub struct Alertmanager {
    child: Child,
    _dir: TempDir,
    pub port: u16,
}

impl Alertmanager {
    pub fn start() -> Alertmanager {
        let dir = TempDir::new("alertmanager");
        let config = dir.0.join("alertmanager.yml");
        std::fs::write(
            &config,
            "route:\n  receiver: nowhere\nreceivers:\n  - name: nowhere\n",
        )
        .unwrap();
        let port = free_port();
        let child = Command::new("/usr/bin/prometheus-alertmanager")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", dir.0.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("/usr/bin/prometheus-alertmanager (Debian's prometheus-alertmanager)");
        let am = Alertmanager {
            child,
            _dir: dir,
            port,
        };
        let start = Instant::now();
        while am.get("/-/ready").map(|(status, _)| status) != Some(200) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "alertmanager not ready"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        am
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A plain HTTP/1.0 GET: the status and the body.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        let status = answer.split_ascii_whitespace().nth(1)?.parse().ok()?;
        let body = answer.split_once("\r\n\r\n")?.1.to_string();
        Some((status, body))
    }

    /// The alerts Alertmanager lists (active, silenced, inhibited; not resolved ones) with
    /// label `alertname` = `rule`.
    pub fn alerts(&self, rule: &str) -> Vec<Value> {
        let (status, body) = self
            .get(&format!("/api/v2/alerts?filter=alertname%3D%22{rule}%22"))
            .expect("alertmanager answers");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
