//! Statements with fixed text, prepared once per connection and reused.
//!
//! `diesel::sql_query` never caches its statement, nor does Diesel's own upsert
//! (`on_conflict(…).do_update()`): each execution sends the SQL text again and the database
//! parses and plans it again. For the batch statements of the write paths (a few KB of SQL with
//! CTEs) that is a measurable share of both processes' CPU per batch on PostgreSQL, and on
//! SQLite preparing a statement costs more than running it. A [`Static`] has a type of its own
//! as its query id (`K`), so Diesel's statement cache prepares it once per connection, like the
//! queries of its DSL. [`PgStatic`] is the PostgreSQL one.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::sqlite::Sqlite;
use diesel::{PgConnection, QueryResult, RunQueryDsl, SqliteConnection};

/// One bind value of a [`Static`].
pub(crate) trait StaticBind<DB: Backend> {
    /// Pushes the value (and, while the SQL is written, its placeholder).
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()>;
}

struct Bind<ST, T>(T, PhantomData<ST>);

impl<DB, ST, T> StaticBind<DB> for Bind<ST, T>
where
    DB: Backend + HasSqlType<ST>,
    T: ToSql<ST, DB>,
{
    fn push<'b>(&'b self, out: &mut AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_bind_param::<ST, T>(&self.0)
    }
}

/// A statement whose text is `sql`, with `$1`, `$2`, … (each once, in order) standing for the
/// binds in the order they were added (written as the backend's placeholders: `$n` on
/// PostgreSQL, `?` on SQLite). `K` is a type used only as this statement's id.
pub(crate) struct Static<'a, K, DB: Backend> {
    sql: &'static str,
    binds: Vec<Box<dyn StaticBind<DB> + 'a>>,
    id: PhantomData<K>,
}

/// A [`Static`] statement of PostgreSQL.
pub(crate) type PgStatic<'a, K> = Static<'a, K, Pg>;
/// A [`Static`] statement of SQLite.
pub(crate) type SqliteStatic<'a, K> = Static<'a, K, Sqlite>;

impl<'a, K, DB: Backend> Static<'a, K, DB> {
    /// A statement with no binds yet.
    pub(crate) fn new(sql: &'static str) -> Self {
        Self {
            sql,
            binds: Vec::new(),
            id: PhantomData,
        }
    }

    /// Adds the next bind, of SQL type `ST`.
    pub(crate) fn bind<ST: 'a, T: ToSql<ST, DB> + 'a>(mut self, value: T) -> Self
    where
        DB: HasSqlType<ST>,
    {
        self.binds.push(Box::new(Bind::<ST, T>(value, PhantomData)));
        self
    }
}

impl<K: 'static, DB: Backend> QueryId for Static<'_, K, DB> {
    type QueryId = K;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<K, DB: Backend> Query for Static<'_, K, DB> {
    type SqlType = Untyped;
}

impl<K> RunQueryDsl<PgConnection> for PgStatic<'_, K> {}

impl<K> RunQueryDsl<SqliteConnection> for SqliteStatic<'_, K> {}

impl<K, DB: Backend> QueryFragment<DB> for Static<'_, K, DB> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        // The text is cut at each `$n`, and the n-th bind pushed in its place: Diesel numbers
        // the placeholders it writes itself, in the same order.
        let mut rest = self.sql;
        let mut binds = self.binds.iter();
        let mut n = 0usize;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - at - 1);
            out.push_sql(&rest[..at]);
            n += 1;
            if rest[at + 1..at + 1 + digits].parse::<usize>().ok() != Some(n) {
                return Err(unordered(self.sql));
            }
            binds
                .next()
                .ok_or_else(|| unordered(self.sql))?
                .push(&mut out)?;
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        if binds.next().is_some() {
            return Err(unordered(self.sql));
        }
        Ok(())
    }
}

fn unordered(sql: &str) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(
        format!(
            "placeholders must be $1, $2, … once each, in order, one per bind: {}",
            &sql[..sql.len().min(60)]
        )
        .into(),
    )
}

/// The columns of a batch statement, one array per column: each borrows from the rows, so
/// nothing is copied but the bytes Diesel sends.
pub(crate) fn col<'a, T, U>(v: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
    v.iter().map(f).collect()
}

