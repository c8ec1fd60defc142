//! The gateway fleet's rows: `gateways` (each gateway, its capacity, its token's keyed hash and
//! its last heartbeat), `tenant_placements` (where a tenant is when not simply on the built-in
//! gateway `default`) and `gateway_loads` (how many tenants each gateway holds and a revision of
//! its document, kept by the database's triggers). The rules are the service's
//! (`tenant_service::fleet`).
//!
//! A tenant without a placement row is placed on `default`: a single-gateway setup has no row.
//! Every change of a placement bumps the config revision in its transaction, so each gateway's
//! cached document notices it.
//!
//! `gateway_loads` is written by triggers only (migration `2026-12-06-090000_gateway_loads`,
//! which explains them): on PostgreSQL a gateway's figures are spread over rows that concurrent
//! writers take without waiting (`FOR UPDATE SKIP LOCKED`, or a new row), so no transaction waits
//! on another for them and none can deadlock through them; readers sum a gateway's rows. The
//! triggers read the other table under the fleet lock ([`lock_fleet`]): exclusively for a
//! statement that writes placement rows, shared for one that changes tenants or writes channels,
//! each taken before the statement locks a row.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::dsl::count_star;
use diesel::prelude::*;
use tenant_core::{GatewayId, GatewayKind, PlacementState, TenantId};

use crate::error::unique_violation;
use crate::schema::{gateway_loads, gateways, tenant_placements, tenants};
use crate::{AnyConnection, StoreError, StoreResult, config_revision};

/// A stored gateway (its token's hash stays in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// Its id.
    pub id: GatewayId,
    /// Its unique name.
    pub name: String,
    /// Shared or dedicated.
    pub kind: GatewayKind,
    /// How many tenants it may hold; `None`: no limit.
    pub capacity: Option<i64>,
    /// Takes no new tenants.
    pub draining: bool,
    /// The first characters of its token, to recognise it (`None`: the built-in gateway, whose
    /// token is the server's `SAAS_GATEWAY_TOKEN`).
    pub token_prefix: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Its last heartbeat, if any.
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    /// The `ETag` it said it serves in its last heartbeat.
    pub served_etag: Option<String>,
    /// The config revision it said it serves in its last heartbeat.
    pub served_revision: Option<i64>,
    /// Its last heartbeat declared that its config is fenced: whatever writes it stops serving
    /// every tenant when it cannot renew the lease for a lease period.
    pub fencing: bool,
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = gateways)]
struct GatewayRow {
    id: String,
    name: String,
    kind: String,
    capacity: Option<i64>,
    draining: bool,
    token_hash: Option<String>,
    token_prefix: Option<String>,
    created_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    last_heartbeat_at: Option<NaiveDateTime>,
    served_etag: Option<String>,
    served_revision: Option<i64>,
    fencing: bool,
}

fn corrupt(table: &'static str, id: &str, reason: &str) -> StoreError {
    StoreError::Corrupt {
        table,
        id: id.to_owned(),
        reason: reason.to_owned(),
    }
}

fn gateway_id(table: &'static str, id: &str) -> StoreResult<GatewayId> {
    id.parse().map_err(|_| corrupt(table, id, "not a UUID"))
}

impl TryFrom<GatewayRow> for Gateway {
    type Error = StoreError;

    fn try_from(r: GatewayRow) -> StoreResult<Self> {
        Ok(Self {
            id: gateway_id("gateways", &r.id)?,
            kind: r
                .kind
                .parse()
                .map_err(|_| corrupt("gateways", &r.id, "unknown kind"))?,
            name: r.name,
            capacity: r.capacity,
            draining: r.draining,
            token_prefix: r.token_prefix,
            created_at: r.created_at.and_utc(),
            updated_at: r.updated_at.and_utc(),
            last_heartbeat_at: r.last_heartbeat_at.map(|t| t.and_utc()),
            served_etag: r.served_etag,
            served_revision: r.served_revision,
            fencing: r.fencing,
        })
    }
}

