//! Rendering speed for 1k, 10k and 100k tenants with two channels each (input in scrambled order).
//!
//! `render_combined`: from scratch, every call with fresh memory (compact and pretty, inline and
//! env secrets). `inline-into`: from scratch too, but into a reused `RenderedConfig` (its
//! document buffer and the renderer's working memory), as a repeated renderer would. Group
//! `incremental`: an `IncrementalConfig` holding every tenant, after **one** tenant changed: the
//! re-render of that tenant plus the assembly of the chunks (what the server does after a change;
//! not a full render).
//!
//! From 16k tenants on, a from-scratch render reads its input on every CPU the process may use:
//! `taskset -c 1 cargo bench …` measures it on one.

#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tenant_configgen::{
    IncrementalConfig, Layout, Mode, RenderOptions, RenderedConfig, SecretsMode, TenantSource,
    render_combined, render_combined_into,
};
use tenant_core::TenantName;

#[path = "../tests/fixture/mod.rs"]
mod fixture;

const SIZES: [u32; 3] = [1_000, 10_000, 100_000];

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render_combined");
    group.sample_size(10);
    for n in SIZES {
        let owned = fixture::bulk(n);
        let sources = fixture::sources(&owned);
        group.throughput(Throughput::Elements(u64::from(n)));
        for secrets in [SecretsMode::Inline, SecretsMode::Env] {
            let opts = RenderOptions {
                secrets,
                ..RenderOptions::default()
            };
            group.bench_with_input(BenchmarkId::new(secrets.as_str(), n), &sources, |b, s| {
                b.iter(|| render_combined(black_box(s), &opts).expect("renders"))
            });
        }
        let inline = RenderOptions::default();
        let mut out = RenderedConfig::default();
        group.bench_with_input(BenchmarkId::new("inline-into", n), &sources, |b, s| {
            b.iter(|| render_combined_into(black_box(s), &inline, &mut out).expect("renders"))
        });
        let pretty = RenderOptions {
            layout: Layout::Pretty,
            ..RenderOptions::default()
        };
        group.bench_with_input(BenchmarkId::new("inline-pretty", n), &sources, |b, s| {
            b.iter(|| render_combined(black_box(s), &pretty).expect("renders"))
        });
    }
    group.finish();
}

fn incremental(c: &mut Criterion) {
    let mut group = c.benchmark_group("incremental");
    group.sample_size(20);
    for n in SIZES {
        let owned = fixture::bulk(n);
        let mut live =
            IncrementalConfig::new(RenderOptions::default(), Mode::Combined).expect("options");
        for s in fixture::sources(&owned) {
            live.upsert(&s);
        }
        live.render().expect("renders");
        // One tenant, renamed back and forth, so each iteration is a real change.
        let target = &owned[owned.len() / 2];
        let names =
            ["Renamed tenant", "Tenant renamed again"].map(|s| TenantName::parse(s).expect("name"));
        let mut tenant = target.tenant.clone();
        let mut flip = 0;
        group.bench_function(BenchmarkId::new("one-tenant-changed", n), |b| {
            b.iter(|| {
                flip ^= 1;
                tenant.name = names[flip].clone();
                live.upsert(&TenantSource {
                    tenant: &tenant,
                    channels: &target.channels,
                });
                black_box(live.render().expect("renders"))
            })
        });
    }
    group.finish();
}

criterion_group!(benches, render, incremental);
criterion_main!(benches);
