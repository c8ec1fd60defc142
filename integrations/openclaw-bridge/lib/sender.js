// sender.js - sends the spool to the control plane's `POST {url}/events`, one event at a time,
// in order.
//
// What an answer means:
//   2xx                      delivered (a repeated id answers 202 "duplicate": also delivered)
//   429, 5xx, 408, 425       the control plane is busy or down: retry the same event
//   3xx, 401, 403, 404, 405  the bridge is misconfigured (token, URL; redirects are not
//                            followed): retry the same event, so nothing is lost while an
//                            operator fixes it; logged as an error
//   other 4xx (400, 413, 422 …) this event will never be accepted: dropped and logged
//   no answer (connection refused or reset, DNS, timeout)   retry
// Retries wait an exponential backoff with jitter (retryInitialMs doubling up to retryMaxMs),
// or the answer's Retry-After when that is longer (capped by maxRetryAfterMs).

const RETRY_STATUS = new Set([401, 403, 404, 405, 408, 425, 429]);
const MISCONFIGURED = new Set([401, 403, 404, 405]);
const misconfigured = (status) => MISCONFIGURED.has(status) || (status >= 300 && status < 400);

/** "ok", "retry" or "drop" for an HTTP status. */
export function classify(status) {
  if (status >= 200 && status < 300) return "ok";
  if (status >= 300 && status < 400) return "retry";
  if (status >= 500 || RETRY_STATUS.has(status)) return "retry";
  return "drop";
}

