//! Test databases: a SQLite file, or a PostgreSQL database cloned from a migrated template.

use std::path::{Path, PathBuf};

use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, QueryDsl, RunQueryDsl, sql_query};
use sha2::{Digest, Sha256};
use tenant_store::schema::{
    api_keys, audit_log, channels, tenant_users, tenants, webhook_deliveries, webhook_endpoints,
};
use tenant_store::{AnyConnection, DatabaseUrl, migrations};

/// How many rows the tables a request may write hold, to prove that a rejected request wrote
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowCounts {
    /// `tenants` rows.
    pub tenants: i64,
    /// `channels` rows.
    pub channels: i64,
    /// `api_keys` rows.
    pub api_keys: i64,
    /// `audit_log` rows.
    pub audit_log: i64,
    /// `tenant_users` rows.
    pub tenant_users: i64,
    /// `webhook_endpoints` rows.
    pub webhook_endpoints: i64,
    /// `webhook_deliveries` rows.
    pub webhook_deliveries: i64,
}

/// One test's own database, removed on drop.
pub struct TestDb {
    url: String,
    kind: Kind,
}

enum Kind {
    Sqlite { dir: PathBuf },
    Postgres { admin_url: String, name: String },
}

/// The advisory lock key guarding template creation.
const TEMPLATE_LOCK: i64 = 0x6d6f_6c74_7465_7374;

impl TestDb {
    /// A migrated database.
    pub fn new() -> Self {
        Self::create(true)
    }

    /// A database with no tables at all (for migration tests).
    pub fn empty() -> Self {
        Self::create(false)
    }

    fn create(migrated: bool) -> Self {
        match std::env::var("TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            Some(admin_url) => Self::postgres(without_tls_unless_asked(&admin_url), migrated),
            None => Self::sqlite(migrated),
        }
    }

    fn sqlite(migrated: bool) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "moltbot-saas-test-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}", dir.join("test.db").display());
        let db = Self {
            url,
            kind: Kind::Sqlite { dir },
        };
        if migrated {
            migrations::run_pending(&mut db.connect()).unwrap();
        }
        db
    }

    fn postgres(admin_url: String, migrated: bool) -> Self {
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("cannot connect to TEST_DATABASE_URL: {e}"));
        let name = format!("moltbot_test_{}", uuid::Uuid::new_v4().simple());
        if migrated {
            let template = ensure_template(&mut admin, &admin_url);
            admin
                .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
                .unwrap();
        } else {
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap();
        }
        Self {
            url: with_database(&admin_url, &name),
            kind: Kind::Postgres { admin_url, name },
        }
    }

    /// The database URL, as the server takes it.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend(&self) -> &'static str {
        match self.kind {
            Kind::Sqlite { .. } => "sqlite",
            Kind::Postgres { .. } => "postgres",
        }
    }

    /// A direct connection, to look at what the server wrote.
    pub fn connect(&self) -> AnyConnection {
        DatabaseUrl::parse(&self.url).unwrap().connect().unwrap()
    }

    /// Row counts of the tables a request may write, read over a fresh direct connection.
    pub fn row_counts(&self) -> RowCounts {
        let mut conn = self.connect();
        RowCounts {
            tenants: tenants::table.count().get_result(&mut conn).unwrap(),
            channels: channels::table.count().get_result(&mut conn).unwrap(),
            api_keys: api_keys::table.count().get_result(&mut conn).unwrap(),
            audit_log: audit_log::table.count().get_result(&mut conn).unwrap(),
            tenant_users: tenant_users::table.count().get_result(&mut conn).unwrap(),
            webhook_endpoints: webhook_endpoints::table
                .count()
                .get_result(&mut conn)
                .unwrap(),
            webhook_deliveries: webhook_deliveries::table
                .count()
                .get_result(&mut conn)
                .unwrap(),
        }
    }

    /// The SQLite database's files (the database, its WAL while there) and their bytes, for tests
    /// that look for secrets in them.
    pub fn sqlite_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let Kind::Sqlite { dir } = &self.kind else {
            return Vec::new();
        };
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter_map(|path| match std::fs::read(&path) {
                Ok(bytes) => Some((path, bytes)),
                // A `-wal` or `-shm` file goes when the last connection closes, which a pool's
                // thread may do between the listing and the read: nothing left to look at.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => panic!("{}: {e}", path.display()),
            })
            .collect()
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match &self.kind {
            Kind::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Kind::Postgres { admin_url, name } => {
                if let Ok(mut admin) = PgConnection::establish(admin_url) {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            }
        }
    }
}

