//! The database circuit: once the database is known to be unreachable, requests fail at once
//! (no wait for a connection that cannot come), one background thread probes the database with
//! backoff, and the first connection that succeeds closes the circuit again.
//!
//! The circuit opens when a new connection cannot be made (refused, timed out, "the database
//! system is shutting down"): that is the only sure sign that the database, not one connection,
//! is away. A connection that breaks in use (terminated, reset) only makes every connection
//! opened before it suspect ([`Circuit::generation`]): those are dropped unused on their next
//! check-out, so after a restart or `pg_terminate_backend` one request meets a dead connection,
//! not one per connection in the pool. Nothing here costs a round trip on the path of a request:
//! the check is one atomic load.
//!
//! The log says once that the database went away (with the cause) and once that it is back
//! (with how long it was away and how many connections it refused meanwhile); broken connections
//! and storage faults are logged at most once a minute.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use crate::{DatabaseFault, DatabaseUrl, StoreError, StoreResult};

/// How often the same storage fault or broken-connection note is logged at most.
const NOTE_EVERY: Duration = Duration::from_secs(60);

/// The first probe's delay after the circuit opened; it doubles up to the configured maximum.
const FIRST_PROBE: Duration = Duration::from_millis(100);

/// The state shared by a [`crate::Database`], its connection manager and every connection's
/// watch.
pub(crate) struct Circuit {
    open: AtomicBool,
    /// Raised whenever connections opened before now should no longer be used.
    generation: AtomicU64,
    /// Connections refused while open (a request asks for one; a batch of group-committed
    /// writes asks once), for the line that says the database is back.
    refused: AtomicU64,
    state: Mutex<State>,
    url: DatabaseUrl,
    backend: &'static str,
    reconnect_max: Duration,
    notes: Mutex<Notes>,
}

struct State {
    /// When the circuit opened, while it is open.
    opened_at: Option<Instant>,
    /// When it last closed (or was created): failures of attempts begun before are stale.
    closed_at: Instant,
    /// Whether a prober thread runs.
    probing: bool,
}

#[derive(Default)]
struct Notes {
    broken: Option<Instant>,
    broken_since_note: u64,
    read_only: Option<Instant>,
    full: Option<Instant>,
}

