//! The agent's memory, kept in one SQLite file under the state directory so that it survives
//! restarts: when each image was first seen and last used, which images each Swarm service ran
//! (newest first, for the rollback reserve), and a log of GC runs. The kubelet keeps this in
//! memory and forgets it on restart.

mod alerts;
mod backup;
mod deploys;
mod registries;
mod report_secrets;
mod reports;
mod sealed;
mod usage;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

pub use alerts::{AlertRecord, StoredChannel, StoredSilence, StoredTaskEnd, ALERT_HISTORY_KEPT};
pub use backup::{backup, Backup};
pub use deploys::{
    by_sentence, split_by_sentence, what_and_summary, DeployKind, DeployOutcome, DeployRecord,
    FileDigest, LockHolder, ObjectKind, ObjectRevision, ServiceRevision, StackLock,
};
pub use registries::{AutoDeployEvent, StoredRegistry, EVENTS_KEPT};
pub use report_secrets::ReportSecretUse;
pub use sealed::{SealedTable, SealedValue};
pub use swarmkeeper_report::{DiskSample, NodeReport, ReportedRun, RetentionPolicy};
pub use usage::UsageThinning;

/// The database file inside the state directory.
pub const DB_FILE: &str = "swarmkeeper.db";

/// Versions of a service remembered beyond what the rollback reserve can ask for.
const SERVICE_HISTORY_LIMIT: i64 = 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("no database at {path}: is this the server's state directory (--state-dir)?")]
    Missing { path: PathBuf },
    #[error("cannot write the backup to {path}: {reason}")]
    Backup { path: PathBuf, reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageRecord {
    pub first_seen: Timestamp,
    pub last_used: Option<Timestamp>,
}

/// One GC pass as the agent or `gc run` carried it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcRun {
    pub started_at: Timestamp,
    pub trigger: String,
    pub usage_before: u8,
    pub usage_after: u8,
    pub images_deleted: u64,
    pub bytes_freed: u64,
    pub containers_removed: u64,
    /// `ok`, `shortfall` or `error`.
    pub outcome: String,
    /// Bytes the engine reclaimed from the build cache.
    pub build_cache_freed_bytes: u64,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Where the next usage thinning pass looks (`usage.rs`); lowered by every stored sample.
    usage_watermark: swarmkeeper_report::UsageWatermark,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS images (
    id          TEXT PRIMARY KEY,
    first_seen  INTEGER NOT NULL,
    last_used   INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS service_images (
    service     TEXT NOT NULL,
    image_id    TEXT NOT NULL,
    last_run    INTEGER NOT NULL,
    PRIMARY KEY (service, image_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gc_runs (
    id                  INTEGER PRIMARY KEY,
    started_at          INTEGER NOT NULL,
    trigger             TEXT NOT NULL,
    usage_before        INTEGER NOT NULL,
    usage_after         INTEGER NOT NULL,
    images_deleted      INTEGER NOT NULL,
    bytes_freed         INTEGER NOT NULL,
    containers_removed  INTEGER NOT NULL,
    outcome             TEXT NOT NULL
);
";

impl Store {
    /// Opens (creating if needed) the database in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|source| StoreError::CreateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join(DB_FILE);
        let conn = Connection::open(&path).map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        Store::init(conn, path)
    }

    /// The database of `state_dir` if one is there, without creating anything: for reading
    /// what an earlier version left (the local deploy history) on machines that may never
    /// have had one.
    pub fn open_existing(state_dir: &Path) -> Result<Option<Store>, StoreError> {
        if state_dir.join(DB_FILE).is_file() {
            Store::open(state_dir).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A database that lives only as long as the value: for `gc plan` without a state directory.
    pub fn in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| StoreError::Sqlite {
            path: path.clone(),
            source,
        })?;
        Store::init(conn, path)
    }

    fn init(conn: Connection, path: PathBuf) -> Result<Store, StoreError> {
        let store = Store {
            conn,
            path,
            usage_watermark: swarmkeeper_report::UsageWatermark::FULL,
        };
        // WAL keeps readers (the CLI) from blocking the agent; a small page cache keeps the
        // agent's resident memory low.
        store.wrap(store.conn.pragma_update(None, "journal_mode", "WAL"))?;
        store.wrap(store.conn.pragma_update(None, "synchronous", "NORMAL"))?;
        store.wrap(store.conn.pragma_update(None, "cache_size", -512))?;
        store.wrap(store.conn.busy_timeout(std::time::Duration::from_secs(5)))?;
        store.wrap(store.conn.execute_batch(SCHEMA))?;
        store.add_column_if_missing(
            "gc_runs",
            "build_cache_freed",
            "INTEGER NOT NULL DEFAULT 0",
        )?;
        store.init_deploys()?;
        store.init_reports()?;
        store.init_registries()?;
        store.init_usage()?;
        store.init_alerts()?;
        store.init_sealed()?;
        store.init_report_secrets()?;
        Ok(store)
    }

    /// Lets SQLite keep up to `kib` KiB of pages in memory (512 KiB from [`Store::open`], which
    /// keeps the agent small). The server gives more: each report touches a page per service
    /// in the `(service, at_ms)` index and one per node in the primary keys, and a 30-day
    /// chart reads a megabyte of index; with 512 KiB those pages were read back from the
    /// operating system again and again.
    pub fn set_page_cache(&self, kib: u32) -> Result<(), StoreError> {
        self.wrap(self.conn.pragma_update(None, "cache_size", -i64::from(kib)))
    }

    /// Leaves the write-ahead log as it is when the connection closes, instead of copying it
    /// into the database file first: for one-shot commands (`gc snapshot`, `gc plan`) that
    /// record what they observed. That checkpoint costs four `fsync`s, a fifth of a second
    /// on a busy node, after the command's work is done. Nothing is lost: the next
    /// connection reads the log (and checkpoints it once it passes 1,000 pages). What a
    /// crash may lose is unchanged: with `synchronous=NORMAL` a commit is not synced anyway,
    /// so the last commits before a power cut can go, never the database's consistency; for
    /// a record of observations (first seen, last used), which the next observation makes
    /// again, that is enough.
    pub fn skip_checkpoint_on_close(&self) -> Result<(), StoreError> {
        self.wrap(self.conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        ))
        .map(drop)
    }

    /// Adds a column to a table created by an older build (`CREATE TABLE IF NOT EXISTS` leaves
    /// an existing table as it was); `true` when it was missing, so that a migration of the
    /// old rows runs once.
    fn add_column_if_missing(
        &self,
        table: &str,
        column: &str,
        definition: &str,
    ) -> Result<bool, StoreError> {
        let present: bool = self.wrap(self.conn.query_row(
            "SELECT count(*) > 0 FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |row| row.get(0),
        ))?;
        if !present {
            self.wrap(self.conn.execute_batch(&format!(
                "ALTER TABLE {table} ADD COLUMN {column} {definition}"
            )))?;
        }
        Ok(!present)
    }

    fn wrap<T>(&self, result: rusqlite::Result<T>) -> Result<T, StoreError> {
        result.map_err(|source| StoreError::Sqlite {
            path: self.path.clone(),
            source,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn images(&self) -> Result<HashMap<String, ImageRecord>, StoreError> {
        let mut stmt = self.wrap(
            self.conn
                .prepare_cached("SELECT id, first_seen, last_used FROM images"),
        )?;
        let rows = self.wrap(stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                ImageRecord {
                    first_seen: from_millis(row.get(1)?),
                    last_used: row.get::<_, Option<i64>>(2)?.map(from_millis),
                },
            ))
        }))?;
        self.wrap(rows.collect())
    }

    /// How many images the store remembers (those present on the node at the last look).
    pub fn image_count(&self) -> Result<u64, StoreError> {
        self.wrap(
            self.conn
                .query_row("SELECT count(*) FROM images", [], |row| {
                    row.get::<_, i64>(0)
                }),
        )
        .map(|n| n as u64)
    }

    pub fn image(&self, id: &str) -> Result<Option<ImageRecord>, StoreError> {
        self.wrap(
            self.conn
                .query_row(
                    "SELECT first_seen, last_used FROM images WHERE id = ?1",
                    [id],
                    |row| {
                        Ok(ImageRecord {
                            first_seen: from_millis(row.get(0)?),
                            last_used: row.get::<_, Option<i64>>(1)?.map(from_millis),
                        })
                    },
                )
                .optional(),
        )
    }

    /// Records images seen for the first time; an image already known keeps its first-seen time.
    pub fn record_first_seen<'a>(
        &mut self,
        images: impl IntoIterator<Item = (&'a str, Timestamp)>,
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            let mut stmt =
                tx.prepare_cached("INSERT OR IGNORE INTO images (id, first_seen) VALUES (?1, ?2)")?;
            for (id, at) in images {
                stmt.execute(params![id, millis(at)])?;
            }
            Ok(())
        })
    }

    /// Marks images as used at the given times; a later use wins, an earlier one is ignored. An
    /// image not seen before is first seen at its use.
    pub fn record_used<'a>(
        &mut self,
        uses: impl IntoIterator<Item = (&'a str, Timestamp)>,
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO images (id, first_seen, last_used) VALUES (?1, ?2, ?2)
                 ON CONFLICT (id) DO UPDATE
                 SET last_used = excluded.last_used
                 WHERE excluded.last_used > coalesce(last_used, 0)",
            )?;
            for (id, at) in uses {
                stmt.execute(params![id, millis(at)])?;
            }
            Ok(())
        })
    }

    /// Records that `service` ran `image_id` at `at` (its task container's creation).
    pub fn record_service_images<'a>(
        &mut self,
        runs: impl IntoIterator<Item = (&'a str, &'a str, Timestamp)>,
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            let mut upsert = tx.prepare_cached(
                "INSERT INTO service_images (service, image_id, last_run) VALUES (?1, ?2, ?3)
                 ON CONFLICT (service, image_id) DO UPDATE
                 SET last_run = excluded.last_run
                 WHERE excluded.last_run > last_run",
            )?;
            let mut trim = tx.prepare_cached(
                "DELETE FROM service_images WHERE service = ?1 AND image_id NOT IN (
                     SELECT image_id FROM service_images WHERE service = ?1
                     ORDER BY last_run DESC, image_id LIMIT ?2)",
            )?;
            for (service, image_id, at) in runs {
                if upsert.execute(params![service, image_id, millis(at)])? > 0 {
                    trim.execute(params![service, SERVICE_HISTORY_LIMIT])?;
                }
            }
            Ok(())
        })
    }

    /// Each service's images, most recently run first.
    pub fn service_histories(&self) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT service, image_id FROM service_images ORDER BY service, last_run DESC, image_id",
        ))?;
        let rows = self.wrap(stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        }))?;
        let mut histories: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in rows {
            let (service, image) = self.wrap(row)?;
            histories.entry(service).or_default().push(image);
        }
        Ok(histories)
    }

    /// Forgets deleted images. Service history keeps them: their place in a service's order
    /// still decides which of the remaining versions are the newest.
    pub fn forget_images<'a>(
        &mut self,
        ids: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            let mut stmt = tx.prepare_cached("DELETE FROM images WHERE id = ?1")?;
            for id in ids {
                stmt.execute([id])?;
            }
            Ok(())
        })
    }

    pub fn record_gc_run(&mut self, run: &GcRun) -> Result<(), StoreError> {
        self.wrap(self.conn.execute(
            "INSERT INTO gc_runs (started_at, trigger, usage_before, usage_after, images_deleted,
                                  bytes_freed, containers_removed, outcome, build_cache_freed)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                millis(run.started_at),
                run.trigger,
                run.usage_before,
                run.usage_after,
                run.images_deleted as i64,
                run.bytes_freed as i64,
                run.containers_removed as i64,
                run.outcome,
                run.build_cache_freed_bytes as i64
            ],
        ))?;
        // The log is for recent history; a node that collects every 30 s keeps about a week.
        self.wrap(self.conn.execute(
            "DELETE FROM gc_runs WHERE id <= (SELECT max(id) FROM gc_runs) - 20000",
            [],
        ))?;
        Ok(())
    }

    /// The most recent runs, newest first.
    pub fn recent_gc_runs(&self, limit: usize) -> Result<Vec<GcRun>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT started_at, trigger, usage_before, usage_after, images_deleted, bytes_freed,
                    containers_removed, outcome, build_cache_freed
             FROM gc_runs ORDER BY id DESC LIMIT ?1",
        ))?;
        let rows = self.wrap(stmt.query_map([limit as i64], |row| {
            Ok(GcRun {
                started_at: from_millis(row.get(0)?),
                trigger: row.get(1)?,
                usage_before: row.get(2)?,
                usage_after: row.get(3)?,
                images_deleted: row.get::<_, i64>(4)? as u64,
                bytes_freed: row.get::<_, i64>(5)? as u64,
                containers_removed: row.get::<_, i64>(6)? as u64,
                outcome: row.get(7)?,
                build_cache_freed_bytes: row.get::<_, i64>(8)? as u64,
            })
        }))?;
        self.wrap(rows.collect())
    }

    /// Runs `work` in one transaction: a burst of events costs one fsync, not one per row.
    fn in_transaction(
        &mut self,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        let result = self.conn.transaction().and_then(|tx| {
            work(&tx)?;
            tx.commit()
        });
        self.wrap(result)
    }
}

