//! The history kept in the swarm, against the real single-node swarm: each test uses stacks of
//! its own name and removes their objects when it ends, passed or not.

use std::process::Command;
use std::time::Duration;

use jiff::Timestamp;
use swarmkeeper_deploy::{
    DeployKind, DeployOutcome, FileDigest, History, Locking, RevisionEnd, RevisionStart,
    ServiceRevision, Settlement, SwarmHistory, REVISION_STACK_LABEL,
};
use swarmkeeper_engine::Engine;
use swarmkeeper_store::Store;

/// A stack name of this test, whose history objects (and lock, and any service) are removed
/// when dropped.
struct Stack(String);

impl Stack {
    fn new(what: &str) -> Stack {
        Stack(format!("skh{}{what}", std::process::id() % 100_000))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let listed = Command::new("docker")
            .args(["config", "ls", "-q", "--filter"])
            .arg(format!("label={REVISION_STACK_LABEL}={}", self.0))
            .output()
            .unwrap();
        let ids = String::from_utf8_lossy(&listed.stdout).to_string();
        for id in ids.split_whitespace() {
            let _ = Command::new("docker").args(["config", "rm", id]).output();
        }
        let _ = Command::new("docker")
            .args(["config", "rm", &format!("swarmkeeper-lock-{}", self.0)])
            .output();
        let _ = Command::new("docker")
            .args(["service", "rm", &format!("{}_web", self.0)])
            .output();
    }
}

fn engine() -> Engine {
    Engine::from_env().unwrap()
}

fn file(text: &str) -> FileDigest {
    FileDigest {
        path: "stack.yml".into(),
        sha256: swarmkeeper_deploy::sha256_hex(text.as_bytes()),
        text: Some(text.into()),
    }
}

/// Appends and finishes one revision; returns its number.
async fn deploy_once(history: &SwarmHistory, stack: &str, by: &str, outcome: DeployOutcome) -> u64 {
    let files = [file("services: {}\n")];
    let start = RevisionStart {
        stack,
        by,
        action: None,
        kind: &DeployKind::Deploy,
        files: &files,
        at: Timestamp::now(),
    };
    let number = history.append(&start).await.unwrap();
    let services = [ServiceRevision {
        service: format!("{stack}_web"),
        before: None,
        after: Some(r#"{"TaskTemplate":{"ContainerSpec":{"Image":"app:1"}}}"#.into()),
        outcome: "converged".into(),
    }];
    let end = RevisionEnd {
        outcome: &outcome,
        summary: "",
        services: &services,
        objects: &[],
        at: Timestamp::now(),
    };
    history.finish(stack, number, &end).await.unwrap();
    number
}

#[tokio::test]
async fn two_machines_append_to_one_history_and_the_oldest_revisions_go() {
    let stack = Stack::new("one");
    // Two processes (a laptop and CI), each with its own handle on the swarm.
    let laptop = SwarmHistory::new(engine()).keep_revisions(3);
    let ci = SwarmHistory::new(engine()).keep_revisions(3);
    assert_eq!(
        deploy_once(&laptop, &stack.0, "alice", DeployOutcome::Succeeded).await,
        1
    );
    assert_eq!(
        deploy_once(&ci, &stack.0, "ci", DeployOutcome::RolledBack).await,
        2
    );
    for _ in 0..3 {
        deploy_once(&laptop, &stack.0, "alice", DeployOutcome::Unchanged).await;
    }
    let seen = ci.revisions(&stack.0).await.unwrap();
    let numbers: Vec<u64> = seen.iter().map(|r| r.revision).collect();
    assert_eq!(numbers, [5, 4, 3], "the newest three are kept");
    let listed = Command::new("docker")
        .args(["config", "ls", "--format", "{{.Name}}", "--filter"])
        .arg(format!("label={REVISION_STACK_LABEL}={}", stack.0))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).lines().count(),
        6,
        "a start and an end per revision: {}",
        String::from_utf8_lossy(&listed.stdout)
    );
    let five = laptop.revision(&stack.0, 5).await.unwrap().unwrap();
    assert_eq!(five.by, "alice");
    assert_eq!(five.outcome, DeployOutcome::Unchanged);
    assert_eq!(five.files[0].text.as_deref(), Some("services: {}\n"));
    assert_eq!(five.services[0].outcome, "converged");
    assert!(laptop.revision(&stack.0, 1).await.unwrap().is_none());
}

