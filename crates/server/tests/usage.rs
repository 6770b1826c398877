//! Resource usage charts: agents report usage samples, the server draws a node's, a
//! service's (replicas summed) and a task's CPU and memory, and answers the same points as
//! JSON; the overview lists the top consumers and the services near their memory limit.

mod support;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;
use support::{report, unique, Call, TestApp, TestService};
use swarmkeeper_report::{NodeUsage, TaskUsage, UsageSample};

fn task(id: &str, service: &str, seconds_busy: u64, memory: u64, limit: u64) -> TaskUsage {
    TaskUsage {
        task: id.into(),
        service: service.into(),
        stack: String::new(),
        slot: "1".into(),
        cpu_ns: seconds_busy * 1_000_000_000,
        memory_bytes: memory,
        memory_limit_bytes: Some(limit),
        oom_kills: Some(0),
    }
}

/// Three samples 10 s apart ending now: the node busy a tenth of its two CPUs' time, and
/// each task busy `busy_per_10s` CPU seconds every 10 s.
fn samples(now: Timestamp, tasks: &[(&str, &str, u64, u64, u64)]) -> Vec<UsageSample> {
    (0..3u64)
        .map(|n| UsageSample {
            taken_at: now - SignedDuration::from_secs(10 * (2 - n as i64)),
            node: Some(NodeUsage {
                cpu_busy_ms: 1_000_000 + 2_000 * n,
                cpu_total_ms: 10_000_000 + 20_000 * n,
                cpus: 2,
                memory_total_bytes: 4 << 30,
                memory_available_bytes: 3 << 30,
            }),
            tasks: tasks
                .iter()
                .map(|(id, service, busy, memory, limit)| {
                    task(id, service, 100 + busy * n, *memory, *limit)
                })
                .collect(),
        })
        .collect()
}

fn last(body: &Value) -> &Value {
    body["points"].as_array().unwrap().last().unwrap()
}

#[tokio::test]
async fn node_and_service_charts_and_their_json() {
    let app = TestApp::new().await;
    let now = Timestamp::now();
    let web = unique("usweb");
    let db = unique("usdb");
    let mut node = report("usagenode1aaaaaaaaaaaaaaa", "usage-node-1");
    node.usage = samples(
        now,
        &[
            ("t1", &web, 5, 100 << 20, 1 << 30),
            ("t2", &db, 1, 950 << 20, 1000 << 20),
        ],
    );
    app.post_report(&node).await;
    let mut other = report("usagenode2aaaaaaaaaaaaaaa", "usage-node-2");
    other.usage = samples(now, &[("t3", &web, 5, 200 << 20, 1 << 30)]);
    app.post_report(&other).await;

    let v = &app.viewer.token;
    let answer = app
        .call(Call::get("/api/nodes/usage-node-1/usage").bearer(v))
        .await;
    answer.expect(200);
    let body = answer.json();
    assert_eq!(body["range"], "1h");
    assert_eq!(body["step_seconds"], 10);
    assert_eq!(body["points"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(body["points"][0]["cpu_cores"], Value::Null);
    // 2 s busy of 20 s on two CPUs.
    assert_eq!(last(&body)["cpu_cores"], 0.2, "{body}");
    assert_eq!(last(&body)["memory_bytes"], 1u64 << 30);
    assert_eq!(last(&body)["memory_limit_bytes"], 4u64 << 30);

    // The service's two replicas on two nodes, summed.
    let answer = app
        .call(Call::get(&format!("/api/services/{web}/usage?range=24h")).bearer(v))
        .await;
    answer.expect(200);
    let body = answer.json();
    assert_eq!(body["step_seconds"], 60);
    let point = last(&body);
    assert_eq!(point["memory_bytes"], 300u64 << 20, "{body}");
    assert_eq!(point["memory_limit_bytes"], 2u64 << 30, "{body}");

    let bad = app
        .call(Call::get(&format!("/api/services/{web}/usage?range=7d")).bearer(v))
        .await;
    bad.expect(400);
    assert!(bad.text().contains("range"), "{}", bad.text());
    app.call(Call::get("/api/nodes/nosuchnode/usage").bearer(v))
        .await
        .expect(404);

    let page = app
        .call(Call::get("/nodes/usage-node-1/usage?range=30d").session(&app.viewer))
        .await;
    page.expect(200);
    let html = page.text();
    assert!(
        html.contains("usage-cpu") && html.contains("usage-memory"),
        "{html}"
    );
    assert!(html.contains("a point every 3600 s"), "{html}");

    // The overview: top consumers and the service near its limit (950 of 1000 MiB).
    let overview = app.call(Call::get("/api/overview").bearer(v)).await;
    overview.expect(200);
    let usage = &overview.json()["usage"];
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["service"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(&usage["by_cpu"])[..2],
        [web.clone(), db.clone()],
        "{usage}"
    );
    assert!(names(&usage["near_memory_limit"]).contains(&db), "{usage}");
    assert!(
        !names(&usage["near_memory_limit"]).contains(&web),
        "{usage}"
    );
    let html = app.call(Call::get("/").session(&app.viewer)).await.text();
    assert!(
        html.contains("Top consumers") && html.contains(&db),
        "{html}"
    );
}

#[tokio::test]
async fn a_task_page_shows_its_own_usage() {
    let app = TestApp::new().await;
    let service = TestService::create("ustask", &[]);
    service.wait_running(1);
    let task_id = service.tasks("{{.ID}}").remove(0);
    let now = Timestamp::now();
    let mut node = report("usagenode3aaaaaaaaaaaaaaa", "usage-node-3");
    node.usage = samples(
        now,
        &[
            (&task_id, &service.name, 3, 10 << 20, 64 << 20),
            ("sibling", &service.name, 9, 20 << 20, 64 << 20),
        ],
    );
    app.post_report(&node).await;

    let answer = app
        .call(Call::get(&format!("/api/tasks/{task_id}/usage")).bearer(&app.viewer.token))
        .await;
    answer.expect(200);
    let body = answer.json();
    assert_eq!(body["kind"], "task");
    assert_eq!(last(&body)["memory_bytes"], 10u64 << 20, "{body}");
    let page = app
        .call(Call::get(&format!("/tasks/{task_id}")).session(&app.viewer))
        .await;
    page.expect(200);
    assert!(page.text().contains("usage-memory"), "{}", page.text());
    let page = app
        .call(Call::get(&format!("/services/{}", service.name)).session(&app.viewer))
        .await;
    page.expect(200);
    assert!(page.text().contains("usage-cpu"), "{}", page.text());
}
