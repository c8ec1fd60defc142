//! The moltbot-saas domain: tenants, their messaging channels and channel credentials.
//!
//! This crate holds the types and business rules shared by every other crate of the control plane.
//! It knows nothing about databases, HTTP or async runtimes, so it can be embedded in any Rust
//! service. Values that reach a constructor here are validated once; afterwards the types carry the
//! guarantee (a [`Slug`] is always a DNS label, an [`AccountId`] is always canonical, …).

mod channel;
mod channel_kind;
mod credentials;
mod duration;
mod email;
mod error;
mod fleet;
mod id_map;
mod ids;
mod page;
mod role;
mod secret;
mod slug;
mod tenant;
mod time;

pub use channel::{Channel, ChannelState, ChannelUpdate, DisplayName, NewChannel};
pub use channel_kind::ChannelKind;
pub use credentials::{CredentialField, CredentialValue, Credentials, CredentialsPatch, SlackMode};
pub use duration::{DurationError, format_duration, parse_duration};
pub use email::Email;
pub use error::{ValidationError, ValidationErrors};
pub use fleet::{
    GatewayId, GatewayKind, GatewayLoad, GatewayName, MAX_CAPACITY, NoRoom, PlacementState,
    Refusal, Want, any_room, check_capacity, check_target, choose, drain_plan, place_plan,
};
pub use id_map::{IdHasher, TenantIdMap};
pub use ids::{AccountId, AgentId, ChannelId, TenantId};
pub use page::{Cursor, Page, PageRequest};
pub use role::Role;
pub use secret::Secret;
pub use slug::Slug;
pub use tenant::{NewTenant, Plan, Tenant, TenantName, TenantStatus, TenantUpdate};
pub use time::now;
