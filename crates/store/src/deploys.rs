//! Deploy history: one revision per deploy or rollback of a stack, numbered from 1 per stack,
//! with who ran it, the files' digests, each changed service's spec before and after (JSON as
//! sent to the engine), and the outcome. Swarm keeps one previous spec per service; this keeps
//! them all. Also a per-stack lock, so that two deploys of one stack from this state directory
//! do not interleave.
//!
//! The deploy crate reads and writes this through its `History` trait; the record types here
//! are that history's data, serialisable for other homes of it.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::{from_millis, millis, Store, StoreError};

const DEPLOY_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deploys (
    id          INTEGER PRIMARY KEY,
    stack       TEXT NOT NULL,
    revision    INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    by          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    files       TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    summary     TEXT NOT NULL DEFAULT '',
    UNIQUE (stack, revision)
);
CREATE TABLE IF NOT EXISTS deploy_locks (
    stack       TEXT PRIMARY KEY,
    token       TEXT NOT NULL,
    holder      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    since       INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deploy_exports (
    cluster     TEXT PRIMARY KEY,
    at          INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deploy_services (
    deploy_id   INTEGER NOT NULL REFERENCES deploys(id),
    service     TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    outcome     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (deploy_id, service)
) WITHOUT ROWID;
";

/// A lock whose holder cannot be checked (another process that may still run) is taken over
/// after this long, so that a deploy killed without unlocking does not block the stack for ever.
const LOCK_EXPIRY: jiff::SignedDuration = jiff::SignedDuration::from_hours(2);

swarmkeeper_units::words! {
    /// What a revision did.
    pub enum DeployKind {
        /// Deployed stack files.
        Deploy => "deploy",
        /// Re-applied an earlier revision.
        Rollback => "rollback",
        /// Rolled one service out to the digest its followed tag moved to.
        AutoDeploy => "auto-deploy",
        /// Services changed in place from the dashboard (a rotated secret or config).
        Edit => "edit",
    }
}

swarmkeeper_units::words! {
    /// How a revision ended.
    pub enum DeployOutcome {
        /// Not finished yet, or its process died before it could say.
        Running => "running",
        /// Every changed service converged.
        Succeeded => "succeeded",
        /// Nothing needed changing.
        Unchanged => "unchanged",
        /// A service failed and nothing was changed that needed putting back.
        Failed => "failed",
        /// A service failed and every changed service was put back.
        RolledBack => "rolled back",
        /// Its process died before it ended (`kill -9`, an OOM kill, a lost node): the stack
        /// may be half-applied. The history in the swarm reads a revision without an end whose lock
        /// is gone as interrupted; one left `running` in a local history is imported as such.
        Interrupted => "interrupted",
    }
}

/// A file of a deploy and the SHA-256 of its content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
    /// The file as deployed, where the history keeps it (the swarm's does; the SQLite file
    /// never did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// One service in a revision. `before`/`after` are JSON specs; `None` before means the deploy
/// created the service, `None` after that it removed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRevision {
    pub service: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// `converged`, `rolled back`, `unchanged`, …
    pub outcome: String,
}

swarmkeeper_units::words! {
    /// Which kind of Swarm object an [`ObjectRevision`] is.
    pub enum ObjectKind {
        Network => "network",
        Secret => "secret",
        Config => "config",
    }
}

/// A network, secret or config the services of a revision used, as it was then: what a
/// rollback to the revision creates again when it is gone. `spec` is the create body as JSON
/// (a secret's without its data: Swarm never gives that back).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRevision {
    pub kind: ObjectKind,
    /// The id the revision's service specs name it by.
    pub id: String,
    pub name: String,
    pub spec: String,
}

/// A stack's deploy lock, held until [`Store::unlock_stack`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StackLock {
    pub stack: String,
    /// Tells this holder's lock from a later one's.
    pub token: String,
}

/// Who holds a stack's deploy lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockHolder {
    pub holder: String,
    pub since: Timestamp,
}

/// One deploy (or rollback) of a stack.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRecord {
    pub stack: String,
    pub revision: u64,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Who made it: a user (`alice`), a CI job, `auto-deploy`.
    pub by: String,
    /// What they did, when the deploy was not a plain deploy or rollback of a file: `edited in
    /// the dashboard`, `rotated secret db → db.v2 in the dashboard`. Revisions written before
    /// it was recorded apart said it in `by` ("edited in the dashboard by alice"); reading them
    /// splits that sentence once ([`split_by_sentence`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub kind: DeployKind,
    pub files: Vec<FileDigest>,
    pub outcome: DeployOutcome,
    pub summary: String,
    pub services: Vec<ServiceRevision>,
    /// The networks, secrets and configs its services used (recorded by the history in the
    /// swarm since it kept them; empty for older revisions and the local history).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objects: Vec<ObjectRevision>,
}

