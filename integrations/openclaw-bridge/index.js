// moltbot-saas bridge: an OpenClaw gateway plugin that reports messages and sessions to the
// moltbot-saas control plane (`POST {url}/events`), which turns them into signed webhooks for
// the tenant they belong to.
//
// Hooks: message_received, message_sent, session_start, session_end. Each call becomes one
// event with a deterministic id, appended to a spool file in the gateway's state directory; a
// background service sends the spool in order, retrying until the control plane accepts each
// event. See docs/gateway.md in the moltbot-saas repository. Plain ES modules, no dependencies.

import { readFileSync } from "node:fs";

import { Bridge, sharedBridge } from "./lib/bridge.js";
import { PLUGIN_ID, readConfig } from "./lib/config.js";
import { HOOK_TYPES } from "./lib/events.js";

const VERSION = (() => {
  try {
    return JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")).version ?? "0";
  } catch {
    return "0";
  }
})();

function prefixed(logger) {
  const base = logger ?? console;
  const at = (level) => (msg) => (base[level] ?? base.info ?? console.log).call(base, `${PLUGIN_ID}: ${msg}`);
  return { info: at("info"), warn: at("warn"), error: at("error") };
}

export default {
  id: PLUGIN_ID,
  name: "moltbot-saas bridge",
  description: "Reports messages and sessions to the moltbot-saas control plane.",
  register(api) {
    const log = prefixed(api.logger);
    let settings;
    try {
      settings = readConfig(api.pluginConfig);
    } catch (e) {
      // A config the gateway accepted but we cannot use: say so once and stay inert.
      log.error(`${e.message}; the bridge is inactive`);
      return;
    }
    const bridge = sharedBridge(settings, (s) => new Bridge({ settings: s, log, version: VERSION }));
    for (const hook of Object.keys(HOOK_TYPES)) {
      // Observation only: the handler returns nothing and never waits.
      api.on(hook, (event, ctx) => {
        bridge.record(hook, event, ctx);
      });
    }
    api.registerService({
      id: `${PLUGIN_ID}-sender`,
      start(ctx) {
        bridge.start(ctx?.stateDir);
      },
      async stop() {
        await bridge.stop();
      },
    });
  },
};
