// The events built from hook calls: ids, attribution fields, content and size limits.

import assert from "node:assert/strict";
import { test } from "node:test";

import { agentIdFromSessionKey, buildEvent, epochMillis, serialize } from "../lib/events.js";

const KEY = "agent:agent-0badcafe:telegram:tenant-0badcafe:direct:4242";
const NOW = Date.parse("2026-12-05T10:00:00.000Z");
const opts = { includeContent: true, now: NOW };

// What openclaw 2026.9.6 passes for `openclaw gateway call chat.send` (observed).
const webchatReceived = {
  event: {
    from: "",
    content: "hello",
    messageId: "t-1",
    senderId: "cli",
    sessionKey: KEY,
    metadata: { provider: "webchat", surface: "webchat", originatingChannel: "webchat", messageId: "t-1", senderId: "cli" },
  },
  ctx: { channelId: "webchat", conversationId: KEY, sessionKey: KEY, messageId: "t-1", senderId: "cli" },
};

test("message_received: attribution fields, text, and an id stable across deliveries", () => {
  const { event, ctx } = webchatReceived;
  const e = buildEvent("message_received", event, ctx, opts);
  assert.equal(e.type, "message.received");
  assert.equal(e.sessionKey, KEY);
  assert.equal(e.agentId, "agent-0badcafe");
  assert.equal(e.accountId, undefined, "the webchat path has no account id");
  assert.equal(e.channel, "webchat");
  assert.equal(e.timestamp, "2026-12-05T10:00:00.000Z", "no channel timestamp: when recorded");
  assert.deepEqual(e.data, {
    messageId: "t-1",
    conversationId: KEY,
    senderId: "cli",
    surface: "webchat",
    text: "hello",
  });
  assert.match(e.id, /^openclaw:message\.received:[0-9a-f]{40}$/);
  // The same message delivered again, later, by another registration: the same id.
  const again = buildEvent("message_received", structuredClone(event), structuredClone(ctx), { ...opts, now: NOW + 5000 });
  assert.equal(again.id, e.id);
  // Another message id, or the same id in another conversation: another event.
  const other = buildEvent("message_received", { ...event, messageId: "t-2" }, { ...ctx, messageId: "t-2" }, opts);
  assert.notEqual(other.id, e.id);
  const elsewhere = buildEvent("message_received", event, { ...ctx, conversationId: "agent:agent-0badcafe:telegram:tenant-0badcafe:direct:1" }, opts);
  assert.notEqual(elsewhere.id, e.id);
});

test("message_received from a channel: account id, channel timestamp in seconds or ms", () => {
  const ctx = { channelId: "Telegram", accountId: "tenant-0badcafe", conversationId: "telegram:4242", messageId: "77", senderId: "4242" };
  const event = { from: "telegram:4242", content: "hi", timestamp: 1796464800, messageId: "77", senderId: "4242", sessionKey: KEY, metadata: { senderName: "Ann" } };
  const e = buildEvent("message_received", event, ctx, opts);
  assert.equal(e.accountId, "tenant-0badcafe");
  assert.equal(e.channel, "telegram", "lowercased");
  assert.equal(e.timestamp, new Date(1796464800 * 1000).toISOString());
  assert.equal(e.data.senderName, "Ann");
  const ms = buildEvent("message_received", { ...event, timestamp: 1796464800123 }, ctx, opts);
  assert.equal(ms.timestamp, new Date(1796464800123).toISOString());
  assert.equal(ms.id, e.id, "the id does not depend on the timestamp when there is a message id");
});

test("without a message id: the timestamp and text decide; without either the id is random", () => {
  const ctx = { channelId: "slack", accountId: "tenant-1", conversationId: "C1" };
  const a = buildEvent("message_received", { content: "x", timestamp: 1796464800000, senderId: "U1" }, ctx, opts);
  const b = buildEvent("message_received", { content: "x", timestamp: 1796464800000, senderId: "U1" }, ctx, opts);
  const c = buildEvent("message_received", { content: "y", timestamp: 1796464800000, senderId: "U1" }, ctx, opts);
  assert.equal(a.id, b.id);
  assert.notEqual(a.id, c.id);
  const r1 = buildEvent("message_received", { content: "x" }, ctx, opts);
  const r2 = buildEvent("message_received", { content: "x" }, ctx, opts);
  assert.match(r1.id, /^openclaw:message\.received:r-/);
  assert.notEqual(r1.id, r2.id);
});

test("includeContent false leaves the text out, and only the text", () => {
  const { event, ctx } = webchatReceived;
  const e = buildEvent("message_received", event, ctx, { ...opts, includeContent: false });
  assert.equal(e.data.text, undefined);
  assert.equal(e.data.messageId, "t-1");
  const sent = buildEvent("message_sent", { to: "4242", content: "secret reply", success: true, messageId: "9" }, { channelId: "telegram", accountId: "tenant-1", conversationId: "4242" }, { ...opts, includeContent: false });
  assert.equal(sent.data.text, undefined);
  assert.equal(JSON.stringify(sent).includes("secret reply"), false);
});

