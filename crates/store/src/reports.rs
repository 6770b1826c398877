//! What the server remembers of agent reports: each node's latest report whole, its disk usage
//! over time (one sample per report, thinned by [`swarmkeeper_report::thin`]), and the GC runs
//! agents reported. An agent re-sends runs until a post succeeds, and a post can succeed on the
//! server while the agent sees a timeout, so a run is recorded once per node and start time.
//!
//! Nodes are keyed by [`NodeReport::node_key`]: the Swarm node ID, or `hostname:NAME` for an
//! engine outside a swarm. Sample and receipt times are the server's clock, so that history,
//! thinning and silence all use one clock; a run's start time is the node's. Usage samples
//! go to their own tables (`usage.rs`).

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::types::Type;
use rusqlite::{params, OptionalExtension, Row};
use swarmkeeper_report::{
    thin, DiskSample, NodeReport, ReportedDeletion, ReportedRun, RetentionPolicy,
};

use crate::{from_millis, millis, Store, StoreError};

const REPORT_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS node_reports (
    node_id      TEXT PRIMARY KEY,
    hostname     TEXT NOT NULL,
    received_at  INTEGER NOT NULL,
    report_json  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS disk_samples (
    id              INTEGER PRIMARY KEY,
    node_id         TEXT NOT NULL,
    at_ms           INTEGER NOT NULL,
    used_bytes      INTEGER NOT NULL,
    capacity_bytes  INTEGER NOT NULL,
    reclaimable_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS disk_samples_node_at ON disk_samples (node_id, at_ms);
CREATE TABLE IF NOT EXISTS gc_history (
    id                  INTEGER PRIMARY KEY,
    node_id             TEXT NOT NULL,
    started_at_ms       INTEGER NOT NULL,
    trigger             TEXT NOT NULL,
    usage_before        INTEGER NOT NULL,
    usage_after         INTEGER NOT NULL,
    bytes_freed         INTEGER NOT NULL,
    images_deleted      INTEGER NOT NULL,
    containers_removed  INTEGER NOT NULL,
    outcome             TEXT NOT NULL,
    deleted_json        TEXT NOT NULL,
    UNIQUE (node_id, started_at_ms)
);
";

impl Store {
    pub(crate) fn init_reports(&self) -> Result<(), StoreError> {
        self.wrap(self.conn.execute_batch(REPORT_SCHEMA))?;
        // The forecast's reclaimable bytes (tryout 8 finding 2); older rows had none.
        self.add_column_if_missing(
            "disk_samples",
            "reclaimable_bytes",
            "INTEGER NOT NULL DEFAULT 0",
        )?;
        Ok(())
    }

    /// Stores a report received at `received_at`: it becomes the node's latest, adds a disk
    /// sample, and adds the runs not recorded before. All or nothing.
    pub fn record_node_report(
        &mut self,
        report: &NodeReport,
        received_at: Timestamp,
    ) -> Result<(), StoreError> {
        let key = report.node_key();
        // The latest report is kept without its usage samples, which have their own tables.
        let json = if report.usage.is_empty() {
            serde_json::to_string(report)
        } else {
            serde_json::to_string(&NodeReport {
                usage: Vec::new(),
                ..report.clone()
            })
        }
        .expect("a node report always serialises");
        for sample in &report.usage {
            self.usage_watermark.lower(sample.taken_at);
        }
        self.in_transaction(|tx| {
            tx.prepare_cached(
                "INSERT INTO node_reports (node_id, hostname, received_at, report_json)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node_id) DO UPDATE SET hostname = excluded.hostname,
                     received_at = excluded.received_at, report_json = excluded.report_json",
            )?
            .execute(params![key, report.hostname, millis(received_at), json])?;
            tx.prepare_cached(
                "INSERT INTO disk_samples (node_id, at_ms, used_bytes, capacity_bytes,
                     reclaimable_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                key,
                millis(received_at),
                report.disk.used_bytes as i64,
                report.disk.filesystem.capacity_bytes as i64,
                report.reclaimable_bytes as i64
            ])?;
            let mut run_insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO gc_history (node_id, started_at_ms, trigger, usage_before,
                     usage_after, bytes_freed, images_deleted, containers_removed, outcome,
                     deleted_json)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?;
            for run in &report.gc_runs {
                run_insert.execute(params![
                    key,
                    millis(run.started_at),
                    run.trigger,
                    run.usage_percent_before,
                    run.usage_percent_after,
                    run.bytes_freed as i64,
                    run.deleted.len() as i64,
                    run.containers_removed as i64,
                    run.outcome,
                    serde_json::to_string(&run.deleted).expect("deletions always serialise"),
                ])?;
            }
            crate::usage::insert_usage(tx, &key, &report.usage)?;
            Ok(())
        })
    }

    /// Deletes all the server holds of node `node_key`: its latest report, disk samples, GC
    /// history and usage samples. All or nothing.
    pub fn forget_node(&mut self, node_key: &str) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            for table in [
                "node_reports",
                "disk_samples",
                "gc_history",
                "node_usage",
                "task_usage",
            ] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE node_id = ?1"),
                    [node_key],
                )?;
            }
            Ok(())
        })
    }

    /// Every node's latest report and when it was received, by hostname.
    pub fn latest_node_reports(&self) -> Result<Vec<(NodeReport, Timestamp)>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT report_json, received_at FROM node_reports ORDER BY hostname, node_id",
        ))?;
        let rows = self.wrap(stmt.query_map([], report_row))?;
        self.wrap(rows.collect())
    }

    /// Takes the volume `name` out of node `node_key`'s latest report, once it was removed
    /// there, so that the volumes page does not list it until the agent's next breakdown.
    /// Whether the report listed it.
    pub fn forget_reported_volume(
        &mut self,
        node_key: &str,
        name: &str,
    ) -> Result<bool, StoreError> {
        let Some((mut report, _)) = self.node_report(node_key)? else {
            return Ok(false);
        };
        let Some(volumes) = report.volumes.as_mut() else {
            return Ok(false);
        };
        let before = volumes.len();
        volumes.retain(|v| v.name != name);
        if volumes.len() == before {
            return Ok(false);
        }
        let json = serde_json::to_string(&report).expect("a node report always serialises");
        self.wrap(self.conn.execute(
            "UPDATE node_reports SET report_json = ?2 WHERE node_id = ?1",
            params![node_key, json],
        ))?;
        Ok(true)
    }

    /// One node's latest report and when it was received.
    pub fn node_report(
        &self,
        node_key: &str,
    ) -> Result<Option<(NodeReport, Timestamp)>, StoreError> {
        self.wrap(
            self.conn
                .query_row(
                    "SELECT report_json, received_at FROM node_reports WHERE node_id = ?1",
                    [node_key],
                    report_row,
                )
                .optional(),
        )
    }

    /// A node's disk samples taken at or after `since`, oldest first.
    pub fn disk_samples(
        &self,
        node_key: &str,
        since: Timestamp,
    ) -> Result<Vec<DiskSample>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT at_ms, used_bytes, capacity_bytes, reclaimable_bytes FROM disk_samples
             WHERE node_id = ?1 AND at_ms >= ?2 ORDER BY at_ms, id",
        ))?;
        let rows = self.wrap(stmt.query_map(params![node_key, millis(since)], |row| {
            Ok(DiskSample {
                at: from_millis(row.get(0)?),
                used_bytes: row.get::<_, i64>(1)? as u64,
                capacity_bytes: row.get::<_, i64>(2)? as u64,
                reclaimable_bytes: row.get::<_, i64>(3)? as u64,
            })
        }))?;
        self.wrap(rows.collect())
    }

    /// A node's most recent GC runs, newest first.
    pub fn node_gc_history(
        &self,
        node_key: &str,
        limit: usize,
    ) -> Result<Vec<ReportedRun>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT started_at_ms, trigger, usage_before, usage_after, bytes_freed,
                    containers_removed, outcome, deleted_json
             FROM gc_history WHERE node_id = ?1 ORDER BY started_at_ms DESC LIMIT ?2",
        ))?;
        let rows = self.wrap(stmt.query_map(
            params![node_key, i64::try_from(limit).unwrap_or(i64::MAX)],
            |row| run_row(row, 0),
        ))?;
        self.wrap(rows.collect())
    }

    /// The most recent GC runs of all nodes together, newest first, each with its node's key:
    /// one query, whatever the number of nodes.
    pub fn recent_reported_gc_runs(
        &self,
        limit: usize,
    ) -> Result<Vec<(String, ReportedRun)>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT node_id, started_at_ms, trigger, usage_before, usage_after, bytes_freed,
                    containers_removed, outcome, deleted_json
             FROM gc_history ORDER BY started_at_ms DESC LIMIT ?1",
        ))?;
        let rows = self.wrap(
            stmt.query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
                Ok((row.get(0)?, run_row(row, 1)?))
            }),
        )?;
        self.wrap(rows.collect())
    }

    /// When each node's newest GC run started, by node key: one query for every node.
    pub fn last_gc_runs(&self) -> Result<HashMap<String, Timestamp>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT node_id, MAX(started_at_ms) FROM gc_history GROUP BY node_id",
        ))?;
        let rows = self.wrap(stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, from_millis(row.get(1)?)))
        }))?;
        self.wrap(rows.collect())
    }

    /// Bytes each node's GC runs started at or after `since` freed (e.g. "freed today"), by
    /// node key, in one query; nodes without such a run are absent. Each sum saturates at
    /// `u64::MAX`: added here rather than with SQL's `sum()`, which fails the whole query on
    /// overflow, so one absurd row would break every page that shows the sum.
    pub fn bytes_freed_by_node_since(
        &self,
        since: Timestamp,
    ) -> Result<HashMap<String, u64>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT node_id, bytes_freed FROM gc_history WHERE started_at_ms >= ?1",
        ))?;
        let rows = self.wrap(stmt.query_map(params![millis(since)], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        }))?;
        let mut sums: HashMap<String, u64> = HashMap::new();
        for row in rows {
            let (node, bytes) = self.wrap(row)?;
            let sum = sums.entry(node).or_default();
            // `as` gives back the u64 the row was written from.
            *sum = sum.saturating_add(bytes as u64);
        }
        Ok(sums)
    }

    /// Thins every node's disk history as `policy` says; returns how many samples went.
    pub fn thin_disk_samples(
        &mut self,
        now: Timestamp,
        policy: &RetentionPolicy,
    ) -> Result<usize, StoreError> {
        let mut deleted = 0;
        self.in_transaction(|tx| {
            let nodes: Vec<String> = tx
                .prepare("SELECT DISTINCT node_id FROM disk_samples")?
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut select = tx.prepare_cached(
                "SELECT id, at_ms, used_bytes, capacity_bytes, reclaimable_bytes FROM disk_samples
                 WHERE node_id = ?1 ORDER BY at_ms, id",
            )?;
            let mut delete = tx.prepare_cached("DELETE FROM disk_samples WHERE id = ?1")?;
            for node in nodes {
                let (ids, samples): (Vec<i64>, Vec<DiskSample>) = select
                    .query_map([&node], |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            DiskSample {
                                at: from_millis(row.get(1)?),
                                used_bytes: row.get::<_, i64>(2)? as u64,
                                capacity_bytes: row.get::<_, i64>(3)? as u64,
                                reclaimable_bytes: row.get::<_, i64>(4)? as u64,
                            },
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?
                    .into_iter()
                    .unzip();
                for index in thin(&samples, now, policy) {
                    deleted += delete.execute([ids[index]])?;
                }
            }
            Ok(())
        })?;
        Ok(deleted)
    }

    /// Forgets GC runs started before `before` (for the disk history's horizon, say); returns
    /// how many went.
    pub fn forget_gc_history_before(&mut self, before: Timestamp) -> Result<usize, StoreError> {
        self.wrap(self.conn.execute(
            "DELETE FROM gc_history WHERE started_at_ms < ?1",
            [millis(before)],
        ))
    }
}

