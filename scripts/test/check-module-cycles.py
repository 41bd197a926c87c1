#!/usr/bin/env python3
"""Fails when the daemon's top-level modules import each other in a cycle.

A module is a top-level `mod` of src/lib.rs (a file, or a directory with its children). An edge A -> B
is any `crate::B` path in A's files. lib.rs, the composition root, may use every module; no module may
use the root. Prints every cycle found (as strongly connected components) and exits 1, or exits 0.
"""

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def modules():
    return re.findall(r"^\s*(?:pub\s+)?mod\s+(\w+);", (SRC / "lib.rs").read_text(), re.M)


def files_of(module):
    single = SRC / f"{module}.rs"
    return [single] if single.exists() else sorted((SRC / module).rglob("*.rs"))


def code_only(text):
    """The text without comments, so a path named in a doc comment is not an import."""
    return re.sub(r"//[^\n]*", "", text)


def graph():
    names = modules()
    edges = {name: set() for name in names}
    for name in names:
        for path in files_of(name):
            code = code_only(path.read_text())
            if re.search(r"\bcrate::\{", code):
                # Its names would go unseen, and a cycle through them with them.
                sys.exit(f"{path.relative_to(SRC.parent)}: write `crate::{{a, b}}` as one path per module")
            for target in re.findall(r"\bcrate::(\w+)", code):
                if target not in edges:
                    sys.exit(f"{path.relative_to(SRC.parent)}: crate::{target} is not a module (the root is lib.rs)")
                if target != name:
                    edges[name].add(target)
    return edges


def cycles(edges):
    """Tarjan's strongly connected components with more than one module."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def main():
    edges = graph()
    found = cycles(edges)
    for component in found:
        uses = [f"{a} -> {b}" for a in component for b in sorted(edges[a]) if b in component]
        print(f"module cycle: {', '.join(component)} ({'; '.join(uses)})")
    if found:
        return 1
    print(f"module graph: {len(edges)} modules, {sum(map(len, edges.values()))} imports, no cycle")
    return 0


if __name__ == "__main__":
    sys.exit(main())