test("message_sent: Telegram's has no session key, only the account and conversation", () => {
  const ctx = { channelId: "telegram", accountId: "tenant-0badcafe", conversationId: "4242" };
  const e = buildEvent("message_sent", { to: "4242", content: "pong", success: true, messageId: "101" }, ctx, opts);
  assert.equal(e.type, "message.sent");
  assert.equal(e.sessionKey, undefined);
  assert.equal(e.agentId, undefined);
  assert.equal(e.accountId, "tenant-0badcafe");
  assert.equal(e.channel, "telegram");
  assert.deepEqual(e.data, { messageId: "101", conversationId: "4242", to: "4242", success: true, text: "pong" });
  assert.equal(buildEvent("message_sent", { to: "4242", content: "pong", success: true, messageId: "101" }, ctx, opts).id, e.id);
  const failed = buildEvent("message_sent", { to: "4242", content: "pong", success: false, error: "x".repeat(5000) }, ctx, opts);
  assert.equal(failed.data.success, false);
  assert.equal(failed.data.error.length, 1000);
  assert.match(failed.id, /:r-/);
});

test("session_start and session_end: agent id from the context, ids per session and per end", () => {
  const ctx = { sessionId: "s-1", sessionKey: KEY, agentId: "agent-0badcafe" };
  const s = buildEvent("session_start", { sessionId: "s-1", sessionKey: KEY }, ctx, opts);
  assert.equal(s.type, "session.started");
  assert.equal(s.agentId, "agent-0badcafe");
  assert.deepEqual(s.data, { sessionId: "s-1" });
  assert.equal(buildEvent("session_start", { sessionId: "s-1", sessionKey: KEY }, ctx, opts).id, s.id);
  assert.notEqual(buildEvent("session_start", { sessionId: "s-2", sessionKey: KEY }, ctx, opts).id, s.id);
  const end = { sessionId: "s-1", sessionKey: KEY, messageCount: 3, durationMs: 1200, reason: "shutdown" };
  const e1 = buildEvent("session_end", end, ctx, opts);
  assert.equal(e1.type, "session.ended");
  assert.deepEqual(e1.data, { sessionId: "s-1", reason: "shutdown", messageCount: 3, durationMs: 1200 });
  assert.equal(buildEvent("session_end", { ...end }, ctx, opts).id, e1.id, "one end reported twice");
  assert.notEqual(buildEvent("session_end", { ...end, reason: "idle", durationMs: 9000 }, ctx, opts).id, e1.id, "a later end of a resumed session");
  // Without the context's agent id, the key's.
  assert.equal(buildEvent("session_start", { sessionId: "s-1", sessionKey: KEY }, {}, opts).agentId, "agent-0badcafe");
});

test("unknown hooks give nothing; garbage gives an event without throwing", () => {
  assert.equal(buildEvent("before_tool_call", {}, {}, opts), undefined);
  const e = buildEvent("message_received", null, undefined, opts);
  assert.equal(e.type, "message.received");
  assert.equal(buildEvent("session_end", { messageCount: "x", durationMs: NaN }, 7, opts).data.messageCount, undefined);
});

test("agent ids come from session keys of every shape", () => {
  assert.equal(agentIdFromSessionKey(KEY), "agent-0badcafe");
  assert.equal(agentIdFromSessionKey("agent:ops:main"), "ops");
  assert.equal(agentIdFromSessionKey("agent:agent-1:subagent:abc"), "agent-1");
  for (const bad of [undefined, "", "main", "agent:", "agent::x", "agent:a", "user:a:b"]) {
    assert.equal(agentIdFromSessionKey(bad), undefined, String(bad));
  }
});

test("timestamps: seconds and milliseconds, nothing implausible", () => {
  assert.equal(epochMillis(1796464800), 1796464800000);
  assert.equal(epochMillis(1796464800123), 1796464800123);
  assert.equal(epochMillis("1796464800"), 1796464800000);
  for (const bad of [0, -1, 12345, 1e20, NaN, "soon", null]) assert.equal(epochMillis(bad), undefined, String(bad));
});

test("serialize cuts a text that does not fit, never a character in half", () => {
  const { event, ctx } = webchatReceived;
  const small = buildEvent("message_received", event, ctx, opts);
  assert.equal(serialize(small, 4096), JSON.stringify(small) + "\n");
  const big = buildEvent("message_received", { ...event, content: "😀é\"".repeat(5000) }, ctx, opts);
  const line = serialize(big, 2048);
  assert.ok(Buffer.byteLength(line) <= 2048, `${Buffer.byteLength(line)} bytes`);
  assert.ok(line.endsWith("\n"));
  const back = JSON.parse(line);
  assert.equal(back.data.textTruncated, true);
  assert.ok(back.data.text.length > 100, "keeps what fits");
  assert.ok(big.data.text.startsWith(back.data.text));
  assert.ok(!/[\uD800-\uDBFF]$/.test(back.data.text), "no lone high surrogate");
  // Nothing to cut: too large without text, dropped.
  const huge = buildEvent("message_received", { ...event, sessionKey: undefined }, { ...ctx, senderId: undefined }, { ...opts, includeContent: false });
  assert.equal(serialize(huge, 50), undefined);
});
