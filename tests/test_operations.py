"""Operations (issue 8, control half): job progress pushed to clients in
order, dead letters (failed jobs kept with their attempt history, listed
and retried, across a journaled restart), pausing and resuming a queue, and
draining the broker."""

import json
import os
import re
import time

from zjqtest import CMD, ERR, T, FakeWorker, RawPeer, wait_until

PROGRESS_RE = re.compile(r"^zjq: job (\S+) attempt (\d+): ([0-9.]+)% ?(.*)$")


def progress_lines(stderr):
    """(fraction, message) for each --progress line of the CLI."""
    seen = []
    for line in stderr.splitlines():
        match = PROGRESS_RE.match(line)
        if match:
            seen.append((round(float(match.group(3)) / 100, 3), match.group(4)))
    return seen


def test_progress_reaches_the_client_in_order_raw(zjq):
    """Every PROGRESS a worker sends reaches a client that asked, in order,
    before DONE; status shows the last report."""
    broker = zjq.start_broker()
    with FakeWorker(broker.endpoint) as worker, RawPeer(broker.endpoint) as client:
        worker.ready(["prog"])
        wait_until(lambda: zjq.stats()["broker"]["workers"] == 1, message="fake worker")
        accepted = client.request(CMD["SUBMIT"], dict(queue="prog", notify=True, progress=True),
                                  payload=b"x")
        assert accepted.name == "ACCEPTED", accepted
        job = worker.recv_job()
        job_id = accepted["id"]
        assert job["id"] == job_id
        for step in range(1, 11):
            worker.send(CMD["PROGRESS"], dict(id=job_id, attempt=job["attempt"],
                                              progress=step / 10, message="step %d" % step))
        worker.work_result(job_id, job["attempt"], payload=b"done")
        updates = []
        while True:
            msg = client.recv(timeout=30)
            assert msg is not None, "no DONE after %r" % updates
            if msg.name == "DONE":
                break
            assert msg.name == "PROGRESS_UPDATE", msg
            assert msg["id"] == job_id and msg["attempt"] == job["attempt"]
            updates.append((msg["progress"], msg["message"]))
        assert updates == [(step / 10, "step %d" % step) for step in range(1, 11)]
    status = zjq.status(job_id)
    assert status["state"] == "succeeded"
    assert status["progress"] == 1.0 and status["progress_message"] == "step 10"


def test_exec_progress_reaches_cli_in_order(zjq, tmp_path):
    """An --exec job reports 0.1..1.0 on fd 3; `zjq submit --wait --progress`
    prints the reports in order (a report sent while the next is already
    there may be coalesced, never reordered), the last one included, and
    `zjq status` shows it."""
    script = tmp_path / "progress.sh"
    script.write_text("for i in 1 2 3 4 5 6 7 8 9 10; do\n"
                      "  echo \"0.$i step $i\" | sed 's/^0.10 /1.0 /' >&$ZJQ_PROGRESS_FD\n"
                      "  echo 'not a progress line' >&3\n"
                      "  sleep 0.05\n"
                      "done\n"
                      "cat\n")
    zjq.start_broker()
    zjq.start_worker("prog", exec_command="sh %s" % script)
    rc, out, err = zjq.zjq("submit", "prog", "payload", "--wait", "--progress", "--timeout", T(60))
    assert rc == 0, err
    assert out == b"payload"
    seen = progress_lines(err)
    expected = [(step / 10, "step %d" % step) for step in range(1, 11)]
    assert seen, err
    assert seen[-1] == (1.0, "step 10"), seen
    positions = [expected.index(item) for item in seen]      # every one was reported
    assert positions == sorted(positions) and len(set(positions)) == len(positions), seen
    job_id = PROGRESS_RE.match(err.splitlines()[0]).group(1)
    status = zjq.status(job_id)
    assert status["progress"] == 1.0 and status["progress_message"] == "step 10"
    # zjq result --wait --progress on a running job sees its reports too
    slow = tmp_path / "slow.sh"
    slow.write_text("sleep 2; for i in 1 2 3; do echo \"0.$i r$i\" >&3; sleep 0.2; done; cat\n")
    worker2 = zjq.start_worker("slow", exec_command="sh %s" % slow)
    assert worker2.alive()
    job_id = zjq.submit("slow", "x")
    rc, out, err = zjq.zjq("result", job_id, "--wait", "--progress", "--timeout", T(60))
    assert rc == 0 and out == b"x", err
    seen = progress_lines(err)
    assert seen and seen[-1] == (0.3, "r3"), err


