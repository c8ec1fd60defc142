//! The fleet's metrics: per gateway (labelled by its name, which is bounded: operators create
//! gateways, tenants never appear in a label; ids stay out of labels) its tenants, capacity,
//! heartbeat age and stranded tenants; tenants by placement state; tenants left unplaced;
//! tenants failed over; tenants placed after waiting for room.

use chrono::{DateTime, Utc};
use metrics::{Unit, counter, describe_counter, describe_gauge, gauge};
use tenant_store::{AnyConnection, StoreResult, gateways};

/// Tenants placed on or moving to a gateway, by `gateway` (its name).
pub const GATEWAY_TENANTS: &str = "moltbot_saas_gateway_tenants";
/// A gateway's capacity, by `gateway` (its name) (absent: unlimited).
pub const GATEWAY_CAPACITY: &str = "moltbot_saas_gateway_capacity";
/// Seconds since a gateway's last heartbeat, by `gateway` (its name) (absent: never).
pub const GATEWAY_HEARTBEAT_AGE: &str = "moltbot_saas_gateway_heartbeat_age_seconds";
/// Tenants by placement `state` (`placed`, `moving`, `unplaced`).
pub const PLACEMENTS: &str = "moltbot_saas_tenant_placements";
/// Tenants that found no gateway with room when placed.
pub const UNPLACED: &str = "moltbot_saas_tenants_unplaced_total";
/// Tenants placed after waiting for room (unplaced until a gateway had some).
pub const PENDING_PLACED: &str = "moltbot_saas_tenants_pending_placed_total";
/// Tenants re-placed from a shared gateway whose lease expired (failover).
pub const FAILED_OVER: &str = "moltbot_saas_tenants_failed_over_total";
/// Tenants held by a gateway whose lease expired and that were not failed over (a dedicated
/// gateway, failover off, or no room), by `gateway` (its name); 0 for the others.
pub const STRANDED: &str = "moltbot_saas_gateway_stranded_tenants";

/// Describes the fleet's series.
pub fn describe() {
    describe_gauge!(
        GATEWAY_TENANTS,
        Unit::Count,
        "Tenants placed on or moving to a gateway."
    );
    describe_gauge!(GATEWAY_CAPACITY, Unit::Count, "Tenants a gateway may hold.");
    describe_gauge!(
        GATEWAY_HEARTBEAT_AGE,
        Unit::Seconds,
        "Seconds since the gateway's last heartbeat."
    );
    describe_gauge!(PLACEMENTS, Unit::Count, "Tenants by placement state.");
    describe_counter!(
        UNPLACED,
        Unit::Count,
        "Tenants that found no gateway with room when placed."
    );
    describe_counter!(
        PENDING_PLACED,
        Unit::Count,
        "Tenants placed after waiting for a gateway with room."
    );
    describe_counter!(
        FAILED_OVER,
        Unit::Count,
        "Tenants re-placed from a shared gateway whose lease expired."
    );
    describe_gauge!(
        STRANDED,
        Unit::Count,
        "Tenants held by a gateway whose lease expired, not failed over."
    );
}

/// Counts tenants failed over.
pub fn failed_over(n: usize) {
    if n > 0 {
        counter!(FAILED_OVER).increment(n as u64);
    }
}

/// Sets the stranded gauge of each gateway: `(gateway name, tenants stranded on it)`.
pub fn stranded<'a>(counts: impl IntoIterator<Item = (&'a str, usize)>) {
    for (name, n) in counts {
        gauge!(STRANDED, "gateway" => name.to_owned()).set(n as f64);
    }
}

/// Counts a tenant left unplaced.
pub fn tenant_unplaced() {
    counter!(UNPLACED).increment(1);
}

/// After placing tenants that waited for room: counts the `placed` ones and sets the
/// `unplaced` placement gauge to the `unplaced` left (the other states follow at the next
/// refresh).
pub fn pending_placed(placed: usize, unplaced: i64) {
    if placed > 0 {
        counter!(PENDING_PLACED).increment(placed as u64);
    }
    gauge!(PLACEMENTS, "state" => "unplaced").set(unplaced as f64);
}

/// Reads the fleet from the store and sets its gauges.
pub fn refresh(conn: &mut AnyConnection, now: DateTime<Utc>) -> StoreResult<()> {
    let counts = gateways::held_counts(conn)?;
    for g in gateways::list(conn)? {
        let name = g.name.clone();
        let held = counts
            .iter()
            .find(|(c, _)| *c == g.id)
            .map_or(0, |(_, n)| *n);
        gauge!(GATEWAY_TENANTS, "gateway" => name.clone()).set(held as f64);
        if let Some(capacity) = g.capacity {
            gauge!(GATEWAY_CAPACITY, "gateway" => name.clone()).set(capacity as f64);
        }
        if let Some(at) = g.last_heartbeat_at {
            let age = (now - at).num_milliseconds().max(0) as f64 / 1000.0;
            gauge!(GATEWAY_HEARTBEAT_AGE, "gateway" => name).set(age);
        }
    }
    let (placed, moving, unplaced) = gateways::state_counts(conn)?;
    gauge!(PLACEMENTS, "state" => "placed").set(placed as f64);
    gauge!(PLACEMENTS, "state" => "moving").set(moving as f64);
    gauge!(PLACEMENTS, "state" => "unplaced").set(unplaced as f64);
    Ok(())
}
