//! What kind of deployment this is, and where it keeps the secrets it generates for itself.
//!
//! A secret nobody configured (the key ring sealing credentials, the API key secret, the JWT
//! signing key) is generated once into the data directory in development, and refused in
//! production: see [`crate::dev_secrets`].

use std::path::{Path, PathBuf};

use tenant_store::DatabaseUrl;

/// Which kind of deployment this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// A developer's machine or a test: missing secrets are generated into the data directory,
    /// with a loud warning.
    Development,
    /// A real deployment: every secret must be configured; nothing is generated.
    Production,
}

impl std::str::FromStr for Environment {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "development" | "dev" => Ok(Self::Development),
            "production" | "prod" => Ok(Self::Production),
            _ => Err("must be `development` or `production`".into()),
        }
    }
}

/// The deployment's kind and its data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    /// Development or production.
    pub environment: Environment,
    /// Where development secrets are generated and kept (mode 0600).
    pub data_dir: PathBuf,
}

impl Deployment {
    /// Whether secrets must be configured rather than generated.
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }
}

/// The data directory when none is configured: the SQLite file's directory, or `data` for
/// PostgreSQL.
pub fn default_data_dir(url: &DatabaseUrl) -> PathBuf {
    match url {
        DatabaseUrl::Sqlite(path) => match path.parent() {
            Some(dir) if dir != Path::new("") => dir.to_path_buf(),
            _ => PathBuf::from("."),
        },
        DatabaseUrl::Postgres(_) => PathBuf::from("data"),
    }
}
