"""Faults: workers killed, dying on every attempt, stopping, and the broker
restarting under them."""

import os
import re
import subprocess
import time

import zjqtest as zt


LOST_RE = re.compile(r"lost|dead|died|disconnect|gone|vanish|silent|heartbeat", re.I)


def test_worker_killed_mid_job_completes_elsewhere(zjq):
    zjq.start_broker()
    marker = os.path.join(zjq.dir, "attempt1.pid")
    # Payload "hang": attempt 1 hangs (so it cannot finish first), later ones finish.
    command = ('[ "$ZJQ_ATTEMPT" -gt 1 ] || [ "$(cat)" != hang ] || '
               '{ echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 120; }; '
               'printf "done %%s" "$ZJQ_ATTEMPT"' % (marker, marker, marker))
    first = zjq.start_worker("slow", exec_command=command, heartbeat=200)
    job_id = zjq.submit("slow", "hang")
    zt.wait_until(lambda: os.path.exists(marker), 60, message="attempt 1 started")
    status = zjq.status(job_id)
    first_id = zjq.worker_info(first)["id"]
    assert status["state"] == "running" and status["attempt"] == 1, status
    assert status["worker"] == first_id, (status, first_id)

    second = zjq.start_worker("slow", exec_command=command, heartbeat=200)
    second_id = zjq.worker_info(second)["id"]
    first.kill()
    orphan = int(open(marker).read())
    try:
        status = zjq.wait_state(job_id, ("succeeded", "failed"), timeout=60)
        assert status["state"] == "succeeded", status
        assert status["attempt"] == 2, status
        assert status["worker"] in (None, second_id), (status, second_id)
        rc, out, err = zjq.zjq("result", job_id)
        assert (rc, out) == (0, b"done 2"), (rc, out, err)
        # The dead worker is forgotten.
        zt.wait_until(lambda: zjq.worker_info(first) is None, 30, message="dead worker dropped")
    finally:
        # Attempt 1's child outlived its worker (SIGKILL leaves no one to clean up).
        if zt.pid_alive(orphan):
            os.kill(orphan, 9)


def test_job_whose_worker_always_dies_fails_after_max_attempts(zjq):
    zjq.start_broker()
    # Each attempt kills the zjq-worker that runs it (the shell's parent).
    workers = []

    def ensure_worker():
        if not any(w.alive() for w in workers):
            assert len(workers) < 8, "started too many workers"
            workers.append(zjq.start_worker("doomed", exec_command="kill -9 $PPID; sleep 2",
                                            heartbeat=200, wait=False))

    ensure_worker()
    zjq.wait_worker_registered(workers[0])
    job_id = zjq.submit("doomed", "x", "--max-attempts", 2)

    def ended():
        ensure_worker()
        status = zjq.status(job_id)
        return status if status["state"] in ("succeeded", "failed", "cancelled") else None

    status = zt.wait_until(ended, 90, interval=0.2, message="job failed after 2 lost workers")
    assert status["state"] == "failed", status
    assert status["attempt"] == 2, status
    assert status["max_attempts"] == 2, status
    error = status["error"] or ""
    assert LOST_RE.search(error), "error does not say the worker was lost: %r" % error
    assert "2" in error, "error does not give the attempt count: %r" % error
    assert len(workers) >= 2

    rc, out, err = zjq.zjq("result", job_id)
    assert rc == 1, (rc, out, err)


def test_broker_restart_workers_reconnect(zjq):
    broker = zjq.start_broker()
    workers = [zjq.start_worker("echo", builtin="echo", heartbeat=200) for _ in range(2)]
    rc, out, err = zjq.zjq("submit", "echo", "before", "--wait", "--timeout", 60)
    assert rc == 0, err
    old_id = zjq.submit("echo", "old")
    zjq.wait_state(old_id, "succeeded")
    rc, out, err = zjq.zjq("ping")
    assert rc == 0

    # A job is running when the broker goes away.
    marker = os.path.join(zjq.dir, "slow-started")
    running = zjq.submit("echo-slow", "")
    slow = zjq.start_worker("echo-slow", exec_command="touch %s; sleep 3; printf late" % marker,
                            heartbeat=200)
    zt.wait_until(lambda: os.path.exists(marker), 60, message="slow job started")

    port = broker.port
    broker.restart()
    assert broker.port == port
    workers.append(slow)

    for worker in workers:
        assert worker.alive()
        zjq.wait_worker_registered(worker, timeout=60)
    for i in range(5):
        rc, out, err = zjq.zjq("submit", "echo", "after-%d" % i, "--wait", "--timeout", 60)
        assert rc == 0, err
        assert out.rstrip(b"\n") == b"after-%d" % i
    # What the old broker knew is gone: its ids are not found now.
    for job_id in (old_id, running):
        rc, out, err = zjq.zjq("status", job_id)
        assert rc == 4 and "not found" in err, (rc, out, err)
    # The worker that was running a job then serves again once it has ended.
    rc, out, err = zjq.zjq("submit", "echo-slow", "", "--wait", "--timeout", 60)
    assert (rc, out) == (0, b"late"), (rc, out, err)


def test_worker_sigterm_drains_running_job(zjq):
    zjq.start_broker()
    marker = os.path.join(zjq.dir, "started")
    worker = zjq.start_worker("slow", exec_command='touch %s; sleep 2; printf done' % marker,
                              grace=60)
    job_id = zjq.submit("slow", "")
    zt.wait_until(lambda: os.path.exists(marker), 60, message="job started on the worker")
    worker.sigterm()
    assert worker.wait(timeout=60) == 0, "worker did not exit 0 after draining"
    status = zjq.wait_state(job_id, ("succeeded", "failed", "queued"), timeout=30)
    assert status["state"] == "succeeded", status
    assert status["attempt"] == 1, status
    rc, out, err = zjq.zjq("result", job_id)
    assert (rc, out) == (0, b"done"), (rc, out, err)


