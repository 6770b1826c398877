//! The server asks its two listeners (the dashboard's and the agents' `--report-listen`) for
//! connections in turn: a flood on the dashboard's port does not keep an agent's report
//! waiting behind it. Deterministic: both backlogs are filled before the server starts, so the
//! order the loop takes them in decides. Every connection comes from 127.0.0.1, so the
//! per-client cap (one cap for both listeners) is full of idle dashboard connections as soon
//! as the loop has taken that many of them first: a loop that drains the dashboard's backlog
//! first takes the report's connection only then, and closes it as one too many.

mod support;

use std::time::Duration;

use support::{config, open_state_with_config, report, unique, TempDir, REPORT_SECRET};
use swarmkeeper_server::{Limits, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Idle connections waiting on the dashboard's port when the server starts.
const FLOOD: usize = 100;
/// Connections one client may hold open.
const PER_CLIENT: usize = 8;

/// A listener on a port of its own whose backlog holds `backlog` connections not yet taken.
fn listen(backlog: usize) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(backlog as u32).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_report_is_answered_while_the_dashboard_port_is_flooded() {
    let dir = TempDir::new("fair-accept");
    let state = open_state_with_config(ServerConfig {
        limits: Limits {
            max_connections_per_client: PER_CLIENT,
            // The idle connections hold their slots for the whole test.
            header_read_timeout: Duration::from_secs(60),
            ..Limits::default()
        },
        ..config(dir.path(), Some(REPORT_SECRET))
    });
    let dashboard = listen(FLOOD + 16);
    let agents = listen(16);
    let dashboard_addr = dashboard.local_addr().unwrap();
    let agents_addr = agents.local_addr().unwrap();

    // The flood, queued in the dashboard's backlog: connected, silent.
    let mut flood = Vec::with_capacity(FLOOD);
    for _ in 0..FLOOD {
        flood.push(TcpStream::connect(dashboard_addr).await.unwrap());
    }
    // The report, queued in the agents' backlog with its whole request written.
    let body = serde_json::to_vec(&report("", &unique("fair-agent"))).unwrap();
    let mut agent = TcpStream::connect(agents_addr).await.unwrap();
    let head = format!(
        "POST {} HTTP/1.1\r\nhost: {agents_addr}\r\nauthorization: Bearer {REPORT_SECRET}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        swarmkeeper_report::REPORT_PATH,
        body.len()
    );
    agent.write_all(head.as_bytes()).await.unwrap();
    agent.write_all(&body).await.unwrap();

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(swarmkeeper_server::serve_listeners(
        state,
        dashboard,
        None,
        Some(agents),
        async move {
            let _ = stopped.await;
        },
    ));

    // A generous bound: the answer comes at once, or never.
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), agent.read_to_end(&mut answer))
        .await
        .expect("the report is answered within a minute")
        .expect("the report's connection is read to its end");
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 204"),
        "the report is taken despite {FLOOD} connections waiting on the dashboard's port: \
         {answer:?}"
    );

    drop(flood);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), server)
        .await
        .expect("the server stops")
        .unwrap()
        .unwrap();
}
