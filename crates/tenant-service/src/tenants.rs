//! Tenants: create (one, or the batch of concurrent requests that group commit hands over), list,
//! update, delete. Each change runs in one transaction with its audit entry, so a change is
//! never recorded without happening or the reverse; a new tenant comes with its first API key
//! (role owner).
//!
//! A slug change keeps the old slug as a redirect to the tenant's host for the configured time
//! ([`DEFAULT_SLUG_REDIRECT_TTL`] by default), in the transaction of the change. A tenant that
//! holds a slug always takes precedence over a redirect from it: renaming to a slug ends the
//! redirect from it at once, a tenant created with it shadows it (and the background maintenance
//! deletes the shadowed row within its next round, with the expired ones).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::json;
use tenant_core::{NewTenant, Page, PageRequest, Role, Secret, Tenant, TenantId, TenantUpdate};
use tenant_store::audit::{self, AuditContext};
use tenant_store::tenant_batch::{self, TenantToCreate};
use tenant_store::tenants::TenantFilter;
use tenant_store::{AnyConnection, StoreResult, slug_redirects, tenants, write_transaction};

use crate::api_keys::ApiKeyHasher;
use crate::api_keys::issue::{self as key_service, KeySpec};
use crate::audit::{changed_fields, event};
use crate::error::{ServiceError, ServiceResult};
use crate::idempotency::{Ticket, within};
use crate::principal::Principal;

/// Creates a tenant and its first API key (role owner); returns both (the key in clear, this
/// once). With a ticket, its key's row is written in the same transaction.
pub fn create_tenant(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    hasher: &ApiKeyHasher,
    new: NewTenant,
    once: Option<&Ticket<(Tenant, Secret)>>,
) -> ServiceResult<(Tenant, Secret)> {
    within(conn, once, |conn| {
        write_transaction(conn, |c| create_tenant_rows(c, ctx, hasher, new))
    })
}

/// The rows of [`create_tenant`], in the caller's transaction.
fn create_tenant_rows(
    c: &mut AnyConnection,
    ctx: &AuditContext,
    hasher: &ApiKeyHasher,
    new: NewTenant,
) -> ServiceResult<(Tenant, Secret)> {
    let now = tenant_core::now();
    let tenant = tenants::insert(c, new, now)?;
    audit::record(
        c,
        ctx,
        event(
            &tenant.id,
            "tenant.created",
            "tenant",
            tenant.id.to_string(),
            None,
        ),
        now,
    )?;
    let issued = key_service::issue(c, ctx, hasher, &tenant.id, &owner_key_spec(), now)?;
    Ok((tenant, issued.key))
}

/// One create of a batch: who asks, what, and when it was received.
#[derive(Debug)]
pub struct CreateTenant {
    /// The caller, for the audit log.
    pub ctx: AuditContext,
    /// The tenant to create.
    pub new: NewTenant,
    /// When the request was received: the tenant's creation time.
    pub at: DateTime<Utc>,
    /// The request's `Idempotency-Key` ticket, if it had one: its row goes into the batch.
    pub once: Option<Ticket<(Tenant, Secret)>>,
}

/// Creates the tenants of concurrent requests together (group commit): each with its first
/// API key and audit entries, as [`create_tenant`] does, all in one transaction and, on
/// PostgreSQL, one statement. A tenant that collides with another (slug, id) is created again
/// alone by [`create_tenant`], which resolves collisions; if the batch fails as a whole, every
/// tenant of it is, so one create's error never fails the others. Answers in order.
pub fn create_tenants(
    conn: &mut AnyConnection,
    hasher: &ApiKeyHasher,
    batch: &[CreateTenant],
) -> Vec<ServiceResult<(Tenant, Secret)>> {
    let mut keys: Vec<Secret> = Vec::with_capacity(batch.len());
    let mut items: Vec<TenantToCreate> = Vec::with_capacity(batch.len());
    for r in batch {
        let (item, key) = match prepare_create(r, hasher) {
            Ok(prepared) => prepared,
            // Only sealing an answer can fail here: nothing of the batch is written.
            Err(e) => {
                let cause = e.to_string();
                return batch
                    .iter()
                    .map(|_| Err(ServiceError::Internal(cause.clone())))
                    .collect();
            }
        };
        keys.push(key);
        items.push(item);
    }
    let inserted = tenant_batch::insert_many(conn, &items);
    let inserted = match inserted {
        Ok(flags) if flags.len() == items.len() => flags,
        Ok(_) => vec![false; items.len()],
        Err(e) => {
            // The database is away, read-only or full: one by one would meet the same.
            if let Some(answers) = batch
                .iter()
                .map(|_| e.copy_fault().map(|f| Err(f.into())))
                .collect()
            {
                return answers;
            }
            tracing::warn!(error = %e, creates = items.len(), "tenant create batch rolled back; creating one by one");
            vec![false; items.len()]
        }
    };
    items
        .into_iter()
        .zip(keys)
        .zip(inserted)
        .zip(batch)
        .map(|(((item, key), inserted), r)| {
            if inserted {
                Ok((item.tenant, key))
            } else {
                create_tenant(conn, &r.ctx, hasher, r.new.clone(), r.once.as_ref())
            }
        })
        .collect()
}

/// The rows of one create (with its idempotency key's, answer sealed), with the key in clear.
fn prepare_create(
    r: &CreateTenant,
    hasher: &ApiKeyHasher,
) -> ServiceResult<(TenantToCreate, Secret)> {
    let tenant = r.new.clone().into_tenant(TenantId::random(), r.at);
    let created = audit::row(
        &r.ctx,
        event(
            &tenant.id,
            "tenant.created",
            "tenant",
            tenant.id.to_string(),
            None,
        ),
        r.at,
    );
    let (issued, key_created) =
        key_service::prepare(&r.ctx, hasher, &tenant.id, &owner_key_spec(), r.at);
    let idempotency = match &r.once {
        Some(ticket) => Some(ticket.row(&(tenant.clone(), issued.key.clone()), r.at)?),
        None => None,
    };
    Ok((
        TenantToCreate {
            tenant,
            keys: vec![issued.row],
            audit: vec![created, key_created],
            idempotency,
        },
        issued.key,
    ))
}

