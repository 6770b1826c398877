//! The resource usage agents report: one row per node and sample, one per task and sample,
//! thinned by [`swarmkeeper_report::thin_usage`]. Sample times are the node's clock (rates
//! need the interval the node measured); a sample sent twice (a post that succeeded while the
//! agent saw a timeout) is stored once.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::params;
use swarmkeeper_report::{thin_usage, NodeUsage, TaskUsage, UsageSample, UsageWatermark};

use crate::{from_millis, millis, Store, StoreError};

const USAGE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS node_usage (
    node_id                 TEXT NOT NULL,
    at_ms                   INTEGER NOT NULL,
    cpu_busy_ms             INTEGER NOT NULL,
    cpu_total_ms            INTEGER NOT NULL,
    cpus                    INTEGER NOT NULL,
    memory_total_bytes      INTEGER NOT NULL,
    memory_available_bytes  INTEGER NOT NULL,
    PRIMARY KEY (node_id, at_ms)
);
CREATE TABLE IF NOT EXISTS task_usage (
    node_id             TEXT NOT NULL,
    at_ms               INTEGER NOT NULL,
    task                TEXT NOT NULL,
    service             TEXT NOT NULL,
    stack               TEXT NOT NULL,
    slot                TEXT NOT NULL,
    cpu_ns              INTEGER NOT NULL,
    memory_bytes        INTEGER NOT NULL,
    memory_limit_bytes  INTEGER,
    oom_kills           INTEGER,
    PRIMARY KEY (node_id, at_ms, task)
);
CREATE INDEX IF NOT EXISTS task_usage_service_at ON task_usage (service, at_ms);
";

impl Store {
    pub(crate) fn init_usage(&self) -> Result<(), StoreError> {
        self.wrap(self.conn.execute_batch(USAGE_SCHEMA))
    }

    /// The node's samples from `since` on, oldest first.
    pub fn node_usage(
        &self,
        node_key: &str,
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, NodeUsage)>, StoreError> {
        let mut select = self.wrap(self.conn.prepare_cached(
            "SELECT at_ms, cpu_busy_ms, cpu_total_ms, cpus, memory_total_bytes,
                 memory_available_bytes
             FROM node_usage WHERE node_id = ?1 AND at_ms >= ?2 ORDER BY at_ms",
        ))?;
        let rows = select.query_map(params![node_key, millis(since)], |row| {
            Ok((
                from_millis(row.get(0)?),
                NodeUsage {
                    cpu_busy_ms: row.get::<_, i64>(1)? as u64,
                    cpu_total_ms: row.get::<_, i64>(2)? as u64,
                    cpus: row.get(3)?,
                    memory_total_bytes: row.get::<_, i64>(4)? as u64,
                    memory_available_bytes: row.get::<_, i64>(5)? as u64,
                },
            ))
        });
        self.wrap(rows.and_then(|rows| rows.collect()))
    }

    /// A service's task samples from `since` on for a chart of `step_seconds` per point:
    /// of each task, only the newest sample of each clock bucket (the one
    /// `swarmkeeper_report::service_points` would keep), in no particular order. `stack` and
    /// `slot` come back empty.
    ///
    /// One range of the `(service, at_ms)` index, oldest first, kept per bucket here rather
    /// than by SQLite's `GROUP BY`: its temporary B-tree cost three times the read (a 30-day
    /// chart reads 24,360 rows of 10 replicas and keeps 7,200), and each task's id is
    /// allocated once, not once a row.
    pub fn service_usage_per_step(
        &self,
        service: &str,
        since: Timestamp,
        step_seconds: i64,
    ) -> Result<Vec<(Timestamp, TaskUsage)>, StoreError> {
        let step_ms = step_seconds.max(1) * 1000;
        let mut select = self.wrap(self.conn.prepare_cached(
            "SELECT at_ms, task, cpu_ns, memory_bytes, memory_limit_bytes, oom_kills
             FROM task_usage WHERE service = ?1 AND at_ms >= ?2 ORDER BY at_ms",
        ))?;
        let mut rows = self.wrap(select.query(params![service, millis(since)]))?;
        // Each kept sample: when, whose (an index into `tasks`), what.
        let mut kept: Vec<(i64, usize, TaskUsage)> = Vec::new();
        // Per task id: its index and the bucket and index in `kept` of its newest sample.
        let mut tasks: HashMap<String, (usize, i64, usize)> = HashMap::new();
        while let Some(row) = self.wrap(rows.next())? {
            let at_ms: i64 = self.wrap(row.get(0))?;
            let task = self.wrap(row.get_ref(1).and_then(|v| Ok(v.as_str()?)))?;
            let bucket = at_ms.div_euclid(step_ms);
            let usage = TaskUsage {
                task: String::new(),
                service: String::new(),
                stack: String::new(),
                slot: String::new(),
                cpu_ns: self.wrap(row.get::<_, i64>(2))? as u64,
                memory_bytes: self.wrap(row.get::<_, i64>(3))? as u64,
                memory_limit_bytes: self.wrap(row.get::<_, Option<i64>>(4))?.map(|b| b as u64),
                oom_kills: self.wrap(row.get::<_, Option<i64>>(5))?.map(|n| n as u64),
            };
            match tasks.get_mut(task) {
                // Rows come oldest first: a later row of the same bucket is newer.
                Some((id, last, index)) if *last == bucket => kept[*index] = (at_ms, *id, usage),
                Some((id, last, index)) => {
                    *last = bucket;
                    *index = kept.len();
                    kept.push((at_ms, *id, usage));
                }
                None => {
                    let id = tasks.len();
                    tasks.insert(task.to_owned(), (id, bucket, kept.len()));
                    kept.push((at_ms, id, usage));
                }
            }
        }
        let mut ids = vec![String::new(); tasks.len()];
        for (task, (id, _, _)) in tasks {
            ids[id] = task;
        }
        Ok(kept
            .into_iter()
            .map(|(at_ms, id, usage)| {
                let usage = TaskUsage {
                    task: ids[id].clone(),
                    service: service.to_owned(),
                    ..usage
                };
                (from_millis(at_ms), usage)
            })
            .collect())
    }

