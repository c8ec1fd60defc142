//! The gateway fleet's rows: `gateways` (each gateway, its capacity, its token's keyed hash and
//! its last heartbeat) and `tenant_placements` (where a tenant is when not simply on the built-in
//! gateway `default`). The rules are the service's (`tenant_service::fleet`).
//!
//! A tenant without a placement row is placed on `default`: a single-gateway setup has no row.
//! Every change of a placement bumps the config revision in its transaction, so each gateway's
//! cached document notices it.
//!
//! Each gateway stores how many live tenants its placement rows give it (`gateways.held`: placed
//! on it or moving to it), so that placing a tenant reads a few rows instead of counting every
//! tenant. The count changes only where a placement row does: [`set_placement`] and a tenant's
//! deletion ([`crate::tenants::delete`], which removes the row), both of which take a
//! [`FleetLock`] — the proof, which only [`lock_fleet`] makes, that the transaction holds the
//! fleet lock. A deleted tenant has no row. Tenants without a row are on `default` and are not in
//! its stored count: [`without_row`] counts them (a linear count, made only when it matters).

use std::collections::{HashMap, HashSet};
use std::ops::{Deref, DerefMut};

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::dsl::count_star;
use diesel::prelude::*;
use tenant_core::{GatewayId, GatewayKind, PlacementState, TenantId};

use crate::error::unique_violation;
use crate::schema::{gateways, tenant_placements, tenants};
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
    /// Live tenants its placement rows give it (placed on it or moving to it), as stored: exact
    /// for every gateway but `default`, whose tenants without a row ([`without_row`]) are not
    /// in it.
    pub held_rows: i64,
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
    held: i64,
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
            held_rows: r.held,
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

/// Proof that the current transaction holds the fleet lock, and the way to its connection.
///
/// Every store function that changes what a gateway holds ([`set_placement`],
/// [`crate::tenants::delete`]) takes one instead of a bare connection, so no caller can change a
/// placement without the lock. Only [`lock_fleet`] makes one, and it borrows the transaction's
/// connection: it cannot outlive the transaction (the closure of a transaction cannot return a
/// borrow of its connection) nor serve another connection. It dereferences to the connection for
/// everything else the transaction does.
pub struct FleetLock<'c> {
    conn: &'c mut AnyConnection,
}

impl std::fmt::Debug for FleetLock<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FleetLock")
    }
}

impl Deref for FleetLock<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.conn
    }
}

impl DerefMut for FleetLock<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.conn
    }
}

/// Serialises fleet changes (placements, capacities, drains, tenant deletions) between
/// concurrent transactions on every replica: a transaction-scoped advisory lock on PostgreSQL;
/// on SQLite the database's one write lock, taken here if the transaction does not hold it yet
/// (a `write_transaction` does from its start). Call first in a transaction (outside one it is
/// refused: the lock would end with the statement); the answer is the proof the fleet's
/// writes require.
pub fn lock_fleet(conn: &mut AnyConnection) -> StoreResult<FleetLock<'_>> {
    let depth =
        <AnyConnection as Connection>::TransactionManager::transaction_manager_status_mut(conn)
            .transaction_depth()?;
    if depth.is_none() {
        return Err(StoreError::Database(
            diesel::result::Error::NotInTransaction,
        ));
    }
    match conn {
        AnyConnection::Postgresql(_) => {
            diesel::sql_query("SELECT pg_advisory_xact_lock(2512250001)").execute(conn)?;
        }
        AnyConnection::Sqlite(_) => {
            // A write that changes nothing: the write lock from here to the commit.
            conn.batch_execute("UPDATE config_revision SET revision = revision WHERE 0")?;
        }
    }
    Ok(FleetLock { conn })
}

