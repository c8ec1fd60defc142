//! Rendering speed for 1k, 10k and 100k tenants with two channels each (input in scrambled order):
//! `render_combined` (a fresh document per call, compact and pretty) and `render_combined_into`
//! (into a reused buffer, as a repeated renderer would).

#![allow(missing_docs, clippy::expect_used)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tenant_configgen::{
    Layout, RenderOptions, RenderedConfig, SecretsMode, render_combined, render_combined_into,
};

#[path = "../tests/fixture/mod.rs"]
mod fixture;

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("render_combined");
    group.sample_size(10);
    for n in [1_000u32, 10_000, 100_000] {
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

criterion_group!(benches, render);
criterion_main!(benches);
