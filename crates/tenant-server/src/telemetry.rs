//! Logging: `tracing` with pretty or JSON output, filtered by `RUST_LOG`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::settings::LogFormat;

/// Installs the global subscriber writing to `writer`, filtered by `RUST_LOG` or else
/// `default_filter` (e.g. `info`). Returns `false` when one was already installed (tests start
/// several servers in one process).
pub fn init<W>(format: LogFormat, default_filter: &str, writer: W) -> bool
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    match format {
        // The current span (the request's id) only: the list of all spans would repeat it, and
        // re-serialising span fields is most of a JSON line's cost.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init()
            .is_ok(),
        LogFormat::Pretty => builder.try_init().is_ok(),
    }
}