/// Binds audit rows with the key of the row each belongs to ("owner"): 13 arrays, `id`,
/// `tenant_id`, `actor_type`, `actor_id`, `action`, `resource_type`, `resource_id`,
/// `request_id`, `client_addr`, `user_agent`, `details`, `created_at`, owner — the shape every
/// batch statement's `audit` CTE unnests.
pub(crate) fn bind_audit<'a, K>(
    q: PgStatic<'a, K>,
    audit: &'a [(&'a crate::audit::AuditRow, &'a str)],
) -> PgStatic<'a, K> {
    use diesel::sql_types::{Array, Nullable, Text, Timestamp};
    type Texts = Array<Text>;
    type OptTexts = Array<Nullable<Text>>;
    q.bind::<Texts, _>(col(audit, |(a, _)| a.id.as_str()))
        .bind::<OptTexts, _>(col(audit, |(a, _)| a.tenant_id.as_deref()))
        .bind::<Texts, _>(col(audit, |(a, _)| a.actor_type.as_str()))
        .bind::<OptTexts, _>(col(audit, |(a, _)| a.actor_id.as_deref()))
        .bind::<Texts, _>(col(audit, |(a, _)| a.action.as_str()))
        .bind::<Texts, _>(col(audit, |(a, _)| a.resource_type.as_str()))
        .bind::<OptTexts, _>(col(audit, |(a, _)| a.resource_id.as_deref()))
        .bind::<OptTexts, _>(col(audit, |(a, _)| a.request_id.as_deref()))
        .bind::<OptTexts, _>(col(audit, |(a, _)| a.client_addr.as_deref()))
        .bind::<OptTexts, _>(col(audit, |(a, _)| a.user_agent.as_deref()))
        .bind::<OptTexts, _>(col(audit, |(a, _)| a.details.as_deref()))
        .bind::<Array<Timestamp>, _>(col(audit, |(a, _)| a.created_at))
        .bind::<Texts, _>(col(audit, |(_, owner)| *owner))
}

/// Binds `Idempotency-Key` rows with their owner: 12 arrays in the column order of
/// `idempotency_keys`, then the owner.
pub(crate) fn bind_idempotency<'a, K>(
    q: PgStatic<'a, K>,
    idem: &'a [(&'a crate::idempotency::IdempotencyRow, &'a str)],
) -> PgStatic<'a, K> {
    use diesel::sql_types::{Array, Bool, Integer, Nullable, Text, Timestamp};
    type Texts = Array<Text>;
    q.bind::<Texts, _>(col(idem, |(i, _)| i.caller.as_str()))
        .bind::<Texts, _>(col(idem, |(i, _)| i.method.as_str()))
        .bind::<Texts, _>(col(idem, |(i, _)| i.path.as_str()))
        .bind::<Texts, _>(col(idem, |(i, _)| i.idem_key.as_str()))
        .bind::<Texts, _>(col(idem, |(i, _)| i.fingerprint.as_str()))
        .bind::<Array<Integer>, _>(col(idem, |(i, _)| i.status_code))
        .bind::<Array<Nullable<Text>>, _>(col(idem, |(i, _)| i.location.as_deref()))
        .bind::<Texts, _>(col(idem, |(i, _)| i.body.as_str()))
        .bind::<Array<Bool>, _>(col(idem, |(i, _)| i.sealed))
        .bind::<Array<Timestamp>, _>(col(idem, |(i, _)| i.created_at))
        .bind::<Array<Timestamp>, _>(col(idem, |(i, _)| i.expires_at))
        .bind::<Texts, _>(col(idem, |(_, owner)| *owner))
}

/// Binds API key rows: 11 arrays in the column order of `api_keys`.
pub(crate) fn bind_key_rows<'a, K>(
    q: PgStatic<'a, K>,
    keys: &'a [&'a crate::api_keys::ApiKeyRow],
) -> PgStatic<'a, K> {
    use diesel::sql_types::{Array, Nullable, Text, Timestamp};
    type Texts = Array<Text>;
    type OptTs = Array<Nullable<Timestamp>>;
    q.bind::<Texts, _>(col(keys, |k| k.id.as_str()))
        .bind::<Texts, _>(col(keys, |k| k.tenant_id.as_str()))
        .bind::<Texts, _>(col(keys, |k| k.name.as_str()))
        .bind::<Texts, _>(col(keys, |k| k.prefix.as_str()))
        .bind::<Texts, _>(col(keys, |k| k.key_hash.as_str()))
        .bind::<Array<Timestamp>, _>(col(keys, |k| k.created_at))
        .bind::<OptTs, _>(col(keys, |k| k.last_used_at))
        .bind::<OptTs, _>(col(keys, |k| k.expires_at))
        .bind::<OptTs, _>(col(keys, |k| k.revoked_at))
        .bind::<Texts, _>(col(keys, |k| k.role.as_str()))
        .bind::<Array<Nullable<Text>>, _>(col(keys, |k| k.replaced_by.as_deref()))
}
