//! Sessions: the token pair a login hands out, refresh-token rotation with reuse detection, and
//! logout.

use chrono::{DateTime, Duration, Utc};
use tenant_core::Secret;
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::refresh_tokens::{self, TokenOwner};
use tenant_store::{AnyConnection, StoreError, operator_users, users, write_transaction};
use uuid::Uuid;

use super::Identity;
use super::jwt::Subject;
use crate::error::{ServiceError, ServiceResult};
use crate::principal::{ActorRef, Principal};
use crate::tokens::{generate_token, hash_token_hex};

/// The prefix of refresh tokens.
pub const REFRESH_TOKEN_PREFIX: &str = "msrt_";

/// What a successful login, refresh or password change hands out.
#[derive(Debug)]
pub struct TokenPair {
    /// The JWT access token.
    pub access_token: Secret,
    /// Its lifetime in seconds.
    pub expires_in: u64,
    /// The opaque refresh token (shown only here).
    pub refresh_token: Secret,
    /// Its lifetime in seconds.
    pub refresh_expires_in: u64,
}

fn ttl(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// The login account a principal is, for the self-service flows (logout, password change): a
/// tenant user or an operator user. An API key, a service token or an external identity has no
/// login session (`Forbidden`).
pub fn own_account(principal: &Principal) -> ServiceResult<TokenOwner> {
    match principal.actor() {
        ActorRef::User(id) => Ok(TokenOwner::TenantUser(*id)),
        ActorRef::OperatorUser(id) => Ok(TokenOwner::OperatorUser(*id)),
        _ => Err(ServiceError::Forbidden),
    }
}

/// Starts a new refresh-token family for `subject` and issues both tokens.
pub(super) fn issue_pair(
    conn: &mut AnyConnection,
    identity: &Identity,
    subject: Subject,
    family: Option<&Uuid>,
    now: DateTime<Utc>,
) -> ServiceResult<TokenPair> {
    let owner = match subject {
        Subject::TenantUser { id, .. } => TokenOwner::TenantUser(id),
        Subject::Operator { id } => TokenOwner::OperatorUser(id),
    };
    let refresh = generate_token(REFRESH_TOKEN_PREFIX);
    let family = family.copied().unwrap_or_else(Uuid::new_v4);
    refresh_tokens::insert(
        conn,
        owner,
        &family,
        &hash_token_hex(refresh.expose()),
        now,
        now + ttl(identity.refresh_ttl_secs()),
    )?;
    let access = identity
        .jwt()
        .issue(subject, now.timestamp(), identity.access_ttl_secs())
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    Ok(TokenPair {
        access_token: Secret::new(access),
        expires_in: identity.access_ttl_secs(),
        refresh_token: refresh,
        refresh_expires_in: identity.refresh_ttl_secs(),
    })
}

/// The current subject of a token owner, or `None` when it is gone or disabled.
pub(super) fn current_subject(
    conn: &mut AnyConnection,
    owner: TokenOwner,
) -> Result<Option<Subject>, StoreError> {
    match owner {
        TokenOwner::TenantUser(id) => match users::find_for_auth(conn, &id)? {
            Some(u) if !u.disabled => Ok(Some(Subject::TenantUser {
                id,
                tenant_id: u.tenant_id.parse().map_err(|_| StoreError::Corrupt {
                    table: "tenant_users",
                    id: u.id.clone(),
                    reason: "tenant id is not a UUID".into(),
                })?,
                role: u.role()?,
            })),
            _ => Ok(None),
        },
        TokenOwner::OperatorUser(id) => match operator_users::find(conn, &id) {
            Ok(o) if !o.disabled => Ok(Some(Subject::Operator { id })),
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        },
    }
}

/// Exchanges a refresh token for a new pair. A token presented a second time (or after its
/// family was revoked) revokes the whole family: one of the two presenters stole it.
pub fn refresh(
    conn: &mut AnyConnection,
    identity: &Identity,
    ctx: &AuditContext,
    token: &Secret,
    now: DateTime<Utc>,
) -> ServiceResult<TokenPair> {
    let Some(row) = refresh_tokens::find_by_hash(conn, &hash_token_hex(token.expose()))? else {
        return Err(ServiceError::InvalidToken);
    };
    let owner = row.owner().ok_or(ServiceError::InvalidToken)?;
    let reuse = |conn: &mut AnyConnection| -> ServiceResult<ServiceError> {
        let revoked = refresh_tokens::revoke_family(conn, &row.family_id, now)?;
        tracing::warn!(
            token.family = %row.family_id,
            tokens.revoked = revoked,
            "refresh token reused; family revoked"
        );
        let tenant_id = match current_subject(conn, owner)? {
            Some(Subject::TenantUser { tenant_id, .. }) => Some(tenant_id),
            _ => None,
        };
        audit::record(
            conn,
            ctx,
            AuditEvent {
                tenant_id: tenant_id.as_ref(),
                action: "auth.refresh_reused",
                resource_type: "refresh_token_family",
                resource_id: Some(row.family_id.clone()),
                details: None,
            },
            now,
        )?;
        Ok(ServiceError::InvalidToken)
    };
    if row.used_at.is_some() || row.revoked_at.is_some() {
        return Err(reuse(conn)?);
    }
    if row.expires_at.and_utc() <= now {
        return Err(ServiceError::InvalidToken);
    }
    let family: Uuid = row
        .family_id
        .parse()
        .map_err(|_| ServiceError::InvalidToken)?;
    let outcome = write_transaction(conn, |c| {
        if !refresh_tokens::mark_used(c, &row.id, now)? {
            return Ok(None);
        }
        let Some(subject) = current_subject(c, owner)? else {
            refresh_tokens::revoke_family(c, &row.family_id, now)?;
            return Err(ServiceError::InvalidToken);
        };
        issue_pair(c, identity, subject, Some(&family), now).map(Some)
    });
    match outcome {
        Ok(Some(pair)) => Ok(pair),
        // Someone used it between our read and our update.
        Ok(None) => Err(reuse(conn)?),
        Err(ServiceError::InvalidToken) => {
            refresh_tokens::revoke_family(conn, &row.family_id, now)?;
            Err(ServiceError::InvalidToken)
        }
        Err(e) => Err(e),
    }
}

/// Logs out: revokes the family of `token` if it belongs to `owner`. Unknown tokens are
/// ignored (logging out twice is fine).
pub fn logout(
    conn: &mut AnyConnection,
    ctx: &AuditContext,
    owner: TokenOwner,
    token: &Secret,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    let Some(row) = refresh_tokens::find_by_hash(conn, &hash_token_hex(token.expose()))? else {
        return Ok(());
    };
    if row.owner() != Some(owner) {
        return Ok(());
    }
    write_transaction(conn, |c| {
        refresh_tokens::revoke_family(c, &row.family_id, now)?;
        audit::record(
            c,
            ctx,
            AuditEvent {
                tenant_id: None,
                action: "auth.logout",
                resource_type: "refresh_token_family",
                resource_id: Some(row.family_id.clone()),
                details: None,
            },
            now,
        )?;
        Ok(())
    })
}
