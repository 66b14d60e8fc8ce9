#!/usr/bin/env python3
"""Jobs per second from one asyncio client: the Python twin of zjq-bench.

    python3 bindings/python/bench.py --broker tcp://127.0.0.1:5555 --queue echo \\
            --jobs 20000 --window 1000

Closed loop, as `zjq-bench --window W`: W tasks each submit a job, await its
result, and submit the next, so W jobs are in flight; a job counts when its
result is back. The first --warmup jobs are not timed. The last line is
machine-readable, like zjq-bench's:
    jobs=N seconds=S jobs_per_s=R cpu_us_per_job=C
(cpu: this process's user+system time over the timed part, per job).
"""

import argparse
import asyncio
import os
import sys
import time

try:
    import zjq
except ImportError:             # from a checkout
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import zjq


async def closed_loop(client, queue, jobs, window, payload):
    """Run jobs through the broker, window at a time; returns the count of
    wrong results."""
    remaining = jobs
    wrong = 0

    async def lane():
        nonlocal remaining, wrong
        while remaining > 0:
            remaining -= 1
            job = await client.submit(queue, payload)
            if await job.result() != payload:
                wrong += 1

    await asyncio.gather(*(lane() for _ in range(min(window, jobs))))
    return wrong


async def main(args):
    client = await zjq.connect(args.broker, request_timeout=60)
    payload = b"x" * args.size
    await closed_loop(client, args.queue, args.warmup, args.window, payload)
    cpu = time.process_time()
    start = time.perf_counter()
    wrong = await closed_loop(client, args.queue, args.jobs, args.window, payload)
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    client.close()
    print("jobs=%d seconds=%.3f jobs_per_s=%.0f cpu_us_per_job=%.1f window=%d wrong=%d"
          % (args.jobs, seconds, args.jobs / seconds, cpu * 1e6 / args.jobs, args.window, wrong))
    return 1 if wrong else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", default="tcp://127.0.0.1:5555")
    parser.add_argument("--queue", default="echo")
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=1000)
    sys.exit(asyncio.run(main(parser.parse_args())))
