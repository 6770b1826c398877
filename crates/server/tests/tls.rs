//! The built-in TLS: the server on a real socket with a self-signed certificate made in its
//! state directory, asked by a real TLS client (reqwest over rustls) that trusts only that
//! certificate; the connection limits and the head deadline still hold over TLS; and the login
//! page over plain HTTP from elsewhere than localhost says why a login would not stick. Beside
//! HTTPS, the agents' report listener takes their reports over plain HTTP and serves nothing
//! else.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use swarmkeeper_server::{tls, AppState, Limits, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use support::TempDir;

fn state(dir: &std::path::Path, limits: Limits) -> AppState {
    state_with_secret(dir, limits, None)
}

fn state_with_secret(
    dir: &std::path::Path,
    limits: Limits,
    report_secret: Option<&str>,
) -> AppState {
    support::open_state_with_config(ServerConfig {
        limits,
        ..support::config(dir, report_secret)
    })
}

/// A client that trusts `cert` alone and finds `dash.test` on this machine at `port`.
fn client_trusting(cert: &std::path::Path, port: u16) -> reqwest::Client {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    reqwest::Client::builder()
        .tls_backend_preconfigured(config)
        .redirect(reqwest::redirect::Policy::none())
        .resolve("dash.test", ([127, 0, 0, 1], port).into())
        .build()
        .unwrap()
}

/// Reads until the peer closes; how long that took.
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return start.elapsed(),
            Ok(Ok(_)) => {}
            Err(_) => panic!("the server kept the connection open for 10 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_self_signed_certificate_under_the_same_limits() {
    let dir = TempDir::new("tls");
    let (cert, key) = tls::self_signed(dir.path(), &["dash.test".to_owned()], &[]).unwrap();
    let limits = Limits {
        max_connections_per_client: 4,
        header_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let app = state(dir.path(), limits);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(swarmkeeper_server::serve_tls_on(
        app,
        listener,
        tls::load(&cert, &key).unwrap(),
        async move {
            let _ = stopped.await;
        },
    ));

    // A client that trusts the certificate gets the pages, by name and by localhost.
    let client = client_trusting(&cert, port);
    for host in ["localhost", "dash.test"] {
        let answer = client
            .get(format!("https://{host}:{port}/healthz"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("https://{host}: {e:?}"));
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.text().await.unwrap(), "ok\n");
    }
    // Over TLS the login page has no warning, from any address.
    let page = client
        .get(format!("https://dash.test:{port}/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<form method=\"post\" action=\"/login\""),
        "{page}"
    );
    assert!(!page.contains("cookie-dropped"), "{page}");
    // A client that does not trust it is refused by its own TLS.
    let stranger = reqwest::Client::builder()
        .tls_backend_preconfigured(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
        .build()
        .unwrap();
    assert!(stranger
        .get(format!("https://localhost:{port}/healthz"))
        .send()
        .await
        .is_err());
    // One client holds at most four connections (the limits below): the clients above give
    // theirs back first, or a quiet machine finds the plain connection refused unanswered.
    drop((client, stranger));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Plain HTTP to the TLS port is served nothing: it is sent to https:// (tryout 11
    // finding 16: browsers showed a bare "invalid response").
    let mut plain = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    plain
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: localhost:{port}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 308 Permanent Redirect\r\n")
            && answer.contains(&format!(
                "\r\nLocation: https://localhost:{port}/healthz\r\n"
            ))
            && !answer.contains("ok\n"),
        "{answer}"
    );

    // The limits: a client that never starts its handshake is cut off at the head deadline,
    // and one client holds at most four connections, handshakes or not. The connection above
    // gives its slot back first.
    drop(plain);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut silent = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let took = closed_after(&mut silent).await;
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(3),
        "closed after {took:?}"
    );
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fifth = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let took = closed_after(&mut fifth).await;
    assert!(
        took < Duration::from_millis(300),
        "the fifth was held {took:?}"
    );

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

/// Over plain HTTP the login page warns when the browser reached the server at an address
/// other than localhost, and says what to do; on localhost it does not.
#[tokio::test]
async fn the_login_page_says_why_a_login_over_plain_http_would_not_stick() {
    use support::{Call, TestApp};
    let app = TestApp::new().await;
    let page = app
        .call(Call::get("/login").header("host", "10.0.0.5:8080"))
        .await;
    page.expect(200);
    let text = page.text();
    assert!(text.contains("id=\"cookie-dropped\""), "{text}");
    assert!(text.contains("<code>10.0.0.5:8080</code>"), "{text}");
    assert!(text.contains("--tls-cert FILE --tls-key FILE"), "{text}");
    assert!(text.contains("--tls-self-signed"), "{text}");
    for host in ["localhost:8080", "127.0.0.1:8080", "[::1]:8080"] {
        let page = app.call(Call::get("/login").header("host", host)).await;
        assert!(!page.text().contains("cookie-dropped"), "{host}");
    }
}

/// Over HTTPS the dashboard refuses plain HTTP, so agents (which report over plain HTTP inside
/// the stack's overlay) report to the server's second listener: it takes a report with the
/// secret, refuses one without, answers `/healthz`, and serves no page and no other API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_report_over_plain_http_beside_https_and_nothing_else_is_served_there() {
    let dir = TempDir::new("tls-agents");
    let (cert, key) = tls::self_signed(dir.path(), &["dash.test".to_owned()], &[]).unwrap();
    let app = state_with_secret(dir.path(), Limits::default(), Some(support::REPORT_SECRET));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let agents = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let agents_port = agents.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(swarmkeeper_server::serve_listeners(
        app,
        listener,
        Some(tls::load(&cert, &key).unwrap()),
        Some(agents),
        async move {
            let _ = stopped.await;
        },
    ));

    // Plain HTTP only: a TLS backend that trusts nothing, which reqwest still wants built.
    let plain = reqwest::Client::builder()
        .tls_backend_preconfigured(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let agents_url = format!("http://127.0.0.1:{agents_port}");
    let report = serde_json::to_vec(&support::report("", &support::unique("tls-agent"))).unwrap();
    let post = |secret: Option<&str>| {
        let mut request = plain
            .post(format!("{agents_url}{}", swarmkeeper_report::REPORT_PATH))
            .header("content-type", "application/json")
            .body(report.clone());
        if let Some(secret) = secret {
            request = request.bearer_auth(secret);
        }
        request.send()
    };
    assert_eq!(
        post(Some(support::REPORT_SECRET)).await.unwrap().status(),
        204
    );
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some("not-the-secret")).await.unwrap().status(), 401);
    let health = plain
        .get(format!("{agents_url}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    for path in ["/login", "/", "/api/nodes", "/api/openapi.json", "/setup"] {
        let answer = plain
            .get(format!("{agents_url}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404, "{path} on the agents' listener");
    }
    let login = plain
        .post(format!("{agents_url}/login"))
        .form(&[("username", "admin"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 404);

    // The dashboard's own port still speaks only HTTPS, and serves the report route too.
    let client = client_trusting(&cert, port);
    let page = client
        .get(format!("https://dash.test:{port}/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // Plain HTTP there is only sent to https:// (or refused by a client that follows it).
    if let Ok(answer) = plain
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
    {
        assert_eq!(answer.status(), 308);
        assert_eq!(
            answer.headers()["location"],
            format!("https://127.0.0.1:{port}/healthz").as_str()
        );
    }

    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
