// The plugin entry as the gateway drives it: register (maybe twice), hooks, the service's start
// and stop, with a real HTTP server standing in for the control plane.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import plugin from "../index.js";
import { Bridge } from "../lib/bridge.js";
import { controlPlane, memoryLog, settings, tempDir, until } from "./helpers.js";

const SHARED = Symbol.for("moltbot-saas.openclaw-bridge");
const KEY = "agent:agent-0badcafe:telegram:tenant-0badcafe:direct:4242";

/** What the gateway hands `register`: pluginConfig, logger, on, registerService. */
function fakeApi(pluginConfig) {
  const hooks = new Map();
  const services = [];
  const log = memoryLog();
  return {
    hooks,
    services,
    log,
    api: {
      id: "moltbot-saas-bridge",
      pluginConfig,
      logger: log,
      on: (name, handler) => hooks.set(name, [...(hooks.get(name) ?? []), handler]),
      registerService: (s) => services.push(s),
    },
    fire(name, event, ctx) {
      for (const h of hooks.get(name) ?? []) assert.equal(h(event, ctx), undefined, "hooks return nothing");
    },
  };
}

function fresh(t) {
  delete globalThis[SHARED];
  t.after(async () => {
    await globalThis[SHARED]?.stop();
    delete globalThis[SHARED];
  });
}

const received = (n) => ({
  event: { content: `hello ${n}`, messageId: `m-${n}`, senderId: "cli", sessionKey: KEY },
  ctx: { channelId: "webchat", conversationId: KEY, sessionKey: KEY, messageId: `m-${n}` },
});

test("the manifest and the package agree with the entry", () => {
  const dir = path.dirname(new URL(import.meta.url).pathname);
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, "..", "openclaw.plugin.json"), "utf8"));
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "..", "package.json"), "utf8"));
  assert.equal(manifest.id, plugin.id);
  assert.equal(manifest.version, pkg.version);
  assert.deepEqual(pkg.openclaw.extensions, ["./index.js"]);
  assert.equal(manifest.activation.onStartup, true);
  assert.equal(manifest.configSchema.additionalProperties, false);
  // Every setting the code reads is declared, and nothing else.
  const declared = Object.keys(manifest.configSchema.properties).sort();
  const read = ["url", "token", ...Object.keys(settings())].filter((k) => k !== "eventsUrl");
  assert.deepEqual(declared, [...new Set(read)].sort());
});

test("hooks before the service starts are kept, then sent in order once it does", async (t) => {
  fresh(t);
  const cp = await controlPlane(t);
  const state = tempDir(t);
  const gw = fakeApi({ url: cp.url, token: "msgw_test_gateway_token_0123456789abcdef", drainOnStopMs: 0 });
  plugin.register(gw.api);
  assert.deepEqual([...gw.hooks.keys()].sort(), ["message_received", "message_sent", "session_end", "session_start"]);
  assert.equal(gw.services.length, 1);
  const r = received(1);
  gw.fire("message_received", r.event, r.ctx);
  gw.fire("session_start", { sessionId: "s-1", sessionKey: KEY }, { sessionId: "s-1", sessionKey: KEY, agentId: "agent-0badcafe" });
  assert.equal(cp.requests.length, 0, "nothing sent from a hook");
  gw.services[0].start({ stateDir: state });
  await until(() => cp.received.length === 2, 5000, "both events");
  assert.deepEqual(cp.received.map((e) => e.type), ["message.received", "session.started"]);
  assert.equal(cp.received[0].data.text, "hello 1");
  assert.equal(cp.received[0].agentId, "agent-0badcafe");
  assert.ok(fs.existsSync(path.join(state, "moltbot-saas-bridge", "cursor.json")), "the spool is in the state dir");
  assert.ok(gw.log.lines.info.some((m) => m.startsWith("moltbot-saas-bridge: sending events to")));
  await gw.services[0].stop();
});