impl Store {
    /// Forgets GC runs dated after `after`: no clock is that far ahead, so they came from
    /// reports stored before reports were checked, and as every node's newest run they would
    /// stay its "last GC" for good. Returns how many went.
    pub fn forget_gc_history_after(&mut self, after: Timestamp) -> Result<usize, StoreError> {
        self.wrap(self.conn.execute(
            "DELETE FROM gc_history WHERE started_at_ms > ?1",
            [millis(after)],
        ))
    }
}

fn report_row(row: &Row<'_>) -> rusqlite::Result<(NodeReport, Timestamp)> {
    Ok((json_column(row, 0)?, from_millis(row.get(1)?)))
}

/// A JSON column, where JSON that no longer reads (written by another version) is an error
/// naming the column rather than a silently missing row.
fn json_column<T: serde::de::DeserializeOwned>(row: &Row<'_>, index: usize) -> rusqlite::Result<T> {
    let text: String = row.get(index)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(e)))
}

/// A `gc_history` row's run, its columns from `at` on: started_at_ms, trigger, usage_before,
/// usage_after, bytes_freed, containers_removed, outcome, deleted_json.
fn run_row(row: &Row<'_>, at: usize) -> rusqlite::Result<ReportedRun> {
    let deleted: Vec<ReportedDeletion> = json_column(row, at + 7)?;
    Ok(ReportedRun {
        started_at: from_millis(row.get(at)?),
        trigger: row.get(at + 1)?,
        usage_percent_before: row.get(at + 2)?,
        usage_percent_after: row.get(at + 3)?,
        bytes_freed: row.get::<_, i64>(at + 4)? as u64,
        deleted,
        containers_removed: row.get::<_, i64>(at + 5)? as u64,
        outcome: row.get(at + 6)?,
        // Not kept in this table yet: build cache freed, space trigger, headroom.
        ..ReportedRun::default()
    })
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use swarmkeeper_gc::{DiskReport, DiskUsageInput, Filesystem};

    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn report(node_id: &str, hostname: &str, used: u64) -> NodeReport {
        let fs = Filesystem {
            path: "/var/lib/docker".into(),
            capacity_bytes: 1_000,
            available_bytes: 1_000 - used,
        };
        NodeReport {
            node_id: node_id.into(),
            hostname: hostname.into(),
            engine_version: "20.10.24+dfsg1".into(),
            reported_at: t("2026-11-26T12:00:00Z"),
            agent_version: "0.1.0".into(),
            interval_seconds: 30,
            disk: DiskReport::new(fs, &DiskUsageInput::default()),
            disk_breakdown_at: None,
            high_threshold_percent: 85,
            low_threshold_percent: 80,
            images: vec![],
            gc_runs: vec![],
            truncated: false,
            ..NodeReport::default()
        }
    }

    /// The forecast's reclaimable bytes (tryout 8 finding 2) are kept with each sample, and
    /// a database from before them opens with 0 for its old samples.
    #[test]
    fn disk_samples_keep_the_reclaimable_bytes_and_old_databases_gain_them() {
        let dir = std::env::temp_dir().join(format!("sk-store-reclaim-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(crate::DB_FILE);
        {
            let old = rusqlite::Connection::open(&path).unwrap();
            old.execute_batch(
                "CREATE TABLE disk_samples (id INTEGER PRIMARY KEY, node_id TEXT NOT NULL,
                     at_ms INTEGER NOT NULL, used_bytes INTEGER NOT NULL,
                     capacity_bytes INTEGER NOT NULL);
                 INSERT INTO disk_samples (node_id, at_ms, used_bytes, capacity_bytes)
                     VALUES ('n1', 1795003200000, 100, 1000);",
            )
            .unwrap();
        }
        let mut store = Store::open(&dir).unwrap();
        let mut with = report("n1", "alpha", 300);
        with.reclaimable_bytes = 120;
        store
            .record_node_report(&with, t("2026-11-26T12:01:00Z"))
            .unwrap();
        let samples = store.disk_samples("n1", Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(
            samples
                .iter()
                .map(|s| (s.used_bytes, s.reclaimable_bytes))
                .collect::<Vec<_>>(),
            [(100, 0), (300, 120)]
        );
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn run(started_at: &str, bytes_freed: u64) -> ReportedRun {
        ReportedRun {
            started_at: t(started_at),
            trigger: "pull".into(),
            usage_percent_before: 90,
            usage_percent_after: 78,
            bytes_freed,
            deleted: vec![ReportedDeletion {
                id: "sha256:aa".into(),
                repo_tags: vec!["app:1".into()],
                reason: "space".into(),
                bytes: bytes_freed,
                ..ReportedDeletion::default()
            }],
            containers_removed: 2,
            outcome: "ok".into(),
            ..ReportedRun::default()
        }
    }

    #[test]
    fn the_latest_report_of_each_node_is_kept() {
        let mut store = Store::in_memory().unwrap();
        store
            .record_node_report(&report("n2", "beta", 100), t("2026-11-26T12:00:01Z"))
            .unwrap();
        store
            .record_node_report(&report("n1", "alpha", 200), t("2026-11-26T12:00:02Z"))
            .unwrap();
        store
            .record_node_report(&report("n1", "alpha", 300), t("2026-11-26T12:00:32Z"))
            .unwrap();
        let latest = store.latest_node_reports().unwrap();
        let summary: Vec<_> = latest
            .iter()
            .map(|(r, at)| (r.hostname.as_str(), r.disk.used_bytes, *at))
            .collect();
        assert_eq!(
            summary,
            [
                ("alpha", 300, t("2026-11-26T12:00:32Z")),
                ("beta", 100, t("2026-11-26T12:00:01Z")),
            ]
        );
        let (one, at) = store.node_report("n1").unwrap().unwrap();
        assert_eq!(
            (one, at),
            (report("n1", "alpha", 300), t("2026-11-26T12:00:32Z"))
        );
        assert!(store.node_report("n3").unwrap().is_none());
    }

    #[test]
    fn an_engine_outside_a_swarm_is_known_by_its_hostname() {
        let mut store = Store::in_memory().unwrap();
        store
            .record_node_report(&report("", "laptop", 100), t("2026-11-26T12:00:00Z"))
            .unwrap();
        store
            .record_node_report(&report("", "desktop", 100), t("2026-11-26T12:00:00Z"))
            .unwrap();
        assert_eq!(store.latest_node_reports().unwrap().len(), 2);
        assert!(store.node_report("hostname:laptop").unwrap().is_some());
        assert_eq!(
            store
                .disk_samples("hostname:desktop", t("2026-11-26T00:00:00Z"))
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn each_report_adds_a_disk_sample_at_its_receipt() {
        let mut store = Store::in_memory().unwrap();
        for (minute, used) in [(0, 100), (1, 150), (2, 120)] {
            let at = t("2026-11-26T12:00:00Z") + SignedDuration::from_mins(minute);
            store
                .record_node_report(&report("n1", "alpha", used), at)
                .unwrap();
        }
        let samples = store.disk_samples("n1", t("2026-11-26T12:01:00Z")).unwrap();
        assert_eq!(
            samples,
            [
                DiskSample {
                    at: t("2026-11-26T12:01:00Z"),
                    used_bytes: 150,
                    capacity_bytes: 1_000,
                    reclaimable_bytes: 0,
                },
                DiskSample {
                    at: t("2026-11-26T12:02:00Z"),
                    used_bytes: 120,
                    capacity_bytes: 1_000,
                    reclaimable_bytes: 0,
                },
            ]
        );
        assert!(store
            .disk_samples("n2", t("2026-11-26T00:00:00Z"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_run_sent_twice_counts_once() {
        let mut store = Store::in_memory().unwrap();
        let mut first = report("n1", "alpha", 100);
        first.gc_runs = vec![run("2026-11-26T11:00:00Z", 500)];
        store
            .record_node_report(&first, t("2026-11-26T11:00:05Z"))
            .unwrap();
        // The agent did not see the answer to the first post and sends the run again.
        let mut second = report("n1", "alpha", 100);
        second.gc_runs = vec![
            run("2026-11-26T11:00:00Z", 500),
            run("2026-11-26T11:30:00Z", 250),
        ];
        store
            .record_node_report(&second, t("2026-11-26T11:30:05Z"))
            .unwrap();
        let freed = |since| store.bytes_freed_by_node_since(t(since)).unwrap();
        assert_eq!(freed("2026-11-26T00:00:00Z")["n1"], 750);
        assert_eq!(freed("2026-11-26T11:10:00Z")["n1"], 250);
        assert!(!freed("2026-11-26T00:00:00Z").contains_key("n2"));
        let history = store.node_gc_history("n1", 10).unwrap();
        assert_eq!(
            history,
            [
                run("2026-11-26T11:30:00Z", 250),
                run("2026-11-26T11:00:00Z", 500)
            ]
        );
        assert_eq!(store.node_gc_history("n1", 1).unwrap().len(), 1);
        let last = store.last_gc_runs().unwrap();
        assert_eq!(
            last,
            HashMap::from([("n1".to_owned(), t("2026-11-26T11:30:00Z"))])
        );
        let recent = store.recent_reported_gc_runs(1).unwrap();
        assert_eq!(
            recent,
            [("n1".to_owned(), run("2026-11-26T11:30:00Z", 250))]
        );
    }

    #[test]
    fn thinning_works_node_by_node() {
        let mut store = Store::in_memory().unwrap();
        let now = t("2026-11-26T12:00:00Z");
        // Two reports a minute for two hours on two nodes, and one report 40 days ago.
        for node in ["n1", "n2"] {
            for half_minutes in 0..240 {
                let at = now - SignedDuration::from_secs(30 * half_minutes);
                store
                    .record_node_report(&report(node, node, 100), at)
                    .unwrap();
            }
        }
        store
            .record_node_report(
                &report("n1", "n1", 100),
                now - SignedDuration::from_hours(40 * 24),
            )
            .unwrap();
        let deleted = store
            .thin_disk_samples(now, &RetentionPolicy::default())
            .unwrap();
        assert_eq!(deleted, 2 * 119 + 1);
        let since = now - SignedDuration::from_hours(24 * 60);
        for node in ["n1", "n2"] {
            assert_eq!(store.disk_samples(node, since).unwrap().len(), 121);
        }
        assert_eq!(
            store
                .thin_disk_samples(now, &RetentionPolicy::default())
                .unwrap(),
            0
        );
    }

    #[test]
    fn sums_of_absurd_rows_saturate_and_future_rows_can_be_forgotten() {
        let mut store = Store::in_memory().unwrap();
        // As a report stored before reports were checked could leave them: runs dated next
        // century freeing nearly 2^64 bytes (stored as negative i64) or 2^62 each.
        let mut r = report("n1", "alpha", 100);
        r.gc_runs = vec![
            run("2126-01-01T00:00:00Z", u64::MAX - 5),
            run("2126-01-02T00:00:00Z", 1 << 62),
            run("2126-01-03T00:00:00Z", 1 << 62),
            run("2126-01-04T00:00:00Z", 1 << 62),
            run("2026-11-26T11:00:00Z", 500),
        ];
        store
            .record_node_report(&r, t("2026-11-26T12:00:00Z"))
            .unwrap();
        let today = t("2026-11-26T00:00:00Z");
        assert_eq!(
            store.bytes_freed_by_node_since(today).unwrap()["n1"],
            u64::MAX
        );
        assert_eq!(
            store
                .forget_gc_history_after(t("2026-11-27T12:00:00Z"))
                .unwrap(),
            4
        );
        assert_eq!(store.bytes_freed_by_node_since(today).unwrap()["n1"], 500);
        assert_eq!(
            store.node_gc_history("n1", 1).unwrap()[0].started_at,
            t("2026-11-26T11:00:00Z")
        );
    }

    #[test]
    fn old_gc_history_can_be_forgotten() {
        let mut store = Store::in_memory().unwrap();
        let mut r = report("n1", "alpha", 100);
        r.gc_runs = vec![
            run("2026-10-01T00:00:00Z", 1),
            run("2026-11-26T00:00:00Z", 2),
        ];
        store
            .record_node_report(&r, t("2026-11-26T00:00:05Z"))
            .unwrap();
        assert_eq!(
            store
                .forget_gc_history_before(t("2026-10-27T00:00:00Z"))
                .unwrap(),
            1
        );
        assert_eq!(store.node_gc_history("n1", 10).unwrap().len(), 1);
    }
}
