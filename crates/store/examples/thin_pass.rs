//! The store's side of usage, timed on a database holding a day of usage (the volume
//! `bench/server-usage.sh` simulates: NODES nodes × TASKS task containers sampled every 10 s,
//! already thinned to 1 h at 10 s and 23 h at 1 min) plus 30 days of a 10-replica service
//! `sim_chart` on the first node. Build it from two checkouts to compare them:
//! `cargo build --release --example thin_pass -p swarmkeeper-store`.
//!
//!   thin_pass fill DIR NODES TASKS NOW_MS   writes the day into DIR's database
//!   thin_pass pass DIR NODES TASKS NOW_MS   times a housekeeping pass at NOW (the first after
//!                                           a start), the 30-day query of `sim_chart` (50
//!                                           times), five minutes of one-sample reports from
//!                                           every node (`record_node_report`), and the pass
//!                                           at NOW + 5 min (the steady state); prints JSON
//!
//! `PAGE_CACHE_KIB=8192` gives the store the server's page cache (`Store::set_page_cache`).
//! `STEP_ROWS=N` runs the passes as the server does, in steps of at most N rows
//! (`Store::thin_usage_step`), and prints the longest step: the longest the store is held.
//! Without it a pass is one step, as `Store::thin_usage`.

use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use swarmkeeper_report::{NodeReport, NodeUsage, TaskUsage, UsageSample};
use swarmkeeper_store::Store;

fn node_id(n: usize) -> String {
    format!("simnode{n:03}")
        .chars()
        .chain(std::iter::repeat('a'))
        .take(25)
        .collect()
}

fn task(n: usize, i: usize, at_ms: i64) -> TaskUsage {
    TaskUsage {
        task: format!("simtask{n:03}{i:03}xxxxxxxxx"),
        service: format!("sim_svc{:02}", i % 50),
        stack: "sim".into(),
        slot: (i + 1).to_string(),
        cpu_ns: at_ms as u64 * 10_000 + i as u64 * 1000,
        memory_bytes: ((20 + i) as u64) << 20,
        memory_limit_bytes: Some(256 << 20),
        oom_kills: Some(0),
    }
}

fn node(at_ms: i64) -> NodeUsage {
    NodeUsage {
        cpu_busy_ms: at_ms as u64 / 10,
        cpu_total_ms: at_ms as u64 * 2,
        cpus: 2,
        memory_total_bytes: 8 << 30,
        memory_available_bytes: 5 << 30,
    }
}

/// The sample times one node keeps after a day at 10 s, thinned: 1 h at 10 s, 23 h at 1 min.
fn day_times(now_ms: i64) -> Vec<i64> {
    let mut times = Vec::new();
    let mut t = now_ms;
    while t > now_ms - 3_600_000 {
        times.push(t);
        t -= 10_000;
    }
    while t > now_ms - 86_400_000 {
        times.push(t);
        t -= 60_000;
    }
    times
}

fn insert_node(insert: &mut rusqlite::Statement<'_>, id: &str, at: i64, u: &NodeUsage) {
    insert
        .execute(rusqlite::params![
            id,
            at,
            u.cpu_busy_ms as i64,
            u.cpu_total_ms as i64,
            u.cpus,
            u.memory_total_bytes as i64,
            u.memory_available_bytes as i64
        ])
        .unwrap();
}

fn fill(dir: &std::path::Path, nodes: usize, tasks: usize, now_ms: i64) {
    drop(Store::open(dir).expect("store"));
    let mut conn = rusqlite::Connection::open(dir.join(swarmkeeper_store::DB_FILE)).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut node_insert = tx
            .prepare("INSERT INTO node_usage VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .unwrap();
        let mut task_insert = tx
            .prepare("INSERT INTO task_usage VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")
            .unwrap();
        // Time-major, as reports arrive.
        for at in day_times(now_ms).into_iter().rev() {
            for n in 0..nodes {
                let id = node_id(n);
                let u = node(at);
                insert_node(&mut node_insert, &id, at, &u);
                for i in 0..tasks {
                    let t = task(n, i, at);
                    task_insert
                        .execute(rusqlite::params![
                            id,
                            at,
                            t.task,
                            t.service,
                            t.stack,
                            t.slot,
                            t.cpu_ns as i64,
                            t.memory_bytes as i64,
                            t.memory_limit_bytes.map(|b| b as i64),
                            t.oom_kills.map(|b| b as i64)
                        ])
                        .unwrap();
                }
            }
        }
    }
    {
        // 30 days of sim_chart's 10 replicas on the first node: 1 h at 10 s, 23 h at 1 min,
        // the rest at 1 h.
        let mut times = day_times(now_ms);
        let mut t = *times.last().unwrap() - 3_600_000;
        while t > now_ms - 30 * 86_400_000 {
            times.push(t);
            t -= 3_600_000;
        }
        let mut node_insert = tx
            .prepare("INSERT OR IGNORE INTO node_usage VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .unwrap();
        let mut task_insert = tx
            .prepare(
                "INSERT INTO task_usage VALUES (?1, ?2, ?3, 'sim_chart', 'sim', ?4, ?5, ?6, ?7, 0)",
            )
            .unwrap();
        for at in times {
            let u = node(at);
            insert_node(&mut node_insert, &node_id(0), at, &u);
            for r in 0..10i64 {
                task_insert
                    .execute(rusqlite::params![
                        node_id(0),
                        at,
                        format!("prefill{r:02}yyyyyyyyyyyyyyyy"),
                        (r + 1).to_string(),
                        at * 10_000,
                        (30 + r) << 20,
                        256i64 << 20
                    ])
                    .unwrap();
            }
        }
    }
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
}

/// The 30-day chart query of `sim_chart`, `n` times: (p50, max) in milliseconds, rows.
fn chart_query(store: &Store, now: Timestamp, n: usize) -> (f64, f64, usize) {
    let mut times = Vec::new();
    let mut rows = 0;
    for _ in 0..n {
        let started = Instant::now();
        rows = store
            .service_usage_per_step("sim_chart", now - SignedDuration::from_hours(720), 3600)
            .unwrap()
            .len();
        times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() - 1], rows)
}

