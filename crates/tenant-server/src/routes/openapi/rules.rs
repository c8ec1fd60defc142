//! The rules the server enforces, stated in the OpenAPI document: each schema property and
//! parameter below gets its format, enum, bounds and lengths from the same constants and enums
//! the validation uses (`tenant-core`, `tenant-service`, `tenant-configgen`), so the document and
//! the server cannot drift apart. A rule naming a schema, property or parameter that the document
//! lacks fails the tests (`every_rule_applies`).

use serde_json::{Value, json};
use tenant_configgen::{Dialect, Mode};
use tenant_core::{
    ChannelKind, Cursor, DisplayName, Email, GatewayKind, GatewayName, MAX_CAPACITY, PageRequest,
    PlacementState, Plan, Role, Slug, TenantName, TenantStatus,
};
use tenant_service::api_keys::issue::{MAX_NAME_CHARS, MAX_ROTATION_OVERLAP_SECS};
use tenant_service::idempotency::MAX_KEY_LEN;
use tenant_service::identity::password;
use tenant_service::plans::LIMIT_FIELDS;
use tenant_service::webhooks::{deliveries, endpoints};
use tenant_webhooks::ingest::{
    BILLING_EVENT_TYPES, GATEWAY_EVENT_TYPES, MAX_EVENT_ID_LEN, OPERATOR_EVENT_TYPES,
    TEST_EVENT_TYPE, USAGE_EVENT_TYPES,
};

/// A schema fragment merged into a property or parameter schema.
pub type Rule = fn() -> Value;

/// `(schema, property, rule)`: the request and response bodies' rules.
pub const PROPERTIES: &[(&str, &str, Rule)] = &[
    ("CreateTenantRequest", "name", tenant_name),
    ("CreateTenantRequest", "slug", slug),
    ("CreateTenantRequest", "plan", plan),
    ("UpdateTenantRequest", "name", tenant_name),
    ("UpdateTenantRequest", "slug", slug),
    ("UpdateTenantRequest", "plan", plan),
    ("UpdateTenantRequest", "status", tenant_status),
    ("TenantResponse", "id", uuid),
    ("TenantResponse", "plan", plan),
    ("TenantResponse", "status", tenant_status),
    ("CreateChannelRequest", "channel", channel_kind),
    ("CreateChannelRequest", "displayName", display_name),
    ("UpdateChannelRequest", "displayName", display_name),
    ("ChannelResponse", "id", uuid),
    ("ChannelResponse", "tenantId", uuid),
    ("ChannelResponse", "channel", channel_kind),
    ("CreateUserRequest", "email", email),
    ("CreateUserRequest", "role", role),
    ("CreateUserRequest", "password", new_password),
    ("UpdateUserRequest", "role", role),
    ("UserResponse", "id", uuid),
    ("UserResponse", "tenantId", uuid),
    ("UserResponse", "role", role),
    ("CreateOperatorRequest", "email", email),
    ("CreateOperatorRequest", "password", new_password),
    ("ChangePasswordRequest", "newPassword", new_password),
    ("AcceptInviteRequest", "password", new_password),
    ("CreateApiKeyRequest", "name", key_name),
    ("CreateApiKeyRequest", "role", role),
    ("RotateApiKeyRequest", "overlapSeconds", overlap_seconds),
    ("ApiKeyResponse", "id", uuid),
    ("ApiKeyResponse", "role", role),
    ("ApiKeyResponse", "status", key_status),
    ("CreateWebhookRequest", "url", webhook_url),
    ("CreateWebhookRequest", "eventTypes", event_types),
    ("CreateWebhookRequest", "description", description),
    ("UpdateWebhookRequest", "url", webhook_url),
    ("UpdateWebhookRequest", "eventTypes", event_types),
    ("UpdateWebhookRequest", "description", description),
    ("CreateOperatorWebhookRequest", "url", webhook_url),
    (
        "CreateOperatorWebhookRequest",
        "eventTypes",
        operator_event_types,
    ),
    ("CreateOperatorWebhookRequest", "description", description),
    ("UpdateOperatorWebhookRequest", "url", webhook_url),
    (
        "UpdateOperatorWebhookRequest",
        "eventTypes",
        operator_event_types,
    ),
    ("UpdateOperatorWebhookRequest", "description", description),
    ("OperatorWebhookResponse", "id", uuid),
    ("WebhookResponse", "id", uuid),
    ("WebhookResponse", "tenantId", uuid),
    ("DeliveryResponse", "id", uuid),
    ("DeliveryResponse", "endpointId", uuid),
    ("DeliveryResponse", "status", delivery_status),
    ("EventRequest", "id", event_id),
    ("EventRequest", "type", gateway_event_type),
    ("MessageRequest", "tenantId", uuid),
    ("MessageRequest", "id", event_id),
    ("LoginRequest", "email", email),
    ("ChangeLimitsRequest", "plan", plan),
    ("OverridesBody", "maxChannels", limit_field::<0>),
    ("OverridesBody", "maxWebhookEndpoints", limit_field::<1>),
    ("OverridesBody", "messagesPerMonth", limit_field::<2>),
    ("OverridesBody", "requestsPerMinutePerKey", limit_field::<3>),
    (
        "OverridesBody",
        "requestsPerMinutePerTenant",
        limit_field::<4>,
    ),
    ("OverridesBody", "requestBurst", limit_field::<5>),
    ("CreateGatewayRequest", "name", gateway_name),
    ("CreateGatewayRequest", "kind", gateway_kind),
    ("CreateGatewayRequest", "capacity", gateway_capacity),
    ("UpdateGatewayRequest", "name", gateway_name),
    ("UpdateGatewayRequest", "capacity", gateway_capacity),
    ("PlacementRequest", "gatewayId", uuid),
    ("PlacementResponse", "state", placement_state),
    ("TenantPlacement", "gatewayId", uuid),
    ("TenantPlacement", "state", placement_state),
    ("HeartbeatRequest", "dialect", dialect),
    ("HeartbeatRequest", "mode", mode),
];

