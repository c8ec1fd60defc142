// config.js - the bridge's settings: `plugins.entries.moltbot-saas-bridge.config`, already
// checked by the gateway against the manifest's configSchema, read here once more with defaults
// and clear errors (the gateway resolves a SecretRef token to a plain string before we see it).

export const PLUGIN_ID = "moltbot-saas-bridge";

/** Defaults of every optional setting (the manifest's configSchema says the same). */
export const DEFAULTS = Object.freeze({
  includeContent: true,
  spoolDir: "",
  maxSpoolBytes: 64 * 1024 * 1024,
  segmentBytes: 1024 * 1024,
  overflow: "drop-oldest",
  maxEventBytes: 60 * 1024,
  requestTimeoutMs: 10_000,
  retryInitialMs: 1_000,
  retryMaxMs: 60_000,
  maxRetryAfterMs: 10 * 60_000,
  drainOnStopMs: 3_000,
});

const INTEGER_RANGES = Object.freeze({
  maxSpoolBytes: [64 * 1024, 16 * 1024 * 1024 * 1024],
  segmentBytes: [4 * 1024, 256 * 1024 * 1024],
  maxEventBytes: [1024, 16 * 1024 * 1024],
  requestTimeoutMs: [100, 600_000],
  retryInitialMs: [1, 600_000],
  retryMaxMs: [1, 3_600_000],
  maxRetryAfterMs: [0, 24 * 3_600_000],
  drainOnStopMs: [0, 600_000],
});

/** A setting that cannot be used; `path` is the key under the plugin's config. */
export class ConfigError extends Error {
  constructor(path, message) {
    super(`plugins.entries.${PLUGIN_ID}.config.${path}: ${message}`);
    this.name = "ConfigError";
    this.path = path;
  }
}

/**
 * Reads the plugin config into a frozen settings object, defaults filled in.
 * Throws ConfigError naming the first unusable key; never echoes the token.
 */
export function readConfig(raw) {
  const cfg = raw ?? {};
  if (typeof cfg !== "object" || Array.isArray(cfg)) {
    throw new ConfigError("", "must be an object");
  }
  const out = { ...DEFAULTS };
  if (typeof cfg.url !== "string" || cfg.url.trim() === "") {
    throw new ConfigError("url", "is required: the control plane's public URL, e.g. https://saas.example.com");
  }
  let url;
  try {
    url = new URL(cfg.url.trim());
  } catch {
    throw new ConfigError("url", "is not a URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ConfigError("url", "must be an http:// or https:// URL");
  }
  if (url.search || url.hash || url.username || url.password) {
    throw new ConfigError("url", "must not carry a query, fragment or credentials");
  }
  // `{url}/events`, whether or not the URL has a path or a trailing slash.
  out.url = url.origin + url.pathname.replace(/\/+$/, "");
  out.eventsUrl = `${out.url}/events`;

  if (typeof cfg.token !== "string" || cfg.token.trim() === "") {
    // An unresolved SecretRef arrives as an object: say so without printing it.
    const what = cfg.token && typeof cfg.token === "object" ? "is a SecretRef the gateway did not resolve" : "is required";
    throw new ConfigError("token", `${what} (the control plane's gateway token)`);
  }
  if (/\s/.test(cfg.token.trim()) || /[\r\n]/.test(cfg.token)) {
    throw new ConfigError("token", "must not contain whitespace");
  }
  out.token = cfg.token.trim();

  if (cfg.includeContent !== undefined) {
    if (typeof cfg.includeContent !== "boolean") throw new ConfigError("includeContent", "must be true or false");
    out.includeContent = cfg.includeContent;
  }
  if (cfg.spoolDir !== undefined) {
    if (typeof cfg.spoolDir !== "string" || !cfg.spoolDir.startsWith("/")) {
      throw new ConfigError("spoolDir", "must be an absolute path");
    }
    out.spoolDir = cfg.spoolDir.replace(/\/+$/, "") || "/";
  }
  if (cfg.overflow !== undefined) {
    if (cfg.overflow !== "drop-oldest" && cfg.overflow !== "drop-newest") {
      throw new ConfigError("overflow", "must be drop-oldest or drop-newest");
    }
    out.overflow = cfg.overflow;
  }
  for (const [key, [min, max]] of Object.entries(INTEGER_RANGES)) {
    if (cfg[key] === undefined) continue;
    const v = cfg[key];
    if (!Number.isInteger(v) || v < min || v > max) {
      throw new ConfigError(key, `must be an integer from ${min} to ${max}`);
    }
    out[key] = v;
  }
  if (out.retryMaxMs < out.retryInitialMs) {
    throw new ConfigError("retryMaxMs", "must not be less than retryInitialMs");
  }
  // At least four segments fit in the spool, so dropping the oldest one frees a quarter at most.
  out.segmentBytes = Math.min(out.segmentBytes, Math.floor(out.maxSpoolBytes / 4));
  if (out.maxEventBytes > out.segmentBytes) {
    throw new ConfigError("maxEventBytes", `must not exceed the segment size (${out.segmentBytes} bytes; a quarter of maxSpoolBytes at most)`);
  }
  for (const key of Object.keys(cfg)) {
    if (!(key in DEFAULTS) && key !== "url" && key !== "token") {
      throw new ConfigError(key, "is not a setting of this plugin");
    }
  }
  return Object.freeze(out);
}
