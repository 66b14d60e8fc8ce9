"""The journal (zjq-broker --journal): kill -9 and restart, torn and corrupt
files, compaction under load, a disk that fills up."""

import os
import re
import shutil
import struct
import subprocess
import time

import pytest

import zjqtest as zt


# --- helpers -------------------------------------------------------------------

def pipelined(endpoint, command, requests, window=1000, timeout=180):
    """Send many client requests (a list of (fields, payload)) with at most
    window in flight; return the replies in request order. Fails if the
    broker stops answering."""
    replies = [None] * len(requests)
    pending = {}
    sent = done = 0
    deadline = time.monotonic() + zt.T(timeout)
    with zt.RawPeer(endpoint) as peer:
        while done < len(requests):
            while sent < len(requests) and sent - done < window:
                fields, payload = requests[sent]
                fields = dict(fields, req=peer.next_req())
                pending[fields["req"]] = sent
                peer.send(command, fields, payload)
                sent += 1
            assert time.monotonic() < deadline, "%d of %d replies" % (done, len(requests))
            msg = peer.recv(timeout=10)
            assert msg is not None, "broker stopped answering (%d of %d)" % (done, len(requests))
            index = pending.pop(msg.get("req"), None)
            if index is not None:
                replies[index] = msg
                done += 1
    return replies


def submit_many(endpoint, queue, payloads, window=1000, **options):
    requests = [(dict(queue=queue, **options), p) for p in payloads]
    replies = pipelined(endpoint, zt.CMD["SUBMIT"], requests, window)
    bad = [r for r in replies if r.name != "ACCEPTED"]
    assert not bad, "%d submits not accepted, e.g. %r" % (len(bad), bad[0])
    return [r["id"] for r in replies]


def results(endpoint, ids):
    return pipelined(endpoint, zt.CMD["RESULT"], [(dict(id=i), None) for i in ids])


def statuses(endpoint, ids):
    return pipelined(endpoint, zt.CMD["STATUS"], [(dict(id=i), None) for i in ids])


def broker_stats(zjq):
    return zjq.stats()["broker"]


def wait_idle(zjq, timeout=300):
    def idle():
        b = broker_stats(zjq)
        return b if b["queued"] == 0 and b["running"] == 0 else None
    return zt.wait_until(idle, timeout, interval=0.5, message="every job ended")


