//! Login rate limiting that slows guessing down without ever shutting the owner out. The
//! limiter is plain data: the server asks [`LoginLimiter::attempt`] before verifying a password
//! and reports a success; `now` is always passed in, so hours of attempts are tested without
//! waiting.
//!
//! Two brakes, after the OWASP advice on slowing online guessing without lockouts:
//!
//! - **Per source**: one user name from one client address, or from one browser that has
//!   logged in as that user before (a *device*, known by its cookie). The first
//!   [`LimitPolicy::free_attempts`] attempts cost nothing; each attempt after that waits a delay
//!   that doubles from [`LimitPolicy::first_delay`] up to [`LimitPolicy::max_delay`], and never
//!   more. A quiet [`LimitPolicy::window`] or a success forgets the source.
//! - **Per user, over every client address**: a token bucket of [`LimitPolicy::user_burst`]
//!   attempts refilled at one per [`LimitPolicy::user_refill`], shared by all addresses, so ten
//!   or ten thousand addresses guessing one user get no more than one. Devices are exempt:
//!   while strangers drain the bucket, the owner's browser still logs in.
//!
//! Attempts count when they are let through, not when they fail, so concurrent attempts cannot
//! all pass before the first failure is known; a success gives the user's token back.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};

use jiff::{SignedDuration, Timestamp};

use crate::token::later;

/// Where an attempt comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Source {
    /// A client address: an IPv4 address, or an IPv6 /64, because one host is routinely given
    /// a whole /64 and could otherwise take a fresh budget with every address.
    Address(IpAddr),
    /// A browser that logged in as this user before; the id of its device cookie.
    Device(String),
}

/// Whom a per-source limit applies to: one user name from one source.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LoginKey {
    username: String,
    source: Source,
}

