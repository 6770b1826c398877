//! Decisions about a deploy history kept in the swarm: which revisions to forget, when a deploy
//! lock left by a killed deploy has expired, and whether a revision without an end still runs.
//! Times are the managers' (a config's `CreatedAt`/`UpdatedAt`, the engine's `SystemTime`), so
//! that the clocks of the machines that deploy never matter.

use std::time::Duration;

use jiff::Timestamp;

/// How many revisions of each stack the history keeps unless told otherwise
/// (`--keep-revisions`).
pub const DEFAULT_KEEP_REVISIONS: usize = 50;

/// Why a revision cannot be the target of a rollback ([`unfit_target`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unfit {
    /// Its run did not succeed: it failed, was rolled back, was interrupted, still runs, or
    /// changed nothing. Its specs never ran as one converged stack of their own, so
    /// re-applying them would bring back a stack nobody saw work.
    NotSucceeded,
    /// The stack runs its specs now: re-applying them would change nothing.
    RunsNow,
}

/// The one rule of which revision a rollback may re-apply, shared by the stack page (which
/// offers "Roll back to this" only where it holds), the API and the CLI (which refuse a
/// `to=REV` where it does not) and the default target ([`rollback_target`]): one that
/// `succeeded` and whose specs are not what runs now (`runs_now`, asked only of a succeeded
/// one, since comparing specs costs more than reading an outcome). `None`: it may.
pub fn unfit_target(succeeded: bool, runs_now: impl FnOnce() -> bool) -> Option<Unfit> {
    if !succeeded {
        Some(Unfit::NotSucceeded)
    } else if runs_now() {
        Some(Unfit::RunsNow)
    } else {
        None
    }
}

/// The revision a rollback without `--to` goes back to, among `revisions` (newest first): the
/// newest one [`unfit_target`] lets a rollback re-apply.
///
/// Going back to what runs would change nothing: after a deploy that changed nothing, or one
/// whose specs a later revision deployed again, the revision before is wanted. When a deploy
/// was interrupted halfway, what runs matches no revision, so the newest succeeded one is
/// restored. Failed, rolled-back and unchanged revisions left the stack as it was and are
/// never a target; `runs_now` is asked only of succeeded ones, newest first, until one differs.
pub fn rollback_target<R>(
    revisions: impl IntoIterator<Item = R>,
    succeeded: impl Fn(&R) -> bool,
    mut runs_now: impl FnMut(&R) -> bool,
) -> Option<R> {
    revisions
        .into_iter()
        .find(|revision| unfit_target(succeeded(revision), || runs_now(revision)).is_none())
}

/// A lock not renewed for this long belongs to a deploy that was killed (or lost the
/// managers): the next deploy takes it over.
pub const LOCK_EXPIRY: Duration = Duration::from_secs(60);

/// How often a deploy renews its stack's lock when locks expire after `expiry`: six times
/// within it, so that a slow manager or a short network break does not hand a live deploy's
/// stack to another one.
pub fn lock_heartbeat(expiry: Duration) -> Duration {
    expiry / 6
}

/// The revisions to forget so that the newest `keep` remain, oldest first. `numbers` may come
/// in any order and repeat.
pub fn revisions_to_forget(numbers: &[u64], keep: usize) -> Vec<u64> {
    let mut numbers = numbers.to_vec();
    numbers.sort_unstable();
    numbers.dedup();
    let excess = numbers.len().saturating_sub(keep);
    numbers.truncate(excess);
    numbers
}

/// Whether a lock last renewed at `renewed` has expired at `now` (both the managers' clock)
/// when locks expire after `expiry`.
pub fn lock_expired(renewed: Timestamp, now: Timestamp, expiry: Duration) -> bool {
    jiff::SignedDuration::try_from(expiry).is_ok_and(|expiry| now.duration_since(renewed) > expiry)
}

/// A stack's deploy lock as a history reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockSeen {
    /// When it was taken.
    pub taken: Timestamp,
    /// When its holder last renewed it.
    pub renewed: Timestamp,
}