impl DeployRecord {
    /// Who made the revision and what they did, as one phrase: `alice`, or `edited in the
    /// dashboard by alice`.
    pub fn by_sentence(&self) -> String {
        by_sentence(&self.by, self.action.as_deref())
    }
}

/// What a revision did when it was more than a deploy or rollback of files (`edited in the
/// dashboard`), then its summary, as a table's Summary column says it next to a Who column.
pub fn what_and_summary(what: Option<&str>, summary: &str) -> String {
    what.into_iter()
        .chain(Some(summary).filter(|s| !s.is_empty()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// `who` alone, or `what by who`: how a revision's maker reads in one phrase.
pub fn by_sentence(who: &str, what: Option<&str>) -> String {
    match what {
        Some(what) => format!("{what} by {who}"),
        None => who.to_owned(),
    }
}

/// Who and what of a revision recorded before they were kept apart, when `by` held both in
/// one sentence that ends with its user: `edited in the dashboard by alice` is `alice` and
/// `edited in the dashboard`; a plain name (`alice`, `ci`, `auto-deploy`) is who alone.
pub fn split_by_sentence(by: &str) -> (String, Option<String>) {
    match by.rsplit_once(" by ") {
        Some((what, who)) if !what.trim().is_empty() && !who.trim().is_empty() => {
            (who.to_owned(), Some(what.to_owned()))
        }
        _ => (by.to_owned(), None),
    }
}

impl Store {
    pub(crate) fn init_deploys(&self) -> Result<(), StoreError> {
        self.wrap(self.conn.execute_batch(DEPLOY_SCHEMA))?;
        if self.add_column_if_missing("deploys", "action", "TEXT")? {
            self.split_old_by()?;
        }
        Ok(())
    }

    /// Once, when the `action` column is added to a file written before it: each row's `by`
    /// sentence split into who and what, in one transaction.
    fn split_old_by(&self) -> Result<(), StoreError> {
        let rows: Vec<(i64, String)> = {
            let mut stmt = self.wrap(self.conn.prepare("SELECT id, by FROM deploys"))?;
            let rows = self.wrap(stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?))))?;
            self.wrap(rows.collect())?
        };
        let tx = self.wrap(self.conn.unchecked_transaction())?;
        for (id, by) in rows {
            if let (who, Some(what)) = split_by_sentence(&by) {
                self.wrap(tx.execute(
                    "UPDATE deploys SET by = ?1, action = ?2 WHERE id = ?3",
                    params![who, what, id],
                ))?;
            }
        }
        self.wrap(tx.commit())
    }

    /// Records the start of a deploy and returns its revision number.
    pub fn begin_deploy(
        &self,
        stack: &str,
        by: &str,
        action: Option<&str>,
        kind: &DeployKind,
        files: &[FileDigest],
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let files_text = files
            .iter()
            .map(|f| format!("{}  {}", f.sha256, f.path))
            .collect::<Vec<_>>()
            .join("\n");
        let revision: i64 = self.wrap(self.conn.query_row(
            "SELECT COALESCE(MAX(revision), 0) + 1 FROM deploys WHERE stack = ?1",
            params![stack],
            |row| row.get(0),
        ))?;
        self.wrap(self.conn.execute(
            "INSERT INTO deploys (stack, revision, started_at, by, action, kind, files, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running')",
            params![
                stack,
                revision,
                millis(at),
                by,
                action,
                kind.as_str(),
                files_text
            ],
        ))?;
        Ok(revision as u64)
    }

    /// Records how a deploy ended and what it did to each service.
    pub fn finish_deploy(
        &self,
        stack: &str,
        revision: u64,
        outcome: &DeployOutcome,
        summary: &str,
        services: &[ServiceRevision],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let id = self.deploy_id(stack, revision)?;
        self.wrap(self.conn.execute(
            "UPDATE deploys SET finished_at = ?1, outcome = ?2, summary = ?3 WHERE id = ?4",
            params![millis(at), outcome.as_str(), summary, id],
        ))?;
        for s in services {
            self.wrap(self.conn.execute(
                "INSERT OR REPLACE INTO deploy_services (deploy_id, service, before, after, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, s.service, s.before, s.after, s.outcome],
            ))?;
        }
        Ok(())
    }

    fn deploy_id(&self, stack: &str, revision: u64) -> Result<i64, StoreError> {
        self.wrap(self.conn.query_row(
            "SELECT id FROM deploys WHERE stack = ?1 AND revision = ?2",
            params![stack, revision as i64],
            |row| row.get(0),
        ))
    }

    /// A stack's revisions, newest first, with their services.
    pub fn deploy_history(&self, stack: &str) -> Result<Vec<DeployRecord>, StoreError> {
        let revisions: Vec<i64> = {
            let mut stmt = self.wrap(self.conn.prepare_cached(
                "SELECT revision FROM deploys WHERE stack = ?1 ORDER BY revision DESC",
            ))?;
            let rows = self.wrap(stmt.query_map(params![stack], |row| row.get(0)))?;
            self.wrap(rows.collect())?
        };
        let mut out = Vec::with_capacity(revisions.len());
        for revision in revisions {
            if let Some(record) = self.deploy_revision(stack, revision as u64)? {
                out.push(record);
            }
        }
        Ok(out)
    }

    /// One revision of a stack.
    pub fn deploy_revision(
        &self,
        stack: &str,
        revision: u64,
    ) -> Result<Option<DeployRecord>, StoreError> {
        let row = self.wrap(
            self.conn
                .query_row(
                    "SELECT id, started_at, finished_at, by, kind, files, outcome, summary, action
                     FROM deploys WHERE stack = ?1 AND revision = ?2",
                    params![stack, revision as i64],
                    |row| {
                        Ok((
                            row.get::<_, i64>(0)?,
                            row.get::<_, i64>(1)?,
                            row.get::<_, Option<i64>>(2)?,
                            row.get::<_, String>(3)?,
                            row.get::<_, String>(4)?,
                            row.get::<_, String>(5)?,
                            row.get::<_, String>(6)?,
                            row.get::<_, String>(7)?,
                            row.get::<_, Option<String>>(8)?,
                        ))
                    },
                )
                .optional(),
        )?;
        let Some((id, started, finished, by, kind, files, outcome, summary, action)) = row else {
            return Ok(None);
        };
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT service, before, after, outcome FROM deploy_services
             WHERE deploy_id = ?1 ORDER BY service",
        ))?;
        let rows = self.wrap(stmt.query_map(params![id], |row| {
            Ok(ServiceRevision {
                service: row.get(0)?,
                before: row.get(1)?,
                after: row.get(2)?,
                outcome: row.get(3)?,
            })
        }))?;
        let services = self.wrap(rows.collect())?;
        Ok(Some(DeployRecord {
            stack: stack.to_string(),
            revision,
            started_at: from_millis(started),
            finished_at: finished.map(from_millis),
            by,
            action,
            kind: DeployKind::parse(&kind),
            files: files
                .lines()
                .filter_map(|line| line.split_once("  "))
                .map(|(sha256, path)| FileDigest {
                    path: path.to_string(),
                    sha256: sha256.to_string(),
                    text: None,
                })
                .collect(),
            outcome: DeployOutcome::parse(&outcome),
            summary,
            services,
            objects: Vec::new(),
        }))
    }

    /// The stacks this file has revisions of, by name.
    pub fn deploy_stacks(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.wrap(
            self.conn
                .prepare_cached("SELECT DISTINCT stack FROM deploys ORDER BY stack"),
        )?;
        let rows = self.wrap(stmt.query_map([], |row| row.get(0)))?;
        self.wrap(rows.collect())
    }

    /// Whether this file's deploy history was imported into the swarm of cluster ID `cluster`.
    pub fn deploys_exported_to(&self, cluster: &str) -> Result<bool, StoreError> {
        self.wrap(
            self.conn
                .query_row(
                    "SELECT 1 FROM deploy_exports WHERE cluster = ?1",
                    params![cluster],
                    |_| Ok(()),
                )
                .optional(),
        )
        .map(|found| found.is_some())
    }

    /// Marks this file's deploy history as imported into the swarm of cluster ID `cluster`.
    pub fn mark_deploys_exported(&self, cluster: &str, at: Timestamp) -> Result<(), StoreError> {
        self.wrap(self.conn.execute(
            "INSERT OR REPLACE INTO deploy_exports (cluster, at) VALUES (?1, ?2)",
            params![cluster, millis(at)],
        ))
        .map(drop)
    }

    /// Takes the stack's deploy lock for `holder` (a person's or a process's name, shown to
    /// whoever waits), or says who holds it. A lock whose process is gone (on this machine) or
    /// that is older than two hours is taken over: its deploy was killed.
    pub fn lock_stack(
        &self,
        stack: &str,
        holder: &str,
        at: Timestamp,
    ) -> Result<Result<StackLock, LockHolder>, StoreError> {
        let pid = std::process::id();
        let token = format!("{pid}-{}", at.as_nanosecond());
        let tx = self.wrap(self.conn.unchecked_transaction())?;
        let held: Option<(String, i64, i64)> = self.wrap(
            tx.query_row(
                "SELECT holder, pid, since FROM deploy_locks WHERE stack = ?1",
                params![stack],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional(),
        )?;
        if let Some((holder, holder_pid, since)) = held {
            let since = from_millis(since);
            let alive = process_alive(holder_pid) && at.duration_since(since) < LOCK_EXPIRY;
            if alive {
                return Ok(Err(LockHolder { holder, since }));
            }
        }
        self.wrap(tx.execute(
            "INSERT OR REPLACE INTO deploy_locks (stack, token, holder, pid, since)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![stack, token, holder, pid, millis(at)],
        ))?;
        self.wrap(tx.commit())?;
        Ok(Ok(StackLock {
            stack: stack.to_owned(),
            token,
        }))
    }

    /// Gives a stack's lock back; a lock taken over since is left to its new holder.
    pub fn unlock_stack(&self, lock: &StackLock) -> Result<(), StoreError> {
        self.wrap(self.conn.execute(
            "DELETE FROM deploy_locks WHERE stack = ?1 AND token = ?2",
            params![lock.stack, lock.token],
        ))?;
        Ok(())
    }
}

