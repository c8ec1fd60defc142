//! The gateway config use cases of [`ControlPlane`]: the combined document kept per variant
//! and revision (served from shared chunks), one tenant's document, and a one-shot render.

use std::sync::Arc;

use tenant_configgen::{RenderOptions, RenderedConfig};
use tenant_core::TenantId;
use tenant_store::{channels, config_revision, tenants};

use super::ControlPlane;
use crate::error::ServiceResult;
use crate::gateway_config::{self, ServedConfig, Variant, as_sources, tenant_document};
use crate::principal::Principal;

impl ControlPlane {
    /// The combined document of `variant` at the store's current config revision: kept per
    /// variant and refreshed incrementally (one small query when nothing changed).
    pub async fn combined_config(&self, variant: Variant) -> ServiceResult<Arc<ServedConfig>> {
        let revision = self.config_revision().await?;
        self.config_cache
            .get(&self.db, &self.render, &self.keys, variant, revision)
            .await
    }

    /// The store's current config revision (what an up-to-date gateway serves).
    pub async fn config_revision(&self) -> ServiceResult<i64> {
        self.run(|c| Ok(config_revision::current(c)?)).await
    }

    /// One tenant's own document, rendered with `opts`, tagged like the combined one.
    /// The gateway token reads every tenant's config, so a tenant's own credential gets a
    /// reference to it in place of its value: only operators and gateways see the token.
    pub async fn tenant_config(
        &self,
        caller: &Principal,
        id: TenantId,
        mut opts: RenderOptions,
    ) -> ServiceResult<Arc<ServedConfig>> {
        self.check_gateway_reads(caller, id).await?;
        if matches!(caller, Principal::Tenant { .. }) {
            opts.bridge = opts.bridge.as_ref().map(|b| b.withholding_token());
        }
        let keys = Arc::clone(&self.keys);
        self.run(move |c| {
            let revision = config_revision::current(c)?;
            let tenant = tenants::find(c, &id)?;
            let chans = channels::list(c, &id, &keys)?;
            let period = tenant_store::usage::period_of(tenant_core::now());
            let chans = gateway_config::served_channels(&tenant, &period, chans);
            let loaded = [(tenant, chans)];
            let sources = as_sources(&loaded);
            Ok(Arc::new(tenant_document(revision, &sources[0], &opts)?))
        })
        .await
    }

    /// The combined document of the built-in gateway (every active tenant in a single-gateway
    /// setup), rendered at once with the default options (its JSON, and with `env`/`secret-ref`
    /// secrets the env file beside it).
    pub async fn render_config(&self) -> ServiceResult<RenderedConfig> {
        let (opts, keys) = (self.render.clone(), Arc::clone(&self.keys));
        let gateway = tenant_core::GatewayId::DEFAULT;
        self.run(move |c| gateway_config::render_combined(c, &gateway, &opts, &keys))
            .await
    }
}
