//! Channel credentials: a typed schema per channel kind, validation, merging and redaction.
//!
//! Each kind declares its fields once ([`ChannelKind::credential_fields`]); validation, the
//! redacted view shown by the API and the gateway config all follow that declaration, so a field
//! cannot be validated one way and rendered another. Field names are the gateway's own
//! (`botToken`, `token`, `appToken`, …).

use std::fmt;

use serde_json::{Map, Value};

use crate::channel_kind::ChannelKind;
use crate::error::reject_control_chars;
use crate::tenant::string_enum;
use crate::{Secret, ValidationError, ValidationErrors};

/// How a field's value is checked, and whether it is secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldRule {
    /// `<digits>:<letters, digits, '_' or '-'>` — a Telegram bot token.
    TelegramToken,
    /// Any token without whitespace.
    OpaqueSecret,
    /// An opaque secret with a fixed prefix (`xoxb-`, `xapp-`, …).
    PrefixedSecret(&'static str),
    /// Only digits (a numeric id), not secret.
    Digits,
    /// A phone number in E.164 form; kept secret because it is personal data.
    E164,
    /// The Slack connection mode, not secret.
    SlackMode,
}

impl FieldRule {
    fn is_secret(self) -> bool {
        !matches!(self, FieldRule::Digits | FieldRule::SlackMode)
    }

    fn check(self, v: &str) -> Result<(), (&'static str, String)> {
        const MAX: usize = 512;
        if v.is_empty() {
            return Err(("required", "must not be empty".into()));
        }
        if v.len() > MAX {
            return Err(("too_long", format!("must be at most {MAX} bytes")));
        }
        if v.chars().any(char::is_whitespace) {
            return Err(("invalid_format", "must not contain whitespace".into()));
        }
        let bad = |what: &str| Err(("invalid_format", what.to_owned()));
        match self {
            FieldRule::TelegramToken => {
                let ok = v.split_once(':').is_some_and(|(id, rest)| {
                    !id.is_empty()
                        && id.len() <= 20
                        && id.bytes().all(|b| b.is_ascii_digit())
                        && !rest.is_empty()
                        && rest
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                });
                if ok {
                    Ok(())
                } else {
                    bad("must look like `123456789:AA…` (a bot id, ':', the token)")
                }
            }
            FieldRule::OpaqueSecret => Ok(()),
            FieldRule::PrefixedSecret(prefix) => {
                if v.starts_with(prefix) && v.len() > prefix.len() {
                    Ok(())
                } else {
                    Err(("invalid_format", format!("must start with `{prefix}`")))
                }
            }
            FieldRule::Digits => {
                if v.len() <= 20 && v.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(())
                } else {
                    bad("must be a numeric id of at most 20 digits")
                }
            }
            FieldRule::E164 => {
                let digits = v.strip_prefix('+').unwrap_or("");
                let ok = (7..=15).contains(&digits.len())
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && !digits.starts_with('0');
                if ok {
                    Ok(())
                } else {
                    bad("must be a phone number in E.164 form, e.g. +15551234567")
                }
            }
            FieldRule::SlackMode => v
                .parse::<SlackMode>()
                .map(|_| ())
                .map_err(|e| ("invalid_value", e.message)),
        }
    }
}

/// One credential field of a channel kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FieldSpec {
    /// The field's name, in the API and in the gateway config.
    pub name: &'static str,
    pub rule: FieldRule,
}

string_enum!(
    /// How a Slack account connects: Socket Mode (needs an app token) or the Events API over HTTP
    /// (needs a signing secret).
    SlackMode, "credentials.mode" {
        /// Socket Mode, the default.
        Socket => "socket",
        /// HTTP Events API.
        Http => "http",
    }
);

/// A stored credential value: secret, or plain (ids and modes).
#[derive(Clone, PartialEq, Eq)]
pub enum CredentialValue {
    /// A value never shown again after it was set.
    Secret(Secret),
    /// A value that is not sensitive.
    Plain(String),
}

impl CredentialValue {
    /// The plain value, for encryption or the gateway config.
    pub fn expose(&self) -> &str {
        match self {
            CredentialValue::Secret(s) => s.expose(),
            CredentialValue::Plain(s) => s,
        }
    }

    /// Whether the value is secret.
    pub fn is_secret(&self) -> bool {
        matches!(self, CredentialValue::Secret(_))
    }
}