/// A thinning pass in steps of at most `step_rows` rows: (sample times deleted, the longest
/// step in seconds, the number of steps).
fn stepped_pass(store: &mut Store, now: Timestamp, step_rows: usize) -> (usize, f64, usize) {
    let mut pass = store.start_usage_thinning(now).unwrap();
    let mut holds = Vec::new();
    loop {
        let started = Instant::now();
        let done = store.thin_usage_step(&mut pass, step_rows).unwrap();
        holds.push(started.elapsed().as_secs_f64());
        if done {
            break;
        }
    }
    holds.sort_by(f64::total_cmp);
    if holds.len() > 1 {
        eprintln!(
            "steps {}: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms, {} over 50 ms",
            holds.len(),
            holds[holds.len() / 2] * 1000.0,
            holds[holds.len() * 9 / 10] * 1000.0,
            holds[holds.len() - 1] * 1000.0,
            holds.iter().filter(|h| **h > 0.05).count()
        );
    }
    (pass.deleted(), holds[holds.len() - 1], holds.len())
}

fn pass(dir: &std::path::Path, nodes: usize, tasks: usize, now_ms: i64) {
    let now = Timestamp::from_millisecond(now_ms).unwrap();
    let db = dir.join(swarmkeeper_store::DB_FILE);
    let size = std::fs::metadata(&db).unwrap().len();
    let mut store = Store::open(dir).expect("store");
    // The server's page cache (`swarmkeeper server` sets 8 MiB); the agent's 512 KiB without.
    if let Ok(kib) = std::env::var("PAGE_CACHE_KIB") {
        store.set_page_cache(kib.parse().unwrap()).unwrap();
    }
    let step_rows: usize = std::env::var("STEP_ROWS").map_or(usize::MAX, |n| n.parse().unwrap());
    let started = Instant::now();
    let (first, first_hold_s, first_steps) = stepped_pass(&mut store, now, step_rows);
    let first_s = started.elapsed().as_secs_f64();
    let (chart_p50, chart_max, chart_rows) = chart_query(&store, now, 50);
    let started = Instant::now();
    for k in 1..=30 {
        for n in 0..nodes {
            let at = now_ms + k * 10_000;
            let report = NodeReport {
                node_id: node_id(n),
                hostname: format!("sim-{n:03}"),
                usage: vec![UsageSample {
                    taken_at: Timestamp::from_millisecond(at).unwrap(),
                    node: Some(node(at)),
                    tasks: (0..tasks).map(|i| task(n, i, at)).collect(),
                }],
                ..NodeReport::default()
            };
            store.record_node_report(&report, now).unwrap();
        }
    }
    let per_report_ms = started.elapsed().as_secs_f64() * 1000.0 / (30 * nodes) as f64;
    let later = now + SignedDuration::from_mins(5);
    let started = Instant::now();
    let (steady, steady_hold_s, steady_steps) = stepped_pass(&mut store, later, step_rows);
    let steady_s = started.elapsed().as_secs_f64();
    println!(
        "{{\"db_bytes\": {size}, \"first_pass_s\": {first_s:.3}, \"first_pass_deleted\": {first}, \
         \"chart_30d_p50_ms\": {chart_p50:.2}, \"chart_30d_max_ms\": {chart_max:.2}, \
         \"chart_rows\": {chart_rows}, \"store_ms_per_report\": {per_report_ms:.3}, \
         \"steady_pass_s\": {steady_s:.3}, \"steady_pass_deleted\": {steady}, \
         \"first_pass_longest_hold_s\": {first_hold_s:.4}, \"first_pass_steps\": {first_steps}, \
         \"steady_pass_longest_hold_s\": {steady_hold_s:.4}, \"steady_pass_steps\": {steady_steps}}}"
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, command, dir, nodes, tasks, now_ms] = &args[..] else {
        eprintln!("usage: thin_pass fill|pass DIR NODES TASKS NOW_MS");
        std::process::exit(2);
    };
    let dir = std::path::Path::new(dir);
    let (nodes, tasks, now_ms) = (
        nodes.parse().unwrap(),
        tasks.parse().unwrap(),
        now_ms.parse().unwrap(),
    );
    match command.as_str() {
        "fill" => fill(dir, nodes, tasks, now_ms),
        "pass" => pass(dir, nodes, tasks, now_ms),
        _ => {
            eprintln!("usage: thin_pass fill|pass DIR NODES TASKS NOW_MS");
            std::process::exit(2);
        }
    }
}
