"""The asyncio client (zjq.connect) and the synchronous one (zjq.connect_sync)
against a real broker and zjq-worker processes."""

import asyncio
import re
import subprocess
import sys

import pytest

import zjq
import zjqtest as zt
from conftest import python_env
from pyharness import arun, async_wait_until, wait_for_state

JOB_ID = re.compile(r"[0-9a-z]+-[0-9a-z]+")


def test_submit_and_result(env):
    env.start_broker()
    env.start_worker("echo", builtin="echo", concurrency=2)

    async def main():
        client = await zjq.connect(env.endpoint)
        assert await client.ping() >= 0
        job = await client.submit("echo", b"hello \x00 bytes")
        assert JOB_ID.fullmatch(job.id) and job.queue == "echo"
        assert await job.result(timeout=zt.T(30)) == b"hello \x00 bytes"
        assert job.done()
        # A second wait answers from what the client already knows
        assert await job.result(timeout=0) == b"hello \x00 bytes"
        info = await job.status()
        assert (info.id, info.queue, info.state, info.attempt) == (job.id, "echo", "succeeded", 1)
        assert info.finished and info.result_size == len(b"hello \x00 bytes")
        assert info.created_ms > 0 and info.finished_ms >= info.created_ms

        # str payloads are UTF-8; options reach the broker
        job = await client.submit("echo", "grüße", priority=7, max_attempts=2, job_timeout=30,
                                  result_ttl=60)
        info = await job.status()
        assert (info.priority, info.max_attempts) == (7, 2)
        assert (await job.result(timeout=zt.T(30))).decode() == "grüße"

        # By id, from another client: the broker is asked
        other = await zjq.connect(env.endpoint)
        assert await other.job(job.id).result(timeout=zt.T(30)) == "grüße".encode()
        assert await other.result(job.id) == "grüße".encode()
        other.close()

        # An idempotency key gives the same job
        first = await client.submit("echo", b"once", key="order-17")
        again = await client.submit("echo", b"twice", key="order-17")
        assert again.id == first.id
        assert await again.result(timeout=zt.T(30)) == b"once"

        stats = await client.stats()
        assert stats["queues"]["echo"]["succeeded"] >= 3
        assert client.pending() == 0
        client.close()
        client.close()                  # idempotent
        assert client.closed
        with pytest.raises(zjq.ClientClosed):
            await client.submit("echo", b"late")
    arun(main())


def test_failure_exception(env):
    env.start_broker()
    env.start_worker("fails", exec_command="echo 'disk on fire' >&2; exit 3")

    async def main():
        async with await zjq.connect(env.endpoint) as client:
            job = await client.submit("fails", b"", max_attempts=2)
            with pytest.raises(zjq.JobFailed) as failed:
                await job.result(timeout=zt.T(60))
            error = failed.value
            assert isinstance(error, zjq.Error)
            assert error.code == zjq.errors.EFAILED and error.name == "EFAILED"
            assert error.job_id == job.id and error.attempt == 2
            assert "disk on fire" in error.error and "disk on fire" in str(error)
            # By id: the same exception
            with pytest.raises(zjq.JobFailed, match="disk on fire"):
                await client.job(job.id).result(timeout=zt.T(30))
            assert (await job.status()).state == "failed"
    arun(main())


def test_cancel_exception(env):
    env.start_broker()
    env.start_worker("sleep", builtin="sleep")

    async def main():
        async with await zjq.connect(env.endpoint) as client:
            running = await client.submit("sleep", b"60000")
            queued = await client.submit("sleep", b"60000")     # behind the first one
            await wait_for_state(client, running.id, ("running",))
            waiter = asyncio.ensure_future(running.result())
            info = await running.cancel()
            assert info.state == "cancelled" and info.id == running.id
            with pytest.raises(zjq.JobCancelled) as cancelled:
                await waiter
            assert cancelled.value.code == zjq.errors.ECANCELLED
            assert cancelled.value.job_id == running.id
            # A queued job is removed; then it cannot be cancelled again
            assert (await client.cancel(queued.id)).state == "cancelled"
            with pytest.raises(zjq.JobCancelled):
                await queued.result(timeout=zt.T(30))
            with pytest.raises(zjq.Error) as again:
                await queued.cancel()
            assert again.value.code == zjq.errors.ESTATE
    arun(main())