/// A gateway to create, with its token's keyed hash.
#[derive(Debug, Clone)]
pub struct NewGateway {
    /// Its id.
    pub id: GatewayId,
    /// Its unique name.
    pub name: String,
    /// Shared or dedicated.
    pub kind: GatewayKind,
    /// How many tenants it may hold.
    pub capacity: i64,
    /// Keyed hash of its token (hex).
    pub token_hash: String,
    /// The token's first characters.
    pub token_prefix: String,
}

fn name_taken(e: &diesel::result::Error) -> Option<StoreError> {
    unique_violation(e).map(|_| StoreError::Conflict {
        field: "name",
        message: "a gateway with this name exists".to_owned(),
    })
}

/// Serialises fleet changes (placements, capacities, drains) between concurrent transactions on
/// every replica: a transaction-scoped advisory lock on PostgreSQL; SQLite's write transaction
/// (`write_transaction`) already holds the database's one write lock. Call first in the
/// transaction, before it writes any tenant, channel or placement row: those statements' triggers
/// take the same lock (shared for tenants and channels, exclusive for placements), and a
/// transaction that held it shared would wait for every other writer to upgrade it.
pub fn lock_fleet(conn: &mut AnyConnection) -> StoreResult<()> {
    if matches!(conn, AnyConnection::Postgresql(_)) {
        diesel::sql_query("SELECT pg_advisory_xact_lock(2512250001)").execute(conn)?;
    }
    Ok(())
}

/// Stores a new gateway.
pub fn insert(
    conn: &mut AnyConnection,
    new: &NewGateway,
    now: DateTime<Utc>,
) -> StoreResult<Gateway> {
    let row = GatewayRow {
        id: new.id.to_string(),
        name: new.name.clone(),
        kind: new.kind.as_str().to_owned(),
        capacity: Some(new.capacity),
        draining: false,
        token_hash: Some(new.token_hash.clone()),
        token_prefix: Some(new.token_prefix.clone()),
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
        last_heartbeat_at: None,
        served_etag: None,
        served_revision: None,
        fencing: false,
    };
    conn.transaction(|c| {
        diesel::insert_into(gateways::table)
            .values(&row)
            .execute(c)
            .map_err(|e| name_taken(&e).unwrap_or_else(|| e.into()))
    })?;
    row.try_into()
}

/// Every gateway, by name.
pub fn list(conn: &mut AnyConnection) -> StoreResult<Vec<Gateway>> {
    gateways::table
        .select(GatewayRow::as_select())
        .order(gateways::name.asc())
        .load(conn)?
        .into_iter()
        .map(Gateway::try_from)
        .collect()
}

/// One gateway.
pub fn find(conn: &mut AnyConnection, id: &GatewayId) -> StoreResult<Gateway> {
    gateways::table
        .find(id.to_string())
        .select(GatewayRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("gateway"))?
        .try_into()
}

/// The gateway whose token has this keyed hash.
pub fn find_by_token_hash(conn: &mut AnyConnection, hash: &str) -> StoreResult<Option<GatewayId>> {
    let id: Option<String> = gateways::table
        .filter(gateways::token_hash.eq(hash))
        .select(gateways::id)
        .first(conn)
        .optional()?;
    id.map(|id| gateway_id("gateways", &id)).transpose()
}

/// What an operator may change on a gateway; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, AsChangeset)]
#[diesel(table_name = gateways)]
pub struct GatewayChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new capacity (`Some(None)`: no limit).
    pub capacity: Option<Option<i64>>,
    /// Drain or reopen.
    pub draining: Option<bool>,
}

