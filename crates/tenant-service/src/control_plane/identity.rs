//! The people use cases of [`ControlPlane`]: logging in, refreshing and ending sessions,
//! changing one's password, accepting an invite; managing a tenant's users and the operators.
//! Password hashing (argon2id) runs on the blocking pool with the database work.

use std::sync::Arc;

use tenant_core::{Page, PageRequest, Secret, TenantId};
use tenant_store::audit::AuditContext;
use tenant_store::operator_users::OperatorUserRow;
use tenant_store::users::TenantUserRow;
use uuid::Uuid;

use super::ControlPlane;
use crate::error::ServiceResult;
use crate::idempotency::{Ticket, within};
use crate::identity::login::{self, LoginAttempt};
use crate::identity::sessions::{self, TokenPair, own_account};
use crate::identity::users::{self, NewOperator, NewUser, parse_role};
use crate::identity::{Identity, credentials};
use crate::principal::Principal;

impl ControlPlane {
    /// The user authentication machinery (JWT keys, the external issuer, token lifetimes).
    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// Logs in with a password (throttled; wrong passwords and unknown emails alike).
    pub async fn login(
        &self,
        ctx: AuditContext,
        attempt: LoginAttempt,
    ) -> ServiceResult<TokenPair> {
        let identity = Arc::clone(&self.identity);
        self.run(move |c| login::login(c, &identity, &ctx, attempt, tenant_core::now()))
            .await
    }

    /// Exchanges a refresh token for a new pair (a reused one revokes its whole family).
    pub async fn refresh(&self, ctx: AuditContext, token: Secret) -> ServiceResult<TokenPair> {
        let identity = Arc::clone(&self.identity);
        self.run(move |c| sessions::refresh(c, &identity, &ctx, &token, tenant_core::now()))
            .await
    }

    /// Ends the login session of `token`, if it is `by`'s (only users have one).
    pub async fn logout(
        &self,
        ctx: AuditContext,
        by: &Principal,
        token: Secret,
    ) -> ServiceResult<()> {
        let owner = own_account(by)?;
        self.run(move |c| sessions::logout(c, &ctx, owner, &token, tenant_core::now()))
            .await
    }

    /// Changes `by`'s own password after checking the current one; every other session ends and
    /// a new pair is returned.
    pub async fn change_password(
        &self,
        ctx: AuditContext,
        by: &Principal,
        current: Secret,
        new: Secret,
    ) -> ServiceResult<TokenPair> {
        let owner = own_account(by)?;
        let identity = Arc::clone(&self.identity);
        self.run(move |c| {
            credentials::change_password(
                c,
                &identity,
                &ctx,
                owner,
                &current,
                &new,
                tenant_core::now(),
            )
        })
        .await
    }

    /// Sets an invited user's password and logs them in.
    pub async fn accept_invite(
        &self,
        ctx: AuditContext,
        token: Secret,
        password: Secret,
    ) -> ServiceResult<TokenPair> {
        let identity = Arc::clone(&self.identity);
        self.run(move |c| {
            credentials::accept_invite(c, &identity, &ctx, &token, &password, tenant_core::now())
        })
        .await
    }

    /// Creates a tenant's user with a password, or without one and an invite token (returned,
    /// to be handed over once).
    pub async fn create_user(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        new: NewUser,
        once: Option<Ticket<(TenantUserRow, Option<Secret>)>>,
    ) -> ServiceResult<(TenantUserRow, Option<Secret>)> {
        let user = new.check()?;
        self.run(move |c| {
            let user = user.hash()?;
            within(c, once.as_ref(), |c| {
                Ok(users::create_user(
                    c,
                    &ctx,
                    &tenant_id,
                    user,
                    tenant_core::now(),
                )?)
            })
        })
        .await
    }

    /// A tenant's users in creation order.
    pub async fn list_users(
        &self,
        tenant_id: TenantId,
        page: PageRequest,
    ) -> ServiceResult<Page<TenantUserRow>> {
        self.run(move |c| users::list_users(c, &tenant_id, &page))
            .await
    }

    /// One of a tenant's users.
    pub async fn user(&self, tenant_id: TenantId, id: Uuid) -> ServiceResult<TenantUserRow> {
        self.run(move |c| Ok(users::find_user(c, &tenant_id, &id)?))
            .await
    }

    /// Changes a user's role and/or disables it (never leaving the tenant without an enabled
    /// owner); disabling ends its sessions.
    pub async fn update_user(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        id: Uuid,
        role: Option<&str>,
        disabled: Option<bool>,
    ) -> ServiceResult<TenantUserRow> {
        let role = role.map(parse_role).transpose()?;
        self.run(move |c| {
            Ok(users::update_user(
                c,
                &ctx,
                &tenant_id,
                &id,
                role,
                disabled,
                tenant_core::now(),
            )?)
        })
        .await
    }

    /// Deletes a user and its sessions (never the last enabled owner).
    pub async fn delete_user(
        &self,
        ctx: AuditContext,
        tenant_id: TenantId,
        id: Uuid,
    ) -> ServiceResult<()> {
        self.run(move |c| {
            Ok(users::delete_user(
                c,
                &ctx,
                &tenant_id,
                &id,
                tenant_core::now(),
            )?)
        })
        .await
    }

    /// Creates an operator user, who then logs in without a tenant.
    pub async fn create_operator(
        &self,
        ctx: AuditContext,
        new: NewOperator,
        once: Option<Ticket<OperatorUserRow>>,
    ) -> ServiceResult<OperatorUserRow> {
        let operator = new.check()?;
        self.run(move |c| {
            within(c, once.as_ref(), |c| {
                users::create_checked_operator(c, &ctx, operator, tenant_core::now())
            })
        })
        .await
    }

    /// Every operator user, oldest first.
    pub async fn list_operators(&self) -> ServiceResult<Vec<OperatorUserRow>> {
        self.run(|c| Ok(users::list_operators(c)?)).await
    }
}
