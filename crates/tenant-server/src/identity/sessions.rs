//! The login use cases: log in, refresh, log out, change one's password, accept an invite. Each
//! runs synchronously on the blocking pool (argon2 and the database both block).

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use tenant_core::{Email, Secret, TenantId};
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::refresh_tokens::{self, TokenOwner};
use tenant_store::{AnyConnection, Connection, StoreError, operator_users, users};
use uuid::Uuid;

use super::jwt::Subject;
use super::{FlowError, Identity, password, throttle};
use crate::auth::{generate_token, hash_token_hex};
use crate::error::ApiError;

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

/// A login attempt.
#[derive(Debug)]
pub struct LoginAttempt {
    /// Tenant id or slug; `None` for an operator login.
    pub tenant: Option<String>,
    /// The email as typed.
    pub email: Email,
    /// The password as typed.
    pub password: Secret,
}

fn ttl(secs: u64) -> Duration {
    Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// Starts a new refresh-token family for `subject` and issues both tokens.
fn issue_pair(
    conn: &mut AnyConnection,
    identity: &Identity,
    subject: Subject,
    family: Option<&Uuid>,
    now: DateTime<Utc>,
) -> Result<TokenPair, FlowError> {
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
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(TokenPair {
        access_token: Secret::new(access),
        expires_in: identity.access_ttl_secs(),
        refresh_token: refresh,
        refresh_expires_in: identity.refresh_ttl_secs(),
    })
}

/// An account found for a login: who, its hash, whether it may log in.
struct Candidate {
    subject: Subject,
    password_hash: Option<String>,
    disabled: bool,
}

fn resolve_tenant(conn: &mut AnyConnection, raw: &str) -> Result<Option<TenantId>, StoreError> {
    match raw.trim().parse::<TenantId>() {
        Ok(id) => Ok(users::tenant_exists(conn, &id)?.then_some(id)),
        Err(_) => users::tenant_id_by_slug(conn, &raw.trim().to_ascii_lowercase()),
    }
}

fn find_candidate(
    conn: &mut AnyConnection,
    tenant_id: Option<&TenantId>,
    email: &Email,
) -> Result<Option<Candidate>, StoreError> {
    match tenant_id {
        Some(tenant_id) => users::find_by_email(conn, tenant_id, email)?
            .map(|u| {
                Ok(Candidate {
                    subject: Subject::TenantUser {
                        id: u.uuid()?,
                        tenant_id: *tenant_id,
                        role: u.role()?,
                    },
                    password_hash: u.password_hash,
                    disabled: u.disabled,
                })
            })
            .transpose(),
        None => operator_users::find_by_email(conn, email)?
            .map(|o| {
                Ok(Candidate {
                    subject: Subject::Operator { id: o.uuid()? },
                    password_hash: Some(o.password_hash),
                    disabled: o.disabled,
                })
            })
            .transpose(),
    }
}

/// Logs in: checks the throttle, verifies the password (against a dummy hash for unknown
/// accounts), counts failures, and on success resets the account's counter and issues tokens.
pub fn login(
    conn: &mut AnyConnection,
    identity: &Identity,
    ctx: &AuditContext,
    attempt: LoginAttempt,
    now: DateTime<Utc>,
) -> Result<TokenPair, FlowError> {
    let tenant_id = match &attempt.tenant {
        Some(raw) => resolve_tenant(conn, raw)?,
        None => None,
    };
    // Unknown tenants get their own (never matching) scope, so they are throttled like any other.
    let scope = match (&attempt.tenant, &tenant_id) {
        (None, _) => "operator".to_owned(),
        (Some(_), Some(id)) => id.to_string(),
        (Some(raw), None) => format!("unknown:{}", raw.trim().to_ascii_lowercase()),
    };
    let account_key = throttle::account_key(&scope, attempt.email.as_str());
    let address_key = ctx.client_addr.as_deref().map(throttle::address_key);
    let mut keys = vec![account_key.as_str()];
    keys.extend(address_key.as_deref());
    if let Some(secs) = throttle::retry_after(conn, &keys, now)? {
        return Err(FlowError::Throttled {
            retry_after_secs: secs,
        });
    }
    let unknown_tenant = attempt.tenant.is_some() && tenant_id.is_none();
    let candidate = if unknown_tenant {
        None
    } else {
        find_candidate(conn, tenant_id.as_ref(), &attempt.email)?
    };
    let verified = match &candidate {
        Some(Candidate {
            password_hash: Some(hash),
            disabled,
            ..
        }) => password::verify(&attempt.password, hash) && !disabled,
        _ => {
            let _ = password::verify(&attempt.password, identity.dummy_hash());
            false
        }
    };
    let Some(candidate) = candidate.filter(|_| verified) else {
        throttle::record_failure(conn, &account_key, throttle::ACCOUNT, now)?;
        if let Some(key) = &address_key {
            throttle::record_failure(conn, key, throttle::ADDRESS, now)?;
        }
        audit::record(
            conn,
            ctx,
            AuditEvent {
                tenant_id: tenant_id.as_ref(),
                action: "auth.login_failed",
                resource_type: if attempt.tenant.is_some() {
                    "user"
                } else {
                    "operator"
                },
                resource_id: None,
                details: Some(json!({ "account": account_key })),
            },
            now,
        )?;
        return Err(FlowError::InvalidCredentials);
    };
    let subject = candidate.subject;
    conn.transaction(|c| {
        throttle::reset(c, &account_key)?;
        let (event_tenant, resource_type, id) = match subject {
            Subject::TenantUser { id, tenant_id, .. } => {
                users::touch_login(c, &tenant_id, &id, now)?;
                (Some(tenant_id), "user", id)
            }
            Subject::Operator { id } => {
                operator_users::touch_login(c, &id, now)?;
                (None, "operator", id)
            }
        };
        let owner = match subject {
            Subject::TenantUser { id, .. } => TokenOwner::TenantUser(id),
            Subject::Operator { id } => TokenOwner::OperatorUser(id),
        };
        refresh_tokens::delete_expired_of(c, owner, now)?;
        let pair = issue_pair(c, identity, subject, None, now)?;
        let ctx = AuditContext {
            actor_type: if resource_type == "user" {
                "user"
            } else {
                "operator_user"
            }
            .to_owned(),
            actor_id: Some(id.to_string()),
            ..ctx.clone()
        };
        audit::record(
            c,
            &ctx,
            AuditEvent {
                tenant_id: event_tenant.as_ref(),
                action: "auth.login",
                resource_type,
                resource_id: Some(id.to_string()),
                details: None,
            },
            now,
        )?;
        Ok(pair)
    })
}

/// The current subject of a token owner, or `None` when it is gone or disabled.
fn current_subject(
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
) -> Result<TokenPair, FlowError> {
    let Some(row) = refresh_tokens::find_by_hash(conn, &hash_token_hex(token.expose()))? else {
        return Err(FlowError::InvalidToken);
    };
    let owner = row.owner().ok_or(FlowError::InvalidToken)?;
    let reuse = |conn: &mut AnyConnection| -> Result<FlowError, FlowError> {
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
        Ok(FlowError::InvalidToken)
    };
    if row.used_at.is_some() || row.revoked_at.is_some() {
        return Err(reuse(conn)?);
    }
    if row.expires_at.and_utc() <= now {
        return Err(FlowError::InvalidToken);
    }
    let family: Uuid = row.family_id.parse().map_err(|_| FlowError::InvalidToken)?;
    let outcome = conn.transaction(|c| {
        if !refresh_tokens::mark_used(c, &row.id, now)? {
            return Ok(None);
        }
        let Some(subject) = current_subject(c, owner)? else {
            refresh_tokens::revoke_family(c, &row.family_id, now)?;
            return Err(FlowError::InvalidToken);
        };
        issue_pair(c, identity, subject, Some(&family), now).map(Some)
    });
    match outcome {
        Ok(Some(pair)) => Ok(pair),
        // Someone used it between our read and our update.
        Ok(None) => Err(reuse(conn)?),
        Err(FlowError::InvalidToken) => {
            refresh_tokens::revoke_family(conn, &row.family_id, now)?;
            Err(FlowError::InvalidToken)
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
) -> Result<(), FlowError> {
    let Some(row) = refresh_tokens::find_by_hash(conn, &hash_token_hex(token.expose()))? else {
        return Ok(());
    };
    if row.owner() != Some(owner) {
        return Ok(());
    }
    conn.transaction(|c| {
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
) -> Result<TokenPair, FlowError> {
    password::validate_new("newPassword", new)?;
    let (subject, stored) = match owner {
        TokenOwner::TenantUser(id) => {
            let u = users::find_for_auth(conn, &id)?.ok_or(ApiError::Unauthorized)?;
            let subject = current_subject(conn, owner)?.ok_or(ApiError::Unauthorized)?;
            (subject, u.password_hash)
        }
        TokenOwner::OperatorUser(id) => {
            let o = operator_users::find(conn, &id)?;
            let subject = current_subject(conn, owner)?.ok_or(ApiError::Unauthorized)?;
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
        return Err(FlowError::Throttled {
            retry_after_secs: secs,
        });
    }
    if !stored.is_some_and(|h| password::verify(current, &h)) {
        throttle::record_failure(conn, &key, throttle::ACCOUNT, now)?;
        return Err(FlowError::InvalidCredentials);
    }
    let hash = password::hash(new).map_err(ApiError::Internal)?;
    conn.transaction(|c| {
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
) -> Result<TokenPair, FlowError> {
    password::validate_new("password", new)?;
    let Some(user) = users::find_by_invite_hash(conn, &hash_token_hex(token.expose()))? else {
        return Err(FlowError::InvalidToken);
    };
    if user.disabled || user.invite_expires_at.is_none_or(|at| at.and_utc() <= now) {
        return Err(FlowError::InvalidToken);
    }
    let tenant_id: TenantId = user
        .tenant_id
        .parse()
        .map_err(|_| FlowError::InvalidToken)?;
    let subject = Subject::TenantUser {
        id: user.uuid()?,
        tenant_id,
        role: user.role()?,
    };
    let hash = password::hash(new).map_err(ApiError::Internal)?;
    conn.transaction(|c| {
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
