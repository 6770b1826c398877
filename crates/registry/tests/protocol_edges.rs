//! What real registries do that Debian's `docker-registry` does not: a `HEAD` refused (405)
//! or answered without `Docker-Content-Digest`, a 429 with an HTTP-date `Retry-After`, a
//! registry error. A scripted HTTP/1.1 peer on loopback plays each answer; the client's
//! requests are recorded and checked too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest as _, Sha256};
use swarmkeeper_registry::{Client, Reference, RegistryError};

/// One scripted answer: status line, headers, body.
struct Answer(&'static str, Vec<(&'static str, String)>, Vec<u8>);

/// Serves `answers` in order, one per connection, and records each request's first line and
/// headers.
fn serve(answers: Vec<Answer>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for Answer(status, headers, body) in answers {
            // The client tries HTTPS first on loopback, as docker does: drop TLS hellos.
            let mut stream = loop {
                let (stream, _) = listener.accept().unwrap();
                let mut first = [0u8; 1];
                if stream.peek(&mut first).unwrap() == 1 && first[0] != 0x16 {
                    break stream;
                }
            };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                request.push_str(&line);
            }
            let length = request
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            let mut body_in = vec![0; length];
            reader.read_exact(&mut body_in).unwrap();
            log.lock().unwrap().push(request.clone());
            let mut out = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
            for (k, v) in &headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
            stream.write_all(out.as_bytes()).unwrap();
            if !request.starts_with("HEAD ") {
                stream.write_all(&body).unwrap();
            }
        }
    });
    (addr, seen)
}

fn manifest() -> Vec<u8> {
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#
        .to_vec()
}

#[tokio::test(flavor = "current_thread")]
async fn head_refused_then_get_without_digest_header_digests_the_body() {
    let body = manifest();
    let expected: String = Sha256::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (addr, seen) = serve(vec![
        Answer("405 Method Not Allowed", vec![], vec![]),
        Answer(
            "200 OK",
            vec![(
                "Content-Type",
                "application/vnd.oci.image.index.v1+json".into(),
            )],
            body,
        ),
    ]);
    let reference = Reference::parse(&format!("{addr}/team/app:1")).unwrap();
    let digest = Client::new()
        .unwrap()
        .manifest_digest(&reference, None)
        .await
        .unwrap();
    assert_eq!(digest.to_string(), format!("sha256:{expected}"));
    let seen = seen.lock().unwrap();
    assert!(
        seen[0].starts_with("HEAD /v2/team/app/manifests/1 "),
        "{}",
        seen[0]
    );
    assert!(
        seen[1].starts_with("GET /v2/team/app/manifests/1 "),
        "{}",
        seen[1]
    );
    for request in seen.iter() {
        let accept = request
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("accept:"))
            .unwrap();
        for media_type in [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ] {
            assert!(accept.contains(media_type), "{accept}");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn head_without_digest_header_falls_back_to_get() {
    let body = manifest();
    let (addr, seen) = serve(vec![
        Answer("200 OK", vec![], vec![]),
        Answer("200 OK", vec![], body.clone()),
    ]);
    let reference = Reference::parse(&format!("{addr}/app")).unwrap();
    let digest = Client::new()
        .unwrap()
        .manifest_digest(&reference, None)
        .await
        .unwrap();
    assert!(!digest.encoded().is_empty());
    assert_eq!(seen.lock().unwrap().len(), 2);
    assert!(seen.lock().unwrap()[1].starts_with("GET /v2/app/manifests/latest "));
}

#[tokio::test(flavor = "current_thread")]
async fn throttling_and_registry_errors_are_typed() {
    let later = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(120));
    let (addr, _) = serve(vec![
        Answer(
            "429 Too Many Requests",
            vec![("Retry-After", later)],
            br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"pull rate limit"}]}"#.to_vec(),
        ),
        Answer(
            "503 Service Unavailable",
            vec![("Retry-After", "30".into())],
            br#"{"errors":[{"code":"UNAVAILABLE","message":"maintenance"}]}"#.to_vec(),
        ),
        Answer(
            "404 Not Found",
            vec![],
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#.to_vec(),
        ),
    ]);
    let client = Client::new().unwrap();
    let reference = Reference::parse(&format!("{addr}/app:1")).unwrap();
    let err = client.manifest_digest(&reference, None).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::TooManyRequests { .. }),
        "{err}"
    );
    let wait = err.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );
    let err = client.manifest_digest(&reference, None).await.unwrap_err();
    match &err {
        RegistryError::Registry {
            status,
            message,
            retry_after,
            ..
        } => {
            assert_eq!(*status, 503);
            // A HEAD answer has no body: the status says what happened.
            assert_eq!(message, "service unavailable");
            assert_eq!(*retry_after, Some(Duration::from_secs(30)));
        }
        other => panic!("expected a registry error, got {other}"),
    }
    let err = client.manifest_digest(&reference, None).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{addr}/app:1: not found in the registry (no such repository or tag)")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn an_unreachable_registry_says_so() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let reference = Reference::parse(&format!("127.0.0.1:{port}/app:1")).unwrap();
    let err = Client::new()
        .unwrap()
        .manifest_digest(&reference, None)
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unreachable { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("127.0.0.1:{port}: cannot be reached")),
        "{err}"
    );
}
