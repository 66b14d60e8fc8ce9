"""Bounded outbound backlog (issue 13): a client that asks for DONE and never
reads its socket, and a worker that stops reading, never make the broker hold
more than --max-queued-bytes + --max-result-bytes + the outbound allowance
(--max-outbound-bytes, one result more per connection); results past the
allowance stay in the result store and the client is told they are ready
(DONE `withheld`), the client library fetching them itself. Other clients are
served meanwhile, and a client that starts reading gets every outcome."""

import collections
import hashlib
import os
import signal
import time

import zmq

from zjqtest import CMD, ROLE_CLIENT, FakeWorker, RawPeer, T, context, wait_until

MIB = 1 << 20
# Small limits, so the bound is easy to see and the test is quick
LIMITS = ("--max-queued-bytes", "8M", "--max-result-bytes", "16M",
          "--max-peer-outbound-bytes", "2M", "--max-outbound-bytes", "4M")
BOUND = (8 + 16 + 4 + 1) * MIB      # queued + results + total allowance + one result
MARGIN = 24 * MIB                   # libzmq and malloc: pipes, buffers, fragmentation


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


def check_rss(pid, baseline, field="VmRSS"):
    """RSS (or its peak) within the bound over baseline; returns it. Under
    ASan the quarantine keeps freed memory, so only the broker's own counts
    (asserted by the callers) say anything there."""
    rss = rss_kib(pid, field) * 1024
    with open("/proc/%d/maps" % pid) as maps:
        if "libasan" in maps.read():
            return rss
    assert rss - baseline <= BOUND + MARGIN, (field, baseline, rss)
    return rss


