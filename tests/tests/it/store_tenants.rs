//! The tenant store, called directly; the same tests run on SQLite and PostgreSQL.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use moltbot_saas_tests::TestDb;
use tenant_core::{NewTenant, PageRequest, Plan, Tenant, TenantId, TenantStatus, TenantUpdate};
use tenant_store::tenants::{self, TenantFilter};
use tenant_store::{AnyConnection, StoreError};

fn new_tenant(name: &str, slug: Option<&str>, plan: Option<&str>) -> NewTenant {
    NewTenant::parse(name, slug, plan).expect("valid tenant input")
}

fn insert(conn: &mut AnyConnection, name: &str) -> Tenant {
    tenants::insert(conn, new_tenant(name, None, None), tenant_core::now()).expect("insert")
}

/// Walks every page of `filter` with page size `limit`; returns the pages.
fn walk(conn: &mut AnyConnection, filter: &TenantFilter, limit: u32) -> Vec<Vec<Tenant>> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let req = PageRequest::parse(Some(limit), cursor.as_deref()).expect("page request");
        let page = tenants::list(conn, filter, &req).expect("list");
        assert!(page.items.len() <= limit as usize);
        let next = page.next_cursor.map(|c| c.encode());
        pages.push(page.items);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
        assert!(pages.len() <= 100, "pagination does not terminate");
    }
    pages
}

fn ids(tenants: &[Tenant]) -> Vec<TenantId> {
    tenants.iter().map(|t| t.id).collect()
}

#[test]
fn insert_find_update_delete_round_trip() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let now = tenant_core::now();
    let created = tenants::insert(
        &mut conn,
        new_tenant("  Acme Corp ", Some("acme"), Some("pro")),
        now,
    )
    .unwrap();
    assert_eq!(created.name.as_str(), "Acme Corp");
    assert_eq!(created.slug.as_str(), "acme");
    assert_eq!(created.plan, Plan::Pro);
    assert_eq!(created.status, TenantStatus::Active);
    assert_eq!(
        created.account_id.as_str(),
        format!("tenant-{}", created.id.short_hex())
    );
    assert_eq!(
        created.agent_id.as_str(),
        format!("agent-{}", created.id.short_hex())
    );

    // Read back exactly as written, timestamps included (both backends keep microseconds).
    let found = tenants::find(&mut conn, &created.id).unwrap();
    assert_eq!(found, created);
    assert_eq!(
        tenants::find_by_account_id(&mut conn, &created.account_id).unwrap(),
        created
    );
    assert!(tenants::exists(&mut conn, &created.id).unwrap());

    let later = now + Duration::seconds(5);
    let update = TenantUpdate::parse(
        Some("Acme Industries"),
        Some("acme-industries"),
        Some("enterprise"),
        Some("suspended"),
    )
    .unwrap();
    let updated = tenants::update(&mut conn, &created.id, update, later).unwrap();
    assert_eq!(updated.name.as_str(), "Acme Industries");
    assert_eq!(updated.slug.as_str(), "acme-industries");
    assert_eq!(updated.plan, Plan::Enterprise);
    assert_eq!(updated.status, TenantStatus::Suspended);
    assert_eq!(updated.created_at, created.created_at);
    assert_eq!(updated.updated_at, later);
    // Ids never change.
    assert_eq!(updated.account_id, created.account_id);
    assert_eq!(tenants::find(&mut conn, &created.id).unwrap(), updated);
    // Suspended tenants leave the active list.
    assert!(
        !ids(&tenants::list_active(&mut conn).unwrap()).contains(&created.id),
        "a suspended tenant is not active"
    );

    tenant_store::gateways::fleet_transaction(&mut conn, |f| tenants::delete(f, &created.id))
        .unwrap();
    assert!(matches!(
        tenants::find(&mut conn, &created.id),
        Err(StoreError::NotFound("tenant"))
    ));
    assert!(!tenants::exists(&mut conn, &created.id).unwrap());
    assert!(matches!(
        tenant_store::gateways::fleet_transaction(&mut conn, |f| tenants::delete(f, &created.id)),
        Err(StoreError::NotFound("tenant"))
    ));
    assert!(matches!(
        tenants::update(
            &mut conn,
            &created.id,
            TenantUpdate::parse(Some("x"), None, None, None).unwrap(),
            later
        ),
        Err(StoreError::NotFound("tenant"))
    ));
}

