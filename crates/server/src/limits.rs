//! What keeps the server standing under hostile traffic, with the stack's 128 MiB memory limit
//! in mind: a bounded number of password checks, each in argon2 memory that is reused; a cap
//! on connections, in total and per client; deadlines for headers and bodies; small bodies on
//! the routes anyone may call; and a shutdown that does not wait for browsers.
//!
//! The numbers are in [`Limits::default`]; `docs/benchmarks.md` has the peak memory they give
//! under attack.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use swarmkeeper_auth::{
    hash_password_in, verify_login_in, verify_password_in, Argon2Memory, PasswordError,
};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::error::AppError;

/// The bounds the server runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Password checks (argon2, 19 MiB each) running at once ...
    pub password_checks: usize,
    /// ... and those of strangers waiting for a turn; past both, a login is answered 503 with
    /// `Retry-After` ...
    pub password_queue: usize,
    /// ... of which one client address may hold this many ...
    pub password_queue_per_client: usize,
    /// ... while browsers that logged in before, and signed-in users changing a password, wait
    /// in a lane of their own this long: strangers filling the queue do not keep them out.
    pub password_queue_known: usize,
    /// Open connections, all clients together; past this a new connection is closed at once.
    pub max_connections: usize,
    /// Open connections from one client address (an IPv6 /64); trusted proxies are exempt,
    /// since they carry everyone's.
    pub max_connections_per_client: usize,
    /// A request's headers must arrive in full within this, counted from the first byte a
    /// connection waits for: a silent or trickling connection is closed.
    pub header_read_timeout: Duration,
    /// The largest request head (request line and headers) read; larger ones answer 431.
    pub max_header_bytes: usize,
    /// The routes open to anyone (login, setup, agent reports) must be answered within this,
    /// body included: a trickled body ends with 408.
    pub public_request_timeout: Duration,
    /// Any request body may pause this long between two chunks before the request fails.
    pub body_idle_timeout: Duration,
    /// Agent reports read at once (up to 4 MiB each); others wait their turn.
    pub report_uploads: usize,
    /// On shutdown, requests still running after this are cut off. Live-log streams end at
    /// once.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            password_checks: 2,
            password_queue: 16,
            password_queue_per_client: 4,
            password_queue_known: 4,
            max_connections: 4096,
            max_connections_per_client: 256,
            header_read_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            public_request_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_secs(30),
            report_uploads: 2,
            shutdown_grace: Duration::from_secs(1),
        }
    }
}

/// The largest body `/login` and `/setup` read: a user name, a password of at most 1 KiB, a
/// setup token and a path to return to.
pub const PUBLIC_FORM_BYTES: usize = 16 * 1024;

/// Password checks and hashes, at most `password_checks` at a time, each in an
/// [`Argon2Memory`] taken from a pool of reused ones: the server's memory for argon2 never
/// exceeds `password_checks` × 19 MiB, however fast logins come. Waiting checks queue in two
/// lanes (strangers, with a share per client address; and known callers), and are refused
/// beyond them.
#[derive(Clone)]
pub struct PasswordChecks {
    strangers: Arc<Semaphore>,
    known: Arc<Semaphore>,
    per_client: Arc<Mutex<HashMap<IpAddr, usize>>>,
    max_per_client: usize,
    running: Arc<Semaphore>,
    pool: Arc<Mutex<Vec<Argon2Memory>>>,
}

/// Who asks for a password check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Asker {
    /// A browser that logged in as the user before, or a signed-in user.
    Known,
    /// Anyone else, from this client address.
    Stranger(IpAddr),
}

/// A place in the queue of password checks; see [`PasswordChecks::admit`].
pub struct CheckTicket {
    checks: PasswordChecks,
    _place: OwnedSemaphorePermit,
    client: Option<IpAddr>,
}

