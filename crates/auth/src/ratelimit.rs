//! Login rate limiting. The limiter is plain data: the server asks [`LoginLimiter::check`]
//! before verifying a password and reports the outcome; `now` is always passed in, so the
//! behaviour over hours of attempts is tested without waiting.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};

use jiff::{SignedDuration, Timestamp};

use crate::token::later;

/// Whom a limit applies to: one username from one client. Keying on both means an attacker
/// guessing a password from one address does not lock its owner out everywhere else.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoginKey {
    username: String,
    client: IpAddr,
}

impl LoginKey {
    /// Usernames are compared without case, so `Admin` and `admin` share a budget. An IPv6
    /// client counts as its /64, because one host is routinely given a whole /64 and could
    /// otherwise take a fresh budget with every address.
    pub fn new(username: &str, client: IpAddr) -> LoginKey {
        let client = match client {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
            },
            v4 => v4,
        };
        LoginKey {
            username: username.to_ascii_lowercase(),
            client,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitPolicy {
    /// Failures allowed within `window`; the next attempt is refused.
    pub max_failures: usize,
    pub window: SignedDuration,
    /// Lockouts start at `window` and double with each lockout that follows within a window of
    /// the last, up to this.
    pub max_lockout: SignedDuration,
    /// Keys remembered at most; past this the ones closest to being forgotten go first.
    pub max_entries: usize,
}

impl Default for LimitPolicy {
    fn default() -> LimitPolicy {
        LimitPolicy {
            max_failures: 5,
            window: SignedDuration::from_mins(15),
            max_lockout: SignedDuration::from_hours(24),
            max_entries: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginDecision {
    /// Verify the password, then report the outcome.
    Allowed,
    /// Refuse without looking at the password.
    LockedOut { until: Timestamp },
}

#[derive(Debug, Clone)]
struct Entry {
    /// Failures within the last window, oldest first; never more than `max_failures`.
    failures: VecDeque<Timestamp>,
    locked_until: Option<Timestamp>,
    /// Lockouts in a row, for the backoff.
    lockouts: u32,
    last_failure: Timestamp,
}

impl Entry {
    /// From this time on the entry changes no decision and carries no backoff: a quiet window
    /// has passed since the last failure and since the lockout ended.
    fn forgotten_at(&self, window: SignedDuration) -> Timestamp {
        let last_event = self
            .locked_until
            .map_or(self.last_failure, |until| until.max(self.last_failure));
        later(last_event, window)
    }

    fn failures_in_window(&self, window: SignedDuration, now: Timestamp) -> usize {
        self.failures
            .iter()
            .filter(|&&at| at.duration_since(now) > -window)
            .count()
    }
}

#[derive(Debug, Clone)]
pub struct LoginLimiter {
    policy: LimitPolicy,
    entries: HashMap<LoginKey, Entry>,
}

impl LoginLimiter {
    pub fn new(policy: LimitPolicy) -> LoginLimiter {
        LoginLimiter {
            policy,
            entries: HashMap::new(),
        }
    }

    pub fn check(&self, key: &LoginKey, now: Timestamp) -> LoginDecision {
        let Some(entry) = self.entries.get(key) else {
            return LoginDecision::Allowed;
        };
        if let Some(until) = entry.locked_until.filter(|&until| now < until) {
            return LoginDecision::LockedOut { until };
        }
        let window = self.policy.window;
        if entry.failures_in_window(window, now) >= self.policy.max_failures {
            // Unreachable with lockouts of at least a window, but the window alone must hold
            // whatever the lockout does.
            // The list holds at most `max_failures`, all in the window: the oldest leaving the
            // window frees the next attempt.
            if let Some(&oldest) = entry.failures.front() {
                return LoginDecision::LockedOut {
                    until: later(oldest, window),
                };
            }
        }
        LoginDecision::Allowed
    }

    pub fn record_failure(&mut self, key: &LoginKey, now: Timestamp) {
        let policy = self.policy;
        if !self.entries.contains_key(key) {
            self.make_room(now);
        }
        let entry = self.entries.entry(key.clone()).or_insert_with(|| Entry {
            failures: VecDeque::new(),
            locked_until: None,
            lockouts: 0,
            last_failure: now,
        });
        if now >= entry.forgotten_at(policy.window) {
            entry.failures.clear();
            entry.locked_until = None;
            entry.lockouts = 0;
        }
        while entry.failures.len() >= policy.max_failures.max(1) {
            entry.failures.pop_front();
        }
        entry.failures.push_back(now);
        entry.last_failure = now;
        if entry.failures_in_window(policy.window, now) >= policy.max_failures {
            let doublings = entry.lockouts.min(30);
            let lockout = policy
                .window
                .checked_mul(1 << doublings)
                .unwrap_or(policy.max_lockout)
                .min(policy.max_lockout);
            entry.locked_until = Some(later(now, lockout));
            entry.lockouts += 1;
        }
    }

    /// A correct password clears the key's history.
    pub fn record_success(&mut self, key: &LoginKey) {
        self.entries.remove(key);
    }

    fn make_room(&mut self, now: Timestamp) {
        if self.entries.len() < self.policy.max_entries {
            return;
        }
        let window = self.policy.window;
        self.entries
            .retain(|_, entry| now < entry.forgotten_at(window));
        while self.entries.len() >= self.policy.max_entries.max(1) {
            // Evicting ends a key's lockout early; the key whose lockout ends soonest loses
            // the least. An attacker would need max_entries fresh keys to get here.
            let Some(soonest) = self
                .entries
                .iter()
                .min_by_key(|(_, entry)| entry.forgotten_at(window))
                .map(|(key, _)| key.clone())
            else {
                break;
            };
            self.entries.remove(&soonest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn at(minutes: i64) -> Timestamp {
        t0() + SignedDuration::from_mins(minutes)
    }

    fn key(user: &str) -> LoginKey {
        LoginKey::new(user, "192.0.2.7".parse().unwrap())
    }

    fn fail_until_locked(limiter: &mut LoginLimiter, key: &LoginKey, now: Timestamp) -> Timestamp {
        loop {
            match limiter.check(key, now) {
                LoginDecision::Allowed => limiter.record_failure(key, now),
                LoginDecision::LockedOut { until } => return until,
            }
        }
    }

    #[test]
    fn five_failures_lock_the_key_for_a_window() {
        let mut limiter = LoginLimiter::new(LimitPolicy::default());
        let alice = key("alice");
        for minute in 0..5 {
            assert_eq!(limiter.check(&alice, at(minute)), LoginDecision::Allowed);
            limiter.record_failure(&alice, at(minute));
        }
        assert_eq!(
            limiter.check(&alice, at(4)),
            LoginDecision::LockedOut { until: at(19) }
        );
        assert_eq!(limiter.check(&alice, at(19)), LoginDecision::Allowed);
        // Someone else, and alice from elsewhere, are not affected.
        assert_eq!(limiter.check(&key("bob"), at(5)), LoginDecision::Allowed);
        let elsewhere = LoginKey::new("alice", "198.51.100.1".parse().unwrap());
        assert_eq!(limiter.check(&elsewhere, at(5)), LoginDecision::Allowed);
    }

    #[test]
    fn lockouts_in_a_row_double_up_to_the_cap() {
        let policy = LimitPolicy {
            max_lockout: SignedDuration::from_hours(2),
            ..LimitPolicy::default()
        };
        let mut limiter = LoginLimiter::new(policy);
        let alice = key("alice");
        let mut now = t0();
        let mut lockouts = Vec::new();
        for _ in 0..5 {
            let until = fail_until_locked(&mut limiter, &alice, now);
            lockouts.push(until.duration_since(now).as_mins());
            now = until;
        }
        assert_eq!(lockouts, [15, 30, 60, 120, 120]);
    }

    #[test]
    fn a_quiet_window_after_a_lockout_resets_the_backoff() {
        let mut limiter = LoginLimiter::new(LimitPolicy::default());
        let alice = key("alice");
        let until = fail_until_locked(&mut limiter, &alice, t0());
        assert_eq!(until, at(15));
        let until = fail_until_locked(&mut limiter, &alice, at(30));
        assert_eq!(until, at(30 + 15));
    }

    #[test]
    fn a_success_clears_the_history() {
        let mut limiter = LoginLimiter::new(LimitPolicy::default());
        let alice = key("alice");
        for minute in 0..4 {
            limiter.record_failure(&alice, at(minute));
        }
        limiter.record_success(&alice);
        for minute in 4..8 {
            limiter.record_failure(&alice, at(minute));
        }
        assert_eq!(limiter.check(&alice, at(8)), LoginDecision::Allowed);
    }

    #[test]
    fn keys_ignore_username_case_and_the_host_part_of_ipv6() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            LoginKey::new("Admin", ip("2001:db8:1:2:aaaa::1")),
            LoginKey::new("admin", ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            LoginKey::new("admin", ip("2001:db8:1:2::1")),
            LoginKey::new("admin", ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            LoginKey::new("admin", ip("::ffff:192.0.2.7")),
            LoginKey::new("admin", ip("192.0.2.7"))
        );
    }

    #[test]
    fn a_full_table_forgets_stale_keys_first_then_the_soonest_forgotten() {
        let policy = LimitPolicy {
            max_entries: 3,
            ..LimitPolicy::default()
        };
        let mut limiter = LoginLimiter::new(policy);
        limiter.record_failure(&key("stale"), at(0));
        limiter.record_failure(&key("a"), at(20));
        limiter.record_failure(&key("b"), at(21));
        limiter.record_failure(&key("c"), at(22));
        assert!(!limiter.entries.contains_key(&key("stale")));
        limiter.record_failure(&key("d"), at(23));
        assert!(!limiter.entries.contains_key(&key("a")));
        assert_eq!(limiter.entries.len(), 3);
    }

    proptest! {
        /// Whatever the timing, no key is allowed more than `max_failures` attempts within any
        /// window, and the table never outgrows its bound.
        #[test]
        fn never_more_than_max_failures_attempts_in_any_window(
            steps in prop::collection::vec((0usize..4, 0i64..400), 1..300),
            max_failures in 1usize..7,
            window_secs in 60i64..3600,
        ) {
            let policy = LimitPolicy {
                max_failures,
                window: SignedDuration::from_secs(window_secs),
                max_lockout: SignedDuration::from_hours(6),
                max_entries: 4,
            };
            let mut limiter = LoginLimiter::new(policy);
            let keys: Vec<LoginKey> = ["a", "b", "c", "d"].into_iter().map(key).collect();
            let mut allowed: Vec<Vec<Timestamp>> = vec![Vec::new(); keys.len()];
            let mut now = t0();
            for (which, advance_secs) in steps {
                now += SignedDuration::from_secs(advance_secs);
                if limiter.check(&keys[which], now) == LoginDecision::Allowed {
                    limiter.record_failure(&keys[which], now);
                    allowed[which].push(now);
                }
                prop_assert!(limiter.entries.len() <= policy.max_entries);
            }
            for times in &allowed {
                for (i, start) in times.iter().enumerate() {
                    let in_window = times[i..]
                        .iter()
                        .take_while(|&&t| t.duration_since(*start) < policy.window)
                        .count();
                    prop_assert!(in_window <= max_failures, "{in_window} attempts from {start}");
                }
            }
        }

        #[test]
        fn the_table_stays_bounded_under_a_flood_of_keys(
            users in prop::collection::vec("[a-z]{1,6}", 1..200),
            max_entries in 1usize..20,
        ) {
            let mut limiter = LoginLimiter::new(LimitPolicy { max_entries, ..LimitPolicy::default() });
            for (i, user) in users.iter().enumerate() {
                let seconds = i64::try_from(i).unwrap();
                limiter.record_failure(&key(user), t0() + SignedDuration::from_secs(seconds));
                prop_assert!(limiter.entries.len() <= max_entries);
            }
        }
    }
}
