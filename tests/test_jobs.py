"""Job semantics through the CLI: timeouts, cancel, idempotency keys, result
expiry, priorities, the exec handler."""

import json
import os
import re
import time

import zjqtest as zt


def test_submit_wait_prints_result(zjq):
    zjq.start_broker()
    zjq.start_worker("echo", builtin="echo")
    rc, out, err = zjq.zjq("submit", "echo", "hello world", "--wait", "--timeout", 60)
    assert rc == 0, err
    assert out == b"hello world"
    rc, out, err = zjq.zjq("submit", "echo", "-", "--wait", "--timeout", 60, input=b"from stdin")
    assert rc == 0, err
    assert out == b"from stdin"
    # --timeout alone implies --wait; binary results come out byte for byte.
    rc, out, err = zjq.zjq("submit", "echo", "-", "--timeout", 60, input=b"\x00\x01\n\xff")
    assert (rc, out) == (0, b"\x00\x01\n\xff"), (rc, out, err)
    rc, out, err = zjq.zjq("submit", "echo", "j", "--wait", "--timeout", 60, "--json")
    assert rc == 0, err
    reply = json.loads(out)
    assert reply["state"] == "succeeded" and reply["attempt"] == 1 and reply["result"] == "j", reply
    # Without --wait: the job id alone.
    rc, out, err = zjq.zjq("submit", "echo", "x")
    assert rc == 0, err
    assert re.fullmatch(rb"[0-9a-z]+-[0-9a-z]+\n?", out), out


def test_status_json_fields(zjq):
    zjq.start_broker()
    zjq.start_worker("echo", builtin="echo")
    job_id = zjq.submit("echo", "abc", "--priority", 7, "--max-attempts", 4)
    status = zjq.wait_state(job_id, "succeeded")
    for key in ("id", "queue", "state", "attempt", "max_attempts", "priority", "error", "progress",
                "worker", "created_ms", "started_ms", "finished_ms", "expires_ms", "result_size"):
        assert key in status, "status --json lacks %r: %r" % (key, status)
    assert status["id"] == job_id
    assert status["queue"] == "echo"
    assert status["attempt"] == 1
    assert status["max_attempts"] == 4
    assert status["priority"] == 7
    assert status["result_size"] == 3
    assert status["created_ms"] <= status["started_ms"] <= status["finished_ms"] < status["expires_ms"]
    rc, out, err = zjq.zjq("result", job_id)
    assert (rc, out) == (0, b"abc"), (rc, out, err)


def test_job_timeout(zjq):
    zjq.start_broker()
    zjq.start_worker("slow", builtin="sleep", concurrency=2)
    job_id = zjq.submit("slow", "20000", "--job-timeout", 1, "--max-attempts", 2)
    status = zjq.wait_state(job_id, ("succeeded", "failed", "cancelled"), timeout=60)
    assert status["state"] == "failed", status
    assert status["attempt"] == 2, status
    assert re.search(r"time", status["error"] or "", re.I), status
    rc, out, err = zjq.zjq("result", job_id)
    assert rc == 1, (rc, out, err)
    assert re.search(r"time", err, re.I), err
    # The worker is free again for new work.
    rc, out, err = zjq.zjq("submit", "slow", "10", "--wait", "--timeout", 60)
    assert rc == 0, err


def test_broker_default_job_timeout_option(zjq):
    zjq.start_broker("--job-timeout", 1, "--max-attempts", 1)
    zjq.start_worker("slow", builtin="sleep")
    job_id = zjq.submit("slow", "20000")
    status = zjq.wait_state(job_id, ("succeeded", "failed"), timeout=60)
    assert status["state"] == "failed" and status["attempt"] == 1, status
    assert status["max_attempts"] == 1, status
    assert re.search(r"time", status["error"] or "", re.I), status


def test_cancel_queued_job_never_runs(zjq):
    zjq.start_broker()
    marker_dir = os.path.join(zjq.dir, "ran")
    os.mkdir(marker_dir)
    job_id = zjq.submit("later", "x")
    assert zjq.status(job_id)["state"] == "queued"
    rc, out, err = zjq.zjq("cancel", job_id, "--json")
    assert rc == 0, err
    assert json.loads(out)["state"] == "cancelled"
    assert zjq.status(job_id)["state"] == "cancelled"
    # Cancelling again: the job has ended.
    rc, out, err = zjq.zjq("cancel", job_id)
    assert rc != 0, (rc, out, err)

    # Now a worker for that queue: a later job runs, the cancelled one never.
    zjq.start_worker("later", exec_command='touch %s/"$ZJQ_JOB_ID"' % marker_dir)
    later = zjq.submit("later", "y")
    zjq.wait_state(later, "succeeded")
    assert os.listdir(marker_dir) == [later]
    assert zjq.status(job_id)["state"] == "cancelled"
    rc, out, err = zjq.zjq("result", job_id)
    assert rc == 3, (rc, out, err)