/// Whether a revision that has no end yet is still being deployed: only while a lock taken no
/// later than the revision started holds its stack and has not expired. Otherwise the deploy
/// that wrote it stopped half-way (killed, out of memory, its machine gone): the revision was
/// interrupted and the stack may be half-applied.
pub fn still_running(
    started: Timestamp,
    lock: Option<LockSeen>,
    now: Timestamp,
    expiry: Duration,
) -> bool {
    lock.is_some_and(|lock| lock.taken <= started && !lock_expired(lock.renewed, now, expiry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    #[test]
    fn the_newest_revisions_stay() {
        assert_eq!(revisions_to_forget(&[3, 1, 2, 5, 4], 3), [1, 2]);
        assert_eq!(revisions_to_forget(&[1, 2], 50), Vec::<u64>::new());
        assert_eq!(revisions_to_forget(&[7, 7, 8], 1), [7]);
        // A gap left by an earlier retention changes nothing: the newest `keep` numbers stay.
        assert_eq!(revisions_to_forget(&[10, 2, 11, 12], 2), [2, 10]);
    }

    #[test]
    fn a_lock_expires_a_minute_after_its_last_heartbeat() {
        assert!(!lock_expired(t(0), t(59), LOCK_EXPIRY));
        assert!(!lock_expired(t(0), t(60), LOCK_EXPIRY));
        assert!(lock_expired(t(0), t(61), LOCK_EXPIRY));
        // A manager whose clock is behind the one that renewed it does not expire it.
        assert!(!lock_expired(t(10), t(0), LOCK_EXPIRY));
        assert_eq!(lock_heartbeat(LOCK_EXPIRY), Duration::from_secs(10));
    }

    #[test]
    fn a_revision_without_end_runs_only_under_a_live_lock_taken_before_it() {
        let lock = |taken, renewed| {
            Some(LockSeen {
                taken: t(taken),
                renewed: t(renewed),
            })
        };
        let running = |started, lock, now| still_running(t(started), lock, t(now), LOCK_EXPIRY);
        assert!(running(5, lock(0, 30), 40));
        assert!(!running(5, None, 40), "no lock: interrupted");
        assert!(
            !running(5, lock(0, 30), 100),
            "the lock's holder stopped renewing it"
        );
        assert!(
            !running(5, lock(20, 30), 40),
            "the lock is a later deploy's"
        );
    }
    #[test]
    fn a_rollback_passes_over_what_runs_now_and_what_did_not_succeed() {
        // (revision, succeeded, its specs) newest first; "v2" runs now.
        let target = |revisions: &[(u64, bool, &str)]| {
            rollback_target(revisions.iter(), |r| r.1, |r| r.2 == "v2").map(|r| r.0)
        };
        // A no-op redeploy of v2 (unchanged: not succeeded) on top of v2 over v1: back to v1.
        assert_eq!(
            target(&[(3, false, "v2"), (2, true, "v2"), (1, true, "v1")]),
            Some(1)
        );
        // v2 deployed twice, both recorded as succeeded: still back to v1.
        assert_eq!(
            target(&[(3, true, "v2"), (2, true, "v2"), (1, true, "v1")]),
            Some(1)
        );
        // A failed v3 left v2 running; an interrupted one left a mix that matches no revision.
        assert_eq!(
            target(&[(3, false, "v3"), (2, true, "v2"), (1, true, "v1")]),
            Some(1)
        );
        assert_eq!(target(&[(3, false, "mix"), (2, true, "v1")]), Some(2));
        assert_eq!(target(&[(2, true, "v2"), (1, false, "v1")]), None);
    }

    #[test]
    fn a_target_succeeded_and_does_not_run_now() {
        let counter = std::cell::Cell::new(0);
        let asked = &counter;
        let runs_now = |answer: bool| {
            move || {
                asked.set(asked.get() + 1);
                answer
            }
        };
        assert_eq!(unfit_target(true, runs_now(false)), None);
        assert_eq!(unfit_target(true, runs_now(true)), Some(Unfit::RunsNow));
        assert_eq!(asked.get(), 2);
        // What did not succeed is refused without comparing specs.
        assert_eq!(
            unfit_target(false, runs_now(true)),
            Some(Unfit::NotSucceeded)
        );
        assert_eq!(
            unfit_target(false, runs_now(false)),
            Some(Unfit::NotSucceeded)
        );
        assert_eq!(asked.get(), 2, "runs_now asked of succeeded revisions only");
    }
}
