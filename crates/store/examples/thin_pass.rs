//! Times the server's usage thinning pass on a database holding a day of usage (the volume
//! `bench/server-usage.sh` simulates: NODES nodes × TASKS task containers sampled every 10 s,
//! already thinned to 1 h at 10 s and 23 h at 1 min). Run by `bench/thin-pass.sh`.
//!
//!   thin_pass fill DIR NODES TASKS NOW_MS   writes the day into DIR's database
//!   thin_pass pass DIR NODES TASKS NOW_MS   one pass at NOW (the first after a start), five
//!                                           minutes of reports from every node, one pass at
//!                                           NOW + 5 min (the steady state); prints JSON

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
                node_insert
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
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
}

fn pass(dir: &std::path::Path, nodes: usize, tasks: usize, now_ms: i64) {
    let now = Timestamp::from_millisecond(now_ms).unwrap();
    let db = dir.join(swarmkeeper_store::DB_FILE);
    let size = std::fs::metadata(&db).unwrap().len();
    let mut store = Store::open(dir).expect("store");
    let started = Instant::now();
    let first = store.thin_usage(now).unwrap();
    let first_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for n in 0..nodes {
        let usage: Vec<UsageSample> = (1..=30)
            .map(|k| {
                let at = now_ms + k * 10_000;
                UsageSample {
                    taken_at: Timestamp::from_millisecond(at).unwrap(),
                    node: Some(node(at)),
                    tasks: (0..tasks).map(|i| task(n, i, at)).collect(),
                }
            })
            .collect();
        let report = NodeReport {
            node_id: node_id(n),
            hostname: format!("sim-{n:03}"),
            usage,
            ..NodeReport::default()
        };
        store.record_node_report(&report, now).unwrap();
    }
    let insert_s = started.elapsed().as_secs_f64();
    let later = now + SignedDuration::from_mins(5);
    let started = Instant::now();
    let steady = store.thin_usage(later).unwrap();
    let steady_s = started.elapsed().as_secs_f64();
    println!(
        "{{\"db_bytes\": {size}, \"first_pass_s\": {first_s:.3}, \"first_pass_deleted\": {first}, \
         \"five_minutes_of_reports_s\": {insert_s:.3}, \"steady_pass_s\": {steady_s:.3}, \
         \"steady_pass_deleted\": {steady}}}"
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
