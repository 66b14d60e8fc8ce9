"""Stale results: a WORK_RESULT for an attempt that is no longer running on
that worker is dropped and counted (docs/protocol.md, "Credit, leases and
attempts")."""

import zjqtest as zt
from zjqtest import CMD


def test_result_from_worker_declared_dead_is_stale(zjq):
    broker = zjq.start_broker()
    with zt.FakeWorker(broker.endpoint) as fake, zt.RawPeer(broker.endpoint) as client:
        # Queued first, so the fake worker gets it as soon as it is READY.
        job_id = zjq.submit("stale", "real payload")
        fake.ready(["stale"], capacity=1, heartbeat_ms=200)
        job = fake.recv_job(timeout=30)
        assert job["id"] == job_id and job["attempt"] == 1, job
        assert job.payload == b"real payload"
        assert job["queue"] == "stale" and job["timeout_ms"] > 0, job
        # The fake worker now goes silent; the broker declares it dead and
        # requeues the job, which a real worker completes with attempt 2.
        zjq.start_worker("stale", builtin="echo")
        status = zjq.wait_state(job_id, ("succeeded", "failed"), timeout=60)
        assert status["state"] == "succeeded" and status["attempt"] == 2, status
        stale_before = zjq.stats()["broker"]["stale_results"]

        # The silent worker wakes up and reports attempt 1 on its old connection.
        fake.work_result(job_id, 1, "ok", b"FAKE RESULT")
        reply = fake.recv_skip(timeout=10)
        assert reply is not None and reply.name == "DISCONNECT", \
            "unknown worker got %r, expected DISCONNECT" % (reply,)

        # And once more after registering again: now the broker knows the
        # worker, but (id, 1) is not running on it.
        with zt.FakeWorker(broker.endpoint) as again:
            again.ready(["elsewhere"], capacity=1, heartbeat_ms=20000)
            zt.wait_until(lambda: any(w["id"] == again.worker_id
                                      for w in zjq.stats()["workers"]), 30,
                          message="fake worker registered again")
            again.work_result(job_id, 1, "ok", b"FAKE RESULT")
            again.work_result(job_id, 1, "error", error="fake failure")
            zt.wait_until(lambda: zjq.stats()["broker"]["stale_results"] >= stale_before + 2, 30,
                          message="stale results counted")

        result = client.request(CMD["RESULT"], {"id": job_id})
        assert result.name == "JOB_RESULT", result
        assert result["state"] == "succeeded" and result["attempt"] == 2, result
        assert result.payload == b"real payload"
        rc, out, err = zjq.zjq("result", job_id)
        assert (rc, out) == (0, b"real payload"), (rc, out, err)
        assert zjq.stats()["broker"]["stale_results"] >= 1


def test_wrong_attempt_from_live_worker_is_ignored(zjq):
    broker = zjq.start_broker()
    with zt.FakeWorker(broker.endpoint) as fake, zt.RawPeer(broker.endpoint) as client:
        # A long heartbeat: the fake stays alive while the test talks.
        fake.ready(["live"], capacity=1, heartbeat_ms=20000)
        accepted = client.request(CMD["SUBMIT"], {"queue": "live"}, payload=b"p")
        assert accepted.name == "ACCEPTED", accepted
        job_id = accepted["id"]
        job = fake.recv_job(timeout=30)
        assert job["id"] == job_id and job["attempt"] == 1

        stale_before = client.request(CMD["STATS"])["stats"]["broker"]["stale_results"]
        fake.work_result(job_id, 7, "ok", b"WRONG ATTEMPT")
        fake.work_result(job_id, 2, "error", error="wrong attempt")
        fake.work_result("%s0" % job_id, 1, "ok", b"WRONG ID")
        zt.wait_until(lambda: client.request(CMD["STATS"])["stats"]["broker"]["stale_results"]
                      >= stale_before + 3, 30, message="3 stale results counted")
        status = client.request(CMD["STATUS"], {"id": job_id})
        assert status["state"] == "running" and status["attempt"] == 1, status

        # The right (id, attempt) is applied.
        fake.work_result(job_id, 1, "ok", b"right")
        zt.wait_until(lambda: client.request(CMD["STATUS"], {"id": job_id})["state"] == "succeeded",
                      30, message="job succeeded")
        result = client.request(CMD["RESULT"], {"id": job_id})
        assert result["state"] == "succeeded" and result.payload == b"right", result
        # A second result for the same attempt, after the job ended, is stale too.
        before = client.request(CMD["STATS"])["stats"]["broker"]["stale_results"]
        fake.work_result(job_id, 1, "ok", b"again")
        zt.wait_until(lambda: client.request(CMD["STATS"])["stats"]["broker"]["stale_results"]
                      > before, 30, message="duplicate result counted stale")
        result = client.request(CMD["RESULT"], {"id": job_id})
        assert result.payload == b"right", result
        # And the credit came back: the fake worker gets the next job.
        accepted = client.request(CMD["SUBMIT"], {"queue": "live"}, payload=b"next")
        job = fake.recv_job(timeout=30)
        assert job["id"] == accepted["id"]