/// `(schema, rule)`: rules on a whole body.
pub const SCHEMAS: &[(&str, Rule)] = &[
    ("ChangeLimitsRequest", plan_or_overrides),
    ("EventRequest", names_its_tenant),
];

/// `(path, parameter)`: parameters of a shared query type that one path refuses (`400`).
pub const REFUSED_PARAMETERS: &[(&str, &str)] = &[("/tenants/{id}/audit", "tenantId")];

/// `(path or "*", parameter, rule)`: path and query parameters' rules; `"*"` is every path.
pub const PARAMETERS: &[(&str, &str, Rule)] = &[
    ("*", "id", uuid),
    ("*", "uid", uuid),
    ("*", "kid", uuid),
    ("*", "wid", uuid),
    ("*", "oid", uuid),
    ("*", "did", uuid),
    ("*", "gid", uuid),
    ("*", "gateway", uuid),
    ("*", "kind", channel_kind),
    ("*", "limit", page_limit),
    ("*", "cursor", cursor),
    ("*", "Idempotency-Key", idempotency_key),
    ("*", "dialect", dialect),
    ("/config", "mode", mode),
    ("/tenants", "status", tenant_status),
    ("/tenants", "plan", plan),
    ("/audit", "tenantId", uuid),
    (
        "/tenants/{id}/webhooks/{wid}/deliveries",
        "status",
        delivery_status,
    ),
];

/// Control characters (Unicode `Cc`), which names and descriptions may not hold.
const NO_CONTROL: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";

fn uuid() -> Value {
    json!({"type": "string", "format": "uuid"})
}

fn one_of(values: impl IntoIterator<Item = &'static str>) -> Value {
    json!({"type": "string", "enum": values.into_iter().collect::<Vec<_>>()})
}

/// A trimmed, non-blank name of at most `max` characters without control characters.
fn name(max: usize) -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": max,
        "pattern": r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
    })
}

fn tenant_name() -> Value {
    name(TenantName::MAX_CHARS)
}

fn display_name() -> Value {
    name(DisplayName::MAX_CHARS)
}

fn key_name() -> Value {
    name(MAX_NAME_CHARS)
}

fn slug() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": Slug::MAX_LEN,
        "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        "not": {"enum": Slug::RESERVED},
    })
}

/// A gateway's name ([`GatewayName::parse`]): `default` is the built-in gateway's.
fn gateway_name() -> Value {
    json!({
        "type": "string", "minLength": 1, "maxLength": 63,
        "pattern": "^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
        "not": {"enum": [GatewayName::DEFAULT]},
    })
}

fn placement_state() -> Value {
    one_of(
        [
            PlacementState::Placed,
            PlacementState::Moving,
            PlacementState::Unplaced,
        ]
        .map(PlacementState::as_str),
    )
}

fn gateway_kind() -> Value {
    one_of([
        GatewayKind::Shared.as_str(),
        GatewayKind::Dedicated.as_str(),
    ])
}