#[tokio::test]
async fn one_deploy_holds_a_stack_and_a_killed_one_s_lock_expires() {
    let stack = Stack::new("lock");
    let expiry = Duration::from_secs(3);
    let first = SwarmHistory::new(engine()).lock_expiry(expiry);
    let second = SwarmHistory::new(engine()).lock_expiry(expiry);
    let now = Timestamp::now();
    let Locking::Acquired(lock) = first.lock(&stack.0, "alice", now).await.unwrap() else {
        panic!("a free stack is taken");
    };
    let Locking::Held(holder) = second.lock(&stack.0, "bob", now).await.unwrap() else {
        panic!("a held stack is refused");
    };
    assert_eq!(holder.holder, "alice");
    assert!(holder.since <= Timestamp::now());
    // The holder renews its lock: past the expiry it still holds.
    tokio::time::sleep(expiry + Duration::from_secs(1)).await;
    assert!(matches!(
        second.lock(&stack.0, "bob", now).await.unwrap(),
        Locking::Held(_)
    ));
    first.unlock(&lock).await.unwrap();
    let Locking::Acquired(taken) = second.lock(&stack.0, "bob", now).await.unwrap() else {
        panic!("a released stack is taken");
    };

    // A deploy killed half-way: its revision has no end and its lock is no longer renewed
    // (dropping the history stops the heartbeat, as a killed process would).
    let number = second
        .append(&RevisionStart {
            stack: &stack.0,
            by: "bob",
            action: None,
            kind: &DeployKind::Deploy,
            files: &[],
            at: Timestamp::now(),
        })
        .await
        .unwrap();
    let reader = SwarmHistory::new(engine()).lock_expiry(expiry);
    assert_eq!(
        reader
            .revision(&stack.0, number)
            .await
            .unwrap()
            .unwrap()
            .outcome,
        DeployOutcome::Running
    );
    drop(second);
    let Locking::Held(_) = first.lock(&stack.0, "carol", now).await.unwrap() else {
        panic!("a lock is not taken over before it expires");
    };
    tokio::time::sleep(expiry + Duration::from_secs(2)).await;
    let Locking::Acquired(after) = first.lock(&stack.0, "carol", now).await.unwrap() else {
        panic!("an expired lock is taken over");
    };
    let interrupted = reader.revision(&stack.0, number).await.unwrap().unwrap();
    assert_eq!(interrupted.outcome, DeployOutcome::Interrupted);
    // The dead holder's unlock would leave the new lock alone.
    first.unlock(&taken).await.unwrap();
    assert!(matches!(
        reader.lock(&stack.0, "dave", now).await.unwrap(),
        Locking::Held(h) if h.holder == "carol"
    ));
    first.unlock(&after).await.unwrap();
}

#[tokio::test]
async fn a_record_larger_than_one_config_is_kept_in_several() {
    let stack = Stack::new("big");
    let history = SwarmHistory::new(engine());
    // 1.5 MB of hex digests: it compresses to about half, more than one config holds.
    let text: String = (0..24_000u32)
        .map(|i| swarmkeeper_deploy::sha256_hex(&i.to_le_bytes()))
        .collect();
    let files = [file(&text)];
    let number = history
        .append(&RevisionStart {
            stack: &stack.0,
            by: "alice",
            action: None,
            kind: &DeployKind::Deploy,
            files: &files,
            at: Timestamp::now(),
        })
        .await
        .unwrap();
    let read = history.revision(&stack.0, number).await.unwrap().unwrap();
    assert_eq!(read.files, files);
    let objects = Command::new("docker")
        .args(["config", "ls", "-q", "--filter"])
        .arg(format!("label={REVISION_STACK_LABEL}={}", stack.0))
        .output()
        .unwrap();
    let count = String::from_utf8_lossy(&objects.stdout).lines().count();
    assert!(count >= 2, "the start record took {count} config(s)");
}

