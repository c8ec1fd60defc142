//! `moltbot-saas gateways list|create|drain|rotate-token|place-pending|check`: the gateway fleet, straight on the
//! database, through the same use cases as `/gateways` (audited with actor `cli`), printing
//! the same JSON. A gateway's token is printed once, by `create` and `rotate-token`.

use clap::Subcommand;
use serde::Serialize;
use tenant_core::GatewayId;
use tenant_service::fleet::gateways;
use tenant_service::fleet::pending::{self, Trigger};

use super::console::{CliResult, cli_actor, print_json};
use crate::routes::gateways::{
    DrainResponse, GatewayListResponse, GatewayResponse, GatewayWithTokenResponse,
    PlacePendingResponse,
};
use crate::settings::Settings;
use crate::startup::{api_key_auth, open_database};

/// `gateways` subcommands.
#[derive(Debug, Subcommand)]
pub enum GatewaysCommand {
    /// List the gateways (the built-in `default` included) with their load and health.
    List,
    /// Create a gateway; prints it with its token (shown once).
    Create {
        /// Unique name (a-z, 0-9, '-').
        #[arg(long)]
        name: String,
        /// `shared` or `dedicated`.
        #[arg(long, default_value = "shared")]
        kind: String,
        /// Tenants it may hold (required for a shared gateway; 1 for a dedicated one).
        #[arg(long)]
        capacity: Option<i64>,
    },
    /// Drain a gateway: no new tenants; its tenants start moving where there is room.
    Drain {
        /// The gateway's id or name.
        gateway: String,
    },
    /// Give a gateway a new token (printed once); the old one stops working.
    RotateToken {
        /// The gateway's id or name.
        gateway: String,
    },
    /// Place the tenants waiting for room (unplaced), oldest first, where there is room now;
    /// prints how many were placed and how many still wait.
    PlacePending,
    /// Check each gateway's stored count of the tenants it holds against its placement rows;
    /// exits with an error when one is wrong, unless `--repair` set it right.
    Check {
        /// Set wrong counts to their rows' count (audited as `gateway.held_repaired`).
        #[arg(long)]
        repair: bool,
    },
}

/// What `gateways check` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct HeldCheckOutput {
    /// Whether the counts were exact (before any repair).
    consistent: bool,
    /// Whether `--repair` set the wrong ones right.
    repaired: bool,
    /// The gateways whose stored count was wrong.
    drift: Vec<HeldDriftOutput>,
    /// Placement rows left by deleted tenants (deleted by `--repair`).
    rows_of_deleted_tenants: i64,
}

#[derive(Debug, Serialize)]
struct HeldDriftOutput {
    id: String,
    name: String,
    stored: i64,
    counted: i64,
}

/// A gateway named by id or by name.
pub(super) fn resolve(
    conn: &mut tenant_store::AnyConnection,
    cfg: &tenant_service::fleet::FleetConfig,
    given: &str,
) -> Result<GatewayId, Box<dyn std::error::Error>> {
    gateways::list(conn, cfg)?
        .into_iter()
        .find(|v| v.gateway.name == given || v.gateway.id.to_string() == given)
        .map(|v| v.gateway.id)
        .ok_or_else(|| format!("no gateway named `{given}`").into())
}

/// Runs a `gateways` subcommand.
pub fn run(settings: &Settings, command: GatewaysCommand) -> CliResult {
    let mut cfg = settings.clone();
    cfg.db_pool_size = 1;
    let db = open_database(&cfg)?;
    let mut conn = db.get()?;
    let fleet = &settings.fleet;
    match command {
        GatewaysCommand::List => {
            let views = gateways::list(&mut conn, fleet)?;
            print_json(&GatewayListResponse {
                gateways: views.iter().map(GatewayResponse::from).collect(),
            })
        }
        GatewaysCommand::Create {
            name,
            kind,
            capacity,
        } => {
            let spec = gateways::GatewaySpec::parse(&name, Some(&kind), capacity)?;
            let keys = api_key_auth(settings)?;
            let issued = gateways::create(&mut conn, &cli_actor(), &keys.hasher, fleet, spec)?;
            print_json(&GatewayWithTokenResponse::from(&issued))
        }
        GatewaysCommand::Drain { gateway } => {
            let id = resolve(&mut conn, fleet, &gateway)?;
            let (view, report) = gateways::drain(&mut conn, &cli_actor(), fleet, &id)?;
            print_json(&DrainResponse {
                gateway: GatewayResponse::from(&view),
                moving: report.moving,
                remaining: report.remaining,
            })
        }
        GatewaysCommand::RotateToken { gateway } => {
            let id = resolve(&mut conn, fleet, &gateway)?;
            let keys = api_key_auth(settings)?;
            let issued = gateways::rotate_token(&mut conn, &cli_actor(), &keys.hasher, fleet, &id)?;
            print_json(&GatewayWithTokenResponse::from(&issued))
        }
        GatewaysCommand::PlacePending => {
            let report =
                pending::place_pending(&mut conn, &cli_actor(), fleet, Trigger::Requested)?;
            print_json(&PlacePendingResponse::from(report))
        }
        GatewaysCommand::Check { repair } => {
            let check = gateways::check_held(&mut conn, &cli_actor(), repair)?;
            let names = gateways::list(&mut conn, fleet)?;
            let name_of = |id: &GatewayId| {
                names
                    .iter()
                    .find(|v| v.gateway.id == *id)
                    .map(|v| v.gateway.name.to_string())
                    .unwrap_or_default()
            };
            let consistent = check.consistent();
            print_json(&HeldCheckOutput {
                consistent,
                repaired: repair && !consistent,
                drift: check
                    .drift
                    .iter()
                    .map(|d| HeldDriftOutput {
                        id: d.gateway.to_string(),
                        name: name_of(&d.gateway),
                        stored: d.stored,
                        counted: d.counted,
                    })
                    .collect(),
                rows_of_deleted_tenants: check.rows_of_deleted,
            })?;
            if consistent || repair {
                Ok(())
            } else {
                Err("stored held counts differ from the placement rows: run `gateways check --repair`".into())
            }
        }
    }
}
