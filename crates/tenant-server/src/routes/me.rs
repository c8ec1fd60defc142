//! `GET /me`: who the caller is — principal kind, tenant, role, credential.

use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};
use tenant_service::principal::{ActorRef, Principal};
use utoipa::ToSchema;

use crate::http::error::{ApiError, ErrorBody};
use crate::http::extract::Caller;
use crate::state::AppState;

/// The API key a request was made with (never the key itself).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeApiKey {
    /// Key id.
    pub id: String,
    /// Label.
    pub name: String,
    /// Public prefix.
    pub prefix: String,
}

/// The caller.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeResponse {
    /// `operator`, `gateway` or `tenant`.
    pub kind: String,
    /// The tenant, for tenant principals.
    pub tenant_id: Option<String>,
    /// `owner`, `admin` or `member`, for tenant principals.
    pub role: Option<String>,
    /// The credential's kind as recorded in the audit log (`service_token`, `api_key`, `user`, …).
    pub actor_type: String,
    /// The credential's id, when it has one.
    pub actor_id: Option<String>,
    /// The API key used, when it is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<MeApiKey>,
}

/// Who am I: the authenticated principal of this request.
#[utoipa::path(tag = "meta", security(("bearer" = [])), responses(
    (status = 200, description = "The caller", body = MeResponse),
    (status = 401, description = "No valid credential", body = ErrorBody),
))]
#[get("/me")]
pub async fn me(
    state: web::Data<AppState>,
    Caller(principal): Caller,
) -> Result<HttpResponse, ApiError> {
    let actor = principal.actor();
    let mut resp = MeResponse {
        kind: String::new(),
        tenant_id: None,
        role: None,
        actor_type: actor.kind().to_owned(),
        actor_id: actor.id(),
        api_key: None,
    };
    match &principal {
        Principal::Operator { .. } => resp.kind = "operator".into(),
        Principal::Gateway { .. } => resp.kind = "gateway".into(),
        Principal::Tenant {
            tenant_id,
            role,
            actor,
        } => {
            resp.kind = "tenant".into();
            resp.tenant_id = Some(tenant_id.to_string());
            resp.role = Some(role.as_str().to_owned());
            if let ActorRef::ApiKey(kid) = actor {
                let (tenant_id, kid) = (*tenant_id, *kid);
                let row = state.control.api_key(tenant_id, kid).await?;
                resp.api_key = Some(MeApiKey {
                    id: row.id,
                    name: row.name,
                    prefix: row.prefix,
                });
            }
        }
    }
    Ok(HttpResponse::Ok().json(resp))
}
