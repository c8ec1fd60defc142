//! One channel account as the gateway wants it: which fields each kind carries, and how secret
//! values are written in each secrets mode.
//!
//! Field names and shapes are the ones the real gateway's validator accepts in both dialects
//! (openclaw 2026.7.35 and 2026.9.6): telegram `botToken`; discord `token`, `applicationId`;
//! slack an explicit `mode`, `botToken`, then `appToken` (socket) or `signingSecret` and a
//! per-account `webhookPath` (http), and `userToken`; whatsapp only `authDir`; signal `account`.
//! Signal's transport is left to the gateway's default (its shape differs between the dialects).

use tenant_core::{AccountId, Channel, ChannelKind, SlackMode, Tenant};

use crate::json::Writer;
use crate::{RenderOptions, SecretsMode};

/// The environment variable that carries one secret credential in the `env` and `secret-ref`
/// modes: `<KIND>_<FIELD>_<ACCOUNT>` in upper snake case, e.g.
/// `TELEGRAM_BOT_TOKEN_TENANT_0BADCAFE` or `SLACK_SIGNING_SECRET_TENANT_0BADCAFE`. Names are
/// stable for as long as the tenant exists and match `^[A-Z][A-Z0-9_]{0,127}$`.
pub fn env_var_name(kind: ChannelKind, field: &str, account: &AccountId) -> String {
    let mut name = String::with_capacity(48);
    push_env_var_name(&mut name, kind, field, account.as_str());
    name
}

fn push_env_var_name(out: &mut String, kind: ChannelKind, field: &str, account: &str) {
    out.extend(kind.as_str().chars().map(|c| c.to_ascii_uppercase()));
    out.push('_');
    for c in field.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out.push('_');
    out.extend(account.chars().map(|c| match c {
        '-' => '_',
        c => c.to_ascii_uppercase(),
    }));
}

/// Whether the gateway takes a SecretRef object in this field (signal's `account` is a plain
/// string in its schema, so it gets a `${VAR}` reference instead).
fn accepts_secret_ref(kind: ChannelKind, field: &str) -> bool {
    !(kind == ChannelKind::Signal && field == "account")
}

#[derive(Clone, Copy)]
enum Field<'a> {
    /// Not sensitive: written as is.
    Plain(&'a str),
    /// A credential, written according to the secrets mode.
    Secret(&'a str),
    /// `<root>/<id><suffix>`.
    Path(&'a str, &'a str, &'static str),
}

/// An account's fields, collected on the stack (no kind has more than eight).
struct Fields<'a> {
    items: [(&'static str, Field<'a>); 8],
    len: usize,
}

impl Default for Fields<'_> {
    fn default() -> Self {
        Self {
            items: [("", Field::Plain("")); 8],
            len: 0,
        }
    }
}

impl<'a> Fields<'a> {
    fn add(&mut self, key: &'static str, field: Field<'a>) {
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (key, field);
            self.len += 1;
        }
    }

    fn sorted(&mut self) -> &[(&'static str, Field<'a>)] {
        let items = &mut self.items[..self.len];
        items.sort_unstable_by(|a, b| a.0.cmp(b.0));
        items
    }
}

/// The environment file of the `env` and `secret-ref` modes: `KEY=value` lines that POSIX `sh`
/// (`set -a; . FILE`) and systemd's `EnvironmentFile=` read back exactly.
pub(crate) struct EnvFile {
    pub text: String,
}

impl EnvFile {
    pub(crate) const HEADER: &'static str =
        "# OpenClaw gateway credentials rendered by moltbot-saas. Secret: keep it mode 0600.\n";

    /// A file with its header, written into `text` (cleared first, its memory reused).
    pub(crate) fn into(mut text: String, capacity: usize) -> Self {
        text.clear();
        text.reserve(capacity + Self::HEADER.len());
        text.push_str(Self::HEADER);
        Self { text }
    }

    /// Appends `NAME=value`, quoted for `sh` when needed.
    pub(crate) fn push(&mut self, name: &str, value: &str) {
        self.text.push_str(name);
        self.text.push('=');
        let bare = !value.is_empty()
            && value.bytes().all(|b| {
                b.is_ascii_alphanumeric()
                    || matches!(b, b'_' | b'-' | b'.' | b':' | b'+' | b'/' | b'@' | b',')
            });
        if bare {
            self.text.push_str(value);
        } else {
            self.text.push('\'');
            for part in value.split('\'').enumerate() {
                if part.0 > 0 {
                    self.text.push_str("'\\''");
                }
                self.text.push_str(part.1);
            }
            self.text.push('\'');
        }
        self.text.push('\n');
    }
}

