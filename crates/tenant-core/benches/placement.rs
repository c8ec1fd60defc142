//! The placement decision at fleet scale (issue 25: 100,000 tenants on 50 gateways, a decision
//! ≤ 1 ms): [`choose`] for a new tenant among 50 shared gateways holding 100,000 tenants (and
//! among 1,000, to show it is linear in gateways and independent of tenants), and [`drain_plan`]
//! of one of the 50 (its 2,000 tenants spread over the other 49).
//!
//! `cargo bench -p tenant-core --bench placement`. What the use case adds (reading the loads from
//! the store, the transaction) is measured by `tenant-service`'s `fleet_scale` example.

#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tenant_core::{GatewayId, GatewayKind, GatewayLoad, TenantId, Want, choose, drain_plan};
use uuid::Uuid;

const TENANTS: i64 = 100_000;

/// `n` shared gateways holding `TENANTS` between them, unevenly (±10 %), each with room for 125 %
/// of its share; ids and names fixed so every run decides alike.
fn fleet(n: usize) -> Vec<GatewayLoad> {
    let share = TENANTS / n as i64;
    (0..n)
        .map(|i| {
            let skew = (i as i64 * 7919 % 21) - 10; // -10..=10 %
            GatewayLoad {
                id: GatewayId::from(Uuid::from_u128(0x1000 + i as u128)),
                name: format!("pool-{i:04}"),
                kind: GatewayKind::Shared,
                capacity: Some(share * 5 / 4),
                held: share + share * skew / 100,
                draining: false,
                down: i % 17 == 16,
            }
        })
        .collect()
}

fn decisions(c: &mut Criterion) {
    let mut group = c.benchmark_group("placement");
    for n in [50, 1_000] {
        let gateways = fleet(n);
        group.bench_with_input(BenchmarkId::new("choose", n), &gateways, |b, g| {
            b.iter(|| choose(black_box(g), Want::Shared).expect("room"))
        });
    }
    let gateways = fleet(50);
    let drained = gateways[0].id;
    let tenants: Vec<(TenantId, Want)> = (0..gateways[0].held)
        .map(|i| {
            (
                TenantId::from(Uuid::from_u128(0x9000_0000 + i as u128)),
                Want::Shared,
            )
        })
        .collect();
    group.sample_size(20);
    group.bench_with_input(
        BenchmarkId::new(
            "drain_plan",
            format!("50 gateways, {} tenants", tenants.len()),
        ),
        &tenants,
        |b, t| b.iter(|| drain_plan(black_box(&gateways), drained, black_box(t))),
    );
    group.finish();
}

criterion_group!(benches, decisions);
criterion_main!(benches);