def test_expiry_and_not_found(env):
    env.start_broker()
    env.start_worker("echo", builtin="echo")

    async def main():
        async with await zjq.connect(env.endpoint) as client:
            job = await client.submit("echo", b"short-lived", result_ttl=0.3)
            assert await job.result(timeout=zt.T(30)) == b"short-lived"
            # Once the TTL has passed the broker no longer has it
            async def expired():
                try:
                    await client.job(job.id).result(timeout=0)
                except zjq.JobExpired as exc:
                    return exc
            exc = await async_wait_until(expired, 30, message="the result expired")
            assert exc.code == zjq.errors.EEXPIRED and exc.job_id == job.id
            with pytest.raises(zjq.JobExpired):
                await client.status(job.id)
            never = job.id.split("-")[0] + "-zzzzzz"
            with pytest.raises(zjq.JobNotFound) as missing:
                await client.job(never).result(timeout=zt.T(5))
            assert missing.value.code == zjq.errors.ENOTFOUND
            with pytest.raises(zjq.JobNotFound) as bad:
                await client.status("not a job id")
            assert bad.value.code == zjq.errors.EBADID
    arun(main())


def test_timeout_exception(env):
    env.start_broker()

    async def main():
        async with await zjq.connect(env.endpoint) as client:
            job = await client.submit("nobody", b"waits")          # no worker serves it
            with pytest.raises(zjq.Timeout) as timed_out:
                await job.result(timeout=0.2)
            assert isinstance(timed_out.value, TimeoutError)
            assert timed_out.value.code == zjq.errors.ETIMEDOUT
            with pytest.raises(zjq.Timeout):
                await job.result(timeout=0)
            # By id, libzjq keeps the time
            with pytest.raises(zjq.Timeout):
                await client.job(job.id).result(timeout=0.2)
            with pytest.raises(zjq.Timeout):
                await client.job(job.id).result(timeout=0)
            # Still queued: a timeout only ends the wait
            assert (await job.status()).state == "queued"
            # The wait can be resumed and ends with the job
            waiter = asyncio.ensure_future(job.result(timeout=zt.T(30)))
            await job.cancel()
            with pytest.raises(zjq.JobCancelled):
                await waiter
            with pytest.raises(ValueError):
                await job.result(timeout=-1)
    arun(main())


def test_rejected_and_invalid(env):
    env.start_broker("--max-payload", "1k")

    async def main():
        async with await zjq.connect(env.endpoint) as client:
            with pytest.raises(zjq.Rejected) as rejected:
                await client.submit("big", b"x" * 2000)
            assert rejected.value.code == zjq.errors.ETOOBIG
            assert "2000" in str(rejected.value), "no broker message: %s" % rejected.value
            # Checked before anything is sent
            for queue in ("bad queue", "", "x" * 129):
                with pytest.raises(zjq.Error) as invalid:
                    await client.submit(queue, b"")
                assert invalid.value.code == zjq.errors.EINVAL
            with pytest.raises(zjq.Error):
                await client.submit("q", b"", priority=5000)
            with pytest.raises(ValueError):
                await client.submit("q", b"", max_attempts=0)
            with pytest.raises(ValueError):
                await client.submit("q", b"", job_timeout=-1)
            with pytest.raises(ValueError):
                await client.submit("q\x00x", b"")
            with pytest.raises(TypeError):
                await client.submit("q", 12)
            assert await client.ping() >= 0             # still fine
            # A draining broker (zjq drain) refuses submits with its own code
            rc, out, err = env.zjq("drain")
            assert rc == 0, err
            with pytest.raises(zjq.Rejected) as draining:
                await client.submit("q", b"x")
            assert draining.value.code == zjq.errors.EDRAINING
            assert draining.value.name == "EDRAINING"
    arun(main())


def test_quota_exceeded(env):
    # One connection's share (plaintext): its second job is refused with
    # EQUOTA, another connection still submits
    env.start_broker("--max-jobs-per-client", 1)

    async def main():
        async with await zjq.connect(env.endpoint) as client, \
                   await zjq.connect(env.endpoint) as other:
            await client.submit("nobody", b"first")
            with pytest.raises(zjq.QuotaExceeded) as over:
                await client.submit("nobody", b"second")
            assert isinstance(over.value, zjq.Rejected)
            assert over.value.code == zjq.errors.EQUOTA and over.value.name == "EQUOTA"
            assert "max-jobs-per-client 1" in str(over.value), over.value
            await other.submit("nobody", b"theirs")
    arun(main())


