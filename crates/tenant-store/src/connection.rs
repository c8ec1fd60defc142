//! Connections: one enum over PostgreSQL and SQLite, chosen by URL scheme (the pool over it is
//! in `database.rs`).

use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
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

    /// The URL with libpq's `connect_timeout` set to `secs`, unless it sets one itself (or is
    /// not PostgreSQL, or `secs` is 0). Without it a host that drops packets holds a connection
    /// attempt for as long as the kernel retries (minutes); with several hosts
    /// (`postgres://u@h1,h2/db`) the timeout applies to each, so a dead first host costs at most
    /// that before the next is tried.
    pub fn with_connect_timeout(&self, secs: u64) -> Self {
        match self {
            Self::Postgres(url) if secs > 0 && !has_parameter(url, "connect_timeout") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                Self::Postgres(format!("{url}{sep}connect_timeout={secs}"))
            }
            other => other.clone(),
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
                // instead of failing (set first: switching to WAL takes a lock, and connections
                // opened together would otherwise fail at once); foreign keys are off by default
                // in SQLite.
                conn.batch_execute("PRAGMA busy_timeout = 10000")?;
                // A new database gets incremental auto-vacuum (it only takes before the first
                // table, and before WAL mode writes the header), so the purge can return freed
                // pages and the file shrinks. Asked only of an empty file: setting it may write,
                // and the file may be read-only.
                if page_count(&mut conn)? == 0 {
                    conn.batch_execute("PRAGMA auto_vacuum = INCREMENTAL")?;
                }
                conn.batch_execute(
                    "PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )?;
                Ok(AnyConnection::Sqlite(conn))
            }
        }
    }
}

/// The pages of an SQLite database (0: a new, empty file).
fn page_count(conn: &mut SqliteConnection) -> StoreResult<i64> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Pages {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let pages: Pages =
        diesel::sql_query("SELECT page_count AS n FROM pragma_page_count").get_result(conn)?;
    Ok(pages.n)
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

/// Whether a PostgreSQL URL's query string sets `name`.
fn has_parameter(url: &str, name: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| pair.split_once('=').map_or(pair, |(k, _)| k) == name)
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

    /// libpq's own failover: several hosts in the authority, tried in order.
    #[test]
    fn several_hosts_parse_and_redact() {
        let url = "postgres://app:hunter2@db1:5432,db2:5433/saas?target_session_attrs=read-write";
        let u = DatabaseUrl::parse(url).unwrap();
        assert_eq!(
            u,
            DatabaseUrl::Postgres(url.into()),
            "passed to libpq as is"
        );
        assert_eq!(u.redacted(), "postgres://app@db1:5432,db2:5433/saas");
        let u = DatabaseUrl::parse("postgres://db1,db2/saas?password=hunter2").unwrap();
        assert_eq!(u.redacted(), "postgres://db1,db2/saas");
    }

    #[test]
    fn a_connect_timeout_is_added_unless_the_url_sets_one() {
        let t = |url: &str, secs| match DatabaseUrl::parse(url).unwrap().with_connect_timeout(secs)
        {
            DatabaseUrl::Postgres(u) => u,
            DatabaseUrl::Sqlite(p) => p.display().to_string(),
        };
        assert_eq!(t("postgres://h/db", 5), "postgres://h/db?connect_timeout=5");
        assert_eq!(
            t("postgres://h1,h2/db?target_session_attrs=read-write", 3),
            "postgres://h1,h2/db?target_session_attrs=read-write&connect_timeout=3"
        );
        assert_eq!(
            t("postgres://h/db?connect_timeout=9", 5),
            "postgres://h/db?connect_timeout=9"
        );
        assert_eq!(t("postgres://h/db", 0), "postgres://h/db");
        assert_eq!(t("sqlite://x.db", 5), "x.db");
    }
}
