//! Connections: one enum over PostgreSQL and SQLite, chosen by URL scheme, and an r2d2 pool.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{ManageConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};

use crate::{StoreError, StoreResult};

/// A connection to either backend. Store functions take `&mut AnyConnection`, so callers can
/// compose several of them in one transaction.
#[derive(diesel::MultiConnection)]
pub enum AnyConnection {
    /// PostgreSQL, for production.
    Postgresql(PgConnection),
    /// SQLite, the embedded default.
    Sqlite(SqliteConnection),
}

/// Which database a URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `postgres://…` or `postgresql://…`, passed to libpq as is.
    Postgres(String),
    /// `sqlite://path`, `sqlite:path` or `sqlite:///absolute/path`.
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    /// Parses a URL; the scheme picks the backend.
    pub fn parse(url: &str) -> StoreResult<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || path.contains(":memory:") || path.contains('?') {
                return Err(StoreError::InvalidUrl(
                    "sqlite URLs name a database file, e.g. sqlite://data/moltbot-saas.db".into(),
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        Err(StoreError::InvalidUrl(
            "the scheme must be sqlite:// or postgres://".into(),
        ))
    }

    /// The backend's name, for logs.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Postgres(_) => "postgres",
            Self::Sqlite(_) => "sqlite",
        }
    }

    /// The URL with any password removed, safe to log.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(p) => format!("sqlite://{}", p.display()),
            Self::Postgres(u) => redact_password(u),
        }
    }

    /// Opens one connection, preparing SQLite for concurrent use.
    pub fn connect(&self) -> StoreResult<AnyConnection> {
        match self {
            Self::Postgres(url) => PgConnection::establish(url)
                .map(AnyConnection::Postgresql)
                .map_err(|e| StoreError::Pool(e.to_string())),
            Self::Sqlite(path) => {
                create_private_file(path)?;
                let path = path.to_str().ok_or_else(|| {
                    StoreError::InvalidUrl("the sqlite path is not valid UTF-8".into())
                })?;
                let mut conn = SqliteConnection::establish(path)
                    .map_err(|e| StoreError::Pool(e.to_string()))?;
                // WAL lets readers run beside the one writer; busy_timeout makes writers queue
                // instead of failing; foreign keys are off by default in SQLite.
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
                )?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

/// Runs `f` in a transaction meant to write. On SQLite its first statement takes the write lock
/// (a no-op `UPDATE`), so a writer that must wait for another queues under `busy_timeout`. A
/// plain deferred transaction that reads before it writes would instead fail at once with
/// `SQLITE_BUSY` when another writer committed in between (its read snapshot is stale, and SQLite
/// does not retry that upgrade): the load benchmark saw 500s on concurrent channel creation.
/// On PostgreSQL this is an ordinary transaction.
pub fn write_transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut AnyConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    conn.transaction(|c| {
        if matches!(c, AnyConnection::Sqlite(_)) {
            c.batch_execute("UPDATE config_revision SET revision = revision WHERE 0")?;
        }
        f(c)
    })
}

fn redact_password(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
            let sep = if tail.is_empty() { "" } else { "/" };
            let tail = tail.split_once('?').map_or(tail, |(t, _)| t);
            format!("{scheme}://{user}@{host}{sep}{tail}")
        }
        None => format!(
            "{scheme}://{}",
            rest.split_once('?').map_or(rest, |(r, _)| r)
        ),
    }
}

/// Creates the database's directory, and the file itself readable by its owner only: it holds
/// tenants' credentials.
fn create_private_file(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |what: &str, e: std::io::Error| {
        StoreError::Pool(format!("cannot create {what} {}: {e}", path.display()))
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail("the directory of", e))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail("database file", e)),
    }
}

/// The r2d2 manager: opens connections for one [`DatabaseUrl`].
#[derive(Debug)]
pub struct ConnectionManager {
    url: DatabaseUrl,
}

impl ManageConnection for ConnectionManager {
    type Connection = AnyConnection;
    type Error = StoreError;

    fn connect(&self) -> Result<AnyConnection, StoreError> {
        self.url.connect()
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), StoreError> {
        conn.batch_execute("SELECT 1").map_err(StoreError::from)
    }

    fn has_broken(&self, _conn: &mut AnyConnection) -> bool {
        false
    }
}

/// A pooled connection.
pub type PooledConn = PooledConnection<ConnectionManager>;

/// Settings of the connection pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// The most connections open at once.
    pub max_size: u32,
    /// How long a caller waits for a free connection before giving up.
    pub connection_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            max_size: 10,
            connection_timeout: Duration::from_secs(5),
        }
    }
}

/// The database: a pool of connections to one backend.
#[derive(Clone)]
pub struct Database {
    pool: Pool<ConnectionManager>,
    backend: &'static str,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("backend", &self.backend)
            .field("state", &self.pool.state())
            .finish()
    }
}

impl Database {
    /// Opens a pool; fails fast when the first connection cannot be made.
    pub fn connect(url: &DatabaseUrl, config: &PoolConfig) -> StoreResult<Self> {
        let pool = Pool::builder()
            .max_size(config.max_size)
            .connection_timeout(config.connection_timeout)
            .test_on_check_out(false)
            .build(ConnectionManager { url: url.clone() })
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        Ok(Self {
            pool,
            backend: url.backend(),
        })
    }

    /// A connection from the pool.
    pub fn get(&self) -> StoreResult<PooledConn> {
        Ok(self.pool.get()?)
    }

    /// `"postgres"` or `"sqlite"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Checks that the database answers.
    pub fn ping(&self) -> StoreResult<()> {
        let mut conn = self.get()?;
        conn.batch_execute("SELECT 1")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_the_backend() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/x.db").unwrap(),
            DatabaseUrl::Sqlite("data/x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap(),
            DatabaseUrl::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:x.db").unwrap(),
            DatabaseUrl::Sqlite("x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("postgres://h/db").unwrap().backend(),
            "postgres"
        );
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    /// `.cargo/config.toml` builds the bundled SQLite with the query planner stability guarantee;
    /// without it every execution of a cached statement with a bound `LIMIT` is re-prepared.
    #[test]
    fn sqlite_is_built_with_a_stable_query_planner() {
        use diesel::RunQueryDsl;
        use diesel::sql_types::Text;
        #[derive(diesel::QueryableByName)]
        struct Opt {
            #[diesel(sql_type = Text)]
            compile_options: String,
        }
        let dir = std::env::temp_dir().join(format!("qpsg-{}", std::process::id()));
        let url = DatabaseUrl::Sqlite(dir.join("q.db"));
        let mut conn = url.connect().unwrap();
        let opts: Vec<Opt> =
            diesel::sql_query("SELECT compile_options FROM pragma_compile_options")
                .load(&mut conn)
                .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            opts.iter().any(|o| o.compile_options == "ENABLE_QPSG"),
            "LIBSQLITE3_FLAGS from .cargo/config.toml did not reach the SQLite build"
        );
    }

    #[test]
    fn redaction_drops_the_password() {
        let u = DatabaseUrl::parse("postgres://app:hunter2@db:5432/saas?sslmode=require").unwrap();
        assert_eq!(u.redacted(), "postgres://app@db:5432/saas");
        let u = DatabaseUrl::parse("postgres://db/saas").unwrap();
        assert_eq!(u.redacted(), "postgres://db/saas");
    }
}
