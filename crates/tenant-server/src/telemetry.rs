//! Logging: `tracing` with pretty or JSON output, filtered by `RUST_LOG`; with Sentry configured,
//! also Sentry's tracing layer (error lines outside requests become events, warnings their
//! breadcrumbs).

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::LogFormat;

/// Installs the global subscriber writing to `writer`, filtered by `RUST_LOG` or else
/// `default_filter` (e.g. `info`); `sentry`: also feed Sentry's tracing layer (whatever client
/// the process's main hub has). Returns `false` when one was already installed (tests start
/// several servers in one process).
pub fn init<W>(format: LogFormat, default_filter: &str, writer: W, sentry: bool) -> bool
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
            .finish()
            .with(sentry.then(sentry_layer))
            .try_init()
            .is_ok(),
        LogFormat::Pretty => builder
            .finish()
            .with(sentry.then(sentry_layer))
            .try_init()
            .is_ok(),
    }
}

/// Sentry's layer: errors become events, warnings breadcrumbs, the rest nothing. A request's
/// failure (its `error.cause` line, its panic line) is reported by the request log with the
/// request's tags instead, so those lines are left out here.
fn sentry_layer<S>() -> sentry::integrations::tracing::SentryLayer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    use sentry::integrations::tracing::EventFilter;
    sentry::integrations::tracing::layer().event_filter(|meta| {
        let request_failure = meta.fields().field("error.cause").is_some()
            || meta.fields().field("panic.location").is_some();
        match *meta.level() {
            tracing::Level::ERROR if !request_failure => EventFilter::Event,
            tracing::Level::ERROR | tracing::Level::WARN => EventFilter::Breadcrumb,
            _ => EventFilter::Ignore,
        }
    })
}
