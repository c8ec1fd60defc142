// spool.js - the bridge's durable queue: an append-only log of JSON lines, cut into segment
// files, with a persisted cursor (the first byte not yet acknowledged).
//
//   <dir>/seg-0000000000000001.jsonl   events, one JSON object a line, appended only
//   <dir>/seg-0000000000000002.jsonl   the newest segment takes the appends
//   <dir>/cursor.json                  {"segment": 1, "offset": 4096}: everything before it is done
//   <dir>/lock                         the pid of the process using the spool
//
// Appends are one synchronous write of a whole line to a file opened for appending, so a line
// is in the file (the page cache) before the hook that wrote it returns, and a crash can at
// worst leave a torn last line, which `open` ends with a newline so the reader skips it as
// unreadable. The cursor is replaced atomically (write, rename) after every acknowledgement:
// after a restart nothing acknowledged is sent again (except the one in flight at a crash,
// which the control plane's idempotent ingest deduplicates), and nothing unacknowledged is lost.
// Compaction is deleting whole segments the cursor has left behind, so nothing is ever
// rewritten. The spool is bounded: when an append would pass `maxBytes`, either the oldest
// segment is deleted (its unsent events are counted as dropped) or the new event is refused.

import fs from "node:fs";
import path from "node:path";

const SEGMENT_RE = /^seg-(\d{16})\.jsonl$/;
const CURSOR = "cursor.json";
const LOCK = "lock";
const NEWLINE = 0x0a;

function segmentName(seq) {
  return `seg-${String(seq).padStart(16, "0")}.jsonl`;
}

/** The spool is used by another live process. */
export class SpoolBusyError extends Error {
  constructor(dir, pid) {
    super(`the spool ${dir} is in use by process ${pid}`);
    this.name = "SpoolBusyError";
  }
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
}

export class Spool {
  /**
   * @param {object} o
   * @param {string} o.dir            the spool directory (created, mode 0700)
   * @param {number} o.maxBytes       the most bytes its segments may hold together
   * @param {number} o.segmentBytes   a segment is closed once it holds this many bytes
   * @param {"drop-oldest"|"drop-newest"} o.overflow  what gives way when it is full
   * @param {(msg: string) => void} [o.warn]
   */
  constructor({ dir, maxBytes, segmentBytes, overflow, warn }) {
    this.dir = dir;
    this.maxBytes = maxBytes;
    this.segmentBytes = Math.min(segmentBytes, Math.floor(maxBytes / 4));
    this.overflow = overflow;
    this.warn = warn ?? (() => {});
    /** Sorted by seq; the last takes the appends. */
    this.segments = [];
    this.cursor = { segment: 1, offset: 0 };
    this.total = 0;
    /** Events appended and not yet acknowledged or dropped. */
    this.pending = 0;
    /** Events lost to a full spool (either policy), since open. */
    this.overflowDropped = 0;
    this.fd = null;
    this.reader = null; // {seq, fd}
    this.opened = false;
  }

  /** Opens (or creates) the spool: takes the lock, drops finished segments, repairs a torn tail. */
  open() {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.lock();
    this.cursor = this.readCursor();
    const seqs = fs
      .readdirSync(this.dir)
      .map((f) => SEGMENT_RE.exec(f))
      .filter(Boolean)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
    for (const seq of seqs) {
      if (seq < this.cursor.segment) {
        fs.rmSync(this.file(seq), { force: true });
        continue;
      }
      this.segments.push({ seq, size: fs.statSync(this.file(seq)).size });
    }
    if (this.segments.length === 0) {
      this.segments.push({ seq: Math.max(this.cursor.segment, 1), size: 0 });
    }
    const first = this.segments[0];
    if (first.seq !== this.cursor.segment) this.cursor = { segment: first.seq, offset: 0 };
    this.cursor.offset = Math.min(this.cursor.offset, first.size);
    const last = this.segments[this.segments.length - 1];
    this.fd = fs.openSync(this.file(last.seq), "a", 0o600);
    if (last.size > 0 && this.lastByte(last) !== NEWLINE) {
      // A torn line from a crash mid-write: end it, so it is one unreadable line, skipped.
      fs.writeSync(this.fd, "\n");
      last.size += 1;
      this.warn(`spool: ${segmentName(last.seq)} ended in a partial line (a crash mid-write); it will be skipped`);
    }
    this.total = this.segments.reduce((n, s) => n + s.size, 0);
    this.pending = this.countPending();
    this.writeCursor();
    this.opened = true;
    return this;
  }