fn owner_key_spec() -> KeySpec {
    KeySpec {
        name: "default".into(),
        role: Role::Owner,
        expires_at: None,
    }
}

/// A page of tenants in creation order, filtered.
pub fn list_tenants(
    conn: &mut AnyConnection,
    filter: &TenantFilter,
    page: &PageRequest,
) -> StoreResult<Page<Tenant>> {
    tenants::list(conn, filter, page)
}

/// A change to a tenant as asked: only the fields present change.
#[derive(Debug, Clone, Default)]
pub struct TenantPatch {
    /// New display name.
    pub name: Option<String>,
    /// New slug.
    pub slug: Option<String>,
    /// New plan.
    pub plan: Option<String>,
    /// New status: `active` or `suspended`.
    pub status: Option<String>,
}

impl TenantPatch {
    /// Checks the change `by` asks for: suspending or reactivating a tenant, and its plan (its
    /// limits, its bill), are the operator's decision, not the tenant's (`Forbidden` for a tenant principal, before any field is
    /// looked at); then every field's rules.
    pub fn check(&self, by: &Principal) -> ServiceResult<TenantUpdate> {
        if (self.status.is_some() || self.plan.is_some()) && matches!(by, Principal::Tenant { .. })
        {
            return Err(ServiceError::Forbidden);
        }
        Ok(TenantUpdate::parse(
            self.name.as_deref(),
            self.slug.as_deref(),
            self.plan.as_deref(),
            self.status.as_deref(),
        )?)
    }
}

/// How long an old slug redirects to the tenant's host by default: 30 days.
pub const DEFAULT_SLUG_REDIRECT_TTL: Duration = Duration::from_secs(30 * 86_400);

/// What the slug of a host (`{slug}.{base domain}`) names.
#[derive(Debug, Clone)]
pub enum SlugTarget {
    /// The tenant that holds the slug.
    Tenant(Box<Tenant>),
    /// A former slug of a tenant, still redirecting: the tenant's current slug.
    Moved(String),
    /// Nobody (never used, expired, or no valid slug).
    Unknown,
}

/// What `slug` names at `now`: the tenant holding it, else a live redirect to the current slug
/// of the tenant that left it.
pub fn resolve_slug(
    conn: &mut AnyConnection,
    slug: &str,
    now: DateTime<Utc>,
) -> StoreResult<SlugTarget> {
    let Ok(slug) = tenant_core::Slug::parse(slug) else {
        return Ok(SlugTarget::Unknown);
    };
    if let Some(id) = tenant_store::users::tenant_id_by_slug(conn, slug.as_str())? {
        match tenants::find(conn, &id) {
            Ok(t) => return Ok(SlugTarget::Tenant(Box::new(t))),
            // Deleted in between: no tenant holds it any more.
            Err(tenant_store::StoreError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(match slug_redirects::resolve(conn, slug.as_str(), now)? {
        Some((_, current)) => SlugTarget::Moved(current),
        None => SlugTarget::Unknown,
    })
}

/// Updates a tenant. A changed slug leaves the old one redirecting for `slug_redirect_ttl` (none
/// when zero), and ends any redirect from the new one.
pub fn update_tenant(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    id: &TenantId,
    update: TenantUpdate,
    slug_redirect_ttl: Duration,
) -> StoreResult<Tenant> {
    write_transaction(conn, |c| {
        let now = tenant_core::now();
        let old_slug = match update.slug {
            Some(_) => Some(tenants::find(c, id)?.slug),
            None => None,
        };
        let changed = changed_fields(&[
            ("name", update.name.is_some()),
            ("slug", update.slug.is_some()),
            ("plan", update.plan.is_some()),
            ("status", update.status.is_some()),
        ]);
        let tenant = tenants::update(c, id, update, now)?;
        if let Some(old) = old_slug.filter(|old| *old != tenant.slug) {
            slug_redirects::forget(c, tenant.slug.as_str())?;
            if !slug_redirect_ttl.is_zero() {
                let ttl = chrono::Duration::from_std(slug_redirect_ttl)
                    .unwrap_or(chrono::Duration::MAX)
                    .min(chrono::Duration::days(36_500));
                slug_redirects::record(c, old.as_str(), id, now, now + ttl)?;
            }
        }
        audit::record(
            c,
            ctx,
            event(
                id,
                "tenant.updated",
                "tenant",
                id.to_string(),
                Some(json!({"fields": changed})),
            ),
            now,
        )?;
        Ok(tenant)
    })
}

/// Deletes a tenant, at once as far as anyone can tell (404, out of the gateway config, its keys
/// and users gone, its endpoints disabled; see [`tenant_store::tenants::delete`]),
/// with its audit entry, which outlives it. The bulk of its rows (events, deliveries, sessions)
/// is removed by the background purge in small batches ([`crate::lifecycle::purge`]).
pub fn delete_tenant(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    id: &TenantId,
) -> StoreResult<()> {
    write_transaction(conn, |c| {
        let now = tenant_core::now();
        let c = &mut tenant_store::gateways::lock_fleet(c)?;
        tenants::delete(c, id)?;
        audit::record(
            c,
            ctx,
            event(id, "tenant.deleted", "tenant", id.to_string(), None),
            now,
        )
    })
}
