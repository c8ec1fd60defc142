//! The operator's webhook endpoints, as [`ControlPlane`] use cases (see
//! [`crate::webhooks::operator`]).

use std::sync::Arc;

use tenant_core::Secret;
use tenant_store::audit::AuditContext;
use tenant_store::webhooks::Endpoint;
use uuid::Uuid;

use super::ControlPlane;
use crate::error::ServiceResult;
use crate::webhooks::endpoints::{NewWebhook, WebhookPatch};
use crate::webhooks::operator::{self, OWNER};

impl ControlPlane {
    /// Adds an operator endpoint (URL rules, description, filter checked); its signing secret
    /// is in clear only in the answer.
    pub async fn create_operator_webhook(
        &self,
        ctx: AuditContext,
        new: NewWebhook,
    ) -> ServiceResult<(Endpoint, Secret)> {
        let new = new.check(&self.webhooks.rules, OWNER)?;
        let ring = Arc::clone(&self.keys);
        self.run(move |c| operator::create(c, &ctx, new, &ring))
            .await
    }

    /// Every operator endpoint, oldest first.
    pub async fn list_operator_webhooks(&self) -> ServiceResult<Vec<Endpoint>> {
        self.run(operator::list).await
    }

    /// One operator endpoint.
    pub async fn operator_webhook(&self, id: Uuid) -> ServiceResult<Endpoint> {
        self.run(move |c| operator::find(c, id)).await
    }

    /// Changes an operator endpoint.
    pub async fn update_operator_webhook(
        &self,
        ctx: AuditContext,
        id: Uuid,
        patch: WebhookPatch,
    ) -> ServiceResult<Endpoint> {
        let patch = patch.check(&self.webhooks.rules, OWNER)?;
        self.run(move |c| operator::update(c, &ctx, id, patch))
            .await
    }

    /// Removes an operator endpoint and its deliveries.
    pub async fn delete_operator_webhook(&self, ctx: AuditContext, id: Uuid) -> ServiceResult<()> {
        self.run(move |c| operator::delete(c, &ctx, id)).await
    }
}
