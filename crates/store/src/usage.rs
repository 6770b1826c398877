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

    /// The most OOM kills any of a task's samples from `since` on counted (the agent's count
    /// for its container), with the memory limit they reported; `None` when no sample of the
    /// task counted kills. One range of the `(service, at_ms)` index.
    pub fn task_oom_kills(
        &self,
        service: &str,
        task: &str,
        since: Timestamp,
    ) -> Result<Option<(u64, Option<u64>)>, StoreError> {
        let mut select = self.wrap(self.conn.prepare_cached(
            "SELECT MAX(oom_kills), MAX(memory_limit_bytes) FROM task_usage
             WHERE service = ?1 AND at_ms >= ?2 AND task = ?3",
        ))?;
        let row = self.wrap(
            select.query_row(params![service, millis(since), task], |row| {
                Ok((row.get::<_, Option<i64>>(0)?, row.get::<_, Option<i64>>(1)?))
            }),
        )?;
        Ok(match row {
            (Some(kills), limit) if kills > 0 => Some((kills as u64, limit.map(|b| b as u64))),
            _ => None,
        })
    }

    /// [`Store::task_oom_kills`] of each task of `service` whose samples from `since` on
    /// counted kills, by task id: the service page's task rows, in one range of the
    /// `(service, at_ms)` index instead of one per task.
    pub fn service_oom_kills(
        &self,
        service: &str,
        since: Timestamp,
    ) -> Result<HashMap<String, (u64, Option<u64>)>, StoreError> {
        let mut select = self.wrap(self.conn.prepare_cached(
            "SELECT task, MAX(oom_kills), MAX(memory_limit_bytes) FROM task_usage
             WHERE service = ?1 AND at_ms >= ?2 AND oom_kills > 0 GROUP BY task",
        ))?;
        let rows = select.query_map(params![service, millis(since)], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<i64>>(2)?,
            ))
        });
        let rows = self.wrap(rows)?;
        let mut kills = HashMap::new();
        for row in rows {
            let (task, count, limit) = self.wrap(row)?;
            kills.insert(task, (count as u64, limit.map(|b| b as u64)));
        }
        Ok(kills)
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
    /// times went. One pass in one go: [`Store::start_usage_thinning`] and
    /// [`Store::thin_usage_step`] are the same pass in short transactions, for a caller that
    /// shares the store (the server).
    ///
    /// Incremental: a pass reads only the node sample times its [`UsageWatermark`] names
    /// (what aged into a coarser tier since the last pass, from the start of its bucket, and
    /// the buckets of samples stored since), and expires by primary-key ranges per node;
    /// what it deletes is what a pass over every sample at the same `now` (to the
    /// millisecond) would delete. The watermark lives in memory: the first pass after
    /// [`Store::open`] reads everything.
    pub fn thin_usage(&mut self, now: Timestamp) -> Result<usize, StoreError> {
        let mut pass = self.start_usage_thinning(now)?;
        while !self.thin_usage_step(&mut pass, usize::MAX)? {}
        Ok(pass.deleted)
    }

    /// Starts a thinning pass at `now` (see [`Store::thin_usage`]): lists the nodes, deletes
    /// nothing. From here on the watermark is the one after this pass, so samples stored
    /// between its steps are looked at by the next pass.
    pub fn start_usage_thinning(&mut self, now: Timestamp) -> Result<UsageThinning, StoreError> {
        let now = from_millis(millis(now));
        let ranges = self.usage_watermark.ranges(now);
        let mut nodes = Vec::new();
        let mut task_nodes = Vec::new();
        self.in_transaction(|tx| {
            nodes = node_ids(tx, "node_usage")?;
            task_nodes = node_ids(tx, "task_usage")?;
            Ok(())
        })?;
        self.usage_watermark = UsageWatermark::after(now);
        Ok(UsageThinning {
            now,
            ranges,
            expire_ms: millis(UsageWatermark::expire_before(now)),
            expire_nodes: nodes.clone(),
            nodes,
            expire_tasks: task_nodes,
            doomed: Vec::new(),
            deleted: 0,
        })
    }

    /// One step of `pass` in one transaction: deletes at most about `max_rows` rows (node and
    /// task samples; at least one sample time with its task samples, or one node's times
    /// read), so the store is held briefly whatever the pass has to do. Returns whether the
    /// pass is done; [`UsageThinning::deleted`] counts as [`Store::thin_usage`] does. After
    /// an error the pass is abandoned and the next one reads everything.
    pub fn thin_usage_step(
        &mut self,
        pass: &mut UsageThinning,
        max_rows: usize,
    ) -> Result<bool, StoreError> {
        let mut done = false;
        let result = self.in_transaction(|tx| {
            let mut rows = 0;
            while rows < max_rows {
                if let Some((node, at)) = pass.doomed.pop() {
                    rows += tx
                        .prepare_cached("DELETE FROM node_usage WHERE node_id = ?1 AND at_ms = ?2")?
                        .execute(params![node, at])?;
                    rows += tx
                        .prepare_cached("DELETE FROM task_usage WHERE node_id = ?1 AND at_ms = ?2")?
                        .execute(params![node, at])?;
                    pass.deleted += 1;
                } else if let Some(node) = pass.nodes.pop() {
                    let mut select = tx.prepare_cached(
                        "SELECT at_ms FROM node_usage
                         WHERE node_id = ?1 AND at_ms >= ?2 AND at_ms < ?3",
                    )?;
                    let mut times = Vec::new();
                    for (from, until) in &pass.ranges {
                        let until = until.map_or(i64::MAX, millis);
                        let found = select
                            .query_map(params![node, millis(*from), until], |row| {
                                row.get::<_, i64>(0)
                            })?;
                        for ms in found {
                            times.push(ms?);
                        }
                    }
                    let at: Vec<Timestamp> = times.iter().map(|ms| from_millis(*ms)).collect();
                    for index in thin_usage(&at, pass.now) {
                        pass.doomed.push((node.clone(), times[index]));
                    }
                    rows += 1;
                } else if let Some(node) = pass.expire_nodes.last() {
                    let (gone, all) =
                        expire(tx, "node_usage", node, pass.expire_ms, max_rows - rows)?;
                    pass.deleted += gone;
                    rows += gone.max(1);
                    if all {
                        pass.expire_nodes.pop();
                    }
                } else if let Some(node) = pass.expire_tasks.last() {
                    let (gone, all) =
                        expire(tx, "task_usage", node, pass.expire_ms, max_rows - rows)?;
                    rows += gone.max(1);
                    if all {
                        pass.expire_tasks.pop();
                    }
                } else {
                    done = true;
                    break;
                }
            }
            Ok(())
        });
        if result.is_err() {
            self.usage_watermark = UsageWatermark::FULL;
        }
        result.map(|()| done)
    }
}