    /// The task samples of the given nodes from `since` on, in no particular order: the
    /// overview's latest usage. One indexed range per node (the primary key starts with the
    /// node), so the cost follows the recent rows, not the 30 days kept.
    pub fn recent_task_usage(
        &self,
        node_keys: &[String],
        since: Timestamp,
    ) -> Result<Vec<(Timestamp, TaskUsage)>, StoreError> {
        let mut select = self.wrap(self.conn.prepare_cached(
            "SELECT at_ms, task, service, stack, slot, cpu_ns, memory_bytes,
                 memory_limit_bytes, oom_kills
             FROM task_usage WHERE node_id = ?1 AND at_ms >= ?2",
        ))?;
        let mut all = Vec::new();
        for node in node_keys {
            let rows = select.query_map(params![node, millis(since)], |row| {
                Ok((
                    from_millis(row.get(0)?),
                    TaskUsage {
                        task: row.get(1)?,
                        service: row.get(2)?,
                        stack: row.get(3)?,
                        slot: row.get(4)?,
                        cpu_ns: row.get::<_, i64>(5)? as u64,
                        memory_bytes: row.get::<_, i64>(6)? as u64,
                        memory_limit_bytes: row.get::<_, Option<i64>>(7)?.map(|b| b as u64),
                        oom_kills: row.get::<_, Option<i64>>(8)?.map(|n| n as u64),
                    },
                ))
            });
            let rows: Vec<_> = self.wrap(rows.and_then(|rows| rows.collect()))?;
            all.extend(rows);
        }
        Ok(all)
    }

    /// Thins every node's usage history per [`swarmkeeper_report::USAGE_RETENTION`]: the
    /// node's sample times decide, and the task samples of a time go with it (task samples
    /// without a node sample go once older than the last tier). Returns how many node sample
    /// times went.
    ///
    /// Incremental: a pass reads only the node sample times its [`UsageWatermark`] names
    /// (what aged into a coarser tier since the last pass, from the start of its bucket, and
    /// the buckets of samples stored since), and expires by one primary-key range per node;
    /// what it deletes is what a pass over every sample at the same `now` (to the
    /// millisecond) would delete. The watermark lives in memory: the first pass after
    /// [`Store::open`] reads everything.
    pub fn thin_usage(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        let now = from_millis(millis(now));
        let ranges = self.usage_watermark.ranges(now);
        let expire = millis(UsageWatermark::expire_before(now));
        let mut deleted = 0;
        self.in_transaction(|tx| {
            let mut select = tx.prepare_cached(
                "SELECT at_ms FROM node_usage WHERE node_id = ?1 AND at_ms >= ?2 AND at_ms < ?3",
            )?;
            let mut delete_node =
                tx.prepare_cached("DELETE FROM node_usage WHERE node_id = ?1 AND at_ms = ?2")?;
            let mut delete_tasks =
                tx.prepare_cached("DELETE FROM task_usage WHERE node_id = ?1 AND at_ms = ?2")?;
            for node in node_ids(tx, "node_usage")? {
                let mut times = Vec::new();
                for (from, until) in &ranges {
                    let until = until.map_or(i64::MAX, millis);
                    let rows = select.query_map(params![node, millis(*from), until], |row| {
                        row.get::<_, i64>(0)
                    })?;
                    for ms in rows {
                        times.push(ms?);
                    }
                }
                let at: Vec<Timestamp> = times.iter().map(|ms| from_millis(*ms)).collect();
                for index in thin_usage(&at, now) {
                    delete_node.execute(params![node, times[index]])?;
                    delete_tasks.execute(params![node, times[index]])?;
                    deleted += 1;
                }
                deleted += tx
                    .prepare_cached("DELETE FROM node_usage WHERE node_id = ?1 AND at_ms < ?2")?
                    .execute(params![node, expire])?;
            }
            for node in node_ids(tx, "task_usage")? {
                tx.prepare_cached("DELETE FROM task_usage WHERE node_id = ?1 AND at_ms < ?2")?
                    .execute(params![node, expire])?;
            }
            Ok(())
        })?;
        self.usage_watermark = UsageWatermark::after(now);
        Ok(deleted)
    }
}

