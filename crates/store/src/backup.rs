//! An online, consistent copy of a state directory's database, taken with SQLite's backup API
//! while the server keeps running (`swarmkeeper server backup`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::{StoreError, DB_FILE};

/// What [`backup`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// The database copied.
    pub from: PathBuf,
    pub bytes: u64,
}

/// Copies the database of `state_dir` to `to`, consistent as of one moment, while other
/// connections (the server's) go on reading and writing: the pages are copied in one step
/// of SQLite's online backup, inside one read transaction, which in WAL mode blocks no
/// writer. The copy is written beside `to` and renamed over it once its integrity check
/// passes, so `to` is never half a database. Restoring is putting the file back as
/// `STATE_DIR/swarmkeeper.db` while the server is stopped (and removing any `-wal`/`-shm`
/// files there).
pub fn backup(state_dir: &Path, to: &Path) -> Result<Backup, StoreError> {
    let from = state_dir.join(DB_FILE);
    let sqlite = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StoreError::Sqlite { path, source }
    };
    if !from.is_file() {
        return Err(StoreError::Missing { path: from });
    }
    if same_file(&from, to) {
        return Err(StoreError::Backup {
            path: to.to_path_buf(),
            reason: "is the database itself".to_owned(),
        });
    }
    let source = Connection::open_with_flags(
        &from,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(&from))?;
    source
        .busy_timeout(Duration::from_secs(5))
        .map_err(sqlite(&from))?;
    let partial = partial_path(to);
    let _ = std::fs::remove_file(&partial);
    let copied = (|| {
        let mut copy = Connection::open(&partial).map_err(sqlite(&partial))?;
        {
            use rusqlite::backup::StepResult;
            let backup =
                rusqlite::backup::Backup::new(&source, &mut copy).map_err(sqlite(&from))?;
            // Every page in one step (-1), so the copy is one moment of the database; a writer
            // holding a lock at that instant is waited for, a while.
            let mut waits = 0;
            loop {
                match backup.step(-1).map_err(sqlite(&from))? {
                    StepResult::Done => break,
                    _ if waits < 100 => {
                        waits += 1;
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    _ => {
                        return Err(StoreError::Backup {
                            path: to.to_path_buf(),
                            reason: "the database stayed locked for 5 seconds".to_owned(),
                        })
                    }
                }
            }
        }
        let check: String = copy
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .map_err(sqlite(&partial))?;
        if check != "ok" {
            return Err(StoreError::Backup {
                path: to.to_path_buf(),
                reason: format!("the copy fails its integrity check: {check}"),
            });
        }
        copy.close().map_err(|(_, e)| sqlite(&partial)(e))?;
        std::fs::rename(&partial, to).map_err(|e| StoreError::Backup {
            path: to.to_path_buf(),
            reason: e.to_string(),
        })
    })();
    if copied.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    copied?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    Ok(Backup { from, bytes })
}

fn partial_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    to.with_file_name(name)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use jiff::Timestamp;

    #[test]
    fn a_copy_taken_while_the_database_is_open_reads_back_whole() {
        let dir = std::env::temp_dir().join(format!("sk-backup-{}", std::process::id()));
        let store = Store::open(&dir).unwrap();
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        store
            .begin_deploy("shop", "alice", None, &crate::DeployKind::Deploy, &[], t0)
            .unwrap();
        let to = dir.join("copy.db");
        let done = backup(&dir, &to).unwrap();
        assert!(done.bytes > 0);
        assert!(!partial_path(&to).exists());
        // Written after the copy: not in it.
        store
            .begin_deploy("shop", "bob", None, &crate::DeployKind::Deploy, &[], t0)
            .unwrap();
        let restored = dir.join("restored");
        std::fs::create_dir_all(&restored).unwrap();
        std::fs::rename(&to, restored.join(DB_FILE)).unwrap();
        let history = Store::open(&restored)
            .unwrap()
            .deploy_history("shop")
            .unwrap();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].by, "alice");

        let itself = backup(&dir, &dir.join(DB_FILE)).unwrap_err();
        assert!(
            itself.to_string().contains("is the database itself"),
            "{itself}"
        );
        let missing = backup(&dir.join("nothing"), &to).unwrap_err();
        assert!(missing.to_string().contains("no database"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
