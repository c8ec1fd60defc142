//! The gateway fleet's domain: gateway ids, kinds, names and capacities, and placement — the
//! pure decision of which gateway a tenant goes to (no database, no clock).
//!
//! Placement rules (see `docs/fleet.md`): a tenant that wants a dedicated gateway goes to a
//! dedicated one with room, any other to the shared gateway with the most free capacity (an
//! unlimited gateway has the most); draining and down gateways take nobody; ties go to the
//! gateway whose name sorts first, then to the smaller id, so every replica decides alike. With
//! no room anywhere the answer is [`NoRoom`], never an overfilled gateway.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{TenantId, ValidationError};

/// A gateway's id (a random UUID; the built-in gateway's is [`GatewayId::DEFAULT`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GatewayId(Uuid);

impl GatewayId {
    /// The built-in gateway `default`, whose token is the server's `SAAS_GATEWAY_TOKEN`.
    pub const DEFAULT: GatewayId = GatewayId(Uuid::nil());

    /// A new random id.
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }

    /// The wrapped UUID.
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }

    /// Whether this is the built-in gateway.
    pub fn is_default(&self) -> bool {
        *self == Self::DEFAULT
    }
}

impl From<Uuid> for GatewayId {
    fn from(u: Uuid) -> Self {
        Self(u)
    }
}

impl fmt::Display for GatewayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for GatewayId {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| ValidationError::new("gatewayId", "invalid_id", "must be a UUID"))
    }
}

/// Whether a gateway is shared by many tenants or holds one tenant of its own (a "cell").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayKind {
    /// One process for many tenants (not a security boundary between them).
    Shared,
    /// One tenant's own gateway: capacity 1, its document is the tenant's own.
    Dedicated,
}

impl GatewayKind {
    /// The stored and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            GatewayKind::Shared => "shared",
            GatewayKind::Dedicated => "dedicated",
        }
    }
}

impl FromStr for GatewayKind {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shared" => Ok(Self::Shared),
            "dedicated" => Ok(Self::Dedicated),
            _ => Err(ValidationError::new(
                "kind",
                "invalid_value",
                "must be `shared` or `dedicated`",
            )),
        }
    }
}

/// Where a tenant stands in the fleet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementState {
    /// On one gateway, in its document.
    Placed,
    /// Leaving its gateway for another: in neither document until the source gateway has
    /// acknowledged a document without it.
    Moving,
    /// No gateway had room: in no document.
    Unplaced,
}

impl PlacementState {
    /// The stored and API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PlacementState::Placed => "placed",
            PlacementState::Moving => "moving",
            PlacementState::Unplaced => "unplaced",
        }
    }
}

impl FromStr for PlacementState {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "placed" => Ok(Self::Placed),
            "moving" => Ok(Self::Moving),
            "unplaced" => Ok(Self::Unplaced),
            _ => Err(ValidationError::new(
                "state",
                "invalid_value",
                "unknown placement state",
            )),
        }
    }
}

/// The most tenants one gateway may be given.
pub const MAX_CAPACITY: i64 = 1_000_000;

/// A gateway's name: 1–63 characters of `a-z`, `0-9` and `-`, not starting or ending with `-`
/// (it appears in metrics and file names); `default` is the built-in gateway's.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GatewayName(String);

impl GatewayName {
    /// The built-in gateway's name.
    pub const DEFAULT: &'static str = "default";