fn millis(at: Timestamp) -> i64 {
    at.as_millisecond()
}

fn from_millis(ms: i64) -> Timestamp {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn first_seen_is_kept_and_last_used_only_moves_forward() {
        let mut store = Store::in_memory().unwrap();
        store
            .record_first_seen([("sha256:a", t("2026-11-26T10:00:00Z"))])
            .unwrap();
        store
            .record_first_seen([("sha256:a", t("2026-11-26T11:00:00Z"))])
            .unwrap();
        store
            .record_used([("sha256:a", t("2026-11-26T12:00:00Z"))])
            .unwrap();
        store
            .record_used([("sha256:a", t("2026-11-26T11:30:00Z"))])
            .unwrap();
        let rec = store.image("sha256:a").unwrap().unwrap();
        assert_eq!(rec.first_seen, t("2026-11-26T10:00:00Z"));
        assert_eq!(rec.last_used, Some(t("2026-11-26T12:00:00Z")));
    }

    #[test]
    fn a_use_of_an_unknown_image_is_also_its_first_sighting() {
        let mut store = Store::in_memory().unwrap();
        store
            .record_used([("sha256:b", t("2026-11-26T12:00:00Z"))])
            .unwrap();
        let rec = store.images().unwrap()["sha256:b"];
        assert_eq!(rec.first_seen, t("2026-11-26T12:00:00Z"));
        assert_eq!(store.image_count().unwrap(), 1);
    }

    #[test]
    fn service_history_is_newest_first_and_bounded() {
        let mut store = Store::in_memory().unwrap();
        let ids: Vec<String> = (0..30).map(|i| format!("sha256:{i:02}")).collect();
        let base = t("2026-11-26T00:00:00Z");
        let runs: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                (
                    "web",
                    id.as_str(),
                    base + jiff::SignedDuration::from_mins(i as i64),
                )
            })
            .collect();
        store.record_service_images(runs).unwrap();
        // A rollback to version 28 makes it the newest again.
        store
            .record_service_images([(
                "web",
                "sha256:28",
                base + jiff::SignedDuration::from_hours(5),
            )])
            .unwrap();
        let history = &store.service_histories().unwrap()["web"];
        assert_eq!(history.len(), SERVICE_HISTORY_LIMIT as usize);
        assert_eq!(&history[..3], ["sha256:28", "sha256:29", "sha256:27"]);
    }

    #[test]
    fn state_survives_reopening() {
        let dir =
            std::env::temp_dir().join(format!("swarmkeeper-store-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let mut store = Store::open(&dir).unwrap();
            store
                .record_used([("sha256:c", t("2026-11-26T12:00:00Z"))])
                .unwrap();
            store
                .record_gc_run(&GcRun {
                    started_at: t("2026-11-26T12:00:00Z"),
                    trigger: "interval".into(),
                    usage_before: 90,
                    usage_after: 79,
                    images_deleted: 3,
                    bytes_freed: 1234,
                    containers_removed: 1,
                    outcome: "ok".into(),
                    build_cache_freed_bytes: 99,
                })
                .unwrap();
        }
        let store = Store::open(&dir).unwrap();
        assert!(store.image("sha256:c").unwrap().is_some());
        let run = &store.recent_gc_runs(10).unwrap()[0];
        assert_eq!((run.bytes_freed, run.build_cache_freed_bytes), (1234, 99));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_run_log_of_an_older_build_gains_the_build_cache_column() {
        let dir =
            std::env::temp_dir().join(format!("swarmkeeper-store-old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        {
            let conn = Connection::open(dir.join(DB_FILE)).unwrap();
            conn.execute_batch(
                "CREATE TABLE gc_runs (id INTEGER PRIMARY KEY, started_at INTEGER NOT NULL,
                 trigger TEXT NOT NULL, usage_before INTEGER NOT NULL, usage_after INTEGER NOT NULL,
                 images_deleted INTEGER NOT NULL, bytes_freed INTEGER NOT NULL,
                 containers_removed INTEGER NOT NULL, outcome TEXT NOT NULL);
                 INSERT INTO gc_runs VALUES (1, 0, 'interval', 90, 80, 1, 5, 0, 'ok');",
            )
            .unwrap();
        }
        let store = Store::open(&dir).unwrap();
        let runs = store.recent_gc_runs(10).unwrap();
        assert_eq!(
            (runs[0].bytes_freed, runs[0].build_cache_freed_bytes),
            (5, 0)
        );
        drop(store);
        Store::open(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn forgetting_an_image_keeps_the_service_order() {
        let mut store = Store::in_memory().unwrap();
        store
            .record_service_images([
                ("web", "sha256:1", t("2026-11-26T10:00:00Z")),
                ("web", "sha256:2", t("2026-11-26T11:00:00Z")),
            ])
            .unwrap();
        store
            .record_used([("sha256:1", t("2026-11-26T10:00:00Z"))])
            .unwrap();
        store.forget_images(["sha256:1"]).unwrap();
        assert!(store.image("sha256:1").unwrap().is_none());
        assert_eq!(
            store.service_histories().unwrap()["web"],
            ["sha256:2", "sha256:1"]
        );
    }

    #[test]
    fn an_unwritable_state_dir_is_a_clear_error() {
        let err = Store::open(Path::new("/proc/swarmkeeper-cannot-exist"))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("/proc/swarmkeeper-cannot-exist"),
            "{err}"
        );
    }
}
