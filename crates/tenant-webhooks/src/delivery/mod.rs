//! Durable delivery: the SSRF-guarded HTTP client and the dispatcher that drains the outbox.

pub mod circuit;
pub mod client;
pub mod dispatcher;
pub mod guard;
pub mod metrics;

pub use circuit::CircuitPolicy;
pub use client::{ClientConfig, DeliveryClient, check_url};
pub use dispatcher::{DispatchError, Dispatcher, DispatcherConfig, Outcome};
pub use guard::{AddressPolicy, Cidr, forbidden_class};
pub use metrics::{Metrics, MetricsSnapshot};
