// The sender against a real HTTP server on 127.0.0.1: order, retries (5xx, 429, Retry-After,
// timeouts, connection errors, misconfiguration), drops (4xx), restarts.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Sender, backoff, classify, parseRetryAfter } from "../lib/sender.js";
import { Spool } from "../lib/spool.js";
import { controlPlane, line, memoryLog, settings, tempDir, until } from "./helpers.js";

function spoolIn(dir) {
  return new Spool({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, overflow: "drop-oldest" }).open();
}

function sender(t, spool, url, overrides = {}) {
  const log = memoryLog();
  const s = settings({ url, ...overrides });
  const snd = new Sender({ spool, settings: () => s, log, version: "9.9.9" });
  snd.start();
  t.after(() => snd.stop());
  return { snd, log };
}

const ids = (events) => events.map((e) => e.id);

test("status classes", () => {
  for (const s of [200, 201, 202, 204]) assert.equal(classify(s), "ok", String(s));
  for (const s of [500, 502, 503, 504, 429, 408, 425, 401, 403, 404, 405, 301, 307]) assert.equal(classify(s), "retry", String(s));
  for (const s of [400, 409, 410, 413, 415, 422]) assert.equal(classify(s), "drop", String(s));
});

test("Retry-After in seconds or as an HTTP date", () => {
  const now = Date.parse("2026-12-05T10:00:00Z");
  assert.equal(parseRetryAfter("7", now), 7000);
  assert.equal(parseRetryAfter("Sat, 05 Dec 2026 10:00:30 GMT", now), 30000);
  assert.equal(parseRetryAfter("Sat, 05 Dec 2026 09:00:00 GMT", now), 0);
  for (const bad of [undefined, "", "soon", "-3"]) assert.equal(parseRetryAfter(bad, now), undefined, String(bad));
});

test("backoff doubles up to the maximum, with jitter within ±25 %", () => {
  const s = { retryInitialMs: 100, retryMaxMs: 1000 };
  assert.equal(backoff(1, s, () => 0.5), 100);
  assert.equal(backoff(2, s, () => 0.5), 200);
  assert.equal(backoff(4, s, () => 0.5), 800);
  assert.equal(backoff(5, s, () => 0.5), 1000);
  assert.equal(backoff(500, s, () => 0.5), 1000);
  assert.equal(backoff(1, s, () => 0), 75);
  assert.equal(backoff(1, s, () => 0.999999), 125);
});

test("delivers in order with the token, and events appended later too", async (t) => {
  const cp = await controlPlane(t);
  const spool = spoolIn(tempDir(t));
  for (const id of ["a", "b", "c"]) spool.append(line(id));
  const { snd } = sender(t, spool, cp.url + "/");
  await until(() => cp.received.length === 3, 5000, "three events");
  assert.deepEqual(ids(cp.received), ["a", "b", "c"]);
  const req = cp.requests[0];
  assert.equal(req.url, "/events", "a trailing slash in the URL does not double");
  assert.equal(req.headers.authorization, "Bearer msgw_test_gateway_token_0123456789abcdef");
  assert.equal(req.headers["content-type"], "application/json");
  assert.equal(req.headers["user-agent"], "moltbot-saas-bridge/9.9.9");
  spool.append(line("d"));
  snd.wake();
  await until(() => cp.received.length === 4, 5000, "the fourth");
  // The server counts an event before its answer reaches the sender, which then acknowledges it.
  await until(() => spool.pending === 0, 5000, "the acknowledgement");
  assert.equal(snd.stats.delivered, 4);
});

test("5xx and 429 are retried (the same event, nothing after it first), honouring Retry-After", async (t) => {
  const answers = [{ status: 503 }, { status: 500 }, { status: 429, headers: { "retry-after": "1" } }];
  const times = [];
  const cp = await controlPlane(t, (ev, n) => {
    times.push(Date.now());
    return answers[n - 1] ?? { status: 202 };
  });
  const spool = spoolIn(tempDir(t));
  spool.append(line("a"));
  spool.append(line("b"));
  const { snd, log } = sender(t, spool, cp.url);
  await until(() => cp.received.length === 2, 10000, "both events");
  assert.deepEqual(ids(cp.requests.map((r) => JSON.parse(r.body))), ["a", "a", "a", "a", "b"]);
  assert.deepEqual(ids(cp.received), ["a", "b"]);
  // The 429 said 1 s; backoff alone would have waited under 100 ms.
  assert.ok(times[3] - times[2] >= 950, `waited ${times[3] - times[2]} ms after Retry-After: 1`);
  assert.equal(snd.stats.retries, 3);
  assert.ok(log.lines.warn.some((m) => m.includes("cannot deliver event a") && m.includes("503")), log.lines.warn.join("\n"));
  assert.ok(log.lines.info.some((m) => m.includes("reachable again")));
});

