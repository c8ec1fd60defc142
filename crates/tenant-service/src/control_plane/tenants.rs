//! The tenant and channel use cases of [`ControlPlane`], with the audit log's reads: the
//! tenant read cache is consulted on reads and dropped on this process's writes; tenant creates
//! and channel writes go through group commit.

use std::sync::Arc;

use tenant_core::{
    Channel, ChannelKind, ChannelUpdate, NewChannel, NewTenant, Page, PageRequest, Secret, Tenant,
    TenantId,
};
use tenant_store::audit::{AuditContext, AuditFilter, AuditRow};
use tenant_store::tenants::TenantFilter;

use super::ControlPlane;
use crate::channel_writes::{ChannelOp, ChannelWrite};
use crate::error::{ServiceError, ServiceResult};
use crate::idempotency::Ticket;
use crate::principal::Principal;
use crate::tenant_cache::CachedTenant;
use crate::tenants::{CreateTenant, TenantPatch};
use crate::{audit, channels, tenants};

impl ControlPlane {
    /// Creates a tenant with its first API key (role owner) and the audit entries, written with
    /// the creates of concurrent callers (group commit); answered once committed. The key is in
    /// clear only here. With a ticket ([`ControlPlane::begin_once`]), the key's row is written
    /// in the batch's statement.
    pub async fn create_tenant(
        &self,
        ctx: AuditContext,
        new: NewTenant,
        once: Option<Ticket<(Tenant, Secret)>>,
    ) -> ServiceResult<(Tenant, Secret)> {
        let create = CreateTenant {
            ctx,
            new,
            at: tenant_core::now(),
            once,
        };
        // Created, then placed on its gateway, by the batch it commits in.
        self.writes.tenant_creates.submit(create).await?
    }