/** Retry-After (seconds, or an HTTP date) in milliseconds from `now`, or undefined. */
export function parseRetryAfter(value, now = Date.now()) {
  if (typeof value !== "string" || value.trim() === "") return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // An HTTP date names its weekday and month ("Sat, 05 Dec 2026 10:00:30 GMT").
  if (!/^[A-Za-z]{3},/.test(v)) return undefined;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** The wait before retry number `attempt` (1, 2, …): exponential, with ±25 % jitter. */
export function backoff(attempt, { retryInitialMs, retryMaxMs }, random = Math.random) {
  const exp = Math.min(retryMaxMs, retryInitialMs * 2 ** Math.min(attempt - 1, 30));
  return Math.max(1, Math.round(exp * (0.75 + random() * 0.5)));
}

/** A short description of what the control plane said, for the log (never the token). */
function explain(status, body) {
  try {
    const e = JSON.parse(body)?.error;
    if (e && typeof e === "object") {
      const fields = Array.isArray(e.details?.fields) ? ` (${e.details.fields.join(", ")})` : "";
      return `${status} ${e.code ?? ""}: ${String(e.message ?? "").slice(0, 300)}${fields}`;
    }
  } catch {
    // Not our JSON.
  }
  return `${status} ${body.slice(0, 200).replace(/\s+/g, " ")}`;
}

function errorText(e) {
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e.message} (${cause})` : String(e?.message ?? e);
}

/**
 * Delivers what the spool holds, in order, until stopped.
 *
 * `settings()` gives the current settings (they may change on a config reload);
 * `fetchImpl` and `random` are for tests.
 */
export class Sender {
  constructor({ spool, settings, log, fetchImpl = globalThis.fetch, random = Math.random, version = "0" }) {
    this.spool = spool;
    this.settings = settings;
    this.log = log;
    this.fetch = fetchImpl;
    this.random = random;
    this.userAgent = `moltbot-saas-bridge/${version}`;
    this.running = false;
    this.loop = null;
    this.wakeUp = null;
    this.inflight = null; // AbortController of the request in flight
    this.stats = { delivered: 0, duplicates: 0, refused: 0, unreadable: 0, retries: 0 };
    this.failing = null; // {since, attempts, last} while the control plane cannot be reached
  }

  /** Starts the loop (once). */
  start() {
    if (this.running) return;
    this.running = true;
    this.loop = this.run().catch((e) => this.log.error(`sender stopped on an unexpected error: ${errorText(e)}`));
  }

  /** Something was appended: stop waiting for it. */
  wake() {
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /**
   * Stops the loop. With `drainMs` > 0 it first keeps sending for at most that long, or until
   * the spool is empty or the control plane fails; then the request in flight is aborted (its
   * event stays in the spool and is sent again next time).
   */
  async stop(drainMs = 0) {
    if (!this.running) return;
    if (drainMs > 0 && this.spool.pending > 0 && !this.failing) {
      const deadline = Date.now() + drainMs;
      while (this.spool.pending > 0 && !this.failing && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      }
    this.running = false;
    this.inflight?.abort(new Error("stopping"));
    this.wake();
    await this.loop;
  }

  async sleep(ms) {
    await new Promise((resolve) => {
      const t = setTimeout(done, ms);
      this.wakeUp = done;
      function done() {
        clearTimeout(t);
        resolve();
      }
    });
  }

  async run() {
    let attempt = 0;
    let ioErrors = 0;
    while (this.running) {
      let step;
      try {
        step = await this.step(attempt);
        ioErrors = 0;
      } catch (e) {
        // The spool could not be read or its cursor written (a full or failing disk): wait and
        // try again; nothing is acknowledged that was not.
        ioErrors += 1;
        if (ioErrors === 1 || ioErrors % 10 === 0) this.log.error(`spool error (${ioErrors} in a row): ${errorText(e)}`);
        if (this.running) await this.sleep(this.settings().retryMaxMs);
        continue;
      }
      if (step.wait !== undefined && this.running) await this.sleep(step.wait);
      attempt = step.attempt;
    }
  }

  /** Sends the next event, if any: {attempt, wait?} for the loop. */
  async step(attempt) {
    const item = this.spool.peek();
    if (!item) return { attempt, wait: 1000 };
    let event;
    try {
      event = JSON.parse(item.line);
      if (!event || typeof event.id !== "string" || typeof event.type !== "string") throw new Error("not an event");
    } catch {
      this.stats.unreadable += 1;
      this.log.warn(`skipping an unreadable spool line (${item.end - item.start} bytes)`);
      this.spool.ack(item);
      return { attempt };
    }
    const result = await this.post(item.line);
    if (!this.running && result.kind === "retry") return { attempt };
    if (result.kind === "ok") {
      if (this.failing) {
        this.log.info(`control plane reachable again: delivered after ${this.failing.attempts} failed attempts since ${new Date(this.failing.since).toISOString()}`);
        this.failing = null;
      }
      this.stats.delivered += 1;
      if (result.duplicate) this.stats.duplicates += 1;
      this.spool.ack(item);
      return { attempt: 0 };
    }
    if (result.kind === "drop") {
      this.stats.refused += 1;
      this.log.warn(`control plane refused event ${event.id} (${event.type}); dropped: ${result.why}`);
      this.spool.ack(item);
      return { attempt: 0 };
    }
    // Retry the same event.
    const next = attempt + 1;
    this.stats.retries += 1;
    const s = this.settings();
    let wait = backoff(next, s, this.random);
    if (result.retryAfterMs !== undefined) wait = Math.max(wait, Math.min(result.retryAfterMs, s.maxRetryAfterMs));
    if (!this.failing) this.failing = { since: Date.now(), attempts: 0 };
    this.failing.attempts += 1;
    // The first failure, then every tenth, so a long outage does not flood the log.
    if (this.failing.attempts === 1 || this.failing.attempts % 10 === 0) {
      const line = `cannot deliver event ${event.id} (${event.type}): ${result.why}; ${this.spool.pending} event(s) waiting; retry ${this.failing.attempts} in ${wait} ms`;
      if (result.misconfigured) this.log.error(`${line} - check the bridge's url and token`);
      else this.log.warn(line);
    }
    return { attempt: next, wait };
  }

  /** One POST: {kind: "ok"|"drop"|"retry", why?, retryAfterMs?, duplicate?, misconfigured?}. */
  async post(body) {
    const s = this.settings();
    const ac = new AbortController();
    this.inflight = ac;
    const timer = setTimeout(() => ac.abort(new Error(`no answer within ${s.requestTimeoutMs} ms`)), s.requestTimeoutMs);
    try {
      const res = await this.fetch(s.eventsUrl, {
        method: "POST",
        headers: {
          authorization: `Bearer ${s.token}`,
          "content-type": "application/json",
          "user-agent": this.userAgent,
        },
        body,
        signal: ac.signal,
        redirect: "manual",
      });
      const text = await res.text();
      const kind = classify(res.status);
      if (kind === "ok") {
        let duplicate = false;
        try {
          duplicate = JSON.parse(text)?.duplicate === true;
        } catch {
          // A 2xx is a delivery whatever its body.
        }
        return { kind, duplicate };
      }
      return {
        kind,
        why: explain(res.status, text),
        retryAfterMs: parseRetryAfter(res.headers.get("retry-after") ?? undefined),
        misconfigured: misconfigured(res.status),
      };
    } catch (e) {
      const why = ac.signal.aborted ? String(ac.signal.reason?.message ?? "aborted") : errorText(e);
      return { kind: "retry", why };
    } finally {
      clearTimeout(timer);
      this.inflight = null;
    }
  }
}
