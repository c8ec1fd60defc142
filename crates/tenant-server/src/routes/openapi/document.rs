//! The finished OpenAPI document: utoipa's, generated from the handlers, completed with what the
//! server enforces around them — the rules of [`super::rules`], every status an operation can
//! answer (the middleware's and the extractors' as well as the handler's, each with the error
//! body), and the credentials each operation accepts, derived from the route table and the access
//! policy (`tenant_service::access`).

use serde_json::{Map, Value, json};
use tenant_service::access::Action;

use super::rules::{PARAMETERS, PROPERTIES, REFUSED_PARAMETERS, Rule, SCHEMAS};
use crate::http::route_table::action_for;

/// The security schemes: every credential is a bearer token, told apart by its form.
const SCHEMES: &[(&str, &str)] = &[
    (
        "operatorToken",
        "An operator token (`msop_…`, `SAAS_ADMIN_TOKEN`): every route.",
    ),
    (
        "userJwt",
        "A user's access token (a JWT from `POST /auth/login`, or an external OIDC issuer's): an operator user may do everything, a tenant user what its role allows on its own tenant.",
    ),
    (
        "tenantApiKey",
        "A tenant API key (`msk_live_…`): its own tenant's routes, as its role allows; another tenant's answer 404.",
    ),
    (
        "gatewayToken",
        "The gateway token (`SAAS_GATEWAY_TOKEN`): the config routes and event ingest only.",
    ),
];

const ERROR_REF: &str = "#/components/schemas/ErrorBody";

/// The OpenAPI document as served: utoipa's `api` completed (see the module doc).
pub fn render(api: &utoipa::openapi::OpenApi) -> String {
    let mut doc = serde_json::to_value(api).unwrap_or_default();
    complete(&mut doc);
    serde_json::to_string(&doc).unwrap_or_else(|e| format!(r#"{{"error":"{e}"}}"#))
}

/// Completes the document; answers the rules that found nothing to apply to (a test keeps this
/// empty, so a renamed field cannot silently lose its rule).
pub fn complete(doc: &mut Value) -> Vec<String> {
    let mut unused = apply_property_rules(doc);
    let mut operations = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if op.is_object() {
                    operations.push((path.clone(), method.clone()));
                    complete_operation(path, method, op);
                }
            }
        }
    }
    unused.extend(apply_parameter_rules(doc));
    add_security_schemes(doc);
    unused
}

fn apply_property_rules(doc: &mut Value) -> Vec<String> {
    let mut unused = Vec::new();
    for (schema, rule) in SCHEMAS {
        match doc
            .pointer_mut(&format!("/components/schemas/{schema}"))
            .filter(|t| t.is_object())
        {
            Some(target) => merge(target, *rule),
            None => unused.push((*schema).to_owned()),
        }
    }
    for (schema, property, rule) in PROPERTIES {
        let target = doc
            .pointer_mut(&format!(
                "/components/schemas/{schema}/properties/{property}"
            ))
            .filter(|t| t.is_object());
        match target {
            Some(target) => merge(target, *rule),
            None => unused.push(format!("{schema}.{property}")),
        }
    }
    unused
}

fn apply_parameter_rules(doc: &mut Value) -> Vec<String> {
    let mut used = vec![false; PARAMETERS.len()];
    let mut refused = vec![false; REFUSED_PARAMETERS.len()];
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let ops = item
                .as_object_mut()
                .into_iter()
                .flat_map(|i| i.values_mut());
            for op in ops {
                let Some(params) = op.get_mut("parameters").and_then(Value::as_array_mut) else {
                    continue;
                };
                params.retain(|param| {
                    let at = REFUSED_PARAMETERS
                        .iter()
                        .position(|(p, n)| p == path && param["name"] == *n);
                    if let Some(i) = at {
                        refused[i] = true;
                    }
                    at.is_none()
                });
                for param in params.iter_mut() {
                    let name = param["name"].as_str().unwrap_or_default().to_owned();
                    let Some(schema) = param.get_mut("schema") else {
                        continue;
                    };
                    // A header, query or path value is absent or a string, never JSON null.
                    drop_null(schema);
                    let rule = PARAMETERS
                        .iter()
                        .enumerate()
                        .find(|(_, (p, n, _))| *n == name && (*p == path || *p == "*"));
                    if let Some((i, (_, _, rule))) = rule {
                        used[i] = true;
                        merge(schema, *rule);
                    }
                }
            }
        }
    }
    let unused = PARAMETERS
        .iter()
        .zip(used)
        .filter(|(_, used)| !used)
        .map(|((p, n, _), _)| format!("{p} ?{n}"));
    let unrefused = REFUSED_PARAMETERS
        .iter()
        .zip(refused)
        .filter(|(_, r)| !r)
        .map(|((p, n), _)| format!("{p} ?{n} (refused)"));
    unused.chain(unrefused).collect()
}