def test_broker_unavailable(env):
    dead = "tcp://127.0.0.1:%d" % zt.free_port()

    async def main():
        with pytest.raises(zjq.BrokerUnavailable) as unavailable:
            await zjq.connect(dead, request_timeout=0.3)
        assert unavailable.value.code == zjq.errors.EUNREACHABLE
        client = await zjq.connect(dead, request_timeout=0.3, check=False)
        with pytest.raises(zjq.BrokerUnavailable):
            await client.submit("q", b"x")
        with pytest.raises(zjq.BrokerUnavailable):
            await client.status("abc-1")
        client.close()
        with pytest.raises(zjq.Error) as bad:
            await zjq.connect("not an endpoint")
        assert bad.value.code == zjq.errors.EINVAL
        with pytest.raises(zjq.Error) as key:
            await zjq.connect(dead, curve_secret_file="/nonexistent.key_secret",
                              broker_key_file="/nonexistent.key")
        assert key.value.code == zjq.errors.EKEY and "/nonexistent" in str(key.value)
    arun(main())


def test_close_fails_pending(env):
    env.start_broker()

    async def main():
        client = await zjq.connect(env.endpoint)
        job = await client.submit("nobody", b"x")
        waiter = asyncio.ensure_future(job.result())
        by_id = asyncio.ensure_future(client.job(job.id).result())
        await asyncio.sleep(0.2)
        client.close()
        for future in (waiter, by_id):
            with pytest.raises(zjq.ClientClosed):
                await future
    arun(main())


def test_5000_concurrent_jobs_one_loop(env):
    env.start_broker(verbose=False)
    env.start_worker("echo", builtin="echo", concurrency=16, verbose=False)
    count = 5000

    async def main():
        async with await zjq.connect(env.endpoint, request_timeout=zt.T(60)) as client:
            jobs = await asyncio.gather(*(client.submit("echo", b"job %d" % i)
                                          for i in range(count)))
            assert len({job.id for job in jobs}) == count
            results = await asyncio.gather(*(job.result(timeout=zt.T(300)) for job in jobs))
            assert results == [b"job %d" % i for i in range(count)]

            # as_completed over jobs known by id: every one, once
            seen = set()
            async for job in client.as_completed([client.job(j.id) for j in jobs],
                                                 timeout=zt.T(300)):
                assert job.done() and job.id not in seen
                seen.add(job.id)
                assert (await job.result()).startswith(b"job ")
            assert seen == {job.id for job in jobs}
        stats = env.stats()
        assert stats["queues"]["echo"]["succeeded"] == count
    arun(main(), timeout=900)


def test_as_completed_order_and_timeout(env):
    env.start_broker()
    env.start_worker("echo", builtin="echo")

    async def main():
        async with await zjq.connect(env.endpoint) as client:
            stuck = await client.submit("nobody", b"x")
            quick = await client.submit("echo", b"quick")
            iterator = client.as_completed([stuck, quick])
            first = await iterator.__anext__()
            assert first is quick
            await stuck.cancel()
            second = await iterator.__anext__()
            assert second is stuck
            with pytest.raises(zjq.JobCancelled):
                await second.result()
            with pytest.raises(StopAsyncIteration):
                await iterator.__anext__()

            late = await client.submit("nobody", b"y")
            with pytest.raises(zjq.Timeout, match="1 of 2 jobs"):
                async for job in client.as_completed([quick, late], timeout=0.3):
                    assert job is quick
            await late.cancel()
    arun(main())


def test_broker_restart_while_awaiting(env, tmp_path):
    journal = tmp_path / "journal"
    broker = env.start_broker("--journal", journal)

    async def main():
        async with await zjq.connect(env.endpoint, request_timeout=zt.T(20)) as client:
            jobs = [await client.submit("later", b"payload %d" % i) for i in range(50)]
            waiters = [asyncio.ensure_future(job.result(timeout=zt.T(120))) for job in jobs]
            by_id = asyncio.ensure_future(client.job(jobs[0].id).result(timeout=zt.T(120)))
            await asyncio.sleep(0.2)
            # Restart the broker while the loop keeps running and everything waits
            await asyncio.get_running_loop().run_in_executor(None, broker.restart)
            # A submit right after the restart, and a worker that only comes now
            late = await client.submit("later", b"after the restart")
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: env.start_worker("later", builtin="echo", concurrency=4))
            results = await asyncio.gather(*waiters)
            assert results == [b"payload %d" % i for i in range(50)]
            assert await by_id == b"payload 0"
            assert await late.result(timeout=zt.T(60)) == b"after the restart"
    arun(main())