impl fmt::Debug for CredentialValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialValue::Secret(s) => s.fmt(f),
            CredentialValue::Plain(p) => f.debug_tuple("Plain").field(p).finish(),
        }
    }
}

/// What the API shows of one credential field: whether it is set and, for long secrets, the last
/// four characters. Plain fields (ids, modes) are shown in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialField {
    /// The field's name.
    pub name: &'static str,
    /// Whether the current configuration needs the field.
    pub required: bool,
    /// Whether a value is stored.
    pub set: bool,
    /// The last four characters of a secret long enough for that to be harmless.
    pub last4: Option<String>,
    /// The whole value of a non-secret field.
    pub value: Option<String>,
}

/// The credentials of one channel; possibly incomplete (a channel awaiting credentials).
///
/// `Debug` redacts every secret; there is no `Display` or `Serialize`. The stored form is produced
/// only by [`Credentials::expose_json`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    kind: ChannelKind,
    values: Fields,
}

/// The set fields, sorted by name: a kind has at most five fields and a channel usually one or
/// two, so a sorted slice of exactly that many beats a `BTreeMap`, whose every node holds eleven
/// slots (about 0.5 KiB a channel, most of a 100k-tenant document's input, read by the config
/// renderer for every channel).
#[derive(Clone, Default, PartialEq, Eq)]
struct Fields(Box<[(&'static str, CredentialValue)]>);

impl Fields {
    fn position(fields: &[(&'static str, CredentialValue)], name: &str) -> Result<usize, usize> {
        fields.binary_search_by(|(k, _)| (*k).cmp(name))
    }

    fn get(&self, name: &str) -> Option<&CredentialValue> {
        let i = Self::position(&self.0, name).ok()?;
        self.0.get(i).map(|(_, v)| v)
    }

    fn contains_key(&self, name: &str) -> bool {
        Self::position(&self.0, name).is_ok()
    }

    /// Sets `name` to `value`, replacing a value set before.
    fn insert(&mut self, name: &'static str, value: CredentialValue) {
        let mut all = std::mem::take(&mut self.0).into_vec();
        match Self::position(&all, name) {
            Ok(i) => {
                if let Some(slot) = all.get_mut(i) {
                    slot.1 = value;
                }
            }
            Err(i) => all.insert(i, (name, value)),
        }
        self.0 = all.into_boxed_slice();
    }

    fn remove(&mut self, name: &str) {
        if self.contains_key(name) {
            let all = std::mem::take(&mut self.0).into_vec();
            self.0 = all.into_iter().filter(|(k, _)| *k != name).collect();
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&'static str, &CredentialValue)> + '_ {
        self.0.iter().map(|(k, v)| (*k, v))
    }

    fn into_fields(self) -> impl Iterator<Item = (&'static str, CredentialValue)> {
        self.0.into_vec().into_iter()
    }
}

impl fmt::Debug for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// A change to credentials: fields to set and fields to clear (`null` in the request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialsPatch {
    set: Credentials,
    clear: Vec<&'static str>,
}

impl Credentials {
    /// No fields set.
    pub fn empty(kind: ChannelKind) -> Self {
        Self {
            kind,
            values: Fields::default(),
        }
    }

    /// The channel kind these credentials belong to.
    pub fn kind(&self) -> ChannelKind {
        self.kind
    }

    /// Validates a JSON object from a request. Every problem is reported under `credentials.<field>`.
    pub fn parse(kind: ChannelKind, value: &Value) -> Result<Self, ValidationErrors> {
        let patch = CredentialsPatch::parse(kind, value)?;
        if let Some(field) = patch.clear.first() {
            return Err(ValidationError::new(
                format!("credentials.{field}"),
                "invalid_type",
                "must be a string",
            )
            .into());
        }
        Ok(patch.set)
    }

    /// Reads the stored form written by [`Credentials::expose_json`].
    pub fn from_json_str(kind: ChannelKind, stored: &str) -> Result<Self, ValidationErrors> {
        let value: Value = serde_json::from_str(stored).map_err(|_| {
            ValidationErrors::from(ValidationError::new(
                "credentials",
                "invalid_json",
                "stored credentials are not a JSON object",
            ))
        })?;
        Self::parse(kind, &value)
    }

    /// The stored form: a JSON object with every value in plain text. Only encryption at rest and
    /// the gateway config renderer may call this.
    pub fn expose_json(&self) -> String {
        let map: Map<String, Value> = self
            .values
            .iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v.expose().to_owned())))
            .collect();
        Value::Object(map).to_string()
    }

    /// A field's value, if set.
    pub fn get(&self, name: &str) -> Option<&CredentialValue> {
        self.values.get(name)
    }

    /// The set fields, in the kind's declaration order.
    pub fn fields(&self) -> impl Iterator<Item = (&'static str, &CredentialValue)> + '_ {
        self.kind
            .credential_specs()
            .iter()
            .filter_map(|spec| self.values.get(spec.name).map(|v| (spec.name, v)))
    }

    /// The Slack mode in effect (`socket` unless set); `None` for other kinds.
    pub fn slack_mode(&self) -> Option<SlackMode> {
        (self.kind == ChannelKind::Slack).then(|| {
            self.values
                .get("mode")
                .and_then(|v| v.expose().parse().ok())
                .unwrap_or(SlackMode::Socket)
        })
    }

    /// The fields the current configuration needs, in declaration order.
    pub fn required_fields(&self) -> Vec<&'static str> {
        self.required().to_vec()
    }

    /// [`Credentials::required_fields`] without allocating.
    fn required(&self) -> &'static [&'static str] {
        match self.kind {
            ChannelKind::Telegram => &["botToken"],
            ChannelKind::Discord => &["token"],
            ChannelKind::Slack => match self.slack_mode() {
                Some(SlackMode::Http) => &["botToken", "signingSecret"],
                _ => &["botToken", "appToken"],
            },
            ChannelKind::Whatsapp => &[],
            ChannelKind::Signal => &["account"],
        }
    }

    /// Required fields that are not set; empty when the channel can be served.
    pub fn missing_fields(&self) -> Vec<&'static str> {
        self.required()
            .iter()
            .copied()
            .filter(|f| !self.values.contains_key(f))
            .collect()
    }

    /// Whether every required field is set (what `missing_fields().is_empty()` says, without
    /// allocating: the gateway config renderer asks this of every channel).
    pub fn is_complete(&self) -> bool {
        self.required().iter().all(|f| self.values.contains_key(f))
    }

    /// The redacted view of every field of the kind, for API responses.
    pub fn describe(&self) -> Vec<CredentialField> {
        let required = self.required_fields();
        self.kind
            .credential_specs()
            .iter()
            .map(|spec| {
                let value = self.values.get(spec.name);
                CredentialField {
                    name: spec.name,
                    required: required.contains(&spec.name),
                    set: value.is_some(),
                    last4: match value {
                        Some(CredentialValue::Secret(s)) => s.last4(),
                        _ => None,
                    },
                    value: match value {
                        Some(CredentialValue::Plain(p)) => Some(p.clone()),
                        _ => None,
                    },
                }
            })
            .collect()
    }

    /// Applies a patch: its set fields replace, its cleared fields are removed.
    pub fn apply(&mut self, patch: CredentialsPatch) {
        for f in patch.clear {
            self.values.remove(f);
        }
        for (name, value) in patch.set.values.into_fields() {
            self.values.insert(name, value);
        }
    }
}

impl CredentialsPatch {
    /// Validates a JSON object from a request: string values set a field, `null` clears it.
    pub fn parse(kind: ChannelKind, value: &Value) -> Result<Self, ValidationErrors> {
        let Some(obj) = value.as_object() else {
            return Err(ValidationError::new(
                "credentials",
                "invalid_type",
                "must be a JSON object",
            )
            .into());
        };
        let specs = kind.credential_specs();
        let mut errors = ValidationErrors::default();
        let mut set = Credentials::empty(kind);
        let mut clear = Vec::new();
        for (key, raw) in obj {
            let field = format!("credentials.{key}");
            let Some(spec) = specs.iter().find(|s| s.name == key) else {
                let expected: Vec<_> = specs.iter().map(|s| s.name).collect();
                let message = if expected.is_empty() {
                    format!(
                        "is not a {kind} credential; {kind} takes none (it is linked on the gateway host)"
                    )
                } else {
                    format!(
                        "is not a {kind} credential; expected one of: {}",
                        expected.join(", ")
                    )
                };
                errors.push(ValidationError::new(field, "unknown_field", message));
                continue;
            };
            match raw {
                Value::Null => clear.push(spec.name),
                Value::String(s) => {
                    let checked = reject_control_chars(&field, s).and_then(|()| {
                        spec.rule
                            .check(s)
                            .map_err(|(code, msg)| ValidationError::new(field.clone(), code, msg))
                    });
                    if errors.check(checked).is_some() {
                        let v = if spec.rule.is_secret() {
                            CredentialValue::Secret(Secret::new(s.as_str()))
                        } else {
                            CredentialValue::Plain(s.clone())
                        };
                        set.values.insert(spec.name, v);
                    }
                }
                _ => errors.push(ValidationError::new(
                    field,
                    "invalid_type",
                    "must be a string",
                )),
            }
        }
        errors.into_result().map(|()| Self { set, clear })
    }
}

impl ChannelKind {
    /// The credential fields this kind accepts, in a stable order.
    pub(crate) fn credential_specs(self) -> &'static [FieldSpec] {
        const fn f(name: &'static str, rule: FieldRule) -> FieldSpec {
            FieldSpec { name, rule }
        }
        const TELEGRAM: &[FieldSpec] = &[f("botToken", FieldRule::TelegramToken)];
        const DISCORD: &[FieldSpec] = &[
            f("token", FieldRule::OpaqueSecret),
            f("applicationId", FieldRule::Digits),
        ];
        const SLACK: &[FieldSpec] = &[
            f("mode", FieldRule::SlackMode),
            f("botToken", FieldRule::PrefixedSecret("xoxb-")),
            f("appToken", FieldRule::PrefixedSecret("xapp-")),
            f("signingSecret", FieldRule::OpaqueSecret),
            f("userToken", FieldRule::PrefixedSecret("xoxp-")),
        ];
        const SIGNAL: &[FieldSpec] = &[f("account", FieldRule::E164)];
        match self {
            ChannelKind::Telegram => TELEGRAM,
            ChannelKind::Discord => DISCORD,
            ChannelKind::Slack => SLACK,
            ChannelKind::Whatsapp => &[],
            ChannelKind::Signal => SIGNAL,
        }
    }

    /// The names of the credential fields this kind accepts.
    pub fn credential_fields(self) -> Vec<&'static str> {
        self.credential_specs().iter().map(|s| s.name).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn codes(e: &ValidationErrors) -> Vec<(String, &'static str)> {
        e.0.iter().map(|e| (e.field.clone(), e.code)).collect()
    }

    #[test]
    fn telegram_token_is_validated() {
        let c = Credentials::parse(
            ChannelKind::Telegram,
            &json!({"botToken": "123456:AAbb-cc_dd"}),
        )
        .unwrap();
        assert!(c.is_complete());
        let e = Credentials::parse(ChannelKind::Telegram, &json!({"botToken": "no-colon"}))
            .unwrap_err();
        assert_eq!(
            codes(&e),
            [("credentials.botToken".into(), "invalid_format")]
        );
        let e = Credentials::parse(ChannelKind::Telegram, &json!({"botToken": 5})).unwrap_err();
        assert_eq!(codes(&e), [("credentials.botToken".into(), "invalid_type")]);
    }

    #[test]
    fn unknown_fields_name_the_expected_ones() {
        let e = Credentials::parse(ChannelKind::Discord, &json!({"botToken": "x"})).unwrap_err();
        assert_eq!(e.0[0].code, "unknown_field");
        assert!(e.0[0].message.contains("token"), "{}", e.0[0].message);
        let e = Credentials::parse(ChannelKind::Whatsapp, &json!({"token": "x"})).unwrap_err();
        assert_eq!(e.0[0].field, "credentials.token");
    }

    #[test]
    fn slack_requirements_follow_the_mode() {
        let socket =
            Credentials::parse(ChannelKind::Slack, &json!({"botToken": "xoxb-1"})).unwrap();
        assert_eq!(socket.missing_fields(), ["appToken"]);
        let http = Credentials::parse(
            ChannelKind::Slack,
            &json!({"mode": "http", "botToken": "xoxb-1", "signingSecret": "abc123"}),
        )
        .unwrap();
        assert!(http.is_complete());
        assert_eq!(http.slack_mode(), Some(SlackMode::Http));
        let e = Credentials::parse(ChannelKind::Slack, &json!({"mode": "rtm"})).unwrap_err();
        assert_eq!(e.0[0].code, "invalid_value");
        let e =
            Credentials::parse(ChannelKind::Slack, &json!({"appToken": "xoxb-wrong"})).unwrap_err();
        assert_eq!(e.0[0].field, "credentials.appToken");
    }

    #[test]
    fn signal_account_is_e164() {
        assert!(
            Credentials::parse(ChannelKind::Signal, &json!({"account": "+15551234567"})).is_ok()
        );
        for bad in ["15551234567", "+0555123", "+1555", "+1555abc4567"] {
            assert!(
                Credentials::parse(ChannelKind::Signal, &json!({"account": bad})).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn is_complete_agrees_with_missing_fields() {
        let cases = [
            (ChannelKind::Telegram, json!({})),
            (ChannelKind::Telegram, json!({"botToken": "1:a"})),
            (ChannelKind::Discord, json!({"applicationId": "1"})),
            (ChannelKind::Discord, json!({"token": "t"})),
            (ChannelKind::Slack, json!({"botToken": "xoxb-1"})),
            (
                ChannelKind::Slack,
                json!({"botToken": "xoxb-1", "appToken": "xapp-1"}),
            ),
            (
                ChannelKind::Slack,
                json!({"mode": "http", "botToken": "xoxb-1", "appToken": "xapp-1"}),
            ),
            (
                ChannelKind::Slack,
                json!({"mode": "http", "botToken": "xoxb-1", "signingSecret": "s"}),
            ),
            (
                ChannelKind::Slack,
                json!({"mode": "socket", "signingSecret": "s"}),
            ),
            (ChannelKind::Whatsapp, json!({})),
            (ChannelKind::Signal, json!({})),
            (ChannelKind::Signal, json!({"account": "+15551234567"})),
        ];
        for (kind, v) in cases {
            let c = Credentials::parse(kind, &v).unwrap();
            assert_eq!(c.is_complete(), c.missing_fields().is_empty(), "{kind} {v}");
            assert!(
                c.missing_fields()
                    .iter()
                    .all(|f| c.required_fields().contains(f))
            );
        }
    }

    #[test]
    fn whatsapp_needs_nothing() {
        let c = Credentials::parse(ChannelKind::Whatsapp, &json!({})).unwrap();
        assert!(c.is_complete());
    }

    #[test]
    fn describe_redacts_secrets() {
        let c = Credentials::parse(
            ChannelKind::Discord,
            &json!({"token": "FAKE.discord.token.abcdefgh", "applicationId": "900000001"}),
        )
        .unwrap();
        let d = c.describe();
        let token = d.iter().find(|f| f.name == "token").unwrap();
        assert!(token.set && token.required && token.value.is_none());
        assert_eq!(token.last4.as_deref(), Some("efgh"));
        let app = d.iter().find(|f| f.name == "applicationId").unwrap();
        assert_eq!(app.value.as_deref(), Some("900000001"));
        assert!(!format!("{c:?}").contains("abcdefgh"));
    }

    #[test]
    fn patch_sets_and_clears() {
        let mut c = Credentials::parse(
            ChannelKind::Slack,
            &json!({"botToken": "xoxb-1", "appToken": "xapp-1"}),
        )
        .unwrap();
        let p = CredentialsPatch::parse(
            ChannelKind::Slack,
            &json!({"appToken": null, "mode": "http", "signingSecret": "s3"}),
        )
        .unwrap();
        c.apply(p);
        assert!(c.get("appToken").is_none());
        assert!(c.is_complete());
        // A set field is replaced, the others stay; the order fields were set in never matters.
        let p =
            CredentialsPatch::parse(ChannelKind::Slack, &json!({"botToken": "xoxb-2"})).unwrap();
        c.apply(p);
        assert_eq!(
            c.get("botToken").map(CredentialValue::expose),
            Some("xoxb-2")
        );
        let same = Credentials::parse(
            ChannelKind::Slack,
            &json!({"signingSecret": "s3", "botToken": "xoxb-2", "mode": "http"}),
        )
        .unwrap();
        assert_eq!(c, same);
        assert_eq!(
            c.expose_json(),
            r#"{"botToken":"xoxb-2","mode":"http","signingSecret":"s3"}"#
        );
        let names: Vec<_> = c.fields().map(|(name, _)| name).collect();
        assert_eq!(
            names,
            ["mode", "botToken", "signingSecret"],
            "declaration order"
        );
    }

    #[test]
    fn stored_form_round_trips() {
        let c = Credentials::parse(ChannelKind::Telegram, &json!({"botToken": "1:abc"})).unwrap();
        let stored = c.expose_json();
        assert_eq!(
            Credentials::from_json_str(ChannelKind::Telegram, &stored).unwrap(),
            c
        );
    }
}