def journal_records(path):
    """(offset, length) of every record in a journal file."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"ZJQJRNL\n", data[:16]
    offset, records = 16, []
    while offset + 8 <= len(data):
        length = struct.unpack_from("<I", data, offset)[0]
        records.append((offset, 8 + length))
        offset += 8 + length
    assert offset == len(data), "journal does not end on a record boundary"
    return records


def run_broker(journal_dir, *args, timeout=30):
    """Run zjq-broker expecting it to exit by itself (refusing to start)."""
    argv = [zt.binary("zjq-broker"), "--bind", "tcp://127.0.0.1:*", "--journal", journal_dir]
    argv += [str(a) for a in args]
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=zt.T(timeout))
    return proc.returncode, proc.stdout.decode(errors="replace")


# --- crash and restart ---------------------------------------------------------------

def test_kill9_restart_keeps_queued_running_and_results(zjq):
    journal = os.path.join(zjq.dir, "journal")
    broker = zjq.start_broker("--journal", journal, verbose=False)
    # Results stored before the crash.
    early_worker = zjq.start_worker("early", builtin="echo", concurrency=4, verbose=False)
    early = submit_many(broker.endpoint, "early", [b"early %d" % i for i in range(50)])
    zt.wait_until(lambda: broker_stats(zjq)["succeeded"] == 50, 60, message="early jobs done")
    early_worker.stop()
    # Jobs running at the crash (sleep 10 s each: longer than submitting
    # 10,000 jobs takes, even sanitized on a loaded machine), and 10,000
    # queued ones. (no prefetch: exactly 4 run and 4 stay queued)
    slow_worker = zjq.start_worker("slow", builtin="sleep", concurrency=4, verbose=False,
                                   args=("--prefetch", "0"))
    slow = submit_many(broker.endpoint, "slow", [b"10000"] * 8, max_attempts=3)
    zt.wait_until(lambda: broker_stats(zjq)["running"] == 4, 30, message="4 slow jobs running")
    work = submit_many(broker.endpoint, "work", [b"job %d" % i for i in range(10000)])
    assert len(set(work)) == 10000

    broker.kill()
    slow_worker.kill()
    broker.start()
    assert "event=journal_replayed " in broker.log().decode(errors="replace")
    b = broker_stats(zjq)
    assert b["queued"] == 10000 + 8 and b["results"] == 50, b

    running_before = [s for s in statuses(broker.endpoint, slow) if s["attempt"] == 1]
    assert len(running_before) == 4, running_before
    for status in running_before:
        assert status["state"] == "queued", status
        assert "broker restarted during attempt 1 of 3" in status["error"], status

    zjq.start_worker("work", builtin="echo", concurrency=16, verbose=False)
    zjq.start_worker("slow", builtin="sleep", concurrency=8, verbose=False)
    wait_idle(zjq)

    counted = 0
    for ids, expected in ((early, [b"early %d" % i for i in range(50)]),
                          (work, [b"job %d" % i for i in range(10000)]),
                          (slow, [b"10000"] * 8)):
        for job_id, reply, payload in zip(ids, results(broker.endpoint, ids), expected):
            assert reply.name == "JOB_RESULT" and reply["state"] == "succeeded", (job_id, reply)
            assert (reply.payload or b"") == payload, (job_id, reply)
            counted += 1
    assert counted == 50 + 10000 + 8
    attempts = sorted(r["attempt"] for r in results(broker.endpoint, slow))
    assert attempts == [1, 1, 1, 1, 2, 2, 2, 2], attempts


def test_fsync_always_loses_no_accepted_job(zjq):
    journal = os.path.join(zjq.dir, "journal")
    broker = zjq.start_broker("--journal", journal, "--fsync", "always", verbose=False)
    accepted = []
    deadline = time.monotonic() + zt.T(60)
    with zt.RawPeer(broker.endpoint) as peer:
        in_flight = 0
        killed = False
        while not killed and time.monotonic() < deadline and len(accepted) < 50000:
            for _ in range(200):
                peer.send(zt.CMD["SUBMIT"], dict(req=peer.next_req(), queue="q"), b"x" * 100)
                in_flight += 1
            if len(accepted) >= 3000:
                broker.kill()           # mid-load: a window is on its way
                killed = True
            while in_flight > (0 if killed else 400):
                msg = peer.recv(timeout=0.5 if killed else 10)
                if msg is None:
                    assert killed, "broker stopped answering before the kill"
                    break
                in_flight -= 1
                assert msg.name == "ACCEPTED", msg
                accepted.append(msg["id"])
        assert killed, "only %d accepted in time" % len(accepted)
    broker.start()
    replies = statuses(broker.endpoint, accepted)
    missing = [(i, r) for i, r in zip(accepted, replies) if r.name != "JOB_STATUS"]
    assert not missing, "%d of %d accepted jobs lost, e.g. %r" % (
        len(missing), len(accepted), missing[:3])
    assert all(r["state"] == "queued" for r in replies)


def test_two_brokers_cannot_share_a_journal(zjq):
    journal = os.path.join(zjq.dir, "journal")
    zjq.start_broker("--journal", journal, verbose=False)
    rc, out = run_broker(journal)
    assert rc != 0 and "in use by another broker" in out, (rc, out)


# --- damaged files ---------------------------------------------------------------

def _journal_with_jobs(zjq, count):
    journal = os.path.join(zjq.dir, "journal")
    broker = zjq.start_broker("--journal", journal, verbose=False)
    ids = submit_many(broker.endpoint, "q", [b"payload %d" % i for i in range(count)])
    assert broker.stop() == 0
    return broker, journal, ids


def test_torn_tail_is_truncated(zjq):
    broker, journal, ids = _journal_with_jobs(zjq, 20)
    path = os.path.join(journal, "journal.zjq")
    records = journal_records(path)
    last_offset, last_length = records[-1]
    with open(path, "r+b") as f:
        f.truncate(last_offset + last_length // 2)      # the last JOB, cut mid-record
    broker.start()
    log = broker.log().decode(errors="replace")
    assert re.search(r"event=journal_truncated bytes=\d+ offset=%d " % last_offset, log), log
    replies = statuses(broker.endpoint, ids)
    assert all(r.name == "JOB_STATUS" and r["state"] == "queued" for r in replies[:-1])
    assert replies[-1].name == "ERROR", replies[-1]     # its submit never reached the disk
    results_before = results(broker.endpoint, ids[:3])
    assert all(r.name == "JOB_STATUS" for r in results_before)


def test_corrupt_middle_refuses_then_salvages(zjq):
    broker, journal, ids = _journal_with_jobs(zjq, 20)
    path = os.path.join(journal, "journal.zjq")
    records = journal_records(path)
    assert len(records) == 21           # GENERATION + 20 JOB
    bad_offset, bad_length = records[10]
    with open(path, "r+b") as f:
        f.seek(bad_offset + bad_length - 3)
        byte = f.read(1)
        f.seek(bad_offset + bad_length - 3)
        f.write(bytes([byte[0] ^ 0x40]))
    rc, out = run_broker(journal)
    assert rc != 0, out
    assert re.search(r"event=journal_corrupt path=\S+ offset=%d " % bad_offset, out), out
    assert "--journal-salvage" in out, out

    broker.args += ["--journal-salvage"]
    broker.start()
    log = broker.log().decode(errors="replace")
    assert "event=journal_salvaged bytes=%d offset=%d " % (bad_length, bad_offset) in log, log
    replies = statuses(broker.endpoint, ids)
    lost = [i for i, r in zip(ids, replies) if r.name != "JOB_STATUS"]
    assert lost == [ids[9]], lost       # record 10 held job 10
    # The salvaged journal was rewritten: a plain restart works again.
    broker.args.remove("--journal-salvage")
    broker.restart()
    assert statuses(broker.endpoint, [ids[0]])[0].name == "JOB_STATUS"


# --- compaction ---------------------------------------------------------------------

def test_compaction_keeps_the_file_bounded(zjq):
    journal = os.path.join(zjq.dir, "journal")
    path = os.path.join(journal, "journal.zjq")
    broker = zjq.start_broker("--journal", journal, "--journal-compact-size", "4M",
                              verbose=False)
    zjq.start_worker("q", builtin="echo", concurrency=64, verbose=False)
    # Long-lived results with keys, then 200,000 jobs whose results expire fast.
    keep = submit_many(broker.endpoint, "q", [b"keep %d" % i for i in range(1000)])
    keyed = pipelined(broker.endpoint, zt.CMD["SUBMIT"],
                      [(dict(queue="q", key="key-%d" % i), b"keyed %d" % i) for i in range(100)])
    keyed = [r["id"] for r in keyed]
    # Paced so that live state stays small (the file follows live state,
    # and a backlog of 100,000 queued jobs is live state too).
    biggest = 0
    total, chunk = 200000, 10000
    for start in range(0, total, chunk):
        submit_many(broker.endpoint, "q", [b"%d" % i for i in range(start, start + chunk)],
                    window=2000, result_ttl_ms=500)
        biggest = max(biggest, os.path.getsize(path))

        def drained():
            nonlocal biggest
            biggest = max(biggest, os.path.getsize(path))
            return broker_stats(zjq)["queued"] < 1000
        zt.wait_until(drained, 120, interval=0.05, message="queue drained")
    wait_idle(zjq)
    biggest = max(biggest, os.path.getsize(path))
    # Once the load is gone the file follows the live state down: the next
    # rewrite (due as soon as most jobs of the last one are gone) leaves it
    # near the live state, well under the trigger's double
    journal_stats = zt.wait_until(
        lambda: (lambda j: j if j["bytes"] < 8 * 1024 * 1024 else None)(broker_stats(zjq)["journal"]),
        60, interval=0.2, message="journal back under 8 MiB once idle")
    assert journal_stats["compactions"] >= 3, journal_stats
    # Some 800,000 records (~50 MB of history) went through a file that
    # stays near its 4M trigger.
    assert journal_stats["records"] > 3 * total, journal_stats
    assert biggest < 16 * 1024 * 1024, (biggest, journal_stats)

    broker.kill()
    broker.start()
    for job_id, reply in zip(keep, results(broker.endpoint, keep)):
        assert reply.name == "JOB_RESULT" and reply["state"] == "succeeded", (job_id, reply)
    again = pipelined(broker.endpoint, zt.CMD["SUBMIT"],
                      [(dict(queue="q", key="key-%d" % i), b"other") for i in range(100)])
    assert [r["id"] for r in again] == keyed
    assert all(r["duplicate"] for r in again)
    # Ids of the expired jobs (an earlier generation) are expired, not unknown.
    reply = statuses(broker.endpoint, [keep[0].split("-")[0] + "-100"])[0]
    assert reply.name == "ERROR" and reply["code"] == zt.ERR["EEXPIRED"], reply


# --- disk full ------------------------------------------------------------------------

@pytest.fixture
def tmpfs(tmp_path):
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    rc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if rc.returncode != 0:
        pytest.skip("cannot mount a tmpfs: %s" % rc.stdout.decode(errors="replace"))
    try:
        yield str(mount)
    finally:
        if subprocess.run(["umount", str(mount)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)])


def test_disk_full_rejects_new_jobs_and_recovers(zjq, tmpfs):
    journal = os.path.join(tmpfs, "journal")
    filler = os.path.join(tmpfs, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * (1536 * 1024))
    try:
        broker = zjq.start_broker("--journal", journal, verbose=False)
        accepted, rejected, held = [], None, set()
        peer = zt.RawPeer(broker.endpoint)
        for _ in range(1000):           # 8 KiB each: the disk fills long before
            req = peer.next_req()
            peer.send(zt.CMD["SUBMIT"], dict(req=req, queue="q"), b"x" * 8192)
            reply = peer.recv(timeout=3)
            if reply is None:
                # Its record hit the full disk: the ACCEPTED waits until the
                # journal holds it.
                held.add(req)
                continue
            assert reply.get("req") == req, reply
            if reply.name != "ACCEPTED":
                rejected = reply
                break
            accepted.append(reply["id"])
        assert rejected is not None, "disk never filled"
        assert rejected.name == "REJECTED" and rejected["code"] == zt.ERR["EUNAVAILABLE"]
        assert "journal unavailable" in rejected["message"], rejected
        assert "No space left on device" in rejected["message"], rejected
        assert accepted, "nothing was accepted before the disk filled"
        rc, out, err = zjq.zjq("submit", "q", "more")
        assert rc == 7 and "unavailable" in err, (rc, out, err)
        journal_stats = broker_stats(zjq)["journal"]
        assert not journal_stats["healthy"] and "No space" in journal_stats["last_error"]
        # Everything accepted is still there.
        assert all(r.name == "JOB_STATUS" for r in statuses(broker.endpoint, accepted))

        os.unlink(filler)               # space returns: service resumes by itself
        def accepts():
            rc, out, err = zjq.zjq("submit", "q", "after")
            return out.decode().strip() if rc == 0 else None
        after = zt.wait_until(accepts, 30, interval=0.5, message="submits accepted again")
        assert "event=journal_writable " in broker.log().decode(errors="replace")
        # The submits caught by the failure are accepted now, not lost.
        while held:
            reply = peer.recv(timeout=10)
            assert reply is not None, "no ACCEPTED for held submits %r" % held
            if reply.get("req") in held:
                assert reply.name == "ACCEPTED", reply
                held.discard(reply["req"])
                accepted.append(reply["id"])
        peer.close()

        broker.kill()
        broker.start()
        replies = statuses(broker.endpoint, accepted + [after])
        missing = [r for r in replies if r.name != "JOB_STATUS"]
        assert not missing, "%d accepted jobs lost: %r" % (len(missing), missing[:3])
    finally:
        # Stop the broker before the tmpfs is unmounted.
        for proc in zjq.processes:
            proc.stop()
