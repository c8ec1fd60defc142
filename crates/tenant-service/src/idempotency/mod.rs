//! Idempotency keys on creating requests (IETF draft-ietf-httpapi-idempotency-key-header): a
//! retry of a create whose answer was lost (a connection dropped during `COMMIT`, a client
//! timeout) gets the first answer again and creates nothing twice.
//!
//! The rules:
//! - a key is 1–255 printable ASCII characters ([`IdempotencyKey`]); it is scoped by the caller
//!   (principal kind and id), the method and the path, so two callers never see each other's;
//! - [`ControlPlane::begin_once`](crate::ControlPlane::begin_once) looks the key up first: a
//!   stored answer for the same body is replayed ([`Begin::Replay`]), one for another body is
//!   [`ServiceError::IdempotencyKeyReused`]; a request with the same key still running in this
//!   process is [`ServiceError::IdempotencyKeyInFlight`];
//! - otherwise the request runs with a [`Ticket`], and the use case writes the key, the body's
//!   fingerprint and the answer ([`Ticket::record`], or the row of [`Ticket::row`] in a group
//!   commit batch's statement) in the transaction of its effect: both commit, or neither. A
//!   request with the same key running in another process meets the unique key of the row (on
//!   PostgreSQL it waits for the first to commit) and is answered `IdempotencyKeyInFlight`
//!   with nothing written; its retry then replays;
//! - only successful answers are stored: a refused or failed request stores nothing and may be
//!   retried with the same key (its effect did not happen);
//! - an answer holding a secret (a one-time API key, a signing secret, an invite token) is
//!   sealed with the credential key ring, bound to its key's scope;
//! - rows live for the configured time (`SAAS_IDEMPOTENCY_TTL`, 24 h by default), then the key
//!   can be used again; the background maintenance purges them.

mod in_flight;
mod key;

use std::sync::Arc;
use std::time::Duration;

use tenant_store::crypto::KeyRing;
use tenant_store::idempotency::{self as store, IdempotencyRow, KeyScope};
use tenant_store::{AnyConnection, Database, StoreError, write_transaction};

pub use in_flight::InFlight;
pub use key::{IdempotencyKey, MAX_KEY_LEN, fingerprint};

use crate::error::{ServiceError, ServiceResult};
use crate::principal::Principal;

/// How long a key is kept by default: 24 hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

/// The answer a transport gave to a request, as stored for its replay: a status code, the
/// `Location` if any, and the JSON body.
#[derive(Clone, PartialEq, Eq)]
pub struct Answer {
    /// The transport's status code (HTTP).
    pub status: u16,
    /// Where the created resource is.
    pub location: Option<String>,
    /// The JSON body.
    pub body: Vec<u8>,
    /// Whether the body holds a secret: then it is stored sealed.
    pub secret: bool,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("location", &self.location)
            .field("body_len", &self.body.len())
            .field("secret", &self.secret)
            .finish()
    }
}

/// How a use case's result becomes the answer stored with its key.
pub type Render<T> = Arc<dyn Fn(&T) -> Answer + Send + Sync>;

/// A request that carries an `Idempotency-Key`: its scope and the fingerprint of its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnceRequest {
    scope: KeyScope,
    fingerprint: String,
}

impl OnceRequest {
    /// The request `caller` sent as `method path` with `key` and `body`.
    pub fn new(
        caller: &Principal,
        method: &str,
        path: &str,
        key: IdempotencyKey,
        body: &[u8],
    ) -> Self {
        let actor = caller.actor();
        Self {
            scope: KeyScope {
                caller: format!("{}:{}", actor.kind(), actor.id().unwrap_or_default()),
                method: method.to_owned(),
                path: path.to_owned(),
                key: key.as_str().to_owned(),
            },
            fingerprint: fingerprint(body),
        }
    }
}

/// What to do with a request: answer it again, or run it.
// Made and taken apart once per request: boxing the ticket would cost an allocation for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Begin<T> {
    /// The first answer, stored when the key was first used.
    Replay(Answer),
    /// Run it; with a key, the ticket goes with the use case to record its answer.
    Run(Option<Ticket<T>>),
}

/// The right to run a keyed request once: held in this process until it ends, and what the use
/// case needs to write the key's row with its effect.
pub struct Ticket<T> {
    request: OnceRequest,
    render: Render<T>,
    keys: Arc<KeyRing>,
    ttl: Duration,
    _held: in_flight::Held,
}

impl<T> std::fmt::Debug for Ticket<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("request", &self.request)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<T> Ticket<T> {
    /// The key's row for the result `out`, answered at `now`: the rendered answer, sealed if it
    /// holds a secret.
    pub fn row(
        &self,
        out: &T,
        now: chrono::DateTime<chrono::Utc>,
    ) -> ServiceResult<IdempotencyRow> {
        let answer = (self.render)(out);
        let scope = &self.request.scope;
        let body = if answer.secret {
            self.keys
                .seal(&aad(scope), &answer.body)
                .map_err(|e| ServiceError::Internal(format!("cannot seal an answer: {e}")))?
        } else {
            String::from_utf8(answer.body)
                .map_err(|_| ServiceError::Internal("an answer is not UTF-8".into()))?
        };
        let ttl = chrono::Duration::from_std(self.ttl).unwrap_or(chrono::Duration::MAX);
        Ok(IdempotencyRow {
            caller: scope.caller.clone(),
            method: scope.method.clone(),
            path: scope.path.clone(),
            idem_key: scope.key.clone(),
            fingerprint: self.request.fingerprint.clone(),
            status_code: i32::from(answer.status),
            location: answer.location,
            body,
            sealed: answer.secret,
            created_at: now.naive_utc(),
            expires_at: now
                .checked_add_signed(ttl)
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
                .naive_utc(),
        })
    }