  /** Closes the files and gives up the lock. */
  close() {
    if (!this.opened) return;
    this.opened = false;
    this.closeReader();
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
    try {
      if (Number(fs.readFileSync(path.join(this.dir, LOCK), "utf8")) === process.pid) {
        fs.rmSync(path.join(this.dir, LOCK), { force: true });
      }
    } catch {
      // Already gone.
    }
  }

  /** Bytes held (acknowledged ones not yet compacted away included). */
  get bytes() {
    return this.total;
  }

  /**
   * Appends one line (JSON and "\n"). Returns true, or false when the spool is full and the
   * policy is drop-newest. Throws on an IO error (a full disk).
   */
  append(line) {
    if (!this.opened) throw new Error("spool is not open");
    const buf = Buffer.from(line, "utf8");
    let last = this.segments[this.segments.length - 1];
    if (last.size > 0 && last.size + buf.length > this.segmentBytes) last = this.rotate();
    while (this.total + buf.length > this.maxBytes) {
      if (this.overflow === "drop-newest" || this.segments.length < 2) {
        this.overflowDropped += 1;
        return false;
      }
      this.dropOldest();
    }
    let done = 0;
    while (done < buf.length) done += fs.writeSync(this.fd, buf, done, buf.length - done);
    last.size += buf.length;
    this.total += buf.length;
    this.pending += 1;
    return true;
  }

  /**
   * The first event not yet acknowledged: {segment, start, end, line}, or null when there is
   * none. Finished segments are deleted on the way; unreadable lines are returned too (the
   * caller skips them with `ack`).
   */
  peek() {
    if (!this.opened) return null;
    for (;;) {
      const seg = this.segments[0];
      const isLast = this.segments.length === 1;
      if (this.cursor.offset >= seg.size) {
        if (isLast) return null;
        this.retireFirst();
        continue;
      }
      const line = this.readLine(seg, this.cursor.offset);
      if (line !== null) {
        return { segment: seg.seq, start: this.cursor.offset, end: this.cursor.offset + line.bytes, line: line.text };
      }
      // No newline before the end of a closed segment: its tail is unreadable.
      if (!isLast) {
        this.warn(`spool: ${segmentName(seg.seq)} ends in a partial line; skipped`);
        this.pending = Math.max(0, this.pending - 1);
        this.retireFirst();
        continue;
      }
      return null;
    }
  }

  /** Marks `item` (from peek) done: the cursor moves past it and is persisted. */
  ack(item) {
    if (!this.opened || item.segment !== this.cursor.segment || item.end <= this.cursor.offset) return;
    this.cursor = { segment: item.segment, offset: item.end };
    this.pending = Math.max(0, this.pending - 1);
    this.writeCursor();
  }

  // ---- internals ---------------------------------------------------------------------------

  file(seq) {
    return path.join(this.dir, segmentName(seq));
  }

