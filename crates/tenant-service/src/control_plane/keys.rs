//! The API key use cases of [`ControlPlane`]: issue, list, read, revoke, rotate. Revoking or
//! rotating a key drops it from this process's authentication cache at once.

use chrono::{DateTime, Utc};
use tenant_core::{Page, PageRequest, TenantId};
use tenant_store::api_keys::ApiKeyRow;
use tenant_store::audit::AuditContext;
use uuid::Uuid;

use super::ControlPlane;
use crate::api_keys::batch::KeyIssue;
use crate::api_keys::issue::{self, IssuedKey, KeySpec, Rotation};
use crate::error::ServiceResult;
use crate::idempotency::{Ticket, within};

impl ControlPlane {
    /// Issues a new API key (a label, a role, `member` by default, an optional expiry in the
    /// future); the key is in clear only in the answer. Written with the keys issued by
    /// concurrent callers (group commit); answered once committed.
    pub async fn issue_api_key(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        name: &str,
        role: Option<&str>,
        expires_at: Option<DateTime<Utc>>,
        once: Option<Ticket<IssuedKey>>,
    ) -> ServiceResult<IssuedKey> {
        let spec = KeySpec::parse(name, role, expires_at)?;
        let issue = KeyIssue {
            ctx,
            tenant_id,
            spec,
            once,
        };
        self.writes.key_issues.submit(issue).await?
    }

    /// A tenant's keys (revoked and expired ones included), oldest first.
    pub async fn list_api_keys(
        &self,
        tenant_id: TenantId,
        page: PageRequest,
    ) -> ServiceResult<Page<ApiKeyRow>> {
        self.run(move |c| issue::list_keys(c, &tenant_id, &page))
            .await
    }

    /// One of a tenant's keys (never the key itself: only its hash is stored).
    pub async fn api_key(&self, tenant_id: TenantId, id: Uuid) -> ServiceResult<ApiKeyRow> {
        self.run(move |c| Ok(issue::find_key(c, &tenant_id, &id)?))
            .await
    }

    /// Revokes a key at once (idempotent). Other replicas stop accepting it within their
    /// authentication cache's lifetime.
    pub async fn revoke_api_key(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        id: Uuid,
    ) -> ServiceResult<()> {
        self.run(move |c| Ok(issue::revoke_key(c, &ctx, &tenant_id, &id)?))
            .await?;
        self.api_keys.cache.invalidate_key(&id);
        Ok(())
    }

    /// Rotates a key: a successor with the same name and role (in clear only in the answer);
    /// the old key keeps working for the overlap (default 24 h), then expires.
    pub async fn rotate_api_key(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        id: Uuid,
        overlap_secs: Option<u32>,
        expires_at: Option<DateTime<Utc>>,
        once: Option<Ticket<IssuedKey>>,
    ) -> ServiceResult<IssuedKey> {
        let rotation = Rotation::parse(overlap_secs, expires_at)?;
        let hasher = self.api_keys.hasher.clone();
        let issued = self
            .run(move |c| {
                within(c, once.as_ref(), |c| {
                    Ok(issue::rotate_key(
                        c, &ctx, &hasher, &tenant_id, &id, rotation,
                    )?)
                })
            })
            .await?;
        // The old key's cached entry carries its old expiry.
        self.api_keys.cache.invalidate_key(&id);
        Ok(issued)
    }
}