def test_cancel_running_exec_job_kills_child(zjq):
    zjq.start_broker()
    pids = os.path.join(zjq.dir, "pids")
    zjq.start_worker("run", exec_command='sleep 120 & echo "$$ $!" > %s.tmp; mv %s.tmp %s; wait'
                     % (pids, pids, pids))
    job_id = zjq.submit("run", "")
    zt.wait_until(lambda: os.path.exists(pids), 60, message="exec child started")
    shell_pid, sleep_pid = (int(p) for p in open(pids).read().split())
    assert zt.pid_alive(shell_pid) and zt.pid_alive(sleep_pid)
    assert zjq.status(job_id)["state"] == "running"

    rc, out, err = zjq.zjq("cancel", job_id, "--json")
    assert rc == 0, err
    assert json.loads(out)["state"] == "cancelled"
    zt.wait_until(lambda: not zt.pid_alive(shell_pid), 30, message="exec shell killed")
    zt.wait_until(lambda: not zt.pid_alive(sleep_pid), 30, message="exec grandchild killed")
    status = zjq.status(job_id)
    assert status["state"] == "cancelled", status
    # The worker's slot is free again.
    os.unlink(pids)
    rc, out, err = zjq.zjq("submit", "run", "", "--max-attempts", 1)
    assert rc == 0, err
    zt.wait_until(lambda: os.path.exists(pids), 60, message="next job runs on the freed slot")


def test_idempotency_key(zjq):
    zjq.start_broker()
    first = zjq.submit("keyed", "a", "--key", "order-42")
    second = zjq.submit("keyed", "a", "--key", "order-42")
    other = zjq.submit("keyed", "a", "--key", "order-43")
    plain = zjq.submit("keyed", "a")
    assert first == second
    assert other != first and plain != first
    rc, out, err = zjq.zjq("submit", "keyed", "a", "--key", "order-42", "--json")
    assert rc == 0, err
    reply = json.loads(out)
    assert reply["id"] == first and reply["duplicate"] is True, reply
    rc, out, err = zjq.zjq("submit", "keyed", "a", "--key", "order-44", "--json")
    assert rc == 0, err
    assert json.loads(out)["duplicate"] is False
    assert zjq.stats()["queues"]["keyed"]["queued"] == 4


def test_result_expiry_and_not_found(zjq):
    zjq.start_broker()
    zjq.start_worker("echo", builtin="echo")
    job_id = zjq.submit("echo", "short-lived", "--result-ttl", 1)
    zjq.wait_state(job_id, "succeeded")

    def expired():
        rc, out, err = zjq.zjq("result", job_id)
        return (rc, err) if rc != 0 else None

    rc, err = zt.wait_until(expired, 60, interval=0.3, message="result expired")
    assert rc == 4, (rc, err)
    assert re.search(r"expired", err, re.I), err
    rc, out, err = zjq.zjq("status", job_id)
    assert rc == 4 and re.search(r"expired", err, re.I), (rc, err)
    assert zjq.stats()["broker"]["expired"] >= 1

    # An id this broker never issued.
    for never in ("1-1", "zzzzzzzz-1"):
        rc, out, err = zjq.zjq("result", never)
        assert rc == 4, (never, rc, out, err)
        assert re.search(r"not found", err, re.I), err
    rc, out, err = zjq.zjq("status", "1-1")
    assert rc == 4 and re.search(r"not found", err, re.I), (rc, err)


def test_result_without_wait_on_unfinished_job(zjq):
    zjq.start_broker()
    job_id = zjq.submit("nobody", "x")
    rc, out, err = zjq.zjq("result", job_id)
    assert rc == 5, (rc, out, err)
    rc, out, err = zjq.zjq("result", job_id, "--wait", "--timeout", 1)
    assert rc == 5, (rc, out, err)


