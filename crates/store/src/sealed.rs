//! Every value the server stores sealed (registry secrets, alert channels' settings), read and
//! written as one list for a re-key of the server's sealing key.
//!
//! A re-key writes, in one transaction, each value sealed with the new key beside the one
//! sealed with the current key (`staged`); the server that starts next opens each value with
//! whichever of the two its key opens, and promotes a staged one it opened
//! ([`Store::promote_staged`]). So a re-key cut short anywhere — before the new secret exists,
//! while Swarm moves the server, or rolled back by Swarm — leaves every value openable by the
//! key the server then runs with. The store never sees a key or a value in the clear.

use rusqlite::params;

use crate::{Store, StoreError};

/// The tables that hold sealed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SealedTable {
    /// `registries.sealed` (only rows that have a secret).
    Registry,
    /// `alert_channels.sealed`.
    AlertChannel,
}

impl SealedTable {
    fn table(self) -> &'static str {
        match self {
            SealedTable::Registry => "registries",
            SealedTable::AlertChannel => "alert_channels",
        }
    }
}

/// One stored sealed value: where it is, the name its seal is bound to (a registry's host, a
/// channel's name), the value sealed with the key it was stored with, and the one a re-key
/// staged, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedValue {
    pub table: SealedTable,
    pub id: i64,
    pub name: String,
    pub sealed: Vec<u8>,
    pub staged: Option<Vec<u8>>,
}

impl Store {
    pub(crate) fn init_sealed(&self) -> Result<(), StoreError> {
        for table in [SealedTable::Registry, SealedTable::AlertChannel] {
            self.add_column_if_missing(table.table(), "staged", "BLOB")?;
        }
        Ok(())
    }

    /// Every sealed value, registries (by host) then channels (by name).
    pub fn sealed_values(&self) -> Result<Vec<SealedValue>, StoreError> {
        let mut all = Vec::new();
        for (table, name) in [
            (SealedTable::Registry, "host"),
            (SealedTable::AlertChannel, "name"),
        ] {
            let mut stmt = self.wrap(self.conn.prepare(&format!(
                "SELECT id, {name}, sealed, staged FROM {} WHERE sealed IS NOT NULL ORDER BY {name}",
                table.table()
            )))?;
            let rows = self.wrap(stmt.query_map([], |row| {
                Ok(SealedValue {
                    table,
                    id: row.get(0)?,
                    name: row.get(1)?,
                    sealed: row.get(2)?,
                    staged: row.get(3)?,
                })
            }))?;
            all.extend(self.wrap(rows.collect::<Result<Vec<_>, _>>())?);
        }
        Ok(all)
    }

    /// Stages `staged` (each value sealed with a new key) in one transaction, and clears what
    /// an earlier re-key staged for every other value, so that nothing staged is sealed with
    /// another key than this re-key's.
    pub fn stage_sealed(
        &mut self,
        staged: &[(SealedTable, i64, Vec<u8>)],
    ) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            for table in [SealedTable::Registry, SealedTable::AlertChannel] {
                tx.execute(&format!("UPDATE {} SET staged = NULL", table.table()), [])?;
            }
            for (table, id, sealed) in staged {
                tx.execute(
                    &format!("UPDATE {} SET staged = ?1 WHERE id = ?2", table.table()),
                    params![sealed, id],
                )?;
            }
            Ok(())
        })
    }

    /// Forgets every staged value (a re-key given up before the server moved).
    pub fn clear_staged(&mut self) -> Result<(), StoreError> {
        self.stage_sealed(&[])
    }

    /// Makes the staged value of each of `promoted` its sealed value, in one transaction: the
    /// server runs with the key they were staged for.
    pub fn promote_staged(&mut self, promoted: &[(SealedTable, i64)]) -> Result<(), StoreError> {
        self.in_transaction(|tx| {
            for (table, id) in promoted {
                tx.execute(
                    &format!(
                        "UPDATE {} SET sealed = staged, staged = NULL
                         WHERE id = ?1 AND staged IS NOT NULL",
                        table.table()
                    ),
                    [id],
                )?;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{StoredChannel, StoredRegistry};
    use jiff::Timestamp;

    fn store_with_values() -> Store {
        let store = Store::in_memory().unwrap();
        let at = Timestamp::from_second(1_800_000_000).unwrap();
        for (host, sealed) in [("ghcr.io", Some(vec![1])), ("ecr.aws", None)] {
            store
                .add_registry(&StoredRegistry {
                    id: 0,
                    host: host.into(),
                    kind: "password".into(),
                    username: "ci".into(),
                    settings: "{}".into(),
                    sealed,
                    created_at: at,
                    created_by: "admin".into(),
                })
                .unwrap();
        }
        store
            .add_alert_channel(&StoredChannel {
                id: 0,
                name: "hook".into(),
                kind: "webhook".into(),
                describe: "hook (webhook to example.com)".into(),
                sealed: vec![2],
                created_at: at,
                created_by: "admin".into(),
            })
            .unwrap();
        store
    }

    #[test]
    fn staged_values_are_listed_beside_the_sealed_ones_and_promoted_in_place() {
        let mut store = store_with_values();
        let values = store.sealed_values().unwrap();
        assert_eq!(
            values
                .iter()
                .map(|v| (v.table, v.name.as_str(), v.sealed.clone(), v.staged.clone()))
                .collect::<Vec<_>>(),
            [
                (SealedTable::Registry, "ghcr.io", vec![1], None),
                (SealedTable::AlertChannel, "hook", vec![2], None),
            ],
            "a registry without a secret has nothing sealed"
        );
        let staged: Vec<_> = values
            .iter()
            .map(|v| (v.table, v.id, vec![v.sealed[0] + 10]))
            .collect();
        store.stage_sealed(&staged).unwrap();
        let values = store.sealed_values().unwrap();
        assert_eq!(values[0].staged, Some(vec![11]));
        assert_eq!(values[1].staged, Some(vec![12]));
        assert_eq!(values[0].sealed, vec![1], "the current sealing stays");

        store
            .promote_staged(&[(SealedTable::AlertChannel, values[1].id)])
            .unwrap();
        let after = store.sealed_values().unwrap();
        assert_eq!(
            (after[1].sealed.clone(), after[1].staged.clone()),
            (vec![12], None)
        );
        assert_eq!(
            after[0].staged,
            Some(vec![11]),
            "only the promoted one moves"
        );
        assert_eq!(store.alert_channels().unwrap()[0].sealed, vec![12]);

        store.clear_staged().unwrap();
        assert!(store
            .sealed_values()
            .unwrap()
            .iter()
            .all(|v| v.staged.is_none()));
        assert_eq!(
            store
                .registries()
                .unwrap()
                .iter()
                .find(|r| r.host == "ghcr.io")
                .unwrap()
                .sealed,
            Some(vec![1])
        );
    }
}