/// Applies `changes` to a gateway; returns it as it now is.
pub fn update(
    conn: &mut AnyConnection,
    id: &GatewayId,
    changes: &GatewayChanges,
    now: DateTime<Utc>,
) -> StoreResult<Gateway> {
    let n = diesel::update(gateways::table.find(id.to_string()))
        .set((changes, gateways::updated_at.eq(now.naive_utc())))
        .execute(conn)
        .map_err(|e| name_taken(&e).unwrap_or_else(|| e.into()))?;
    if n == 0 {
        return Err(StoreError::NotFound("gateway"));
    }
    config_revision::bump(conn)?;
    find(conn, id)
}

/// Replaces a gateway's token hash (rotation); the old token stops working at once.
pub fn set_token(
    conn: &mut AnyConnection,
    id: &GatewayId,
    token_hash: &str,
    token_prefix: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let n = diesel::update(gateways::table.find(id.to_string()))
        .set((
            gateways::token_hash.eq(token_hash),
            gateways::token_prefix.eq(token_prefix),
            gateways::updated_at.eq(now.naive_utc()),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("gateway"));
    }
    Ok(())
}

/// Removes a gateway (the caller checked it holds nobody).
pub fn delete(conn: &mut AnyConnection, id: &GatewayId) -> StoreResult<()> {
    let n = diesel::delete(gateways::table.find(id.to_string())).execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("gateway"));
    }
    // Its counts (zero: nobody names it) go with it.
    diesel::delete(gateway_loads::table.filter(gateway_loads::gateway_id.eq(id.to_string())))
        .execute(conn)?;
    config_revision::bump(conn)?;
    Ok(())
}

/// What a heartbeat reports.
#[derive(Debug, Clone, Copy)]
pub struct HeartbeatRecord<'a> {
    /// The `ETag` of the document it serves (`None`: a database-mode `config sync`, which has
    /// none).
    pub etag: Option<&'a str>,
    /// The config revision of that document, if known.
    pub revision: Option<i64>,
    /// Whether its config is fenced (see [`Gateway::fencing`]).
    pub fencing: bool,
}

/// Records a heartbeat: when, the document (`ETag`, revision) the gateway serves, and whether
/// it is fenced. Its lease runs from `now`.
pub fn record_heartbeat(
    conn: &mut AnyConnection,
    id: &GatewayId,
    beat: HeartbeatRecord<'_>,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let n = diesel::update(gateways::table.find(id.to_string()))
        .set((
            gateways::last_heartbeat_at.eq(now.naive_utc()),
            gateways::served_etag.eq(beat.etag),
            gateways::served_revision.eq(beat.revision),
            gateways::fencing.eq(beat.fencing),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("gateway"));
    }
    Ok(())
}

/// Where one tenant is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    /// The tenant.
    pub tenant_id: TenantId,
    /// Placed on, or moving from (`None` when unplaced).
    pub gateway_id: Option<GatewayId>,
    /// Moving to.
    pub target_gateway_id: Option<GatewayId>,
    /// Placed, moving or unplaced.
    pub state: PlacementState,
    /// Put there by an operator.
    pub pinned: bool,
    /// When the move began.
    pub moving_since: Option<DateTime<Utc>>,
    /// The config revision read right after the move committed (see
    /// [`stamp_move_revisions`]): documents rendered at it or later do not hold the tenant.
    pub move_revision: Option<i64>,
}

impl Placement {
    /// A tenant without a row: placed on `default`.
    pub fn on_default(tenant_id: TenantId) -> Self {
        Self {
            tenant_id,
            gateway_id: Some(GatewayId::DEFAULT),
            target_gateway_id: None,
            state: PlacementState::Placed,
            pinned: false,
            moving_since: None,
            move_revision: None,
        }
    }
}

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tenant_placements, treat_none_as_null = true)]
struct PlacementRow {
    tenant_id: String,
    gateway_id: Option<String>,
    target_gateway_id: Option<String>,
    state: String,
    pinned: bool,
    moving_since: Option<NaiveDateTime>,
    move_revision: Option<i64>,
    updated_at: NaiveDateTime,
}

