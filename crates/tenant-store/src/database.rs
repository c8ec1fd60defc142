//! The database handle: an r2d2 pool of [`AnyConnection`]s guarded by the circuit
//! (`circuit.rs`), which never hands out a connection known to be broken.
//!
//! A connection is dropped instead of going back to the pool when a statement on it failed at
//! the connection level (closed, cannot send, session terminated by the server: see
//! [`crate::error`]), when its transaction could not be rolled back (Diesel's
//! `R2D2Connection::is_broken`), when it met a read-only database (so that a fresh connection
//! finds the writable one again: a fixed file, or the new primary after a failover), or when it
//! was opened before a connection broke or the database went away. Each connection carries a
//! small watch (a Diesel instrumentation) that sees its statements' errors; nothing is sent to
//! the database to check a connection (no `SELECT 1` per check-out). The pool reopens what it
//! drops in the background, waiting longer after each failed attempt (up to
//! [`PoolConfig::reconnect_max`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::r2d2::{HandleError, ManageConnection, Pool, PooledConnection, R2D2Connection};

use crate::circuit::Circuit;
use crate::error::{DatabaseFault, connection_lost, fault_of};
use crate::{AnyConnection, DatabaseUrl, StoreError, StoreResult};

/// How long a caller waiting for a free connection sleeps before looking at the circuit again.
const WAIT_SLICE: Duration = Duration::from_millis(50);

/// Settings of the connection pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The most connections open at once.
    pub max_size: u32,
    /// How long a caller waits for a free connection (all are busy, or being reopened) before
    /// it is answered "unavailable".
    pub connection_timeout: Duration,
    /// The longest wait between two attempts to reach a database that is away (the circuit's
    /// probes, the pool's reconnects): bounds how long recovery takes once it is back.
    pub reconnect_max: Duration,
    /// libpq's `connect_timeout` in seconds when the URL sets none (0: libpq's default, no
    /// limit); see [`DatabaseUrl::with_connect_timeout`].
    pub connect_timeout_secs: u64,
    /// How many idle connections the pool keeps open by itself, opening them on its own threads
    /// (`None`: `max_size`). The default, `Some(0)`, opens a connection only when one is asked
    /// for and none is idle, so none is ever half-open in a pool thread when the process exits:
    /// libpq with OpenSSL crashes the process if its exit-time clean-up runs during another
    /// thread's TLS handshake (a command of the command line crashed so in 1 run in 8, a test
    /// binary now and then). Connections, once open, stay in the pool until idle for 10 min.
    pub min_idle: Option<u32>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_size: 10,
            connection_timeout: Duration::from_secs(5),
            reconnect_max: Duration::from_millis(500),
            connect_timeout_secs: 5,
            min_idle: Some(0),
        }
    }
}

/// Why a connection must not go back to the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unfit {
    /// It is gone (see [`connection_lost`]).
    Lost,
    /// It met a read-only database.
    ReadOnly,
}

/// Watches one connection's statements (as its Diesel instrumentation): remembers whether it
/// became unfit, and reports storage faults to the circuit's log.
struct ConnectionWatch {
    /// The circuit's generation when the connection was opened.
    generation: u64,
    unfit: Option<Unfit>,
    circuit: Weak<Circuit>,
}

impl Instrumentation for ConnectionWatch {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        let InstrumentationEvent::FinishQuery { error: Some(e), .. } = event else {
            return;
        };
        if connection_lost(e) {
            self.unfit = Some(Unfit::Lost);
            return;
        }
        let Some(fault @ (DatabaseFault::ReadOnly | DatabaseFault::StorageFull)) = fault_of(e)
        else {
            return;
        };
        if fault == DatabaseFault::ReadOnly {
            self.unfit.get_or_insert(Unfit::ReadOnly);
        }
        if let Some(circuit) = self.circuit.upgrade() {
            circuit.storage_fault(fault, &e.to_string());
        }
    }
}

fn watch(conn: &mut AnyConnection) -> Option<&mut ConnectionWatch> {
    conn.instrumentation().downcast_mut::<ConnectionWatch>()
}

/// The r2d2 manager: opens connections for one [`DatabaseUrl`] and tells the circuit how that
/// went.
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
    circuit: Arc<Circuit>,
}

impl ManageConnection for ConnectionManager {
    type Connection = AnyConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<AnyConnection, StoreError> {
        let started = Instant::now();
        let generation = self.circuit.generation();
        match self.url.connect() {
            Ok(mut conn) => {
                conn.set_instrumentation(ConnectionWatch {
                    generation,
                    unfit: None,
                    circuit: Arc::downgrade(&self.circuit),
                });
                self.circuit.connected(started);
                Ok(conn)
            }
            Err(e) => {
                self.circuit.connect_failed(started, &e);
                Err(e)
            }
        }
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        conn.batch_execute("SELECT 1").map_err(StoreError::from)
    }