/// A gateway's capacity ([`tenant_core::check_capacity`]; a dedicated gateway's is 1).
fn gateway_capacity() -> Value {
    json!({"type": "integer", "format": "int64", "minimum": 0, "maximum": MAX_CAPACITY})
}

fn plan() -> Value {
    one_of(Plan::ALL.iter().map(|p| p.as_str()))
}

fn tenant_status() -> Value {
    one_of(TenantStatus::ALL.iter().map(|s| s.as_str()))
}

fn role() -> Value {
    one_of(Role::ALL.iter().map(|r| r.as_str()))
}

fn channel_kind() -> Value {
    one_of(ChannelKind::ALL.iter().map(|k| k.as_str()))
}

fn key_status() -> Value {
    one_of(crate::routes::api_keys::KEY_STATUSES)
}

fn delivery_status() -> Value {
    one_of(deliveries::STATUSES)
}

fn dialect() -> Value {
    one_of(Dialect::ALL.iter().map(|d| d.as_str()))
}

fn mode() -> Value {
    one_of(Mode::ALL.iter().map(|m| m.as_str()))
}

fn email() -> Value {
    json!({"type": "string", "format": "email", "maxLength": Email::MAX_LEN})
}

fn new_password() -> Value {
    json!({
        "type": "string", "minLength": password::MIN_CHARS, "maxLength": password::MAX_BYTES,
        "description": format!(
            "{}–{} characters (at most {} bytes in UTF-8)",
            password::MIN_CHARS, password::MAX_BYTES, password::MAX_BYTES
        ),
    })
}

fn cursor() -> Value {
    json!({"type": "string", "pattern": Cursor::PATTERN})
}

fn idempotency_key() -> Value {
    // Printable ASCII, not starting with a quote (the quoted form is also taken, see docs/api.md)
    // nor ending with a space (which HTTP would strip).
    json!({
        "type": "string", "minLength": 1, "maxLength": MAX_KEY_LEN,
        "pattern": format!("^[!#-~]([ -~]{{0,{}}}[!-~])?$", MAX_KEY_LEN - 2),
    })
}

/// `PATCH /tenants/{id}/limits` changes something: a plan, overrides, or both. (Stated as
/// `minProperties` and in words: an `anyOf` over the two makes generated clients model two
/// bodies.)
fn plan_or_overrides() -> Value {
    json!({
        "minProperties": 1,
        "description": "Give a plan, overrides, or both (not null); 422 otherwise.",
    })
}

/// An event names its tenant by at least one of its account id, agent id or session key.
fn names_its_tenant() -> Value {
    let one = |field: &str| json!({"required": [field], "properties": {field: {"type": "string"}}});
    json!({"anyOf": [one("accountId"), one("agentId"), one("sessionKey")]})
}

fn page_limit() -> Value {
    json!({
        "type": "integer", "format": "int32",
        "minimum": 1, "maximum": PageRequest::MAX_LIMIT, "default": PageRequest::DEFAULT_LIMIT,
    })
}

fn overlap_seconds() -> Value {
    json!({"type": "integer", "format": "int32", "minimum": 0, "maximum": MAX_ROTATION_OVERLAP_SECS})
}

fn webhook_url() -> Value {
    json!({"type": "string", "format": "uri", "minLength": 1, "maxLength": endpoints::MAX_URL_LEN})
}

fn description() -> Value {
    json!({"type": "string", "maxLength": endpoints::MAX_DESCRIPTION_LEN, "pattern": NO_CONTROL})
}

fn event_types() -> Value {
    let known = GATEWAY_EVENT_TYPES
        .iter()
        .chain(USAGE_EVENT_TYPES)
        .chain(BILLING_EVENT_TYPES)
        .chain([&TEST_EVENT_TYPE]);
    json!({
        "type": "array", "maxItems": endpoints::MAX_EVENT_TYPES,
        "items": one_of(known.copied()),
    })
}

fn operator_event_types() -> Value {
    json!({
        "type": "array", "maxItems": endpoints::MAX_EVENT_TYPES,
        "items": one_of(OPERATOR_EVENT_TYPES.iter().copied()),
    })
}

fn event_id() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_EVENT_ID_LEN, "pattern": NO_CONTROL})
}

fn gateway_event_type() -> Value {
    one_of(GATEWAY_EVENT_TYPES.iter().copied())
}

fn limit_field<const I: usize>() -> Value {
    let (_, min, max) = LIMIT_FIELDS[I];
    json!({"type": "integer", "format": "int64", "minimum": min, "maximum": max})
}