impl TryFrom<PlacementRow> for Placement {
    type Error = StoreError;

    fn try_from(r: PlacementRow) -> StoreResult<Self> {
        let table = "tenant_placements";
        Ok(Self {
            tenant_id: r
                .tenant_id
                .parse()
                .map_err(|_| corrupt(table, &r.tenant_id, "not a UUID"))?,
            gateway_id: r
                .gateway_id
                .as_deref()
                .map(|g| gateway_id(table, g))
                .transpose()?,
            target_gateway_id: r
                .target_gateway_id
                .as_deref()
                .map(|g| gateway_id(table, g))
                .transpose()?,
            state: r
                .state
                .parse()
                .map_err(|_| corrupt(table, &r.tenant_id, "unknown state"))?,
            pinned: r.pinned,
            moving_since: r.moving_since.map(|t| t.and_utc()),
            move_revision: r.move_revision,
        })
    }
}

/// Where a tenant is (`default` when it has no row).
pub fn placement(conn: &mut AnyConnection, tenant: &TenantId) -> StoreResult<Placement> {
    let row: Option<PlacementRow> = tenant_placements::table
        .find(tenant.to_string())
        .select(PlacementRow::as_select())
        .first(conn)
        .optional()?;
    row.map_or(Ok(Placement::on_default(*tenant)), Placement::try_from)
}

/// Stores where a tenant is, and bumps the config revision. Call under [`lock_fleet`].
pub fn set_placement(
    conn: &mut AnyConnection,
    p: &Placement,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let row = PlacementRow {
        tenant_id: p.tenant_id.to_string(),
        gateway_id: p.gateway_id.map(|g| g.to_string()),
        target_gateway_id: p.target_gateway_id.map(|g| g.to_string()),
        state: p.state.as_str().to_owned(),
        pinned: p.pinned,
        moving_since: p.moving_since.map(|t| t.naive_utc()),
        move_revision: p.move_revision,
        updated_at: now.naive_utc(),
    };
    // Update, else insert (no portable upsert): callers hold the fleet lock.
    let n = diesel::update(tenant_placements::table.find(&row.tenant_id))
        .set(&row)
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(tenant_placements::table)
            .values(&row)
            .execute(conn)?;
    }
    config_revision::bump(conn)?;
    Ok(())
}

/// How many live tenants there are: a deleted tenant (its rows waiting for the background
/// purge) is in no document, so it holds no room anywhere.
fn live_tenants(conn: &mut AnyConnection) -> StoreResult<i64> {
    Ok(tenants::table
        .filter(tenants::deleted_at.is_null())
        .count()
        .get_result(conn)?)
}

/// How many live tenants each gateway holds or is receiving: placed on it, or moving to it (a
/// tenant without a row counts for `default`). Gateways holding nobody are absent.
///
/// Read from `gateway_loads`, which the database's triggers keep in the statement that changes
/// a tenant or a placement (migration `2026-12-06-090000_gateway_loads`): a few rows per
/// gateway (at most as many as transactions ever wrote to it at once), whatever the number of
/// tenants. In a transaction that holds [`lock_fleet`] it is exact, that transaction's own
/// changes included: no other transaction changes a placement meanwhile, and a tenant's change
/// that commits later counts from the placements as this one leaves them. [`recount_held`]
/// counts the same from the rows.
pub fn held_counts(conn: &mut AnyConnection) -> StoreResult<Vec<(GatewayId, i64)>> {
    let rows: Vec<(String, i64)> = gateway_loads::table
        .select((gateway_loads::gateway_id, gateway_loads::held))
        .load(conn)?;
    let mut counts: std::collections::BTreeMap<GatewayId, i64> = Default::default();
    for (gateway, held) in rows {
        *counts
            .entry(gateway_id("gateway_loads", &gateway)?)
            .or_default() += held;
    }
    Ok(counts.into_iter().filter(|(_, n)| *n > 0).collect())
}