    /// What a keyed request's failure is: a conflict (the slug, the channel kind… is taken) is
    /// the first request's own create if another process committed the key meanwhile (both
    /// looked it up before either committed; PostgreSQL makes the second wait for the first's
    /// commit on the unique key it conflicts on): then it is
    /// [`ServiceError::IdempotencyKeyInFlight`], whose retry replays the first answer. Called
    /// after the effect's transaction rolled back.
    pub fn settle<U>(
        &self,
        conn: &mut AnyConnection,
        result: ServiceResult<U>,
    ) -> ServiceResult<U> {
        match result {
            Err(ServiceError::Store(StoreError::Conflict { .. }))
                if store::find(conn, &self.request.scope)?.is_some() =>
            {
                Err(ServiceError::IdempotencyKeyInFlight)
            }
            other => other,
        }
    }

    /// Writes the key's row for `out` (inside the effect's transaction). A key taken meanwhile
    /// by another process is [`ServiceError::IdempotencyKeyInFlight`]: the caller's transaction
    /// must roll back, so the effect does not happen twice.
    pub fn record(&self, conn: &mut AnyConnection, out: &T) -> ServiceResult<()> {
        let row = self.row(out, tenant_core::now())?;
        if store::insert(conn, &row)? {
            Ok(())
        } else {
            Err(ServiceError::IdempotencyKeyInFlight)
        }
    }
}

/// Runs `effect` and, with a ticket, records its answer in the same transaction (see
/// [`Ticket::settle`] for a conflict met meanwhile).
pub fn within<T>(
    conn: &mut AnyConnection,
    once: Option<&Ticket<T>>,
    effect: impl FnOnce(&mut AnyConnection) -> ServiceResult<T>,
) -> ServiceResult<T> {
    let Some(ticket) = once else {
        return effect(conn);
    };
    let result = write_transaction(conn, |c| {
        let out = effect(c)?;
        ticket.record(c, &out)?;
        Ok(out)
    });
    ticket.settle(conn, result)
}

/// The settings and the in-process registry of running keyed requests, shared by a control
/// plane's clones.
#[derive(Debug)]
pub struct Idempotency {
    ttl: Duration,
    in_flight: Arc<InFlight>,
}

impl Idempotency {
    /// Keys kept for `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            in_flight: Arc::default(),
        }
    }

    /// How long keys are kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl Idempotency {
    /// The first step of a keyed request (see the module doc): refused at once if the key is
    /// running in this process; else looked up on the blocking pool, and replayed, refused, or
    /// given a ticket to run.
    pub(crate) async fn begin<T: 'static>(
        &self,
        db: &Database,
        keys: &Arc<KeyRing>,
        request: OnceRequest,
        render: Render<T>,
    ) -> ServiceResult<Begin<T>> {
        let held = self
            .in_flight
            .hold(&request.scope)
            .ok_or(ServiceError::IdempotencyKeyInFlight)?;
        let ttl = self.ttl;
        let keys = Arc::clone(keys);
        let ticket = crate::db::run(db, move |c| begin(c, held, ttl, keys, request, render));
        ticket.await
    }
}

impl Default for Idempotency {
    fn default() -> Self {
        Self::new(DEFAULT_TTL)
    }
}

/// The first step of a keyed request, on a connection (see the module doc): replay, refuse, or
/// a ticket to run it.
fn begin<T>(
    conn: &mut AnyConnection,
    held: in_flight::Held,
    ttl: Duration,
    keys: Arc<KeyRing>,
    request: OnceRequest,
    render: Render<T>,
) -> ServiceResult<Begin<T>> {
    let now = tenant_core::now();
    match store::find(conn, &request.scope)? {
        Some(row) if row.expires_at > now.naive_utc() => {
            if row.fingerprint != request.fingerprint {
                return Err(ServiceError::IdempotencyKeyReused);
            }
            return Ok(Begin::Replay(stored_answer(&keys, &request.scope, row)?));
        }
        // An expired row the purge has not reached yet would take the key's place.
        Some(_) => {
            store::delete_if_expired(conn, &request.scope, now)?;
        }
        None => {}
    }
    Ok(Begin::Run(Some(Ticket {
        request,
        render,
        keys,
        ttl,
        _held: held,
    })))
}

/// The answer of a stored row, opened if sealed.
fn stored_answer(keys: &KeyRing, scope: &KeyScope, row: IdempotencyRow) -> ServiceResult<Answer> {
    let body = if row.sealed {
        keys.open(&aad(scope), &row.body)
            .map_err(|e| {
                ServiceError::Internal(format!("cannot open the stored answer of a key: {e}"))
            })?
            .to_vec()
    } else {
        row.body.into_bytes()
    };
    Ok(Answer {
        status: u16::try_from(row.status_code).unwrap_or(200),
        location: row.location,
        body,
        secret: row.sealed,
    })
}

/// What a sealed answer is bound to: its key's scope, so it cannot be moved to another row.
fn aad(scope: &KeyScope) -> Vec<u8> {
    let mut v = b"idempotency_keys/".to_vec();
    for part in [&scope.caller, &scope.method, &scope.path, &scope.key] {
        v.extend_from_slice(part.as_bytes());
        v.push(0);
    }
    v
}
