#!/usr/bin/env python3
"""Import cycles between the modules of each crate (scripts/ci/check-layers.sh runs this).

The rule: at every level of a crate's module tree the modules depend on each other without a
cycle — the top-level modules of the crate, and the children of every folder module among
themselves. A folder module (its `mod.rs` and everything under it) counts as one node at its
parent's level, so a parent and its own children may refer to each other (a child implementing
part of its parent's type is ordinary Rust), but `a -> b -> a` between two top-level modules, or
between two siblings in a folder, is a cycle.

Every source file of a crate's `src/` is a module (`a/b.rs` and `a/b/mod.rs` are `a::b`). A module
depends on another when its code names a path into it: `use crate::x::y::Item`, `super::y::f()`,
`crate::x::Type` in an expression or a type. A path is resolved to the deepest module it names; a
name re-exported by a module (`pub use child::Item;`) is followed to where it is defined, so a
parent that re-exports its children does not depend on them, and a child that imports a
sibling through the parent's re-export depends on the sibling. `mod x;` declarations are not
dependencies, and neither is a re-export unless the module also uses the name itself. Comments
and string literals are ignored (doc links are not imports).

Prints every cycle found (as a path of modules) and exits 1 if there is any; with `--graph`, also
prints each crate's module dependencies (what docs/architecture.md summarises).
"""

import os
import re
import sys

ROOTS = ["crates/*/src"]


def strip(text):
    """Removes comments, string and char literals (keeping line structure irrelevant)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            i = n if j < 0 else j + len(end)
            out.append('""')
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", text[i:i + 4]) or (c == "'" and text.startswith("'\\u{", i)):
            j = text.find("'", i + 1)
            i = j + 1
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def split_inline(code, here):
    """(module path, code) pairs: the file's own code, and each inline `mod name { … }` block
    (e.g. `mod tests`) as a module of its own, whose `super` is the file's module."""
    out, own, i = [], [], 0
    for m in re.finditer(r"\bmod\s+(\w+)\s*\{", code):
        if m.start() < i:
            continue
        depth, j = 1, m.end()
        while j < len(code) and depth:
            depth += code[j] == "{"
            depth -= code[j] == "}"
            j += 1
        own.append(code[i:m.start()])
        out.extend(split_inline(code[m.end():j - 1], here + (m.group(1),)))
        i = j
    own.append(code[i:])
    return [(here, "".join(own))] + out


def modules_of(src):
    """Module path (tuple) -> file, for every .rs file under src."""
    mods = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            parts = rel[:-3].split(os.sep)
            if parts in (["lib"], ["main"]):
                parts = []
            elif parts[-1] == "mod":
                parts = parts[:-1]
            mods[tuple(parts)] = os.path.join(dirpath, f)
    return mods


def use_trees(code):
    """Every `use` statement's paths, expanded (`a::{b, c::d}` -> a::b, a::c::d), with `pub`."""
    for m in re.finditer(r"(\bpub(?:\([^)]*\))?\s+)?\buse\s+([^;]+);", code):
        public = bool(m.group(1))
        for path in expand(m.group(2).strip()):
            yield public, path


def expand(tree):
    # `path as alias` keeps the alias after a `#` (the whitespace around `as` is meaningful).
    tree = re.sub(r"\s+as\s+", "#", tree)
    tree = re.sub(r"\s+", "", tree)
    i = tree.find("{")
    if i < 0:
        return [tree]
    prefix, body = tree[:i], tree[i + 1:-1]
    parts, depth, cur = [], 0, ""
    for ch in body:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    if cur:
        parts.append(cur)
    out = []
    for p in parts:
        for e in expand(p):
            out.append(prefix + e if e != "self" else prefix.rstrip(":"))
    return out