/// Whether a process of this machine still runs (Linux's `/proc`); a state directory shared
/// between machines falls back on the lock's age.
fn process_alive(pid: i64) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_are_numbered_per_stack_and_read_back() {
        let store = Store::in_memory().unwrap();
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let files = vec![FileDigest {
            path: "stack.yml".into(),
            sha256: "ab".repeat(32),
            text: None,
        }];
        assert_eq!(
            store
                .begin_deploy("a", "me", None, &DeployKind::Deploy, &files, t0)
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .begin_deploy("b", "me", None, &DeployKind::Deploy, &[], t0)
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .begin_deploy("a", "ci", None, &DeployKind::Rollback, &[], t0)
                .unwrap(),
            2
        );
        let services = vec![ServiceRevision {
            service: "a_web".into(),
            before: None,
            after: Some(r#"{"Name":"a_web"}"#.into()),
            outcome: "converged".into(),
        }];
        store
            .finish_deploy("a", 1, &DeployOutcome::Succeeded, "ok", &services, t0)
            .unwrap();
        let history = store.deploy_history("a").unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].revision, 2);
        assert_eq!(history[0].outcome, DeployOutcome::Running);
        assert_eq!(history[0].kind, DeployKind::Rollback);
        assert_eq!(history[0].by, "ci");
        let first = &history[1];
        assert_eq!(first.files, files);
        assert_eq!(first.services, services);
        assert_eq!(first.finished_at, Some(t0));
        assert_eq!(first.outcome, DeployOutcome::Succeeded);
        assert!(store.deploy_revision("a", 9).unwrap().is_none());
    }

    #[test]
    fn a_sentence_by_splits_into_who_and_what() {
        let split = |by: &str| split_by_sentence(by);
        assert_eq!(
            split("edited in the dashboard by alice"),
            ("alice".into(), Some("edited in the dashboard".into()))
        );
        assert_eq!(
            split("rotated secret db → db.v2 in the dashboard by bob"),
            (
                "bob".into(),
                Some("rotated secret db → db.v2 in the dashboard".into())
            )
        );
        for name in ["alice", "auto-deploy", "ci", " by ", "x by ", "by alice"] {
            assert_eq!(split(name), (name.into(), None), "{name}");
        }
        assert_eq!(
            by_sentence("alice", Some("edited in the dashboard")),
            "edited in the dashboard by alice"
        );
        assert_eq!(by_sentence("alice", None), "alice");
    }

    /// A state file written before `action` was kept apart: its sentences are split once,
    /// when the column is added; a row written after is left as it was recorded.
    #[test]
    fn old_rows_are_split_into_who_and_what_once() {
        let dir = std::env::temp_dir().join(format!(
            "swarmkeeper-store-by-{}-{}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        {
            let old = rusqlite::Connection::open(dir.join(crate::DB_FILE)).unwrap();
            old.execute_batch(DEPLOY_SCHEMA).unwrap();
            for (revision, by) in [
                (1, "alice"),
                (2, "edited in the dashboard by alice"),
                (3, "rotated secret db → db.v2 in the dashboard by bob"),
            ] {
                old.execute(
                    "INSERT INTO deploys (stack, revision, started_at, by, kind, files, outcome)
                     VALUES ('shop', ?1, 0, ?2, 'edit', '', 'succeeded')",
                    params![revision, by],
                )
                .unwrap();
            }
        }
        let read = |store: &Store| -> Vec<(String, Option<String>)> {
            let mut rows: Vec<_> = store
                .deploy_history("shop")
                .unwrap()
                .into_iter()
                .map(|r| (r.by, r.action))
                .collect();
            rows.reverse();
            rows
        };
        let migrated = vec![
            ("alice".to_owned(), None),
            (
                "alice".to_owned(),
                Some("edited in the dashboard".to_owned()),
            ),
            (
                "bob".to_owned(),
                Some("rotated secret db → db.v2 in the dashboard".to_owned()),
            ),
        ];
        let store = Store::open(&dir).unwrap();
        assert_eq!(read(&store), migrated);
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        store
            .begin_deploy(
                "shop",
                "deploy bot by ci",
                None,
                &DeployKind::Deploy,
                &[],
                t0,
            )
            .unwrap();
        drop(store);
        let store = Store::open(&dir).unwrap();
        let mut again = migrated;
        again.push(("deploy bot by ci".to_owned(), None));
        assert_eq!(read(&store), again);
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_history_is_marked_once_per_cluster_it_was_imported_into() {
        let store = Store::in_memory().unwrap();
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        for stack in ["b", "a", "b"] {
            store
                .begin_deploy(stack, "me", None, &DeployKind::Deploy, &[], t0)
                .unwrap();
        }
        assert_eq!(store.deploy_stacks().unwrap(), ["a", "b"]);
        assert!(!store.deploys_exported_to("cluster-1").unwrap());
        store.mark_deploys_exported("cluster-1", t0).unwrap();
        store.mark_deploys_exported("cluster-1", t0).unwrap();
        assert!(store.deploys_exported_to("cluster-1").unwrap());
        assert!(!store.deploys_exported_to("cluster-2").unwrap());
    }

    #[test]
    fn outcomes_keep_words_they_do_not_know() {
        assert_eq!(
            DeployOutcome::parse("rolled back"),
            DeployOutcome::RolledBack
        );
        assert_eq!(
            DeployOutcome::parse("exploded").as_str(),
            "exploded",
            "a word of a newer version is shown as written"
        );
    }

    #[test]
    fn one_deploy_of_a_stack_at_a_time() {
        let dir = std::env::temp_dir().join(format!("sk-lock-{}", std::process::id()));
        let first = Store::open(&dir).unwrap();
        let second = Store::open(&dir).unwrap();
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let lock = first.lock_stack("shop", "alice", t0).unwrap().unwrap();
        let held = second.lock_stack("shop", "bob", t0).unwrap().unwrap_err();
        assert_eq!((held.holder.as_str(), held.since), ("alice", t0));
        assert!(second.lock_stack("other", "bob", t0).unwrap().is_ok());
        // Past the expiry a lock is taken over; the old holder's unlock leaves the new one.
        let later = t0 + jiff::SignedDuration::from_hours(3);
        let taken = second.lock_stack("shop", "bob", later).unwrap().unwrap();
        first.unlock_stack(&lock).unwrap();
        assert!(first.lock_stack("shop", "carol", later).unwrap().is_err());
        second.unlock_stack(&taken).unwrap();
        assert!(first.lock_stack("shop", "carol", later).unwrap().is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_of_a_process_that_is_gone_is_taken_over() {
        let store = Store::in_memory().unwrap();
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        store
            .conn
            .execute(
                "INSERT INTO deploy_locks (stack, token, holder, pid, since) VALUES ('s', 'x', 'ghost', ?1, ?2)",
                params![i64::from(u32::MAX), millis(t0)],
            )
            .unwrap();
        assert!(store.lock_stack("s", "me", t0).unwrap().is_ok());
    }
}
