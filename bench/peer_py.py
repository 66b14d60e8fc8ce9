"""peer_py.py: the Python peers of the peer table (bench/peers.sh).

  peer_py.py celery client JOBS WINDOW       Celery (Redis broker and result
  peer_py.py celery fill JOBS                backend at 127.0.0.1:$PEER_REDIS_PORT)
  peer_py.py mp client JOBS WINDOW           multiprocessing.Pool(2)
  peer_py.py mp fill JOBS                    ... its workers stopped

client: JOBS 64-byte echo jobs with WINDOW in flight (closed loop: the oldest
result is awaited, then the next job goes out), after 200 untimed ones; a job
counts when its result is back, checked byte for byte. Last line: jobs=
seconds= jobs_per_s= p50_us= p99_us= bad= window= complete= (zjq-bench's keys).
fill: JOBS 100-byte jobs queued for nobody; Celery: prints jobs=N once Redis
holds them; mp: both pool workers are stopped (SIGSTOP) first, and the line
also has rss_before_kb= and rss_after_kb= of this (the pool's) process.

The Celery workers are `celery -A peer_py worker -P solo` (one process each,
started by peers.sh); this module is their app. Every run is bounded by JOBS
and a timeout.
"""
import collections
import os
import signal
import sys
import time

WARMUP = 200
TIMEOUT = 300


def payload(index):
    head = "%016x" % index
    return head + "".join(chr(97 + (index + at) % 26) for at in range(16, 64))


def echo(data):
    return data


if os.environ.get("PEER_REDIS_PORT"):
    from celery import Celery
    _url = "redis://127.0.0.1:%s" % os.environ["PEER_REDIS_PORT"]
    app = Celery("peer_py", broker=_url + "/0", backend=_url + "/1")
    app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                    worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
    celery_echo = app.task(name="echo")(echo)


def rss_kb(pid="self"):
    with open("/proc/%s/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def run_client(submit, jobs, window):
    """submit(data) -> a handle with .get(timeout=); FIFO closed loop"""
    total = jobs + WARMUP
    pending = collections.deque()
    latencies = []
    bad = done = sent = 0
    start = None
    deadline = time.monotonic() + TIMEOUT
    while done < total and time.monotonic() < deadline:
        if done == WARMUP and start is None:
            start = time.monotonic()
        limit = WARMUP if done < WARMUP else total
        while sent < limit and len(pending) < window:
            data = payload(sent)
            pending.append((sent, time.monotonic(), submit(data)))
            sent += 1
        index, sent_at, handle = pending.popleft()
        result = handle.get(timeout=TIMEOUT)
        if result != payload(index):
            bad += 1
            break
        if index >= WARMUP:
            latencies.append((time.monotonic() - sent_at) * 1e6)
        done += 1
    seconds = time.monotonic() - (start or time.monotonic())
    latencies.sort()
    count = len(latencies)
    p50 = latencies[count // 2] if count else 0
    p99 = latencies[count * 99 // 100] if count else 0
    complete = int(done == total and not bad)
    print("jobs=%d seconds=%.3f jobs_per_s=%.1f p50_us=%.0f p99_us=%.0f bad=%d window=%d "
          "complete=%d" % (count, seconds, count / seconds if seconds > 0 else 0, p50, p99,
                           bad, window, complete))
    return 0 if complete else 1


def main(argv):
    if len(argv) < 4 or argv[1] not in ("celery", "mp") or argv[2] not in ("client", "fill"):
        sys.stderr.write(__doc__)
        return 2
    peer, mode, jobs = argv[1], argv[2], int(argv[3])
    window = int(argv[4]) if mode == "client" else 0
    if peer == "celery":
        if mode == "client":
            return run_client(celery_echo.delay, jobs, window)
        data = "m" * 100
        for _ in range(jobs):
            celery_echo.apply_async((data,), ignore_result=True)
        print("jobs=%d" % jobs)
        return 0
    import multiprocessing
    with multiprocessing.Pool(2) as pool:
        if mode == "client":
            return run_client(lambda data: pool.apply_async(echo, (data,)), jobs, window)
        workers = [process.pid for process in pool._pool]
        for pid in workers:
            os.kill(pid, signal.SIGSTOP)
        before = rss_kb()
        data = b"m" * 100
        for _ in range(jobs):
            pool.apply_async(echo, (data,))
        time.sleep(1)           # the pool's task thread moves what it can to the pipe
        after = rss_kb()
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
        pool.terminate()
        print("jobs=%d rss_before_kb=%d rss_after_kb=%d" % (jobs, before, after))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
