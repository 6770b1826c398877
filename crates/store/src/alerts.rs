//! What the server keeps for alerting, so that alerts survive a restart:
//!
//! - the channels added on the Alerts page: name and kind and a description that shows no
//!   secret in the clear, the channel's settings as the server sealed them (opaque bytes
//!   here: the store never sees a webhook URL, token or password in the clear);
//! - settings as JSON text under a key (`rules`: the admin's alert rules; `state`: the ongoing
//!   alerts, pending and firing, with when each was last sent);
//! - silences with their end time;
//! - the alert history: every firing and resolved message sent, newest
//!   [`ALERT_HISTORY_KEPT`] kept;
//! - the task ends the restart-loop rule counts ([`StoredTaskEnd`]) and when Swarm's tasks
//!   were last listed: Swarm lists at most 4 ended tasks of a slot, so a restart that forgot
//!   them would count 4 and resolve a loop (tryout finding 1).

use jiff::Timestamp;
use rusqlite::{params, OptionalExtension, Row};

use crate::{from_millis, millis, Store, StoreError};

/// Messages the alert history keeps; older ones are dropped as new ones come.
pub const ALERT_HISTORY_KEPT: i64 = 5000;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alert_channels (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    describe    TEXT NOT NULL,
    sealed      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    created_by  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS alert_silences (
    id          INTEGER PRIMARY KEY,
    rule        TEXT,
    subject     TEXT,
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NOT NULL,
    created_by  TEXT NOT NULL,
    comment     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_task_ends (
    service_id  TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    slot        TEXT NOT NULL,
    ended_at    INTEGER NOT NULL,
    PRIMARY KEY (service_id, task_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS alert_task_ends_at ON alert_task_ends (ended_at);
CREATE TABLE IF NOT EXISTS alert_history (
    id          INTEGER PRIMARY KEY,
    at_ms       INTEGER NOT NULL,
    status      TEXT NOT NULL,
    rule        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    summary     TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    delivery    TEXT NOT NULL
);
";

/// An alert channel as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredChannel {
    pub id: i64,
    pub name: String,
    /// `webhook`, `slack`, `discord`, `ntfy`, `email`, `alertmanager`.
    pub kind: String,
    /// What may be shown: name, kind and host (never a path, token or password).
    pub describe: String,
    /// The channel's settings, sealed.
    pub sealed: Vec<u8>,
    pub created_at: Timestamp,
    pub created_by: String,
}

/// A silence as stored; `rule` and `subject` as the alerts crate names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSilence {
    pub id: i64,
    pub rule: Option<String>,
    pub subject: Option<String>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
}

/// One task that ended on its own, as the restart-loop rule counts it
/// (`swarmkeeper_alerts::TaskEnd`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredTaskEnd {
    pub service_id: String,
    pub task_id: String,
    /// The task's slot: its number, a global task's node id.
    pub slot: String,
    pub ended_at: Timestamp,
}

/// Where the time of the last listing the stored task ends came from is kept.
const TASK_ENDS_LISTED_KEY: &str = "task_ends_listed_at";

/// A message the server sent (or tried to), for the alert history page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRecord {
    pub at: Timestamp,
    /// `firing` or `resolved`.
    pub status: String,
    pub rule: String,
    pub subject: String,
    pub summary: String,
    pub started_at: Timestamp,
    /// For a resolved message, when the condition was seen no longer holding (the message's
    /// `ended_at`; `at` is when it was sent, after its delivery's retries); `None` for a
    /// firing message, and for messages stored before the server kept it.
    pub ended_at: Option<Timestamp>,
    /// How delivery went: `sent to 2 of 2 channels`, or the channels that failed (described
    /// without secrets).
    pub delivery: String,
}

impl Store {
    pub(crate) fn init_alerts(&self) -> Result<(), StoreError> {
        self.wrap(self.conn.execute_batch(SCHEMA))?;
        self.add_column_if_missing("alert_history", "ended_at", "INTEGER")?;
        Ok(())
    }

