"""The architecture's limits and the registry of numbers, checked against the
tree (docs/architecture.md, docs/protocol.md "Registry of numbers").

- scripts/check_layout.py: no file over 1,200 lines, no function over 120
  (event loops and self-tests aside), no #include cycle between units.
- Every command code, error code, job state, journal record type and
  version in the code is in the registry with the same number, and the
  registry lists nothing the code does not have.
"""

import glob
import os
import re
import subprocess
import sys

ROOT = os.environ.get("ZJQ_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..")


def read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as fh:
        return fh.read()


def sources(*dirs):
    text = ""
    for d in dirs:
        for path in sorted(glob.glob(os.path.join(ROOT, d, "*.[ch]"))):
            with open(path, encoding="utf-8") as fh:
                text += fh.read()
    return text


def registry_section(title):
    """The rows of the markdown table under '### title' in the registry."""
    doc = read("docs", "protocol.md")
    start = doc.index("## Registry of numbers")
    doc = doc[start:]
    at = doc.index("### " + title)
    body = doc[at:].split("\n### ", 1)[0]
    rows = []
    for line in body.splitlines():
        if line.startswith("|") and not re.match(r"^\|[-:| ]+\|$", line):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]     # without the heading row


def test_layout_limits():
    script = os.path.join(ROOT, "scripts", "check_layout.py")
    run = subprocess.run([sys.executable, script, ROOT], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_layout_checker_fails_on_violations(tmp_path):
    """The checker is not a test that cannot fail: a tree with a long file,
    a long function and a cycle is refused, naming each."""
    for d in ("broker", "client", "worker", "common"):
        (tmp_path / d).mkdir()
    long_body = "\n".join("    x += %d;" % i for i in range(130))
    (tmp_path / "broker" / "zjq_a.h").write_text('#include "zjq_b.h"\n')
    (tmp_path / "broker" / "zjq_b.h").write_text('#include "zjq_a.h"\n')
    (tmp_path / "broker" / "zjq_a.c").write_text(
        '#include "zjq_a.h"\nstatic int\ns_long (int x)\n{\n' + long_body + "\n    return x;\n}\n"
        + "\n" * 1200)
    script = os.path.join(ROOT, "scripts", "check_layout.py")
    run = subprocess.run([sys.executable, script, str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 1
    assert "zjq_a.c: 1" in run.stdout and "lines (limit 1200)" in run.stdout
    assert "s_long is 134 lines" in run.stdout
    assert "include cycle: zjq_a -> zjq_b -> zjq_a" in run.stdout


def test_registry_commands():
    code = sources("common")
    defined = {name: int(value, 16) for name, value in
               re.findall(r"#define ZJQ_CMD_(\w+)\s+(0x[0-9A-Fa-f]+)", code)}
    listed = {}
    for row in registry_section("Command codes"):
        for i in range(0, len(row) - 1, 2):
            if row[i]:
                listed[row[i + 1]] = int(row[i], 16)
    assert defined, "no ZJQ_CMD_ defines found"
    assert listed == defined


def test_registry_errors():
    code = read("common", "zjq_error.h")
    defined = {name: int(value) for name, value in
               re.findall(r"XX \((\w+),\s*(-\d+),", code)}
    listed = {}
    for row in registry_section("Error codes"):
        for i in range(0, len(row) - 1, 2):
            if row[i]:
                listed[row[i + 1]] = int(row[i])
    assert defined and listed == defined
    nxt = re.search(r"Next free: (-\d+)", read("docs", "protocol.md").split("### Error codes")[1])
    assert int(nxt.group(1)) == min(defined.values()) - 1


def test_registry_states():
    code = read("common", "zjq_error.h")
    defined = {name.lower(): int(value) for name, value in
               re.findall(r"ZJQ_STATE_(\w+)\s*=\s*(\d+)", code)}
    listed = {row[1].split(" ")[0]: int(row[0]) for row in registry_section("Job states")}
    assert defined and listed == defined


def test_registry_journal():
    code = sources("broker")
    defined = {name: int(value) for name, value in
               re.findall(r"ZJQ_RECORD_(JOB|STATE|REMOVE|GENERATION|ATTEMPT|QUEUE|[A-Z_]+)\s*=\s*(\d+)",
                          code)}
    listed = {row[1]: int(row[0]) for row in registry_section("Journal record types")}
    assert defined and listed == defined
    versions = {row[0]: row[1] for row in registry_section("Versions")}
    fmt = re.search(r"#define ZJQ_JOURNAL_FORMAT\s+(\d+)", code).group(1)
    rec = re.search(r"#define ZJQ_JOB_RECORD_VERSION\s+(\d+)", code).group(1)
    proto = re.search(r"#define ZJQ_PROTO_VERSION\s+(\d+)", sources("common")).group(1)
    assert versions["journal format (file header)"] == fmt
    assert versions["job record version (`v`)"] == rec
    assert versions["wire protocol (header byte 3)"] == proto
