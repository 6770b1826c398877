//! The resource usage agents report: one row per node and sample, one per task and sample,
//! thinned by [`swarmkeeper_report::thin_usage`]. Sample times are the node's clock (rates
//! need the interval the node measured); a sample sent twice (a post that succeeded while the
//! agent saw a timeout) is stored once.

use jiff::Timestamp;
use rusqlite::params;
use swarmkeeper_report::{thin_usage, NodeUsage, TaskUsage, UsageSample, USAGE_RETENTION};

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
    /// `swarmkeeper_report::service_points` would keep), grouped by SQLite so a 30-day chart
    /// reads one row per replica and hour rather than every stored sample. `stack` and `slot`
    /// come back empty.
    pub fn service_usage_per_step(
        &self,
        service: &str,
        since: Timestamp,
        step_seconds: i64,
    ) -> Result<Vec<(Timestamp, TaskUsage)>, StoreError> {
        // A bare column next to MAX() comes from the row holding the maximum (SQLite).
        let mut select = self.wrap(self.conn.prepare_cached(
            "SELECT MAX(at_ms), task, cpu_ns, memory_bytes, memory_limit_bytes, oom_kills
             FROM task_usage WHERE service = ?1 AND at_ms >= ?2
             GROUP BY task, at_ms / ?3",
        ))?;
        let rows = select.query_map(
            params![service, millis(since), step_seconds.max(1) * 1000],
            |row| {
                Ok((
                    from_millis(row.get(0)?),
                    TaskUsage {
                        task: row.get(1)?,
                        service: service.to_owned(),
                        stack: String::new(),
                        slot: String::new(),
                        cpu_ns: row.get::<_, i64>(2)? as u64,
                        memory_bytes: row.get::<_, i64>(3)? as u64,
                        memory_limit_bytes: row.get::<_, Option<i64>>(4)?.map(|b| b as u64),
                        oom_kills: row.get::<_, Option<i64>>(5)?.map(|n| n as u64),
                    },
                ))
            },
        );
        self.wrap(rows.and_then(|rows| rows.collect()))
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
    /// without a node sample go once older than the last tier). Returns how many sample
    /// times went.
    pub fn thin_usage(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        let mut deleted = 0;
        self.in_transaction(|tx| {
            let times: Vec<(String, i64)> = tx
                .prepare("SELECT node_id, at_ms FROM node_usage ORDER BY node_id, at_ms")?
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut delete_node =
                tx.prepare_cached("DELETE FROM node_usage WHERE node_id = ?1 AND at_ms = ?2")?;
            let mut delete_tasks =
                tx.prepare_cached("DELETE FROM task_usage WHERE node_id = ?1 AND at_ms = ?2")?;
            for node in times.chunk_by(|a, b| a.0 == b.0) {
                let at: Vec<Timestamp> = node.iter().map(|(_, ms)| from_millis(*ms)).collect();
                for index in thin_usage(&at, now) {
                    let (node_id, ms) = &node[index];
                    delete_node.execute(params![node_id, ms])?;
                    delete_tasks.execute(params![node_id, ms])?;
                    deleted += 1;
                }
            }
            let (oldest, _) = USAGE_RETENTION[USAGE_RETENTION.len() - 1];
            tx.execute(
                "DELETE FROM task_usage WHERE at_ms < ?1",
                [millis(now - oldest)],
            )?;
            Ok(())
        })?;
        Ok(deleted)
    }
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
}