def absolute(path, here):
    """`crate::a::b` / `super::x` / `self::x` relative to module `here` -> list of segments."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    if segs[0] == "crate":
        return segs[1:]
    base = list(here)
    if segs[0] in ("super", "self"):
        while segs and segs[0] in ("super", "self"):
            if segs[0] == "super":
                if not base:
                    return None
                base.pop()
            segs = segs[1:]
        return base + segs
    return None  # an external crate, or a local name


def main():
    show_graph = "--graph" in sys.argv
    import glob

    found = False
    for src in sorted(glob.glob(ROOTS[0])):
        crate = src.split("/")[1]
        mods = modules_of(src)
        codes = {}
        for m, f in mods.items():
            for inner, code in split_inline(strip(open(f, encoding="utf-8").read()), m):
                codes[inner] = code
        inline = {m for m in codes if m not in mods}
        # Re-exports: (module, name) -> absolute path of what it names.
        reexports = {}
        for m, code in codes.items():
            for public, path in use_trees(code):
                if public:
                    path, _, alias = path.partition("#")
                    target = absolute(path, m)
                    if target is None and not path.startswith(("crate", "super", "self")):
                        first = path.split("::")[0]
                        if (m + (first,)) in mods:
                            target = list(m) + path.split("::")
                    if target:
                        reexports[(m, alias or re.sub(r".*::", "", path))] = target

        def resolve(segs, seen=0):
            segs = [s for s in segs if s]
            k = len(segs)
            while k > 0 and tuple(segs[:k]) not in mods:
                k -= 1
            module = tuple(segs[:k])
            rest = segs[k:]
            if rest and (module, rest[0]) in reexports and seen < 10:
                return resolve(reexports[(module, rest[0])] + rest[1:], seen + 1)
            return module

        graph = {m: set() for m in mods}
        for m, code in codes.items():
            # An inline module's dependencies are its file's (a test module's `super::*` is
            # the file's own module).
            owner = m
            while owner in inline:
                owner = owner[:-1]
            paths = []
            for public, path in use_trees(code):
                if public:
                    continue  # a re-export is followed by its users, not a dependency
                path = path.partition("#")[0]
                paths.append(path)
                first = path.split("::")[0]
                # `use child::Item;` inside a module names its own child.
                if first not in ("crate", "super", "self") and (m + (first,)) in mods:
                    paths.append("self::" + path)
            without_uses = re.sub(r"\buse\s+[^;]+;", "", code)
            paths += re.findall(r"\b(?:crate|super|self)(?:::\w+)+", without_uses)
            # A name the module re-exports and also uses itself is a dependency of its own.
            for (owner_mod, name), target in reexports.items():
                if owner_mod == m and re.search(r"\b%s\b" % re.escape(name), without_uses):
                    paths.append("crate::" + "::".join(target))
            for path in paths:
                segs = absolute(path, m)
                if segs is None:
                    continue
                target = resolve(segs)
                if target != owner:
                    graph[owner].add(target)
        # The crate root only declares modules and re-exports: it is not a dependency.
        for m in graph:
            graph[m].discard(())
        name = lambda m: "::".join(m) or "crate"
        if show_graph:
            print(f"== {crate}")
            for m in sorted(graph):
                if graph[m]:
                    print(f"  {name(m)} -> {', '.join(sorted(name(t) for t in graph[m]))}")
        # One graph per level: the children of each scope (the crate root, every folder module).
        scopes = {m[:-1] for m in mods if m} | {()}
        for scope in sorted(scopes):
            level = {}
            for u, targets in graph.items():
                if len(u) <= len(scope) or u[: len(scope)] != scope:
                    continue
                cu = u[: len(scope) + 1]
                level.setdefault(cu, set())
                for v in targets:
                    if len(v) > len(scope) and v[: len(scope)] == scope:
                        cv = v[: len(scope) + 1]
                        if cv != cu:
                            level[cu].add(cv)
            for cycle in find_cycles(level):
                found = True
                print(f"{crate}: import cycle: {' -> '.join(name(m) for m in cycle)}")
    return 1 if found else 0


def find_cycles(graph):
    """One cycle per strongly connected component with more than one module."""
    index, low, stack, on, sccs, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            strong(v)
    cycles = []
    for comp in sccs:
        members = set(comp)
        start = min(comp)
        # a shortest path back to start, within the component
        prev, frontier, seen = {}, [start], {start}
        done = None
        while frontier and done is None:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w == start:
                        done = v
                        break
                    if w in members and w not in seen:
                        seen.add(w)
                        prev[w] = v
                        nxt.append(w)
                if done is not None:
                    break
            frontier = nxt
        path = [done]
        while path[-1] != start:
            path.append(prev[path[-1]])
        cycles.append(list(reversed(path)) + [start])
    return cycles


if __name__ == "__main__":
    sys.exit(main())