test("Retry-After is capped by maxRetryAfterMs", async (t) => {
  const times = [];
  const cp = await controlPlane(t, (ev, n) => {
    times.push(Date.now());
    return n === 1 ? { status: 503, headers: { "retry-after": "3600" } } : { status: 202 };
  });
  const spool = spoolIn(tempDir(t));
  spool.append(line("a"));
  sender(t, spool, cp.url, { maxRetryAfterMs: 200 });
  await until(() => cp.received.length === 1, 5000, "the event");
  assert.ok(times[1] - times[0] < 3000, `waited ${times[1] - times[0]} ms`);
});

test("4xx that will never succeed are dropped and logged; the next event goes on", async (t) => {
  const cp = await controlPlane(t, (ev) =>
    ev.id === "bad"
      ? { status: 422, body: JSON.stringify({ error: { code: "validation_failed", message: "no tenant matches agentId", details: { fields: ["agentId"] } } }) }
      : { status: 202 },
  );
  const spool = spoolIn(tempDir(t));
  for (const id of ["a", "bad", "c"]) spool.append(line(id));
  const { snd, log } = sender(t, spool, cp.url);
  await until(() => cp.received.length === 2, 5000, "the good events");
  assert.deepEqual(ids(cp.received), ["a", "c"]);
  assert.equal(cp.requests.length, 3, "the refused event was sent once");
  assert.equal(snd.stats.refused, 1);
  assert.ok(log.lines.warn.some((m) => m.includes("refused event bad") && m.includes("validation_failed") && m.includes("agentId")));
  await until(() => spool.pending === 0, 5000, "the acknowledgement");
});

test("401 (a wrong token) is retried, not dropped, and logged as an error without the token", async (t) => {
  let ok = false;
  const cp = await controlPlane(t, () => (ok ? { status: 202 } : { status: 401, body: '{"error":{"code":"unauthorized","message":"no valid token"}}' }));
  const spool = spoolIn(tempDir(t));
  spool.append(line("a"));
  const { log } = sender(t, spool, cp.url);
  await until(() => cp.requests.length >= 3, 5000, "retries");
  assert.equal(spool.pending, 1, "kept while misconfigured");
  ok = true; // the operator fixed it
  await until(() => cp.received.length === 1, 5000, "delivery");
  assert.ok(log.lines.error.some((m) => m.includes("401") && m.includes("check the bridge's url and token")));
  const all = JSON.stringify(log.lines);
  assert.equal(all.includes("msgw_test_gateway_token"), false, "the token is never logged");
});

test("no server (connection refused) and then a server: retried until delivered", async (t) => {
  const probe = await controlPlane(t);
  const port = probe.port;
  await probe.close(); // nothing listens there now
  const spool = spoolIn(tempDir(t));
  spool.append(line("a"));
  const { snd, log } = sender(t, spool, `http://127.0.0.1:${port}`);
  await until(() => snd.stats.retries >= 3, 5000, "retries");
  assert.ok(log.lines.warn.some((m) => /ECONNREFUSED|fetch failed/.test(m)), log.lines.warn.join("\n"));
  const cp = await controlPlane(t, undefined, { port });
  await until(() => cp.received.length === 1, 5000, "delivery once the server is up");
  assert.deepEqual(ids(cp.received), ["a"]);
});

test("a server that does not answer: the request times out and is retried", async (t) => {
  const cp = await controlPlane(t, (ev, n) => (n === 1 ? { hang: true } : { status: 202 }));
  const spool = spoolIn(tempDir(t));
  spool.append(line("a"));
  const { log } = sender(t, spool, cp.url, { requestTimeoutMs: 300 });
  await until(() => cp.received.length === 1, 5000, "delivery after the timeout");
  assert.equal(cp.requests.length, 2);
  assert.ok(log.lines.warn.some((m) => m.includes("no answer within 300 ms")), log.lines.warn.join("\n"));
});

