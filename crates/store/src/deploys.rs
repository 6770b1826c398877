//! Deploy history: one revision per deploy or rollback of a stack, numbered from 1 per stack,
//! with who ran it, the files' digests, each changed service's spec before and after (JSON as
//! sent to the engine), and the outcome. Swarm keeps one previous spec per service; this keeps
//! them all.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};

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
CREATE TABLE IF NOT EXISTS deploy_services (
    deploy_id   INTEGER NOT NULL REFERENCES deploys(id),
    service     TEXT NOT NULL,
    before      TEXT,
    after       TEXT,
    outcome     TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (deploy_id, service)
) WITHOUT ROWID;
";

/// A file of a deploy and the SHA-256 of its content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
}

/// One service in a revision. `before`/`after` are JSON specs; `None` before means the deploy
/// created the service, `None` after that it removed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceRevision {
    pub service: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// `converged`, `rolled back`, `unchanged`, …
    pub outcome: String,
}

/// One deploy (or rollback) of a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployRecord {
    pub stack: String,
    pub revision: u64,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub by: String,
    /// `deploy` or `rollback`.
    pub kind: String,
    pub files: Vec<FileDigest>,
    /// `running` until finished, then `succeeded`, `rolled back` or `failed`.
    pub outcome: String,
    pub summary: String,
    pub services: Vec<ServiceRevision>,
}

impl Store {
    pub(crate) fn init_deploys(&self) -> Result<(), StoreError> {
        self.wrap(self.conn.execute_batch(DEPLOY_SCHEMA))
    }

    /// Records the start of a deploy and returns its revision number.
    pub fn begin_deploy(
        &self,
        stack: &str,
        by: &str,
        kind: &str,
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
            "INSERT INTO deploys (stack, revision, started_at, by, kind, files, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running')",
            params![stack, revision, millis(at), by, kind, files_text],
        ))?;
        Ok(revision as u64)
    }

    /// Records how a deploy ended and what it did to each service.
    pub fn finish_deploy(
        &self,
        stack: &str,
        revision: u64,
        outcome: &str,
        summary: &str,
        services: &[ServiceRevision],
        at: Timestamp,
    ) -> Result<(), StoreError> {
        let id = self.deploy_id(stack, revision)?;
        self.wrap(self.conn.execute(
            "UPDATE deploys SET finished_at = ?1, outcome = ?2, summary = ?3 WHERE id = ?4",
            params![millis(at), outcome, summary, id],
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
                    "SELECT id, started_at, finished_at, by, kind, files, outcome, summary
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
                        ))
                    },
                )
                .optional(),
        )?;
        let Some((id, started, finished, by, kind, files, outcome, summary)) = row else {
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
            kind,
            files: files
                .lines()
                .filter_map(|line| line.split_once("  "))
                .map(|(sha256, path)| FileDigest {
                    path: path.to_string(),
                    sha256: sha256.to_string(),
                })
                .collect(),
            outcome,
            summary,
            services,
        }))
    }
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
        }];
        assert_eq!(
            store.begin_deploy("a", "me", "deploy", &files, t0).unwrap(),
            1
        );
        assert_eq!(store.begin_deploy("b", "me", "deploy", &[], t0).unwrap(), 1);
        assert_eq!(
            store.begin_deploy("a", "ci", "rollback", &[], t0).unwrap(),
            2
        );
        let services = vec![ServiceRevision {
            service: "a_web".into(),
            before: None,
            after: Some(r#"{"Name":"a_web"}"#.into()),
            outcome: "converged".into(),
        }];
        store
            .finish_deploy("a", 1, "succeeded", "ok", &services, t0)
            .unwrap();
        let history = store.deploy_history("a").unwrap();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].revision, 2);
        assert_eq!(history[0].outcome, "running");
        assert_eq!(history[0].by, "ci");
        let first = &history[1];
        assert_eq!(first.files, files);
        assert_eq!(first.services, services);
        assert_eq!(first.finished_at, Some(t0));
        assert!(store.deploy_revision("a", 9).unwrap().is_none());
    }
}
