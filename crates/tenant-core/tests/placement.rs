//! Property tests of placement: capacity is never exceeded, the decision does not depend on the
//! order gateways are listed in, the choice is the freest eligible gateway, and a drain empties
//! a gateway whenever the others have room, and tenants waiting for room are placed oldest
//! first without overfilling anything.

use proptest::prelude::*;
use tenant_core::{
    GatewayId, GatewayKind, GatewayLoad, TenantId, Want, any_room, check_target, choose,
    drain_plan, place_plan,
};
use uuid::Uuid;

fn gateway(i: usize) -> impl Strategy<Value = GatewayLoad> {
    (
        prop_oneof![Just(GatewayKind::Shared), Just(GatewayKind::Dedicated)],
        prop::option::weighted(0.85, 0i64..8),
        0i64..8,
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.1),
        0u8..4,
    )
        .prop_map(move |(kind, capacity, held, draining, down, name)| {
            let capacity = if kind == GatewayKind::Dedicated {
                Some(1)
            } else {
                capacity
            };
            GatewayLoad {
                id: GatewayId::from(Uuid::from_u128(i as u128 + 1)),
                // Few distinct names, so ties on free room and name happen.
                name: format!("g{name}"),
                kind,
                capacity,
                held: capacity.map_or(held, |c| held.min(c)),
                draining,
                down,
            }
        })
}

fn fleet() -> impl Strategy<Value = Vec<GatewayLoad>> {
    (0usize..7).prop_flat_map(|n| (0..n).map(gateway).collect::<Vec<_>>())
}

fn want() -> impl Strategy<Value = Want> {
    prop_oneof![4 => Just(Want::Shared), 1 => Just(Want::Dedicated)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// Placing tenants one after another never puts more on a gateway than its capacity, never
    /// uses a draining, down or wrong-kind gateway, and is refused only when no gateway of the
    /// kind has room.
    #[test]
    fn capacity_is_never_exceeded(mut gateways in fleet(), wants in prop::collection::vec(want(), 0..40)) {
        for w in wants {
            match choose(&gateways, w) {
                Ok(id) => {
                    let g = gateways.iter_mut().find(|g| g.id == id).expect("chosen from the list");
                    prop_assert_eq!(g.kind, w.kind());
                    prop_assert!(!g.draining && !g.down);
                    prop_assert!(check_target(g).is_ok());
                    g.held += 1;
                    prop_assert!(g.capacity.is_none_or(|c| g.held <= c));
                }
                Err(no_room) => {
                    prop_assert!(gateways.iter().all(|g| g.kind != w.kind() || g.draining || g.down || !g.has_room()));
                    prop_assert_eq!(no_room.gateways, gateways.iter().filter(|g| g.kind == w.kind()).count());
                }
            }
        }
    }

    /// The same gateways in any order give the same answer, and it is the freest eligible one.
    #[test]
    fn deterministic_and_freest(gateways in fleet(), w in want(), seed in any::<u64>()) {
        let mut shuffled = gateways.clone();
        // A deterministic permutation from the seed.
        shuffled.sort_by_key(|g| (g.id.as_uuid().as_u128() as u64).wrapping_mul(seed | 1).rotate_left(seed as u32 % 64));
        let chosen = choose(&gateways, w);
        prop_assert_eq!(chosen, choose(&shuffled, w));
        if let Ok(id) = chosen {
            let g = gateways.iter().find(|g| g.id == id).expect("chosen from the list");
            for other in gateways.iter().filter(|o| o.kind == w.kind() && !o.draining && !o.down && o.has_room()) {
                match (g.free(), other.free()) {
                    (Some(mine), None) => prop_assert!(false, "an unlimited gateway {} was passed over for {} free", other.name, mine),
                    (Some(mine), Some(theirs)) => prop_assert!(mine >= theirs),
                    _ => {}
                }
            }
        }
    }

    /// Draining moves every tenant of the drained gateway elsewhere when the other gateways
    /// have room for them, never onto the drained gateway, and never past a capacity.
    #[test]
    fn drain_empties_a_gateway(gateways in fleet(), wants in prop::collection::vec(want(), 0..12)) {
        prop_assume!(!gateways.is_empty());
        let drained = gateways[0].id;
        let tenants: Vec<(TenantId, Want)> = wants.iter().map(|w| (TenantId::random(), *w)).collect();
        let plan = drain_plan(&gateways, drained, &tenants);
        prop_assert_eq!(plan.len(), tenants.len());
        let mut held: Vec<GatewayLoad> = gateways.clone();
        for ((_, to), (_, w)) in plan.iter().zip(&tenants) {
            match to {
                Some(to) => {
                    prop_assert_ne!(*to, drained);
                    let g = held.iter_mut().find(|g| g.id == *to).expect("a listed gateway");
                    prop_assert_eq!(g.kind, w.kind());
                    g.held += 1;
                    prop_assert!(g.capacity.is_none_or(|c| g.held <= c));
                }
                None => {
                    // Refused only when no other gateway of the kind had room left.
                    prop_assert!(held.iter().filter(|g| g.id != drained && g.kind == w.kind() && !g.draining && !g.down).all(|g| !g.has_room()));
                }
            }
        }
    }

    /// Tenants waiting for room, placed in one batch oldest first: never past a capacity, never
    /// on a draining, down or wrong-kind gateway; a tenant is left waiting only when no gateway
    /// of its kind has room left, so no younger tenant of the same want is placed after an older
    /// one was left; and when [`any_room`] says no, nobody is placed.
    #[test]
    fn pending_are_placed_oldest_first(gateways in fleet(), wants in prop::collection::vec(want(), 0..20)) {
        let tenants: Vec<(TenantId, Want)> = wants.iter().map(|w| (TenantId::random(), *w)).collect();
        let room = any_room(&gateways);
        let mut planned = gateways.clone();
        let plan = place_plan(&mut planned, &tenants);
        prop_assert_eq!(plan.len(), tenants.len());
        let mut held = gateways.clone();
        let mut left_waiting: Vec<Want> = Vec::new();
        for ((tenant, to), (asked, w)) in plan.iter().zip(&tenants) {
            prop_assert_eq!(tenant, asked);
            match to {
                Some(to) => {
                    prop_assert!(room, "placed although no gateway had room");
                    prop_assert!(!left_waiting.contains(w), "a younger tenant jumped the queue");
                    let g = held.iter_mut().find(|g| g.id == *to).expect("a listed gateway");
                    prop_assert_eq!(g.kind, w.kind());
                    prop_assert!(!g.draining && !g.down);
                    g.held += 1;
                    prop_assert!(g.capacity.is_none_or(|c| g.held <= c));
                }
                None => {
                    prop_assert!(held.iter().filter(|g| g.kind == w.kind() && !g.draining && !g.down).all(|g| !g.has_room()));
                    left_waiting.push(*w);
                }
            }
        }
        // The loads handed back count every tenant placed.
        prop_assert_eq!(planned, held);
    }
}