/// The host list of a PostgreSQL URL (`h1:5432,h2:5433` in `postgres://u@h1:5432,h2:5433/db`).
pub fn pg_hosts(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    Some(
        authority
            .rsplit_once('@')
            .map_or(authority, |(_, hosts)| hosts),
    )
}

/// A PostgreSQL URL with its host list replaced by `hosts`, and `extra` (`key=value&…`) added
/// to its query string.
pub fn with_hosts(url: &str, hosts: &str, extra: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(cut);
    let userinfo = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    let mut out = format!("{scheme}://{}{hosts}{tail}", userinfo.unwrap_or_default());
    if !extra.is_empty() {
        out.push(if tail.contains('?') { '&' } else { '?' });
        out.push_str(extra);
    }
    out
}

/// Replaces the database name of a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A fingerprint of the PostgreSQL migrations, so a changed migration gets a new template.
fn migrations_fingerprint() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/postgres");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut h = Sha256::new();
    for d in dirs {
        for f in ["up.sql", "down.sql"] {
            h.update(d.file_name().unwrap().to_string_lossy().as_bytes());
            h.update(std::fs::read(d.join(f)).unwrap_or_default());
        }
    }
    hex::encode(&h.finalize()[..6])
}

/// Creates the migrated template database once; returns its name.
fn ensure_template(admin: &mut PgConnection, admin_url: &str) -> String {
    let template = format!("moltbot_template_{}", migrations_fingerprint());
    sql_query(format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
        .execute(admin)
        .unwrap();
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let exists = sql_query(format!(
        "SELECT COUNT(*) AS n FROM pg_database WHERE datname = '{template}'"
    ))
    .get_result::<Count>(admin)
    .unwrap()
    .n > 0;
    if !exists {
        let building = format!("{template}_building");
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {building}"))
            .unwrap();
        {
            let mut conn = AnyConnection::Postgresql(
                PgConnection::establish(&with_database(admin_url, &building)).unwrap(),
            );
            migrations::run_pending(&mut conn).unwrap();
        }
        // Renamed only when complete, so a crash mid-way never leaves a half-built template.
        admin
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .unwrap();
    }
    sql_query(format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
        .execute(admin)
        .unwrap();
    template
}

/// `url` with `sslmode=disable` unless it names an `sslmode`. The tests talk to a local server,
/// and a test process whose connections used OpenSSL (libpq negotiates TLS by default when the
/// server offers it) can abort at exit after every test passed ("double free or corruption"):
/// OpenSSL's exit handler frees its state while threads of the servers the tests leave running
/// still use their connections (openssl/openssl#6214, diesel-rs/diesel#3441).
pub fn without_tls_unless_asked(url: &str) -> String {
    let query = url.split_once('?').map(|(_, q)| q);
    if query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("sslmode="))) {
        return url.to_owned();
    }
    let sep = if query.is_some() { '&' } else { '?' };
    format!("{url}{sep}sslmode=disable")
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn tls_is_off_unless_the_url_asks() {
        use super::without_tls_unless_asked as plain;
        assert_eq!(
            plain("postgres://u@h:5432/postgres"),
            "postgres://u@h:5432/postgres?sslmode=disable"
        );
        assert_eq!(
            plain("postgres://u@h/postgres?connect_timeout=5"),
            "postgres://u@h/postgres?connect_timeout=5&sslmode=disable"
        );
        assert_eq!(
            plain("postgres://u@h/postgres?sslmode=require"),
            "postgres://u@h/postgres?sslmode=require"
        );
    }

    #[test]
    fn hosts_are_read_and_replaced() {
        use super::{pg_hosts, with_hosts};
        let url = "postgres://u:p@h:5432/db?sslmode=disable";
        assert_eq!(pg_hosts(url), Some("h:5432"));
        assert_eq!(pg_hosts("postgres://h1,h2/db"), Some("h1,h2"));
        assert_eq!(
            with_hosts(url, "a:1,h:5432", "target_session_attrs=read-write"),
            "postgres://u:p@a:1,h:5432/db?sslmode=disable&target_session_attrs=read-write"
        );
        assert_eq!(
            with_hosts("postgres://h/db", "x:2", ""),
            "postgres://x:2/db"
        );
    }

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h", "x"), "postgres://h/x");
    }
}
