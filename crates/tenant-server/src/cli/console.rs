//! What the commands share: their result type, JSON and raw text on standard output, a
//! password on standard input, and the audit actor of the command line.

use std::io::BufRead;

use tenant_core::Secret;
use tenant_store::audit::AuditContext;

/// What a subcommand returns.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Prints `value` as indented JSON on standard output.
#[allow(clippy::print_stdout)]
pub fn print_json<T: serde::Serialize>(value: &T) -> CliResult {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints `text` as it is on standard output.
#[allow(clippy::print_stdout)]
pub fn print_raw(text: &str) -> CliResult {
    print!("{text}");
    Ok(())
}

/// The audit context of a change made from the command line.
pub fn cli_actor() -> AuditContext {
    AuditContext {
        actor_type: "cli".into(),
        ..AuditContext::default()
    }
}

/// The first line of standard input, without its line ending. Passwords are read from standard
/// input, never from the command line, where other users of the host could read them.
pub fn password_from_stdin() -> Result<Secret, Box<dyn std::error::Error>> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(Secret::new(line.trim_end_matches(['\r', '\n']).to_owned()))
}
