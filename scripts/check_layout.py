#!/usr/bin/env python3
"""check_layout.py: the architecture limits of docs/architecture.md, checked.

    python3 scripts/check_layout.py [ROOT] [--list]

In broker/ client/ worker/ common/:
  - no source file (.c, .h) over MAX_FILE_LINES lines;
  - no function over MAX_FUNCTION_LINES lines, except self-tests (named
    *_test, and their s_test_* parts) and the event loops named in EVENT_LOOPS;
  - no #include cycle between units. A unit is a .c with its .h, and its
    _private.h: zjq_broker.c, zjq_broker.h and zjq_broker_private.h are the
    unit zjq_broker, and a .c that has no header of its own but includes
    X_private.h is part of unit X (one class split over several files).

Prints what is over and exits 1, or prints a summary and exits 0. --list
prints every function over 80 lines and every file over 900 as well.
"""

import os
import re
import sys

MAX_FILE_LINES = 1200
MAX_FUNCTION_LINES = 120
SOFT_FILE_LINES = 900
SOFT_FUNCTION_LINES = 80
DIRS = ("broker", "client", "worker", "common")
#  Event loops may be longer than a function should be: they read as one.
EVENT_LOOPS = {"zjq_broker_run", "zjq_worker_run"}

_INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
_IDENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*$")
_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "do", "else"}


def strip_code(text):
    """The text with comments, strings and character literals blanked
    (newlines kept, so line numbers stay) and preprocessor lines removed."""
    out = []
    i, n = 0, len(text)
    at_line_start = True
    while i < n:
        c = text[i]
        if at_line_start and c == "#":
            #  a preprocessor line, with its continuations
            while i < n and text[i] != "\n":
                if text[i] == "\\" and i + 1 < n and text[i + 1] == "\n":
                    out.append("\n")
                    i += 2
                    continue
                i += 1
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "*":
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join("\n" if ch == "\n" else " " for ch in text[i:end]))
            i = end
            continue
        if c == "/" and i + 1 < n and text[i + 1] == "/":
            while i < n and text[i] != "\n":
                i += 1
            continue
        if c in "\"'":
            quote = c
            j = i + 1
            while j < n and text[j] != quote:
                j += 2 if text[j] == "\\" else 1
            out.append(quote + " " * max(0, min(j, n) - i - 1) + quote)
            i = j + 1
            continue
        out.append(c)
        if c == "\n":
            at_line_start = True
        elif not c.isspace():
            at_line_start = False
        i += 1
    return "".join(out)


def functions(text):
    """(name, first line, last line) of each function defined in C text."""
    code = strip_code(text)
    result = []
    depth = 0
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == "{":
            if depth == 0:
                head = code[:i].rstrip()
                name = None
                if head.endswith(")"):
                    #  find the matching '(' of the parameter list
                    level, j = 0, len(head) - 1
                    while j >= 0:
                        if head[j] == ")":
                            level += 1
                        elif head[j] == "(":
                            level -= 1
                            if level == 0:
                                break
                        j -= 1
                    m = _IDENT.search(head[:j]) if j > 0 else None
                    if m and m.group(1) not in _KEYWORDS:
                        before = head[: m.start()].rstrip()
                        if not before.endswith("="):
                            name = m.group(1)
                            start_line = code.count("\n", 0, m.start()) + 1
                if name:
                    #  the body: match braces
                    level, j = 0, i
                    while j < n:
                        if code[j] == "{":
                            level += 1
                        elif code[j] == "}":
                            level -= 1
                            if level == 0:
                                break
                        j += 1
                    end_line = code.count("\n", 0, j) + 1
                    result.append((name, start_line, end_line))
                    i = j + 1
                    continue
            depth += 1
        elif c == "}":
            depth = max(0, depth - 1)
        i += 1
    return result


def unit_of(path, headers):
    """The unit a file belongs to (see the top of this file)."""
    stem = os.path.splitext(os.path.basename(path))[0]
    if stem.endswith("_private"):
        return stem[: -len("_private")]
    return stem


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    listing = "--list" in argv
    root = os.path.abspath(args[0] if args else os.path.join(os.path.dirname(__file__), ".."))
    files = []
    for d in DIRS:
        base = os.path.join(root, d)
        if not os.path.isdir(base):
            continue
        for name in sorted(os.listdir(base)):
            if name.endswith((".c", ".h")):
                files.append(os.path.join(d, name))
    problems, notes = [], []
    stems = {os.path.splitext(os.path.basename(f))[0] for f in files}
    headers = {os.path.basename(f): f for f in files if f.endswith(".h")}
    includes = {}           #  unit -> set of units it includes
    unit = {}
    for f in files:
        with open(os.path.join(root, f), encoding="utf-8", errors="replace") as fh:
            text = fh.read()
        lines = text.count("\n")
        if lines > MAX_FILE_LINES:
            problems.append(f"{f}: {lines} lines (limit {MAX_FILE_LINES})")
        elif listing and lines > SOFT_FILE_LINES:
            notes.append(f"{f}: {lines} lines")
        incs = [i for i in _INCLUDE.findall(text) if os.path.basename(i) in headers]
        u = unit_of(f, headers)
        if f.endswith(".c") and u not in stems - {u} and u + ".h" not in headers:
            #  a .c without a header of its own: part of the unit whose
            #  private header it includes, if any
            for i in incs:
                s = os.path.splitext(os.path.basename(i))[0]
                if s.endswith("_private"):
                    u = s[: -len("_private")]
                    break
        unit[f] = u
        includes.setdefault(u, set())
        for i in incs:
            target = unit_of(headers[os.path.basename(i)], headers)
            if target != u:
                includes[u].add(target)
        if f.endswith(".c"):
            for name, first, last in functions(text):
                length = last - first + 1
                exempt = (name.endswith("_test") or name.startswith("s_test_")
                          or name in EVENT_LOOPS)
                if length > MAX_FUNCTION_LINES and not exempt:
                    problems.append(f"{f}:{first}: {name} is {length} lines "
                                    f"(limit {MAX_FUNCTION_LINES})")
                elif listing and length > SOFT_FUNCTION_LINES:
                    notes.append(f"{f}:{first}: {name} {length} lines"
                                 + (" (exempt)" if exempt else ""))
    #  cycles: depth-first search over the unit graph
    state, stack, cycles = {}, [], set()

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(includes.get(u, ())):
            if state.get(v) == 1:
                cyc = stack[stack.index(v):] + [v]
                cycles.add(" -> ".join(cyc))
            elif not state.get(v):
                visit(v)
        stack.pop()
        state[u] = 2

    sys.setrecursionlimit(10000)
    for u in sorted(includes):
        if not state.get(u):
            visit(u)
    for c in sorted(cycles):
        problems.append(f"include cycle: {c}")
    for note in notes:
        print("note:", note)
    for p in problems:
        print("OVER:", p)
    total_units = len(includes)
    if problems:
        print(f"check_layout: {len(problems)} problem(s) in {len(files)} files, {total_units} units")
        return 1
    print(f"check_layout: ok: {len(files)} files, {total_units} units, "
          f"files <= {MAX_FILE_LINES} lines, functions <= {MAX_FUNCTION_LINES} lines, "
          f"no include cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
