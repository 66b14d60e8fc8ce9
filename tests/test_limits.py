"""Broker limits: payload size and queue length are refused with exit 7."""

import os
import re

import zjqtest as zt
from zjqtest import CMD, ERR


def test_oversized_payload_rejected(zjq):
    broker = zjq.start_broker("--max-payload", "1k")
    rc, out, err = zjq.zjq("submit", "q", "-", input=b"x" * 2000)
    assert rc == 7, (rc, out, err)
    assert re.search(r"too (large|big)", err, re.I), err
    assert out == b""
    # Small ones still go in.
    zjq.submit("q", "x" * 100)
    with zt.RawPeer(broker.endpoint) as peer:
        reply = peer.request(CMD["SUBMIT"], {"queue": "q"}, payload=b"y" * 4096)
        assert reply.name == "REJECTED" and reply["code"] == ERR["ETOOBIG"], reply
    assert zjq.stats()["broker"]["rejected"] >= 2


def test_full_queue_rejected(zjq):
    broker = zjq.start_broker("--max-jobs", 5)
    ids = [zjq.submit("nobody", "job-%d" % i) for i in range(5)]
    assert len(set(ids)) == 5
    rc, out, err = zjq.zjq("submit", "nobody", "one too many")
    assert rc == 7, (rc, out, err)
    assert re.search(r"queue full|full", err, re.I), err
    with zt.RawPeer(broker.endpoint) as peer:
        reply = peer.request(CMD["SUBMIT"], {"queue": "other"}, payload=b"z")
        assert reply.name == "REJECTED" and reply["code"] == ERR["EQUEUEFULL"], reply
    assert zjq.stats()["broker"]["rejected"] >= 2


def test_max_queued_bytes(zjq):
    zjq.start_broker("--max-queued-bytes", "4k")
    zjq.submit("nobody", "a" * 3000)
    rc, out, err = zjq.zjq("submit", "nobody", "-", input=b"b" * 3000)
    assert rc == 7, (rc, out, err)


def test_config_file(zjq):
    config = os.path.join(zjq.dir, "broker.conf")
    with open(config, "w") as f:
        f.write("# limits for the test\nmax-jobs = 2\nmax-attempts = 5\n")
    zjq.start_broker("--config", config)
    first = zjq.submit("nobody", "1")
    assert zjq.status(first)["max_attempts"] == 5
    zjq.submit("nobody", "2")
    rc, out, err = zjq.zjq("submit", "nobody", "3")
    assert rc == 7, (rc, out, err)
    # The command line wins over the file.
    broker = zjq.start_broker("--config", config, "--max-attempts", 2)
    job_id = zjq.submit("nobody", "x", endpoint=broker.endpoint)
    assert zjq.status(job_id, endpoint=broker.endpoint)["max_attempts"] == 2


def test_max_queues(zjq):
    """Queue objects are never freed, so --max-queues bounds how many names a
    client (or a worker's READY) can make the broker hold."""
    broker = zjq.start_broker("--max-queues", 3)
    for name in ("q1", "q2", "q3"):
        zjq.submit(name, "x")
    # An existing queue still takes jobs; a fourth name is refused.
    zjq.submit("q2", "again")
    rc, out, err = zjq.zjq("submit", "q4", "x")
    assert rc == 7, (rc, out, err)
    assert re.search(r"queue limit", err), err
    with zt.RawPeer(broker.endpoint) as peer:
        reply = peer.request(CMD["SUBMIT"], {"queue": "q5"}, payload=b"z")
        assert reply.name == "REJECTED" and reply["code"] == ERR["EQUEUEFULL"], reply
    # A worker asking for a new queue past the limit is refused too; one
    # serving existing queues joins and runs their jobs.
    zjq.start_worker(["q1", "q9"], builtin="echo", wait=False)
    zt.wait_until(lambda: b"queue limit reached" in broker.log(), zt.T(20),
                  "the broker to refuse the worker's READY")
    zjq.start_worker("q1", builtin="echo")
    zt.wait_until(lambda: zjq.stats()["queues"]["q1"]["succeeded"] >= 1, zt.T(30),
                  "the q1 job to run")
    stats = zjq.stats()
    assert sorted(stats["queues"]) == ["q1", "q2", "q3"], stats["queues"].keys()
    assert len(stats["workers"]) == 1, stats["workers"]
