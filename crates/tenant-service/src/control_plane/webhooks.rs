//! The event and webhook use cases of [`ControlPlane`]: ingesting gateway events (group
//! commit), a tenant's sessions, webhook endpoints, their deliveries, replays and test sends.
//! Whatever enqueues a delivery wakes the in-process dispatcher.

use std::sync::Arc;

use tenant_core::{Page, PageRequest, Secret, TenantId};
use tenant_store::audit::AuditContext;
use tenant_store::deliveries::{AttemptRow, DeliveryRow};
use tenant_store::events::Ingested;
use tenant_store::sessions::SessionRow;
use tenant_store::webhooks::Endpoint;
use tenant_webhooks::ingest::{Accepted, EventInput};
use uuid::Uuid;

use super::ControlPlane;
use crate::error::{ServiceError, ServiceResult};
use crate::events;
use crate::idempotency::{Ticket, within};
use crate::webhooks::deliveries;
use crate::webhooks::endpoint_writes::{EndpointOp, EndpointWrite};
use crate::webhooks::endpoints::{self, EndpointOwner, NewWebhook, WebhookPatch};

impl ControlPlane {
    /// Accepts a gateway event: checked, attributed to its tenant, stored once per id and
    /// enqueued for delivery to the tenant's endpoints — written with the events of concurrent
    /// callers (group commit) and answered once that batch committed.
    pub async fn ingest(&self, input: EventInput) -> ServiceResult<Accepted> {
        let event = events::check(input)?;
        let event_type = crate::monitoring::event_type_label(&event.input().event_type);
        let accepted = self
            .writes
            .ingest
            .submit((event, tenant_core::now()))
            .await??;
        crate::monitoring::event_ingested(
            event_type,
            matches!(accepted.ingested, Ingested::Duplicate { .. }),
        );
        if matches!(accepted.ingested, Ingested::Accepted { deliveries, .. } if deliveries > 0) {
            self.webhooks.wake.notify_one();
        }
        Ok(accepted)
    }

    /// A tenant's gateway sessions, oldest first.
    pub async fn list_sessions(
        &self,
        tenant_id: TenantId,
        page: PageRequest,
    ) -> ServiceResult<Page<SessionRow>> {
        self.run(move |c| events::list_sessions(c, &tenant_id, &page))
            .await
    }

    /// Adds a webhook endpoint (URL rules, description, filter checked); its signing secret is
    /// in clear only in the answer. Written with the endpoint writes of concurrent callers
    /// (group commit); answered once committed.
    pub async fn create_webhook(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        new: NewWebhook,
        once: Option<Ticket<(Endpoint, Secret)>>,
    ) -> ServiceResult<(Endpoint, Secret)> {
        let new = new.check(&self.webhooks.rules, EndpointOwner::Tenant)?;
        let (endpoint, secret) = self
            .write_endpoint(ctx, tenant_id, EndpointOp::Create { new, once })
            .await?;
        let secret = secret.ok_or_else(|| {
            ServiceError::Internal("a created endpoint's secret was not returned".into())
        })?;
        Ok((endpoint, secret))
    }

    /// Submits an endpoint write to its batched path.
    async fn write_endpoint(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        op: EndpointOp,
    ) -> ServiceResult<(Endpoint, Option<Secret>)> {
        let write = EndpointWrite { ctx, tenant_id, op };
        self.writes.endpoint_writes.submit(write).await?
    }

    /// A tenant's endpoints, oldest first.
    pub async fn list_webhooks(&self, tenant_id: TenantId) -> ServiceResult<Vec<Endpoint>> {
        self.run(move |c| endpoints::list_endpoints(c, &tenant_id))
            .await
    }

    /// One of a tenant's endpoints.
    pub async fn webhook(&self, tenant_id: TenantId, id: Uuid) -> ServiceResult<Endpoint> {
        self.run(move |c| Ok(endpoints::find_endpoint(c, &tenant_id, id)?))
            .await
    }

    /// Changes an endpoint (enabling clears an automatic disable); group commit, as
    /// [`ControlPlane::create_webhook`].
    pub async fn update_webhook(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        id: Uuid,
        patch: WebhookPatch,
    ) -> ServiceResult<Endpoint> {
        let patch = patch.check(&self.webhooks.rules, EndpointOwner::Tenant)?;
        let op = EndpointOp::Update { id, patch };
        Ok(self.write_endpoint(ctx, tenant_id, op).await?.0)
    }

    /// Removes an endpoint and its delivery history.
    pub async fn delete_webhook(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        id: Uuid,
    ) -> ServiceResult<()> {
        self.run(move |c| Ok(endpoints::delete_endpoint(c, &ctx, &tenant_id, id)?))
            .await
    }

    /// Rotates an endpoint's signing secret: the new one (in clear only in the answer) signs
    /// from now on, the old one also until the configured overlap ends.
    pub async fn rotate_webhook_secret(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        id: Uuid,
        once: Option<Ticket<(Endpoint, Secret)>>,
    ) -> ServiceResult<(Endpoint, Secret)> {
        let overlap = self.webhooks.secret_overlap;
        let ring = Arc::clone(&self.keys);
        self.run(move |c| {
            within(c, once.as_ref(), |c| {
                Ok(endpoints::rotate_secret(
                    c, &ctx, &tenant_id, id, overlap, &ring,
                )?)
            })
        })
        .await
    }

    /// Sends a `webhook.test` event to one endpoint, through the queue; returns the delivery id.
    pub async fn test_webhook(&self, tenant_id: TenantId, id: Uuid) -> ServiceResult<Uuid> {
        let delivery = self
            .run(move |c| {
                Ok(deliveries::send_test(
                    c,
                    &tenant_id,
                    id,
                    tenant_core::now(),
                )?)
            })
            .await?;
        self.webhooks.wake.notify_one();
        Ok(delivery)
    }

    /// An endpoint's deliveries, oldest first; `status` (`pending`, `succeeded` or `failed`)
    /// filters them, `failed` listing the dead letters.
    pub async fn list_deliveries(
        &self,
        tenant_id: TenantId,
        endpoint_id: Uuid,
        status: Option<&str>,
        page: PageRequest,
    ) -> ServiceResult<Page<DeliveryRow>> {
        let status = deliveries::parse_status(status)?;
        self.run(move |c| {
            deliveries::list_deliveries(c, &tenant_id, endpoint_id, status.as_deref(), &page)
        })
        .await
    }

    /// One delivery with its attempts.
    pub async fn delivery(
        &self,
        tenant_id: TenantId,
        endpoint_id: Uuid,
        delivery_id: Uuid,
    ) -> ServiceResult<(DeliveryRow, Vec<AttemptRow>)> {
        self.run(move |c| {
            Ok(deliveries::find_delivery(
                c,
                &tenant_id,
                endpoint_id,
                delivery_id,
            )?)
        })
        .await
    }

    /// Sends a finished delivery again with a fresh attempt budget (audited).
    pub async fn replay_delivery(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        endpoint_id: Uuid,
        delivery_id: Uuid,
        once: Option<Ticket<DeliveryRow>>,
    ) -> ServiceResult<DeliveryRow> {
        let delivery = self
            .run(move |c| {
                within(c, once.as_ref(), |c| {
                    Ok(deliveries::replay_delivery(
                        c,
                        &ctx,
                        &tenant_id,
                        endpoint_id,
                        delivery_id,
                        tenant_core::now(),
                    )?)
                })
            })
            .await?;
        self.webhooks.wake.notify_one();
        Ok(delivery)
    }
}
