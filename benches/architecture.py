#!/usr/bin/env python3
"""Prints the shape figures issue 10 asks for, from the source alone:
- the largest import cycle among `src` files (`use crate::…` and `crate::…`
  paths, resolved to the file that defines the module);
- the longest functions;
- which of `store`, `domain`, `payments`, `mail`, `jobs` import `http`.
Run: python3 benches/architecture.py [src]
"""
import os
import re
import sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "src"


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return tuple(rel)


files = {}
for root, _, names in os.walk(SRC):
    for n in names:
        if n.endswith(".rs"):
            p = os.path.join(root, n)
            files[module_of(p)] = p


def resolve(parts):
    """The longest module prefix of `parts` that is a file."""
    for k in range(len(parts), 0, -1):
        if tuple(parts[:k]) in files:
            return tuple(parts[:k])
    return None


def uses(path):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"#\[cfg\(test\)\]\s*mod tests\s*\{.*", "", text, flags=re.S)
    # Comments name modules without depending on them ("https://" in a
    # string is not a comment: its slashes follow a colon).
    text = re.sub(r"(^|\s)//[^\n]*", r"\1", text, flags=re.M)
    found = set()
    for m in re.finditer(r"crate::([A-Za-z_][\w:]*)", text):
        found.add(resolve(m.group(1).split("::")))
    # `use crate::{a::b, c::{d, e}}`: the first segment of each item.
    for m in re.finditer(r"use crate::\{(.*?)\};", text, flags=re.S):
        body, depth, item, items = m.group(1), 0, "", []
        for ch in body:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                items.append(item)
                item = ""
            else:
                item += ch
        items.append(item)
        for it in items:
            it = it.strip()
            head = it.split("::")[0].strip()
            inner = re.match(r"(\w+)::\{(.*)\}", it, flags=re.S)
            if inner:
                for sub in inner.group(2).split(","):
                    sub = sub.strip().split("::")[0].strip()
                    if sub and sub != "self":
                        found.add(resolve([inner.group(1), sub]))
                found.add(resolve([inner.group(1)]))
            elif head:
                found.add(resolve(it.replace(" ", "").split("::")))
    found.discard(None)
    return found


graph = {m: uses(p) - {m} for m, p in files.items()}
imports_only = {m: set(d) for m, d in graph.items()}
# A parent module depends on the children it declares (`mod x;`), as
# cargo-modules draws it: a child that imports its parent closes a cycle.
for m, p in files.items():
    for c in re.findall(r"^\s*(?:pub(?:\([\w:]+\))?\s+)?mod\s+(\w+)\s*;", open(p, encoding="utf-8").read(), flags=re.M):
        if m + (c,) in files:
            graph[m].add(m + (c,))


def sccs(graph):
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
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
            out.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return out


name = lambda m: "::".join(m) or "crate"
print(f"files: {len(files)}")
for label, g in (("imports only", imports_only), ("imports and mod declarations", graph)):
    cycles = sorted((c for c in sccs(g) if len(c) > 1), key=len, reverse=True)
    print(f"largest import cycle ({label}): {len(cycles[0]) if cycles else 0} files")
    for c in cycles[:2]:
        print("  cycle of", len(c), ":", ", ".join(sorted(name(m) for m in c)))

layers = ("store", "domain", "payments", "mail", "jobs")
bad = sorted(name(m) for m, deps in graph.items()
             if m and m[0] in layers and any(d and d[0] == "http" for d in deps))
print(f"modules under {'/'.join(layers)} importing http: {len(bad)}", bad)

fns = []
for m, p in files.items():
    lines = open(p, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        mm = re.match(r"\s*(pub(\([\w:]+\))?\s+)?(async\s+)?fn\s+(\w+)", lines[i])
        if mm:
            depth, j, started = 0, i, False
            while j < len(lines):
                depth += lines[j].count("{") - lines[j].count("}")
                if "{" in lines[j]:
                    started = True
                if started and depth <= 0:
                    break
                if not started and lines[j].rstrip().endswith(";"):
                    break
                j += 1
            if started:
                fns.append((j - i + 1, f"{os.path.relpath(p, SRC)}:{i + 1} {mm.group(4)}"))
            i = i + 1
        else:
            i += 1
fns.sort(reverse=True)
print("longest functions:")
for n, where in fns[:8]:
    print(f"  {n:4} lines  {where}")
print(f"functions over 80 lines: {sum(1 for n, _ in fns if n > 80)}")
