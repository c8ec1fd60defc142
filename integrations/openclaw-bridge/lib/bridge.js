// bridge.js - ties the hooks to the spool and the spool to the sender.
//
// Hooks only append: `record` builds the event, drops a repeat of an id it appended lately,
// and writes one line to the spool, synchronously, without any network work; it never throws.
// The background service (`start`/`stop`) opens the spool in the gateway's state directory and
// runs the sender. Events recorded before the service has started (the gateway registers a
// plugin before starting its services) wait in a small in-memory buffer and are written to the
// spool when it opens.
//
// The gateway may register a plugin more than once in one process (openclaw 2026.7 registers it
// again for the agent runtime, and a config reload registers it anew), so there is one bridge
// per process, kept on globalThis: every registration feeds the same spool, and a new
// registration's settings replace the old ones.

import path from "node:path";

import { buildEvent, serialize } from "./events.js";
import { Sender } from "./sender.js";
import { Spool } from "./spool.js";

/** Events kept in memory before the spool is open; more are dropped (and counted). */
const EARLY_LIMIT = 10_000;
/** Ids remembered to drop a repeat the gateway delivers twice to the hooks. */
const RECENT_IDS = 4096;
const SHARED = Symbol.for("moltbot-saas.openclaw-bridge");

function message(e) {
  return String(e?.message ?? e);
}

export class Bridge {
  /**
   * @param {object} o
   * @param {object} o.settings  from readConfig
   * @param {object} o.log       {info, warn, error} (the gateway's plugin logger)
   * @param {string} [o.version] the plugin's version, for the User-Agent
   * @param {Function} [o.fetchImpl] for tests
   * @param {() => number} [o.now] for tests
   */
  constructor({ settings, log, version = "0", fetchImpl, now = Date.now }) {
    this.settings = settings;
    this.log = log;
    this.version = version;
    this.fetchImpl = fetchImpl;
    this.now = now;
    this.spool = null;
    this.sender = null;
    this.early = [];
    this.recent = new Set();
    this.recentOrder = [];
    this.stats = { recorded: 0, repeats: 0, tooLarge: 0, earlyDropped: 0, writeErrors: 0, overflow: 0 };
    this.lastOverflowLog = -Infinity;
    this.lastWriteErrorLog = -Infinity;
    /** Started services using the bridge (a reload may start the new one before stopping the old). */
    this.users = 0;
  }

  /** New settings (a config reload): url, token, content and retry settings apply at once. */
  configure(settings) {
    this.settings = settings;
  }

  /** Records one hook call. Never throws, never waits. */
  record(hook, event, ctx) {
    try {
      const ev = buildEvent(hook, event, ctx, { includeContent: this.settings.includeContent, now: this.now() });
      if (!ev) return;
      if (this.recent.has(ev.id)) {
        this.stats.repeats += 1;
        return;
      }
      this.remember(ev.id);
      const line = serialize(ev, this.settings.maxEventBytes);
      if (line === undefined) {
        this.stats.tooLarge += 1;
        this.log.warn(`event ${ev.id} (${ev.type}) is larger than maxEventBytes (${this.settings.maxEventBytes}) even without its text; dropped`);
        return;
      }
      this.stats.recorded += 1;
      if (!this.spool) {
        if (this.early.length >= EARLY_LIMIT) {
          this.stats.earlyDropped += 1;
          return;
        }
        this.early.push(line);
        return;
      }
      this.write(line);
    } catch (e) {
      this.stats.writeErrors += 1;
      // A failing disk fails every hook: one line a minute, with the count.
      const now = this.now();
      if (now - this.lastWriteErrorLog > 60_000) {
        this.lastWriteErrorLog = now;
        this.log.error(`could not record a ${hook} event (${this.stats.writeErrors} lost so far): ${message(e)}`);
      }
    }
  }

  remember(id) {
    this.recent.add(id);
    this.recentOrder.push(id);
    if (this.recentOrder.length > RECENT_IDS) this.recent.delete(this.recentOrder.shift());
  }

  write(line) {
    const before = this.spool.overflowDropped;
    const ok = this.spool.append(line);
    const lost = this.spool.overflowDropped - before;
    if (lost > 0) {
      this.stats.overflow += lost;
      const now = this.now();
      // At most one line a minute about it: a full spool means the control plane is away.
      if (now - this.lastOverflowLog > 60_000) {
        this.lastOverflowLog = now;
        const which = ok ? "oldest unsent events were dropped" : "newest event was dropped";
        this.log.warn(
          `spool full (maxSpoolBytes ${this.spool.maxBytes}, overflow ${this.spool.overflow}): the ${which}; ${this.stats.overflow} lost so far`,
        );
      }
    }
    if (ok) this.sender?.wake();
  }

  /** The spool directory for a gateway state directory. */
  spoolDir(stateDir) {
    if (this.settings.spoolDir) return this.settings.spoolDir;
    if (!stateDir) throw new Error("the gateway gave no state directory; set spoolDir");
    return path.join(stateDir, "moltbot-saas-bridge");
  }

  /** Opens the spool and starts sending; a second start only counts one more user. */
  start(stateDir) {
    if (this.spool) {
      this.users += 1;
      return;
    }
    const s = this.settings;
    const spool = new Spool({
      dir: this.spoolDir(stateDir),
      maxBytes: s.maxSpoolBytes,
      segmentBytes: s.segmentBytes,
      overflow: s.overflow,
      warn: (m) => this.log.warn(m),
    }).open();
    this.spool = spool;
    this.users = 1;
    const early = this.early;
    this.early = [];
    for (const line of early) {
      try {
        this.write(line);
      } catch (e) {
        this.stats.writeErrors += 1;
        this.log.error(`could not write to the spool: ${message(e)}`);
      }
    }
    if (this.stats.earlyDropped > 0) {
      this.log.warn(`${this.stats.earlyDropped} event(s) recorded before the spool opened were dropped (more than ${EARLY_LIMIT})`);
    }
    this.sender = new Sender({
      spool,
      settings: () => this.settings,
      log: this.log,
      fetchImpl: this.fetchImpl,
      version: this.version,
    });
    this.sender.start();
    this.log.info(
      `sending events to ${s.eventsUrl}; spool ${spool.dir} (${spool.pending} waiting, ${spool.bytes} bytes, at most ${s.maxSpoolBytes}); content ${s.includeContent ? "included" : "left out"}`,
    );
  }

  /**
   * Drains for at most drainOnStopMs, stops sending and closes the spool, once the last user
   * has stopped.
   */
  async stop() {
    this.users = Math.max(0, this.users - 1);
    if (this.users > 0 || !this.spool) return;
    const spool = this.spool;
    await this.sender?.stop(this.settings.drainOnStopMs);
    this.sender = null;
    this.spool = null;
    spool.close();
    this.log.info(`stopped; ${spool.pending} event(s) left in the spool for the next start`);
  }
}

/**
 * The process's bridge: created on first use, reconfigured by later registrations.
 * `make(settings)` builds a new one.
 */
export function sharedBridge(settings, make) {
  const existing = globalThis[SHARED];
  if (existing) {
    existing.configure(settings);
    return existing;
  }
  const bridge = make(settings);
  globalThis[SHARED] = bridge;
  return bridge;
}
