"""Garbage and malformed input: the broker answers what it can, counts it,
and keeps serving (docs/protocol.md, "Framing")."""

import socket


import zjqtest as zt
from zjqtest import CMD, ERR, ROLE_CLIENT, header, pack


def raw_tcp_garbage(port):
    """Bytes that are not ZMTP at all, on plain TCP connections."""
    blobs = [
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"\x00" * 64,
        b"\xff" + b"\x00" * 8 + b"\x7f" + b"\x03\x00NULL" + b"\x00" * 100,   # ZMTP-ish, wrong
        bytes(range(256)) * 64,
        b"\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f\x03\x01" + b"NULL" + b"\x00" * 16
        + b"\x04\xff\xff\xff\xffgarbage",                                   # greeting, then junk
    ]
    for blob in blobs:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            try:
                sock.sendall(blob)
                sock.settimeout(0.5)
                try:
                    sock.recv(4096)
                except (socket.timeout, ConnectionError):
                    pass
            except ConnectionError:
                pass     # the broker may close on us: that is fine
    # A connection that opens and closes without a byte, and a half-open one.
    socket.create_connection(("127.0.0.1", port), timeout=10).close()


#  (description, frames, expected ERROR code)
def malformed_cases():
    ping = header(ROLE_CLIENT, CMD["PING"])
    submit = header(ROLE_CLIENT, CMD["SUBMIT"])
    ok_fields = pack({"req": 7})
    return [
        ("short header", [b"ZJ", ok_fields], "EPROTO"),
        ("empty header", [b"", ok_fields], "EPROTO"),
        ("long header", [ping + b"\x00", ok_fields], "EPROTO"),
        ("bad magic", [b"XJQ\x01C\x06", ok_fields], "EPROTO"),
        ("header only", [ping], "EPROTO"),
        ("bad msgpack", [ping, b"\xc1\xc1\xc1"], "EPROTO"),
        ("truncated msgpack", [ping, pack({"req": 7, "queue": "abc"})[:-2]], "EPROTO"),
        ("fields not a map (array)", [ping, pack([1, 2, 3])], "EPROTO"),
        ("fields not a map (int)", [ping, pack(42)], "EPROTO"),
        ("map with int keys", [ping, pack({1: 2})], "EPROTO"),
        ("trailing bytes after map", [ping, ok_fields + b"\x01"], "EPROTO"),
        ("req of the wrong type", [ping, pack({"req": "seven"})], "EPROTO"),
        ("fields over 64 KiB", [ping, pack({"req": 7, "junk": "x" * (70 * 1024)})], "EPROTO"),
        ("SUBMIT without payload frame", [submit, pack({"req": 7, "queue": "q"})], "EPROTO"),
        ("PING with a payload frame", [ping, ok_fields, b"extra"], "EPROTO"),
        ("SUBMIT with an extra frame", [submit, pack({"req": 7, "queue": "q"}), b"p", b"x"], "EPROTO"),
        ("wrong version 2", [b"ZJQ\x02C\x06", ok_fields], "EVERSION"),
        ("wrong version 0", [b"ZJQ\x00C\x06", ok_fields], "EVERSION"),
        ("unknown command", [header(ROLE_CLIENT, 0x7E), ok_fields], "ECOMMAND"),
        ("worker READY from a client", [header(ROLE_CLIENT, CMD["READY"]),
                                        pack({"req": 7, "worker_id": "x", "queues": ["q"],
                                              "capacity": 1, "heartbeat_ms": 1000})], "ECOMMAND"),
        ("WORK_RESULT from a client", [header(ROLE_CLIENT, CMD["WORK_RESULT"]),
                                       pack({"req": 7, "id": "a-1", "attempt": 1, "status": "ok"}),
                                       b""], "ECOMMAND"),
        ("broker reply sent by a client", [header(ROLE_CLIENT, CMD["PONG"]), ok_fields], "ECOMMAND"),
        # BATCH (docs/protocol.md, "Batches")
        ("BATCH without records frame", [header(ROLE_CLIENT, CMD["BATCH"]), pack({"count": 1})],
         "EPROTO"),
        ("BATCH of count 0", zt.batch_frames(ROLE_CLIENT, [], count=0), "EPROTO"),
        ("BATCH record truncated", zt.batch_frames(ROLE_CLIENT, [(CMD["PING"], {"req": 7}, None)])[:2]
         + [zt.batch_frames(ROLE_CLIENT, [(CMD["PING"], {"req": 7}, None)])[2][:-1]], "EPROTO"),
        ("BATCH inside a BATCH", zt.batch_frames(ROLE_CLIENT, [(CMD["BATCH"], {"count": 1}, b"")]),
         "EPROTO"),
        ("BATCH record with bad msgpack", [header(ROLE_CLIENT, CMD["BATCH"]), pack({"count": 1}),
                                           b"\x06\x00\x00\x00\x01\xc1"], "EPROTO"),
        ("BATCH record of a broker command", zt.batch_frames(
            ROLE_CLIENT, [(CMD["PONG"], {"req": 7}, None)]), "ECOMMAND"),
    ]


