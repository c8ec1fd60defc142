// helpers.js - shared by the tests: temporary directories, a local HTTP server standing in for
// the control plane, settings, a logger that keeps its lines.

import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";

import { readConfig } from "../lib/config.js";

/** A fresh directory, removed when the test ends. */
export function tempDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bridge-test-"));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A logger keeping its lines by level. */
export function memoryLog() {
  const lines = { info: [], warn: [], error: [] };
  return {
    lines,
    info: (m) => lines.info.push(m),
    warn: (m) => lines.warn.push(m),
    error: (m) => lines.error.push(m),
  };
}

/**
 * An HTTP server on 127.0.0.1 that records each POST /events body and answers with what
 * `answer(event, n)` returns ({status, headers?, body?, delayMs?}); default 202.
 * Returns {url, port, received, close(), requests}.
 */
export async function controlPlane(t, answer = () => ({ status: 202 }), { port = 0 } = {}) {
  const received = [];
  const requests = [];
  const sockets = new Set();
  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c) => (body += c));
    req.on("end", async () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body });
      let event = null;
      try {
        event = JSON.parse(body);
      } catch {
        // Recorded as is.
      }
      const a = (await answer(event, requests.length, req)) ?? { status: 202 };
      if (a.hang) return; // never answer
      if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
      if (a.status >= 200 && a.status < 300) received.push(event);
      const payload = a.body ?? JSON.stringify({ eventId: "x", tenantId: "t", duplicate: false, deliveries: 0 });
      res.writeHead(a.status, { "content-type": "application/json", ...(a.headers ?? {}) });
      res.end(payload);
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  const close = () =>
    new Promise((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  t.after(close);
  const actual = server.address().port;
  return { url: `http://127.0.0.1:${actual}`, port: actual, received, requests, close };
}

/** Settings for tests: fast retries, small spool. */
export function settings(overrides = {}) {
  return readConfig({
    url: "http://127.0.0.1:9",
    token: "msgw_test_gateway_token_0123456789abcdef",
    retryInitialMs: 10,
    retryMaxMs: 50,
    requestTimeoutMs: 2000,
    drainOnStopMs: 0,
    ...overrides,
  });
}

/**
 * Waits until `cond()` is true (every 10 ms), failing after `ms`; `story()`, when given, says
 * in the failure's message what had happened by then.
 */
export async function until(cond, ms = 5000, what = "condition", story = undefined) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${ms} ms waiting for ${what}${story ? `: ${story()}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A spool line for a test event with id `id`. */
export function line(id, extra = {}) {
  return JSON.stringify({ id, type: "message.received", timestamp: "2026-12-01T00:00:00.000Z", data: {}, ...extra }) + "\n";
}