    /// Validates a name given for a new or renamed gateway (`default` is refused: it is taken).
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let err = |code, msg: &str| Err(ValidationError::new("name", code, msg));
        if s.is_empty() || s.len() > 63 {
            return err("invalid_length", "must be 1 to 63 characters");
        }
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            || s.starts_with('-')
            || s.ends_with('-')
        {
            return err(
                "invalid_format",
                "must be lowercase letters, digits and `-`, not starting or ending with `-`",
            );
        }
        if s == Self::DEFAULT {
            return err("reserved", "`default` is the built-in gateway's name");
        }
        Ok(Self(s.to_owned()))
    }

    /// A name read back from the store (trusted).
    pub fn from_stored(s: String) -> Self {
        Self(s)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a capacity for a gateway of `kind`: 0 to [`MAX_CAPACITY`], and exactly 1 for a
/// dedicated gateway (absent: 1 for dedicated, required for shared).
pub fn check_capacity(kind: GatewayKind, capacity: Option<i64>) -> Result<i64, ValidationError> {
    let err = |code, msg: String| Err(ValidationError::new("capacity", code, msg));
    match (kind, capacity) {
        (GatewayKind::Dedicated, None | Some(1)) => Ok(1),
        (GatewayKind::Dedicated, Some(_)) => err(
            "invalid_value",
            "a dedicated gateway holds exactly one tenant: capacity must be 1".to_owned(),
        ),
        (GatewayKind::Shared, None) => err("required", "is required".to_owned()),
        (GatewayKind::Shared, Some(c)) if !(0..=MAX_CAPACITY).contains(&c) => err(
            "out_of_range",
            format!("must be between 0 and {MAX_CAPACITY}"),
        ),
        (GatewayKind::Shared, Some(c)) => Ok(c),
    }
}

/// What placement knows of a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayLoad {
    /// Its id.
    pub id: GatewayId,
    /// Its name (ties between equally free gateways go to the name that sorts first).
    pub name: String,
    /// Shared or dedicated.
    pub kind: GatewayKind,
    /// How many tenants it may hold; `None`: no limit (the built-in gateway by default).
    pub capacity: Option<i64>,
    /// How many it holds or is receiving (placed on it, or moving to it).
    pub held: i64,
    /// Whether it is draining (takes nobody new).
    pub draining: bool,
    /// Whether its lease expired (it stopped sending heartbeats).
    pub down: bool,
}

impl GatewayLoad {
    /// Free room; `None`: unlimited.
    pub fn free(&self) -> Option<i64> {
        self.capacity.map(|c| (c - self.held).max(0))
    }

    /// Whether it can take one more tenant.
    pub fn has_room(&self) -> bool {
        self.free().is_none_or(|f| f > 0)
    }

    fn takes(&self, want: Want) -> bool {
        self.kind == want.kind() && !self.draining && !self.down && self.has_room()
    }
}

/// What a tenant needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Want {
    /// A place on a shared gateway.
    Shared,
    /// A gateway of its own.
    Dedicated,
}

impl Want {
    /// The kind of gateway that satisfies it.
    pub fn kind(self) -> GatewayKind {
        match self {
            Want::Shared => GatewayKind::Shared,
            Want::Dedicated => GatewayKind::Dedicated,
        }
    }
}

/// No gateway can take the tenant: every one of the wanted kind is full, draining or down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRoom {
    /// What was wanted.
    pub want: Want,
    /// Gateways of that kind.
    pub gateways: usize,
    /// Of those, the full ones.
    pub full: usize,
    /// Of those, the draining or down ones.
    pub unavailable: usize,
}

/// The gateway a tenant that wants `want` goes to, among `gateways`.
pub fn choose(gateways: &[GatewayLoad], want: Want) -> Result<GatewayId, NoRoom> {
    gateways
        .iter()
        .filter(|g| g.takes(want))
        .min_by(|a, b| compare(a, b))
        .map(|g| g.id)
        .ok_or_else(|| no_room(gateways, want))
}

/// Ordering of candidates: more free room first (unlimited first of all), then the name that
/// sorts first, then the smaller id.
fn compare(a: &GatewayLoad, b: &GatewayLoad) -> Ordering {
    match (a.free(), b.free()) {
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(&x),
        (None, None) => Ordering::Equal,
    }
    .then_with(|| a.name.cmp(&b.name))
    .then_with(|| a.id.cmp(&b.id))
}

fn no_room(gateways: &[GatewayLoad], want: Want) -> NoRoom {
    let of_kind: Vec<&GatewayLoad> = gateways.iter().filter(|g| g.kind == want.kind()).collect();
    NoRoom {
        want,
        gateways: of_kind.len(),
        full: of_kind.iter().filter(|g| !g.has_room()).count(),
        unavailable: of_kind.iter().filter(|g| g.draining || g.down).count(),
    }
}

/// Why a tenant cannot be put on one named gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It holds as many tenants as it may.
    Full {
        /// Tenants it holds or is receiving.
        held: i64,
        /// Its capacity.
        capacity: i64,
    },
    /// It is draining.
    Draining,
    /// Its lease expired.
    Down,
}

/// Whether `gateway` can take one more tenant asked for by name (a pin or a move).
pub fn check_target(gateway: &GatewayLoad) -> Result<(), Refusal> {
    if gateway.down {
        return Err(Refusal::Down);
    }
    if gateway.draining {
        return Err(Refusal::Draining);
    }
    match gateway.capacity {
        Some(capacity) if gateway.held >= capacity => Err(Refusal::Full {
            held: gateway.held,
            capacity,
        }),
        _ => Ok(()),
    }
}