def test_priority_order(zjq):
    zjq.start_broker()
    order_file = os.path.join(zjq.dir, "order")
    jobs = {}
    for name, priority in (("p0a", 0), ("p5a", 5), ("m3", -3), ("p10", 10), ("p5b", 5),
                           ("p0b", 0)):
        jobs[zjq.submit("prio", name, "--priority", priority)] = name
    zjq.start_worker("prio", exec_command='cat >> %s; echo >> %s' % (order_file, order_file),
                     concurrency=1)
    for job_id in jobs:
        zjq.wait_state(job_id, "succeeded")
    ran = open(order_file).read().split()
    assert ran == ["p10", "p5a", "p5b", "p0a", "p0b", "m3"], ran


def test_exec_binary_payload_round_trip(zjq):
    zjq.start_broker()
    zjq.start_worker("cat", exec_command="cat")
    payload = bytes(range(256)) * 64 + b"\n\x00\r\n\xff" + os.urandom(4096)
    job_id = zjq.submit("cat", payload)
    zjq.wait_state(job_id, "succeeded")
    rc, out, err = zjq.zjq("result", job_id)
    assert rc == 0, err
    assert out == payload
    assert zjq.status(job_id)["result_size"] == len(payload)
    # Empty payload, empty result.
    job_id = zjq.submit("cat", b"")
    zjq.wait_state(job_id, "succeeded")
    rc, out, err = zjq.zjq("result", job_id)
    assert (rc, out) == (0, b""), (rc, out, err)


def test_exec_failure_and_environment(zjq):
    zjq.start_broker()
    zjq.start_worker("fail", exec_command='echo "line one" >&2; echo "the tail of stderr" >&2; exit 3')
    zjq.start_worker("env", exec_command='printf "%s|%s|%s" "$ZJQ_JOB_ID" "$ZJQ_QUEUE" "$ZJQ_ATTEMPT"')
    zjq.start_worker("killed", exec_command='kill -9 $$')

    job_id = zjq.submit("fail", "x", "--max-attempts", 1)
    status = zjq.wait_state(job_id, ("succeeded", "failed"))
    assert status["state"] == "failed", status
    assert "the tail of stderr" in (status["error"] or ""), status
    rc, out, err = zjq.zjq("result", job_id)
    assert rc == 1, (rc, out, err)
    assert "the tail of stderr" in err

    job_id = zjq.submit("env", "x")
    zjq.wait_state(job_id, "succeeded")
    rc, out, err = zjq.zjq("result", job_id)
    assert (rc, out) == (0, ("%s|env|1" % job_id).encode()), (rc, out, err)

    job_id = zjq.submit("killed", "x", "--max-attempts", 2)
    status = zjq.wait_state(job_id, ("succeeded", "failed"))
    assert status["state"] == "failed" and status["attempt"] == 2, status
    assert status["error"], status

    # A failed attempt with attempts left is retried.
    job_id = zjq.submit("fail", "x", "--max-attempts", 3)
    status = zjq.wait_state(job_id, ("succeeded", "failed"))
    assert status["state"] == "failed" and status["attempt"] == 3, status


def test_submit_wait_reports_failure_and_cancel(zjq):
    zjq.start_broker()
    zjq.start_worker("fail", exec_command="echo broken >&2; exit 1")
    rc, out, err = zjq.zjq("submit", "fail", "x", "--max-attempts", 1, "--wait", "--timeout", 60)
    assert rc == 1, (rc, out, err)
    assert "broken" in err
    rc, out, err = zjq.zjq("submit", "nobody", "x", "--wait", "--timeout", 1)
    assert rc == 5, (rc, out, err)


def test_job_timeout_kills_exec_child(zjq):
    zjq.start_broker()
    pids = os.path.join(zjq.dir, "pids")
    zjq.start_worker("run", exec_command='sleep 120 & echo "$$ $!" >> %s; wait' % pids,
                     concurrency=2)
    job_id = zjq.submit("run", "", "--job-timeout", 1, "--max-attempts", 1)
    status = zjq.wait_state(job_id, ("succeeded", "failed"), timeout=60)
    assert status["state"] == "failed" and re.search(r"time", status["error"] or "", re.I), status
    for line in open(pids).read().splitlines():
        for pid in map(int, line.split()):
            zt.wait_until(lambda: not zt.pid_alive(pid), 30, message="timed-out child %d killed" % pid)


def test_result_wait_sees_cancel(zjq):
    zjq.start_broker()
    job_id = zjq.submit("nobody", "x")
    waiter = zjq.popen_zjq("result", job_id, "--wait", "--timeout", 120)
    # Whether the cancel comes before or after the waiter's request reaches
    # the broker, the waiter ends with "cancelled".
    rc, out, err = zjq.zjq("cancel", job_id)
    assert rc == 0, err
    out, err = waiter.communicate(timeout=zt.T(120))
    assert waiter.returncode == 3, (waiter.returncode, out, err)


