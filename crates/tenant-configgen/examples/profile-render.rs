//! A driver for profiling `render_combined` (callgrind, perf): builds `N` bulk tenants once, then
//! renders them `ITERS` times and prints the time per render.
//! `cargo run --release -p tenant-configgen --example profile-render -- [N] [inline|env|secret-ref] [ITERS]`
//! Environment: `LAYOUT=pretty` for the pretty layout, `REUSE=1` to render into one reused
//! buffer (`render_combined_into`), `SORTED_INPUT=1` for input already in document order,
//! `TOUCH=1` to time first a pass that only reads every string the renderer reads (the floor
//! under any renderer of this input).

#![allow(clippy::print_stdout, clippy::expect_used, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::Instant;

use tenant_configgen::{Layout, RenderOptions, RenderedConfig, SecretsMode, render_combined_into};

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
    let layout: Layout =
        std::env::var("LAYOUT").map_or(Layout::Compact, |l| l.parse().expect("LAYOUT"));
    let reuse = std::env::var_os("REUSE").is_some();
    let opts = RenderOptions {
        secrets,
        layout,
        ..RenderOptions::default()
    };
    if std::env::var_os("TOUCH").is_some() {
        // How long merely reading the input takes: every string the renderer reads, once, in
        // input order (the floor under any renderer of this input).
        for _ in 0..3 {
            let start = Instant::now();
            let mut sum = 0usize;
            for s in &sources {
                let t = s.tenant;
                sum += t.name.as_str().len() + t.agent_id.as_str().len();
                sum += t.account_id.as_str().len();
                for c in s.channels {
                    sum += usize::from(c.is_served());
                    for (k, v) in c.credentials.fields() {
                        sum +=
                            k.len() + v.expose().as_bytes().first().map_or(0, |b| usize::from(*b));
                    }
                }
            }
            println!("touch: {:?} ({sum})", start.elapsed());
        }
    }
    let start = Instant::now();
    let mut bytes = 0;
    let mut out = RenderedConfig::default();
    for _ in 0..iters {
        if !reuse {
            out = RenderedConfig::default();
        }
        render_combined_into(black_box(&sources), &opts, &mut out).expect("renders");
        bytes = out.json.len();
    }
    let per = start.elapsed() / iters;
    println!("{n} tenants, {secrets}, {layout}, reuse {reuse}: {per:?} per render, {bytes} bytes");
}
