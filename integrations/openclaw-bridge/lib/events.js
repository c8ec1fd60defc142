// events.js - what the gateway's hooks tell us, as the control plane's `POST /events` body:
// {id, type, sessionKey?, accountId?, agentId?, channel?, timestamp, data}.
//
// Each event gets a deterministic id built from fields that do not change when the gateway
// delivers the same thing twice (it is known to run one inbound message's hooks twice at times),
// so the control plane's idempotent ingest stores it once. Message hooks carry no agent id: it
// is parsed from the session key (`agent:<agentId>:...`).

import { createHash, randomUUID } from "node:crypto";

/** Longest identifier-like string kept (ids, names, session keys); longer ones are cut. */
const MAX_FIELD = 512;
/** Longest error text kept from a failed delivery. */
const MAX_ERROR = 1000;

/** The hooks the bridge listens to, and the event type each becomes. */
export const HOOK_TYPES = Object.freeze({
  message_received: "message.received",
  message_sent: "message.sent",
  session_start: "session.started",
  session_end: "session.ended",
});

function str(v, max = MAX_FIELD) {
  if (typeof v === "number" && Number.isFinite(v)) v = String(v);
  if (typeof v !== "string") return undefined;
  const t = v.trim();
  if (t === "") return undefined;
  return t.length > max ? t.slice(0, max) : t;
}

function int(v) {
  return typeof v === "number" && Number.isFinite(v) ? Math.trunc(v) : undefined;
}

/** The agent id of a session key `agent:<agentId>:...`, or undefined. */
export function agentIdFromSessionKey(key) {
  if (typeof key !== "string") return undefined;
  const m = /^agent:([^:\s]+):\S/.exec(key);
  return m ? m[1] : undefined;
}

/**
 * A timestamp the gateway gave (epoch milliseconds, or seconds as some channels report them)
 * as milliseconds, or undefined when there is none or it is not plausible.
 */
export function epochMillis(v) {
  if (typeof v === "string" && /^\d+$/.test(v)) v = Number(v);
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) return undefined;
  if (v >= 1e12 && v < 1e14) return Math.trunc(v);
  if (v >= 1e9 && v < 1e11) return Math.trunc(v * 1000);
  return undefined;
}

/** `openclaw:<type>:<40 hex>`: a hash of the type and the parts, stable across processes. */
export function deterministicId(type, parts) {
  const h = createHash("sha256").update(JSON.stringify([type, ...parts.map((p) => p ?? null)]));
  return `openclaw:${type}:${h.digest("hex").slice(0, 40)}`;
}

function randomId(type) {
  return `openclaw:${type}:r-${randomUUID()}`;
}

function sha256(text) {
  return createHash("sha256").update(text ?? "").digest("hex");
}

/** Drops undefined members, so the body stays small and JSON stays canonical. */
function compact(o) {
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  return o;
}

function envelope(type, { sessionKey, accountId, agentId, channel, at, now }) {
  return compact({
    type,
    sessionKey,
    accountId,
    agentId: agentId ?? agentIdFromSessionKey(sessionKey),
    channel,
    timestamp: new Date(at ?? now).toISOString(),
  });
}

function messageReceived(event, ctx, opts) {
  const meta = event.metadata && typeof event.metadata === "object" ? event.metadata : {};
  const type = HOOK_TYPES.message_received;
  const sessionKey = str(event.sessionKey ?? ctx.sessionKey);
  const channel = str(ctx.channelId ?? meta.originatingChannel ?? meta.provider)?.toLowerCase();
  const accountId = str(ctx.accountId);
  const conversationId = str(ctx.conversationId);
  const messageId = str(event.messageId ?? ctx.messageId ?? meta.messageId);
  const senderId = str(event.senderId ?? ctx.senderId ?? meta.senderId);
  const content = typeof event.content === "string" ? event.content : "";
  const at = epochMillis(event.timestamp);
  // One inbound message: its channel, account, conversation and the channel's message id. With
  // no message id, the sender, the channel's timestamp and the text; with neither, nothing
  // stable is known and the event is not deduplicated.
  let id;
  if (messageId) id = deterministicId(type, [channel, accountId, conversationId ?? sessionKey, messageId]);
  else if (at) id = deterministicId(type, [channel, accountId, conversationId ?? sessionKey, senderId, at, sha256(content)]);
  else id = randomId(type);
  const media = Array.isArray(event.media) ? event.media : [];
  const data = compact({
    messageId,
    conversationId,
    senderId,
    senderName: str(meta.senderName),
    senderUsername: str(meta.senderUsername),
    from: str(event.from),
    threadId: str(event.threadId ?? meta.threadId),
    replyToId: str(event.replyToId ?? meta.replyToId),
    surface: str(meta.surface),
    runId: str(event.runId ?? ctx.runId),
    mediaCount: media.length > 0 ? media.length : undefined,
    text: opts.includeContent ? content : undefined,
  });
  return { id, ...envelope(type, { sessionKey, accountId, channel, at, now: opts.now }), data };
}

