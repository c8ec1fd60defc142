//! `moltbot-saas webhooks …`: operator tasks on the delivery queue.

use std::sync::Arc;

use clap::Subcommand;
use serde_json::json;
use tenant_store::deliveries;
use tenant_webhooks::Dispatcher;

use super::console::{CliResult, print_json};
use super::probes;
use crate::settings::Settings;
use crate::startup::{key_ring, open_database};

/// `webhooks` subcommands.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Deliver everything due now, then print the totals and the queue depth and exit.
    Drain,
    /// Run a dispatcher (no HTTP API) until stopped, e.g. as an extra delivery process. It
    /// serves `/health`, `/ready` and `/metrics` on `--listen`, else on `SAAS_METRICS_ADDR`.
    Dispatch {
        /// `ip:port` of the probes and metrics listener (e.g. when an API on the same host
        /// already listens on `SAAS_METRICS_ADDR`).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Print the queue depth: pending, due now, dead letters, the oldest due's age, open circuits.
    Stats,
}

/// Runs a `webhooks` subcommand.
pub fn run(settings: &Settings, command: WebhooksCommand) -> CliResult {
    let db = open_database(settings)?;
    let ring = key_ring(settings)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match command {
            WebhooksCommand::Stats => {
                let depth = deliveries::queue_depth(&mut *db.get()?, tenant_core::now())?;
                print_json(&json!({
                    "pending": depth.pending, "due": depth.due, "deadLetters": depth.failed,
                    "oldestDueAgeSecs": depth.oldest_due_age_secs,
                    "circuitsOpen": depth.circuits_open,
                }))
            }
            WebhooksCommand::Drain => {
                let dispatcher = Dispatcher::new(
                    db.clone(),
                    ring.clone(),
                    settings.webhooks.dispatcher_config(),
                )?;
                let o = dispatcher.drain().await?;
                let depth = deliveries::queue_depth(&mut *db.get()?, tenant_core::now())?;
                tracing::info!(
                    claimed = o.claimed,
                    succeeded = o.succeeded,
                    "webhook queue drained"
                );
                print_json(&json!({
                    "claimed": o.claimed, "succeeded": o.succeeded, "retried": o.retried,
                    "failed": o.failed, "pending": depth.pending, "deadLetters": depth.failed,
                }))
            }
            WebhooksCommand::Dispatch { listen } => {
                // Probes and metrics on a listener of their own: this process has no API.
                let probes = match listen.or(settings.metrics.listen) {
                    Some(addr) => Some(probes::start(
                        addr,
                        db.clone(),
                        settings.ready_timeout,
                        settings.metrics.enabled,
                    )?),
                    None => None,
                };
                let probes = probes.map(|server| {
                    let handle = server.handle();
                    tokio::spawn(server);
                    handle
                });
                let dispatcher = Arc::new(Dispatcher::new(
                    db,
                    ring,
                    settings.webhooks.dispatcher_config(),
                )?);
                let mut running = tokio::spawn(Arc::clone(&dispatcher).run());
                tokio::select! {
                    _ = &mut running => {}
                    r = super::stop_signal() => {
                        r?;
                        // Gracefully: unsent claims given back, the sends in flight recorded.
                        dispatcher.stop();
                        if tokio::time::timeout(dispatcher.stop_grace(), &mut running).await.is_err() {
                            tracing::warn!("the webhook dispatcher did not stop in time: its claims are left to expire");
                            running.abort();
                        }
                    }
                }
                if let Some(probes) = probes {
                    probes.stop(true).await;
                }
                Ok(())
            }
        }
    })
}
