//! Where a stack's revisions are kept, behind [`History`]: today the SQLite file of the state
//! directory ([`Store`]); the same trait lets the history live in the swarm itself.

use std::future::Future;

use jiff::Timestamp;
use swarmkeeper_store::{
    DeployKind, DeployOutcome, DeployRecord, FileDigest, LockHolder, ObjectRevision,
    ServiceRevision, StackLock, Store, StoreError,
};

use crate::{DeployError, Options, Progress, Request};

/// How often a deploy that waits for another one of its stack asks again.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// The start of a revision: everything known before the deploy changes anything.
#[derive(Clone, Copy, Debug)]
pub struct RevisionStart<'a> {
    pub stack: &'a str,
    /// Who deploys.
    pub by: &'a str,
    /// What they do, when it is more than a deploy or rollback of files
    /// ([`DeployRecord::action`]).
    pub action: Option<&'a str>,
    pub kind: &'a DeployKind,
    pub files: &'a [FileDigest],
    pub at: Timestamp,
}

/// How a revision ended.
#[derive(Clone, Copy, Debug)]
pub struct RevisionEnd<'a> {
    pub outcome: &'a DeployOutcome,
    /// Each failure in one line.
    pub summary: &'a str,
    pub services: &'a [ServiceRevision],
    /// The networks, secrets and configs the services used. The SQLite history does not keep
    /// them (it is no longer written but by tests); the swarm's does.
    pub objects: &'a [ObjectRevision],
    pub at: Timestamp,
}

/// How a revision really ended, learnt after the fact by someone who could see what its own
/// end could not: a re-key's move of the server is stopped by the server's own restart and
/// records itself `interrupted`, and only the server that starts on the new key knows that
/// Swarm completed it. A settlement never rewrites the revision's end (in the swarm, an
/// immutable config object): it is kept beside it, and a reader shows the settled outcome
/// with [`settled_summary`], saying what the end had recorded.
#[derive(Clone, Copy, Debug)]
pub struct Settlement<'a> {
    pub outcome: &'a DeployOutcome,
    /// Why, in one line (`the server started on the new key …`).
    pub note: &'a str,
    pub at: Timestamp,
}

/// The summary a settled revision reads: the settlement's `note`, then the outcome the
/// revision's own end recorded, if it has one (`NOTE (recorded interrupted at the time)`). The
/// end's words are not repeated: they advise what the settlement makes moot ("or roll back";
/// tryout 14 finding 6), and the end keeps them.
pub fn settled_summary(note: &str, own: Option<&DeployOutcome>) -> String {
    match own {
        None => note.to_owned(),
        Some(own) => format!("{note} (recorded {own} at the time)"),
    }
}

/// What [`History::lock`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Locking {
    /// The stack is ours until [`History::unlock`].
    Acquired(StackLock),
    /// Another deploy of the stack runs.
    Held(LockHolder),
}

/// A stack's deploy history and its deploy lock. Revisions are numbered from 1 per stack; a
/// revision is appended when a deploy starts and finished when it ends, so one that never
/// ends stays `running`.
///
/// Every method is asynchronous so that an implementation may keep the history in the swarm
/// (through the engine); errors become a [`DeployError`].
pub trait History {
    type Error: Into<DeployError>;

    /// The stack's revisions, newest first.
    fn revisions(
        &self,
        stack: &str,
    ) -> impl Future<Output = Result<Vec<DeployRecord>, Self::Error>>;

    /// One revision; `None` when the stack has none of that number.
    fn revision(
        &self,
        stack: &str,
        revision: u64,
    ) -> impl Future<Output = Result<Option<DeployRecord>, Self::Error>>;