    /// A page of tenants in creation order, filtered.
    pub async fn list_tenants(
        &self,
        filter: TenantFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<Tenant>> {
        self.run(move |c| Ok(tenants::list_tenants(c, &filter, &page)?))
            .await
    }

    /// One tenant, from the store.
    pub async fn tenant(&self, id: TenantId) -> ServiceResult<Tenant> {
        self.run(move |c| Ok(tenant_store::tenants::find(c, &id)?))
            .await
    }

    /// What the slug of a host names: its tenant, a redirect to the current slug of a tenant
    /// that left it (for the configured time), or nobody.
    pub async fn resolve_slug(&self, slug: &str) -> ServiceResult<tenants::SlugTarget> {
        let slug = slug.to_owned();
        self.run(move |c| Ok(tenants::resolve_slug(c, &slug, tenant_core::now())?))
            .await
    }

    /// How long a tenant's old slug keeps redirecting after a change.
    pub fn slug_redirect_ttl(&self) -> std::time::Duration {
        self.slug_redirect_ttl
    }

    /// One tenant with its serialised answer, from the read cache when it holds it (the hot
    /// read of `GET /tenants/{id}`).
    pub async fn cached_tenant(&self, id: TenantId) -> ServiceResult<Arc<CachedTenant>> {
        if let Some(hit) = self.tenant_cache.get(&id) {
            return Ok(hit);
        }
        let epoch = self.tenant_cache.epoch();
        let tenant = self.tenant(id).await?;
        Ok(self.tenant_cache.insert(epoch, tenant))
    }

    /// Changes a tenant as `by` asks (the `status` is the operator's to change); the read cache
    /// drops it.
    pub async fn update_tenant(
        &self,
        ctx: AuditContext,
        by: &Principal,
        id: TenantId,
        patch: TenantPatch,
    ) -> ServiceResult<Tenant> {
        let update = patch.check(by)?;
        let plan_changed = update.plan.is_some();
        let plans = Arc::clone(&self.limits.plans);
        let ttl = self.slug_redirect_ttl;
        let result = self
            .run(move |c| {
                let tenant = tenants::update_tenant(c, &ctx, &id, update, ttl)?;
                if plan_changed {
                    // New limits: this month's quota is judged again.
                    let now = tenant_core::now();
                    tenant_store::usage::clear_exceeded(
                        c,
                        &id,
                        &tenant_store::usage::period_of(now),
                    )?;
                    plans.cache.forget(&id);
                    crate::usage::check_quotas(c, &plans, &[id], now)?;
                }
                Ok(tenant)
            })
            .await;
        self.tenant_cache.invalidate(&id);
        result
    }

    /// Deletes a tenant and everything it owns; its cached entry and API keys are forgotten
    /// here at once.
    pub async fn delete_tenant(&self, ctx: AuditContext, id: TenantId) -> ServiceResult<()> {
        let result = self
            .run(move |c| Ok(tenants::delete_tenant(c, &ctx, &id)?))
            .await;
        self.tenant_cache.invalidate(&id);
        result?;
        self.api_keys.cache.invalidate_tenant(&id);
        // The room it held on its gateway may go to a tenant waiting for some.
        self.room_appeared(crate::fleet::pending::Trigger::TenantLeft);
        Ok(())
    }

    /// The export of a tenant as NDJSON chunks (see [`crate::lifecycle::export`]): `NotFound` at
    /// once for an unknown tenant; else a receiver the export writes into from the blocking
    /// pool, as fast as it is read (an error midway is the last item, and ends the stream).
    pub async fn export_tenant(
        &self,
        id: TenantId,
    ) -> ServiceResult<tokio::sync::mpsc::Receiver<ServiceResult<String>>> {
        self.run(move |c| Ok(tenant_store::tenants::exists(c, &id)?))
            .await?
            .then_some(())
            .ok_or(ServiceError::NotFound("tenant"))?;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let (db, keys) = (self.db.clone(), Arc::clone(&self.keys));
        tokio::task::spawn_blocking(move || {
            let written = db.get().map_err(ServiceError::from).and_then(|mut conn| {
                crate::lifecycle::export::export_tenant(&mut conn, &keys, &id, |chunk| {
                    tx.blocking_send(Ok(chunk)).is_ok()
                })
            });
            if let Err(e) = written {
                tracing::warn!(tenant.id = %id, error = %e, "tenant export failed");
                let _ = tx.blocking_send(Err(e));
            }
        });
        Ok(rx)
    }

    /// Adds a channel to a tenant; without (all) credentials it awaits them and stays out of the
    /// gateway config. Written with the channel writes of concurrent callers (group commit);
    /// answered once committed.
    pub async fn add_channel(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        new: NewChannel,
        once: Option<Ticket<Channel>>,
    ) -> ServiceResult<Channel> {
        let op = ChannelOp::Create { new, once };
        self.write_channel(ctx, tenant_id, op)
            .await?
            .ok_or_else(|| ServiceError::Internal("a created channel was not returned".into()))
    }

    /// Submits a channel write to its batched path.
    async fn write_channel(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        op: ChannelOp,
    ) -> ServiceResult<Option<Channel>> {
        let write = ChannelWrite { ctx, tenant_id, op };
        self.writes.channel_writes.submit(write).await?
    }

    /// A tenant's channels, in kind order.
    pub async fn list_channels(&self, tenant_id: TenantId) -> ServiceResult<Vec<Channel>> {
        let keys = Arc::clone(&self.keys);
        self.run(move |c| channels::list_channels(c, &tenant_id, &keys))
            .await
    }

    /// One of a tenant's channels.
    pub async fn channel(&self, tenant_id: TenantId, kind: ChannelKind) -> ServiceResult<Channel> {
        let keys = Arc::clone(&self.keys);
        self.run(move |c| Ok(channels::find_channel(c, &tenant_id, kind, &keys)?))
            .await
    }

    /// Changes a channel: enabled, display name, credential fields (group commit, as
    /// [`ControlPlane::add_channel`]).
    pub async fn update_channel(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        kind: ChannelKind,
        update: ChannelUpdate,
    ) -> ServiceResult<Channel> {
        self.write_channel(ctx, tenant_id, ChannelOp::Update { kind, update })
            .await?
            .ok_or_else(|| ServiceError::Internal("an updated channel was not returned".into()))
    }

    /// Removes a channel (group commit, as [`ControlPlane::add_channel`]).
    pub async fn delete_channel(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        kind: ChannelKind,
    ) -> ServiceResult<()> {
        self.write_channel(ctx, tenant_id, ChannelOp::Delete { kind })
            .await
            .map(drop)
    }

    /// A page of the audit log, newest first: one tenant's, or with `None` everyone's.
    pub async fn audit_log(
        &self,
        tenant_id: Option<TenantId>,
        filter: AuditFilter,
        page: PageRequest,
    ) -> ServiceResult<Page<AuditRow>> {
        self.run(move |c| audit::page(c, tenant_id.as_ref(), &filter, &page))
            .await
    }
}