/// A usage thinning pass under way ([`Store::start_usage_thinning`]).
#[derive(Debug)]
pub struct UsageThinning {
    now: Timestamp,
    ranges: Vec<(Timestamp, Option<Timestamp>)>,
    /// Samples taken before this (milliseconds) go, whatever their bucket.
    expire_ms: i64,
    /// Nodes whose sample times in `ranges` are still to be read, the next last.
    nodes: Vec<String>,
    /// Sample times read and to be deleted with their task samples: (node, milliseconds).
    doomed: Vec<(String, i64)>,
    /// Nodes whose node samples older than `expire_ms` may remain.
    expire_nodes: Vec<String>,
    /// Nodes whose task samples older than `expire_ms` may remain.
    expire_tasks: Vec<String>,
    deleted: usize,
}

impl UsageThinning {
    /// Node sample times deleted so far.
    pub fn deleted(&self) -> usize {
        self.deleted
    }
}

/// Deletes at most `limit` (at least one) of `node`'s rows of `table` older than `before_ms`,
/// by a primary-key range: (how many went, whether none remain).
fn expire(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    node: &str,
    before_ms: i64,
    limit: usize,
) -> rusqlite::Result<(usize, bool)> {
    let limit = limit.clamp(1, i64::MAX as usize);
    let gone = tx
        .prepare_cached(&format!(
            "DELETE FROM {table} WHERE rowid IN
                 (SELECT rowid FROM {table} WHERE node_id = ?1 AND at_ms < ?2 LIMIT ?3)"
        ))?
        .execute(params![node, before_ms, limit as i64])?;
    Ok((gone, gone < limit))
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
    fn a_tasks_oom_kills_are_the_most_its_samples_counted() {
        let dir = std::env::temp_dir().join(format!("skstore-oom-{}", std::process::id()));
        let mut store = Store::open(&dir).unwrap();
        let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        let hour_ago = now - SignedDuration::from_hours(1);
        let kills = |store: &mut Store, at: i64, count| {
            let mut s = sample(now + SignedDuration::from_secs(at), 1);
            s.tasks[0].oom_kills = count;
            store
                .in_transaction(|tx| insert_usage(tx, "node1", &[s]))
                .unwrap();
        };
        kills(&mut store, 0, None);
        kills(&mut store, 10, Some(0));
        assert_eq!(
            store.task_oom_kills("shop_web", "k2x9", hour_ago).unwrap(),
            None,
            "the kernel counted no kill"
        );
        kills(&mut store, 20, Some(2));
        kills(&mut store, 30, Some(1));
        assert_eq!(
            store.task_oom_kills("shop_web", "k2x9", hour_ago).unwrap(),
            Some((2, Some(16 << 20)))
        );
        assert_eq!(
            store.task_oom_kills("shop_web", "other", hour_ago).unwrap(),
            None
        );
        assert_eq!(
            store.service_oom_kills("shop_web", hour_ago).unwrap(),
            HashMap::from([("k2x9".to_owned(), (2, Some(16 << 20)))])
        );
        assert!(store
            .service_oom_kills("shop_api", hour_ago)
            .unwrap()
            .is_empty());
        assert_eq!(
            store
                .task_oom_kills("shop_web", "k2x9", now + SignedDuration::from_secs(40))
                .unwrap(),
            None,
            "only samples since the given time"
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
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
        // The same incremental passes in steps of at most 50 rows.
        let mut stepped = Store::in_memory().unwrap();
        let start: Timestamp = "2026-11-26T00:00:03.5Z".parse().unwrap();
        let mut went = (0, 0, 0);
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
                add(&mut stepped, node, &samples);
            }
            went.0 += incremental.thin_usage(now).unwrap();
            let mut thinning = stepped.start_usage_thinning(now).unwrap();
            while !stepped.thin_usage_step(&mut thinning, 50).unwrap() {}
            went.2 += thinning.deleted();
            full.usage_watermark = UsageWatermark::FULL;
            went.1 += full.thin_usage(now).unwrap();
            if pass % 24 == 0 {
                assert_eq!(everything(&incremental), everything(&full), "pass {pass}");
                assert_eq!(everything(&stepped), everything(&full), "pass {pass}");
            }
        }
        assert_eq!(everything(&incremental), everything(&full));
        assert_eq!(everything(&stepped), everything(&full));
        assert_eq!(went.0, went.1);
        assert_eq!(went.2, went.1);
        assert!(went.0 > 10_000, "{went:?}");
        // Twice at the same time: nothing more goes.
        let now = start + SignedDuration::from_mins(5 * 26 * 12);
        assert_eq!(incremental.thin_usage(now).unwrap(), 0);
        full.usage_watermark = UsageWatermark::FULL;
        assert_eq!(full.thin_usage(now).unwrap(), 0);
    }

    /// The server stores reports between a pass's steps: what they bring is looked at by the
    /// next pass, as if they had come before it, and no step holds more than its rows.
    #[test]
    fn samples_stored_between_steps_are_thinned_by_the_next_pass() {
        let mut stepped = Store::in_memory().unwrap();
        let mut full = Store::in_memory().unwrap();
        let start: Timestamp = "2026-11-26T00:00:00Z".parse().unwrap();
        let every_10s = |from: Timestamp, n: i64| -> Vec<UsageSample> {
            (0..n)
                .map(|k| sample(from + SignedDuration::from_secs(10 * k), k as u64))
                .collect()
        };
        // Two hours of 10 s samples on two nodes: the older hour is due to go to 1 a minute.
        for store in [&mut stepped, &mut full] {
            for node in ["node1", "node2"] {
                add(store, node, &every_10s(start, 720));
            }
        }
        let now = start + SignedDuration::from_hours(2);
        let mut pass = stepped.start_usage_thinning(now).unwrap();
        assert!(!stepped.thin_usage_step(&mut pass, 3).unwrap());
        assert_eq!(pass.nodes, ["node1"]);
        // Late samples from an hour and a half ago arrive mid-pass.
        let late: Vec<UsageSample> = (0..6)
            .map(|k| sample(start + SignedDuration::from_secs(1800 + 10 * k + 5), 9))
            .collect();
        // node2 was read in the first step (the nodes go last first).
        add(&mut stepped, "node2", &late);
        while !stepped.thin_usage_step(&mut pass, 3).unwrap() {}
        add(&mut full, "node2", &late);
        let later = now + SignedDuration::from_mins(5);
        stepped.thin_usage(later).unwrap();
        full.usage_watermark = UsageWatermark::FULL;
        full.thin_usage(now).unwrap();
        full.usage_watermark = UsageWatermark::FULL;
        full.thin_usage(later).unwrap();
        assert_eq!(everything(&stepped), everything(&full));
    }
}
