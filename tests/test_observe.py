"""Operations: `zjq stats` figures for a known workload, Prometheus /metrics,
`zjq top` as a person sees it (in tmux at 80x24), and structured logs in
both formats. Real processes on 127.0.0.1 (see zjqtest.py)."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import zjqtest as zt

OK_JOBS = 5         # echo jobs that succeed
BAD_JOBS = 3        # jobs whose command fails twice (max-attempts 2)
CANCELLED = 2       # jobs cancelled while queued
LEFT_QUEUED = 4     # jobs left in a queue no worker serves


def run_workload(zjq):
    """Known outcomes on four queues; returns the ids and the monotonic time
    of the first submit."""
    start = time.monotonic()
    ok = [zjq.submit("ok", "x%d" % n) for n in range(OK_JOBS)]
    bad = [zjq.submit("bad", "y%d" % n, "--max-attempts", "2") for n in range(BAD_JOBS)]
    idle = [zjq.submit("idle", "z%d" % n) for n in range(CANCELLED + LEFT_QUEUED)]
    for job_id in idle[:CANCELLED]:
        rc, out, err = zjq.zjq("cancel", job_id)
        assert rc == 0, err
    for job_id in ok:
        zjq.wait_state(job_id, "succeeded")
    for job_id in bad:
        status = zjq.wait_state(job_id, "failed")
        assert status["attempt"] == 2, status
    return start


def test_stats_match_a_known_workload(zjq):
    zjq.start_broker()
    echo = zjq.start_worker("ok", builtin="echo", concurrency=2)
    failing = zjq.start_worker("bad", exec_command="echo nope >&2; exit 3")
    start = run_workload(zjq)
    stats = zjq.stats()
    fresh = time.monotonic() - start < 50       # all of it inside the last minute
    broker, queues = stats["broker"], stats["queues"]

    ok, bad, idle = queues["ok"], queues["bad"], queues["idle"]
    assert (ok["submitted"], ok["succeeded"], ok["failed"], ok["cancelled"],
            ok["queued"], ok["running"], ok["requeued"]) == (OK_JOBS, OK_JOBS, 0, 0, 0, 0, 0), ok
    assert (bad["submitted"], bad["succeeded"], bad["failed"], bad["requeued"],
            bad["queued"]) == (BAD_JOBS, 0, BAD_JOBS, BAD_JOBS, 0), bad
    assert (idle["submitted"], idle["cancelled"], idle["queued"], idle["running"],
            idle["workers"]) == (CANCELLED + LEFT_QUEUED, CANCELLED, LEFT_QUEUED, 0, 0), idle
    assert ok["workers"] == 1 and bad["workers"] == 1
    assert idle["oldest_queued_ms"] > 0 and ok["oldest_queued_ms"] == 0
    # Run times: every attempt that ran, the failed ones too
    assert ok["run_ms_mean"] >= 0 and ok["run_ms_p99"] >= 0
    if fresh:
        assert (ok["submitted_1m"], ok["completed_1m"], ok["run_count_1m"]) == (OK_JOBS,) * 3
        assert bad["run_count_1m"] == 2 * BAD_JOBS and bad["completed_1m"] == BAD_JOBS
        assert (idle["submitted_1m"], idle["completed_1m"]) == (CANCELLED + LEFT_QUEUED,
                                                                CANCELLED)
        assert abs(ok["submitted_per_s"] - OK_JOBS / 60.0) < 1e-9, ok
        assert broker["completed_1m"] == OK_JOBS + BAD_JOBS + CANCELLED, broker
    total = OK_JOBS + BAD_JOBS + CANCELLED + LEFT_QUEUED
    assert (broker["submitted"], broker["succeeded"], broker["failed"],
            broker["cancelled"], broker["queued"]) == (total, OK_JOBS, BAD_JOBS, CANCELLED,
                                                        LEFT_QUEUED), broker
    assert broker["rss_bytes"] > 0 and broker["uptime_ms"] > 0 and broker["queues"] == 3
    assert broker["workers"] == 2 and broker["workers_lost"] == 0

    by_pid = {w["pid"]: w for w in stats["workers"]}
    assert set(by_pid) == {echo.pid, failing.pid}, stats["workers"]
    assert by_pid[echo.pid]["completed"] == OK_JOBS
    assert by_pid[failing.pid]["completed"] == 2 * BAD_JOBS      # attempts answered
    for worker in stats["workers"]:
        assert worker["host"] and worker["version"] and worker["running"] == 0
        assert worker["last_seen_ms_ago"] >= 0 and not worker["draining"]

    # The text view has the same figures
    rc, out, err = zjq.zjq("stats")
    assert rc == 0, err
    text = out.decode()
    row = next(line for line in text.splitlines() if line.startswith("idle "))
    assert row.split()[1:6] == [str(LEFT_QUEUED), "0", "0", "0", str(CANCELLED)], row
    assert "%d" % echo.pid in text and "%d" % failing.pid in text

    # A worker that dies: it leaves the list, its job is requeued and counted
    slow = zjq.start_worker("slow", exec_command="sleep 60", heartbeat=200)
    job_id = zjq.submit("slow", "s")
    zjq.wait_state(job_id, "running")
    slow.kill()
    zt.wait_until(lambda: zjq.worker_info(slow) is None, 30, message="dead worker dropped")
    stats = zjq.stats()
    queue = stats["queues"]["slow"]
    assert (queue["queued"], queue["running"], queue["requeued"], queue["workers"]) == \
        (1, 0, 1, 0), queue
    assert stats["broker"]["workers_lost"] == 1 and stats["broker"]["workers"] == 2
    status = zjq.status(job_id)
    assert status["state"] == "queued" and status["attempt"] == 1, status


def metrics_text(port, path="/metrics"):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=zt.T(10)) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def samples(text):
    """{(name, frozenset(labels)): value} via prometheus_client's parser."""
    from prometheus_client.parser import text_string_to_metric_families
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def test_metrics_parse_and_match(zjq):
    port = zt.free_port()
    zjq.start_broker("--metrics", "127.0.0.1:%d" % port)
    zjq.start_worker("ok", builtin="echo", concurrency=2)
    zjq.start_worker("bad", exec_command="echo nope >&2; exit 3")
    run_workload(zjq)
    found = samples(metrics_text(port))

    def value(name, **labels):
        key = (name, frozenset(labels.items()))
        assert key in found, "no sample %s %r" % (name, labels)
        return found[key]

    assert value("zjq_jobs_submitted_total", queue="ok") == OK_JOBS
    assert value("zjq_jobs_finished_total", queue="ok", state="succeeded") == OK_JOBS
    assert value("zjq_jobs_finished_total", queue="bad", state="failed") == BAD_JOBS
    assert value("zjq_jobs_finished_total", queue="idle", state="cancelled") == CANCELLED
    assert value("zjq_job_attempts_requeued_total", queue="bad") == BAD_JOBS
    assert value("zjq_queue_jobs", queue="idle", state="queued") == LEFT_QUEUED
    assert value("zjq_queue_jobs", queue="ok", state="running") == 0
    assert value("zjq_queue_workers", queue="ok") == 1
    assert value("zjq_queue_oldest_job_age_seconds", queue="idle") > 0
    assert value("zjq_broker_workers") == 2
    assert value("zjq_broker_jobs") == OK_JOBS + BAD_JOBS + CANCELLED + LEFT_QUEUED
    assert value("zjq_broker_resident_memory_bytes") > 0
    assert value("zjq_broker_malformed_messages_total") == 0
    # Histograms: cumulative buckets ending in +Inf = count
    for name, queue, count in (("zjq_queue_wait_seconds", "ok", OK_JOBS),
                               ("zjq_job_run_seconds", "ok", OK_JOBS),
                               ("zjq_job_run_seconds", "bad", 2 * BAD_JOBS),
                               ("zjq_queue_wait_seconds", "idle", 0)):
        assert value(name + "_count", queue=queue) == count
        buckets = sorted((float(dict(labels)["le"]), v) for (n, labels), v in found.items()
                         if n == name + "_bucket" and dict(labels)["queue"] == queue)
        assert len(buckets) == 20 and buckets[-1] == (float("inf"), count), buckets
        assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:])), buckets
        assert value(name + "_sum", queue=queue) >= 0

    with pytest.raises(urllib.error.HTTPError) as info:
        metrics_text(port, "/nope")
    assert info.value.code == 404

    # Slow and idle HTTP clients do not stall the broker: half-sent requests
    # on every connection slot, then jobs still run and /metrics still
    # answers once they time out or a slot frees.
    hogs = []
    for _ in range(20):
        hog = socket.create_connection(("127.0.0.1", port), timeout=zt.T(10))
        hogs.append(hog)
        try:
            hog.sendall(b"GET /metr")
        except OSError:
            pass                # past the connection limit: closed by the server
    rc, out, err = zjq.zjq("submit", "ok", "still here", "--wait", "--timeout", 60)
    assert rc == 0 and out == b"still here", (rc, out, err)
    rc, out, err = zjq.zjq("ping")
    assert rc == 0, err
    for hog in hogs:
        hog.close()
    text = zt.wait_until(lambda: _try_metrics(port), 30, interval=0.2,
                         message="/metrics answers again")
    assert samples(text)[("zjq_jobs_finished_total",
                          frozenset({("queue", "ok"), ("state", "succeeded")}))] == OK_JOBS + 1