impl PasswordChecks {
    pub fn new(limits: &Limits) -> PasswordChecks {
        let running = limits.password_checks.max(1);
        PasswordChecks {
            strangers: Arc::new(Semaphore::new(running + limits.password_queue)),
            known: Arc::new(Semaphore::new(running + limits.password_queue_known)),
            per_client: Arc::default(),
            max_per_client: limits.password_queue_per_client.max(1),
            running: Arc::new(Semaphore::new(running)),
            pool: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// A place in the queue, or [`AppError::Busy`] when the asker's lane (or its client's
    /// share of it) is full. Taken before anything else about an attempt is decided, so that
    /// a refused attempt costs nothing and counts for nothing.
    pub fn admit(&self, asker: Asker) -> Result<CheckTicket, AppError> {
        let (lane, client) = match asker {
            Asker::Known => (&self.known, None),
            Asker::Stranger(ip) => (&self.strangers, Some(client_prefix(ip))),
        };
        if let Some(client) = client {
            let mut counts = lock(&self.per_client);
            let held = counts.entry(client).or_default();
            if *held >= self.max_per_client {
                return Err(AppError::Busy);
            }
            *held += 1;
        }
        // From here on the ticket's drop gives the client's share back.
        let place = lane.clone().try_acquire_owned();
        let ticket = |place| CheckTicket {
            checks: self.clone(),
            _place: place,
            client,
        };
        match place {
            Ok(place) => Ok(ticket(place)),
            Err(_) => {
                if let Some(client) = client {
                    release(&self.per_client, client);
                }
                Err(AppError::Busy)
            }
        }
    }

    /// Bytes of argon2 memory held for reuse.
    pub fn pooled_bytes(&self) -> usize {
        lock(&self.pool).iter().map(Argon2Memory::bytes).sum()
    }
}

fn release(counts: &Mutex<HashMap<IpAddr, usize>>, client: IpAddr) {
    let mut counts = lock(counts);
    if let Some(held) = counts.get_mut(&client) {
        *held -= 1;
        if *held == 0 {
            counts.remove(&client);
        }
    }
}

impl Drop for CheckTicket {
    fn drop(&mut self) {
        if let Some(client) = self.client {
            release(&self.checks.per_client, client);
        }
    }
}

impl CheckTicket {
    /// [`swarmkeeper_auth::verify_login`], in its turn.
    pub async fn verify_login(
        self,
        password: String,
        stored_hash: Option<String>,
    ) -> Result<bool, AppError> {
        self.run(move |memory| verify_login_in(memory, &password, stored_hash.as_deref()))
            .await
    }

    /// [`swarmkeeper_auth::verify_password`] and, when it matches, [`hash_password`] of
    /// `new`: a password change in one turn.
    ///
    /// [`hash_password`]: swarmkeeper_auth::hash_password
    pub async fn change_password(
        self,
        current: String,
        stored_hash: String,
        new: String,
    ) -> Result<Option<Result<String, PasswordError>>, AppError> {
        self.run(move |memory| {
            verify_password_in(memory, &current, &stored_hash)
                .then(|| hash_password_in(memory, &new))
        })
        .await
    }

    /// [`swarmkeeper_auth::hash_password`], in its turn.
    pub async fn hash(self, password: String) -> Result<Result<String, PasswordError>, AppError> {
        self.run(move |memory| hash_password_in(memory, &password))
            .await
    }

    /// Waits for a turn, then runs `work` on a blocking thread with pooled memory. The turn
    /// is held by the blocking thread itself: a client that goes away does not free it while
    /// argon2 still runs.
    async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce(&mut Argon2Memory) -> T + Send + 'static,
    ) -> Result<T, AppError> {
        let turn = self
            .checks
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(AppError::internal)?;
        let pool = self.checks.pool.clone();
        tokio::task::spawn_blocking(move || {
            let _held = (self, turn);
            let mut memory = lock(&pool).pop().unwrap_or_default();
            let out = work(&mut memory);
            lock(&pool).push(memory);
            out
        })
        .await
        .map_err(AppError::internal)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Open connections, counted in total and per client.
#[derive(Clone)]
pub struct Connections {
    counts: Arc<Mutex<Counts>>,
    max_total: usize,
    max_per_client: usize,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// One admitted connection; dropping it frees its place.
pub struct ConnectionSlot {
    counts: Arc<Mutex<Counts>>,
    client: Option<IpAddr>,
}

impl Connections {
    pub fn new(max_total: usize, max_per_client: usize) -> Connections {
        Connections {
            counts: Arc::default(),
            max_total,
            max_per_client,
        }
    }

    /// A place for a connection from `peer`, unless the server or this client has all it may
    /// have. `per_client` is false for a trusted proxy.
    pub fn admit(&self, peer: IpAddr, per_client: bool) -> Option<ConnectionSlot> {
        let mut counts = lock(&self.counts);
        if counts.total >= self.max_total {
            return None;
        }
        let client = per_client.then(|| client_prefix(peer));
        if let Some(client) = client {
            let open = counts.per_client.entry(client).or_default();
            if *open >= self.max_per_client {
                return None;
            }
            *open += 1;
        }
        counts.total += 1;
        Some(ConnectionSlot {
            counts: self.counts.clone(),
            client,
        })
    }

    pub fn open(&self) -> usize {
        lock(&self.counts).total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        counts.total -= 1;
        if let Some(client) = self.client {
            if let Some(open) = counts.per_client.get_mut(&client) {
                *open -= 1;
                if *open == 0 {
                    counts.per_client.remove(&client);
                }
            }
        }
    }
}

/// An IPv4 address, or the /64 of an IPv6 one (one host routinely has a whole /64).
fn client_prefix(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
        v4 => v4,
    }
}

/// Tells long-running responses (live-log streams) that the server is stopping.
#[derive(Clone)]
pub struct Shutdown(Arc<watch::Sender<bool>>);

impl Default for Shutdown {
    fn default() -> Shutdown {
        Shutdown(Arc::new(watch::channel(false).0))
    }
}

impl Shutdown {
    pub fn begin(&self) {
        self.0.send_replace(true);
    }

    /// Whether [`Shutdown::begin`] was called.
    pub fn has_begun(&self) -> bool {
        *self.0.borrow()
    }

    /// Completes once [`Shutdown::begin`] was called (at once if it was already).
    pub fn started(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut receiver = self.0.subscribe();
        async move {
            let _ = receiver.wait_for(|&stopping| stopping).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_are_capped_in_total_and_per_client() {
        let connections = Connections::new(4, 2);
        let a = IpAddr::from([192, 0, 2, 1]);
        let b = IpAddr::from([192, 0, 2, 2]);
        let first = connections.admit(a, true).unwrap();
        let _second = connections.admit(a, true).unwrap();
        assert!(connections.admit(a, true).is_none());
        // A trusted proxy only counts towards the total.
        let _proxy = connections.admit(a, false).unwrap();
        let _other = connections.admit(b, true).unwrap();
        assert!(connections.admit(b, true).is_none(), "the total is reached");
        drop(first);
        let again = connections.admit(a, true);
        assert!(again.is_some());
        assert_eq!(connections.open(), 4);
    }

    #[test]
    fn an_ipv6_client_counts_as_its_64() {
        let connections = Connections::new(10, 1);
        let _one = connections
            .admit("2001:db8::1".parse().unwrap(), true)
            .unwrap();
        assert!(connections
            .admit("2001:db8::ffff".parse().unwrap(), true)
            .is_none());
        assert!(connections
            .admit("2001:db8:0:1::1".parse().unwrap(), true)
            .is_some());
    }

    #[tokio::test]
    async fn password_checks_queue_in_lanes_then_refuse_and_reuse_their_memory() {
        let checks = PasswordChecks::new(&Limits {
            password_checks: 1,
            password_queue: 2,
            password_queue_per_client: 2,
            password_queue_known: 0,
            ..Limits::default()
        });
        let a = Asker::Stranger(IpAddr::from([192, 0, 2, 1]));
        let b = Asker::Stranger(IpAddr::from([192, 0, 2, 2]));
        let first = checks.admit(a).unwrap();
        let second = checks.admit(a).unwrap();
        assert!(matches!(checks.admit(a), Err(AppError::Busy)), "a's share");
        let third = checks.admit(b).unwrap();
        assert!(matches!(checks.admit(b), Err(AppError::Busy)), "the lane");
        // Known callers have a lane of their own.
        let known = checks.admit(Asker::Known).unwrap();
        assert!(matches!(checks.admit(Asker::Known), Err(AppError::Busy)));
        let hash = known
            .hash("correct horse battery".into())
            .await
            .unwrap()
            .unwrap();
        assert!(first
            .verify_login("correct horse battery".into(), Some(hash))
            .await
            .unwrap());
        assert_eq!(checks.pooled_bytes(), 19 * 1024 * 1024);
        assert!(checks.admit(a).is_ok(), "a check done gives its place back");
        drop((second, third));
        assert!(checks.admit(b).is_ok());
        assert!(checks.admit(Asker::Known).is_ok());
    }

    #[tokio::test]
    async fn shutdown_wakes_those_waiting_and_those_who_come_later() {
        let shutdown = Shutdown::default();
        let waiting = tokio::spawn(shutdown.started());
        shutdown.begin();
        waiting.await.unwrap();
        shutdown.started().await;
    }
}