    /// Records the start of a revision and returns its number.
    fn append(&self, start: &RevisionStart<'_>) -> impl Future<Output = Result<u64, Self::Error>>;

    /// Records how revision `revision` of `stack` ended.
    fn finish(
        &self,
        stack: &str,
        revision: u64,
        end: &RevisionEnd<'_>,
    ) -> impl Future<Output = Result<(), Self::Error>>;

    /// Records how revision `revision` of `stack` really ended, beside whatever end it has
    /// ([`Settlement`]). A revision is settled once: the swarm's history refuses a second
    /// settlement.
    fn settle(
        &self,
        stack: &str,
        revision: u64,
        settlement: &Settlement<'_>,
    ) -> impl Future<Output = Result<(), Self::Error>>;

    /// Takes the stack's deploy lock for `holder`, or says who holds it. A lock left by a
    /// deploy that was killed must not hold for ever: an implementation lets it expire.
    fn lock(
        &self,
        stack: &str,
        holder: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<Locking, Self::Error>>;

    /// Gives the lock back; a lock another deploy has taken over since is left alone.
    fn unlock(&self, lock: &StackLock) -> impl Future<Output = Result<(), Self::Error>>;
}

/// The history in the SQLite file of a state directory (the CLI's, the server's).
impl History for Store {
    type Error = StoreError;

    fn revisions(
        &self,
        stack: &str,
    ) -> impl Future<Output = Result<Vec<DeployRecord>, StoreError>> {
        std::future::ready(self.deploy_history(stack))
    }

    fn revision(
        &self,
        stack: &str,
        revision: u64,
    ) -> impl Future<Output = Result<Option<DeployRecord>, StoreError>> {
        std::future::ready(self.deploy_revision(stack, revision))
    }

    fn append(&self, start: &RevisionStart<'_>) -> impl Future<Output = Result<u64, StoreError>> {
        std::future::ready(self.begin_deploy(
            start.stack,
            start.by,
            start.action,
            start.kind,
            start.files,
            start.at,
        ))
    }

    fn finish(
        &self,
        stack: &str,
        revision: u64,
        end: &RevisionEnd<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> {
        std::future::ready(self.finish_deploy(
            stack,
            revision,
            end.outcome,
            end.summary,
            end.services,
            end.at,
        ))
    }

    /// The SQLite history has one row per revision: the settlement is written over its end,
    /// the end's summary kept in the settled one.
    fn settle(
        &self,
        stack: &str,
        revision: u64,
        settlement: &Settlement<'_>,
    ) -> impl Future<Output = Result<(), StoreError>> {
        std::future::ready((|| {
            let own = self
                .deploy_revision(stack, revision)?
                .map(|r| r.outcome)
                .filter(|o| *o != DeployOutcome::Running);
            self.finish_deploy(
                stack,
                revision,
                settlement.outcome,
                &settled_summary(settlement.note, own.as_ref()),
                &[],
                settlement.at,
            )
        })())
    }

    fn lock(
        &self,
        stack: &str,
        holder: &str,
        at: Timestamp,
    ) -> impl Future<Output = Result<Locking, StoreError>> {
        std::future::ready(self.lock_stack(stack, holder, at).map(|lock| match lock {
            Ok(lock) => Locking::Acquired(lock),
            Err(holder) => Locking::Held(holder),
        }))
    }

    fn unlock(&self, lock: &StackLock) -> impl Future<Output = Result<(), StoreError>> {
        std::future::ready(self.unlock_stack(lock))
    }
}

/// Takes the stack's lock, waiting (and saying so once) while another deploy holds it, at most
/// as long as a deploy may take; `None` when stopped ([`Options::stop`]) while it waited.
pub(crate) async fn acquire<H: History>(
    history: &H,
    request: &Request,
    options: &Options,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Option<StackLock>, DeployError> {
    let started = std::time::Instant::now();
    let mut told = false;
    loop {
        match history
            .lock(&request.stack, &request.by, Timestamp::now())
            .await
            .map_err(Into::into)?
        {
            Locking::Acquired(lock) => return Ok(Some(lock)),
            Locking::Held(holder) if !options.wait => {
                return Err(DeployError::Busy {
                    stack: request.stack.clone(),
                    holder,
                    advice: "try again once it is done, or without --no-wait to wait for it",
                })
            }
            Locking::Held(holder) if started.elapsed() >= options.timeout => {
                return Err(DeployError::Busy {
                    stack: request.stack.clone(),
                    holder,
                    advice: "gave up waiting for it; try again once it is done",
                })
            }
            Locking::Held(held) => {
                if !told {
                    progress(Progress::Note(&format!(
                        "waiting for the deploy of {} by {} (since {}) to finish; a deploy \
                         that was killed gives the stack up within a minute",
                        request.stack,
                        held.holder,
                        when(held.since)
                    )));
                    told = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(LOCK_POLL) => {}
                    _ = options.stop.wait() => return Ok(None),
                }
            }
        }
    }
}

/// A time as messages show it: to the second, in UTC.
pub(crate) fn when(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// Gives the lock back whatever the result, and returns the result (the first error wins).
pub(crate) async fn release<H: History, T>(
    history: &H,
    lock: &StackLock,
    result: Result<T, DeployError>,
) -> Result<T, DeployError> {
    let released = history.unlock(lock).await.map_err(Into::into);
    let value = result?;
    released?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(by: &str) -> Request {
        Request {
            stack: "shop".into(),
            by: by.into(),
            action: None,
            files: Vec::new(),
            registry_auth: None,
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_second_deploy_waits_for_the_first_and_says_who_holds_the_stack() {
        // One history, two deploys of this process: the holder is alive, so the lock holds.
        let store = Store::in_memory().unwrap();
        let (first, second) = (&store, &store);
        let options = Options {
            timeout: std::time::Duration::from_millis(1500),
            ..Options::default()
        };
        let mut notes = Vec::new();
        let lock = acquire(first, &request("alice"), &options, &mut |p| {
            notes.push(format!("{p:?}"))
        })
        .await
        .unwrap()
        .unwrap();
        assert!(notes.is_empty(), "a free stack is taken at once: {notes:?}");
        let refused = acquire(second, &request("bob"), &options, &mut |p| {
            notes.push(format!("{p:?}"))
        })
        .await
        .unwrap_err();
        assert!(
            refused.to_string().contains("being deployed by alice"),
            "{refused}"
        );
        assert_eq!(notes.len(), 1, "told once while waiting: {notes:?}");
        // Without waiting: refused at once, saying who and since when.
        let at_once = Options {
            wait: false,
            ..options.clone()
        };
        let started = std::time::Instant::now();
        let busy = acquire(second, &request("bob"), &at_once, &mut |_| {})
            .await
            .unwrap_err();
        assert!(started.elapsed() < LOCK_POLL, "no wait");
        assert!(
            matches!(&busy, DeployError::Busy { holder, .. } if holder.holder == "alice"),
            "{busy}"
        );
        assert!(busy.to_string().contains(" UTC; try again"), "{busy}");
        assert!(notes[0].contains("waiting for the deploy of shop by alice"));
        // Released whatever the result, the stack is free again.
        let result: Result<(), DeployError> = Err(DeployError::Input("boom".into()));
        assert!(release(first, &lock, result).await.is_err());
        let again = acquire(second, &request("bob"), &options, &mut |_| {})
            .await
            .unwrap()
            .unwrap();
        // A stop asked for while it waits: it gives up at once, holding nothing.
        let stopping = Options {
            timeout: std::time::Duration::from_secs(60),
            ..options.clone()
        };
        let stop = stopping.stop.clone();
        let started = std::time::Instant::now();
        let waiting = acquire(first, &request("carol"), &stopping, &mut |_| {
            stop.request("SIGINT")
        })
        .await;
        assert_eq!(waiting.unwrap(), None);
        assert!(started.elapsed() < LOCK_POLL, "stopped at once");
        release(second, &again, Ok(())).await.unwrap();
    }
}