/// Merges a rule into a schema, keeping its description and whether it takes `null`.
fn merge(target: &mut Value, rule: Rule) {
    let nullable = target["type"]
        .as_array()
        .is_some_and(|t| t.contains(&json!("null")));
    let Some(obj) = target.as_object_mut() else {
        return;
    };
    let Value::Object(rule) = rule() else {
        return;
    };
    for (key, value) in rule {
        if key == "description" {
            let joined = match obj.get("description").and_then(Value::as_str) {
                Some(d) => format!("{d} {}", value.as_str().unwrap_or_default()),
                None => value.as_str().unwrap_or_default().to_owned(),
            };
            obj.insert(key, Value::String(joined));
        } else {
            obj.insert(key, value);
        }
    }
    if nullable {
        if obj.contains_key("enum") {
            // A nullable enum as `anyOf`, which generated clients read as "one of these, or
            // none" (an enum listing null beside strings makes them model several types).
            let description = obj.remove("description");
            let values = std::mem::take(obj);
            obj.insert(
                "anyOf".into(),
                json!([Value::Object(values), {"type": "null"}]),
            );
            if let Some(d) = description {
                obj.insert("description".into(), d);
            }
        } else if let Some(Value::String(t)) = obj.get("type") {
            let t = t.clone();
            obj.insert("type".into(), json!([t, "null"]));
        }
    }
}

fn drop_null(schema: &mut Value) {
    if let Some(types) = schema.get_mut("type").and_then(Value::as_array_mut) {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            schema["type"] = only;
        }
    }
}

/// What an operation is made of, which decides the statuses it can answer.
struct Shape {
    secured: bool,
    body: bool,
    path_params: bool,
    query: bool,
    keyed: bool,
    write: bool,
    probe: bool,
}

fn complete_operation(path: &str, method: &str, op: &mut Value) {
    let params = op["parameters"].as_array().cloned().unwrap_or_default();
    let has = |place: &str| params.iter().any(|p| p["in"] == place);
    let shape = Shape {
        secured: op["security"].as_array().is_some_and(|s| !s.is_empty()),
        body: op.get("requestBody").is_some(),
        path_params: has("path"),
        query: has("query"),
        keyed: params.iter().any(|p| p["name"] == "Idempotency-Key"),
        write: matches!(method, "post" | "patch" | "put" | "delete"),
        probe: matches!(path, "/health" | "/ready"),
    };
    if shape.secured {
        op["security"] = security(method, path);
        let action = action_for(method, path);
        if let Some(role) = action.and_then(Action::min_role) {
            op["x-min-tenant-role"] = json!(role.as_str());
        }
    }
    let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
        return;
    };
    for (status, description, applies) in common_answers(&shape) {
        if !applies {
            continue;
        }
        let entry = responses
            .entry(status.to_owned())
            .or_insert_with(|| json!({"description": description}));
        if entry.get("content").is_none() {
            entry["content"] = json!({"application/json": {"schema": {"$ref": ERROR_REF}}});
        }
        if matches!(status, "429" | "503" | "507") || (status == "409" && shape.keyed) {
            entry["headers"]["Retry-After"] = json!({
                "description": "Seconds to wait before retrying",
                "schema": {"type": "integer", "minimum": 0},
            });
        }
    }
}