def test_garbage_and_malformed_frames(zjq):
    broker = zjq.start_broker()
    zjq.start_worker("echo", builtin="echo")

    raw_tcp_garbage(broker.port)
    assert broker.alive()

    failures = []
    eproto_sent = 0
    with zt.RawPeer(broker.endpoint) as peer:
        for description, frames, expected in malformed_cases():
            peer.send_frames(frames)
            reply = peer.recv(timeout=10)
            if expected == "EPROTO":
                eproto_sent += 1
            if reply is None:
                failures.append("%s: no reply (expected ERROR %s)" % (description, expected))
                continue
            if reply.name != "ERROR" or reply.role != b"B":
                failures.append("%s: got %r, expected ERROR %s" % (description, reply, expected))
                continue
            if reply.get("code") != ERR[expected]:
                failures.append("%s: ERROR code %s (%s), expected %s; message %r" % (
                    description, reply.get("code"), zt.ERR_NAME.get(reply.get("code")),
                    expected, reply.get("message")))
            if not isinstance(reply.get("message"), str):
                failures.append("%s: ERROR without a message: %r" % (description, reply))
            # The same peer still gets real answers after each bad message.
            pong = peer.request(CMD["PING"])
            if pong.name != "PONG":
                failures.append("%s: PING afterwards got %r" % (description, pong))

        # A valid request with an unknown extra field is fine (protocol growth).
        pong = peer.request(CMD["PING"], {"some_future_field": [1, 2, 3]})
        assert pong.name == "PONG" and isinstance(pong.get("instance"), str), pong

        # Invalid but well-formed SUBMITs are REJECTED with EINVAL.
        for fields in ({"queue": "bad queue name!"}, {"queue": ""}, {"queue": "q" * 129},
                       {"queue": "q", "priority": 5000}, {"queue": "q", "max_attempts": 0}):
            reply = peer.request(CMD["SUBMIT"], fields, payload=b"x")
            if reply.name != "REJECTED" or reply.get("code") != ERR["EINVAL"]:
                failures.append("SUBMIT %r: got %r, expected REJECTED EINVAL" % (fields, reply))

        # A job id that is not one.
        reply = peer.request(CMD["STATUS"], {"id": "not an id!"})
        if reply.name != "ERROR" or reply.get("code") != ERR["EBADID"]:
            failures.append("STATUS of a bad id: got %r, expected ERROR EBADID" % (reply,))

    raw_tcp_garbage(broker.port)
    assert broker.alive(), "broker died"

    # Still fully working through the real CLI.
    rc, out, err = zjq.zjq("ping")
    assert rc == 0, err
    job_id = zjq.submit("echo", "still alive")
    rc, out, err = zjq.zjq("result", job_id, "--wait", "--timeout", 60)
    assert rc == 0, err
    assert out == b"still alive"

    malformed = zjq.stats()["broker"]["malformed"]
    assert malformed >= eproto_sent, "stats malformed %d < %d malformed messages sent" % (
        malformed, eproto_sent)
    assert not failures, "\n".join(failures)