#[test]
fn unknown_ids_are_not_found() {
    let db = TestDb::new();
    let mut conn = db.connect();
    insert(&mut conn, "Someone Else");
    let missing = TenantId::random();
    assert!(matches!(
        tenants::find(&mut conn, &missing),
        Err(StoreError::NotFound("tenant"))
    ));
    assert!(!tenants::exists(&mut conn, &missing).unwrap());
}

#[test]
fn derived_slugs_are_disambiguated_when_taken() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let first = insert(&mut conn, "Acme Corp");
    assert_eq!(first.slug.as_str(), "acme-corp");
    let second = insert(&mut conn, "ACME corp!");
    assert_eq!(
        second.slug.as_str(),
        format!("acme-corp-{}", second.id.short_hex()),
        "a taken derived slug gets the tenant's 8 hex digits"
    );
    // A derived slug colliding with a slug someone chose is disambiguated too.
    tenants::insert(
        &mut conn,
        new_tenant("Other", Some("globex"), None),
        tenant_core::now(),
    )
    .unwrap();
    let third = insert(&mut conn, "Globex");
    assert_eq!(
        third.slug.as_str(),
        format!("globex-{}", third.id.short_hex())
    );
    // Names with nothing usable fall back to the tenant's hex.
    let fallback = insert(&mut conn, "!!!");
    assert_eq!(
        fallback.slug.as_str(),
        format!("tenant-{}", fallback.id.short_hex())
    );
    let slugs: HashSet<_> = [&first, &second, &third, &fallback]
        .iter()
        .map(|t| t.slug.as_str().to_owned())
        .collect();
    assert_eq!(slugs.len(), 4);
}

#[test]
fn a_chosen_slug_that_is_taken_is_a_conflict() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let owner = tenants::insert(
        &mut conn,
        new_tenant("Acme", Some("acme"), None),
        tenant_core::now(),
    )
    .unwrap();
    let err = tenants::insert(
        &mut conn,
        new_tenant("Another Acme", Some("acme"), None),
        tenant_core::now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { field: "slug", .. }),
        "{err:?}"
    );
    // Nothing was written by the failed insert.
    let all = tenants::list(&mut conn, &TenantFilter::default(), &PageRequest::default()).unwrap();
    assert_eq!(ids(&all.items), [owner.id]);

    // Taking a slug by update is a conflict too, and leaves the tenant unchanged.
    let other = insert(&mut conn, "Other");
    let err = tenants::update(
        &mut conn,
        &other.id,
        TenantUpdate::parse(None, Some("acme"), None, None).unwrap(),
        tenant_core::now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { field: "slug", .. }),
        "{err:?}"
    );
    assert_eq!(tenants::find(&mut conn, &other.id).unwrap(), other);
}

#[test]
fn pagination_walks_every_tenant_once_in_creation_order() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let base: DateTime<Utc> = tenant_core::now();
    let mut created = Vec::new();
    for i in 0..11 {
        // Groups of three share a timestamp, so the id must break ties without gaps.
        let at = base + Duration::milliseconds(i / 3);
        let t = tenants::insert(
            &mut conn,
            new_tenant(&format!("Tenant {i}"), None, None),
            at,
        )
        .unwrap();
        created.push(t);
    }
    let pages = walk(&mut conn, &TenantFilter::default(), 4);
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        [4, 4, 3],
        "11 tenants in pages of 4"
    );
    let walked: Vec<Tenant> = pages.into_iter().flatten().collect();
    let walked_ids = ids(&walked);
    let unique: HashSet<_> = walked_ids.iter().collect();
    assert_eq!(unique.len(), walked_ids.len(), "no tenant twice");
    let expected: HashSet<_> = created.iter().map(|t| t.id).collect();
    assert_eq!(
        walked_ids.iter().copied().collect::<HashSet<_>>(),
        expected,
        "no gaps"
    );
    assert!(
        walked
            .windows(2)
            .all(|w| w[0].created_at <= w[1].created_at),
        "creation order"
    );
    // Pages, concatenated, are the one-page listing.
    let one_page = tenants::list(
        &mut conn,
        &TenantFilter::default(),
        &PageRequest::parse(Some(500), None).unwrap(),
    )
    .unwrap();
    assert!(one_page.next_cursor.is_none());
    assert_eq!(ids(&one_page.items), walked_ids);

    // A page size equal to the total ends without a cursor; one less needs a second page.
    let exact = tenants::list(
        &mut conn,
        &TenantFilter::default(),
        &PageRequest::parse(Some(11), None).unwrap(),
    )
    .unwrap();
    assert_eq!(exact.items.len(), 11);
    assert!(exact.next_cursor.is_none());
    assert_eq!(walk(&mut conn, &TenantFilter::default(), 10).len(), 2);
}