def failing_script(tmp_path, failures):
    """A command that fails with exit status 3 (and a message on stderr) the
    first `failures` times it runs, then echoes its payload."""
    counter = tmp_path / "runs"
    script = tmp_path / "flaky.sh"
    script.write_text("n=$(cat %s 2>/dev/null || echo 0); n=$((n + 1)); echo $n > %s\n"
                      "if [ $n -le %d ]; then echo \"boom $n\" >&2; exit 3; fi\n"
                      "cat\n" % (counter, counter, failures))
    return "sh %s" % script


def failed_list(zjq, *args):
    rc, out, err = zjq.zjq("failed", "--json", *args)
    assert rc == 0, err
    return json.loads(out)


def test_dead_letters_listed_retried_and_journaled(zjq, tmp_path):
    """A job that fails its last attempt is kept with each attempt's error,
    exit status and duration, past the result TTL and across a journaled
    restart; `zjq retry` requeues it with a fresh attempt budget."""
    journal = tmp_path / "journal"
    broker = zjq.start_broker("--journal", journal, "--result-ttl", "1")
    worker = zjq.start_worker("flaky", exec_command=failing_script(tmp_path, 2))
    job_id = zjq.submit("flaky", "hello", "--max-attempts", "2")
    zjq.wait_state(job_id, "failed")
    time.sleep(1.5)             # past --result-ttl: a dead letter stays

    def check_listed():
        listing = failed_list(zjq)
        assert listing["total"] == 1
        (job,) = listing["jobs"]
        assert job["id"] == job_id and job["queue"] == "flaky"
        assert job["attempts"] == 2 and job["max_attempts"] == 2
        assert "exit status 3" in job["error"] and job["failed_ms"] > 0
        assert job["expires_ms"] - job["failed_ms"] >= 6 * 86400 * 1000    # 7 days
        history = job["history"]
        assert [a["attempt"] for a in history] == [1, 2]
        for n, attempt in enumerate(history, 1):
            assert attempt["exit_code"] == 3
            assert "boom %d" % n in attempt["error"]
            assert attempt["duration_ms"] >= 0
            assert attempt["ended_ms"] >= attempt["started_ms"] > 0
            assert attempt["worker"]
        return job

    before = check_listed()
    stats = zjq.stats()["broker"]
    assert stats["dead_letters"] == 1 and stats["dead_letter_bytes"] > 0, stats
    rc, out, err = zjq.zjq("failed")
    assert rc == 0 and job_id in out.decode() and "flaky" in out.decode(), err
    rc, out, err = zjq.zjq("status", job_id)
    assert rc == 0 and "attempt 2: " in out.decode() and "exit status 3" in out.decode()

    broker.restart()
    zjq.wait_worker_registered(worker)
    after = check_listed()
    assert after["history"] == before["history"]
    assert failed_list(zjq, "other")["jobs"] == []

    rc, out, err = zjq.zjq("retry", job_id)
    assert rc == 0 and out.decode().strip() == job_id, err
    status = zjq.wait_state(job_id, "succeeded")
    assert status["attempt"] == 3 and status["max_attempts"] == 4
    assert status["retries"] == 1 and len(status["history"]) == 2
    rc, out, err = zjq.zjq("result", job_id)
    assert rc == 0 and out == b"hello"
    assert failed_list(zjq)["jobs"] == []
    # A job that is not a dead letter cannot be retried; a bad id is not found
    rc, out, err = zjq.zjq("retry", job_id)
    assert rc == 8 and "ESTATE" in err, err
    rc, out, err = zjq.zjq("retry", "nope")
    assert rc == 4, err