/// A gateway's document revision: raised (by the database's triggers, in the writing
/// transaction) by every write to a tenant row, its channels or its placement row, for each
/// gateway that tenant's placement row names (`default` when it has none). Everything a
/// gateway's document is made of is in those rows, so while this number stays, the document
/// stays. Unlike the global config revision it does not move for other gateways' tenants.
pub fn revision_of(conn: &mut AnyConnection, gateway: &GatewayId) -> StoreResult<i64> {
    let rows: Vec<i64> = gateway_loads::table
        .filter(gateway_loads::gateway_id.eq(gateway.to_string()))
        .select(gateway_loads::revision)
        .load(conn)?;
    // Summed here: `SUM(BIGINT)` has a different type on each backend.
    Ok(rows.iter().sum())
}

/// What [`held_counts`] answers, counted from every live tenant and placement row (linear in
/// tenants: for checks and repairs, not for placing).
pub fn recount_held(conn: &mut AnyConnection) -> StoreResult<Vec<(GatewayId, i64)>> {
    let total = live_tenants(conn)?;
    let groups: Vec<(Option<String>, Option<String>, String, i64)> = tenant_placements::table
        .inner_join(tenants::table)
        .filter(tenants::deleted_at.is_null())
        .group_by((
            tenant_placements::gateway_id,
            tenant_placements::target_gateway_id,
            tenant_placements::state,
        ))
        .select((
            tenant_placements::gateway_id,
            tenant_placements::target_gateway_id,
            tenant_placements::state,
            count_star(),
        ))
        .load(conn)?;
    let mut counts: std::collections::BTreeMap<GatewayId, i64> = Default::default();
    let mut with_rows = 0;
    for (gateway, target, state, n) in groups {
        with_rows += n;
        let holder = match state.as_str() {
            "placed" => gateway,
            "moving" => target,
            _ => None,
        };
        if let Some(g) = holder {
            *counts
                .entry(gateway_id("tenant_placements", &g)?)
                .or_default() += n;
        }
    }
    *counts.entry(GatewayId::DEFAULT).or_default() += total - with_rows;
    Ok(counts.into_iter().filter(|(_, n)| *n > 0).collect())
}

/// The counts of [`held_counts`] by state: `(placed, moving, unplaced)` over every live tenant.
pub fn state_counts(conn: &mut AnyConnection) -> StoreResult<(i64, i64, i64)> {
    let total = live_tenants(conn)?;
    let groups: Vec<(String, i64)> = tenant_placements::table
        .inner_join(tenants::table)
        .filter(tenants::deleted_at.is_null())
        .group_by(tenant_placements::state)
        .select((tenant_placements::state, count_star()))
        .load(conn)?;
    let of = |s: &str| groups.iter().find(|(g, _)| g == s).map_or(0, |(_, n)| *n);
    let (moving, unplaced) = (of("moving"), of("unplaced"));
    Ok((total - moving - unplaced, moving, unplaced))
}

/// Which tenants a gateway's document is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Members {
    /// Exactly these (a gateway other than `default`).
    Only(HashSet<TenantId>),
    /// Every tenant but these (`default`: tenants placed elsewhere, moving or unplaced).
    AllBut(HashSet<TenantId>),
}

impl Members {
    /// Whether the tenant is in the gateway's document (if active).
    pub fn contains(&self, id: &TenantId) -> bool {
        match self {
            Members::Only(set) => set.contains(id),
            Members::AllBut(set) => !set.contains(id),
        }
    }
}

fn tenant_ids(ids: Vec<String>) -> StoreResult<HashSet<TenantId>> {
    ids.into_iter()
        .map(|id| {
            id.parse()
                .map_err(|_| corrupt("tenant_placements", &id, "not a UUID"))
        })
        .collect()
}