  lock() {
    const file = path.join(this.dir, LOCK);
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        fs.writeFileSync(file, String(process.pid), { flag: "wx", mode: 0o600 });
        return;
      } catch (e) {
        if (e.code !== "EEXIST") throw e;
      }
      let pid = NaN;
      try {
        pid = Number(fs.readFileSync(file, "utf8").trim());
      } catch {
        // Removed meanwhile: try again.
      }
      if (pid === process.pid) return;
      if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) throw new SpoolBusyError(this.dir, pid);
      fs.rmSync(file, { force: true }); // stale: its process is gone
    }
    throw new SpoolBusyError(this.dir, "unknown");
  }

  readCursor() {
    let text;
    try {
      text = fs.readFileSync(path.join(this.dir, CURSOR), "utf8");
    } catch (e) {
      if (e.code === "ENOENT") return { segment: 1, offset: 0 };
      throw e;
    }
    try {
      const c = JSON.parse(text);
      if (Number.isSafeInteger(c.segment) && c.segment >= 1 && Number.isSafeInteger(c.offset) && c.offset >= 0) {
        return { segment: c.segment, offset: c.offset };
      }
    } catch {
      // Fall through.
    }
    // Without a cursor everything is sent again; the control plane drops what it already has.
    this.warn("spool: cursor.json is unreadable; sending the whole spool again (duplicates are dropped by id)");
    return { segment: 1, offset: 0 };
  }

  writeCursor() {
    const file = path.join(this.dir, CURSOR);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify({ segment: this.cursor.segment, offset: this.cursor.offset }) + "\n", { mode: 0o600 });
    fs.renameSync(tmp, file);
  }

  lastByte(seg) {
    const fd = fs.openSync(this.file(seg.seq), "r");
    try {
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, seg.size - 1);
      return b[0];
    } finally {
      fs.closeSync(fd);
    }
  }

  rotate() {
    const next = { seq: this.segments[this.segments.length - 1].seq + 1, size: 0 };
    const fd = fs.openSync(this.file(next.seq), "a", 0o600);
    fs.closeSync(this.fd);
    this.fd = fd;
    this.segments.push(next);
    return next;
  }

  /** Deletes the oldest segment with its unsent events (full spool, drop-oldest). */
  dropOldest() {
    const seg = this.segments[0];
    const from = seg.seq === this.cursor.segment ? this.cursor.offset : 0;
    const lost = this.countLines(seg, from);
    this.pending = Math.max(0, this.pending - lost);
    this.overflowDropped += lost;
    this.retireFirst();
  }

  /** Deletes the first segment and moves the cursor to the start of the next. */
  retireFirst() {
    const seg = this.segments.shift();
    if (this.reader?.seq === seg.seq) this.closeReader();
    this.total -= seg.size;
    this.cursor = { segment: this.segments[0].seq, offset: 0 };
    // The cursor moves first: a crash in between leaves a segment behind the cursor, which the
    // next `open` deletes, never a cursor pointing at a deleted segment.
    this.writeCursor();
    fs.rmSync(this.file(seg.seq), { force: true });
  }

  closeReader() {
    if (this.reader) fs.closeSync(this.reader.fd);
    this.reader = null;
  }

  /** The line starting at `offset` ({text, bytes} with its newline), or null if it has none. */
  readLine(seg, offset) {
    if (this.reader?.seq !== seg.seq) {
      this.closeReader();
      this.reader = { seq: seg.seq, fd: fs.openSync(this.file(seg.seq), "r") };
    }
    let size = Math.min(64 * 1024, seg.size - offset);
    for (;;) {
      const buf = Buffer.alloc(size);
      const n = fs.readSync(this.reader.fd, buf, 0, size, offset);
      const nl = buf.subarray(0, n).indexOf(NEWLINE);
      if (nl >= 0) return { text: buf.subarray(0, nl).toString("utf8"), bytes: nl + 1 };
      if (n < size || offset + n >= seg.size) return null;
      size = Math.min(size * 4, seg.size - offset);
    }
  }

  countLines(seg, from) {
    if (from >= seg.size) return 0;
    const fd = fs.openSync(this.file(seg.seq), "r");
    try {
      let count = 0;
      const buf = Buffer.alloc(256 * 1024);
      for (let at = from; at < seg.size; ) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, seg.size - at), at);
        if (n <= 0) break;
        for (let i = 0; i < n; i += 1) if (buf[i] === NEWLINE) count += 1;
        at += n;
      }
      return count;
    } finally {
      fs.closeSync(fd);
    }
  }

  countPending() {
    return this.segments.reduce(
      (n, seg) => n + this.countLines(seg, seg.seq === this.cursor.segment ? this.cursor.offset : 0),
      0,
    );
  }
}