def test_retry_a_whole_queue(zjq, tmp_path):
    zjq.start_broker()
    zjq.start_worker("q1", exec_command=failing_script(tmp_path, 2))
    first = zjq.submit("q1", "a", "--max-attempts", "1")
    second = zjq.submit("q1", "b", "--max-attempts", "1")
    zjq.wait_state(first, "failed")
    zjq.wait_state(second, "failed")
    listing = failed_list(zjq, "q1")
    assert [job["id"] for job in listing["jobs"]] == [first, second]
    rc, out, err = zjq.zjq("failed", "--json", "--limit", "1")
    assert rc == 0 and len(json.loads(out)["jobs"]) == 1
    rc, out, err = zjq.zjq("retry", "--queue", "q1")
    assert rc == 0 and out.decode().startswith("2 job(s)"), (out, err)
    assert zjq.wait_state(first, "succeeded")["attempt"] == 2
    assert zjq.wait_state(second, "succeeded")["attempt"] == 2
    rc, out, err = zjq.zjq("retry")
    assert rc == 2, err


def test_pause_and_resume_survive_a_restart(zjq, tmp_path):
    broker = zjq.start_broker("--journal", tmp_path / "journal")
    worker = zjq.start_worker("work", builtin="echo")
    rc, out, err = zjq.zjq("pause", "work")
    assert rc == 0 and "paused" in out.decode(), err
    job_id = zjq.submit("work", "held")
    # Accepted and queued; an idle worker gets nothing while the queue is paused
    for _ in range(10):
        time.sleep(0.1)
        assert zjq.status(job_id)["state"] == "queued"
    assert zjq.worker_info(worker)["running"] == 0
    assert zjq.stats()["queues"]["work"]["paused"] is True
    rc, out, err = zjq.zjq("stats")
    assert "work*" in out.decode() and "* paused" in out.decode(), out
    broker.restart()
    zjq.wait_worker_registered(worker)
    for _ in range(5):
        time.sleep(0.1)
        assert zjq.status(job_id)["state"] == "queued"
    rc, out, err = zjq.zjq("resume", "work")
    assert rc == 0 and "dispatching" in out.decode(), err
    zjq.wait_state(job_id, "succeeded")
    assert zjq.stats()["queues"]["work"]["paused"] is False
    rc, out, err = zjq.zjq("result", job_id)
    assert out == b"held"
    # Other queues were never held up; bad names are usage errors
    rc, out, err = zjq.zjq("pause", "bad name")
    assert rc == 2, err


def test_drain_rejects_new_jobs_and_finishes_the_rest(zjq):
    zjq.start_broker()
    zjq.start_worker("slow", builtin="sleep", concurrency=1, args=["--prefetch", "0"])
    running = zjq.submit("slow", "1500")
    queued = zjq.submit("slow", "10")
    zjq.wait_state(running, "running")
    rc, out, err = zjq.zjq("drain")
    assert rc == 0 and out.decode().startswith("draining"), err
    rc, out, err = zjq.zjq("submit", "slow", "1")
    assert rc == 7 and "EDRAINING" in err, err
    assert zjq.stats()["broker"]["draining"] is True
    # A batch of which the broker accepts nothing says "rejected" too
    rc, out, err = zjq.zjq("batch", "slow", input="1\n2\n3\n")
    assert rc == 7 and out.count(b"rejected") == 3, (rc, out, err)
    rc, out, err = zjq.zjq("drain", "--wait", "--timeout", T(60))
    assert rc == 0 and out.decode().startswith("drained"), (out, err)
    assert zjq.status(running)["state"] == "succeeded"
    assert zjq.status(queued)["state"] == "succeeded"
    rc, out, err = zjq.zjq("result", queued)
    assert rc == 0 and out == b"10"
    assert "event=drain_complete" in zjq.broker.log().decode()
    rc, out, err = zjq.zjq("drain", "--off")
    assert rc == 0 and out.decode().startswith("accepting"), err
    assert zjq.stats()["broker"]["draining"] is False
    job_id = zjq.submit("slow", "1")
    zjq.wait_state(job_id, "succeeded")


