"""The command-line surface: --help, usage errors, unreachable broker,
ZJQ_BROKER."""

import json
import re

import zjqtest as zt


SUBCOMMANDS = ("submit", "status", "result", "cancel", "stats", "ping", "batch")


def run(binary, *args, timeout=30, env=None):
    import os
    import subprocess
    full_env = dict(os.environ)
    full_env.pop("ZJQ_BROKER", None)
    full_env.update(env or {})
    proc = subprocess.run([zt.binary(binary)] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=zt.T(timeout), env=full_env)
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


def test_help_everywhere():
    for binary in ("zjq-broker", "zjq-worker", "zjq"):
        rc, out, err = run(binary, "--help")
        assert rc == 0, (binary, rc, err)
        assert "usage" in (out + err).lower(), (binary, out, err)
    rc, broker_help, _ = run("zjq-broker", "--help")
    for option in ("--bind", "--config", "--endpoint-file", "--max-payload", "--max-jobs",
                   "--max-queued-bytes", "--max-result-bytes", "--result-ttl", "--job-timeout",
                   "--max-attempts"):
        assert option in broker_help, "zjq-broker --help does not mention %s" % option
    rc, worker_help, _ = run("zjq-worker", "--help")
    for option in ("--broker", "--queue", "--concurrency", "--prefetch", "--builtin", "--exec",
                   "--heartbeat", "--grace"):
        assert option in worker_help, "zjq-worker --help does not mention %s" % option
    rc, cli_help, _ = run("zjq", "--help")
    for command in SUBCOMMANDS:
        assert command in cli_help, "zjq --help does not mention %s" % command
    for command in SUBCOMMANDS:
        rc, out, err = run("zjq", command, "--help")
        assert rc == 0, (command, rc, out, err)
        assert command in out, (command, out)


def test_usage_errors_exit_2():
    for args in (("bogus-command",), ("submit",), ("status",), ("result",), ("cancel",),
                 ("submit", "q", "x", "--priority", "not-a-number"),
                 ("submit", "q", "x", "--no-such-option"), ()):
        rc, out, err = run("zjq", *args)
        assert rc == 2, (args, rc, out, err)
        assert err.strip(), (args, "no message on stderr")
    for binary, args in (("zjq-worker", ()),                       # no --queue, no handler
                         ("zjq-worker", ("--queue", "q")),         # no handler
                         ("zjq-worker", ("--queue", "q", "--builtin", "nope")),
                         ("zjq-broker", ("--no-such-option",))):
        rc, out, err = run(binary, *args)
        assert rc != 0, (binary, args, rc, out, err)


def test_unreachable_broker_exit_6():
    dead = "tcp://127.0.0.1:%d" % zt.free_port()
    for args in (("ping",), ("stats",), ("submit", "q", "x"), ("status", "1-1")):
        rc, out, err = zt.cli("--broker", dead, "--request-timeout", 1, *args, timeout=60)
        assert rc == 6, (args, rc, out, err)
        assert re.search(r"unreachable|no answer|not answer|connect", err, re.I), (args, err)


def test_zjq_broker_environment_variable(zjq):
    zjq.start_broker()
    zjq.start_worker("echo", builtin="echo", args=())
    rc, out, err = zt.cli("ping", env={"ZJQ_BROKER": zjq.endpoint})
    assert rc == 0, err
    rc, out, err = zt.cli("submit", "echo", "via env", "--wait", "--timeout", 60,
                          env={"ZJQ_BROKER": zjq.endpoint})
    assert rc == 0, err
    assert out.rstrip(b"\n") == b"via env"
    # --broker wins over the environment.
    dead = "tcp://127.0.0.1:%d" % zt.free_port()
    rc, out, err = zt.cli("--broker", zjq.endpoint, "ping", env={"ZJQ_BROKER": dead})
    assert rc == 0, err


def test_worker_uses_zjq_broker_environment(zjq):
    zjq.start_broker()
    worker = zt.Worker(zjq, zjq.endpoint, "envq", builtin="echo", name="envworker")
    # Drop --broker EP from its command line: the environment names the broker.
    index = worker.argv.index("--broker")
    del worker.argv[index:index + 2]
    worker.extra_env = {"ZJQ_BROKER": zjq.endpoint}
    zjq.processes.append(worker)
    worker.start()
    zjq.wait_worker_registered(worker)
    rc, out, err = zjq.zjq("submit", "envq", "x", "--wait", "--timeout", 60)
    assert rc == 0, err


