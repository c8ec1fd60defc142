//! A driver for profiling `render_combined` (callgrind, perf): builds `N` bulk tenants once, then
//! renders them `ITERS` times and prints the time per render.
//! `cargo run --release -p tenant-configgen --example profile-render -- [N] [inline|env|secret-ref] [ITERS]`

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use tenant_configgen::{RenderOptions, SecretsMode, render_combined};

#[path = "../tests/fixture/mod.rs"]
mod fixture;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map_or(20_000, |a| a.parse().expect("N"));
    let secrets: SecretsMode = args
        .next()
        .map_or(SecretsMode::Inline, |a| a.parse().expect("secrets mode"));
    let iters: u32 = args.next().map_or(1, |a| a.parse().expect("ITERS"));
    let mut owned = fixture::bulk(n);
    if std::env::var_os("SORTED_INPUT").is_some() {
        // Input already in document order and laid out in memory in that order.
        owned.sort_by(|a, b| a.tenant.agent_id.cmp(&b.tenant.agent_id));
        owned = owned
            .iter()
            .map(|o| fixture::Owned {
                tenant: o.tenant.clone(),
                channels: o.channels.clone(),
            })
            .collect();
    }
    let sources = fixture::sources(&owned);
    let opts = RenderOptions {
        secrets,
        ..RenderOptions::default()
    };
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..iters {
        let out = render_combined(black_box(&sources), &opts).expect("renders");
        bytes = out.json.len();
    }
    let per = start.elapsed() / iters;
    println!("{n} tenants, {secrets}: {per:?} per render, {bytes} bytes");
}