def test_drain_wait_times_out_while_work_remains(zjq):
    zjq.start_broker()
    zjq.submit("nobody", "x")           # no worker serves it
    rc, out, err = zjq.zjq("drain", "--wait", "--timeout", "0.5")
    assert rc == 5 and "1 queued" in out.decode(), (out, err)


def test_operations_need_an_admin_key(zjq):
    curve = zjq.enable_curve()
    zjq.start_broker()
    rc, out, err = zjq.zjq("pause", "q")
    assert rc == 7 and "EDENIED" in err, err
    for args in (("failed",), ("drain",), ("retry", "--queue", "q"), ("resume", "q")):
        rc, out, err = zjq.zjq(*args)
        assert rc == 7 and "EDENIED" in err, (args, err)
        assert out == b"", (args, out)      # an error prints no table (not even its header)
    rc, out, err = zjq.zjq("pause", "q", key=curve.admin)
    assert rc == 0 and "paused" in out.decode(), err
    rc, out, err = zjq.zjq("failed", key=curve.admin)
    assert rc == 0 and out.decode().startswith("ID "), (out, err)


def test_bad_operation_requests_get_errors(zjq):
    broker = zjq.start_broker()
    with RawPeer(broker.endpoint) as peer:
        reply = peer.request(CMD["RETRY"], {})
        assert reply.name == "ERROR" and reply["code"] == ERR["EPROTO"], reply
        reply = peer.request(CMD["RETRY"], dict(id="x", queue="q"))
        assert reply.name == "ERROR" and reply["code"] == ERR["EPROTO"], reply
        reply = peer.request(CMD["PAUSE"], dict(queue="no spaces"))
        assert reply.name == "ERROR" and reply["code"] == ERR["EINVAL"], reply
        reply = peer.request(CMD["DRAIN"], dict(off="yes"))
        assert reply.name == "ERROR" and reply["code"] == ERR["EPROTO"], reply
        reply = peer.request(CMD["DEAD_LETTERS"], dict(limit=0))
        assert reply.name == "ERROR" and reply["code"] == ERR["EPROTO"], reply
        reply = peer.request(CMD["SUBMIT"], dict(queue="q", progress=3), payload=b"")
        assert reply.name == "REJECTED" and reply["code"] == ERR["EINVAL"], reply
        reply = peer.request(CMD["RESUME"], dict(queue="never-seen"))
        assert reply.name == "QUEUE_STATE" and reply["paused"] is False, reply
    with FakeWorker(broker.endpoint) as worker, RawPeer(broker.endpoint) as client:
        worker.ready(["w"])
        accepted = client.request(CMD["SUBMIT"], dict(queue="w"), payload=b"x")
        job = worker.recv_job()
        worker.send(CMD["WORK_RESULT"], dict(id=accepted["id"], attempt=job["attempt"],
                                             status="error", exit_code=300), b"")
        reply = worker.recv_skip()
        assert reply.name == "ERROR" and reply["code"] == ERR["EPROTO"], reply
        worker.send(CMD["WORK_RESULT"], dict(id=accepted["id"], attempt=job["attempt"],
                                             status="error", error="no", exit_code=4,
                                             signal=9, duration_ms=12), b"")
        status = wait_until(lambda: (lambda s: s if s.get("history") else None)(
            zjq.status(accepted["id"])), message="the attempt recorded")
        attempt = status["history"][0]
        assert attempt["exit_code"] == 4 and attempt["signal"] == 9
        assert attempt["duration_ms"] == 12 and attempt["error"] == "no"
    assert broker.alive()