def payload(index, size=MIB):
    seed = hashlib.sha256(b"job %d" % index).digest()
    return (seed * (size // len(seed) + 1))[:size]


class StalledClient(RawPeer):
    """A raw client whose libzmq keeps nothing for it: a receive high-water
    mark of one message and a small kernel buffer, so what it does not read
    stays in the broker (a client's own libzmq would otherwise read ahead
    into the client's memory)."""

    def __init__(self, endpoint):
        self.role = ROLE_CLIENT
        self.sock = context().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 1)
        self.sock.setsockopt(zmq.RCVBUF, 64 * 1024)
        self.sock.connect(endpoint)
        self.req = 1000
        self.pending = collections.deque()


def served_meanwhile(zjq):
    """Another client submits and gets its results while the broker holds a
    backlog for someone else."""
    rc, out, err = zjq.zjq("batch", "q", "--timeout", str(T(30)), input=b"a\nb\nc\n")
    assert rc == 0, (rc, err)
    assert sorted(line.split(b"\t")[3] for line in out.splitlines()) == [b"a", b"b", b"c"]


def test_client_that_never_reads(zjq):
    broker = zjq.start_broker(*LIMITS)
    zjq.start_worker("q", builtin="echo", concurrency=2)
    served_meanwhile(zjq)
    baseline = rss_kib(broker.pid) * 1024
    count = 100
    with StalledClient(zjq.endpoint) as client:
        # 100 x 1 MiB with notify, `ack` announcing that it fetches; it reads
        # nothing until all are submitted and done
        for index in range(count):
            client.send(CMD["SUBMIT"], dict(req=index + 1, queue="q", notify=True, ack=0),
                        payload(index))
            time.sleep(0.01)
        wait_until(lambda: zjq.stats()["broker"]["queued"] + zjq.stats()["broker"]["running"]
                   == 0, 60, message="every job ended")
        stats = zjq.stats()["broker"]
        assert stats["results_withheld"] > 0
        assert stats["outbound_bytes"] <= 4 * MIB + MIB
        assert stats["outbound_top"][0]["acks"] is True
        served_meanwhile(zjq)
        peak = check_rss(broker.pid, baseline, "VmHWM")
        print("broker RSS: baseline %.1f MiB, peak %.1f MiB, bound %.1f MiB + margin %.1f"
              % (baseline / MIB, peak / MIB, BOUND / MIB, MARGIN / MIB))

        # Now it reads: every accepted job has an outcome (a result, or told
        # withheld and fetched, or EEXPIRED if the store had to drop it)
        accepted, outcomes, withheld, seen = {}, {}, [], 0
        replies = set()                 # submits answered (ACCEPTED or REJECTED)
        deadline = time.monotonic() + T(60)
        while (len(replies) < count or any(job not in outcomes for job in accepted)) \
                and time.monotonic() < deadline:
            msg = client.recv(1)
            if msg is None:
                continue
            seen = max(seen, msg.get("out", 0))
            if msg.name in ("ACCEPTED", "REJECTED"):
                replies.add(msg["req"])
            if msg.name == "ACCEPTED":
                accepted[msg["id"]] = msg["req"] - 1
            elif msg.name == "REJECTED":
                assert msg["code"] == -9, msg          # EQUEUEFULL (the admission bound)
            elif msg.name == "DONE" and msg.get("withheld"):
                assert msg["state"] == "succeeded" and msg["result_size"] == MIB
                assert msg.payload == b""
                withheld.append(msg["id"])
                client.send(CMD["RESULT"], dict(req=10000 + len(withheld), id=msg["id"],
                                                wait=True, ack=seen))
            elif msg.name in ("DONE", "JOB_RESULT"):
                assert msg["state"] == "succeeded", msg
                outcomes[msg["id"]] = msg.payload
            elif msg.name == "ERROR" and msg.get("req", 0) > 10000:
                job = withheld[msg["req"] - 10001]
                if msg["code"] == -17:                 # EUNAVAILABLE: our backlog, again
                    time.sleep(0.05)
                    client.send(CMD["RESULT"], dict(req=msg["req"], id=job, wait=True, ack=seen))
                else:
                    assert msg["code"] == -7, msg      # EEXPIRED
                    outcomes[job] = "expired"
            else:
                assert msg.name == "PONG" and "req" not in msg.fields, msg   # a probe
        assert accepted, "no job accepted"
        for job_id, index in accepted.items():
            assert job_id in outcomes, "no outcome for %s" % job_id
            if outcomes[job_id] != "expired":
                assert outcomes[job_id] == payload(index), job_id
        print("accepted %d, withheld %d, expired %d" % (
            len(accepted), len(withheld), sum(1 for v in outcomes.values() if v == "expired")))
    # Memory is given back when it goes: its backlog is forgotten once a
    # probe finds it gone (what is left is the short-lived CLI connections'
    # last replies, probed in turn)
    wait_until(lambda: zjq.stats()["broker"]["outbound_peer_max_bytes"] < 64 * 1024, T(40),
               interval=1, message="the backlog of the closed client forgotten")
    print("broker RSS after the client closed: %.1f MiB" % (check_rss(broker.pid, baseline) / MIB))


def test_client_library_fetches_withheld_results(zjq, tmp_path):
    broker = zjq.start_broker("--max-queued-bytes", "64M", "--max-result-bytes", "64M",
                              "--max-peer-outbound-bytes", "2M", "--max-outbound-bytes", "4M")
    zjq.start_worker("q", builtin="echo", concurrency=2)
    count = 24
    lines = [payload(index, MIB // 2).hex().encode()[:MIB // 2] for index in range(count)]
    source = tmp_path / "payloads"
    source.write_bytes(b"\n".join(lines) + b"\n")
    rc, out, err = zjq.zjq("pause", "q")
    assert rc == 0, err
    proc = zjq.popen_zjq("batch", "q", "--file", source, "--timeout", str(T(60)))
    wait_until(lambda: zjq.stats()["broker"]["queued"] == count, 30, message="all submitted")
    # The client stops reading (its loop is not driven): the results pile up
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        rc, out, err = zjq.zjq("resume", "q")
        assert rc == 0, err
        wait_until(lambda: zjq.stats()["broker"]["succeeded"] == count, 60,
                   message="every job ended")
        stats = zjq.stats()["broker"]
        assert stats["results_withheld"] > 0, stats
        assert stats["outbound_peer_max_bytes"] <= 2 * MIB + MIB // 2 + 64 * 1024, stats
        served_meanwhile(zjq)
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    stdout, stderr = proc.communicate(timeout=T(60))
    assert proc.returncode == 0, stderr
    results = sorted(line.split(b"\t")[3] for line in stdout.splitlines())
    assert results == sorted(lines)
    assert broker.alive()


def test_worker_that_stops_reading(zjq):
    broker = zjq.start_broker(*LIMITS)
    baseline = rss_kib(broker.pid) * 1024
    with FakeWorker(zjq.endpoint) as stalled:
        # A long heartbeat: the broker keeps it while the test is slow to ask
        stalled.ready(["q"], capacity=50, heartbeat_ms=60000)
        wait_until(lambda: zjq.stats()["workers"], 30, message="fake worker registered")
        ids = [zjq.submit("q", payload(index)) for index in range(6)]
        # It holds at most 2 MiB of payloads (and always one job): 2 jobs of
        # 1 MiB, not its capacity of 50; it keeps sending heartbeats
        def in_hand():
            stalled.heartbeat()
            workers = zjq.stats()["workers"]
            return workers[0]["running"] == 2 and workers[0]
        worker = wait_until(in_hand, 30, message="two jobs dispatched")
        assert worker["outbound_bytes"] == 2 * MIB
        assert zjq.stats()["broker"]["queued"] == 4
        # Another worker serves the rest meanwhile
        zjq.start_worker("q", builtin="echo")
        done = set()
        def others_done():
            stalled.heartbeat()
            done.update(job for job in ids if zjq.status(job)["state"] == "succeeded")
            return len(done) == 4
        wait_until(others_done, 60, message="the other worker ran the rest")
        check_rss(broker.pid, baseline, "VmHWM")
        # It reads again: it gets its two jobs and answers them
        for _ in range(2):
            job = stalled.recv_job()
            stalled.work_result(job["id"], job["attempt"], payload=job.payload[:10])
        for job in ids:
            assert zjq.wait_state(job, "succeeded")["state"] == "succeeded"


def test_client_without_ack_never_gets_an_empty_result(zjq):
    """A client that does not announce the capability (no `ack`) is sent
    results up to its allowance; past it, each withheld result is an ERROR
    EUNAVAILABLE naming the job, never a DONE without its result."""
    zjq.start_broker(*LIMITS)
    zjq.start_worker("q", builtin="echo")
    count = 6
    with StalledClient(zjq.endpoint) as client:
        for index in range(count):
            client.send(CMD["SUBMIT"], dict(req=index + 1, queue="q", notify=True),
                        payload(index))
            time.sleep(0.02)
        wait_until(lambda: zjq.stats()["broker"]["succeeded"] == count, 60,
                   message="every job ended")
        assert zjq.stats()["broker"]["results_withheld"] >= 1
        accepted, results, told = {}, {}, set()
        deadline = time.monotonic() + T(30)
        while len(results) + len(told) < count and time.monotonic() < deadline:
            msg = client.recv(1)
            if msg is None:
                continue
            assert "out" not in msg.fields, msg     # no stamps for it
            if msg.name == "ACCEPTED":
                accepted[msg["id"]] = msg["req"] - 1
            elif msg.name == "DONE":
                assert not msg.get("withheld") and msg.payload, msg
                results[msg["id"]] = msg.payload
            elif msg.name == "ERROR":
                assert msg["code"] == -17 and "req" not in msg.fields, msg
                told.add(msg["id"])
        assert len(accepted) == count
        assert told and results and len(results) + len(told) == count
        for job_id, data in results.items():
            assert data == payload(accepted[job_id])
        # Asking with RESULT is answered, not with the bytes: it never
        # acknowledges, so its connection stays past the allowance
        reply = client.request(CMD["RESULT"], dict(id=sorted(told)[0]))
        assert reply.name == "ERROR" and reply["code"] == -17, reply
