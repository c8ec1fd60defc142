//! Who is calling: the authenticated principal of a request and the actor recorded in the audit
//! log.
//!
//! Authentication turns a credential (a service token, an API key, a JWT) into a [`Principal`];
//! the access policy ([`crate::access`]) decides from it what the caller may reach, and the
//! use cases record its [`ActorRef`] in the audit log.

use tenant_core::{GatewayId, Role, TenantId};
use uuid::Uuid;

/// The credential a request was authenticated with, as recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActorRef {
    /// A service token (the bootstrap operator token, or a gateway token); its stored id if known.
    ServiceToken(Option<Uuid>),
    /// An operator user, by id.
    OperatorUser(Uuid),
    /// A tenant API key, by id.
    ApiKey(Uuid),
    /// A tenant user, by id.
    User(Uuid),
    /// A user of an external identity provider, by its subject claim.
    External(String),
    /// A gateway of the fleet with its own token, by the gateway's id.
    Gateway(Uuid),
}

impl ActorRef {
    /// The actor's kind, as stored in the audit log's `actor_type`.
    pub fn kind(&self) -> &'static str {
        match self {
            ActorRef::ServiceToken(_) => "service_token",
            ActorRef::OperatorUser(_) => "operator_user",
            ActorRef::ApiKey(_) => "api_key",
            ActorRef::User(_) => "user",
            ActorRef::External(_) => "external",
            ActorRef::Gateway(_) => "gateway",
        }
    }

    /// The actor's id, as stored in the audit log's `actor_id`.
    pub fn id(&self) -> Option<String> {
        match self {
            ActorRef::ServiceToken(id) => id.map(|id| id.to_string()),
            ActorRef::OperatorUser(id)
            | ActorRef::ApiKey(id)
            | ActorRef::User(id)
            | ActorRef::Gateway(id) => Some(id.to_string()),
            ActorRef::External(subject) => Some(subject.clone()),
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An operator: sees and manages every tenant.
    Operator {
        /// The credential used.
        actor: ActorRef,
    },
    /// A gateway: may read its configuration and report events, nothing else.
    Gateway {
        /// The credential used.
        actor: ActorRef,
    },
    /// Someone acting for exactly one tenant: an API key, a tenant user, or an external identity
    /// mapped to a tenant. Anything of another tenant answers 404.
    Tenant {
        /// The only tenant this principal reaches.
        tenant_id: TenantId,
        /// What it may do there.
        role: Role,
        /// The credential used.
        actor: ActorRef,
    },
}

impl Principal {
    /// The credential used.
    pub fn actor(&self) -> &ActorRef {
        match self {
            Principal::Operator { actor }
            | Principal::Gateway { actor }
            | Principal::Tenant { actor, .. } => actor,
        }
    }

    /// The gateway a gateway principal is: its own id for a fleet gateway's token, the built-in
    /// `default` for the server's `SAAS_GATEWAY_TOKEN`; `None` for anyone else.
    pub fn gateway(&self) -> Option<GatewayId> {
        match self {
            Principal::Gateway {
                actor: ActorRef::Gateway(id),
            } => Some(GatewayId::from(*id)),
            Principal::Gateway { .. } => Some(GatewayId::DEFAULT),
            _ => None,
        }
    }
}
