//! Setting passwords: changing one's own (after checking the current one) and accepting an
//! invite. Both revoke or start sessions.

use chrono::{DateTime, Utc};
use tenant_core::{Secret, TenantId};
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::refresh_tokens::{self, TokenOwner};
use tenant_store::{AnyConnection, operator_users, users, write_transaction};

use super::jwt::Subject;
use super::sessions::{TokenPair, current_subject, issue_pair};
use super::{Identity, password, throttle};
use crate::error::{ServiceError, ServiceResult};
use crate::tokens::hash_token_hex;

/// Changes the caller's own password after checking the current one (throttled like a login);
/// revokes every other session and returns a fresh pair.
pub fn change_password(
    conn: &mut AnyConnection,
    identity: &Identity,
    ctx: &AuditContext,
    owner: TokenOwner,
    current: &Secret,
    new: &Secret,
    now: DateTime<Utc>,
) -> ServiceResult<TokenPair> {
    password::validate_new("newPassword", new)?;
    let (subject, stored) = match owner {
        TokenOwner::TenantUser(id) => {
            let u = users::find_for_auth(conn, &id)?.ok_or(ServiceError::Unauthenticated)?;
            let subject = current_subject(conn, owner)?.ok_or(ServiceError::Unauthenticated)?;
            (subject, u.password_hash)
        }
        TokenOwner::OperatorUser(id) => {
            let o = operator_users::find(conn, &id)?;
            let subject = current_subject(conn, owner)?.ok_or(ServiceError::Unauthenticated)?;
            (subject, Some(o.password_hash))
        }
    };
    let key = throttle::account_key(
        "password-change",
        &match owner {
            TokenOwner::TenantUser(id) | TokenOwner::OperatorUser(id) => id.to_string(),
        },
    );
    if let Some(secs) = throttle::retry_after(conn, &[key.as_str()], now)? {
        return Err(ServiceError::Throttled {
            retry_after_secs: secs,
        });
    }
    if !stored.is_some_and(|h| password::verify(current, &h)) {
        throttle::record_failure(conn, &key, throttle::ACCOUNT, now)?;
        return Err(ServiceError::InvalidCredentials);
    }
    let hash = password::hash(new).map_err(ServiceError::Internal)?;
    write_transaction(conn, |c| {
        let tenant_id = match subject {
            Subject::TenantUser { id, tenant_id, .. } => {
                users::set_password(c, &tenant_id, &id, &hash, now)?;
                Some(tenant_id)
            }
            Subject::Operator { id } => {
                operator_users::set_password(c, &id, &hash, now)?;
                None
            }
        };
        throttle::reset(c, &key)?;
        refresh_tokens::revoke_all_of(c, owner, now)?;
        let pair = issue_pair(c, identity, subject, None, now)?;
        let id = match owner {
            TokenOwner::TenantUser(id) | TokenOwner::OperatorUser(id) => id,
        };
        audit::record(
            c,
            ctx,
            AuditEvent {
                tenant_id: tenant_id.as_ref(),
                action: "user.password_changed",
                resource_type: if tenant_id.is_some() {
                    "user"
                } else {
                    "operator"
                },
                resource_id: Some(id.to_string()),
                details: None,
            },
            now,
        )?;
        Ok(pair)
    })
}

/// Turns an invite token into a password and logs the user in.
pub fn accept_invite(
    conn: &mut AnyConnection,
    identity: &Identity,
    ctx: &AuditContext,
    token: &Secret,
    new: &Secret,
    now: DateTime<Utc>,
) -> ServiceResult<TokenPair> {
    password::validate_new("password", new)?;
    let Some(user) = users::find_by_invite_hash(conn, &hash_token_hex(token.expose()))? else {
        return Err(ServiceError::InvalidToken);
    };
    if user.disabled || user.invite_expires_at.is_none_or(|at| at.and_utc() <= now) {
        return Err(ServiceError::InvalidToken);
    }
    let tenant_id: TenantId = user
        .tenant_id
        .parse()
        .map_err(|_| ServiceError::InvalidToken)?;
    let subject = Subject::TenantUser {
        id: user.uuid()?,
        tenant_id,
        role: user.role()?,
    };
    let hash = password::hash(new).map_err(ServiceError::Internal)?;
    write_transaction(conn, |c| {
        let id = user.uuid()?;
        users::set_password(c, &tenant_id, &id, &hash, now)?;
        users::touch_login(c, &tenant_id, &id, now)?;
        let pair = issue_pair(c, identity, subject, None, now)?;
        let ctx = AuditContext {
            actor_type: "user".into(),
            actor_id: Some(id.to_string()),
            ..ctx.clone()
        };
        audit::record(
            c,
            &ctx,
            AuditEvent {
                tenant_id: Some(&tenant_id),
                action: "user.invite_accepted",
                resource_type: "user",
                resource_id: Some(id.to_string()),
                details: None,
            },
            now,
        )?;
        Ok(pair)
    })
}
