#!/usr/bin/env python3
"""Load the web front end with hash requests and measure /health meanwhile.

    python3 examples/webapp/load.py --url http://127.0.0.1:8080 --mode zjq \\
            --jobs 200 --rounds 300000 --concurrency 16

It sends --jobs requests to /hash/MODE (at most --concurrency in flight)
and checks every digest. Meanwhile a separate thread asks /health over
its own keep-alive connection, one request at a time, --probe-interval
apart, from the first hash request until the last answer, and records
each latency. It prints the figures (and, with --json, one JSON line):
jobs, seconds, probes, p50/p90/p99/max /health latency in ms.
"""

import argparse
import asyncio
import hashlib
import http.client
import json
import math
import sys
import threading
import time
import urllib.parse

import aiohttp


def sha256_rounds(rounds, data):
    digest = hashlib.sha256(data).digest()
    for _ in range(rounds - 1):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


def percentile(values, fraction):
    """The nearest-rank percentile of values (sorted or not)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


class Prober(threading.Thread):
    """GET /health in a loop until stopped; latencies in seconds."""

    def __init__(self, url, interval):
        super().__init__(daemon=True)
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname, parts.port or 80
        self.interval = interval
        self.latencies = []
        self.errors = []
        self.stopping = threading.Event()

    def run(self):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        while not self.stopping.is_set():
            start = time.perf_counter()
            try:
                connection.request("GET", "/health")
                response = connection.getresponse()
                body = response.read()
                if response.status != 200 or body.strip() != b"ok":
                    self.errors.append("HTTP %d %r" % (response.status, body[:100]))
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(repr(exc))
                connection.close()
                connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            else:
                self.latencies.append(time.perf_counter() - start)
            self.stopping.wait(self.interval)
        connection.close()


async def _hash_requests(url, mode, jobs, rounds, concurrency, timeout):
    """Send the hash requests; returns the problems (empty: all good) and
    the answers [(digest, data)]."""
    problems = []
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:

        async def one(index):
            data = "job-%d" % index
            async with semaphore:
                try:
                    async with session.get("%s/hash/%s" % (url, mode),
                                           params={"rounds": str(rounds), "data": data}) as reply:
                        body = await reply.read()
                        if reply.status != 200:
                            problems.append("job %d: HTTP %d %r" % (index, reply.status, body[:200]))
                            return
                        return json.loads(body)["digest"], data
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    problems.append("job %d: %r" % (index, exc))

        answers = await asyncio.gather(*(one(index) for index in range(jobs)))
    return problems, [answer for answer in answers if answer]


def run_load(url, mode, jobs, rounds, concurrency=16, probe_interval=0.01, timeout=600):
    """Run one measurement; returns a dict of figures (latencies in ms).
    mode "idle" sends no hash requests and probes for `timeout` seconds:
    the baseline."""
    url = url.rstrip("/")
    prober = Prober(url, probe_interval)
    start = time.perf_counter()
    prober.start()
    try:
        if mode == "idle":
            jobs = 0
            time.sleep(timeout)
            problems, answers = [], []
        else:
            problems, answers = asyncio.run(_hash_requests(url, mode, jobs, rounds, concurrency,
                                                           timeout))
    finally:
        prober.stopping.set()
        prober.join()
    seconds = time.perf_counter() - start
    # Check a sample of the digests, once the prober has stopped: computing them
    # here holds this process's GIL, which the prober thread needs
    for digest, data in answers[:5]:
        if digest != sha256_rounds(rounds, data.encode()):
            problems.append("wrong digest for %s" % data)
    latencies = [value * 1000 for value in prober.latencies] or [float("nan")]
    return {
        "mode": mode, "jobs": jobs, "rounds": rounds, "concurrency": concurrency,
        "seconds": round(seconds, 3), "jobs_per_s": round(jobs / seconds, 1),
        "probes": len(prober.latencies),
        "health_p50_ms": round(percentile(latencies, 0.50), 2),
        "health_p90_ms": round(percentile(latencies, 0.90), 2),
        "health_p99_ms": round(percentile(latencies, 0.99), 2),
        "health_max_ms": round(max(latencies), 2),
        "problems": problems + ["/health: %s" % error for error in prober.errors[:10]],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--mode", choices=("zjq", "inline", "idle"), default="zjq",
                        help="idle: no hash requests, probe for --seconds (the baseline)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=300000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--probe-interval", type=float, default=0.01)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = run_load(args.url, args.mode, args.jobs, args.rounds, args.concurrency,
                       args.probe_interval, args.seconds if args.mode == "idle" else 600)
    if args.json:
        print(json.dumps(figures))
    else:
        print("%(mode)s: %(jobs)d jobs of %(rounds)d rounds in %(seconds).2fs; /health over "
              "%(probes)d probes: p50 %(health_p50_ms).1f ms, p90 %(health_p90_ms).1f ms, "
              "p99 %(health_p99_ms).1f ms, max %(health_max_ms).1f ms" % figures)
        for problem in figures["problems"]:
            print("problem: %s" % problem, file=sys.stderr)
    return 1 if figures["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