def _try_metrics(port):
    try:
        return metrics_text(port)
    except (OSError, urllib.error.URLError):
        return None


def test_metrics_option_errors(zjq):
    broker = zt.binary("zjq-broker")
    for bad in ("9555", "127.0.0.1:70000", "[::1:9555"):
        proc = subprocess.run([broker, "--metrics", bad], capture_output=True, timeout=zt.T(30))
        assert proc.returncode == 2 and b"metrics" in proc.stderr, (bad, proc)
    # A port that is taken: the broker says so and does not start
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        proc = subprocess.run([broker, "--bind", "tcp://127.0.0.1:*", "--metrics",
                               "127.0.0.1:%d" % port], capture_output=True, timeout=zt.T(30))
        assert proc.returncode == 1 and b"cannot serve metrics" in proc.stderr, proc


class Tmux:
    """A private tmux server (its own socket) running one command at 80x24."""

    def __init__(self, directory, command, env):
        self.socket = os.path.join(directory, "tmux.sock")
        self.env = env
        self.run("new-session", "-d", "-s", "top", "-x", "80", "-y", "24", command)

    def run(self, *args, check=True):
        return subprocess.run(["tmux", "-S", self.socket] + list(args), capture_output=True,
                              env=self.env, timeout=zt.T(30), check=check)

    def screen(self):
        proc = self.run("capture-pane", "-p", "-t", "top", check=False)
        return proc.stdout.decode(errors="replace") if proc.returncode == 0 else None

    def alive(self):
        return self.run("has-session", "-t", "top", check=False).returncode == 0

    def kill(self):
        self.run("kill-server", check=False)


