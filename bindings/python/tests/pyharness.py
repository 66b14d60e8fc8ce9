"""Helpers for the binding's tests: Python processes that import zjq.

Not a test file. Python workers (pyworkers.py) and the example web app run
as zjqtest Processes of the test's Env, so they are stopped by PID at
teardown and their logs are printed and scanned for sanitizer reports like
those of the C binaries.
"""

import asyncio
import os
import sys

import zjqtest as zt
from conftest import python_env

HERE = os.path.dirname(os.path.abspath(__file__))


class PyProcess(zt.Process):
    """python3 -u ARGS with the environment of python_env()."""

    def __init__(self, env, name, args, extra_env=None):
        argv = [sys.executable, "-u"] + [str(a) for a in args]
        full = python_env(extra_env)
        super().__init__(env, name, argv, extra_env=full)


def start_python(env, name, args, extra_env=None):
    process = PyProcess(env, env._name(name), args, extra_env)
    env.processes.append(process)
    return process.start()


def start_pyworker(env, concurrency=2, heartbeat=0.2, args=(), endpoint=None, wait=True):
    """Start pyworkers.py (zjq.worker.run) with concurrency processes;
    with wait, return once the broker lists that many workers of its."""
    process = start_python(env, "pyworker", [os.path.join(HERE, "pyworkers.py"),
                                             endpoint or env.endpoint,
                                             "--concurrency", concurrency,
                                             "--heartbeat", heartbeat] + list(args))
    if wait:
        wait_pyworkers(env, process, concurrency)
    return process


def children(pid):
    """The pids of pid's child processes."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] not in "ZX":
                found.append(int(entry))
    return sorted(found)


def wait_pyworkers(env, process, count, timeout=60):
    """Wait until `count` worker processes of the pyworker `process` are
    registered with the broker; returns their pids."""
    def registered():
        assert process.alive(), "pyworker exited with %s:\n%s" % (
            process.returncode(), process.log().decode(errors="replace")[-3000:])
        pids = set(children(process.pid))
        listed = [w["pid"] for w in env.stats().get("workers", []) if w.get("pid") in pids]
        return sorted(listed) if len(listed) == count else None
    return zt.wait_until(registered, timeout, interval=0.1,
                         message="%d Python worker processes registered" % count)


async def async_wait_until(predicate, timeout=30, interval=0.05, message=None):
    """zt.wait_until for coroutines: the event loop keeps running."""
    deadline = asyncio.get_running_loop().time() + zt.T(timeout)
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert asyncio.get_running_loop().time() < deadline, \
            "timed out after %.0fs waiting for %s (last value: %r)" % (zt.T(timeout), message, value)
        await asyncio.sleep(interval)


async def wait_for_state(client, job_id, states, timeout=30):
    """Poll a job's status until it is in one of states; returns the JobInfo."""
    async def check():
        info = await client.status(job_id)
        return info if info.state in states else None
    return await async_wait_until(check, timeout, message="job %s in %s" % (job_id, states))


def arun(coroutine, timeout=600):
    """Run a coroutine in a new event loop, bounded by a (scaled) timeout."""
    async def bounded():
        return await asyncio.wait_for(coroutine, zt.T(timeout))
    return asyncio.run(bounded())
