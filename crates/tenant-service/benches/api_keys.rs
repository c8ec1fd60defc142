//! API key authentication costs: the HMAC of a presented key, a cache hit, and the indexed
//! database lookup of a cache miss (SQLite, 10 000 keys).

#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tenant_core::{NewTenant, Role, TenantId};
use tenant_service::api_keys::{ApiKeyCache, ApiKeyHasher, AuthenticatedKey};
use tenant_service::tokens::{API_KEY_PREFIX, generate_token};
use tenant_store::api_keys::{self, NewApiKey};
use tenant_store::{DatabaseUrl, migrations, tenants};

fn hashing_and_cache(c: &mut Criterion) {
    let hasher = ApiKeyHasher::new(&[42u8; 32]);
    let key = generate_token(API_KEY_PREFIX);
    c.bench_function("api_key/hmac_sha256", |b| {
        b.iter(|| hasher.hash(black_box(key.expose())))
    });

    let cache = ApiKeyCache::new(Duration::from_secs(3600));
    for i in 0..9_999u32 {
        let k = generate_token(API_KEY_PREFIX);
        cache.insert(
            hasher.hash(k.expose()),
            AuthenticatedKey {
                id: uuid::Uuid::new_v4(),
                tenant_id: TenantId::random(),
                role: if i % 2 == 0 {
                    Role::Admin
                } else {
                    Role::Member
                },
                expires_at: None,
            },
        );
    }
    let id = TenantId::random();
    cache.insert(
        hasher.hash(key.expose()),
        AuthenticatedKey {
            id: uuid::Uuid::new_v4(),
            tenant_id: id,
            role: Role::Owner,
            expires_at: None,
        },
    );
    c.bench_function("api_key/hmac_and_cache_hit", |b| {
        b.iter(|| {
            let h = hasher.hash(black_box(key.expose()));
            cache.get(&h).expect("cached").principal()
        })
    });
}

fn database_lookup(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("api-key-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = DatabaseUrl::parse(&format!("sqlite://{}", dir.join("bench.db").display())).unwrap();
    let mut conn = url.connect().unwrap();
    migrations::run_pending(&mut conn).unwrap();
    let now = tenant_core::now();
    let tenant = tenants::insert(
        &mut conn,
        NewTenant::parse("Bench", None, None).unwrap(),
        now,
    )
    .unwrap();
    let hasher = ApiKeyHasher::new(&[42u8; 32]);
    let mut last = String::new();
    for i in 0..10_000u32 {
        let key = generate_token(API_KEY_PREFIX);
        let hash = hasher.hash_hex(key.expose());
        api_keys::insert(
            &mut conn,
            &tenant.id,
            &NewApiKey {
                name: &format!("k{i}"),
                prefix: "msk_live_bnch",
                key_hash: &hash,
                role: Role::Member,
                expires_at: None,
            },
            now,
        )
        .unwrap();
        last = key.expose().to_owned();
    }
    c.bench_function("api_key/hmac_and_sqlite_lookup_10k", |b| {
        b.iter(|| {
            let hash = hasher.hash_hex(black_box(&last));
            api_keys::find_by_hash(&mut conn, &hash)
                .unwrap()
                .expect("found")
        })
    });
    drop(conn);
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, hashing_and_cache, database_lookup);
criterion_main!(benches);
