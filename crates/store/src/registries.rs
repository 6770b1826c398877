//! What the server keeps for private registries and auto-deploy:
//!
//! - the registries added on its Registries page: host, kind, user name and settings in the
//!   clear, the secret part as the server sealed it (opaque bytes here: the store never sees
//!   a credential in the clear, and never decides anything about one);
//! - each auto-deployed service's tracker (the `autodeploy` crate's state, as JSON), so
//!   failed digests and a rollout in flight survive a restart;
//! - the auto-deploy events a service page lists (rollouts and failed checks), the newest
//!   [`EVENTS_KEPT`] per service.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension, Row};

use crate::{from_millis, millis, Store, StoreError};

/// Events remembered per service; older ones are dropped as new ones come.
pub const EVENTS_KEPT: usize = 20;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS registries (
    id          INTEGER PRIMARY KEY,
    host        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    username    TEXT NOT NULL DEFAULT '',
    settings    TEXT NOT NULL DEFAULT '{}',
    sealed      BLOB,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS autodeploy_trackers (
    service_id    TEXT PRIMARY KEY,
    service_name  TEXT NOT NULL,
    tracker_json  TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS autodeploy_events (
    id          INTEGER PRIMARY KEY,
    service_id  TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    digest      TEXT,
    outcome     TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS autodeploy_events_service ON autodeploy_events (service_id, id);
";

/// A registry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredRegistry {
    pub id: i64,
    /// As a reference names it: `docker.io`, `ghcr.io`, `registry.example:5000`.
    pub host: String,
    /// How its credentials are had, in the server's words (`password`, `token`, `ecr`, …).
    pub kind: String,
    pub username: String,
    /// What is not secret (an ECR region, an access key id, a profile), as JSON.
    pub settings: String,
    /// The secret part, sealed; `None` when there is none (the AWS default chain).
    pub sealed: Option<Vec<u8>>,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// An auto-deploy event: a rollout and how it ended, or a check that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoDeployEvent {
    pub service_id: String,
    pub at: Timestamp,
    /// `check` or `rollout`.
    pub kind: String,
    pub digest: Option<String>,
    /// e.g. `converged`, `rolled back`, `not started`, `failed`.
    pub outcome: String,
    pub message: String,
}

impl Store {
    pub(crate) fn init_registries(&self) -> Result<(), StoreError> {
        self.wrap(self.conn.execute_batch(SCHEMA))
    }

    /// Every stored registry, by host.
    pub fn registries(&self) -> Result<Vec<StoredRegistry>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT id, host, kind, username, settings, sealed, created_at, created_by
             FROM registries ORDER BY host",
        ))?;
        let rows = self.wrap(stmt.query_map([], registry_row))?;
        self.wrap(rows.collect())
    }

    /// Adds a registry (its `id` is ignored) and returns its id; `Ok(None)` when one with the
    /// same host exists (nothing is changed then).
    pub fn add_registry(&self, registry: &StoredRegistry) -> Result<Option<i64>, StoreError> {
        let inserted = self.wrap(self.conn.execute(
            "INSERT OR IGNORE INTO registries
             (host, kind, username, settings, sealed, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                registry.host,
                registry.kind,
                registry.username,
                registry.settings,
                registry.sealed,
                millis(registry.created_at),
                registry.created_by
            ],
        ))?;
        Ok((inserted == 1).then(|| self.conn.last_insert_rowid()))
    }

    /// Removes a registry; returns what was removed, `None` when there was no such id.
    pub fn remove_registry(&self, id: i64) -> Result<Option<StoredRegistry>, StoreError> {
        let found = self.wrap(
            self.conn
                .query_row(
                    "SELECT id, host, kind, username, settings, sealed, created_at, created_by
                     FROM registries WHERE id = ?1",
                    [id],
                    registry_row,
                )
                .optional(),
        )?;
        if found.is_some() {
            self.wrap(
                self.conn
                    .execute("DELETE FROM registries WHERE id = ?1", [id]),
            )?;
        }
        Ok(found)
    }

    /// Every remembered auto-deploy tracker: `(service id, service name, tracker JSON)`.
    pub fn autodeploy_trackers(&self) -> Result<Vec<(String, String, String)>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT service_id, service_name, tracker_json FROM autodeploy_trackers",
        ))?;
        let rows =
            self.wrap(stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))))?;
        self.wrap(rows.collect())
    }

    /// Remembers a service's tracker, replacing the one before.
    pub fn save_autodeploy_tracker(
        &self,
        service_id: &str,
        service_name: &str,
        tracker_json: &str,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.wrap(
            self.conn
                .prepare_cached(
                    "INSERT INTO autodeploy_trackers (service_id, service_name, tracker_json, updated_at)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (service_id) DO UPDATE SET
                        service_name = excluded.service_name,
                        tracker_json = excluded.tracker_json,
                        updated_at = excluded.updated_at",
                )
                .and_then(|mut stmt| {
                    stmt.execute(params![service_id, service_name, tracker_json, millis(at)])
                }),
        )?;
        Ok(())
    }

    /// Forgets the trackers and events of services that no longer exist or follow nothing.
    pub fn forget_autodeploy(&mut self, service_ids: &[String]) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            for id in service_ids {
                tx.execute(
                    "DELETE FROM autodeploy_trackers WHERE service_id = ?1",
                    [id],
                )?;
                tx.execute("DELETE FROM autodeploy_events WHERE service_id = ?1", [id])?;
            }
            Ok(())
        })
    }

    /// Adds an event, keeping the newest [`EVENTS_KEPT`] of its service.
    pub fn record_autodeploy_event(&mut self, event: &AutoDeployEvent) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            tx.execute(
                "INSERT INTO autodeploy_events (service_id, at_ms, kind, digest, outcome, message)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    event.service_id,
                    millis(event.at),
                    event.kind,
                    event.digest,
                    event.outcome,
                    event.message
                ],
            )?;
            tx.execute(
                "DELETE FROM autodeploy_events WHERE service_id = ?1 AND id NOT IN
                 (SELECT id FROM autodeploy_events WHERE service_id = ?1 ORDER BY id DESC LIMIT ?2)",
                params![event.service_id, EVENTS_KEPT as i64],
            )?;
            Ok(())
        })
    }

    /// A service's events, newest first.
    pub fn autodeploy_events(&self, service_id: &str) -> Result<Vec<AutoDeployEvent>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT service_id, at_ms, kind, digest, outcome, message FROM autodeploy_events
             WHERE service_id = ?1 ORDER BY id DESC",
        ))?;
        let rows = self.wrap(stmt.query_map([service_id], |row| {
            Ok(AutoDeployEvent {
                service_id: row.get(0)?,
                at: from_millis(row.get(1)?),
                kind: row.get(2)?,
                digest: row.get(3)?,
                outcome: row.get(4)?,
                message: row.get(5)?,
            })
        }))?;
        self.wrap(rows.collect())
    }
}

