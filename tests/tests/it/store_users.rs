//! The user, refresh-token and throttle stores, called directly on both backends.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use moltbot_saas_tests::TestDb;
use tenant_core::{Email, NewTenant, PageRequest, Role};
use tenant_store::login_throttle::{self, ThrottleRow};
use tenant_store::refresh_tokens::{self, TokenOwner};
use tenant_store::users::{self, NewTenantUser};
use tenant_store::{StoreError, tenants};
use uuid::Uuid;

#[test]
fn users_are_reached_only_through_their_tenant() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let now = tenant_core::now();
    let a = tenants::insert(&mut conn, NewTenant::parse("A", None, None).unwrap(), now).unwrap();
    let b = tenants::insert(&mut conn, NewTenant::parse("B", None, None).unwrap(), now).unwrap();
    let email = Email::parse("alice@example.com").unwrap();
    let new = |role| NewTenantUser {
        email: &email,
        role,
        password_hash: Some("$argon2id$placeholder".into()),
        invite: None,
    };
    let alice = users::insert(&mut conn, &a.id, new(Role::Owner), now).unwrap();
    // Unique per tenant, not globally.
    assert!(matches!(
        users::insert(&mut conn, &a.id, new(Role::Member), now),
        Err(StoreError::Conflict { field: "email", .. })
    ));
    users::insert(&mut conn, &b.id, new(Role::Member), now).unwrap();

    let id = alice.uuid().unwrap();
    assert_eq!(
        users::find(&mut conn, &a.id, &id).unwrap().email,
        "alice@example.com"
    );
    assert!(matches!(
        users::find(&mut conn, &b.id, &id),
        Err(StoreError::NotFound("user"))
    ));
    assert!(matches!(
        users::delete(&mut conn, &b.id, &id),
        Err(StoreError::NotFound("user"))
    ));
    assert!(matches!(
        users::update_access(&mut conn, &b.id, &id, Role::Member, false, now),
        Err(StoreError::NotFound("user"))
    ));
    assert_eq!(users::count_enabled_owners(&mut conn, &a.id).unwrap(), 1);
    assert_eq!(users::count_enabled_owners(&mut conn, &b.id).unwrap(), 0);
    assert_eq!(
        users::tenant_id_by_slug(&mut conn, a.slug.as_str()).unwrap(),
        Some(a.id)
    );
    let page = users::list(&mut conn, &a.id, &PageRequest::parse(None, None).unwrap()).unwrap();
    assert_eq!(page.items.len(), 1);
    assert!(!format!("{:?}", page.items[0]).contains("argon2"));

    // Deleting the tenant takes its users and their refresh tokens.
    refresh_tokens::insert(
        &mut conn,
        TokenOwner::TenantUser(id),
        &Uuid::new_v4(),
        "hash-1",
        now,
        now + Duration::days(1),
    )
    .unwrap();
    tenant_store::gateways::fleet_transaction(&mut conn, |f| tenants::delete(f, &a.id)).unwrap();
    assert!(users::find_for_auth(&mut conn, &id).unwrap().is_none());
    assert!(
        refresh_tokens::find_by_hash(&mut conn, "hash-1")
            .unwrap()
            .is_none()
    );
}

#[test]
fn refresh_tokens_are_used_once_and_revoked_by_family() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let now = tenant_core::now();
    let t = tenants::insert(&mut conn, NewTenant::parse("A", None, None).unwrap(), now).unwrap();
    let email = Email::parse("bob@example.com").unwrap();
    let user = users::insert(
        &mut conn,
        &t.id,
        NewTenantUser {
            email: &email,
            role: Role::Admin,
            password_hash: None,
            invite: Some(("invite-hash".into(), now + Duration::days(7))),
        },
        now,
    )
    .unwrap();
    assert_eq!(
        users::find_by_invite_hash(&mut conn, "invite-hash")
            .unwrap()
            .map(|u| u.id),
        Some(user.id.clone())
    );
    let owner = TokenOwner::TenantUser(user.uuid().unwrap());
    let family = Uuid::new_v4();
    let later = now + Duration::days(30);
    refresh_tokens::insert(&mut conn, owner, &family, "h1", now, later).unwrap();
    refresh_tokens::insert(&mut conn, owner, &family, "h2", now, later).unwrap();
    refresh_tokens::insert(&mut conn, owner, &Uuid::new_v4(), "other", now, later).unwrap();

    let h1 = refresh_tokens::find_by_hash(&mut conn, "h1")
        .unwrap()
        .unwrap();
    assert_eq!(h1.owner(), Some(owner));
    assert!(refresh_tokens::mark_used(&mut conn, &h1.id, now).unwrap());
    assert!(
        !refresh_tokens::mark_used(&mut conn, &h1.id, now).unwrap(),
        "only once"
    );
    assert_eq!(
        refresh_tokens::revoke_family(&mut conn, &h1.family_id, now).unwrap(),
        2
    );
    let h2 = refresh_tokens::find_by_hash(&mut conn, "h2")
        .unwrap()
        .unwrap();
    assert!(h2.revoked_at.is_some());
    assert!(
        !refresh_tokens::mark_used(&mut conn, &h2.id, now).unwrap(),
        "revoked"
    );
    let other = refresh_tokens::find_by_hash(&mut conn, "other")
        .unwrap()
        .unwrap();
    assert!(other.revoked_at.is_none(), "other families live on");
    assert_eq!(
        refresh_tokens::revoke_all_of(&mut conn, owner, now).unwrap(),
        1
    );
    assert_eq!(
        refresh_tokens::delete_expired_of(&mut conn, owner, later + Duration::seconds(1)).unwrap(),
        3
    );
}

#[test]
fn throttle_counters_upsert_and_expire() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let now = tenant_core::now();
    let row = |failures, at: chrono::DateTime<chrono::Utc>| ThrottleRow {
        throttle_key: "addr:127.0.0.1".into(),
        failures,
        locked_until: None,
        updated_at: at.naive_utc(),
    };
    login_throttle::put(&mut conn, &row(1, now)).unwrap();
    login_throttle::put(&mut conn, &row(2, now)).unwrap();
    assert_eq!(
        login_throttle::get(&mut conn, "addr:127.0.0.1")
            .unwrap()
            .unwrap()
            .failures,
        2
    );
    assert_eq!(
        login_throttle::delete_stale(&mut conn, now - Duration::hours(1)).unwrap(),
        0
    );
    assert_eq!(
        login_throttle::delete_stale(&mut conn, now + Duration::seconds(1)).unwrap(),
        1
    );
    login_throttle::put(&mut conn, &row(1, now)).unwrap();
    login_throttle::clear(&mut conn, "addr:127.0.0.1").unwrap();
    assert!(
        login_throttle::get(&mut conn, "addr:127.0.0.1")
            .unwrap()
            .is_none()
    );
}
