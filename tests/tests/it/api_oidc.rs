//! Bearer JWTs of an external OpenID Connect issuer: a key pair made here, its JWKS served by a
//! real HTTP server on 127.0.0.1, and tokens with the right or a wrong issuer, audience, key or
//! expiry.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use moltbot_saas_tests::{TestDb, spawn_app_with, test_settings};
use p256::ecdsa::SigningKey;
use p256::pkcs8::EncodePrivateKey;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tenant_service::identity::{MappedRole, OidcSettings};

const ISSUER: &str = "https://idp.example.test";
const AUDIENCE: &str = "moltbot-saas";

/// An ES256 key pair from fixed-length random bytes.
fn key_pair() -> SigningKey {
    loop {
        let bytes: [u8; 32] = std::array::from_fn(|_| rand_byte());
        if let Ok(k) = SigningKey::from_slice(&bytes) {
            return k;
        }
    }
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

fn jwk(key: &SigningKey, kid: &str) -> Value {
    let point = key.verifying_key().to_sec1_point(false);
    let bytes = point.as_bytes();
    json!({
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
        "x": URL_SAFE_NO_PAD.encode(&bytes[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&bytes[33..65]),
    })
}

fn sign(key: &SigningKey, kid: &str, claims: &Value) -> String {
    let der = key.to_pkcs8_der().unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(der.as_bytes())).unwrap()
}

/// Serves `jwks` at `http://127.0.0.1:<port>/jwks`; returns the URL.
async fn serve_jwks(jwks: Value) -> String {
    let body = web::Data::new(jwks.to_string());
    let server = HttpServer::new(move || {
        App::new().app_data(body.clone()).route(
            "/jwks",
            web::get().to(|b: web::Data<String>| async move {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(b.get_ref().clone())
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    format!("http://127.0.0.1:{port}/jwks")
}

#[tokio::test]
async fn external_tokens_are_verified_against_the_issuers_keys() {
    let key = key_pair();
    let stranger = key_pair();
    let jwks_url = serve_jwks(json!({ "keys": [
        jwk(&key, "k1"),
        // A key type this server does not use must not spoil the set.
        { "kty": "oct", "kid": "sym", "k": "c2VjcmV0" },
    ]}))
    .await;

    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.identity.oidc = Some(OidcSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url,
        tenant_claim: "org".into(),
        role_claim: "groups".into(),
        role_map: HashMap::from([
            (
                "saas-admins".to_owned(),
                MappedRole::Tenant(tenant_core::Role::Admin),
            ),
            ("saas-staff".to_owned(), MappedRole::Operator),
        ]),
    });
    let app = spawn_app_with(settings).await;
    let a = app.create_tenant("Acme").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.create_tenant("Globex").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = chrono::Utc::now().timestamp();
    let claims = |overrides: Value| {
        let mut c = json!({
            "iss": ISSUER, "aud": AUDIENCE, "sub": "idp-user-42", "org": a,
            "groups": ["other", "saas-admins"], "iat": now, "exp": now + 600,
        });
        for (k, v) in overrides.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let get = |token: String, path: String| {
        let app = &app;
        async move { app.request_as(Some(&token), Method::GET, &path, None).await }
    };

    // The right issuer, audience and key: an admin of tenant A, and nothing of tenant B.
    let good = sign(&key, "k1", &claims(json!({})));
    let r = get(good.clone(), format!("/tenants/{a}/users")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    get(good.clone(), format!("/tenants/{b}/users"))
        .await
        .assert_error(StatusCode::NOT_FOUND, "not_found");
    get(good, "/tenants".into())
        .await
        .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // A mapped operator group sees every tenant.
    let staff = sign(&key, "k1", &claims(json!({ "groups": "saas-staff" })));
    assert_eq!(get(staff, "/tenants".into()).await.status, StatusCode::OK);

    // Wrong issuer, audience, key (under a known and an unknown kid), expired, or unmapped.
    let refused = [
        sign(
            &key,
            "k1",
            &claims(json!({ "iss": "https://evil.example.test" })),
        ),
        sign(&key, "k1", &claims(json!({ "aud": "another-app" }))),
        sign(&stranger, "k1", &claims(json!({}))),
        sign(&stranger, "k2", &claims(json!({}))),
        sign(
            &key,
            "k1",
            &claims(json!({ "iat": now - 7200, "exp": now - 3600 })),
        ),
        sign(&key, "k1", &claims(json!({ "groups": ["nobody"] }))),
        sign(&key, "k1", &claims(json!({ "org": "not-a-uuid" }))),
    ];
    for token in refused {
        get(token, format!("/tenants/{a}/users"))
            .await
            .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

/// An RS256 issuer: a fixed test key pair (`tests/fixtures/oidc/`, generated with openssl for
/// these tests only) whose public half is served as a JWK.
#[tokio::test]
async fn rs256_tokens_are_verified_too() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/oidc");
    let der = std::fs::read(dir.join("rs256-test-key.der")).unwrap();
    let public: Value =
        serde_json::from_slice(&std::fs::read(dir.join("rs256-test-key.jwk.json")).unwrap())
            .unwrap();
    let kid = public["kid"].as_str().unwrap().to_owned();
    let jwks_url = serve_jwks(json!({ "keys": [public] })).await;
    let db = TestDb::new();
    let mut settings = test_settings(&db);
    settings.identity.oidc = Some(OidcSettings {
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        jwks_url,
        tenant_claim: "tenant_id".into(),
        role_claim: "role".into(),
        role_map: HashMap::from([(
            "member".to_owned(),
            MappedRole::Tenant(tenant_core::Role::Member),
        )]),
    });
    let app = spawn_app_with(settings).await;
    let id = app.create_tenant("Rsa Co").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let now = chrono::Utc::now().timestamp();
    let sign_rs = |claims: &Value| {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_der(&der)).unwrap()
    };
    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "rsa-user", "tenant_id": id, "role": "member",
        "iat": now, "exp": now + 600,
    });
    let path = format!("/tenants/{id}");
    let r = app
        .request_as(Some(&sign_rs(&claims)), Method::GET, &path, None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A member may read, not change.
    app.request_as(
        Some(&sign_rs(&claims)),
        Method::PATCH,
        &path,
        Some(&json!({"name": "Renamed"})),
    )
    .await
    .assert_error(StatusCode::FORBIDDEN, "forbidden");
    // The same claims signed by another key (an ES256 one under the RSA key's kid) are refused.
    let mut wrong = claims.clone();
    wrong["sub"] = json!("forger");
    let forged = sign(&key_pair(), &kid, &wrong);
    app.request_as(Some(&forged), Method::GET, &path, None)
        .await
        .assert_error(StatusCode::UNAUTHORIZED, "unauthorized");
}