@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed (scripts/lib.sh)")
def test_top_in_tmux_shows_queues_and_workers(zjq):
    zjq.start_broker()
    alpha = zjq.start_worker(["alpha", "beta"], builtin="echo")
    for n in range(3):
        zjq.wait_state(zjq.submit("alpha", "a%d" % n), "succeeded")
    zjq.submit("gamma", "nobody serves this")
    env = dict(os.environ, ZJQ_BROKER=zjq.endpoint, TERM="xterm")
    command = "%s top" % zt.binary("zjq")
    for quit_key in ("q", "C-c"):
        tmux = Tmux(zjq.dir, command, env)
        try:
            def shown():
                screen = tmux.screen()
                return screen if screen and "gamma" in screen and str(alpha.pid) in screen \
                    else None
            screen = zt.wait_until(shown, 30, interval=0.2, message="zjq top shows the stats")
            print(screen)
            lines = screen.rstrip("\n").split("\n")
            assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), lines
            assert lines[0].startswith("zjq top  %s" % zjq.endpoint), lines[0]
            rows = {line.split()[0]: line.split() for line in lines if line.split()}
            assert rows["alpha"][1:4] == ["0", "0", "3"], rows["alpha"]     # queued, run, done
            assert rows["gamma"][1] == "1" and rows["gamma"][9] == "0", rows["gamma"]
            assert rows["beta"][9] == "1", rows["beta"]                       # one worker
            worker_line = next(line for line in lines if str(alpha.pid) in line)
            # running/capacity: none running; the capacity is the worker's
            # adaptive credit (its latest CREDIT), at least its one slot
            capacity = re.search(r" 0/(\d+) ", worker_line)
            assert capacity and int(capacity.group(1)) >= 1, worker_line
            assert "alpha,beta" in worker_line, worker_line
            # Refreshed every second: the clock in the header moves
            first = lines[0]
            zt.wait_until(lambda: (tmux.screen() or first).split("\n")[0] != first, 30,
                          interval=0.2, message="the view to refresh")
            tmux.run("send-keys", "-t", "top", quit_key)
            zt.wait_until(lambda: not tmux.alive(), 30, interval=0.2,
                          message="zjq top to quit on %s" % quit_key)
        finally:
            tmux.kill()