    /// Called as each connection goes back to the pool; answers from what the connection
    /// already knows, without a round trip.
    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        let (unfit, generation) = watch(conn).map_or((None, u64::MAX), |w| (w.unfit, w.generation));
        if unfit == Some(Unfit::Lost) {
            self.circuit.connection_broke(generation);
            return true;
        }
        unfit.is_some()
            || generation < self.circuit.generation()
            || std::thread::panicking()
            || R2D2Connection::is_broken(conn)
    }
}

/// Failed connection attempts are the circuit's to report (once per outage), not r2d2's (its
/// default handler logs each attempt as an error).
#[derive(Debug)]
struct QuietErrors;

impl HandleError<StoreError> for QuietErrors {
    fn handle_error(&self, error: StoreError) {
        tracing::debug!(error = %error, "database connection attempt failed");
    }
}

/// A pooled connection.
pub type PooledConn = PooledConnection<ConnectionManager>;

/// Figures of the pool, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// The most connections open at once.
    pub max_size: u32,
    /// Connections open now.
    pub connections: u32,
    /// Of which idle in the pool.
    pub idle: u32,
    /// Check-outs that found no idle connection and had to wait, since start.
    pub waits: u64,
    /// Of which none became free in time (answered "unavailable").
    pub wait_timeouts: u64,
}

#[derive(Debug, Default)]
struct WaitCounters {
    waits: AtomicU64,
    timeouts: AtomicU64,
}

/// The database: a pool of connections to one backend, and its circuit.
#[derive(Clone)]
pub struct Database {
    pool: Pool<ConnectionManager>,
    circuit: Arc<Circuit>,
    backend: &'static str,
    acquire_timeout: Duration,
    waits: Arc<WaitCounters>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .field("circuit", &self.circuit)
            .finish()
    }
}

impl Database {
    /// Opens a pool; fails fast, with the database's own error, when a first connection cannot
    /// be made. The pool's connections are opened in the background.
    pub fn connect(url: &DatabaseUrl, config: &PoolConfig) -> StoreResult<Self> {
        let url = url.with_connect_timeout(config.connect_timeout_secs);
        drop(url.connect()?);
        let reconnect_max = config.reconnect_max.max(Duration::from_millis(1));
        let circuit = Arc::new(Circuit::new(url.clone(), reconnect_max));
        let pool = Pool::builder()
            .max_size(config.max_size)
            .min_idle(config.min_idle)
            // r2d2 waits at most half of this between two attempts to reopen a connection.
            .connection_timeout(reconnect_max.saturating_mul(2))
            .test_on_check_out(false)
            .error_handler(Box::new(QuietErrors))
            .build_unchecked(ConnectionManager {
                url: url.clone(),
                circuit: Arc::clone(&circuit),
            });
        Ok(Self {
            pool,
            circuit,
            backend: url.backend(),
            acquire_timeout: config.connection_timeout,
            waits: Arc::default(),
        })
    }

    /// A connection from the pool; at once `Unavailable` while the database is known to be
    /// away, and after `connection_timeout` when none became free.
    pub fn get(&self) -> StoreResult<PooledConn> {
        self.circuit.check()?;
        loop {
            let mut conn = match self.pool.try_get() {
                Some(conn) => conn,
                None => self.wait_for_connection()?,
            };
            let current =
                watch(&mut conn).is_none_or(|w| w.generation >= self.circuit.generation());
            if current {
                return Ok(conn);
            }
            // Opened before a connection broke or the database went away: dropped unused (see
            // `has_broken`), and reopened by the pool.
            drop(conn);
            self.circuit.check()?;
        }
    }

    fn wait_for_connection(&self) -> StoreResult<PooledConn> {
        self.waits.waits.fetch_add(1, Ordering::Relaxed);
        let deadline = Instant::now() + self.acquire_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.waits.timeouts.fetch_add(1, Ordering::Relaxed);
                return Err(StoreError::Unavailable(format!(
                    "no database connection became free within {} ms",
                    self.acquire_timeout.as_millis()
                )));
            }
            if let Ok(conn) = self.pool.get_timeout(left.min(WAIT_SLICE)) {
                return Ok(conn);
            }
            self.circuit.check()?;
        }
    }

    /// `"postgres"` or `"sqlite"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Whether the database is thought reachable: `false` from the moment a connection could
    /// not be made until one could again. Costs no round trip.
    pub fn is_available(&self) -> bool {
        !self.circuit.is_open()
    }

    /// Connections open and idle in the pool, for diagnostics and tests.
    pub fn pool_state(&self) -> diesel::r2d2::State {
        self.pool.state()
    }

    /// The pool's size, use and waits.
    pub fn pool_stats(&self) -> PoolStats {
        let state = self.pool.state();
        PoolStats {
            max_size: self.pool.max_size(),
            connections: state.connections,
            idle: state.idle_connections,
            waits: self.waits.waits.load(Ordering::Relaxed),
            wait_timeouts: self.waits.timeouts.load(Ordering::Relaxed),
        }
    }

    /// Checks that the database answers.
    pub fn ping(&self) -> StoreResult<()> {
        let mut conn = self.get()?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }
}