#[tokio::test]
async fn a_local_history_is_imported_once_into_a_swarm_that_runs_the_stack() {
    let stack = Stack::new("imp");
    let gone = Stack::new("impgone");
    let dir = std::env::temp_dir().join(format!("sk-import-{}", std::process::id()));
    let store = Store::open(&dir).unwrap();
    let t0 = Timestamp::from_second(1_700_000_000).unwrap();
    for s in [&stack.0, &stack.0, &stack.0, &gone.0] {
        store
            .begin_deploy(s, "alice", None, &DeployKind::Deploy, &[], t0)
            .unwrap();
    }
    let services = [ServiceRevision {
        service: format!("{}_web", stack.0),
        before: None,
        after: Some("{}".into()),
        outcome: "converged".into(),
    }];
    for revision in [1, 2] {
        store
            .finish_deploy(
                &stack.0,
                revision,
                &DeployOutcome::Succeeded,
                "ok",
                &services,
                t0,
            )
            .unwrap();
    }
    // The swarm runs the stack (a service labelled with its namespace); not the other one.
    let created = Command::new("docker")
        .args(["service", "create", "--detach", "--replicas", "0", "--name"])
        .arg(format!("{}_web", stack.0))
        .arg("--label")
        .arg(format!("com.docker.stack.namespace={}", stack.0))
        .arg("--container-label")
        .arg(format!("com.docker.stack.namespace={}", stack.0))
        .arg("busybox-never-pulled:1")
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let history = SwarmHistory::new(engine());
    let done = history.import(&store).await.unwrap();
    assert_eq!(done.imported, [(stack.0.clone(), 3)]);
    assert_eq!(done.elsewhere, [(gone.0.clone(), 1)]);
    let read = history.revisions(&stack.0).await.unwrap();
    let seen: Vec<(u64, DeployOutcome)> = read
        .iter()
        .map(|r| (r.revision, r.outcome.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (3, DeployOutcome::Interrupted),
            (2, DeployOutcome::Succeeded),
            (1, DeployOutcome::Succeeded)
        ],
        "numbers kept; one left running there was interrupted"
    );
    assert_eq!(read[1].started_at, t0);
    assert_eq!(read[1].services, services);
    // Once per swarm: a second run (another command on this machine) does nothing.
    assert_eq!(history.import(&store).await.unwrap(), Default::default());
    // New revisions go on from the imported ones.
    assert_eq!(
        deploy_once(&history, &stack.0, "alice", DeployOutcome::Succeeded).await,
        4
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_settlement_is_read_over_the_end_once_and_the_end_stays() {
    let stack = Stack::new("settle");
    let history = SwarmHistory::new(engine());
    let number = deploy_once(&history, &stack.0, "admin", DeployOutcome::Interrupted).await;
    let settlement = Settlement {
        outcome: &DeployOutcome::Succeeded,
        note: "Swarm completed the move",
        at: Timestamp::now(),
    };
    history.settle(&stack.0, number, &settlement).await.unwrap();
    let read = history.revision(&stack.0, number).await.unwrap().unwrap();
    assert_eq!(read.outcome, DeployOutcome::Succeeded);
    assert_eq!(
        read.summary,
        "Swarm completed the move (recorded interrupted at the time)"
    );
    assert_eq!(read.services.len(), 1, "the end's services are kept");
    let again = history
        .settle(&stack.0, number, &settlement)
        .await
        .unwrap_err();
    assert!(again.to_string().contains("already settled"), "{again}");
    // The end object itself is untouched.
    let end = Command::new("docker")
        .args(["config", "inspect", "--format"])
        .arg("{{index .Spec.Labels \"swarmkeeper.revision.outcome\"}}")
        .arg(format!("swarmkeeper-rev-{}-{number}-end", stack.0))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&end.stdout).trim(), "interrupted");
}