/// Runs `f` in a write transaction ([`crate::write_transaction`]) that holds the fleet lock.
pub fn fleet_transaction<T, E, F>(conn: &mut AnyConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut FleetLock<'_>) -> Result<T, E>,
    E: From<diesel::result::Error> + From<StoreError>,
{
    crate::write_transaction(conn, |c| {
        let mut fleet = lock_fleet(c)?;
        f(&mut fleet)
    })
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
        held: 0,
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

/// Every gateway, by name, their rows locked until the fleet transaction ends: a heartbeat
/// ([`record_heartbeat`]) waits for its commit, so what the transaction read of the leases
/// stays true until then. On PostgreSQL `FOR UPDATE` (the fleet lock alone does not stop a
/// heartbeat, which takes no fleet lock); SQLite's write transaction holds the database's lock
/// already.
pub fn list_locked(c: &mut FleetLock<'_>) -> StoreResult<Vec<Gateway>> {
    let rows: Vec<GatewayRow> = match &mut **c {
        AnyConnection::Postgresql(pg) => gateways::table
            .select(GatewayRow::as_select())
            .order(gateways::name.asc())
            .for_update()
            .load(pg)?,
        AnyConnection::Sqlite(lite) => gateways::table
            .select(GatewayRow::as_select())
            .order(gateways::name.asc())
            .load(lite)?,
    };
    rows.into_iter().map(Gateway::try_from).collect()
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
    /// An operator asked for a dedicated gateway when creating the tenant: placed as a plan in
    /// `SAAS_DEDICATED_PLANS` would be, whatever its plan (kept through every later change).
    pub dedicated: bool,
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
            dedicated: false,
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
    dedicated: bool,
}

impl PlacementRow {
    fn of(p: &Placement, now: DateTime<Utc>) -> Self {
        Self {
            tenant_id: p.tenant_id.to_string(),
            gateway_id: p.gateway_id.map(|g| g.to_string()),
            target_gateway_id: p.target_gateway_id.map(|g| g.to_string()),
            state: p.state.as_str().to_owned(),
            pinned: p.pinned,
            moving_since: p.moving_since.map(|t| t.naive_utc()),
            move_revision: p.move_revision,
            updated_at: now.naive_utc(),
            dedicated: p.dedicated,
        }
    }
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
            dedicated: r.dedicated,
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

/// The gateway a placement counts on: placed on it, or moving to it (none when unplaced).
fn holder(
    state: PlacementState,
    gateway: Option<GatewayId>,
    target: Option<GatewayId>,
) -> Option<GatewayId> {
    match state {
        PlacementState::Placed => gateway,
        PlacementState::Moving => target,
        PlacementState::Unplaced => None,
    }
}

impl Placement {
    /// The gateway this placement counts on: placed on it, or moving to it (`None`: unplaced).
    pub fn holder(&self) -> Option<GatewayId> {
        holder(self.state, self.gateway_id, self.target_gateway_id)
    }
}

/// Adds `by` to the stored count of `gateway`.
fn add_held(conn: &mut AnyConnection, gateway: &GatewayId, by: i64) -> StoreResult<()> {
    let n = diesel::update(gateways::table.find(gateway.to_string()))
        .set(gateways::held.eq(gateways::held + by))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("gateway"));
    }
    Ok(())
}

/// A tenant's placement row, if it has one.
fn placement_row(conn: &mut AnyConnection, tenant: &str) -> StoreResult<Option<Placement>> {
    let row: Option<PlacementRow> = tenant_placements::table
        .find(tenant)
        .select(PlacementRow::as_select())
        .first(conn)
        .optional()?;
    row.map(Placement::try_from).transpose()
}

/// Stores where a tenant is, moves its count from the gateway it counted on to the one it now
/// counts on, and bumps the revision: [`set_placements`] of one.
pub fn set_placement(
    fleet: &mut FleetLock<'_>,
    p: &Placement,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    set_placements(fleet, std::slice::from_ref(p), now)
}

/// Rows per statement of [`set_placements`] and [`placements`] (at most 9 bound values a row:
/// well under either backend's limit on bound parameters).
const PLACEMENT_CHUNK: usize = 500;

/// Stores where each of `ps` is (each tenant at most once), in a few statements per
/// [`PLACEMENT_CHUNK`] tenants whatever their number: their liveness and former rows read at
/// once, the rows upserted at once, each gateway's held count moved once by the sum of its
/// changes, and the revision bumped once. A drain or a failover of thousands of tenants is so one
/// short transaction under the fleet lock, not several statements a tenant and thousands of
/// updates of the same few gateway rows (each of which PostgreSQL makes slower within one
/// transaction). Fails with `NotFound("tenant")`, writing nothing, when one of them is not a
/// live tenant.
pub fn set_placements(
    fleet: &mut FleetLock<'_>,
    ps: &[Placement],
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let conn: &mut AnyConnection = fleet;
    if ps.is_empty() {
        return Ok(());
    }
    let rows: Vec<PlacementRow> = ps.iter().map(|p| PlacementRow::of(p, now)).collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.tenant_id.as_str()).collect();
    debug_assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        ids.len(),
        "one placement a tenant"
    );
    let mut live = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(PLACEMENT_CHUNK) {
        live.extend(
            tenants::table
                .filter(tenants::id.eq_any(chunk))
                .filter(tenants::deleted_at.is_null())
                .select(tenants::id)
                .load::<String>(conn)?,
        );
    }
    if ids.iter().any(|id| !live.contains(*id)) {
        return Err(StoreError::NotFound("tenant"));
    }
    // A tenant without a row counts on `default` implicitly, not in its stored count.
    let before: HashMap<TenantId, Option<GatewayId>> = rows_of(conn, &ids)?
        .into_iter()
        .map(|b| (b.tenant_id, b.holder()))
        .collect();
    let mut held: Vec<(GatewayId, i64)> = Vec::new();
    let mut count = |g: GatewayId, by: i64| match held.iter_mut().find(|(h, _)| *h == g) {
        // A few gateways, however many tenants: a short list.
        Some((_, n)) => *n += by,
        None => held.push((g, by)),
    };
    for p in ps {
        let was = before.get(&p.tenant_id).copied().flatten();
        let is = p.holder();
        if was != is {
            if let Some(g) = was {
                count(g, -1);
            }
            if let Some(g) = is {
                count(g, 1);
            }
        }
    }
    for chunk in rows.chunks(PLACEMENT_CHUNK) {
        upsert_rows(conn, chunk)?;
    }
    for (g, by) in held.iter().filter(|(_, by)| *by != 0) {
        add_held(conn, g, *by)?;
    }
    config_revision::bump(conn)?;
    Ok(())
}

