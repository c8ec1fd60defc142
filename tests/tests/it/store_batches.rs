//! The batch store functions of the write paths, called directly on both backends: the
//! PostgreSQL statements and SQLite's portable loops must answer alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use diesel::prelude::*;
use moltbot_saas_tests::{TestDb, test_keys};
use tenant_core::{NewTenant, Secret, Tenant, TenantId};
use tenant_store::event_batch::{self, EventToStore, Stored};
use tenant_store::events::{Ingested, NewEvent};
use tenant_store::schema::{sessions, tenants};
use tenant_store::sessions::SessionSeen;
use tenant_store::tenant_batch::{self, TenantToCreate};
use tenant_store::webhooks::{self, NewEndpoint};
use tenant_store::{AnyConnection, config_revision};
use uuid::Uuid;

fn tenant(conn: &mut AnyConnection, name: &str) -> Tenant {
    let new = NewTenant::parse(name, None, None).unwrap();
    tenant_store::tenants::insert(conn, new, tenant_core::now()).unwrap()
}

fn endpoint(conn: &mut AnyConnection, t: &TenantId, types: &[&str], enabled: bool) {
    let new = NewEndpoint {
        url: "http://127.0.0.1:9/hook".into(),
        description: None,
        event_types: types.iter().map(|s| (*s).to_owned()).collect(),
        enabled,
        secret: Secret::new(String::from(
            "whsec_dGVzdHNlY3JldHRlc3RzZWNyZXR0ZXN0c2VjcmV0",
        )),
    };
    webhooks::insert(conn, t, new, tenant_core::now(), &test_keys()).unwrap();
}

fn item(
    t: &TenantId,
    source_id: &str,
    kind: &str,
    session: Option<&str>,
    ago: i64,
) -> EventToStore {
    EventToStore {
        tenant_id: *t,
        event: NewEvent {
            id: Uuid::new_v4(),
            source: "gateway".into(),
            source_id: source_id.into(),
            event_type: kind.into(),
            payload: format!(r#"{{"id":"{source_id}"}}"#),
        },
        session: session.map(|k| SessionSeen {
            session_key: k.into(),
            channel: "telegram".into(),
            peer_id: Some("42".into()),
            chat_type: "direct".into(),
        }),
        at: tenant_core::now() - Duration::seconds(ago),
    }
}

#[test]
fn a_batch_of_events_is_stored_as_each_one_alone_would_be() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let a = tenant(&mut conn, "Batch A").id;
    let b = tenant(&mut conn, "Batch B").id;
    endpoint(&mut conn, &a, &[], true);
    endpoint(&mut conn, &a, &["message.sent"], true);
    endpoint(&mut conn, &a, &["message.received"], false);
    endpoint(&mut conn, &b, &["message.received", "message.sent"], true);
    let earlier = item(&a, "seen-before", "message.received", None, 0);
    event_batch::store_many(&mut conn, std::slice::from_ref(&earlier)).unwrap();

    let gone = TenantId::random();
    let batch = vec![
        item(
            &a,
            "a-1",
            "message.received",
            Some("agent:x:telegram:direct:42"),
            30,
        ),
        item(
            &a,
            "a-2",
            "message.sent",
            Some("agent:x:telegram:direct:42"),
            10,
        ),
        item(&b, "b-1", "message.received", None, 0),
        item(&a, "seen-before", "message.received", None, 0),
        item(&b, "b-1", "message.received", None, 0),
        item(&gone, "nobody", "message.received", None, 0),
    ];
    let out = event_batch::store_many(&mut conn, &batch).unwrap().stored;
    let accepted = |k: usize, n: usize| {
        Stored::Done(Ingested::Accepted {
            event_id: batch[k].event.id,
            deliveries: n,
        })
    };
    assert_eq!(out[0], accepted(0, 1), "all-types endpoint only");
    assert_eq!(out[1], accepted(1, 2), "all types + message.sent");
    assert_eq!(out[2], accepted(2, 1));
    assert_eq!(
        out[3],
        Stored::Done(Ingested::Duplicate {
            event_id: earlier.event.id
        })
    );
    assert_eq!(
        out[4],
        Stored::Done(Ingested::Duplicate {
            event_id: batch[2].event.id
        })
    );
    assert_eq!(out[5], Stored::NoTenant);

    // One session for the two events that name it, with the later activity.
    let rows: Vec<(String, chrono::NaiveDateTime)> = sessions::table
        .select((sessions::tenant_id, sessions::last_activity_at))
        .load(&mut conn)
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].0, a.to_string());
    assert_eq!(rows[0].1, batch[1].at.naive_utc());

    // Messages counted once each per tenant (summed over periods: a batch may straddle a month),
    // duplicates and unknown tenants not at all.
    let messages = |conn: &mut AnyConnection, t: &TenantId| -> i64 {
        tenant_store::usage::history(conn, t, 12)
            .unwrap()
            .iter()
            .map(|r| r.messages)
            .sum()
    };
    assert_eq!(messages(&mut conn, &a), 3, "the earlier event and a-1, a-2");
    assert_eq!(messages(&mut conn, &b), 1, "b-1 once");
    assert!(
        tenant_store::usage::history(&mut conn, &gone, 12)
            .unwrap()
            .is_empty()
    );
}

