"""Python workers (zjq.worker.run): handlers are plain functions, run in
supervised worker processes (tests/pyworkers.py)."""

import os
import signal

import pytest

import zjq
import zjq.worker
import zjqtest as zt
from pyharness import arun, async_wait_until, children, start_pyworker, wait_pyworkers


def test_handlers_results_and_failures(env):
    env.start_broker()
    start_pyworker(env, concurrency=2)

    async def main():
        async with await zjq.connect(env.endpoint) as client:
            jobs = [await client.submit("py.upper", b"job %d" % i) for i in range(20)]
            pids = set()
            for job in jobs:
                result = await job.result(timeout=zt.T(60))
                assert result.startswith(b"JOB ") and result.endswith(b"attempt=1")
                pids.add(int(result.split(b"pid=")[1].split()[0]))
            # Every result came from one of the worker processes
            assert pids <= set(children(env.processes[-1].pid))

            # An exception fails the attempt with its text; attempts are retried
            job = await client.submit("py.fail", b"bad input", max_attempts=2)
            with pytest.raises(zjq.JobFailed) as failed:
                await job.result(timeout=zt.T(60))
            assert failed.value.attempt == 2
            assert "ValueError: cannot handle bad input" in failed.value.error

            # What a handler may return
            for payload, expected in ((b"str", "text ✓".encode()), (b"none", b""),
                                      (b"bytearray", b"ba")):
                job = await client.submit("py.kind", payload)
                assert await job.result(timeout=zt.T(60)) == expected
            job = await client.submit("py.kind", b"int", max_attempts=1)
            with pytest.raises(zjq.JobFailed, match="TypeError: the handler returned int"):
                await job.result(timeout=zt.T(60))
    arun(main())


def test_heartbeats_flow_while_python_computes(env):
    """A handler holds the GIL for many heartbeat intervals; the broker
    never declares the worker dead (that would requeue: attempt 2)."""
    env.start_broker()
    start_pyworker(env, concurrency=1, heartbeat=0.2)

    async def main():
        async with await zjq.connect(env.endpoint) as client:
            job = await client.submit("py.spin", b"3.0", max_attempts=1)    # 15 intervals
            result = await job.result(timeout=zt.T(120))
            assert result.endswith(b"attempt=1"), result
            info = await job.status()
            assert info.state == "succeeded" and info.attempt == 1
            assert info.progress is not None and info.progress > 0
    arun(main())
    stats = env.stats()
    assert stats["broker"]["stale_results"] == 0


def test_kill_9_worker_process_mid_job(env, tmp_path):
    """kill -9 the process running a job: the job completes on another
    worker process, and run() replaces the dead one."""
    env.start_broker()
    supervisor = start_pyworker(env, concurrency=2, heartbeat=0.2)
    marker = str(tmp_path / "running.pid")

    async def main():
        async with await zjq.connect(env.endpoint) as client:
            job = await client.submit("py.hold", marker.encode())
            victim = int(await async_wait_until(
                lambda: os.path.exists(marker) and open(marker).read(), 60,
                message="the job started"))
            assert victim in children(supervisor.pid)
            os.kill(victim, signal.SIGKILL)
            result = await job.result(timeout=zt.T(120))
            pid, attempt = result.decode().split()
            assert attempt == "attempt=2"
            assert int(pid.split("=")[1]) != victim
            assert (await job.status()).state == "succeeded"
            return victim
    victim = arun(main())
    pids = wait_pyworkers(env, supervisor, 2)
    assert victim not in pids and set(pids) == set(children(supervisor.pid))
    assert b"starting another" in supervisor.log()


def test_cancel_reaches_the_handler(env, tmp_path):
    env.start_broker()
    start_pyworker(env, concurrency=1)
    marker = str(tmp_path / "running.pid")

    async def main():
        async with await zjq.connect(env.endpoint) as client:
            job = await client.submit("py.hold", marker.encode())
            await async_wait_until(lambda: os.path.exists(marker), 60, message="the job started")
            assert (await job.cancel()).state == "cancelled"
            with pytest.raises(zjq.JobCancelled):
                await job.result(timeout=zt.T(30))
            await async_wait_until(lambda: os.path.exists(marker + ".cancelled"), 30,
                                   message="the handler saw the cancellation")
            # The process serves the next job
            job = await client.submit("py.upper", b"next")
            assert (await job.result(timeout=zt.T(60))).startswith(b"NEXT")
    arun(main())


def test_sigterm_drains(env, tmp_path):
    """SIGTERM to run()'s process: running jobs finish, then every worker
    process and run() exit 0."""
    env.start_broker()
    supervisor = start_pyworker(env, concurrency=2, heartbeat=0.2)
    workers = children(supervisor.pid)
    markers = [str(tmp_path / ("started%d" % i)) for i in range(2)]

    async def main():
        async with await zjq.connect(env.endpoint) as client:
            jobs = [await client.submit("py.nap", b"%s 1.5" % marker.encode())
                    for marker in markers]
            # Both handlers have started (the broker says "running" for a
            # prefetched job too, and a drain hands those back)
            await async_wait_until(lambda: all(os.path.exists(m) for m in markers), 60,
                                   message="both jobs started")
            supervisor.signal(signal.SIGTERM)
            for job in jobs:
                assert (await job.result(timeout=zt.T(60))).endswith(b"attempt=1")
    arun(main())
    assert supervisor.wait(60) == 0
    assert not any(zt.pid_alive(pid) for pid in workers)


def test_run_checks_arguments(env):
    def handler(payload):
        return payload
    for args, kwargs, error in [
            (("not an endpoint", {"q": handler}), {}, zjq.Error),
            (("tcp://127.0.0.1:1", {"bad queue": handler}), {}, zjq.Error),
            (("tcp://127.0.0.1:1", {}), {}, ValueError),
            (("tcp://127.0.0.1:1", {"q": "not callable"}), {}, TypeError),
            (("tcp://127.0.0.1:1", {"q": handler}), {"concurrency": 0}, ValueError),
            (("tcp://127.0.0.1:1", {"q": handler}), {"threads": 0}, ValueError),
            (("tcp://127.0.0.1:1", {"q": handler}), {"heartbeat": 0.01}, ValueError),
            (("tcp://127.0.0.1:1", {"q": handler}), {"curve_secret_file": "/nonexistent"},
             ValueError),
            (("tcp://127.0.0.1:1", {"q": handler}), {"curve_secret_file": "/nonexistent",
                                                     "broker_key_file": "/nonexistent"},
             zjq.Error),
            (("tcp://127.0.0.1:1", {"q": handler}), {"start_method": "teleport"}, ValueError)]:
        with pytest.raises(error):
            zjq.worker.run(*args, **kwargs)
    with pytest.raises(RuntimeError):
        zjq.worker.current_task()


def test_curve_worker(env):
    curve = env.enable_curve()
    env.start_broker()
    start_pyworker(env, concurrency=1, args=["--curve-secret", curve.worker.secret,
                                             "--broker-key", curve.broker.public])

    async def main():
        async with await zjq.connect(env.endpoint, curve_secret_file=curve.client.secret,
                                     broker_key_file=curve.broker.public) as client:
            job = await client.submit("py.upper", b"over curve")
            assert (await job.result(timeout=zt.T(60))).startswith(b"OVER CURVE")
    arun(main())