/// The distinct nodes of a usage table, one primary-key seek each (not a scan of its rows).
fn node_ids(tx: &rusqlite::Transaction<'_>, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut next = tx.prepare_cached(&format!(
        "SELECT min(node_id) FROM {table} WHERE node_id > ?1"
    ))?;
    let mut nodes: Vec<String> = Vec::new();
    let mut after = String::new();
    // The empty key sorts first; no report has it (`NodeReport::node_key`), but it is looked for.
    let empty: bool = tx
        .prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM {table} WHERE node_id = '')"
        ))?
        .query_row([], |row| row.get(0))?;
    if empty {
        nodes.push(String::new());
    }
    while let Some(node) = next.query_row([&after], |row| row.get::<_, Option<String>>(0))? {
        after.clone_from(&node);
        nodes.push(node);
    }
    Ok(nodes)
}

/// Adds a report's samples within the caller's transaction.
pub(crate) fn insert_usage(
    tx: &rusqlite::Transaction<'_>,
    node_key: &str,
    samples: &[UsageSample],
) -> rusqlite::Result<()> {
    let mut node_insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO node_usage (node_id, at_ms, cpu_busy_ms, cpu_total_ms, cpus,
             memory_total_bytes, memory_available_bytes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let mut task_insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO task_usage (node_id, at_ms, task, service, stack, slot, cpu_ns,
             memory_bytes, memory_limit_bytes, oom_kills)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?;
    // Validated reports keep every figure within i64 (`swarmkeeper_report::validate_report`).
    for sample in samples {
        let at = millis(sample.taken_at);
        if let Some(node) = &sample.node {
            node_insert.execute(params![
                node_key,
                at,
                node.cpu_busy_ms as i64,
                node.cpu_total_ms as i64,
                node.cpus,
                node.memory_total_bytes as i64,
                node.memory_available_bytes as i64,
            ])?;
        }
        for task in &sample.tasks {
            task_insert.execute(params![
                node_key,
                at,
                task.task,
                task.service,
                task.stack,
                task.slot,
                task.cpu_ns as i64,
                task.memory_bytes as i64,
                task.memory_limit_bytes.map(|b| b as i64),
                task.oom_kills.map(|n| n as i64),
            ])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn sample(at: Timestamp, cpu_ns: u64) -> UsageSample {
        UsageSample {
            taken_at: at,
            node: Some(NodeUsage {
                cpu_busy_ms: 10,
                cpu_total_ms: 40,
                cpus: 2,
                memory_total_bytes: 1 << 30,
                memory_available_bytes: 1 << 29,
            }),
            tasks: vec![TaskUsage {
                task: "k2x9".into(),
                service: "shop_web".into(),
                stack: "shop".into(),
                slot: "1".into(),
                cpu_ns,
                memory_bytes: 4096,
                memory_limit_bytes: Some(16 << 20),
                oom_kills: None,
            }],
        }
    }

    #[test]
    fn samples_are_stored_once_read_back_and_thinned() {
        let dir = std::env::temp_dir().join(format!("skstore-usage-{}", std::process::id()));
        let mut store = Store::open(&dir).unwrap();
        let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        // Two hours of samples every 10 s, sent twice over.
        let samples: Vec<UsageSample> = (0..720)
            .map(|n| {
                sample(
                    now - SignedDuration::from_secs(10 * n),
                    1000 * (720 - n as u64),
                )
            })
            .collect();
        for _ in 0..2 {
            store
                .in_transaction(|tx| insert_usage(tx, "node1", &samples))
                .unwrap();
        }
        let hour_ago = now - SignedDuration::from_hours(1);
        assert_eq!(store.node_usage("node1", hour_ago).unwrap().len(), 361);
        let mut tasks = store
            .service_usage_per_step("shop_web", hour_ago, 10)
            .unwrap();
        tasks.sort_by_key(|(at, _)| *at);
        assert_eq!(tasks.len(), 361);
        assert_eq!(tasks[0].1.cpu_ns, samples[360].tasks[0].cpu_ns);
        assert_eq!(tasks[0].1.memory_limit_bytes, Some(16 << 20));
        assert!(store
            .service_usage_per_step("other", hour_ago, 10)
            .unwrap()
            .is_empty());
        // One a minute over the hour, each the newest of its minute.
        let per_minute = store
            .service_usage_per_step("shop_web", hour_ago, 60)
            .unwrap();
        assert!(
            (60..=61).contains(&per_minute.len()),
            "{}",
            per_minute.len()
        );
        assert!(per_minute
            .iter()
            .all(|(at, _)| at.as_second() % 60 == 50 || *at == now || *at == hour_ago));
        let recent = store
            .recent_task_usage(
                &["node1".into(), "node2".into()],
                now - SignedDuration::from_secs(15),
            )
            .unwrap();
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].1.task, "k2x9");

        // The older hour goes to one a minute: 60 of its 359 samples stay.
        let went = store.thin_usage(now).unwrap();
        let all = store.node_usage("node1", Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(720 - went, all.len());
        assert!((420..=422).contains(&all.len()), "{}", all.len());
        assert_eq!(
            store
                .service_usage_per_step("shop_web", Timestamp::UNIX_EPOCH, 10)
                .unwrap()
                .len(),
            all.len()
        );
        assert_eq!(store.thin_usage(now).unwrap(), 0);
        drop(store);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn add(store: &mut Store, node: &str, samples: &[UsageSample]) {
        for sample in samples {
            store.usage_watermark.lower(sample.taken_at);
        }
        store
            .in_transaction(|tx| insert_usage(tx, node, samples))
            .unwrap();
    }

    /// Every node sample's key and every task sample's key.
    type Keys = (Vec<(String, i64)>, Vec<(String, i64, String)>);

    fn everything(store: &Store) -> Keys {
        let nodes = store
            .conn
            .prepare("SELECT node_id, at_ms FROM node_usage ORDER BY 1, 2")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let tasks = store
            .conn
            .prepare("SELECT node_id, at_ms, task FROM task_usage ORDER BY 1, 2, 3")
            .unwrap()
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        (nodes, tasks)
    }

    /// 26 hours of two nodes sampling every 10 s (one with a late hour, one whose samples lack
    /// the node's figures now and then), a housekeeping pass every 5 minutes: the incremental
    /// passes leave exactly what passes over every sample leave, and delete as many.
    #[test]
    fn incremental_thinning_equals_full_thinning() {
        let mut incremental = Store::in_memory().unwrap();
        let mut full = Store::in_memory().unwrap();
        let start: Timestamp = "2026-11-26T00:00:03.5Z".parse().unwrap();
        let mut went = (0, 0);
        for pass in 1..=26 * 12 {
            let now = start + SignedDuration::from_mins(5 * pass);
            for (node, skew) in [("node1", 0), ("node2", 4_700)] {
                let mut samples: Vec<UsageSample> = (0..30)
                    .map(|n| {
                        let at = now - SignedDuration::from_millis(skew + 10_000 * n);
                        let mut s = sample(at, (pass * 100 + n) as u64);
                        if node == "node2" && n % 7 == 0 {
                            s.node = None;
                        }
                        s
                    })
                    .collect();
                // node1 could not report for an hour, then sends that hour late.
                if node == "node1" && pass % 40 == 0 {
                    samples.extend(
                        (0..12).map(|n| sample(now - SignedDuration::from_mins(60 + 5 * n), 1)),
                    );
                }
                add(&mut incremental, node, &samples);
                add(&mut full, node, &samples);
            }
            went.0 += incremental.thin_usage(now).unwrap();
            full.usage_watermark = UsageWatermark::FULL;
            went.1 += full.thin_usage(now).unwrap();
            if pass % 24 == 0 {
                assert_eq!(everything(&incremental), everything(&full), "pass {pass}");
            }
        }
        assert_eq!(everything(&incremental), everything(&full));
        assert_eq!(went.0, went.1);
        assert!(went.0 > 10_000, "{went:?}");
        // Twice at the same time: nothing more goes.
        let now = start + SignedDuration::from_mins(5 * 26 * 12);
        assert_eq!(incremental.thin_usage(now).unwrap(), 0);
        full.usage_watermark = UsageWatermark::FULL;
        assert_eq!(full.thin_usage(now).unwrap(), 0);
    }
}