def log_lines(process):
    """The process's own lines (without the harness's start markers)."""
    text = process.log().decode(errors="replace")
    return [line for line in text.splitlines() if line and not line.startswith("=== start:")]


def test_logs_one_line_per_event_in_both_formats(zjq):
    # JSON: every line is one object with ts, level, event
    broker = zjq.start_broker("--log-format", "json", verbose=False)
    worker = zjq.start_worker("echo", builtin="echo", args=("--log-format", "json"))
    zjq.wait_state(zjq.submit("echo", "hi"), "succeeded")
    worker.stop()
    zt.wait_until(lambda: any('"event":"worker_left"' in line for line in log_lines(broker)),
                  30, message="the broker logs the worker leaving")
    broker.stop()
    for process, expected in ((broker, {"listening", "started", "worker_joined",
                                        "worker_draining", "worker_left", "signal",
                                        "stopped"}),
                              (worker, {"started", "connecting", "connected", "job_started",
                                        "job_finished", "stopped"})):
        events = []
        for line in log_lines(process):
            record = json.loads(line)
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["ts"]), line
            assert record["level"] in ("info", "warning", "error"), line     # no -v: no debug
            events.append(record)
        names = {record["event"] for record in events}
        assert expected <= names, (expected - names, names)
    joined = next(r for r in map(json.loads, log_lines(broker)) if r["event"] == "worker_joined")
    assert joined["pid"] == worker.pid and joined["queues"] == "echo", joined
    assert isinstance(joined["capacity"], int), joined
    finished = next(r for r in map(json.loads, log_lines(worker))
                    if r["event"] == "job_finished")
    assert finished["outcome"] == "done" and isinstance(finished["ms"], int), finished

    # Text: time level=... event=... key=value, values with spaces quoted;
    # -v adds debug events
    broker = zjq.start_broker(verbose=True)
    worker = zjq.start_worker("echo", builtin="echo", endpoint=broker.endpoint, wait=False)
    job_id = zjq.submit("echo", "hi", endpoint=broker.endpoint)
    zjq.wait_state(job_id, "succeeded", endpoint=broker.endpoint)
    pattern = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(debug|info|warning|error)"
                         r" event=[a-z_]+( [a-z_]+=(\"([^\"\\]|\\.)*\"|\S*))*")
    for process in (broker, worker):
        for line in log_lines(process):
            assert pattern.fullmatch(line), line
    text = "\n".join(log_lines(broker))
    assert re.search(r" level=info event=worker_joined worker=\S+ host=\S+ pid=%d queues=echo "
                     % worker.pid, text), text
    assert re.search(r" level=debug event=job_accepted job=%s queue=echo " % job_id, text), text
    assert " level=info event=memory_only msg=\"no --journal: " in text