/// The counters of (tenant, period) in the database (whole rows read by `history`, as judging
/// sees them), sorted.
fn stored_counters(
    conn: &mut AnyConnection,
    tenants: &[TenantId],
) -> Vec<tenant_store::usage::MessageCounter> {
    let rows: Vec<_> = tenants
        .iter()
        .flat_map(|t| tenant_store::usage::history(conn, t, 12).unwrap())
        .map(|r| r.counter().expect("a tenant id"))
        .collect();
    sorted(rows)
}

fn sorted(
    mut rows: Vec<tenant_store::usage::MessageCounter>,
) -> Vec<tenant_store::usage::MessageCounter> {
    rows.sort_by(|a, b| (&a.tenant_id, &a.period).cmp(&(&b.tenant_id, &b.period)));
    rows
}

#[test]
fn a_batch_answers_the_usage_counters_it_wrote_as_they_are_stored() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let a = tenant(&mut conn, "Counted A").id;
    let b = tenant(&mut conn, "Counted B").id;
    let c = tenant(&mut conn, "Counted C").id;
    let all = [a, b, c];

    // a: three new messages and a repeat of one of them; b: one message and an event that is
    // not one; c: no message at all; an unknown tenant's message.
    let first = vec![
        item(&a, "a-1", "message.received", None, 0),
        item(&a, "a-2", "message.sent", None, 0),
        item(&b, "b-1", "message.received", None, 0),
        item(&a, "a-1", "message.received", None, 0),
        item(&b, "b-s", "session.started", None, 0),
        item(&c, "c-s", "session.started", None, 0),
        item(&a, "a-3", "message.received", None, 0),
        item(&TenantId::random(), "nobody", "message.received", None, 0),
    ];
    let done = event_batch::store_many(&mut conn, &first).unwrap();
    assert_eq!(done.stored.len(), first.len());
    let counters = sorted(done.counters);
    assert_eq!(counters, stored_counters(&mut conn, &all));
    let count_of = |rows: &[tenant_store::usage::MessageCounter], t: &TenantId| -> Option<i64> {
        rows.iter().find(|r| r.tenant_id == *t).map(|r| r.messages)
    };
    assert_eq!(count_of(&counters, &a), Some(3), "a-1 once, a-2, a-3");
    assert_eq!(count_of(&counters, &b), Some(1));
    assert_eq!(count_of(&counters, &c), None, "no message: no counter");
    assert_eq!(counters.len(), 2);

    // Only duplicates: nothing counted, no counter answered (nothing to judge again).
    let again = vec![
        item(&a, "a-1", "message.received", None, 0),
        item(&b, "b-1", "message.received", None, 0),
    ];
    let done = event_batch::store_many(&mut conn, &again).unwrap();
    assert!(
        done.stored
            .iter()
            .all(|s| matches!(s, Stored::Done(Ingested::Duplicate { .. })))
    );
    assert!(done.counters.is_empty(), "{:?}", done.counters);

    // Another replica adds to a's counter and marks its soft limit: the next batch's answer is
    // the row after its own addition, with both.
    let period = tenant_store::usage::period_of(tenant_core::now());
    tenant_store::usage::add_messages(&mut conn, &a, &period, 10).unwrap();
    assert!(
        tenant_store::usage::claim_threshold(&mut conn, &a, &period, tenant_core::now()).unwrap()
    );
    let third = vec![
        item(&a, "a-4", "message.sent", None, 0),
        item(&a, "a-4", "message.sent", None, 0),
        item(&a, "a-5", "message.received", None, 0),
        item(&c, "c-1", "message.received", None, 0),
    ];
    let done = event_batch::store_many(&mut conn, &third).unwrap();
    let counters = sorted(done.counters);
    assert_eq!(counters, stored_counters(&mut conn, &[a, c]));
    assert_eq!(count_of(&counters, &a), Some(15), "13 + a-4 once + a-5");
    assert_eq!(count_of(&counters, &b), None, "no new message of b");
    assert_eq!(count_of(&counters, &c), Some(1));
    let row_a = counters.iter().find(|r| r.tenant_id == a).unwrap();
    assert!(row_a.threshold_notified && !row_a.exceeded);
}

