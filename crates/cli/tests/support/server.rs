//! `swarmkeeper server` as a process of its own, and the HTTP calls the tests make to it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "a long enough admin password";

/// `swarmkeeper server` on a port of its own; stopped when dropped.
pub struct Server {
    child: Child,
    port: u16,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// Started with these variables too (`DOCKER_HOST`: the manager it works through).
    pub fn start_with(dir: &Path, env: &[(&str, &str)]) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
            .args([
                "server",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--state-dir",
            ])
            .arg(dir)
            .env("SWARMKEEPER_ADMIN_PASSWORD", PASSWORD)
            .env("SWARMKEEPER_ADMIN_PASSWORD_FILE", dir.join("no-such-file"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let server = Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while server.call("GET /login", &[], "").0 != 200 {
            assert!(Instant::now() < deadline, "the server did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// The port it listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// One HTTP/1.0 exchange: the status, the head and the body.
    pub fn call(&self, request: &str, headers: &[String], body: &str) -> (u16, String, String) {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return (0, String::new(), String::new());
        };
        let mut head = format!("{request} HTTP/1.0\r\nHost: localhost\r\n");
        for header in headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        if stream.write_all(head.as_bytes()).is_err() {
            return (0, String::new(), String::new());
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, head.to_owned(), body.to_owned())
    }

    /// Logs the admin in; returns the session's cookie header and CSRF header.
    pub fn login(&self) -> Vec<String> {
        let form = format!("username=admin&password={}", PASSWORD.replace(' ', "+"));
        let (status, head, _) = self.call(
            "POST /login",
            &["Content-Type: application/x-www-form-urlencoded".into()],
            &form,
        );
        assert_eq!(status, 303, "{head}");
        let session = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("set-cookie: ")
                    .or(l.strip_prefix("Set-Cookie: "))
            })
            .and_then(|c| c.split(';').next())
            .and_then(|c| c.split_once('='))
            .map(|(_, v)| v.to_owned())
            .unwrap();
        vec![
            format!(
                "Cookie: {}={session}",
                swarmkeeper_auth::SESSION_COOKIE_NAME
            ),
            format!("X-CSRF-Token: {}", swarmkeeper_auth::csrf_token(&session)),
        ]
    }

    /// A new API token of the logged-in user.
    pub fn token(&self, session: &[String], name: &str) -> String {
        let mut headers = session.to_vec();
        headers.push("Content-Type: application/json".into());
        let (status, _, body) = self.call(
            "POST /api/tokens",
            &headers,
            &format!(r#"{{"name": "{name}"}}"#),
        );
        assert_eq!(status, 201, "{body}");
        let created: serde_json::Value = serde_json::from_str(&body).unwrap();
        created["token"].as_str().unwrap().to_owned()
    }

    /// `GET PATH` with a bearer token: the status and the body.
    pub fn get(&self, path: &str, token: &str) -> (u16, String) {
        let (status, _, body) = self.call(
            &format!("GET {path}"),
            &[format!("Authorization: Bearer {token}")],
            "",
        );
        (status, body)
    }

    /// `GET /api/audit` with a bearer token: the status and the body.
    pub fn audit(&self, token: &str) -> (u16, String) {
        self.get("/api/audit", token)
    }

    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