function messageSent(event, ctx, opts) {
  const type = HOOK_TYPES.message_sent;
  const sessionKey = str(event.sessionKey ?? ctx.sessionKey);
  const channel = str(ctx.channelId)?.toLowerCase();
  const accountId = str(ctx.accountId);
  const conversationId = str(ctx.conversationId ?? event.to);
  const messageId = str(event.messageId);
  const content = typeof event.content === "string" ? event.content : "";
  // A delivered message has the channel's id for it; a failed one has none, and each failure
  // is its own event.
  const id = messageId
    ? deterministicId(type, [channel, accountId, conversationId, messageId])
    : randomId(type);
  const data = compact({
    messageId,
    conversationId,
    to: str(event.to),
    success: typeof event.success === "boolean" ? event.success : undefined,
    error: str(typeof event.error === "string" ? event.error : event.error?.message, MAX_ERROR),
    runId: str(event.runId ?? ctx.runId),
    text: opts.includeContent ? content : undefined,
  });
  return { id, ...envelope(type, { sessionKey, accountId, channel, now: opts.now }), data };
}

function sessionStart(event, ctx, opts) {
  const type = HOOK_TYPES.session_start;
  const sessionKey = str(event.sessionKey ?? ctx.sessionKey);
  const sessionId = str(event.sessionId ?? ctx.sessionId);
  const id = sessionId ? deterministicId(type, [sessionId, sessionKey]) : randomId(type);
  const data = compact({ sessionId, resumedFrom: str(event.resumedFrom) });
  const agentId = str(ctx.agentId);
  return { id, ...envelope(type, { sessionKey, agentId, now: opts.now }), data };
}

function sessionEnd(event, ctx, opts) {
  const type = HOOK_TYPES.session_end;
  const sessionKey = str(event.sessionKey ?? ctx.sessionKey);
  const sessionId = str(event.sessionId ?? ctx.sessionId);
  const reason = str(event.reason);
  const messageCount = int(event.messageCount);
  const durationMs = int(event.durationMs);
  // A session can end more than once (a gateway shutdown ends it, the next start resumes it):
  // each end with what it reports is its own event; the same end reported twice is one.
  const id = sessionId
    ? deterministicId(type, [sessionId, sessionKey, reason, messageCount, durationMs, str(event.nextSessionId)])
    : randomId(type);
  const data = compact({
    sessionId,
    reason,
    messageCount,
    durationMs,
    nextSessionId: str(event.nextSessionId),
    nextSessionKey: str(event.nextSessionKey),
  });
  const agentId = str(ctx.agentId);
  return { id, ...envelope(type, { sessionKey, agentId, now: opts.now }), data };
}

const BUILDERS = {
  message_received: messageReceived,
  message_sent: messageSent,
  session_start: sessionStart,
  session_end: sessionEnd,
};

/**
 * The event for one hook call, or undefined for a hook the bridge does not know.
 * `opts`: {includeContent: boolean, now: epoch ms}.
 */
export function buildEvent(hook, event, ctx, opts) {
  const build = BUILDERS[hook];
  if (!build) return undefined;
  return build(event && typeof event === "object" ? event : {}, ctx && typeof ctx === "object" ? ctx : {}, opts);
}

/**
 * The event as one spool line (JSON and a newline), at most `maxBytes` long: a text that does
 * not fit is cut (on a character boundary) and marked `textTruncated`; undefined if even
 * without text it does not fit.
 */
export function serialize(ev, maxBytes) {
  let line = JSON.stringify(ev) + "\n";
  if (Buffer.byteLength(line) <= maxBytes) return line;
  const text = ev.data?.text;
  if (typeof text !== "string") return undefined;
  const bare = { ...ev, data: { ...ev.data, text: "", textTruncated: true } };
  const room = maxBytes - Buffer.byteLength(JSON.stringify(bare) + "\n");
  if (room < 0) return undefined;
  // JSON escaping may grow a character to six bytes; cut by halves until it fits.
  let keep = Math.min(text.length, room);
  for (;;) {
    let cut = text.slice(0, keep);
    // Never split a surrogate pair.
    if (cut.length > 0 && /[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
    line = JSON.stringify({ ...bare, data: { ...bare.data, text: cut } }) + "\n";
    if (Buffer.byteLength(line) <= maxBytes) return line;
    if (keep === 0) return undefined;
    keep = Math.floor(keep / 2);
  }
}