impl LoginKey {
    /// An attempt from a client address. Usernames are compared without case, so `Admin` and
    /// `admin` share a budget.
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
            source: Source::Address(client),
        }
    }

    /// An attempt from a browser whose device cookie says it logged in as `username` before
    /// (the caller checks that): `device` is the cookie's stored id.
    pub fn device(username: &str, device: &str) -> LoginKey {
        LoginKey {
            username: username.to_ascii_lowercase(),
            source: Source::Device(device.to_owned()),
        }
    }

    pub fn is_device(&self) -> bool {
        matches!(self.source, Source::Device(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitPolicy {
    /// Attempts from one source that never wait.
    pub free_attempts: u32,
    /// A source that makes no attempt for this long is forgotten, and its delay with it.
    pub window: SignedDuration,
    /// The wait before the first attempt past the free ones; it doubles with each attempt.
    pub first_delay: SignedDuration,
    /// The longest wait after a source's last attempt.
    pub max_delay: SignedDuration,
    /// Attempts on one user that client addresses, all together, may make at once ...
    pub user_burst: u32,
    /// ... and the pace at which that budget comes back: one attempt per this.
    pub user_refill: SignedDuration,
    /// Sources, and users, remembered at most; past this the ones closest to being forgotten
    /// go first.
    pub max_entries: usize,
}

impl Default for LimitPolicy {
    /// Five free attempts, then 1 s, 2 s, 4 s … up to a minute between attempts from one
    /// source; twenty attempts at once on one user from anywhere, then one every ten seconds
    /// (at most 8,640 guesses a day at one account, whatever the number of addresses).
    fn default() -> LimitPolicy {
        LimitPolicy {
            free_attempts: 5,
            window: SignedDuration::from_mins(15),
            first_delay: SignedDuration::from_secs(1),
            max_delay: SignedDuration::from_mins(1),
            user_burst: 20,
            user_refill: SignedDuration::from_secs(10),
            max_entries: 10_000,
        }
    }
}

impl LimitPolicy {
    /// The wait after a source's `attempts`-th attempt.
    fn delay_after(&self, attempts: u32) -> SignedDuration {
        if attempts < self.free_attempts {
            return SignedDuration::ZERO;
        }
        let doublings = (attempts - self.free_attempts).min(30);
        self.first_delay
            .checked_mul(1 << doublings)
            .unwrap_or(self.max_delay)
            .min(self.max_delay)
    }

    /// How far ahead of now a user's bucket may run: a full bucket's worth, less one.
    fn user_tolerance(&self) -> SignedDuration {
        let extra = i32::try_from(self.user_burst.saturating_sub(1)).unwrap_or(i32::MAX);
        self.user_refill
            .checked_mul(extra)
            .unwrap_or(SignedDuration::MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginDecision {
    /// Verify the password; report a success with [`LoginLimiter::succeeded`].
    Allowed,
    /// Refuse without looking at the password; the next attempt from this source can pass at
    /// `until`.
    Wait { until: Timestamp },
}

#[derive(Debug, Clone, Copy)]
struct SourceEntry {
    attempts: u32,
    last: Timestamp,
}

#[derive(Debug, Clone)]
pub struct LoginLimiter {
    policy: LimitPolicy,
    sources: HashMap<LoginKey, SourceEntry>,
    /// Per user: the bucket as a theoretical arrival time (GCRA): the bucket is full when this
    /// is not after now, and each attempt pushes it one refill later.
    users: HashMap<String, Timestamp>,
}

impl LoginLimiter {
    pub fn new(policy: LimitPolicy) -> LoginLimiter {
        LoginLimiter {
            policy,
            sources: HashMap::new(),
            users: HashMap::new(),
        }
    }

    /// Whether an attempt may go ahead now; an allowed attempt is counted at once.
    pub fn attempt(&mut self, key: &LoginKey, now: Timestamp) -> LoginDecision {
        let policy = self.policy;
        let source = self
            .sources
            .get(key)
            .filter(|entry| now < later(entry.last, policy.window))
            .copied();
        let mut until = source
            .map(|entry| later(entry.last, policy.delay_after(entry.attempts)))
            .filter(|&at| now < at);
        let user_due = (!key.is_device())
            .then(|| self.users.get(&key.username).copied())
            .flatten();
        if let Some(due) = user_due {
            let opens = earlier(due, policy.user_tolerance());
            if now < opens {
                until = Some(until.map_or(opens, |at| at.max(opens)));
            }
        }
        if let Some(until) = until {
            return LoginDecision::Wait { until };
        }
        if !self.sources.contains_key(key) {
            make_room(&mut self.sources, policy.max_entries, now, |entry| {
                later(entry.last, policy.window)
            });
        }
        self.sources.insert(
            key.clone(),
            SourceEntry {
                attempts: source.map_or(0, |entry| entry.attempts).saturating_add(1),
                last: now,
            },
        );
        if !key.is_device() {
            if !self.users.contains_key(&key.username) {
                make_room(&mut self.users, policy.max_entries, now, |&due| due);
            }
            let due = user_due.map_or(now, |due| due.max(now));
            self.users
                .insert(key.username.clone(), later(due, policy.user_refill));
        }
        LoginDecision::Allowed
    }

    /// The attempt `key` made was the right password: the source starts afresh and its token
    /// goes back to the user's bucket.
    pub fn succeeded(&mut self, key: &LoginKey, now: Timestamp) {
        self.sources.remove(key);
        if key.is_device() {
            return;
        }
        if let Some(due) = self.users.get_mut(&key.username) {
            *due = earlier(*due, self.policy.user_refill).max(now);
            if *due <= now {
                self.users.remove(&key.username);
            }
        }
    }
}

fn earlier(at: Timestamp, by: SignedDuration) -> Timestamp {
    at.checked_sub(by).unwrap_or(Timestamp::MIN)
}

/// Keeps a table under `max` entries before one is added: entries forgotten by now go first,
/// then those `forgotten_at` names soonest. Evicting shortens a wait; an attacker needs `max`
/// fresh keys to get there, and then loses the least.
fn make_room<K: Clone + Eq + Hash, V>(
    table: &mut HashMap<K, V>,
    max: usize,
    now: Timestamp,
    forgotten_at: impl Fn(&V) -> Timestamp,
) {
    if table.len() < max {
        return;
    }
    table.retain(|_, entry| forgotten_at(entry) > now);
    while table.len() >= max.max(1) {
        let Some(soonest) = table
            .iter()
            .min_by_key(|(_, entry)| forgotten_at(entry))
            .map(|(key, _)| key.clone())
        else {
            break;
        };
        table.remove(&soonest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> Timestamp {
        "2026-11-26T12:00:00Z".parse().unwrap()
    }

    fn at(seconds: i64) -> Timestamp {
        t0() + SignedDuration::from_secs(seconds)
    }

    fn key(user: &str) -> LoginKey {
        LoginKey::new(user, "192.0.2.7".parse().unwrap())
    }

    fn from(user: &str, n: u32) -> LoginKey {
        LoginKey::new(user, IpAddr::from([198, 51, (n >> 8) as u8, n as u8]))
    }

    fn allowed(limiter: &mut LoginLimiter, key: &LoginKey, now: Timestamp) -> bool {
        limiter.attempt(key, now) == LoginDecision::Allowed
    }

    #[test]
    fn five_free_attempts_then_a_delay_that_doubles_up_to_a_minute() {
        let mut limiter = LoginLimiter::new(LimitPolicy::default());
        let alice = key("alice");
        for _ in 0..5 {
            assert!(allowed(&mut limiter, &alice, at(0)));
        }
        assert_eq!(
            limiter.attempt(&alice, at(0)),
            LoginDecision::Wait { until: at(1) }
        );
        let mut now = at(1);
        let mut waits = Vec::new();
        for _ in 0..9 {
            assert!(allowed(&mut limiter, &alice, now));
            let LoginDecision::Wait { until } = limiter.attempt(&alice, now) else {
                panic!("no wait after an attempt past the free ones");
            };
            waits.push(until.duration_since(now).as_secs());
            now = until;
        }
        assert_eq!(waits, [2, 4, 8, 16, 32, 60, 60, 60, 60]);
        // Someone else, and alice from elsewhere, are not slowed.
        assert!(allowed(&mut limiter, &key("bob"), now));
        assert!(allowed(&mut limiter, &from("alice", 1), now));
    }

    #[test]
    fn a_quiet_window_or_a_success_forgets_the_source() {
        let mut limiter = LoginLimiter::new(LimitPolicy::default());
        let alice = key("alice");
        for second in 0..8 {
            limiter.attempt(&alice, at(second * 100));
        }
        assert!(matches!(
            limiter.attempt(&alice, at(701)),
            LoginDecision::Wait { .. }
        ));
        // Fifteen quiet minutes: five free attempts again.
        let later = 700 + 15 * 60;
        for _ in 0..5 {
            assert!(allowed(&mut limiter, &alice, at(later)));
        }
        limiter.succeeded(&alice, at(later));
        for _ in 0..5 {
            assert!(allowed(&mut limiter, &alice, at(later)));
        }
    }

    #[test]
    fn many_addresses_share_one_budget_per_user() {
        let mut limiter = LoginLimiter::new(LimitPolicy::default());
        // Twenty addresses get one attempt each at once; the twenty-first waits for the bucket.
        for n in 0..20 {
            assert!(
                allowed(&mut limiter, &from("admin", n), at(0)),
                "address {n}"
            );
        }
        assert_eq!(
            limiter.attempt(&from("admin", 20), at(0)),
            LoginDecision::Wait { until: at(10) }
        );
        assert!(allowed(&mut limiter, &from("admin", 21), at(10)));
        // Another user is untouched.
        assert!(allowed(&mut limiter, &from("bob", 0), at(0)));
    }

    #[test]
    fn a_known_device_logs_in_while_addresses_drain_the_budget() {
        let mut limiter = LoginLimiter::new(LimitPolicy::default());
        let owner = LoginKey::device("admin", "d1");
        for second in 0..600 {
            for n in 0..50 {
                limiter.attempt(&from("admin", n), at(second));
            }
            if second % 60 == 0 {
                assert!(allowed(&mut limiter, &owner, at(second)), "at {second} s");
                limiter.succeeded(&owner, at(second));
            }
        }
        assert!(matches!(
            limiter.attempt(&from("admin", 999), at(599)),
            LoginDecision::Wait { .. }
        ));
    }

    #[test]
    fn a_success_gives_the_token_back() {
        let policy = LimitPolicy {
            user_burst: 2,
            ..LimitPolicy::default()
        };
        let mut limiter = LoginLimiter::new(policy);
        assert!(allowed(&mut limiter, &from("alice", 1), at(0)));
        limiter.succeeded(&from("alice", 1), at(0));
        assert!(allowed(&mut limiter, &from("alice", 2), at(0)));
        assert!(allowed(&mut limiter, &from("alice", 3), at(0)));
        assert!(!allowed(&mut limiter, &from("alice", 4), at(0)));
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
        assert_eq!(
            LoginKey::device("Admin", "d"),
            LoginKey::device("admin", "d")
        );
    }

    #[test]
    fn a_full_table_forgets_the_soonest_forgotten_first() {
        let policy = LimitPolicy {
            max_entries: 3,
            ..LimitPolicy::default()
        };
        let mut limiter = LoginLimiter::new(policy);
        for (n, user) in ["a", "b", "c", "d"].into_iter().enumerate() {
            limiter.attempt(&key(user), at(n as i64));
        }
        assert_eq!(limiter.sources.len(), 3);
        assert!(!limiter.sources.contains_key(&key("a")));
        assert!(limiter.users.len() <= 3);
    }

    proptest! {
        /// Whatever strangers do, a known device is never made to wait longer than
        /// `max_delay` after its own last attempt, and an address no longer than the larger of
        /// `max_delay` and one refill after the last attempt anyone made on the user.
        #[test]
        fn nobody_waits_longer_than_the_longest_delay(
            steps in prop::collection::vec((0u32..6, 0i64..30), 1..300),
        ) {
            let policy = LimitPolicy { max_entries: 100, ..LimitPolicy::default() };
            let mut limiter = LoginLimiter::new(policy);
            let device = LoginKey::device("admin", "owner");
            let mut now = t0();
            let mut device_last = None;
            let mut user_last = None;
            for (who, advance) in steps {
                now += SignedDuration::from_secs(advance);
                let key = if who == 0 { device.clone() } else { from("admin", who) };
                match limiter.attempt(&key, now) {
                    LoginDecision::Allowed => {
                        if who == 0 { device_last = Some(now) } else { user_last = Some(now) }
                    }
                    LoginDecision::Wait { until } => {
                        prop_assert!(until > now);
                        if who == 0 {
                            prop_assert!(until <= later(device_last.unwrap(), policy.max_delay));
                        } else {
                            let bound = policy.max_delay.max(policy.user_refill);
                            let source_last = limiter.sources.get(&key).map(|e| e.last);
                            let latest = source_last.max(user_last).unwrap();
                            prop_assert!(until <= later(latest, bound), "{until} after {latest}");
                        }
                    }
                }
            }
        }

        /// However many addresses guess at one user, they get at most `user_burst` attempts
        /// plus one per refill in any stretch of time, and the tables stay bounded.
        #[test]
        fn addresses_together_never_beat_the_users_budget(
            steps in prop::collection::vec((0u32..1000, 0i64..5), 1..400),
            max_entries in 1usize..50,
        ) {
            let policy = LimitPolicy { max_entries: max_entries.max(2), ..LimitPolicy::default() };
            let mut limiter = LoginLimiter::new(policy);
            let mut allowed_at = Vec::new();
            let mut now = t0();
            for (address, advance) in steps {
                now += SignedDuration::from_secs(advance);
                if limiter.attempt(&from("admin", address), now) == LoginDecision::Allowed {
                    allowed_at.push(now);
                }
                prop_assert!(limiter.sources.len() <= policy.max_entries);
                prop_assert!(limiter.users.len() <= policy.max_entries);
            }
            let refill = policy.user_refill.as_secs();
            for (i, start) in allowed_at.iter().enumerate() {
                for (j, end) in allowed_at.iter().enumerate().skip(i) {
                    let span = end.duration_since(*start).as_secs();
                    let most = i64::from(policy.user_burst) + span / refill;
                    prop_assert!((j - i + 1) as i64 <= most, "{} attempts in {span} s", j - i + 1);
                }
            }
        }
    }
}