/// The tenants placed on `gateway` (moving and unplaced tenants are in no gateway's document).
pub fn members(conn: &mut AnyConnection, gateway: &GatewayId) -> StoreResult<Members> {
    if gateway.is_default() {
        let elsewhere: Vec<String> = tenant_placements::table
            .filter(
                tenant_placements::state
                    .ne("placed")
                    .or(tenant_placements::gateway_id.ne(gateway.to_string())),
            )
            .select(tenant_placements::tenant_id)
            .load(conn)?;
        Ok(Members::AllBut(tenant_ids(elsewhere)?))
    } else {
        let here: Vec<String> = tenant_placements::table
            .filter(tenant_placements::state.eq("placed"))
            .filter(tenant_placements::gateway_id.eq(gateway.to_string()))
            .select(tenant_placements::tenant_id)
            .load(conn)?;
        Ok(Members::Only(tenant_ids(here)?))
    }
}

/// The tenants a gateway holds (placed on it), with their plans, in creation order. For a
/// gateway other than `default`, only its placement rows are read (through their index).
pub fn held_by(
    conn: &mut AnyConnection,
    gateway: &GatewayId,
) -> StoreResult<Vec<(TenantId, String)>> {
    let parse = |(id, plan): (String, String)| -> StoreResult<(TenantId, String)> {
        let id: TenantId = id
            .parse()
            .map_err(|_| corrupt("tenants", &id, "not a UUID"))?;
        Ok((id, plan))
    };
    if !gateway.is_default() {
        return tenants::table
            .inner_join(tenant_placements::table)
            .filter(tenant_placements::state.eq("placed"))
            .filter(tenant_placements::gateway_id.eq(gateway.to_string()))
            .select((tenants::id, tenants::plan))
            .order((tenants::created_at.asc(), tenants::id.asc()))
            .load::<(String, String)>(conn)?
            .into_iter()
            .map(parse)
            .collect();
    }
    let members = members(conn, gateway)?;
    let all: Vec<(String, String)> = tenants::table
        .select((tenants::id, tenants::plan))
        .order((tenants::created_at.asc(), tenants::id.asc()))
        .load(conn)?;
    let mut out = Vec::new();
    for row in all {
        let (id, plan) = parse(row)?;
        if members.contains(&id) {
            out.push((id, plan));
        }
    }
    Ok(out)
}

/// The tenants moving away from `gateway`.
pub fn moving_from(conn: &mut AnyConnection, gateway: &GatewayId) -> StoreResult<Vec<Placement>> {
    tenant_placements::table
        .filter(tenant_placements::state.eq("moving"))
        .filter(tenant_placements::gateway_id.eq(gateway.to_string()))
        .select(PlacementRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Placement::try_from)
        .collect()
}

/// Whether any tenant has a placement row naming `gateway` (placed, moving from or to it).
pub fn is_referenced(conn: &mut AnyConnection, gateway: &GatewayId) -> StoreResult<bool> {
    let id = gateway.to_string();
    let n: i64 = tenant_placements::table
        .filter(
            tenant_placements::gateway_id
                .eq(&id)
                .or(tenant_placements::target_gateway_id.eq(&id)),
        )
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Gives every move without one its revision: the config revision read now. Call in a
/// transaction of its own *after* the one that started the moves committed: every document
/// labelled with this revision or a later one was then rendered from rows read after the move,
/// so it does not hold the tenant (a revision read inside the move's own transaction would not
/// do: a concurrent commit could raise the sum to it before the move is visible). A later stamp
/// (after a crash in between) is only larger, which is safe. Takes [`lock_fleet`] (it writes
/// placement rows).
pub fn stamp_move_revisions(conn: &mut AnyConnection) -> StoreResult<usize> {
    lock_fleet(conn)?;
    let revision = config_revision::current(conn)?;
    Ok(diesel::update(
        tenant_placements::table
            .filter(tenant_placements::state.eq("moving"))
            .filter(tenant_placements::move_revision.is_null()),
    )
    .set(tenant_placements::move_revision.eq(revision))
    .execute(conn)?)
}
