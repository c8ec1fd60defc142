//! The operator's webhook endpoints, as [`ControlPlane`] use cases (see
//! [`crate::webhooks::operator`]).

use std::sync::Arc;

use tenant_core::Secret;
use tenant_store::audit::AuditContext;
use tenant_store::operator_webhooks::OperatorEndpoint;
use uuid::Uuid;

use super::ControlPlane;
use crate::error::ServiceResult;
use crate::webhooks::operator::{self, NewOperatorWebhook, OperatorWebhookPatch};

impl ControlPlane {
    /// Adds an operator endpoint (URL rules, description, filter checked); its signing secret
    /// is in clear only in the answer.
    pub async fn create_operator_webhook(
        &self,
        ctx: AuditContext,
        new: NewOperatorWebhook,
    ) -> ServiceResult<(OperatorEndpoint, Secret)> {
        let (new, shown) = new.check(&self.webhooks.rules)?;
        let ring = Arc::clone(&self.keys);
        self.run(move |c| operator::create(c, &ctx, new, shown, &ring))
            .await
    }

    /// Every operator endpoint, oldest first.
    pub async fn list_operator_webhooks(&self) -> ServiceResult<Vec<OperatorEndpoint>> {
        self.run(operator::list).await
    }

    /// One operator endpoint.
    pub async fn operator_webhook(&self, id: Uuid) -> ServiceResult<OperatorEndpoint> {
        self.run(move |c| operator::find(c, id)).await
    }

    /// Changes an operator endpoint.
    pub async fn update_operator_webhook(
        &self,
        ctx: AuditContext,
        id: Uuid,
        patch: OperatorWebhookPatch,
    ) -> ServiceResult<OperatorEndpoint> {
        let patch = patch.check(&self.webhooks.rules)?;
        self.run(move |c| operator::update(c, &ctx, id, patch))
            .await
    }

    /// Removes an operator endpoint and its deliveries.
    pub async fn delete_operator_webhook(&self, ctx: AuditContext, id: Uuid) -> ServiceResult<()> {
        self.run(move |c| operator::delete(c, &ctx, id)).await
    }
}
