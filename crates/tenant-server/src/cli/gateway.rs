//! `moltbot-saas gateway install-bridge DIR`: puts the OpenClaw bridge plugin
//! (`integrations/openclaw-bridge`) on a gateway host.
//!
//! The plugin's files are embedded in the binary, so the installed binary can do this without
//! the repository. Installing is idempotent: a file that already holds the right bytes is left
//! alone, a changed one is replaced atomically (temporary file, rename), and the directories get
//! mode 0755 and the files 0644, since the gateway refuses a plugin directory anyone may write.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::Subcommand;

use tenant_service::gateway_config::atomic_file::write_with_mode_if_changed;

use super::console::CliResult;

/// `gateway` subcommands.
#[derive(Debug, Subcommand)]
pub enum GatewayCommand {
    /// Install the OpenClaw bridge plugin (which reports messages and sessions to the control
    /// plane) into DIR, e.g. /opt/moltbot-saas/openclaw-bridge; then set
    /// SAAS_GATEWAY_BRIDGE_PATH=DIR. Safe to run again: unchanged files are left alone.
    InstallBridge {
        /// The plugin's directory on the gateway host (created if missing).
        dir: PathBuf,
    },
}

macro_rules! plugin_files {
    ($($path:literal),+ $(,)?) => {
        &[$(($path, include_bytes!(concat!("../../../../integrations/openclaw-bridge/", $path)))),+]
    };
}

/// The plugin's runtime files, by path relative to its directory (tests stay in the repository).
pub const BRIDGE_FILES: &[(&str, &[u8])] = plugin_files!(
    "openclaw.plugin.json",
    "package.json",
    "index.js",
    "README.md",
    "lib/bridge.js",
    "lib/config.js",
    "lib/events.js",
    "lib/sender.js",
    "lib/spool.js",
);

/// What an installation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallReport {
    /// The directory, as given.
    pub dir: PathBuf,
    /// Files written (new or changed).
    pub written: Vec<&'static str>,
    /// Files that already held these bytes.
    pub unchanged: Vec<&'static str>,
}

/// The plugin's id and version, from its embedded manifest.
pub fn plugin_identity() -> (String, String) {
    let manifest = BRIDGE_FILES
        .iter()
        .find(|(p, _)| *p == "openclaw.plugin.json")
        .and_then(|(_, bytes)| serde_json::from_slice::<serde_json::Value>(bytes).ok())
        .unwrap_or_default();
    let field = |k: &str| manifest[k].as_str().unwrap_or("?").to_owned();
    (field("id"), field("version"))
}

/// Writes the plugin's files into `dir`.
pub fn install(dir: &Path) -> io::Result<InstallReport> {
    if dir.exists() && !dir.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", dir.display()),
        ));
    }
    let mut report = InstallReport {
        dir: dir.to_path_buf(),
        written: Vec::new(),
        unchanged: Vec::new(),
    };
    for (rel, bytes) in BRIDGE_FILES {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
            directory_mode(parent)?;
        }
        if write_with_mode_if_changed(&path, bytes, 0o644)? {
            report.written.push(rel);
        } else {
            report.unchanged.push(rel);
        }
    }
    directory_mode(dir)?;
    Ok(report)
}

/// 0755: the gateway loads no plugin from a directory others may write.
fn directory_mode(dir: &Path) -> io::Result<()> {
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode != 0o755 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Runs a `gateway` subcommand (no settings or database needed).
pub fn run(command: GatewayCommand) -> CliResult {
    match command {
        GatewayCommand::InstallBridge { dir } => {
            let dir = std::path::absolute(&dir)?;
            let report = install(&dir).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot install the bridge into {}: {e}", dir.display()),
                )
            })?;
            let (id, version) = plugin_identity();
            let what = if report.written.is_empty() {
                format!(
                    "already installed: all {} files unchanged",
                    report.unchanged.len()
                )
            } else {
                format!(
                    "{} file(s) written, {} unchanged",
                    report.written.len(),
                    report.unchanged.len()
                )
            };
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "OpenClaw bridge plugin {id} {version} in {}: {what}.\n\
                     Next: run the control plane with SAAS_GATEWAY_BRIDGE_PATH={} and \
                     SAAS_PUBLIC_URL=<its URL as the gateway reaches it>; the gateway config it \
                     renders then loads and enables the plugin (see docs/gateway.md).",
                    dir.display(),
                    dir.display()
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn plugin_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../integrations/openclaw-bridge")
    }

    /// Every file of the plugin but its tests and docs for developers is embedded.
    #[test]
    fn every_runtime_file_of_the_plugin_is_embedded() {
        let mut on_disk = BTreeSet::new();
        let mut stack = vec![plugin_dir()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path
                    .strip_prefix(plugin_dir())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if rel == "test" || rel == "node_modules" {
                    continue;
                }
                if path.is_dir() {
                    stack.push(path);
                } else {
                    on_disk.insert(rel);
                }
            }
        }
        let embedded: BTreeSet<String> = BRIDGE_FILES.iter().map(|(p, _)| (*p).into()).collect();
        assert_eq!(embedded, on_disk);
        for (rel, bytes) in BRIDGE_FILES {
            assert_eq!(
                std::fs::read(plugin_dir().join(rel)).unwrap(),
                *bytes,
                "{rel}"
            );
        }
    }

    /// The plugin ships with the binary: one version for both.
    #[test]
    fn the_plugin_has_the_binary_s_version() {
        let (id, version) = plugin_identity();
        assert_eq!(id, tenant_configgen::BRIDGE_PLUGIN_ID);
        assert_eq!(version, env!("CARGO_PKG_VERSION"));
        let package: serde_json::Value = serde_json::from_slice(
            BRIDGE_FILES
                .iter()
                .find(|(p, _)| *p == "package.json")
                .unwrap()
                .1,
        )
        .unwrap();
        assert_eq!(package["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(package["openclaw"]["extensions"][0], "./index.js");
    }

    #[test]
    fn installs_idempotently_with_the_modes_the_gateway_wants() {
        let dir = std::env::temp_dir()
            .join(format!("bridge-install-{}", uuid::Uuid::new_v4().simple()))
            .join("openclaw-bridge");
        let first = install(&dir).unwrap();
        assert_eq!(first.written.len(), BRIDGE_FILES.len());
        assert!(first.unchanged.is_empty());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o755);
        assert_eq!(mode(&dir.join("lib")), 0o755);
        assert_eq!(mode(&dir.join("index.js")), 0o644);
        let again = install(&dir).unwrap();
        assert!(again.written.is_empty());
        assert_eq!(again.unchanged.len(), BRIDGE_FILES.len());
        // A changed file and a loosened directory are put right.
        std::fs::write(dir.join("lib/spool.js"), "tampered").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let fixed = install(&dir).unwrap();
        assert_eq!(fixed.written, ["lib/spool.js"]);
        assert_eq!(mode(&dir), 0o755);
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("lib"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // A file where the directory should be.
        let file = dir.join("index.js");
        assert!(install(&file).is_err());
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
