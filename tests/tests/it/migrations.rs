//! Migrations on both backends: up, down, up again; and the schema's index rules.

// Helpers here stop the test on any failure, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use diesel::{QueryableByName, RunQueryDsl, sql_query, sql_types::Text};
use moltbot_saas_tests::TestDb;
use tenant_store::{AnyConnection, migrations};

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(Debug, QueryableByName)]
struct ForeignKey {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

/// The tables of the application (Diesel's own bookkeeping table left out).
fn tables(conn: &mut AnyConnection) -> BTreeSet<String> {
    let rows: Vec<Name> = match conn {
        AnyConnection::Sqlite(c) => sql_query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .load(c),
        AnyConnection::Postgresql(c) => sql_query(
            "SELECT table_name::text AS name FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
        )
        .load(c),
    }
    .expect("list tables");
    rows.into_iter()
        .map(|r| r.name)
        .filter(|n| n != "__diesel_schema_migrations")
        .collect()
}

/// The tables the migrations create; the rest of the schema is reached through these.
const EXPECTED_TABLES: &[&str] = &[
    "access_tokens",
    "api_keys",
    "audit_log",
    "channels",
    "config_revision",
    "events",
    "gateway_loads",
    "sessions",
    "tenant_users",
    "tenants",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoint_circuits",
    "webhook_endpoints",
];

#[test]
fn migrations_run_revert_and_run_again() {
    let db = TestDb::empty();
    let mut conn = db.connect();
    assert!(tables(&mut conn).is_empty(), "an empty database");
    let all = migrations::pending(&mut conn).unwrap();
    assert!(!all.is_empty());

    let applied = migrations::run_pending(&mut conn).unwrap();
    assert_eq!(applied.len(), all.len(), "every pending migration ran");
    assert!(migrations::pending(&mut conn).unwrap().is_empty());
    let after_up = tables(&mut conn);
    for t in EXPECTED_TABLES {
        assert!(
            after_up.contains(*t),
            "{t} exists after migrating: {after_up:?}"
        );
    }
    // Running again is a no-op.
    assert!(migrations::run_pending(&mut conn).unwrap().is_empty());

    let reverted = migrations::revert_all(&mut conn).unwrap();
    assert_eq!(reverted.len(), all.len(), "every migration reverted");
    let after_down = tables(&mut conn);
    assert!(
        after_down.is_empty(),
        "the down migrations drop every table: {after_down:?} remain"
    );
    assert_eq!(migrations::pending(&mut conn).unwrap().len(), all.len());

    let reapplied = migrations::run_pending(&mut conn).unwrap();
    assert_eq!(reapplied, applied);
    assert_eq!(
        tables(&mut conn),
        after_up,
        "the same schema the second time"
    );
    assert!(migrations::pending(&mut conn).unwrap().is_empty());

    // The schema works after the round trip: the seed rows of config_revision are back.
    assert_eq!(
        tenant_store::config_revision::current(&mut conn).unwrap(),
        0
    );
    let t = tenant_store::tenants::insert(
        &mut conn,
        tenant_core::NewTenant::parse("After Round Trip", None, None).unwrap(),
        tenant_core::now(),
    )
    .unwrap();
    assert_eq!(tenant_store::tenants::find(&mut conn, &t.id).unwrap(), t);
}

/// Foreign keys whose (first) column is not the first column of any index: every lookup of a
/// parent's children, and every cascading delete, would scan the child table.
fn unindexed_foreign_keys(conn: &mut AnyConnection) -> (Vec<ForeignKey>, Vec<ForeignKey>) {
    match conn {
        AnyConnection::Postgresql(c) => {
            let all: Vec<ForeignKey> = sql_query(
                "SELECT con.conrelid::regclass::text AS table_name, att.attname::text AS column_name \
                 FROM pg_catalog.pg_constraint con \
                 JOIN pg_catalog.pg_attribute att \
                   ON att.attrelid = con.conrelid AND att.attnum = con.conkey[1] \
                 WHERE con.contype = 'f' \
                   AND con.connamespace = 'public'::regnamespace \
                 ORDER BY 1, 2",
            )
            .load(c)
            .unwrap();
            let missing: Vec<ForeignKey> = sql_query(
                "SELECT con.conrelid::regclass::text AS table_name, att.attname::text AS column_name \
                 FROM pg_catalog.pg_constraint con \
                 JOIN pg_catalog.pg_attribute att \
                   ON att.attrelid = con.conrelid AND att.attnum = con.conkey[1] \
                 WHERE con.contype = 'f' \
                   AND con.connamespace = 'public'::regnamespace \
                   AND NOT EXISTS ( \
                     SELECT 1 FROM pg_catalog.pg_index idx \
                     WHERE idx.indrelid = con.conrelid AND idx.indkey[0] = con.conkey[1]) \
                 ORDER BY 1, 2",
            )
            .load(c)
            .unwrap();
            (all, missing)
        }
        AnyConnection::Sqlite(c) => {
            let all: Vec<ForeignKey> = sql_query(
                "SELECT m.name AS table_name, fk.\"from\" AS column_name \
                 FROM sqlite_master m, pragma_foreign_key_list(m.name) fk \
                 WHERE m.type = 'table' AND fk.seq = 0 \
                 ORDER BY 1, 2",
            )
            .load(c)
            .unwrap();
            let missing: Vec<ForeignKey> = sql_query(
                "SELECT m.name AS table_name, fk.\"from\" AS column_name \
                 FROM sqlite_master m, pragma_foreign_key_list(m.name) fk \
                 WHERE m.type = 'table' AND fk.seq = 0 \
                   AND NOT EXISTS ( \
                     SELECT 1 FROM pragma_index_list(m.name) il, pragma_index_info(il.name) ii \
                     WHERE ii.seqno = 0 AND ii.name = fk.\"from\") \
                 ORDER BY 1, 2",
            )
            .load(c)
            .unwrap();
            (all, missing)
        }
    }
}

#[test]
fn every_foreign_key_has_an_index_leading_with_its_column() {
    let db = TestDb::new();
    let mut conn = db.connect();
    let (all, missing) = unindexed_foreign_keys(&mut conn);
    // The check must see the foreign keys at all, or it would pass on any schema.
    let seen: BTreeSet<(String, String)> = all
        .iter()
        .map(|fk| (fk.table_name.clone(), fk.column_name.clone()))
        .collect();
    for table in [
        "channels",
        "api_keys",
        "tenant_users",
        "sessions",
        "webhook_endpoints",
    ] {
        assert!(
            seen.contains(&(table.to_owned(), "tenant_id".to_owned())),
            "{table}.tenant_id is a foreign key ({}): {seen:?}",
            db.backend()
        );
    }
    assert!(
        missing.is_empty(),
        "foreign keys without an index leading with their column ({}): {missing:?}",
        db.backend()
    );
}