#[test]
fn the_ids_of_a_batch_resolve_in_one_query() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let a = tenant(&mut conn, "Named A");
    let b = tenant(&mut conn, "Named B");
    let mut found = event_batch::tenants_named(
        &mut conn,
        &[TenantId::random()],
        &[a.account_id.as_str(), "tenant-00000000"],
        &[b.agent_id.as_str()],
    )
    .unwrap();
    found.sort_by_key(|(_, account, _)| account.clone());
    let mut want = vec![
        (
            a.id,
            a.account_id.as_str().to_owned(),
            a.agent_id.as_str().to_owned(),
        ),
        (
            b.id,
            b.account_id.as_str().to_owned(),
            b.agent_id.as_str().to_owned(),
        ),
    ];
    want.sort_by_key(|(_, account, _)| account.clone());
    assert_eq!(found, want);
}

#[test]
fn a_batch_of_tenants_skips_the_ones_that_collide_and_bumps_the_revision_once() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let existing = tenant(&mut conn, "Taken");
    let before = config_revision::current(&mut conn).unwrap();
    let now = tenant_core::now();
    let make = |name: &str, slug: Option<&str>| TenantToCreate {
        tenant: NewTenant::parse(name, slug, None)
            .unwrap()
            .into_tenant(TenantId::random(), now),
        keys: Vec::new(),
        audit: Vec::new(),
        idempotency: None,
    };
    let batch = vec![
        make("Fresh One", None),
        make("Fresh Two", Some("twin")),
        make("Fresh Three", Some("twin")),
        make("Whatever", Some(existing.slug.as_str())),
    ];
    let inserted = tenant_batch::insert_many(&mut conn, &batch).unwrap();
    assert_eq!(inserted, vec![true, true, false, false]);
    let names: Vec<String> = tenants::table
        .select(tenants::name)
        .order(tenants::name)
        .load(&mut conn)
        .unwrap();
    assert_eq!(names, vec!["Fresh One", "Fresh Two", "Taken"]);
    assert_eq!(config_revision::current(&mut conn).unwrap(), before + 2);
    // A batch that inserts nothing leaves the revision alone (a raised revision means a
    // re-render on every replica).
    let again = tenant_batch::insert_many(&mut conn, &batch[2..]).unwrap();
    assert_eq!(again, vec![false, false]);
    assert_eq!(config_revision::current(&mut conn).unwrap(), before + 2);
}

/// The `Idempotency-Key` rows of a batch go in its one statement, only for the tenants inserted;
/// a key already taken fails the batch as a whole, so nothing of it is written.
#[test]
fn a_batch_writes_its_idempotency_keys_and_a_taken_key_fails_it_whole() {
    use tenant_store::idempotency::{self, IdempotencyRow};
    use tenant_store::schema::idempotency_keys;

    let db = TestDb::new();
    let mut conn = db.connect();
    let existing = tenant(&mut conn, "Taken");
    let now = tenant_core::now();
    let key_row = |key: &str| IdempotencyRow {
        caller: "service_token:".into(),
        method: "POST".into(),
        path: "/tenants".into(),
        idem_key: key.into(),
        fingerprint: "00".repeat(32),
        status_code: 201,
        location: None,
        body: "{}".into(),
        sealed: false,
        created_at: now.naive_utc(),
        expires_at: (now + Duration::hours(24)).naive_utc(),
    };
    let make = |name: &str, slug: Option<&str>, key: Option<&str>| TenantToCreate {
        tenant: NewTenant::parse(name, slug, None)
            .unwrap()
            .into_tenant(TenantId::random(), now),
        keys: Vec::new(),
        audit: Vec::new(),
        idempotency: key.map(key_row),
    };
    let batch = vec![
        make("Keyed", None, Some("k-1")),
        make("Unkeyed", None, None),
        make("Keyed Collides", Some(existing.slug.as_str()), Some("k-2")),
    ];
    let inserted = tenant_batch::insert_many(&mut conn, &batch).unwrap();
    assert_eq!(inserted, vec![true, true, false]);
    let keys: Vec<String> = idempotency_keys::table
        .select(idempotency_keys::idem_key)
        .load(&mut conn)
        .unwrap();
    // The colliding tenant's key is not written: its create is retried alone, key and all.
    assert_eq!(keys, vec!["k-1"]);
    let found = idempotency::find(&mut conn, &key_row("k-1").scope())
        .unwrap()
        .unwrap();
    assert_eq!(found, key_row("k-1"));

    let count =
        |conn: &mut AnyConnection| -> i64 { tenants::table.count().get_result(conn).unwrap() };
    let before = count(&mut conn);
    let retry = vec![make("Other", None, None), make("Retry", None, Some("k-1"))];
    assert!(tenant_batch::insert_many(&mut conn, &retry).is_err());
    assert_eq!(count(&mut conn), before);
}
