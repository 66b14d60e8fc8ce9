#!/usr/bin/env python3
"""Measure the web app side by side: /health latency with no load, while
hash requests go through zjq, and while the same work runs inline.

    python3 examples/webapp/measure.py [--build build] [--jobs 200] [--inline-jobs 40]

It starts, on 127.0.0.1 ephemeral ports, a zjq-broker, two
`zjq-worker --builtin sha256` processes (at nice 19: batch work on a shared
host) and app.py; calibrates the sha256 rounds of a ~50 ms job with
`zjq-bench --calibrate-sha256 50`; runs load.py's measurement in each mode;
prints one table; and stops everything it started, by PID.
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import load  # noqa: E402


def calibrate_rounds(zjq_bench, ms):
    """sha256 rounds that take ms here. A busy machine makes a calibration
    low (it times the wall clock), never high: take the largest of three."""
    rounds = []
    for _ in range(3):
        out = subprocess.run([zjq_bench, "--calibrate-sha256", str(ms)], stdout=subprocess.PIPE,
                             check=True, timeout=120).stdout.decode()
        rounds.append(int(dict(item.split("=", 1) for item in out.split())["rounds"]))
    return max(rounds)


def row(figures):
    """One line of the table (latencies in ms)."""
    return ("| %(mode)s | %(jobs)d | %(seconds).1f | %(probes)d | %(health_p50_ms).1f | "
            "%(health_p90_ms).1f | %(health_p99_ms).1f | %(health_max_ms).1f |" % figures)


HEADER = ("| mode | jobs | seconds | /health probes | p50 ms | p90 ms | p99 ms | max ms |\n"
          "|---|---|---|---|---|---|---|---|")


def wait_for(predicate, what, timeout=30):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("measure.py: timed out waiting for %s" % what)
        time.sleep(0.05)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--inline-jobs", type=int, default=40)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--job-ms", type=float, default=50)
    parser.add_argument("--nice", type=int, default=19, help="of the workers")
    args = parser.parse_args()
    binary = lambda name: os.path.join(args.build, name)    # noqa: E731
    work = tempfile.mkdtemp(prefix="zjq-webapp.")
    env = dict(os.environ, ZJQ_LIBRARY=os.environ.get("ZJQ_LIBRARY", binary("libzjq.so")))
    env.pop("ZJQ_BROKER", None)
    processes = []

    def start(name, argv):
        with open(os.path.join(work, name + ".log"), "wb") as log:
            processes.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                              stderr=subprocess.STDOUT, env=env))
        return processes[-1]

    try:
        endpoint_file = os.path.join(work, "broker.endpoint")
        start("broker", [binary("zjq-broker"), "--bind", "tcp://127.0.0.1:*",
                         "--endpoint-file", endpoint_file])
        wait_for(lambda: os.path.exists(endpoint_file), "the broker")
        with open(endpoint_file) as f:
            endpoint = f.readline().strip()
        for index in range(2):
            start("worker%d" % index, ["nice", "-n", str(args.nice), binary("zjq-worker"),
                                       "--broker", endpoint, "--queue", "sha256",
                                       "--builtin", "sha256"])
        port_file = os.path.join(work, "app.port")
        start("app", [sys.executable, os.path.join(HERE, "app.py"), "--broker", endpoint,
                      "--port", "0", "--port-file", port_file])
        wait_for(lambda: os.path.exists(port_file), "the web app")
        with open(port_file) as f:
            url = "http://127.0.0.1:%d" % int(f.read())
        urllib.request.urlopen(url + "/health", timeout=10).read()
        rounds = calibrate_rounds(binary("zjq-bench"), args.job_ms)
        print("sha256 rounds for %g ms: %d; %d cores; load average before: %.2f"
              % (args.job_ms, rounds, os.cpu_count(), os.getloadavg()[0]), flush=True)
        results = [load.run_load(url, "idle", 0, 0, timeout=3),
                   load.run_load(url, "zjq", args.jobs, rounds, args.concurrency),
                   load.run_load(url, "inline", args.inline_jobs, rounds, 4)]
        print(HEADER)
        for figures in results:
            print(row(figures))
        print("load average after: %.2f" % os.getloadavg()[0])
        problems = [p for figures in results for p in figures["problems"]]
        for problem in problems:
            print("problem: %s" % problem, file=sys.stderr)
        if not problems:
            shutil.rmtree(work)
        return 1 if problems else 0
    finally:
        for process in reversed(processes):     # the app, the workers, then the broker
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if os.path.exists(work):
            print("logs: %s" % work, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