def test_ping_stats_and_text_output(zjq):
    zjq.start_broker()
    worker = zjq.start_worker(["a", "b"], builtin="echo", concurrency=3)
    rc, out, err = zjq.zjq("ping")
    assert rc == 0, err
    rc, out, err = zjq.zjq("stats")
    assert rc == 0 and out.strip(), err
    stats = zjq.stats()
    for key in ("malformed", "stale_results", "submitted", "succeeded", "failed", "cancelled",
                "expired", "rejected", "workers"):
        assert key in stats["broker"], "stats broker lacks %r: %r" % (key, stats["broker"])
    entry = zjq.worker_info(worker)
    for key in ("id", "host", "pid", "queues", "capacity", "running", "completed"):
        assert key in entry, "stats worker lacks %r: %r" % (key, entry)
    # capacity = concurrency + prefetch; the default prefetch is adaptive and
    # starts optimistic (64 per slot) before any job was measured
    assert sorted(entry["queues"]) == ["a", "b"] and entry["capacity"] == 3 + 3 * 64, entry
    fixed = zjq.start_worker("d", builtin="echo", concurrency=3, args=("--prefetch", "3"))
    assert zjq.worker_info(fixed)["capacity"] == 6
    no_prefetch = zjq.start_worker("c", builtin="echo", concurrency=3, args=("--prefetch", "0"))
    assert zjq.worker_info(no_prefetch)["capacity"] == 3
    job_id = zjq.submit("a", "x")
    zjq.wait_state(job_id, "succeeded")
    stats = zjq.stats()
    queue = stats["queues"]["a"]
    for key in ("queued", "running", "succeeded", "failed", "cancelled", "workers"):
        assert key in queue, (key, queue)
    assert queue["succeeded"] == 1 and queue["workers"] == 1, queue
    rc, out, err = zjq.zjq("status", job_id)
    assert rc == 0 and b"succeeded" in out, (rc, out, err)
    rc, out, err = zjq.zjq("cancel", job_id, "--json")
    assert rc != 0, (rc, out, err)


def test_batch_reports_failures(zjq):
    zjq.start_broker()
    zjq.start_worker("picky", exec_command='read x; [ "$x" != bad ] || { echo "bad input" >&2; exit 1; }; '
                                          'printf "ok:%s" "$x"')
    zjq.start_worker("tabs", exec_command=r"printf 'a\tb\\c'")
    lines = b"good1\nbad\ngood2\n"
    rc, out, err = zjq.zjq("batch", "picky", "--timeout", 120, "--max-attempts", 1, input=lines,
                           timeout=180)
    assert rc == 1, (rc, out, err)
    rows = {}
    for line in out.decode().splitlines():
        line_no, job_id, state, rest = line.split("\t", 3)
        rows[int(line_no)] = (state, rest)
    assert rows[1] == ("succeeded", "ok:good1"), rows
    assert rows[3] == ("succeeded", "ok:good2"), rows
    assert rows[2][0] == "failed" and "bad input" in rows[2][1], rows
    assert err.strip()

    rc, out, err = zjq.zjq("batch", "picky", "--timeout", 120, "--max-attempts", 1, "--json",
                           input=lines, timeout=180)
    assert rc == 1, (rc, out, err)
    objects = [json.loads(line) for line in out.decode().splitlines()]
    assert len(objects) == 3, objects

    rc, out, err = zjq.zjq("batch", "picky", "--timeout", 120, input=b"a\nb\n", timeout=180)
    assert rc == 0, err
    # Tabs and backslashes in a result are escaped, so each job stays one line.
    rc, out, err = zjq.zjq("batch", "tabs", "--timeout", 120, input=b"x\n", timeout=180)
    assert rc == 0, err
    assert out.decode().rstrip("\n").split("\t", 3)[3] == r"a\tb\\c", out
    # Nothing in time: exit 5.
    rc, out, err = zjq.zjq("batch", "nobody", "--timeout", 1, input=b"x\n", timeout=60)
    assert rc == 5, (rc, out, err)


def test_inline_worker(zjq):
    """--inline runs built-in handlers on the connection thread: same results,
    capacity 1 + prefetch, and it refuses what it cannot do."""
    import subprocess
    zjq.start_broker()
    worker = zjq.start_worker("inl", builtin="sha256", args=("--inline", "--prefetch", "64"))
    assert zjq.worker_info(worker)["capacity"] == 65
    payloads = ["3:line %d" % n for n in range(500)]
    rc, out, err = zjq.zjq("batch", "inl", "--window", "100", "--json",
                           input="".join(p + "\n" for p in payloads))
    assert rc == 0, err
    records = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert sorted(r["line"] for r in records) == list(range(1, 501))
    for record in records:
        assert record["state"] == "succeeded", record
        assert record["result"] == zt.sha256_rounds(payloads[record["line"] - 1]), record
    for args in (("--exec", "cat", "--inline"),
                 ("--builtin", "echo", "--inline", "--concurrency", "4")):
        proc = subprocess.run([zt.binary("zjq-worker"), "--queue", "x"] + list(args),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        assert proc.returncode == 2 and b"--inline" in proc.stderr, (args, proc)