impl std::fmt::Debug for Circuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Circuit")
            .field("open", &self.is_open())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl Circuit {
    /// A closed circuit for the database at `url`, whose probes wait at most `reconnect_max`.
    pub(crate) fn new(url: DatabaseUrl, reconnect_max: Duration) -> Self {
        Self {
            open: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            state: Mutex::new(State {
                opened_at: None,
                closed_at: Instant::now(),
                probing: false,
            }),
            backend: url.backend(),
            url,
            reconnect_max: reconnect_max.max(Duration::from_millis(1)),
            notes: Mutex::default(),
        }
    }

    /// Fails at once while the database is known to be away.
    pub(crate) fn check(&self) -> StoreResult<()> {
        if self.open.load(Ordering::Acquire) {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(StoreError::Unavailable(
                "the database is unreachable; retrying in the background".into(),
            ));
        }
        Ok(())
    }

    /// Whether the database is known to be away.
    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Connections opened in an earlier generation are not to be used any more.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new connection, begun at `started`, could not be made: opens the circuit (unless the
    /// failure is stale, or says only that the database is busy — no connection slot left on
    /// the server, a SQLite lock held too long — which is contention, not an outage) and starts
    /// the prober.
    pub(crate) fn connect_failed(self: &Arc<Self>, started: Instant, error: &StoreError) {
        let message = error.to_string();
        if is_contention(&message) {
            self.note(
                "a database connection could not be opened: busy",
                Some(&message),
            );
            return;
        }
        let mut state = self.state();
        if state.opened_at.is_some() || started < state.closed_at {
            return;
        }
        state.opened_at = Some(Instant::now());
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.refused.store(0, Ordering::Relaxed);
        self.open.store(true, Ordering::Release);
        tracing::warn!(
            database.backend = self.backend,
            error = %message,
            "database unavailable: answering 503 until it is back"
        );
        if !state.probing {
            state.probing = true;
            let weak = Arc::downgrade(self);
            let spawned = std::thread::Builder::new()
                .name("db-probe".into())
                .spawn(move || probe(&weak));
            if let Err(e) = spawned {
                // Connections the pool keeps trying to open close the circuit as well.
                state.probing = false;
                tracing::error!(error = %e, "cannot start the database probe thread");
            }
        }
    }

    /// A new connection, begun at `started`, was made: closes the circuit if it was open before
    /// that attempt began.
    pub(crate) fn connected(&self, started: Instant) {
        if !self.is_open() {
            return;
        }
        let mut state = self.state();
        let Some(opened_at) = state.opened_at else {
            return;
        };
        if started < opened_at {
            return;
        }
        state.opened_at = None;
        state.closed_at = Instant::now();
        self.open.store(false, Ordering::Release);
        let outage = opened_at.elapsed();
        tracing::info!(
            database.backend = self.backend,
            outage_ms = u64::try_from(outage.as_millis()).unwrap_or(u64::MAX),
            connections.refused = self.refused.load(Ordering::Relaxed),
            "database available again after {:.1} s",
            outage.as_secs_f64()
        );
    }

    /// A connection opened in `generation` broke in use and is being dropped: every connection
    /// opened before it is suspect (a restart or a mass termination ends them all), so they are
    /// replaced unused. When several break together, the first one's bump covers the others
    /// (they are older than it), so the fresh replacements are not thrown away again.
    pub(crate) fn connection_broke(&self, generation: u64) {
        let _ = self.generation.compare_exchange(
            generation,
            generation + 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.note("a database connection broke; reconnecting", None);
    }

    /// Logs a connection that broke or was refused for lack of slots, at most once a minute
    /// (and not while the circuit is open: the outage line says it all), with how many there
    /// were since the last line.
    fn note(&self, what: &'static str, error: Option<&str>) {
        let mut notes = self.notes.lock().unwrap_or_else(PoisonError::into_inner);
        notes.broken_since_note += 1;
        if notes.broken.is_some_and(|at| at.elapsed() < NOTE_EVERY) || self.is_open() {
            return;
        }
        notes.broken = Some(Instant::now());
        let count = std::mem::take(&mut notes.broken_since_note);
        tracing::warn!(
            database.backend = self.backend,
            connections = count,
            error = error.unwrap_or(""),
            "{what}"
        );
    }

    /// A statement met a storage fault: logged at most once a minute per kind.
    pub(crate) fn storage_fault(&self, fault: DatabaseFault, message: &str) {
        let mut notes = self.notes.lock().unwrap_or_else(PoisonError::into_inner);
        let last = match fault {
            DatabaseFault::ReadOnly => &mut notes.read_only,
            DatabaseFault::StorageFull => &mut notes.full,
            DatabaseFault::Unavailable => return,
        };
        if last.is_some_and(|at| at.elapsed() < NOTE_EVERY) {
            return;
        }
        *last = Some(Instant::now());
        tracing::warn!(
            database.backend = self.backend,
            error = %message,
            "the database refuses writes: {}",
            match fault {
                DatabaseFault::StorageFull => "its storage is full (answering 507)",
                _ => "it is read-only (answering 503)",
            }
        );
    }
}

/// Whether a failed connection attempt met a busy database rather than an absent one: no
/// connection slot left (PostgreSQL 53300), or a SQLite lock not released in time.
fn is_contention(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("too many clients")
        || m.contains("remaining connection slots are reserved")
        || m.contains("database is locked")
}

/// Probes until the database answers or the circuit is closed by a pooled connection (or the
/// database handle is gone), waiting twice as long after each failure, up to `reconnect_max`.
fn probe(circuit: &Weak<Circuit>) {
    let mut delay = FIRST_PROBE;
    loop {
        let Some(c) = circuit.upgrade() else { return };
        delay = delay.min(c.reconnect_max);
        {
            // Under the lock, so that an outage starting now either sees this thread still
            // probing or starts its own.
            let mut state = c.state();
            if state.opened_at.is_none() {
                state.probing = false;
                return;
            }
        }
        drop(c);
        std::thread::sleep(delay);
        let Some(c) = circuit.upgrade() else { return };
        let started = Instant::now();
        match c.url.connect().and_then(|mut conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT 1").map_err(StoreError::from)
        }) {
            Ok(()) => c.connected(started),
            Err(e) => tracing::debug!(error = %e, "database probe failed"),
        }
        delay = delay.saturating_mul(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_url() -> (DatabaseUrl, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("circuit-{}", uuid::Uuid::new_v4().simple()));
        (DatabaseUrl::Sqlite(dir.join("c.db")), dir)
    }

    fn wait_until(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_failed_connection_opens_it_and_the_probe_closes_it() {
        let (url, dir) = sqlite_url();
        let c = Arc::new(Circuit::new(url, Duration::from_millis(50)));
        assert!(c.check().is_ok());
        let generation = c.generation();
        c.connect_failed(
            Instant::now(),
            &StoreError::Pool("connection refused".into()),
        );
        assert!(c.is_open());
        assert!(
            c.generation() > generation,
            "connections opened before are suspect"
        );
        let e = c.check().unwrap_err();
        assert_eq!(e.fault(), Some(DatabaseFault::Unavailable));
        assert!(c.check().is_err());
        assert_eq!(c.refused.load(Ordering::Relaxed), 2);
        // The database (a file that can be created) answers the background probe.
        wait_until("the probe closes the circuit", || !c.is_open());
        assert!(c.check().is_ok());
        wait_until("the probe thread ends", || !c.state().probing);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn stale_and_limit_failures_do_not_open_it() {
        let (url, dir) = sqlite_url();
        let c = Arc::new(Circuit::new(url, Duration::from_millis(50)));
        let before = Instant::now();
        c.connect_failed(before, &StoreError::Pool("refused".into()));
        c.connected(before); // begun before the circuit opened: proves nothing
        assert!(c.is_open());
        let after = Instant::now();
        c.connected(after);
        assert!(!c.is_open(), "a connection begun after it opened closes it");
        // An attempt begun before the database came back may still fail: stale.
        c.connect_failed(before, &StoreError::Pool("refused".into()));
        assert!(!c.is_open());
        // No slot left, or a lock held too long: a busy database, not an absent one.
        c.connect_failed(
            Instant::now(),
            &StoreError::Pool("FATAL:  sorry, too many clients already".into()),
        );
        c.connect_failed(
            Instant::now(),
            &StoreError::Unavailable("database is locked".into()),
        );
        assert!(!c.is_open());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn an_unreachable_database_keeps_it_open() {
        // A database file under a regular file cannot be created.
        let c = Arc::new(Circuit::new(
            DatabaseUrl::Sqlite("/dev/null/x.db".into()),
            Duration::from_millis(20),
        ));
        c.connect_failed(Instant::now(), &StoreError::Pool("cannot create".into()));
        std::thread::sleep(Duration::from_millis(300));
        assert!(c.is_open(), "probes keep failing");
        assert!(c.state().probing);
    }

    #[test]
    fn a_broken_connection_makes_older_ones_suspect_without_opening_it() {
        let (url, dir) = sqlite_url();
        let c = Circuit::new(url, Duration::from_millis(50));
        let generation = c.generation();
        c.connection_broke(generation);
        assert_eq!(c.generation(), generation + 1);
        // Another connection of the same (now older) generation: already covered.
        c.connection_broke(generation);
        assert_eq!(c.generation(), generation + 1);
        assert!(!c.is_open());
        let _ = std::fs::remove_dir_all(dir);
    }
}
