"""The include graph of worker/ points one way (issue 7, item 7).

Reads every #include "..." of worker/ and checks:
- there is no cycle between modules (a module is a .c and its .h);
- the layers hold: main above worker, worker above dispatch, dispatch above
  everything else; nothing below includes a layer above it;
- no .c file declares another module's function by hand (a prototype of a
  function that is defined in another .c file).
Prints one line per check and "N passed, N failed"."""

import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else "."
WORKER = os.path.join(ROOT, "worker")
TOP = ["main", "worker", "dispatch"]  # from the top down; the rest is below dispatch


def module_of(path):
    base = os.path.basename(path)
    return os.path.splitext(base)[0]


def main():
    files = []
    for d, _, names in os.walk(WORKER):
        files += [os.path.join(d, n) for n in names if n.endswith((".c", ".h"))]
    graph = {}
    for f in files:
        m = module_of(f)
        graph.setdefault(m, set())
        with open(f) as fh:
            for inc in re.findall(r'^#include "([^"]+)"', fh.read(), re.M):
                dep = module_of(inc)
                if dep != m:
                    graph[m].add(dep)
    passed = failed = 0

    def ok(cond, what):
        nonlocal passed, failed
        print(("ok   " if cond else "FAIL ") + what)
        if cond:
            passed += 1
        else:
            failed += 1

    # cycles: depth-first search with colours
    colour, cycle = {}, []

    def visit(m, stack):
        colour[m] = 1
        for d in sorted(graph.get(m, ())):
            if colour.get(d) == 1 and not cycle:
                cycle.extend(stack[stack.index(d):] + [d] if d in stack else [m, d])
            elif d in graph and not colour.get(d):
                visit(d, stack + [d])
        colour[m] = 2

    for m in sorted(graph):
        if not colour.get(m):
            visit(m, [m])
    ok(not cycle, "no include cycle between modules" + (f": {' -> '.join(cycle)}" if cycle else ""))

    def rank(m):
        return TOP.index(m) if m in TOP else len(TOP)

    upward = sorted(f"{m} -> {d}" for m, deps in graph.items() for d in deps
                    if d in graph and rank(d) < rank(m))
    ok(not upward, "main -> worker -> dispatch -> the rest: nothing includes a layer above it"
       + (f" ({', '.join(upward)})" if upward else ""))
    ok(all(d not in ("main",) for deps in graph.values() for d in deps), "nothing includes main")

    # hand-written prototypes of other modules' functions
    defined = {}
    for f in files:
        if f.endswith(".c"):
            with open(f) as fh:
                for name in re.findall(r'^[a-z][\w \*]*?\b(\w+)\([^;{]*\)\s*\{', fh.read(), re.M):
                    defined[name] = f
    hand = []
    for f in files:
        if not f.endswith(".c"):
            continue
        with open(f) as fh:
            for name in re.findall(r'^[a-z][\w \*]*?\b(\w+)\([^;{]*\);', fh.read(), re.M):
                if name in defined and defined[name] != f:
                    hand.append(f"{os.path.relpath(f, ROOT)}: {name}")
    ok(not hand, "no .c file declares another module's function by hand"
       + (f" ({', '.join(hand)})" if hand else ""))
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