def test_raw_protocol_roundtrip(zjq):
    """The raw helper itself speaks the protocol right: submit, wait, result."""
    broker = zjq.start_broker()
    zjq.start_worker("echo", builtin="echo")
    with zt.RawPeer(broker.endpoint) as peer:
        accepted = peer.request(CMD["SUBMIT"], {"queue": "echo", "notify": True},
                                payload=b"\x00raw\xff")
        assert accepted.name == "ACCEPTED", accepted
        assert accepted["duplicate"] is False
        job_id = accepted["id"]
        done = peer.recv_skip(timeout=60)
        assert done is not None and done.name == "DONE", done
        assert done["id"] == job_id and done["state"] == "succeeded" and done["attempt"] == 1
        result = peer.request(CMD["RESULT"], {"id": job_id})
        assert result.name == "JOB_RESULT", result
        assert result.payload == b"\x00raw\xff"
        status = peer.request(CMD["STATUS"], {"id": job_id})
        assert status.name == "JOB_STATUS" and status["state"] == "succeeded"
        stats = peer.request(CMD["STATS"])
        assert stats.name == "STATS_REPLY"
        assert set(("broker", "queues", "workers")) <= set(stats["stats"])


def test_batch_from_a_client(zjq):
    """A client may send many requests in one BATCH: each is answered as if
    it came alone, in order, and a bad record does not cost the good ones
    before it."""
    broker = zjq.start_broker()
    zjq.start_worker("echo", builtin="echo", concurrency=4)
    with zt.RawPeer(broker.endpoint) as peer:
        messages = [(CMD["SUBMIT"], {"req": 2000 + n, "queue": "echo", "notify": True},
                     b"job %d" % n) for n in range(300)]
        messages.append((CMD["PING"], {"req": 3000}, None))
        messages.append((CMD["SUBMIT"], {"req": 3001, "queue": "bad queue!"}, b"x"))
        peer.send_frames(zt.batch_frames(ROLE_CLIENT, messages))
        accepted, done, other = {}, {}, {}
        while len(accepted) < 300 or len(done) < 300 or len(other) < 2:
            msg = peer.recv(timeout=60)
            assert msg is not None, "missing replies: %d accepted, %d done, %r" % (
                len(accepted), len(done), other)
            if msg.name == "ACCEPTED":
                accepted[msg["req"]] = msg["id"]
            elif msg.name == "DONE":
                done[msg["id"]] = msg.payload
            else:
                other[msg.get("req")] = msg
        assert sorted(accepted) == list(range(2000, 2300))
        ids = [accepted[2000 + n] for n in range(300)]
        assert len(set(ids)) == 300
        # Ids are issued in the order the records came
        assert [int(i.split("-")[1], 36) for i in ids] == sorted(int(i.split("-")[1], 36) for i in ids)
        for n, job_id in enumerate(ids):
            assert done[job_id] == b"job %d" % n
        assert other[3000].name == "PONG"
        assert other[3001].name == "REJECTED" and other[3001]["code"] == ERR["EINVAL"]
        # A batch whose third record is cut short: the first two are served
        good = zt.batch_frames(ROLE_CLIENT, [(CMD["PING"], {"req": 4000 + n}, None) for n in range(3)])
        peer.send_frames(good[:2] + [good[2][:-3]])
        replies = [peer.recv(timeout=10) for _ in range(3)]
        assert [r.name for r in replies] == ["PONG", "PONG", "ERROR"], replies
        assert replies[2]["code"] == ERR["EPROTO"] and "truncated" in replies[2]["message"]
        # A count above the records there are: the records, then EPROTO
        peer.send_frames(zt.batch_frames(ROLE_CLIENT, [(CMD["PING"], {"req": 4100}, None)], count=2))
        replies = [peer.recv(timeout=10) for _ in range(2)]
        assert [r.name for r in replies] == ["PONG", "ERROR"], replies
        assert replies[1]["code"] == ERR["EPROTO"]
        assert peer.request(CMD["PING"]).name == "PONG"