fn registry_row(row: &Row<'_>) -> rusqlite::Result<StoredRegistry> {
    Ok(StoredRegistry {
        id: row.get(0)?,
        host: row.get(1)?,
        kind: row.get(2)?,
        username: row.get(3)?,
        settings: row.get(4)?,
        sealed: row.get(5)?,
        created_at: from_millis(row.get(6)?),
        created_by: row.get(7)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(host: &str) -> StoredRegistry {
        StoredRegistry {
            id: 0,
            host: host.into(),
            kind: "password".into(),
            username: "ci".into(),
            settings: "{}".into(),
            sealed: Some(vec![1, 2, 3]),
            created_at: Timestamp::from_second(1_800_000_000).unwrap(),
            created_by: "admin".into(),
        }
    }

    #[test]
    fn registries_are_unique_by_host_and_come_back_as_stored() {
        let store = Store::in_memory().unwrap();
        let id = store.add_registry(&registry("ghcr.io")).unwrap().unwrap();
        assert_eq!(store.add_registry(&registry("ghcr.io")).unwrap(), None);
        store.add_registry(&registry("docker.io")).unwrap().unwrap();
        let all = store.registries().unwrap();
        assert_eq!(
            all.iter().map(|r| r.host.as_str()).collect::<Vec<_>>(),
            ["docker.io", "ghcr.io"]
        );
        assert_eq!(
            all[1],
            StoredRegistry {
                id,
                ..registry("ghcr.io")
            }
        );
        assert_eq!(store.remove_registry(id).unwrap().unwrap().host, "ghcr.io");
        assert_eq!(store.remove_registry(id).unwrap(), None);
    }

    #[test]
    fn trackers_replace_and_events_keep_the_newest() {
        let mut store = Store::in_memory().unwrap();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        store
            .save_autodeploy_tracker("s1", "web", "{\"a\":1}", at)
            .unwrap();
        store
            .save_autodeploy_tracker("s1", "web2", "{\"a\":2}", at)
            .unwrap();
        assert_eq!(
            store.autodeploy_trackers().unwrap(),
            [("s1".into(), "web2".into(), "{\"a\":2}".into())]
        );
        for n in 0..(EVENTS_KEPT + 5) {
            store
                .record_autodeploy_event(&AutoDeployEvent {
                    service_id: "s1".into(),
                    at,
                    kind: "check".into(),
                    digest: None,
                    outcome: "failed".into(),
                    message: format!("n{n}"),
                })
                .unwrap();
        }
        let events = store.autodeploy_events("s1").unwrap();
        assert_eq!(events.len(), EVENTS_KEPT);
        assert_eq!(events[0].message, format!("n{}", EVENTS_KEPT + 4));
        store.forget_autodeploy(&["s1".into()]).unwrap();
        assert!(store.autodeploy_trackers().unwrap().is_empty());
        assert!(store.autodeploy_events("s1").unwrap().is_empty());
    }
}
