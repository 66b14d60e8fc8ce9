"""Python workers for the binding's tests: zjq.worker.run with a few handlers.

    python3 pyworkers.py ENDPOINT [--concurrency N] [--heartbeat S] [--prefix P]

Queues (prefix "py." by default):
    upper   the payload in upper case, then " pid=PID attempt=N"
    fail    raises ValueError with the payload in the message
    kind    returns what the payload names: "str", "none", "bytearray", or
            an int (which is not allowed: the job fails with TypeError)
    spin    computes sha256 rounds in pure Python (holding the GIL) for the
            payload's number of seconds, reporting progress
    nap     payload "FILE SECONDS": writes PID to FILE once started, sleeps,
            returns "pid=PID attempt=N"
    hold    attempt 1 writes PID to the file named by the payload and waits
            up to 120 s (woken by cancellation: then it creates FILE.cancelled);
            later attempts return "pid=PID attempt=N" at once
"""

import argparse
import hashlib
import os
import sys
import time

import zjq
import zjq.worker


def upper(payload):
    task = zjq.worker.current_task()
    return payload.upper() + b" pid=%d attempt=%d" % (os.getpid(), task.attempt)


def fail(payload):
    raise ValueError("cannot handle %s" % payload.decode())


def kind(payload):
    return {b"str": "text ✓", b"none": None, b"bytearray": bytearray(b"ba")}.get(payload, 42)


def spin(payload):
    task = zjq.worker.current_task()
    seconds = float(payload)
    start = time.monotonic()
    digest = b"x"
    rounds = 0
    while time.monotonic() - start < seconds:
        digest = hashlib.sha256(digest).digest()
        rounds += 1
        if rounds % 20000 == 0:
            task.progress(min(1.0, (time.monotonic() - start) / seconds), "spinning")
    return "%d rounds, pid=%d attempt=%d" % (rounds, os.getpid(), task.attempt)


def nap(payload):
    path, seconds = payload.decode().split()
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % os.getpid())
    os.rename(path + ".tmp", path)
    time.sleep(float(seconds))
    return "pid=%d attempt=%d" % (os.getpid(), zjq.worker.current_task().attempt)


def hold(payload):
    task = zjq.worker.current_task()
    if task.attempt == 1:
        path = payload.decode()
        with open(path + ".tmp", "w") as f:
            f.write("%d\n" % os.getpid())
        os.rename(path + ".tmp", path)
        if task.wait_cancelled(120):
            open(path + ".cancelled", "w").close()
            return b"cancelled"
    return "pid=%d attempt=%d" % (os.getpid(), task.attempt)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoint")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--heartbeat", type=float, default=None)
    parser.add_argument("--prefix", default="py.")
    parser.add_argument("--grace", type=float, default=None)
    parser.add_argument("--curve-secret")
    parser.add_argument("--broker-key")
    args = parser.parse_args()
    handlers = {args.prefix + name: function
                for name, function in dict(upper=upper, fail=fail, kind=kind, spin=spin,
                                           nap=nap, hold=hold).items()}
    return zjq.worker.run(args.endpoint, handlers, concurrency=args.concurrency,
                          heartbeat=args.heartbeat, grace=args.grace,
                          curve_secret_file=args.curve_secret, broker_key_file=args.broker_key)


if __name__ == "__main__":
    sys.exit(main())
