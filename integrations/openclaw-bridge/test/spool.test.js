// The spool: order, acknowledgement across reopening, compaction, bounds, crash remnants, lock.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { Spool, SpoolBusyError } from "../lib/spool.js";
import { line, memoryLog, tempDir } from "./helpers.js";

function open(dir, o = {}) {
  const log = memoryLog();
  const s = new Spool({ dir, maxBytes: 1 << 20, segmentBytes: 1 << 16, overflow: "drop-oldest", warn: log.warn, ...o }).open();
  s.log = log;
  return s;
}

/** Takes and acknowledges `n` events; their ids. */
function take(s, n = Infinity) {
  const ids = [];
  for (let item = s.peek(); item && ids.length < n; item = s.peek()) {
    ids.push(JSON.parse(item.line).id);
    s.ack(item);
  }
  return ids;
}

function segments(dir) {
  return fs.readdirSync(dir).filter((f) => f.startsWith("seg-")).sort();
}

test("events come out in order, each once, and peek does not consume", (t) => {
  const dir = tempDir(t);
  const s = open(dir);
  for (const id of ["a", "b", "c"]) assert.equal(s.append(line(id)), true);
  assert.equal(s.pending, 3);
  const first = s.peek();
  assert.equal(JSON.parse(first.line).id, "a");
  assert.equal(JSON.parse(s.peek().line).id, "a", "peek again: the same");
  assert.deepEqual(take(s), ["a", "b", "c"]);
  assert.equal(s.peek(), null);
  assert.equal(s.pending, 0);
  s.ack(first); // a stale ack changes nothing
  assert.equal(s.peek(), null);
  s.close();
});

test("a reopened spool resumes after the last acknowledged event, nothing lost or repeated", (t) => {
  const dir = tempDir(t);
  let s = open(dir);
  for (const id of ["a", "b", "c", "d"]) s.append(line(id));
  assert.deepEqual(take(s, 2), ["a", "b"]);
  const inFlight = s.peek(); // read, not acknowledged: a crash here must send it again
  assert.equal(JSON.parse(inFlight.line).id, "c");
  s.close();
  s = open(dir);
  assert.equal(s.pending, 2);
  s.append(line("e"));
  assert.deepEqual(take(s), ["c", "d", "e"]);
  s.close();
  s = open(dir);
  assert.equal(s.peek(), null);
  assert.equal(s.pending, 0);
  s.close();
});

test("an unclosed spool (a killed process) resumes from its cursor too", (t) => {
  const dir = tempDir(t);
  const s = open(dir);
  for (const id of ["a", "b", "c"]) s.append(line(id));
  take(s, 1);
  // No close(): the lock names this process, which the next open (same pid) takes over.
  const again = open(dir);
  assert.deepEqual(take(again), ["b", "c"]);
  again.close();
});

test("segments rotate; acknowledged ones are deleted; the cursor survives it", (t) => {
  const dir = tempDir(t);
  const s = open(dir, { segmentBytes: 4096 });
  const ids = Array.from({ length: 100 }, (_, i) => `e${i}`);
  for (const id of ids) s.append(line(id, { data: { pad: "x".repeat(100) } }));
  const before = segments(dir);
  assert.ok(before.length >= 4, `${before.length} segments`);
  assert.deepEqual(take(s, 60), ids.slice(0, 60));
  s.peek(); // retires what is done
  const after = segments(dir);
  assert.ok(after.length < before.length, "finished segments deleted");
  assert.equal(after[0] > before[0], true);
  s.close();
  const again = open(dir, { segmentBytes: 4096 });
  assert.deepEqual(take(again), ids.slice(60));
  again.close();
});

test("full spool, drop-oldest: the oldest segment goes, its unsent events counted", (t) => {
  const dir = tempDir(t);
  const big = (id) => line(id, { data: { pad: "y".repeat(900) } }); // ~1 KB each
  const s = open(dir, { maxBytes: 16 * 1024, segmentBytes: 4096 });
  for (let i = 0; i < 40; i += 1) assert.equal(s.append(big(`e${i}`)), true);
  assert.ok(s.bytes <= 16 * 1024, `${s.bytes} bytes`);
  assert.ok(s.overflowDropped > 0);
  const left = take(s);
  assert.equal(left.length + s.overflowDropped, 40, "every event either sent or counted as dropped");
  assert.equal(left.at(-1), "e39", "the newest kept");
  assert.deepEqual(left, left.slice().sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))), "in order");
  s.close();
});

test("full spool, drop-newest: new events are refused and counted, old ones kept", (t) => {
  const dir = tempDir(t);
  const big = (id) => line(id, { data: { pad: "y".repeat(900) } });
  const s = open(dir, { maxBytes: 16 * 1024, segmentBytes: 4096, overflow: "drop-newest" });
  const results = [];
  for (let i = 0; i < 40; i += 1) results.push(s.append(big(`e${i}`)));
  const refused = results.filter((r) => !r).length;
  assert.ok(refused > 0);
  assert.equal(s.overflowDropped, refused);
  const left = take(s);
  assert.equal(left[0], "e0", "the oldest kept");
  assert.equal(left.length, 40 - refused);
  // Once sent, room again.
  s.peek();
  assert.equal(s.append(big("later")), true);
  s.close();
});

test("a torn last line (crash mid-write) is closed and skipped as unreadable", (t) => {
  const dir = tempDir(t);
  const s = open(dir);
  s.append(line("a"));
  s.close();
  const seg = path.join(dir, segments(dir)[0]);
  fs.appendFileSync(seg, '{"id":"torn","ty');
  const again = open(dir);
  assert.ok(again.log.lines.warn.some((m) => m.includes("partial line")));
  again.append(line("b"));
  const items = [];
  for (let item = again.peek(); item; item = again.peek()) {
    items.push(item.line);
    again.ack(item);
  }
  assert.equal(items.length, 3);
  assert.equal(JSON.parse(items[0]).id, "a");
  assert.throws(() => JSON.parse(items[1]), "the torn line is returned as is, for the caller to skip");
  assert.equal(JSON.parse(items[2]).id, "b");
  again.close();
});

test("an unreadable cursor means sending everything again, not losing it", (t) => {
  const dir = tempDir(t);
  const s = open(dir);
  for (const id of ["a", "b"]) s.append(line(id));
  take(s, 1);
  s.close();
  fs.writeFileSync(path.join(dir, "cursor.json"), "{garbage");
  const again = open(dir);
  assert.ok(again.log.lines.warn.some((m) => m.includes("cursor.json is unreadable")));
  assert.deepEqual(take(again), ["a", "b"]);
  again.close();
});

test("a spool in use by another live process is refused; a stale lock is taken over", (t) => {
  const dir = tempDir(t);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "lock"), String(process.ppid)); // alive: our parent
  assert.throws(() => open(dir), SpoolBusyError);
  fs.writeFileSync(path.join(dir, "lock"), "4194303"); // above pid_max's default: no such process
  const s = open(dir);
  assert.equal(fs.readFileSync(path.join(dir, "lock"), "utf8"), String(process.pid));
  s.close();
  assert.equal(fs.existsSync(path.join(dir, "lock")), false);
});

test("files are private: directory 0700, files 0600", (t) => {
  const dir = path.join(tempDir(t), "spool");
  const s = open(dir);
  s.append(line("a"));
  take(s);
  assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
  for (const f of fs.readdirSync(dir)) assert.equal(fs.statSync(path.join(dir, f)).mode & 0o077, 0, f);
  s.close();
});
