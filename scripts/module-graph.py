#!/usr/bin/env python3
"""Module import graph of a crate's src/ and a cycle check.

Usage: scripts/module-graph.py [SRC_DIR]   (default: maf-train/src)

Every `crate::a::b`, `super::x` and `self::x` path outside comments (and every
item of a brace import such as `use super::{x, y::Z}`) is an edge from the file's
module to the longest known module prefix of the path (`mod x;`
declarations are containment, not imports, and are not edges; lib.rs and main.rs
are left out; in an inline `mod x {` block, taken to run to the end of the file as
test modules do, `super` is the file's own module). Prints one line per module with its imports, then either
"no import cycle" (exit 0) or every cycle found (exit 1).
"""
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else "maf-train/src"
mods = {}
for root, _, files in os.walk(src):
    for f in files:
        if not f.endswith(".rs") or (root == src and f in ("lib.rs", "main.rs")):
            continue
        rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
        if rel[-1] == "mod":
            rel = rel[:-1]
        mods["::".join(rel)] = os.path.join(root, f)

path_re = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
# A brace import (`use super::{Arch, Real};`, `use crate::{a, b::C}`): an edge to
# each item's module (the first name of each item, or the module before the brace).
brace_re = re.compile(r"\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^}]*)")
# A path that starts with a child module's name (`output::temp_in` in io/mod.rs).
rel_re = re.compile(r"(?<![:\w])([a-z_][a-z0-9_]*)::[\w{]")


def resolve(parts):
    for n in range(len(parts), 0, -1):
        m = "::".join(parts[:n])
        if m in mods:
            return m
    return None


edges = {m: set() for m in mods}
for m, file in mods.items():
    here = m.split("::")
    inline = False
    for line in open(file, encoding="utf-8"):
        code = line.split("//", 1)[0]
        # Inside an inline module (`mod tests {`, to the end of the file), `super`
        # is the file's own module.
        inline = inline or re.match(r"\s*(pub(\([\w:]+\))?\s+)?mod\s+\w+\s*\{", code) is not None
        for kind, rest in path_re.findall(code):
            parts = rest.strip(":").split("::")
            # `self` is the file's own module, `super` its parent (for
            # `a/b.rs` and for `a/b/mod.rs` alike).
            base = {"crate": [], "self": here, "super": here if inline else here[:-1]}[kind]
            t = resolve(base + parts)
            if t and t != m:
                edges[m].add(t)
        for kind, rest, items in brace_re.findall(code):
            base = {"crate": [], "self": here, "super": here if inline else here[:-1]}[kind]
            base = base + [p for p in rest.split("::") if p]
            names = [i.strip().split("::")[0].strip("{ ") for i in items.split(",")]
            for name in [n for n in names if n] or [None]:
                t = resolve(base + [name]) if name else None
                t = t or resolve(base)
                if t and t != m:
                    edges[m].add(t)
        for first in rel_re.findall(code):
            if first in ("crate", "super", "self", "mod"):
                continue
            child = "::".join(here + [first]) if here != [""] else first
            if child in mods and child != m:
                edges[m].add(child)

for m in sorted(edges):
    print(f"{m:22} -> {', '.join(sorted(edges[m])) or '-'}")

# Cycle check: depth-first search with colours.
WHITE, GREY, BLACK = 0, 1, 2
colour = {m: WHITE for m in edges}
stack, cycles = [], []


def visit(m):
    colour[m] = GREY
    stack.append(m)
    for t in sorted(edges[m]):
        if colour[t] == GREY:
            cycles.append(stack[stack.index(t):] + [t])
        elif colour[t] == WHITE:
            visit(t)
    stack.pop()
    colour[m] = BLACK


for m in sorted(edges):
    if colour[m] == WHITE:
        visit(m)
if cycles:
    for c in cycles:
        print("cycle: " + " -> ".join(c))
    sys.exit(1)
print(f"{len(edges)} modules, {sum(len(e) for e in edges.values())} edges: no import cycle")
