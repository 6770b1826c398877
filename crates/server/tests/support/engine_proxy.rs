//! The app's engine reached through a proxy on a socket of the test's own, which notes every
//! request line it passes on: for the tests that count what a page or an action asks the
//! engine. The app finds its engine like the docker CLI does (`DOCKER_HOST`), so a test binary
//! that uses it sets that variable for its one test ([`EngineProxy::start`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use super::TempDir;

/// The request lines (`GET /v1.41/tasks HTTP/1.1`) the proxy passed on, in order.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// A proxy to an engine's socket, with `DOCKER_HOST` pointed at it until dropped (then put
/// back as it was).
pub struct EngineProxy {
    pub seen: Seen,
    restore: Option<String>,
    _dir: TempDir,
}

impl EngineProxy {
    /// Starts the proxy to `engine` (`unix://PATH`; `None`: this process's `DOCKER_HOST`, or
    /// the default socket) and points `DOCKER_HOST` at it: a [`super::TestApp`] made after
    /// this asks through it. Needs a multi-threaded runtime, one test per binary.
    pub fn start(engine: Option<&str>) -> EngineProxy {
        let restore = std::env::var("DOCKER_HOST").ok();
        let engine = engine
            .or(restore.as_deref())
            .and_then(|h| h.strip_prefix("unix://").map(str::to_owned))
            .unwrap_or_else(|| "/var/run/docker.sock".to_owned());
        let dir = TempDir::new("engine-proxy");
        let socket: PathBuf = dir.path().join("docker.sock");
        let seen = Seen::default();
        tokio::spawn(proxy(
            UnixListener::bind(&socket).unwrap(),
            engine,
            seen.clone(),
        ));
        std::env::set_var("DOCKER_HOST", format!("unix://{}", socket.display()));
        EngineProxy {
            seen,
            restore,
            _dir: dir,
        }
    }

    /// Forgets the requests seen so far.
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// The request lines seen since the last [`EngineProxy::clear`].
    pub fn lines(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// How many of the requests seen were `method` `path` ([`asked`]).
    pub fn asked(&self, method: &str, path: &str) -> usize {
        asked(&self.lines(), method, path)
    }
}

impl Drop for EngineProxy {
    fn drop(&mut self) {
        match &self.restore {
            Some(host) => std::env::set_var("DOCKER_HOST", host),
            None => std::env::remove_var("DOCKER_HOST"),
        }
    }
}

/// Passes every connection on `listener` to the engine's socket `engine`, noting the request
/// lines the clients send.
async fn proxy(listener: UnixListener, engine: String, seen: Seen) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            return;
        };
        let engine = engine.clone();
        let seen = seen.clone();
        tokio::spawn(async move {
            let upstream = UnixStream::connect(&engine).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut up_read, mut up_write) = upstream.into_split();
            let requests = async move {
                let mut line = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let n = match client_read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    for &b in &buf[..n] {
                        line.push(b);
                        if line.ends_with(b"\r\n") {
                            let text = String::from_utf8_lossy(&line);
                            if text.trim_end().ends_with("HTTP/1.1") && text.contains(" /") {
                                seen.lock().unwrap().push(text.trim_end().to_owned());
                            }
                            line.clear();
                        }
                    }
                    if up_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = up_write.shutdown().await;
            };
            let answers = async move {
                let _ = tokio::io::copy(&mut up_read, &mut client_write).await;
                let _ = client_write.shutdown().await;
            };
            tokio::join!(requests, answers);
        });
    }
}

/// How many of `seen` are `method` requests of `path` (`/tasks`, `/nodes/ID`), whatever the
/// API version and query.
pub fn asked(seen: &[String], method: &str, path: &str) -> usize {
    seen.iter()
        .filter(|line| line.split(' ').next() == Some(method))
        .filter_map(|line| line.split(' ').nth(1))
        .map(|target| target.split('?').next().unwrap_or(target))
        .filter(|target| {
            let target = target.trim_start_matches('/');
            let target = match target.split_once('/') {
                Some((version, rest))
                    if version.starts_with('v')
                        && version[1..].starts_with(|c: char| c.is_ascii_digit()) =>
                {
                    rest
                }
                _ => target,
            };
            format!("/{target}") == path
        })
        .count()
}