#[test]
fn pagination_with_filters_on_status_and_plan() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let plans = ["free", "pro", "pro", "enterprise"];
    let mut expected = Vec::new();
    for i in 0..16 {
        let plan = plans[i % plans.len()];
        let t = tenants::insert(
            &mut conn,
            new_tenant(&format!("Tenant {i}"), None, Some(plan)),
            tenant_core::now(),
        )
        .unwrap();
        let t = if i % 3 == 0 {
            tenants::update(
                &mut conn,
                &t.id,
                TenantUpdate::parse(None, None, None, Some("suspended")).unwrap(),
                tenant_core::now(),
            )
            .unwrap()
        } else {
            t
        };
        expected.push(t);
    }
    let pro_active: Vec<TenantId> = expected
        .iter()
        .filter(|t| t.plan == Plan::Pro && t.status == TenantStatus::Active)
        .map(|t| t.id)
        .collect();
    assert!(pro_active.len() > 2, "the filter must span several pages");
    let filter = TenantFilter {
        status: Some(TenantStatus::Active),
        plan: Some(Plan::Pro),
        name_contains: None,
    };
    let pages = walk(&mut conn, &filter, 2);
    assert!(pages.len() > 1);
    let walked: Vec<TenantId> = pages.iter().flat_map(|p| ids(p)).collect();
    assert_eq!(walked, pro_active, "filtered walk in creation order");

    let suspended: Vec<TenantId> = expected
        .iter()
        .filter(|t| t.status == TenantStatus::Suspended)
        .map(|t| t.id)
        .collect();
    let filter = TenantFilter {
        status: Some(TenantStatus::Suspended),
        ..TenantFilter::default()
    };
    let walked: Vec<TenantId> = walk(&mut conn, &filter, 2)
        .iter()
        .flat_map(|p| ids(p))
        .collect();
    assert_eq!(walked, suspended);
    // A filter nothing matches gives one empty page without a cursor.
    let filter = TenantFilter {
        name_contains: Some("no such tenant".into()),
        ..TenantFilter::default()
    };
    let pages = walk(&mut conn, &filter, 2);
    assert_eq!(pages, [Vec::<Tenant>::new()]);
}

#[test]
fn name_search_is_case_insensitive_and_takes_wildcards_literally() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let percent = insert(&mut conn, "50% Off Shop");
    let no_percent = insert(&mut conn, "500 Off Shop");
    let underscore = insert(&mut conn, "Snake_Case Ltd");
    let no_underscore = insert(&mut conn, "SnakeXCase Ltd");
    let backslash = insert(&mut conn, r"Back\slash");
    let search = |conn: &mut AnyConnection, q: &str| -> HashSet<TenantId> {
        let filter = TenantFilter {
            name_contains: Some(q.to_owned()),
            ..TenantFilter::default()
        };
        walk(conn, &filter, 2).iter().flat_map(|p| ids(p)).collect()
    };
    let set = |ts: &[&Tenant]| ts.iter().map(|t| t.id).collect::<HashSet<_>>();
    assert_eq!(search(&mut conn, "%"), set(&[&percent]));
    assert_eq!(search(&mut conn, "0% o"), set(&[&percent]));
    assert_eq!(search(&mut conn, "_"), set(&[&underscore]));
    assert_eq!(search(&mut conn, "e_c"), set(&[&underscore]));
    assert_eq!(search(&mut conn, "\\"), set(&[&backslash]));
    assert_eq!(search(&mut conn, "OFF shop"), set(&[&percent, &no_percent]));
    assert_eq!(
        search(&mut conn, "snake"),
        set(&[&underscore, &no_underscore])
    );
    assert_eq!(search(&mut conn, "nothing"), HashSet::new());
}
