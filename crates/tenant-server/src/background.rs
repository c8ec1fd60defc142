//! Work the server runs beside the HTTP API: the webhook dispatcher and the purge of inactive
//! sessions.

use std::sync::Arc;
use std::time::Duration;

use tenant_store::Database;
use tenant_store::crypto::KeyRing;
use tenant_webhooks::Dispatcher;
use tenant_webhooks::delivery::DispatchError;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::webhook_service::{UrlRules, WebhookState};
use crate::webhook_settings::WebhookSettings;

/// The background tasks, built with the server and spawned when it runs.
#[derive(Debug)]
pub struct Background {
    db: Database,
    dispatcher: Option<Arc<Dispatcher>>,
    wake: Arc<Notify>,
    session_ttl: Duration,
}

impl Background {
    /// Builds the dispatcher when `SAAS_WEBHOOK_DISPATCHER` is on; `ring` opens the endpoints'
    /// signing secrets.
    pub fn new(
        db: &Database,
        ring: &Arc<KeyRing>,
        settings: &WebhookSettings,
    ) -> Result<Self, DispatchError> {
        let dispatcher = if settings.dispatcher {
            Some(Arc::new(Dispatcher::new(
                db.clone(),
                Arc::clone(ring),
                settings.dispatcher_config(),
            )?))
        } else {
            None
        };
        let wake = dispatcher.as_ref().map_or_else(Arc::default, |d| d.waker());
        Ok(Self {
            db: db.clone(),
            dispatcher,
            wake,
            session_ttl: settings.session_ttl,
        })
    }

    /// What handlers share.
    pub fn webhook_state(&self, settings: &WebhookSettings) -> Arc<WebhookState> {
        Arc::new(WebhookState {
            rules: UrlRules {
                policy: settings.policy(),
                require_https: settings.require_https,
            },
            secret_overlap: settings.secret_overlap,
            wake: self.wake.clone(),
        })
    }

    /// Starts the tasks on the current runtime.
    pub fn spawn(self) -> JoinSet<()> {
        let mut tasks = JoinSet::new();
        if let Some(d) = self.dispatcher {
            tasks.spawn(d.run());
        }
        tasks.spawn(purge_sessions(self.db, self.session_ttl));
        tasks
    }
}

/// Deletes sessions inactive longer than `ttl`, every minute (or every `ttl`, if shorter).
async fn purge_sessions(db: Database, ttl: Duration) {
    let period = ttl.min(Duration::from_secs(60));
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    loop {
        tokio::time::sleep(period).await;
        let db = db.clone();
        let purged = tokio::task::spawn_blocking(move || {
            let mut conn = db.get()?;
            tenant_store::sessions::purge_inactive(&mut conn, tenant_core::now() - ttl)
        })
        .await;
        match purged {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::info!(sessions.purged = n, "inactive sessions purged"),
            Ok(Err(e)) => tracing::warn!(error = %e, "session purge failed"),
            Err(e) => tracing::warn!(error = %e, "session purge task failed"),
        }
    }
}
