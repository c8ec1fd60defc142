//! Work the server runs beside the HTTP API: the webhook dispatcher, the purge of inactive
//! sessions and expired `Idempotency-Key`s, the retention purge (with deleted tenants' rows), and keeping the tenant read cache in sync with other processes' changes.

use std::sync::Arc;
use std::time::Duration;

use tenant_store::Database;
use tenant_store::crypto::KeyRing;
use tenant_webhooks::Dispatcher;
use tenant_webhooks::delivery::DispatchError;
use tokio::sync::Notify;
use tokio::task::{JoinHandle, JoinSet};

use crate::lifecycle::RetentionPolicy;
use crate::lifecycle::purge::Purger;
use crate::tenant_cache::TenantCache;
use crate::webhooks::WebhookConfig;
use crate::webhooks::endpoints::WebhookState;

/// The background tasks, built with the server and spawned when it runs.
#[derive(Debug)]
pub struct Background {
    db: Database,
    dispatcher: Option<Arc<Dispatcher>>,
    wake: Arc<Notify>,
    session_ttl: Duration,
    tenant_cache: Option<(Arc<TenantCache>, Duration)>,
    purger: Option<Purger>,
}

impl Background {
    /// Builds the dispatcher when the settings have one (`SAAS_WEBHOOK_DISPATCHER`); `ring`
    /// opens the endpoints' signing secrets.
    pub fn new(
        db: &Database,
        ring: &Arc<KeyRing>,
        settings: &WebhookConfig,
    ) -> Result<Self, DispatchError> {
        let dispatcher = match &settings.dispatcher {
            Some(config) => Some(Arc::new(Dispatcher::new(
                db.clone(),
                Arc::clone(ring),
                config.clone(),
            )?)),
            None => None,
        };
        let wake = dispatcher.as_ref().map_or_else(Arc::default, |d| d.waker());
        Ok(Self {
            db: db.clone(),
            dispatcher,
            wake,
            session_ttl: settings.session_ttl,
            tenant_cache: None,
            purger: None,
        })
    }

    /// Also keeps `cache` in sync, checking the store every `interval` (when the cache is on).
    pub fn with_tenant_cache(mut self, cache: Arc<TenantCache>, interval: Duration) -> Self {
        self.tenant_cache = cache.enabled().then_some((cache, interval));
        self
    }

    /// Also purges history past `policy`'s retention and deleted tenants' rows, every
    /// `policy.interval` (one replica at a time).
    pub fn with_retention(mut self, policy: RetentionPolicy) -> Self {
        self.purger = Some(Purger::new(self.db.clone(), policy));
        self
    }

    /// What the webhook use cases share: URL rules, rotation overlap, the dispatcher's wake-up.
    pub fn webhook_state(&self, settings: &WebhookConfig) -> Arc<WebhookState> {
        Arc::new(WebhookState {
            rules: settings.rules.clone(),
            secret_overlap: settings.secret_overlap,
            wake: self.wake.clone(),
        })
    }

    /// Starts the tasks on the current runtime.
    pub fn spawn(self) -> Running {
        let mut tasks = JoinSet::new();
        let dispatcher = self
            .dispatcher
            .map(|d| (Arc::clone(&d), tokio::spawn(d.run())));
        if let Some((cache, interval)) = self.tenant_cache {
            tasks.spawn(sync_tenant_cache(self.db.clone(), cache, interval));
        }
        if let Some(purger) = self.purger {
            tasks.spawn(purger.run());
        }
        tasks.spawn(purge_expired(self.db, self.session_ttl));
        Running { tasks, dispatcher }
    }
}

/// The background work, running.
#[derive(Debug)]
pub struct Running {
    /// The tasks stopped by aborting them; the caller may add its own.
    pub tasks: JoinSet<()>,
    dispatcher: Option<(Arc<Dispatcher>, JoinHandle<()>)>,
}

impl Running {
    /// Stops everything. The webhook dispatcher first, gracefully ([`Dispatcher::stop`]: unsent
    /// claims given back, the sends in flight finished and recorded) for at most its
    /// [`Dispatcher::stop_grace`], then aborted; the other tasks are aborted. When this
    /// returns, no task holds the database any more.
    pub async fn stop(mut self) {
        if let Some((dispatcher, mut running)) = self.dispatcher.take() {
            dispatcher.stop();
            let grace = dispatcher.stop_grace();
            if tokio::time::timeout(grace, &mut running).await.is_err() {
                tracing::warn!(
                    grace_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX),
                    "the webhook dispatcher did not stop in time: its claims are left to expire"
                );
                running.abort();
                let _ = running.await;
            }
        }
        self.tasks.shutdown().await;
    }
}

/// Reads the config revision every `interval` and hands it to the tenant cache, which empties
/// itself when another process changed a tenant. A failed read leaves the cache unsynced, and
/// after three intervals it is bypassed; the next read that succeeds syncs it again. While the
/// database is away each read fails at once (the store's circuit), so polling on costs nothing,
/// and the outage itself is the store's to log.
async fn sync_tenant_cache(db: Database, cache: Arc<TenantCache>, interval: Duration) {
    let mut failing = false;
    loop {
        let db = db.clone();
        let read = tokio::task::spawn_blocking(move || {
            let mut conn = db.get()?;
            tenant_store::config_revision::current(&mut conn)
        })
        .await;
        match read {
            Ok(Ok(revision)) => {
                cache.observe_revision(revision);
                failing = false;
            }
            Ok(Err(e)) if !failing => {
                failing = true;
                if e.fault().is_none() {
                    tracing::warn!(error = %e, "tenant cache: cannot read the revision");
                }
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %e, "tenant cache: sync task failed");
            }
            _ => {}
        }
        tokio::time::sleep(interval).await;
    }
}

/// Deletes sessions inactive longer than `ttl`, the `Idempotency-Key`s past their expiry and
/// the slug redirects expired or shadowed by a tenant holding the slug, every minute (or every
/// `ttl`, if shorter).
async fn purge_expired(db: Database, ttl: Duration) {
    let period = ttl.min(Duration::from_secs(60));
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    loop {
        tokio::time::sleep(period).await;
        let db = db.clone();
        let purged = tokio::task::spawn_blocking(move || {
            let mut conn = db.get()?;
            let now = tenant_core::now();
            let sessions = tenant_store::sessions::purge_inactive(&mut conn, now - ttl)?;
            let keys = tenant_store::idempotency::delete_expired(&mut conn, now)?;
            let redirects = tenant_store::slug_redirects::delete_expired(&mut conn, now)?;
            Ok::<_, tenant_store::StoreError>((sessions, keys, redirects))
        })
        .await;
        match purged {
            Ok(Ok((0, 0, 0))) => {}
            Ok(Ok((sessions, keys, redirects))) => tracing::info!(
                sessions.purged = sessions,
                idempotency_keys.purged = keys,
                slug_redirects.purged = redirects,
                "inactive sessions, expired idempotency keys and slug redirects purged"
            ),
            // The store logs a database outage itself; the next round purges what this missed.
            Ok(Err(e)) if e.fault().is_some() => {
                tracing::debug!(error = %e, "purge skipped");
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "purge failed"),
            Err(e) => tracing::warn!(error = %e, "purge task failed"),
        }
    }
}
