#!/usr/bin/env python3
"""fleet-watch.py - watches the config files of several gateways and reports every moment a
channel account is in two of them at once (used by e2e-fleet.sh).

    fleet-watch.py watch OUT_DIR NAME=FILE NAME=FILE ...   # until SIGTERM, polling every 50 ms
    fleet-watch.py check NAME=FILE NAME=FILE ...           # once; exit 1 if an account is shared
    fleet-watch.py show FILE                               # its accounts and agents, one a line

A file's accounts are the keys of `channels.<kind>.accounts` (as `<kind>:<accountId>`); a
missing file holds none. Files are replaced by atomic renames, so each read sees one whole
version; a file that does not parse is an error of its own (a torn write).

Reading several files is not one atomic act, so an overlap counts only when it is proven: after
reading every file, each file is stat-ed again, and the reading stands only if no file was
replaced meanwhile (same inode and ctime). Then every version read was the file's content at
the moment the last one was read, and an account found in two of them was in both at once.
Otherwise the poll is taken again.

`watch` writes to OUT_DIR:
  events.log     one line per change: `<epoch ms> <name> +|- <kind>:<accountId> <ctime ns>`
                 (the ctime of the file version read: when it was renamed into place, the
                 order of two versions even when one poll saw both), and
                 `<ms> <name> ! <error>` for a file that does not parse
  violations.log one line per proven overlap (created only when there is one)
  polls          the number of consistent polls so far (rewritten about once a second)
Only the standard library.
"""

import json
import os
import signal
import sys
import time


def identity(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_ctime_ns, st.st_size)


def load(path):
    """The document in the file at `path` ({} when it is missing); raises ValueError."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return {}
    return json.loads(data)


def agents(doc):
    """The agent ids of a document (both dialects)."""
    section = doc.get("agents") if isinstance(doc, dict) else None
    if not isinstance(section, dict):
        return set()
    found = set()
    if isinstance(section.get("entries"), dict):
        found.update(section["entries"])
    if isinstance(section.get("list"), list):
        found.update(a.get("id") for a in section["list"] if isinstance(a, dict) and a.get("id"))
    return found


def accounts(path, doc=None):
    """The accounts in the file at `path` (none when it is missing); raises ValueError."""
    if doc is None:
        doc = load(path)
    found = set()
    channels = doc.get("channels") if isinstance(doc, dict) else None
    if isinstance(channels, dict):
        for kind, section in channels.items():
            if isinstance(section, dict) and isinstance(section.get("accounts"), dict):
                found.update(f"{kind}:{acc}" for acc in section["accounts"])
    return frozenset(found)


def consistent_read(files, identities=None):
    """{name: accounts or error string}, read while no file changed; None if one did. With
    `identities` (a dict), fills it with each file's (inode, ctime ns, size) or None."""
    before = {name: identity(path) for name, path in files}
    read = {}
    for name, path in files:
        try:
            read[name] = accounts(path)
        except ValueError as e:
            read[name] = f"does not parse: {e}"
    after = {name: identity(path) for name, path in files}
    if before != after:
        return None
    if identities is not None:
        identities.update(before)
    return read


def overlaps(read):
    seen = {}
    shared = []
    for name, accs in read.items():
        if isinstance(accs, str):
            continue
        for acc in sorted(accs):
            if acc in seen:
                shared.append((acc, seen[acc], name))
            else:
                seen[acc] = name
    return shared


def parse_files(args):
    files = []
    for arg in args:
        name, sep, path = arg.partition("=")
        if not sep or not name or not path:
            sys.exit(f"fleet-watch.py: expected NAME=FILE, got {arg!r}")
        files.append((name, path))
    if len(files) < 2:
        sys.exit("fleet-watch.py: give at least two NAME=FILE")
    return files


def check(files):
    for _ in range(100):
        read = consistent_read(files)
        if read is not None:
            break
        time.sleep(0.01)
    else:
        sys.exit("fleet-watch.py: the files kept changing while being read")
    bad = [f"{n}: {v}" for n, v in read.items() if isinstance(v, str)]
    for acc, a, b in overlaps(read):
        bad.append(f"{acc} is in both {a} and {b}")
    for line in bad:
        print(line)
    return 1 if bad else 0


def watch(out, files):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    last = {name: frozenset() for name, _ in files}
    polls = 0
    written = 0.0
    with open(os.path.join(out, "events.log"), "a", buffering=1) as events:
        while not stop:
            ids = {}
            read = consistent_read(files, ids)
            if read is None:
                continue
            polls += 1
            ms = int(time.time() * 1000)
            for name, accs in read.items():
                if isinstance(accs, str):
                    events.write(f"{ms} {name} ! {accs}\n")
                    continue
                ctime = ids[name][1] if ids[name] else 0
                for acc in sorted(accs - last[name]):
                    events.write(f"{ms} {name} + {acc} {ctime}\n")
                for acc in sorted(last[name] - accs):
                    events.write(f"{ms} {name} - {acc} {ctime}\n")
                last[name] = accs
            shared = overlaps(read)
            if shared:
                with open(os.path.join(out, "violations.log"), "a") as v:
                    for acc, a, b in shared:
                        v.write(f"{ms} {acc} is in both {a} and {b}\n")
            now = time.monotonic()
            if now - written >= 1.0:
                with open(os.path.join(out, "polls.tmp"), "w") as p:
                    p.write(f"{polls}\n")
                os.replace(os.path.join(out, "polls.tmp"), os.path.join(out, "polls"))
                written = now
            time.sleep(0.05)
    with open(os.path.join(out, "polls.tmp"), "w") as p:
        p.write(f"{polls}\n")
    os.replace(os.path.join(out, "polls.tmp"), os.path.join(out, "polls"))


def show(path):
    try:
        doc = load(path)
    except ValueError as e:
        sys.exit(f"fleet-watch.py: {path} does not parse: {e}")
    for acc in sorted(accounts(path, doc)):
        print(acc)
    for agent in sorted(agents(doc)):
        print(f"agent:{agent}")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "show":
        show(sys.argv[2])
        return
    if len(sys.argv) >= 2 and sys.argv[1] == "check":
        sys.exit(check(parse_files(sys.argv[2:])))
    if len(sys.argv) >= 3 and sys.argv[1] == "watch":
        watch(sys.argv[2], parse_files(sys.argv[3:]))
        return
    sys.exit(__doc__)


if __name__ == "__main__":
    main()