def test_several_endpoints_and_clean_exit(zjq):
    ipc = "ipc://%s/zjq.sock" % zjq.dir
    broker = zjq.start_broker("--bind", ipc)
    with open(broker.endpoint_file) as f:
        endpoints = f.read().split()
    assert len(endpoints) == 2 and ipc in endpoints, endpoints
    zjq.start_worker("echo", builtin="echo", endpoint=ipc)
    rc, out, err = zjq.zjq("submit", "echo", "over ipc", "--wait", "--timeout", 60, endpoint=ipc)
    assert (rc, out) == (0, b"over ipc"), (rc, out, err)
    for worker in [p for p in zjq.processes if isinstance(p, zt.Worker)]:
        assert worker.stop() == 0
    assert broker.stop() == 0


def test_worker_capacity_is_respected(zjq):
    # capacity = concurrency 2 + prefetch 2: the broker never has more than 4
    # jobs on the worker, and the worker never runs more than 2 at once.
    zjq.start_broker()
    log = os.path.join(zjq.dir, "runs")
    worker = zjq.start_worker("cap", exec_command="echo s >> %s; sleep 0.4; echo e >> %s"
                              % (log, log), concurrency=2, args=("--prefetch", "2"))
    ids = [zjq.submit("cap", "") for _ in range(8)]
    most = 0
    deadline = time.monotonic() + zt.T(120)
    while True:
        assert time.monotonic() < deadline, "jobs did not all succeed in time"
        stats = zjq.stats()
        running = stats["queues"]["cap"]["running"]
        entry = zjq.worker_info(worker)
        assert entry["capacity"] == 4, entry
        assert entry["running"] <= 4 and running <= 4, (entry, stats["queues"]["cap"])
        most = max(most, running)
        if stats["queues"]["cap"]["succeeded"] == len(ids):
            break
        assert worker.alive()
    assert most >= 1
    for job_id in ids:
        assert zjq.status(job_id)["attempt"] == 1
    at_once = peak = 0
    for line in open(log).read().split():
        at_once += 1 if line == "s" else -1
        peak = max(peak, at_once)
    assert peak <= 2, peak


def test_prefetched_job_cancel_and_drain(zjq):
    # concurrency 1, prefetch 2: while one job runs, two wait in the worker.
    # Cancelling a waiting one answers at once; SIGTERM hands the other back
    # unstarted and the broker requeues it without counting an attempt, so
    # even a job allowed a single attempt survives a graceful scale-down.
    broker = zjq.start_broker()
    marker = os.path.join(zjq.dir, "started")
    worker = zjq.start_worker("pf", exec_command='touch %s-"$(cat)"; sleep 3; printf ok' % marker,
                              concurrency=1, grace=60, args=("--prefetch", "2"))
    first = zjq.submit("pf", "first")
    zt.wait_until(lambda: os.path.exists(marker + "-first"), 60, message="first job started")
    second = zjq.submit("pf", "second", "--max-attempts", 1)
    third = zjq.submit("pf", "third")
    zt.wait_until(lambda: zjq.worker_info(worker)["running"] == 3, 30,
                  message="both waiting jobs dispatched to the worker")
    rc, out, err = zjq.zjq("cancel", third)
    assert rc == 0, err
    assert zjq.wait_state(third, "cancelled", timeout=10)["state"] == "cancelled"
    assert worker.alive()
    worker.sigterm()
    # The waiting job comes back while the first one still runs
    status = zjq.wait_state(second, "queued", timeout=10)
    assert status["attempt"] == 0, status
    assert b"handed back unstarted" in broker.log(), "the waiting job was not handed back"
    assert worker.wait(timeout=60) == 0
    assert zjq.status(first)["state"] == "succeeded"
    assert not os.path.exists(marker + "-second") and not os.path.exists(marker + "-third")
    zjq.start_worker("pf", exec_command="printf ok")
    assert zjq.wait_state(second, "succeeded")["attempt"] == 1
    assert broker.alive()


def test_large_payload_round_trip(zjq):
    zjq.start_broker()
    zjq.start_worker("cat", exec_command="cat")
    payload = os.urandom(4 * 1024 * 1024)
    job_id = zjq.submit("cat", payload)
    zjq.wait_state(job_id, "succeeded", timeout=120)
    rc, out, err = zjq.zjq("result", job_id)
    assert rc == 0, err
    assert out == payload