test("a second registration shares the bridge; a repeat delivery of one message is sent once", async (t) => {
  fresh(t);
  const cp = await controlPlane(t);
  const state = tempDir(t);
  const config = { url: cp.url, token: "msgw_test_gateway_token_0123456789abcdef", drainOnStopMs: 0 };
  const first = fakeApi(config);
  const second = fakeApi({ ...config, includeContent: false });
  plugin.register(first.api);
  first.services[0].start({ stateDir: state });
  plugin.register(second.api); // openclaw 2026.7 registers again for the agent runtime
  const r = received(2);
  first.fire("message_received", r.event, r.ctx);
  second.fire("message_received", r.event, r.ctx);
  await until(() => cp.received.length === 1, 5000, "the message");
  await new Promise((res) => setTimeout(res, 100));
  assert.equal(cp.requests.length, 1, "one request for the repeated message");
  assert.equal(cp.received[0].data.text, undefined, "the newer registration's settings apply");
  // The second service starting and the first stopping (a reload) keeps it running.
  second.services[0].start({ stateDir: state });
  await first.services[0].stop();
  const r3 = received(3);
  second.fire("message_received", r3.event, r3.ctx);
  await until(() => cp.received.length === 2, 5000, "after the reload");
  await second.services[0].stop();
});

test("a config the bridge cannot use leaves it inert, with one clear error", (t) => {
  fresh(t);
  const gw = fakeApi({ url: "ftp://example.com", token: "x" });
  plugin.register(gw.api);
  assert.equal(gw.hooks.size, 0);
  assert.equal(gw.services.length, 0);
  assert.equal(gw.log.lines.error.length, 1);
  assert.match(gw.log.lines.error[0], /config\.url: must be an http/);
  const unresolved = fakeApi({ url: "https://saas.example.com", token: { source: "env", provider: "default", id: "MISSING" } });
  plugin.register(unresolved.api);
  assert.match(unresolved.log.lines.error[0], /token: is a SecretRef the gateway did not resolve/);
  assert.equal(unresolved.log.lines.error[0].includes("MISSING"), false);
});

test("a hook never throws, even when the spool cannot be written", async (t) => {
  const dir = tempDir(t);
  const log = memoryLog();
  const bridge = new Bridge({ settings: settings({ spoolDir: path.join(dir, "spool") }), log });
  bridge.start();
  t.after(() => bridge.stop());
  bridge.spool.append = () => {
    throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
  };
  const r = received(4);
  assert.doesNotThrow(() => bridge.record("message_received", r.event, r.ctx));
  assert.equal(bridge.stats.writeErrors, 1);
  assert.ok(log.lines.error.some((m) => m.includes("ENOSPC")));
  // A failing disk fails every hook; the log says so once a minute, with the count.
  const r5 = received(5);
  bridge.record("message_received", r5.event, r5.ctx);
  assert.equal(bridge.stats.writeErrors, 2);
  assert.equal(log.lines.error.filter((m) => m.includes("ENOSPC")).length, 1);
  delete bridge.spool.append;
  await bridge.stop();
});

test("a gateway restart: what was acknowledged is not sent again, what was not is", async (t) => {
  const state = tempDir(t);
  let up = true;
  const cp = await controlPlane(t, () => (up ? { status: 202 } : { status: 503 }));
  const logs = [];
  const run = () => {
    const log = memoryLog();
    logs.push(log);
    const b = new Bridge({ settings: settings({ url: cp.url }), log });
    // Stopped even when an assertion fails, so no sender outlives its test.
    t.after(() => b.stop());
    return b;
  };
  // What happened, for a failure's message.
  const story = () =>
    JSON.stringify({
      requests: cp.requests.map((r) => {
        try {
          return JSON.parse(r.body).data?.messageId ?? r.body.slice(0, 40);
        } catch {
          return r.body.slice(0, 40);
        }
      }),
      received: cp.received.map((e) => e?.data?.messageId),
      logs: logs.map((l) => l.lines),
    });
  let bridge = run();
  bridge.start(state);
  for (const n of [1, 2]) bridge.record("message_received", received(n).event, received(n).ctx);
  await until(() => cp.received.length >= 2, 15000, "the first two", story);
  up = false;
  bridge.record("message_received", received(3).event, received(3).ctx);
  await until(() => cp.requests.length >= 3, 15000, "the third tried", story);
  await bridge.stop();
  bridge = run(); // a new process
  bridge.start(state);
  up = true;
  await until(() => cp.received.length >= 3, 15000, "the third", story);
  await new Promise((res) => setTimeout(res, 100));
  assert.deepEqual(cp.received.map((e) => e.data.messageId), ["m-1", "m-2", "m-3"], story());
  await bridge.stop();
});