/// Writes `channels.<kind>.accounts.<accountId>`'s value: the account's fields in name order.
/// With `env`, the secrets it refers to (`env` and `secret-ref` modes) are added to it.
pub(crate) fn write_account(
    w: &mut Writer,
    mut env: Option<&mut EnvFile>,
    var: &mut String,
    tenant: &Tenant,
    channel: &Channel,
    opts: &RenderOptions,
) {
    let kind = channel.kind;
    let account = tenant.account_id.as_str();
    let name = channel
        .display_name
        .as_ref()
        .map_or(tenant.name.as_str(), |d| d.as_str());

    let mut fields = Fields::default();
    let mut add = |key: &'static str, f| fields.add(key, f);
    add("name", Field::Plain(name));
    let slack_mode = channel.credentials.slack_mode();
    for (key, value) in channel.credentials.fields() {
        let wanted = match (slack_mode, key) {
            (Some(SlackMode::Http), "appToken") | (Some(SlackMode::Socket), "signingSecret") => {
                false
            }
            // Written below from `slack_mode()`, so it is explicit even when never stored.
            (Some(_), "mode") => false,
            _ => true,
        };
        if wanted {
            let f = if value.is_secret() {
                Field::Secret(value.expose())
            } else {
                Field::Plain(value.expose())
            };
            add(key, f);
        }
    }
    match (kind, slack_mode) {
        (ChannelKind::Slack, Some(mode)) => {
            add("mode", Field::Plain(mode.as_str()));
            if mode == SlackMode::Http {
                add("webhookPath", Field::Path("/slack/events", account, ""));
            }
        }
        (ChannelKind::Whatsapp, _) => {
            add(
                "authDir",
                Field::Path(&opts.whatsapp_auth_root, account, ""),
            );
        }
        _ => {}
    }
    let fields = fields.sorted();

    w.begin_object();
    for &(key, field) in fields.iter() {
        w.key_raw(key);
        match field {
            Field::Plain(v) => w.literal(v),
            Field::Path(root, id, suffix) => {
                w.open_quote();
                w.literal_part(root);
                w.literal_part("/");
                w.literal_part(id);
                w.literal_part(suffix);
                w.close_quote();
            }
            Field::Secret(v) => match opts.secrets {
                SecretsMode::Env | SecretsMode::SecretRef => {
                    var.clear();
                    push_env_var_name(var, kind, key, account);
                    // A caller that does not keep the env file (the served document) passes
                    // none; the document refers to the variable all the same.
                    if let Some(env) = env.as_deref_mut() {
                        env.push(var, v);
                    }
                    if opts.secrets == SecretsMode::SecretRef && accepts_secret_ref(kind, key) {
                        w.begin_object();
                        w.field_plain("id", var);
                        w.field_plain("provider", "default");
                        w.field_plain("source", "env");
                        w.end_object();
                    } else {
                        w.env_reference(var);
                    }
                }
                SecretsMode::Inline => w.literal(v),
            },
        }
    }
    w.end_object();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names_are_upper_snake() {
        let account = AccountId::parse("tenant-0badcafe").unwrap();
        assert_eq!(
            env_var_name(ChannelKind::Telegram, "botToken", &account),
            "TELEGRAM_BOT_TOKEN_TENANT_0BADCAFE"
        );
        assert_eq!(
            env_var_name(ChannelKind::Slack, "signingSecret", &account),
            "SLACK_SIGNING_SECRET_TENANT_0BADCAFE"
        );
        for kind in ChannelKind::ALL {
            for field in kind.credential_fields() {
                let name = env_var_name(*kind, field, &account);
                let b = name.as_bytes();
                assert!(b[0].is_ascii_uppercase() && b.len() <= 128, "{name}");
                assert!(
                    b.iter()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_'),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn env_file_values_read_back_in_sh() {
        let mut env = EnvFile::into(String::new(), 0);
        env.push("A", "123:abc-DEF_x.y");
        env.push("B", "it's $HOME \"q\" `x` #c");
        env.push("C", "");
        let body = env.text.strip_prefix(EnvFile::HEADER).unwrap();
        assert_eq!(
            body,
            "A=123:abc-DEF_x.y\nB='it'\\''s $HOME \"q\" `x` #c'\nC=''\n"
        );
    }
}
