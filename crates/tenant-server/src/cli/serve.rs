//! `moltbot-saas serve` (the default): the HTTP API until SIGINT/SIGTERM; on a first start, the
//! generated operator and gateway tokens are shown once, on a terminal only (when stdout is
//! not one, a warning says they were generated and how to set tokens of one's own).

use std::io::IsTerminal;

use tenant_store::access_tokens::TokenScope;

use super::console::CliResult;
use crate::settings::Settings;
use crate::startup::Application;

/// Runs the server.
pub fn run(settings: &Settings) -> CliResult {
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(settings)?;
        // Shown once, on a terminal only: never through the log pipeline, and never to a
        // stdout that is a file, the journal or a container's log.
        let terminal = std::io::stdout().is_terminal();
        for generated in app.generated_tokens() {
            let (what, var) = match generated.scope {
                TokenScope::Operator => ("an operator token", "SAAS_ADMIN_TOKEN"),
                TokenScope::Gateway => ("a gateway token (for GET /config)", "SAAS_GATEWAY_TOKEN"),
            };
            if !terminal {
                tracing::warn!(
                    token.variable = var,
                    "first start: {what} was generated and stored only as a hash; it is not shown \
                     because stdout is not a terminal. Set {var} and restart to use a token of \
                     your own"
                );
                continue;
            }
            #[allow(clippy::print_stdout)]
            {
                println!(
                    "\n  First start: {what} was generated. It is stored only as a hash and will\n  \
                     not be shown again. Keep it now:\n\n    {}\n\n  \
                     Use it as `Authorization: Bearer <token>`, or set {var} instead.\n",
                    generated.token.expose()
                );
            }
        }
        app.run_until_stopped().await?;
        tracing::info!("server stopped");
        Ok(())
    })
}
