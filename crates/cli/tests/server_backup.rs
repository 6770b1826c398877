//! `swarmkeeper server backup` of a running server, and the restore the README gives: stop the
//! server, copy the backup back as `swarmkeeper.db`, start it — users, API tokens and the audit
//! log are as they were at the backup.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::server::Server;
use support::tempdir;

fn backup(dir: &Path, to: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_swarmkeeper"))
        .args(["server", "backup", "-o"])
        .arg(to)
        .arg("--state-dir")
        .arg(dir)
        .output()
        .unwrap()
}

#[test]
fn a_backup_taken_while_the_server_runs_restores_users_tokens_and_audit() {
    let root = tempdir("server-backup");
    let dir: PathBuf = root.join("state");
    let server = Server::start(&dir);
    let session = server.login();
    let kept = server.token(&session, "ci");
    assert_eq!(server.audit(&kept).0, 200);

    let file = root.join("backup.db");
    let out = backup(&dir, &file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("copied"));
    // Made after the backup: gone once it is restored.
    let later = server.token(&session, "later");
    assert_eq!(server.audit(&later).0, 200);
    server.stop();

    // The restore: the server stopped, the copy put back as its database, the server started.
    for leftover in ["swarmkeeper.db-wal", "swarmkeeper.db-shm"] {
        let _ = std::fs::remove_file(dir.join(leftover));
    }
    std::fs::copy(&file, dir.join("swarmkeeper.db")).unwrap();
    let server = Server::start(&dir);
    let (status, body) = server.audit(&kept);
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("ci"),
        "the audit log keeps the token's creation: {body}"
    );
    assert!(!body.contains("later"), "{body}");
    assert_eq!(server.audit(&later).0, 401, "a token made after the backup");
    server.login();
    server.stop();

    let missing = backup(&root.join("nothing"), &file);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no database"));
    std::fs::remove_dir_all(&root).ok();
}