def test_curve(env):
    curve = env.enable_curve()
    env.start_broker()
    env.start_worker("echo", builtin="echo")

    async def main():
        client = await zjq.connect(env.endpoint, curve_secret_file=curve.client.secret,
                                   broker_key_file=curve.broker.public)
        job = await client.submit("echo", b"secret")
        assert await job.result(timeout=zt.T(30)) == b"secret"
        client.close()
        # A key the broker does not allow is refused
        stranger = curve.keygen("stranger")
        with pytest.raises(zjq.Error) as refused:
            await zjq.connect(env.endpoint, curve_secret_file=stranger.secret,
                              broker_key_file=curve.broker.public, request_timeout=zt.T(3))
        assert refused.value.code in (zjq.errors.EDENIED, zjq.errors.EUNREACHABLE)
    arun(main())


def test_sync_client(env):
    env.start_broker()
    env.start_worker("echo", builtin="echo", concurrency=4)
    env.start_worker("fails", exec_command="echo nope >&2; exit 1")
    with zjq.connect_sync(env.endpoint) as client:
        assert client.ping() >= 0
        job = client.submit("echo", b"sync hello")
        assert JOB_ID.fullmatch(job.id)
        assert job.result(timeout=zt.T(30)) == b"sync hello"
        assert client.job(job.id).result(timeout=zt.T(30)) == b"sync hello"
        assert client.status(job.id).state == "succeeded"
        jobs = [client.submit("echo", str(i)) for i in range(200)]
        done = [j.id for j in client.as_completed(jobs, timeout=zt.T(60))]
        assert sorted(done) == sorted(j.id for j in jobs)
        assert [j.result() for j in jobs] == [str(i).encode() for i in range(200)]

        with pytest.raises(zjq.JobFailed, match="nope"):
            client.submit("fails", b"", max_attempts=1).result(timeout=zt.T(30))
        stuck = client.submit("nobody", b"")
        with pytest.raises(zjq.Timeout):
            stuck.result(timeout=0.2)
        with pytest.raises(zjq.Timeout):
            client.job(stuck.id).result(timeout=0.2)
        assert stuck.cancel().state == "cancelled"
        with pytest.raises(zjq.JobCancelled):
            stuck.result(timeout=zt.T(30))
        with pytest.raises(zjq.Error) as again:
            client.cancel(stuck.id)
        assert again.value.code == zjq.errors.ESTATE
        with pytest.raises(zjq.JobNotFound):
            client.status(job.id.split("-")[0] + "-zzzzzz")
        assert "queues" in client.stats()
    assert client.closed
    with pytest.raises(zjq.BrokerUnavailable):
        zjq.connect_sync("tcp://127.0.0.1:%d" % zt.free_port(), request_timeout=0.3)


def test_library_not_found(env):
    code = ("import zjq\n"
            "try:\n"
            "    zjq.connect_sync('tcp://127.0.0.1:1')\n"
            "except zjq.LibraryNotFound as exc:\n"
            "    assert isinstance(exc, ImportError)\n"
            "    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=zt.T(60),
                          env=python_env({"ZJQ_LIBRARY": "/nonexistent/libzjq.so"}))
    out = proc.stdout.decode()
    assert proc.returncode == 0, out
    assert "ZJQ_LIBRARY=/nonexistent/libzjq.so" in out and "cannot load libzjq.so" in out


def test_option_structs_carry_their_size(env):
    """The option structs are versioned by size (client/zjq_client.h): the
    binding declares the size it knows, and libzjq refuses one it cannot read."""
    import ctypes
    from zjq import _native
    lib = _native.lib()
    opts = _native.init_sized(lib.zjq_submit_opts_init_sized, _native.SubmitOpts())
    assert opts.size == ctypes.sizeof(_native.SubmitOpts) and opts.priority == 0
    client_opts = _native.init_sized(lib.zjq_client_opts_init_sized, _native.ClientOpts())
    assert client_opts.size == ctypes.sizeof(_native.ClientOpts)
    assert lib.zjq_submit_opts_init_sized(ctypes.byref(opts), 3) == zjq.errors.EVERSION
    assert lib.zjq_client_opts_init_sized(ctypes.byref(client_opts), 0) == zjq.errors.EVERSION
    assert client_opts.size == ctypes.sizeof(_native.ClientOpts)     # untouched