/// Inserts `rows`, each replacing the row its tenant has: one statement on PostgreSQL, one a
/// row on SQLite (in process, and diesel writes no multi-row upsert for it).
fn upsert_rows(conn: &mut AnyConnection, rows: &[PlacementRow]) -> StoreResult<()> {
    use diesel::upsert::excluded;
    use tenant_placements::dsl as t;
    macro_rules! upsert {
        ($conn:expr, $values:expr) => {
            diesel::insert_into(tenant_placements::table)
                .values($values)
                .on_conflict(t::tenant_id)
                .do_update()
                .set((
                    t::gateway_id.eq(excluded(t::gateway_id)),
                    t::target_gateway_id.eq(excluded(t::target_gateway_id)),
                    t::state.eq(excluded(t::state)),
                    t::pinned.eq(excluded(t::pinned)),
                    t::moving_since.eq(excluded(t::moving_since)),
                    t::move_revision.eq(excluded(t::move_revision)),
                    t::updated_at.eq(excluded(t::updated_at)),
                    t::dedicated.eq(excluded(t::dedicated)),
                ))
                .execute($conn)?
        };
    }
    match conn {
        AnyConnection::Postgresql(pg) => {
            upsert!(pg, rows);
        }
        AnyConnection::Sqlite(lite) => {
            for row in rows {
                upsert!(lite, row);
            }
        }
    }
    Ok(())
}

/// The placement rows of `ids` that exist (tenants without one are on `default`).
fn rows_of(conn: &mut AnyConnection, ids: &[&str]) -> StoreResult<Vec<Placement>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(PLACEMENT_CHUNK) {
        let rows: Vec<PlacementRow> = tenant_placements::table
            .filter(tenant_placements::tenant_id.eq_any(chunk))
            .select(PlacementRow::as_select())
            .load(conn)?;
        for row in rows {
            found.push(Placement::try_from(row)?);
        }
    }
    Ok(found)
}