test("a duplicate answer counts as delivered", async (t) => {
  const cp = await controlPlane(t, () => ({ status: 202, body: '{"eventId":"e","tenantId":"t","duplicate":true,"deliveries":0}' }));
  const spool = spoolIn(tempDir(t));
  spool.append(line("a"));
  const { snd } = sender(t, spool, cp.url);
  await until(() => cp.received.length === 1, 5000, "delivery");
  await until(() => spool.pending === 0, 1000, "ack");
  assert.equal(snd.stats.duplicates, 1);
});

test("unreadable spool lines are skipped", async (t) => {
  const cp = await controlPlane(t);
  const spool = spoolIn(tempDir(t));
  spool.append("{not json\n");
  spool.append('{"no":"id"}\n');
  spool.append(line("a"));
  const { snd } = sender(t, spool, cp.url);
  await until(() => cp.received.length === 1, 5000, "delivery");
  assert.equal(snd.stats.unreadable, 2);
  assert.equal(cp.requests.length, 1);
});

test("stopped while the control plane is down, restarted later: each event delivered once", async (t) => {
  const dir = tempDir(t);
  let up = false;
  const cp = await controlPlane(t, () => (up ? { status: 202 } : { status: 503 }));
  let spool = spoolIn(dir);
  for (const id of ["a", "b"]) spool.append(line(id));
  const log = memoryLog();
  const s = settings({ url: cp.url });
  let snd = new Sender({ spool, settings: () => s, log });
  snd.start();
  t.after(() => snd.stop()); // whichever sender runs last, even when an assertion fails
  up = true;
  await until(() => cp.received.length >= 2, 15000, "first two");
  up = false;
  spool.append(line("c"));
  snd.wake();
  await until(() => cp.requests.length >= 4, 5000, "c refused at least once");
  await snd.stop(); // the gateway restarts
  spool.close();
  spool = spoolIn(dir);
  assert.equal(spool.pending, 1, "only c is left");
  up = true;
  snd = new Sender({ spool, settings: () => s, log });
  snd.start();
  await until(() => cp.received.length >= 3, 15000, "c");
  assert.deepEqual(ids(cp.received), ["a", "b", "c"]);
});

test("stop drains what is waiting, for at most drainOnStopMs", async (t) => {
  const cp = await controlPlane(t, () => ({ status: 202, delayMs: 30 }));
  const spool = spoolIn(tempDir(t));
  for (let i = 0; i < 5; i += 1) spool.append(line(`e${i}`));
  const s = settings({ url: cp.url, drainOnStopMs: 5000 });
  const snd = new Sender({ spool, settings: () => s, log: memoryLog() });
  snd.start();
  await snd.stop(5000);
  assert.equal(cp.received.length, 5);
  assert.equal(spool.pending, 0);
  // And a stop that cannot drain returns without waiting for ever.
  const dead = spoolIn(tempDir(t));
  dead.append(line("x"));
  const s2 = settings({ url: "http://127.0.0.1:9", drainOnStopMs: 200 });
  const snd2 = new Sender({ spool: dead, settings: () => s2, log: memoryLog() });
  snd2.start();
  const t0 = Date.now();
  await snd2.stop(200);
  assert.ok(Date.now() - t0 < 3000);
  assert.equal(dead.pending, 1);
});

test("a spool that cannot be read for a while stops nothing: the sender waits and goes on", async (t) => {
  const cp = await controlPlane(t);
  const spool = spoolIn(tempDir(t));
  spool.append(line("a"));
  const peek = spool.peek.bind(spool);
  let failures = 2;
  spool.peek = () => {
    if (failures > 0) {
      failures -= 1;
      throw Object.assign(new Error("EIO: i/o error, read"), { code: "EIO" });
    }
    return peek();
  };
  const { log } = sender(t, spool, cp.url);
  await until(() => cp.received.length === 1, 5000, "delivery after the errors");
  assert.equal(log.lines.error.filter((m) => m.includes("spool error")).length, 1, "logged once, not per retry");
  assert.ok(log.lines.error[0].includes("EIO"));
});
