//! `moltbot-saas serve` (the default): the HTTP API until SIGINT/SIGTERM; on a first start, the
//! generated operator and gateway tokens are shown once, on the terminal only.

use tenant_store::access_tokens::TokenScope;

use super::console::CliResult;
use crate::settings::Settings;
use crate::startup::Application;

/// Runs the server.
pub fn run(settings: &Settings) -> CliResult {
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(settings)?;
        for generated in app.generated_tokens() {
            let (what, var) = match generated.scope {
                TokenScope::Operator => ("an operator token", "SAAS_ADMIN_TOKEN"),
                TokenScope::Gateway => ("a gateway token (for GET /config)", "SAAS_GATEWAY_TOKEN"),
            };
            // Shown once, on the terminal only, never through the log pipeline.
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
