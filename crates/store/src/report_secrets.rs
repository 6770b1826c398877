//! The agents' report secret across a rotation: the SHA-256 of the secret the server last
//! started with, the previous secrets still accepted (the grace list: Swarm does not move the
//! agent on a paused or drained node, which keeps the old secret), and which secret each
//! node's agent last reported with. Hashes only: a report secret is 256 random bits, so its
//! hash reveals nothing, and the file never holds a secret.

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension};

use crate::{from_millis, millis, Store, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS report_secret_grace (
    hash        BLOB PRIMARY KEY,
    since_ms    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS report_secret_use (
    node_key    TEXT PRIMARY KEY,
    hostname    TEXT NOT NULL,
    hash        BLOB NOT NULL,
    since_ms    INTEGER NOT NULL
);
";

/// The `alert_settings`-like key under which the current secret's hash is kept.
const CURRENT: &str = "report_secret_current";

/// Which secret a node's agent last reported with, and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportSecretUse {
    pub node_key: String,
    pub hostname: String,
    pub hash: Vec<u8>,
    pub since: Timestamp,
}

impl Store {
    pub(crate) fn init_report_secrets(&self) -> Result<(), StoreError> {
        self.wrap(self.conn.execute_batch(SCHEMA))
    }

    /// Records `current` as the secret the server runs with; when it differs from the one
    /// recorded before, that one joins the grace list (in one transaction). The grace list.
    pub fn start_with_report_secret(
        &mut self,
        current: &[u8],
        now: Timestamp,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        let before: Option<String> = self.alert_setting(CURRENT)?;
        let current_hex = hex(current);
        self.in_transaction(|tx| {
            if let Some(before) = before.as_deref().filter(|b| *b != current_hex) {
                if let Some(bytes) = unhex(before) {
                    tx.execute(
                        "INSERT OR IGNORE INTO report_secret_grace (hash, since_ms) VALUES (?1, ?2)",
                        params![bytes, millis(now)],
                    )?;
                }
            }
            tx.execute(
                "DELETE FROM report_secret_grace WHERE hash = ?1",
                params![current],
            )?;
            Ok(())
        })?;
        self.set_alert_setting(CURRENT, &current_hex)?;
        self.report_secret_grace()
    }

    /// The previous secrets still accepted, oldest first.
    pub fn report_secret_grace(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut stmt = self.wrap(
            self.conn
                .prepare_cached("SELECT hash FROM report_secret_grace ORDER BY since_ms, hash"),
        )?;
        let rows = self.wrap(stmt.query_map([], |row| row.get(0)))?;
        self.wrap(rows.collect())
    }

    /// Empties the grace list: only the current secret is accepted from now on.
    pub fn drop_report_secret_grace(&self) -> Result<usize, StoreError> {
        self.wrap(self.conn.execute("DELETE FROM report_secret_grace", []))
    }

    /// Records that `node_key`'s agent reported with the secret hashing to `hash`; writes
    /// only when that changed.
    pub fn record_report_secret_use(
        &self,
        node_key: &str,
        hostname: &str,
        hash: &[u8],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let known: Option<(String, Vec<u8>)> = self.wrap(
            self.conn
                .query_row(
                    "SELECT hostname, hash FROM report_secret_use WHERE node_key = ?1",
                    [node_key],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .optional(),
        )?;
        if known.is_some_and(|(h, known)| h == hostname && known == hash) {
            return Ok(());
        }
        self.wrap(self.conn.execute(
            "INSERT INTO report_secret_use (node_key, hostname, hash, since_ms) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (node_key) DO UPDATE SET hostname = excluded.hostname,
                hash = excluded.hash, since_ms = excluded.since_ms",
            params![node_key, hostname, hash, millis(now)],
        ))?;
        Ok(())
    }

    /// Which secret each node's agent last reported with, by hostname.
    pub fn report_secret_uses(&self) -> Result<Vec<ReportSecretUse>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT node_key, hostname, hash, since_ms FROM report_secret_use ORDER BY hostname",
        ))?;
        let rows = self.wrap(stmt.query_map([], |row| {
            Ok(ReportSecretUse {
                node_key: row.get(0)?,
                hostname: row.get(1)?,
                hash: row.get(2)?,
                since: from_millis(row.get(3)?),
            })
        }))?;
        self.wrap(rows.collect())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_with_another_secret_puts_the_previous_one_on_the_grace_list() {
        let mut store = Store::in_memory().unwrap();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        assert!(store
            .start_with_report_secret(&[1; 32], at)
            .unwrap()
            .is_empty());
        assert!(
            store
                .start_with_report_secret(&[1; 32], at)
                .unwrap()
                .is_empty(),
            "same one"
        );
        assert_eq!(
            store.start_with_report_secret(&[2; 32], at).unwrap(),
            [vec![1; 32]]
        );
        assert_eq!(
            store.start_with_report_secret(&[2; 32], at).unwrap(),
            [vec![1; 32]],
            "kept"
        );
        // Back to the first one (Swarm rolled the server back): it is current, not grace.
        assert_eq!(
            store.start_with_report_secret(&[1; 32], at).unwrap(),
            [vec![2; 32]]
        );
        assert_eq!(store.drop_report_secret_grace().unwrap(), 1);
        assert!(store.report_secret_grace().unwrap().is_empty());
    }

    #[test]
    fn each_nodes_secret_is_kept_with_since_when() {
        let store = Store::in_memory().unwrap();
        let t = |s: i64| Timestamp::from_second(1_800_000_000 + s).unwrap();
        store
            .record_report_secret_use("n1", "w1", &[1], t(0))
            .unwrap();
        store
            .record_report_secret_use("n1", "w1", &[1], t(5))
            .unwrap();
        store
            .record_report_secret_use("n2", "m1", &[2], t(6))
            .unwrap();
        let uses = store.report_secret_uses().unwrap();
        assert_eq!(uses.len(), 2);
        assert_eq!(
            (uses[1].hostname.as_str(), uses[1].since),
            ("w1", t(0)),
            "unchanged"
        );
        store
            .record_report_secret_use("n1", "w1", &[2], t(9))
            .unwrap();
        assert_eq!(store.report_secret_uses().unwrap()[1].since, t(9));
    }
}
