//! A load driver for moltbot-saas benchmarks.
//!
//! It runs phases (`health`, `create`, `channels`, `reads`, `config`, `ingest`, `list`) against a
//! server on 127.0.0.1 and prints one JSON line per phase: request count, successes, errors,
//! throughput, latency percentiles, bytes and, given the server's pid, the server's CPU time per
//! request and its peak resident memory from `/proc`. Every loop is bounded by a request count
//! and by time. See `docs/benchmarks.md`.

pub mod driver;
pub mod procfs;
pub mod stats;
pub mod target;

pub use driver::{Options, PHASES, run};
