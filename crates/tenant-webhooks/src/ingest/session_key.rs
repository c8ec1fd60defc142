//! Gateway session keys: `agent:<agentId>:<channel>:<accountId>:direct:<peerId>` and the
//! group, room and thread shapes, parsed into the parts attribution and sessions use; and the
//! agent id of every other key the gateway makes (`agent:<agentId>:main`, subagent, cron and
//! hook sessions), which names an agent but no channel peer.

/// A gateway session key, parsed: `agent:<agentId>:<channel>:<accountId>:direct:<peerId>`, or
/// `agent:<agentId>:<channel>:[<accountId>:]{direct|group|channel}:<id>[:thread:<id>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKey {
    /// The agent.
    pub agent_id: String,
    /// The channel kind.
    pub channel: String,
    /// The account, when the key names one.
    pub account_id: Option<String>,
    /// `direct`, `group` or `channel`.
    pub chat_type: String,
    /// The peer, group or room id.
    pub peer_id: String,
}

impl SessionKey {
    /// Parses a key; `None` when it has none of the shapes above.
    pub fn parse(key: &str) -> Option<Self> {
        if key.len() > 512 {
            return None;
        }
        let parts: Vec<&str> = key.split(':').collect();
        if parts.len() < 5 || parts[0] != "agent" || parts[1..].iter().any(|p| p.is_empty()) {
            return None;
        }
        let is_kind = |p: &str| matches!(p, "direct" | "group" | "channel");
        let (account, kind_at) = if is_kind(parts[3]) {
            (None, 3)
        } else {
            (Some(parts[3].to_owned()), 4)
        };
        let chat_type = *parts.get(kind_at)?;
        let peer = *parts.get(kind_at + 1)?;
        let rest = &parts[kind_at + 2..];
        if !is_kind(chat_type) || !(rest.is_empty() || (rest.len() == 2 && rest[0] == "thread")) {
            return None;
        }
        Some(Self {
            agent_id: parts[1].to_owned(),
            channel: parts[2].to_owned(),
            account_id: account,
            chat_type: chat_type.to_owned(),
            peer_id: peer.to_owned(),
        })
    }
}

/// The agent id of any gateway session key `agent:<agentId>:<rest>`: also of the keys with no
/// channel peer (`agent:<id>:main`, `agent:<id>:subagent:<uuid>`, cron and hook sessions),
/// which [`SessionKey::parse`] refuses. `None` unless the agent id is a gateway agent id
/// (`[a-z0-9_][a-z0-9_-]{0,63}`) followed by a non-empty rest, in at most 512 characters
/// without whitespace.
pub fn agent_of(key: &str) -> Option<&str> {
    if key.len() > 512 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (agent, rest) = key.strip_prefix("agent:")?.split_once(':')?;
    let valid = agent.len() <= 64
        && agent.bytes().next().is_some_and(|b| b != b'-')
        && agent
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    (valid && !rest.is_empty()).then_some(agent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agent_key_names_its_agent() {
        for (key, agent) in [
            ("agent:agent-0badcafe:main", "agent-0badcafe"),
            ("agent:agent-0badcafe:subagent:9f1c", "agent-0badcafe"),
            ("agent:ops:cron:nightly", "ops"),
            ("agent:a1:telegram:acc:dm:1", "a1"),
            ("agent:a1:telegram:acc1:direct:42", "a1"),
        ] {
            assert_eq!(agent_of(key), Some(agent), "{key}");
        }
        for bad in [
            "",
            "not-a-key",
            "agent:a1",
            "agent:a1:",
            "agent::main",
            "agent:-a:main",
            "agent:A1:main",
            "agent:a1:ma in",
            "user:a1:main",
        ] {
            assert_eq!(agent_of(bad), None, "{bad}");
        }
        assert_eq!(agent_of(&format!("agent:a:{}", "x".repeat(600))), None);
    }

    #[test]
    fn session_keys_of_every_shape_parse() {
        let k = SessionKey::parse("agent:a1:telegram:acc1:direct:42").unwrap();
        assert_eq!(
            (
                k.agent_id.as_str(),
                k.channel.as_str(),
                k.account_id.as_deref()
            ),
            ("a1", "telegram", Some("acc1"))
        );
        assert_eq!((k.chat_type.as_str(), k.peer_id.as_str()), ("direct", "42"));
        let g = SessionKey::parse("agent:a1:discord:group:g7").unwrap();
        assert_eq!((g.account_id, g.chat_type.as_str()), (None, "group"));
        assert!(SessionKey::parse("agent:a1:slack:acc:channel:c1:thread:t9").is_some());
        for bad in [
            "",
            "agent:a1",
            "agent:a1:main",
            "user:a1:telegram:acc:direct:1",
            "agent:a1:telegram:acc:dm:1",
            "agent::telegram:acc:direct:1",
            "agent:a1:telegram:acc:direct:1:extra",
        ] {
            assert!(SessionKey::parse(bad).is_none(), "{bad}");
        }
    }
}