    /// Every stored channel, by name.
    pub fn alert_channels(&self) -> Result<Vec<StoredChannel>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT id, name, kind, describe, sealed, created_at, created_by
             FROM alert_channels ORDER BY name",
        ))?;
        let rows = self.wrap(stmt.query_map([], |row| {
            Ok(StoredChannel {
                id: row.get(0)?,
                name: row.get(1)?,
                kind: row.get(2)?,
                describe: row.get(3)?,
                sealed: row.get(4)?,
                created_at: from_millis(row.get(5)?),
                created_by: row.get(6)?,
            })
        }))?;
        self.wrap(rows.collect())
    }

    /// Adds a channel (its `id` is ignored) and returns its id; `Ok(None)` when one with the
    /// same name exists (nothing is changed then).
    pub fn add_alert_channel(&self, channel: &StoredChannel) -> Result<Option<i64>, StoreError> {
        let inserted = self.wrap(self.conn.execute(
            "INSERT OR IGNORE INTO alert_channels
             (name, kind, describe, sealed, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                channel.name,
                channel.kind,
                channel.describe,
                channel.sealed,
                millis(channel.created_at),
                channel.created_by
            ],
        ))?;
        Ok((inserted == 1).then(|| self.conn.last_insert_rowid()))
    }

    /// Removes a channel; returns its name, `None` when there was no such id.
    pub fn remove_alert_channel(&self, id: i64) -> Result<Option<String>, StoreError> {
        let name: Option<String> = self.wrap(
            self.conn
                .query_row(
                    "DELETE FROM alert_channels WHERE id = ?1 RETURNING name",
                    [id],
                    |row| row.get(0),
                )
                .optional(),
        )?;
        Ok(name)
    }

    /// Records the task ends of one listing of Swarm's tasks made at `listed_at` (an end
    /// already stored keeps its time) and forgets those that ended before `oldest`, in one
    /// transaction.
    pub fn record_task_ends(
        &mut self,
        ends: &[StoredTaskEnd],
        listed_at: Timestamp,
        oldest: Timestamp,
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO alert_task_ends (service_id, task_id, slot, ended_at)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for end in ends {
                insert.execute(params![
                    end.service_id,
                    end.task_id,
                    end.slot,
                    millis(end.ended_at)
                ])?;
            }
            tx.prepare_cached("DELETE FROM alert_task_ends WHERE ended_at < ?1")?
                .execute([millis(oldest)])?;
            tx.prepare_cached(
                "INSERT INTO alert_settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?
            .execute([TASK_ENDS_LISTED_KEY, &listed_at.to_string()])?;
            Ok(())
        })
    }

    /// The stored task ends from `since` on, oldest first, and when the listing that last
    /// recorded ends was made (`None`: never, or unreadable).
    pub fn task_ends(
        &self,
        since: Timestamp,
    ) -> Result<(Vec<StoredTaskEnd>, Option<Timestamp>), StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT service_id, task_id, slot, ended_at FROM alert_task_ends
             WHERE ended_at >= ?1 ORDER BY ended_at, service_id, task_id",
        ))?;
        let rows = self.wrap(stmt.query_map([millis(since)], |row| {
            Ok(StoredTaskEnd {
                service_id: row.get(0)?,
                task_id: row.get(1)?,
                slot: row.get(2)?,
                ended_at: from_millis(row.get(3)?),
            })
        }))?;
        let ends = self.wrap(rows.collect())?;
        let listed_at = self
            .alert_setting(TASK_ENDS_LISTED_KEY)?
            .and_then(|text| text.parse().ok());
        Ok((ends, listed_at))
    }

    /// A setting's JSON text, `None` when never set.
    pub fn alert_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.wrap(
            self.conn
                .query_row(
                    "SELECT value FROM alert_settings WHERE key = ?1",
                    [key],
                    |row| row.get(0),
                )
                .optional(),
        )
    }

    pub fn set_alert_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.wrap(self.conn.execute(
            "INSERT INTO alert_settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        ))?;
        Ok(())
    }

    /// Silences that have not ended by `now`, by end time.
    pub fn alert_silences(&self, now: Timestamp) -> Result<Vec<StoredSilence>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT id, rule, subject, starts_at, ends_at, created_by, comment
             FROM alert_silences WHERE ends_at > ?1 ORDER BY ends_at, id",
        ))?;
        let rows = self.wrap(stmt.query_map([millis(now)], silence_row))?;
        self.wrap(rows.collect())
    }

    /// Adds a silence (its `id` is ignored) and returns its id.
    pub fn add_alert_silence(&self, silence: &StoredSilence) -> Result<i64, StoreError> {
        self.wrap(self.conn.execute(
            "INSERT INTO alert_silences (rule, subject, starts_at, ends_at, created_by, comment)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                silence.rule,
                silence.subject,
                millis(silence.starts_at),
                millis(silence.ends_at),
                silence.created_by,
                silence.comment
            ],
        ))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Ends a silence at `now` (kept, so the history of who silenced what stays); `false` when
    /// there is no such silence still running.
    pub fn expire_alert_silence(&self, id: i64, now: Timestamp) -> Result<bool, StoreError> {
        let changed = self.wrap(self.conn.execute(
            "UPDATE alert_silences SET ends_at = ?2 WHERE id = ?1 AND ends_at > ?2",
            params![id, millis(now)],
        ))?;
        Ok(changed == 1)
    }

    /// Appends messages to the alert history and drops what is past
    /// [`ALERT_HISTORY_KEPT`], in one transaction. Returns each record's row id, in order:
    /// what [`Store::note_alert_delivery`] adds to.
    pub fn record_alerts(&mut self, records: &[AlertRecord]) -> Result<Vec<i64>, StoreError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(records.len());
        let path = self.path.clone();
        let wrap = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(wrap)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO alert_history
                     (at_ms, status, rule, subject, summary, started_at, delivery, ended_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(wrap)?;
            for r in records {
                insert
                    .execute(params![
                        millis(r.at),
                        r.status,
                        r.rule,
                        r.subject,
                        r.summary,
                        millis(r.started_at),
                        r.delivery,
                        r.ended_at.map(millis)
                    ])
                    .map_err(wrap)?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.execute(
            "DELETE FROM alert_history WHERE id <= (SELECT max(id) FROM alert_history) - ?1",
            [ALERT_HISTORY_KEPT],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(ids)
    }

    /// Adds `note` (`; channel X: delivered at ...`) to the delivery of history row `id`: how a
    /// message's retried delivery went is told on its one row, not in a row per attempt. A row
    /// already dropped from the history is left so.
    pub fn note_alert_delivery(&self, id: i64, note: &str) -> Result<(), StoreError> {
        self.wrap(self.conn.execute(
            "UPDATE alert_history SET delivery = delivery || ?2 WHERE id = ?1",
            params![id, note],
        ))?;
        Ok(())
    }

    /// The newest `limit` messages of the alert history, newest first.
    pub fn alert_history(&self, limit: usize) -> Result<Vec<AlertRecord>, StoreError> {
        let mut stmt = self.wrap(self.conn.prepare_cached(
            "SELECT at_ms, status, rule, subject, summary, started_at, delivery, ended_at
             FROM alert_history ORDER BY id DESC LIMIT ?1",
        ))?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.wrap(stmt.query_map([limit], alert_record))?;
        self.wrap(rows.collect())
    }

    /// The newest `limit` messages of the alert history about `rules` (rule ids such as
    /// `node-down`), newest first: what other rules sent does not crowd them out.
    pub fn alert_history_of(
        &self,
        rules: &[&str],
        limit: usize,
    ) -> Result<Vec<AlertRecord>, StoreError> {
        let marks = vec!["?"; rules.len()].join(", ");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.wrap(self.conn.prepare_cached(&format!(
            "SELECT at_ms, status, rule, subject, summary, started_at, delivery, ended_at
             FROM alert_history WHERE rule IN ({marks}) ORDER BY id DESC LIMIT {limit}"
        )))?;
        let rows = self.wrap(stmt.query_map(rusqlite::params_from_iter(rules), alert_record))?;
        self.wrap(rows.collect())
    }
}

fn alert_record(row: &Row<'_>) -> rusqlite::Result<AlertRecord> {
    Ok(AlertRecord {
        at: from_millis(row.get(0)?),
        status: row.get(1)?,
        rule: row.get(2)?,
        subject: row.get(3)?,
        summary: row.get(4)?,
        started_at: from_millis(row.get(5)?),
        ended_at: row.get::<_, Option<i64>>(7)?.map(from_millis),
        delivery: row.get(6)?,
    })
}

fn silence_row(row: &Row<'_>) -> rusqlite::Result<StoredSilence> {
    Ok(StoredSilence {
        id: row.get(0)?,
        rule: row.get(1)?,
        subject: row.get(2)?,
        starts_at: from_millis(row.get(3)?),
        ends_at: from_millis(row.get(4)?),
        created_by: row.get(5)?,
        comment: row.get(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn channels_are_unique_by_name_and_removed_by_id() {
        let store = Store::in_memory().unwrap();
        let channel = StoredChannel {
            id: 0,
            name: "ops".into(),
            kind: "slack".into(),
            describe: "ops (slack, hooks.slack.com)".into(),
            sealed: vec![1, 2, 3],
            created_at: t(0),
            created_by: "admin".into(),
        };
        let id = store.add_alert_channel(&channel).unwrap().unwrap();
        assert_eq!(store.add_alert_channel(&channel).unwrap(), None);
        assert_eq!(
            store.alert_channels().unwrap(),
            [StoredChannel { id, ..channel }]
        );
        assert_eq!(
            store.remove_alert_channel(id).unwrap().as_deref(),
            Some("ops")
        );
        assert_eq!(store.remove_alert_channel(id).unwrap(), None);
        assert!(store.alert_channels().unwrap().is_empty());
    }

    /// Tryout finding 1: the restart-loop rule's task ends outlive the server.
    #[test]
    fn task_ends_are_kept_for_the_window_with_the_last_listing() {
        let mut store = Store::in_memory().unwrap();
        assert_eq!(store.task_ends(t(0)).unwrap(), (vec![], None));
        let end = |task: &str, at| StoredTaskEnd {
            service_id: "svc".into(),
            task_id: task.into(),
            slot: "1".into(),
            ended_at: t(at),
        };
        store
            .record_task_ends(&[end("a", 10), end("b", 20)], t(21), t(0))
            .unwrap();
        // Listed again, with another time: the first one stays.
        store
            .record_task_ends(&[end("b", 25), end("c", 30)], t(31), t(15))
            .unwrap();
        assert_eq!(
            store.task_ends(t(0)).unwrap(),
            (vec![end("b", 20), end("c", 30)], Some(t(31)))
        );
        assert_eq!(store.task_ends(t(21)).unwrap().0, vec![end("c", 30)]);
    }

    #[test]
    fn settings_are_replaced() {
        let store = Store::in_memory().unwrap();
        assert_eq!(store.alert_setting("rules").unwrap(), None);
        store.set_alert_setting("rules", "{}").unwrap();
        store.set_alert_setting("rules", "{\"x\":1}").unwrap();
        assert_eq!(
            store.alert_setting("rules").unwrap().as_deref(),
            Some("{\"x\":1}")
        );
    }

    #[test]
    fn silences_are_listed_until_they_end_or_expire() {
        let store = Store::in_memory().unwrap();
        let silence = StoredSilence {
            id: 0,
            rule: Some("node-down".into()),
            subject: None,
            starts_at: t(0),
            ends_at: t(100),
            created_by: "admin".into(),
            comment: "kernel update".into(),
        };
        let id = store.add_alert_silence(&silence).unwrap();
        assert_eq!(store.alert_silences(t(50)).unwrap().len(), 1);
        assert!(store.alert_silences(t(100)).unwrap().is_empty());
        assert!(store.expire_alert_silence(id, t(10)).unwrap());
        assert!(store.alert_silences(t(10)).unwrap().is_empty());
        assert!(!store.expire_alert_silence(id, t(20)).unwrap());
    }

    #[test]
    fn history_is_newest_first_and_bounded() {
        let mut store = Store::in_memory().unwrap();
        let record = |i: i64| AlertRecord {
            at: t(i),
            status: "firing".into(),
            rule: "oom-kill".into(),
            subject: format!("web.{i}"),
            summary: "killed".into(),
            started_at: t(i),
            ended_at: None,
            delivery: "sent to 1 of 1 channels".into(),
        };
        let records: Vec<AlertRecord> = (0..ALERT_HISTORY_KEPT + 3).map(record).collect();
        store.record_alerts(&records).unwrap();
        let history = store.alert_history(usize::MAX).unwrap();
        assert_eq!(history.len() as i64, ALERT_HISTORY_KEPT);
        assert_eq!(history[0], record(ALERT_HISTORY_KEPT + 2));
    }

    #[test]
    fn history_of_rules_keeps_only_theirs_with_when_they_ended() {
        let mut store = Store::in_memory().unwrap();
        let record = |rule: &str, status: &str, ended_at: Option<Timestamp>| AlertRecord {
            at: t(9),
            status: status.into(),
            rule: rule.into(),
            subject: "w1".into(),
            summary: String::new(),
            started_at: t(1),
            ended_at,
            delivery: "no channel configured".into(),
        };
        let down = record("node-down", "firing", None);
        let up = record("node-down", "resolved", Some(t(5)));
        let silent = record("agent-silent", "firing", None);
        store
            .record_alerts(&[
                down.clone(),
                record("oom-kill", "firing", None),
                up.clone(),
                silent.clone(),
            ])
            .unwrap();
        assert_eq!(
            store
                .alert_history_of(&["node-down", "agent-silent"], 10)
                .unwrap(),
            [silent, up.clone(), down]
        );
        assert_eq!(store.alert_history_of(&["node-down"], 1).unwrap(), [up]);
    }

    #[test]
    fn a_retried_delivery_is_noted_on_its_one_row() {
        let mut store = Store::in_memory().unwrap();
        let record = AlertRecord {
            at: t(1),
            status: "firing".into(),
            rule: "rolled-back".into(),
            subject: "web".into(),
            summary: String::new(),
            started_at: t(1),
            ended_at: None,
            delivery: "sent to 0 of 1 channel(s)".into(),
        };
        let ids = store
            .record_alerts(&[record.clone(), record.clone()])
            .unwrap();
        assert_eq!(ids.len(), 2);
        store
            .note_alert_delivery(ids[0], "; hook: delivered")
            .unwrap();
        let history = store.alert_history(10).unwrap();
        assert_eq!(history.len(), 2, "no row added");
        assert_eq!(
            history[1].delivery,
            "sent to 0 of 1 channel(s); hook: delivered"
        );
        assert_eq!(history[0].delivery, record.delivery);
    }
}