/// Where each of `tenants` is, in their order ([`placement`] of each, in a few statements).
pub fn placements(conn: &mut AnyConnection, tenants: &[TenantId]) -> StoreResult<Vec<Placement>> {
    let ids: Vec<String> = tenants.iter().map(ToString::to_string).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let found: HashMap<TenantId, Placement> = rows_of(conn, &ids)?
        .into_iter()
        .map(|p| (p.tenant_id, p))
        .collect();
    Ok(tenants
        .iter()
        .map(|t| {
            found
                .get(t)
                .copied()
                .unwrap_or_else(|| Placement::on_default(*t))
        })
        .collect())
}

/// Removes a tenant's placement row and its count (the tenant is being deleted: it is in no
/// document and holds no room). Part of [`crate::tenants::delete`].
pub(crate) fn remove_placement(fleet: &mut FleetLock<'_>, tenant: &TenantId) -> StoreResult<()> {
    let conn: &mut AnyConnection = fleet;
    let tid = tenant.to_string();
    let Some(old) = placement_row(conn, &tid)? else {
        return Ok(());
    };
    diesel::delete(tenant_placements::table.find(&tid)).execute(conn)?;
    if let Some(g) = old.holder() {
        add_held(conn, &g, -1)?;
    }
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

/// How many live tenants have no placement row (so are on `default`, not in its stored count):
/// live tenants less placement rows (only live tenants have one). Linear in tenants: read it
/// only when `default`'s exact count matters.
pub fn without_row(conn: &mut AnyConnection) -> StoreResult<i64> {
    let rows: i64 = tenant_placements::table.count().get_result(conn)?;
    Ok(live_tenants(conn)? - rows)
}

/// How many live tenants each gateway holds or is receiving, exactly: the stored counts, and
/// `default`'s tenants without a row counted ([`without_row`], linear in tenants: for listings
/// and metrics; placement reads the stored counts). Gateways holding nobody are absent.
pub fn held_counts(conn: &mut AnyConnection) -> StoreResult<Vec<(GatewayId, i64)>> {
    let stored: Vec<(String, i64)> = gateways::table
        .select((gateways::id, gateways::held))
        .order(gateways::id.asc())
        .load(conn)?;
    let implicit = without_row(conn)?;
    let mut counts = Vec::with_capacity(stored.len());
    for (id, held) in stored {
        let id = gateway_id("gateways", &id)?;
        let held = if id.is_default() {
            held + implicit
        } else {
            held
        };
        if held > 0 {
            counts.push((id, held));
        }
    }
    Ok(counts)
}

/// The live tenants' placement rows counted by the gateway holding them (placed on it or
/// moving to it), and how many live tenants have a row.
fn row_counts(
    conn: &mut AnyConnection,
) -> StoreResult<(std::collections::BTreeMap<GatewayId, i64>, i64)> {
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
    Ok((counts, with_rows))
}

/// What [`held_counts`] should answer, counted from the rows themselves (placement rows of live
/// tenants grouped by holder, `default`'s tenants without a row): the stored counts are exact
/// when the two agree. For tests and [`check_held`].
pub fn recount_held(conn: &mut AnyConnection) -> StoreResult<Vec<(GatewayId, i64)>> {
    let total = live_tenants(conn)?;
    let (mut counts, with_rows) = row_counts(conn)?;
    *counts.entry(GatewayId::DEFAULT).or_default() += total - with_rows;
    Ok(counts.into_iter().filter(|(_, n)| *n > 0).collect())
}

/// A gateway whose stored count (`gateways.held`) is not what its placement rows give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldDrift {
    /// The gateway.
    pub gateway: GatewayId,
    /// The stored count.
    pub stored: i64,
    /// The count of its rows (placed on it or moving to it, live tenants only).
    pub counted: i64,
}

/// What [`check_held`] found (and, when asked, repaired).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeldCheck {
    /// The gateways whose stored count was wrong.
    pub drift: Vec<HeldDrift>,
    /// Placement rows of deleted tenants (a deletion removes its tenant's row).
    pub rows_of_deleted: i64,
}