/// Where each tenant of a draining gateway goes: tenants in the order given, each to the
/// gateway [`choose`] picks among the others (counting the ones placed before it), or `None`
/// when no other gateway has room. The drained gateway is never chosen.
pub fn drain_plan(
    gateways: &[GatewayLoad],
    drained: GatewayId,
    tenants: &[(TenantId, Want)],
) -> Vec<(TenantId, Option<GatewayId>)> {
    let mut others: Vec<GatewayLoad> = gateways
        .iter()
        .filter(|g| g.id != drained)
        .cloned()
        .collect();
    place_plan(&mut others, tenants)
}

/// Where each of `tenants` goes, in the order given (oldest first for tenants waiting to be
/// placed): each to the gateway [`choose`] picks, counting the ones placed before it in
/// `gateways`' `held`, or `None` when no gateway of its kind has room left. A tenant left out
/// never keeps a later one from a gateway it could not use itself.
pub fn place_plan(
    gateways: &mut [GatewayLoad],
    tenants: &[(TenantId, Want)],
) -> Vec<(TenantId, Option<GatewayId>)> {
    tenants
        .iter()
        .map(|&(tenant, want)| {
            let to = choose(gateways, want).ok();
            if let Some(g) = gateways.iter_mut().find(|g| Some(g.id) == to) {
                g.held += 1;
            }
            (tenant, to)
        })
        .collect()
}

/// Whether any gateway can take one more tenant of any kind (when none can, tenants waiting
/// for room need not be looked at).
pub fn any_room(gateways: &[GatewayLoad]) -> bool {
    [Want::Shared, Want::Dedicated]
        .into_iter()
        .any(|want| gateways.iter().any(|g| g.takes(want)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(name: &str, kind: GatewayKind, capacity: Option<i64>, held: i64) -> GatewayLoad {
        GatewayLoad {
            id: GatewayId::random(),
            name: name.to_owned(),
            kind,
            capacity,
            held,
            draining: false,
            down: false,
        }
    }

    #[test]
    fn most_free_wins_and_ties_go_by_name() {
        let a = gw("a", GatewayKind::Shared, Some(10), 5);
        let b = gw("b", GatewayKind::Shared, Some(10), 2);
        let c = gw("c", GatewayKind::Shared, Some(10), 2);
        assert_eq!(
            choose(&[a.clone(), c.clone(), b.clone()], Want::Shared),
            Ok(b.id)
        );
        let unlimited = gw("z", GatewayKind::Shared, None, 1_000);
        assert_eq!(
            choose(&[a, unlimited.clone()], Want::Shared),
            Ok(unlimited.id)
        );
    }

    #[test]
    fn kinds_draining_and_full_are_respected() {
        let shared = gw("s", GatewayKind::Shared, Some(1), 1);
        let mut cell = gw("cell", GatewayKind::Dedicated, Some(1), 0);
        assert_eq!(
            choose(&[shared.clone(), cell.clone()], Want::Shared),
            Err(NoRoom {
                want: Want::Shared,
                gateways: 1,
                full: 1,
                unavailable: 0
            })
        );
        assert_eq!(
            choose(&[shared.clone(), cell.clone()], Want::Dedicated),
            Ok(cell.id)
        );
        cell.draining = true;
        assert_eq!(check_target(&cell), Err(Refusal::Draining));
        assert_eq!(
            check_target(&shared),
            Err(Refusal::Full {
                held: 1,
                capacity: 1
            })
        );
    }

    #[test]
    fn names_and_capacities_are_checked() {
        assert!(GatewayName::parse("pool-1").is_ok());
        for bad in ["", "Pool", "-a", "a-", "default", "a_b", &"a".repeat(64)] {
            assert!(GatewayName::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(check_capacity(GatewayKind::Dedicated, None), Ok(1));
        assert!(check_capacity(GatewayKind::Dedicated, Some(2)).is_err());
        assert!(check_capacity(GatewayKind::Shared, None).is_err());
        assert!(check_capacity(GatewayKind::Shared, Some(-1)).is_err());
        assert_eq!(check_capacity(GatewayKind::Shared, Some(0)), Ok(0));
    }
}
