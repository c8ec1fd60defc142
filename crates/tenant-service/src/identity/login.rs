//! Logging in with a password, behind the brute-force throttle. Runs on the blocking pool
//! (argon2 and the database both block).

use chrono::{DateTime, Utc};
use serde_json::json;
use tenant_core::{Email, Secret, TenantId};
use tenant_store::audit::{self, AuditContext, AuditEvent};
use tenant_store::refresh_tokens::{self, TokenOwner};
use tenant_store::{AnyConnection, StoreError, operator_users, users, write_transaction};

use super::jwt::Subject;
use super::sessions::{TokenPair, issue_pair};
use super::{Identity, password, throttle};
use crate::error::{ServiceError, ServiceResult};

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

impl LoginAttempt {
    /// A login as typed: a blank tenant is an operator login; the email must be valid.
    pub fn parse(
        tenant: Option<String>,
        email: &str,
        password: Secret,
    ) -> Result<Self, tenant_core::ValidationError> {
        Ok(Self {
            tenant: tenant.filter(|t| !t.trim().is_empty()),
            email: Email::parse(email)?,
            password,
        })
    }
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
) -> ServiceResult<TokenPair> {
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
        return Err(ServiceError::Throttled {
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
        return Err(ServiceError::InvalidCredentials);
    };
    let subject = candidate.subject;
    write_transaction(conn, |c| {
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