impl HeldCheck {
    /// Whether the stored counts were exact and no deleted tenant kept a row.
    pub fn consistent(&self) -> bool {
        self.drift.is_empty() && self.rows_of_deleted == 0
    }
}

/// Compares every gateway's stored count with a count of its placement rows, under the fleet
/// lock (so no placement changes meanwhile); with `repair`, deletes the rows of deleted tenants
/// and sets each wrong count to its rows'. Linear in tenants: an operator's check
/// (`moltbot-saas gateways check`), never on a request's path.
pub fn check_held(lock: &mut FleetLock<'_>, repair: bool) -> StoreResult<HeldCheck> {
    let conn: &mut AnyConnection = lock;
    let rows_of_deleted = rows_of_deleted(conn)?;
    let (counts, _) = row_counts(conn)?;
    let stored: Vec<(String, i64)> = gateways::table
        .select((gateways::id, gateways::held))
        .order(gateways::id.asc())
        .load(conn)?;
    let mut drift = Vec::new();
    for (id, stored) in stored {
        let gateway = gateway_id("gateways", &id)?;
        let counted = counts.get(&gateway).copied().unwrap_or(0);
        if stored != counted {
            drift.push(HeldDrift {
                gateway,
                stored,
                counted,
            });
        }
    }
    if repair {
        if rows_of_deleted > 0 {
            let deleted = tenants::table
                .filter(tenants::deleted_at.is_not_null())
                .select(tenants::id);
            diesel::delete(
                tenant_placements::table.filter(tenant_placements::tenant_id.eq_any(deleted)),
            )
            .execute(conn)?;
        }
        for d in &drift {
            diesel::update(gateways::table.find(d.gateway.to_string()))
                .set(gateways::held.eq(d.counted))
                .execute(conn)?;
        }
    }
    Ok(HeldCheck {
        drift,
        rows_of_deleted,
    })
}

/// Placement rows of deleted tenants (none when the counts are kept as they should be: a
/// tenant's deletion removes its row). For tests and [`check_held`].
pub fn rows_of_deleted(conn: &mut AnyConnection) -> StoreResult<i64> {
    Ok(tenant_placements::table
        .inner_join(tenants::table)
        .filter(tenants::deleted_at.is_not_null())
        .count()
        .get_result(conn)?)
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

/// A tenant a gateway holds: its id, its plan as stored, and whether an operator asked for a
/// dedicated gateway ([`Placement::dedicated`]).
pub type Held = (TenantId, String, bool);

/// The live tenants a gateway holds (placed on it), with their plans and wishes, in creation
/// order.
pub fn held_by(conn: &mut AnyConnection, gateway: &GatewayId) -> StoreResult<Vec<Held>> {
    let members = members(conn, gateway)?;
    // Those that asked for a dedicated gateway (few: an operator's choice, one by one).
    let asked: HashSet<String> = tenant_placements::table
        .filter(tenant_placements::dedicated.eq(true))
        .select(tenant_placements::tenant_id)
        .load::<String>(conn)?
        .into_iter()
        .collect();
    let all: Vec<(String, String)> = tenants::table
        .filter(tenants::deleted_at.is_null())
        .select((tenants::id, tenants::plan))
        .order((tenants::created_at.asc(), tenants::id.asc()))
        .load(conn)?;
    let mut out = Vec::new();
    for (id, plan) in all {
        let id: TenantId = id
            .parse()
            .map_err(|_| corrupt("tenants", &id, "not a UUID"))?;
        if members.contains(&id) {
            let dedicated = asked.contains(&id.to_string());
            out.push((id, plan, dedicated));
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
/// (after a crash in between) is only larger, which is safe.
pub fn stamp_move_revisions(conn: &mut AnyConnection) -> StoreResult<usize> {
    let revision = config_revision::current(conn)?;
    Ok(diesel::update(
        tenant_placements::table
            .filter(tenant_placements::state.eq("moving"))
            .filter(tenant_placements::move_revision.is_null()),
    )
    .set(tenant_placements::move_revision.eq(revision))
    .execute(conn)?)
}