def test_worker_second_sigterm_aborts_and_job_is_requeued(zjq):
    zjq.start_broker()
    marker = os.path.join(zjq.dir, "started")
    command = 'touch %s-$ZJQ_ATTEMPT; sleep "$(cat)"; printf done' % marker
    worker = zjq.start_worker("slow", exec_command=command, grace=60)
    job_id = zjq.submit("slow", "20")
    zt.wait_until(lambda: os.path.exists(marker + "-1"), 60, message="job started on the worker")
    # The first SIGTERM drains, a later one aborts. Signals of one kind do
    # not queue, so keep sending until the worker has gone.
    for _ in range(40):
        worker.sigterm()
        try:
            worker.proc.wait(timeout=0.5)
            break
        except subprocess.TimeoutExpired:
            pass
    worker.wait(timeout=30)
    status = zjq.wait_state(job_id, ("queued", "succeeded", "failed"), timeout=30)
    assert status["state"] == "queued", status
    assert status["attempt"] == 1, status
    zjq.start_worker("slow", exec_command=command)
    status = zjq.wait_state(job_id, ("succeeded", "failed"), timeout=120)
    assert status["state"] == "succeeded", status
    assert status["attempt"] == 2, status


def test_stopped_worker_is_declared_dead_and_job_moves(zjq):
    """SIGSTOP: the worker stays connected but silent."""
    zjq.start_broker()
    marker = os.path.join(zjq.dir, "attempt1.pid")
    # Payload "hang": attempt 1 hangs (so it cannot finish first), later ones finish.
    command = ('[ "$ZJQ_ATTEMPT" -gt 1 ] || [ "$(cat)" != hang ] || '
               '{ echo $$ > %s.tmp; mv %s.tmp %s; exec sleep 120; }; '
               'printf "done %%s" "$ZJQ_ATTEMPT"' % (marker, marker, marker))
    frozen = zjq.start_worker("slow", exec_command=command, heartbeat=200)
    job_id = zjq.submit("slow", "hang")
    zt.wait_until(lambda: os.path.exists(marker), 60, message="attempt 1 started")
    orphan = int(open(marker).read())
    try:
        frozen.sigstop()
        zjq.start_worker("slow", exec_command=command, heartbeat=200)
        status = zjq.wait_state(job_id, ("succeeded", "failed"), timeout=60)
        assert status["state"] == "succeeded" and status["attempt"] == 2, status
        zt.wait_until(lambda: zjq.worker_info(frozen) is None, 30, message="frozen worker dropped")
        # Thawed, it notices, reconnects and serves again.
        frozen.sigcont()
        zjq.wait_worker_registered(frozen, timeout=60)
        rc, out, err = zjq.zjq("submit", "slow", "", "--wait", "--timeout", 60)
        assert rc == 0, err
        rc, out, err = zjq.zjq("result", job_id)
        assert (rc, out) == (0, b"done 2"), (rc, out, err)
    finally:
        frozen.sigcont()
        if zt.pid_alive(orphan):
            os.kill(orphan, 9)


def test_waiting_client_learns_of_broker_restart(zjq):
    """A `result --wait` in progress when the broker restarts asks again and
    hears that the job is gone (instead of waiting out its timeout)."""
    broker = zjq.start_broker()
    job_id = zjq.submit("nobody", "x")
    waiter = zjq.popen_zjq("result", job_id, "--wait", "--timeout", 300)
    # Best effort: let the wait reach the broker first (its -v log says so).
    # Either way the outcome must be the same.
    try:
        zt.wait_until(lambda: b"RESULT" in broker.log(), 10)
    except AssertionError:
        pass
    broker.restart()
    out, err = waiter.communicate(timeout=zt.T(200))
    assert waiter.returncode == 4, (waiter.returncode, out, err)
    assert b"not found" in err, err


def test_draining_worker_takes_no_new_jobs(zjq):
    broker = zjq.start_broker()
    marker = os.path.join(zjq.dir, "started")
    worker = zjq.start_worker("drain", exec_command='touch %s-"$(cat)"; sleep 2; printf ok' % marker,
                              concurrency=2, grace=60)
    first = zjq.submit("drain", "first")
    zt.wait_until(lambda: os.path.exists(marker + "-first"), 60, message="first job started")
    worker.sigterm()
    # The worker tells the broker it drains (DISCONNECT, drain true; the
    # broker's -v log shows it). Submit only after that.
    zt.wait_until(lambda: b"DISCONNECT" in broker.log(), 30, message="broker got DISCONNECT")
    second = zjq.submit("drain", "second")
    assert worker.wait(timeout=60) == 0
    assert zjq.status(first)["state"] == "succeeded"
    assert not os.path.exists(marker + "-second"), "a draining worker was given a new job"
    status = zjq.status(second)
    assert status["state"] == "queued" and status["attempt"] == 0, status
    zjq.start_worker("drain", exec_command="printf ok")
    assert zjq.wait_state(second, "succeeded")["attempt"] == 1


def test_worker_started_before_broker(zjq):
    port = zt.free_port()
    endpoint = "tcp://127.0.0.1:%d" % port
    worker = zjq.start_worker("early", builtin="echo", endpoint=endpoint, heartbeat=200, wait=False)
    time.sleep(1.5)     # let it try (and fail) to reach the broker a few times
    assert worker.alive(), "worker gave up without a broker"
    zjq.start_broker(port=port)
    zjq.wait_worker_registered(worker, timeout=60)
    rc, out, err = zjq.zjq("submit", "early", "hi", "--wait", "--timeout", 60)
    assert (rc, out) == (0, b"hi"), (rc, out, err)
