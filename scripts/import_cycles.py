#!/usr/bin/env python3
"""Import cycles among a crate's top-level modules.

    scripts/import_cycles.py runtime/src [--max N] [--edges] [--comments]

The graph has one node per top-level module of the crate (each `x.rs` and
`x/` directly under the source directory, except `lib.rs`) and an edge
`a -> b` whenever code in module `a` names `crate::b` (paths and `use`
lines, including `use crate::{b, ...}` groups; comments are ignored unless
`--comments`). Prints the largest strongly connected component (the
largest import cycle) and every component of more than one module;
`--edges` also prints each edge with the files that make it. With `--max
N`, exits 1 if a cycle has more than N modules.
"""

import argparse
import os
import re
import sys


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(re.sub(r"//.*", "", line) for line in text.split("\n"))


def group_names(group):
    """Top-level names of a `use crate::{...}` group."""
    names, depth, cur = [], 0, ""
    for ch in group + ",":
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            m = re.match(r"\s*([A-Za-z_][A-Za-z0-9_]*)", cur)
            if m:
                names.append(m.group(1))
            cur = ""
        else:
            cur += ch
    return names


def graph(src, comments):
    mods = set()
    for entry in os.listdir(src):
        if entry in ("lib.rs", "main.rs"):
            continue
        if entry.endswith(".rs"):
            mods.add(entry[:-3])
        elif os.path.isdir(os.path.join(src, entry)):
            mods.add(entry)
    edges = {m: set() for m in mods}
    where = {}
    for root, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            top = os.path.relpath(path, src).split(os.sep)[0]
            top = top[:-3] if top.endswith(".rs") else top
            if top not in mods:
                continue
            with open(path) as f:
                text = f.read()
            if not comments:
                text = strip_comments(text)
            targets = set(re.findall(r"crate::([A-Za-z_][A-Za-z0-9_]*)", text))
            for group in re.findall(r"crate::\{([^;]*?)\}\s*;", text, flags=re.S):
                targets.update(group_names(group))
            for t in targets:
                if t in mods and t != top:
                    edges[top].add(t)
                    where.setdefault((top, t), set()).add(os.path.relpath(path, src))
    return mods, edges, where


def components(mods, edges):
    """Tarjan's strongly connected components, largest first."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
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
            out.append(sorted(comp))

    for v in sorted(mods):
        if v not in index:
            visit(v)
    return sorted(out, key=len, reverse=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("--max", type=int)
    ap.add_argument("--edges", action="store_true")
    ap.add_argument("--comments", action="store_true")
    args = ap.parse_args()
    mods, edges, where = graph(args.src, args.comments)
    comps = components(mods, edges)
    print(f"largest import cycle: {len(comps[0])} {' '.join(comps[0])}")
    for comp in comps:
        if len(comp) > 1:
            print(f"  cycle of {len(comp)}: {' '.join(comp)}")
    if args.edges:
        for (a, b), files in sorted(where.items()):
            print(f"{a} -> {b}: {' '.join(sorted(files))}")
    if args.max is not None and len(comps[0]) > args.max:
        sys.exit(1)


if __name__ == "__main__":
    main()