/// The statuses every operation of a shape can answer besides its handler's own.
fn common_answers(s: &Shape) -> [(&'static str, &'static str, bool); 12] {
    [
        (
            "400",
            "Malformed request: bad JSON or an unknown field (`invalid_json`), a bad query parameter (`invalid_query`), path segment (`invalid_path`) or Idempotency-Key (`invalid_idempotency_key`)",
            s.body || s.path_params || s.query || s.keyed,
        ),
        ("401", "No valid credential (`unauthorized`)", s.secured),
        (
            "403",
            "The credential may not do this (`forbidden`)",
            s.secured,
        ),
        (
            "404",
            "No such resource, or another tenant's (`not_found`)",
            s.path_params,
        ),
        (
            "409",
            "A request with this Idempotency-Key is still running (`idempotency_key_in_flight`)",
            s.keyed,
        ),
        (
            "413",
            "Body over `SAAS_MAX_BODY_BYTES` (`payload_too_large`)",
            s.body,
        ),
        (
            "415",
            "The body is not JSON (`unsupported_media_type`)",
            s.body,
        ),
        (
            "422",
            "A value breaks a rule (`validation_failed`, `details.fields`); an Idempotency-Key reused for another body (`idempotency_key_reused`)",
            s.body || s.query || s.keyed,
        ),
        (
            "429",
            "Over a rate limit (`rate_limited`); see `Retry-After`",
            !s.probe,
        ),
        (
            "500",
            "A bug (`internal`); quote the `x-request-id` header",
            true,
        ),
        (
            "503",
            "The database or a write queue is unavailable (`database_unavailable`, `database_read_only`, `unavailable`); see `Retry-After`",
            !s.probe,
        ),
        (
            "507",
            "The database has no space left (`storage_full`); see `Retry-After`",
            s.write,
        ),
    ]
}

/// The credentials that may call an operation, from its action in the route table (a route
/// outside the table is for operators only).
fn security(method: &str, path: &str) -> Value {
    let action = action_for(method, path);
    let mut schemes = vec![];
    if action != Some(Action::OwnSession) {
        schemes.push("operatorToken");
    }
    schemes.push("userJwt");
    if let Some(action) = action {
        if action.min_role().is_some() && action != Action::OwnSession {
            schemes.push("tenantApiKey");
        }
        if action.gateway_may() {
            schemes.push("gatewayToken");
        }
    }
    Value::Array(schemes.into_iter().map(|s| json!({ s: [] })).collect())
}

fn add_security_schemes(doc: &mut Value) {
    let mut schemes = Map::new();
    for (name, description) in SCHEMES {
        schemes.insert(
            (*name).to_owned(),
            json!({"type": "http", "scheme": "bearer", "description": description}),
        );
    }
    schemes["userJwt"]["bearerFormat"] = json!("JWT");
    doc["components"]["securitySchemes"] = Value::Object(schemes);
}

#[cfg(test)]
mod tests {
    use actix_web::App;
    use utoipa::OpenApi;
    use utoipa_actix_web::AppExt;

    use super::*;
    use crate::routes::{self, openapi::ApiDoc};

    fn generated() -> Value {
        let (_, api) = App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .configure(routes::configure)
            .split_for_parts();
        serde_json::to_value(&api).unwrap_or_default()
    }

    #[test]
    fn every_rule_applies() {
        let mut doc = generated();
        let unused = complete(&mut doc);
        assert!(unused.is_empty(), "rules that found nothing: {unused:?}");
    }

    #[test]
    fn rules_keep_nullability_and_descriptions() {
        let mut doc = generated();
        complete(&mut doc);
        let slug = &doc["components"]["schemas"]["CreateTenantRequest"]["properties"]["slug"];
        assert_eq!(slug["type"], json!(["string", "null"]));
        assert_eq!(slug["maxLength"], 63);
        let plan = &doc["components"]["schemas"]["CreateTenantRequest"]["properties"]["plan"];
        assert_eq!(
            plan["anyOf"][0]["enum"],
            json!(["free", "starter", "pro", "enterprise"])
        );
        assert_eq!(plan["anyOf"][1]["type"], "null");
        assert!(
            plan["description"]
                .as_str()
                .is_some_and(|d| d.contains("free"))
        );
        let limit = doc["paths"]["/tenants"]["get"]["parameters"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["name"] == "limit"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(limit["schema"]["maximum"], 500);
        assert_eq!(limit["schema"]["type"], "integer");
    }

    #[test]
    fn security_follows_the_access_policy() {
        let mut doc = generated();
        complete(&mut doc);
        let names = |path: &str, method: &str| -> Vec<String> {
            doc["paths"][path][method]["security"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s.as_object()?.keys().next().cloned())
                .collect()
        };
        assert_eq!(names("/tenants", "post"), ["operatorToken", "userJwt"]);
        assert_eq!(
            names("/config", "get"),
            ["operatorToken", "userJwt", "gatewayToken"]
        );
        assert_eq!(
            names("/tenants/{id}/channels", "get"),
            ["operatorToken", "userJwt", "tenantApiKey"]
        );
        assert_eq!(names("/auth/logout", "post"), ["userJwt"]);
        assert!(names("/auth/login", "post").is_empty());
        assert_eq!(
            doc["paths"]["/tenants/{id}"]["patch"]["x-min-tenant-role"],
            "owner"
        );
    }
}
