#!/usr/bin/env python3
"""Write the seed corpus of the fuzz harnesses (tests/fuzz/corpus/{msg,batch})
from messages encoded as the protocol has them (tests/zjqtest.py's
encoders, docs/protocol.md). Run it again after a protocol change; inputs
that once crashed a harness are kept next to the seeds as crash-*."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import zjqtest as zt                      # noqa: E402
from zjqtest import CMD                   # noqa: E402

C, W = zt.ROLE_CLIENT, zt.ROLE_WORKER
MESSAGES = [
    ("submit", C, CMD["SUBMIT"], {"req": 1, "queue": "img", "priority": 5, "key": "k1",
                                  "max_attempts": 3, "job_timeout_ms": 30000,
                                  "result_ttl_ms": 60000, "notify": True, "progress": True},
     b"payload"),
    ("status", C, CMD["STATUS"], {"req": 2, "id": "mabc123-1"}, None),
    ("result", C, CMD["RESULT"], {"req": 3, "id": "mabc123-1", "wait": True}, None),
    ("cancel", C, CMD["CANCEL"], {"req": 4, "id": "mabc123-2"}, None),
    ("stats", C, CMD["STATS"], {"req": 5}, None),
    ("ping", C, CMD["PING"], {"req": 6}, None),
    ("retry", C, CMD["RETRY"], {"req": 7, "queue": "img"}, None),
    ("ready", W, CMD["READY"], {"queues": ["img", "pdf"], "capacity": 4, "prefetch": 2,
                                "pid": 4242, "host": "h1", "heartbeat_ms": 1000}, None),
    ("heartbeat", W, CMD["HEARTBEAT"], {}, None),
    ("work_result", W, CMD["WORK_RESULT"], {"id": "mabc123-1", "attempt": 1, "ok": True},
     b"result"),
    ("work_failed", W, CMD["WORK_RESULT"], {"id": "mabc123-1", "attempt": 2, "ok": False,
                                            "error": "exit status 3", "exit_code": 3},
     b""),
    ("progress", W, CMD["PROGRESS"], {"id": "mabc123-1", "attempt": 1, "progress": 0.5,
                                      "message": "halfway"}, None),
    ("disconnect", W, CMD["DISCONNECT"], {"reason": "bye"}, None),
]


def msg_input(role, command, fields, payload):
    header = zt.header(role, command)
    packed = zt.pack(fields)
    flags = 1 if payload is not None else 0
    return (bytes([len(header), flags]) + len(packed).to_bytes(2, "big") + header + packed
            + (payload or b""))


def batch_input(role, messages, count=None):
    frames = zt.batch_frames(role, messages, count)
    count = len(messages) if count is None else count
    return bytes([1 if role == W else 0]) + count.to_bytes(2, "big") + frames[2]


def write(directory, name, data):
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, name), "wb") as f:
        f.write(data)


def main():
    msg_dir = os.path.join(HERE, "corpus", "msg")
    batch_dir = os.path.join(HERE, "corpus", "batch")
    for name, role, command, fields, payload in MESSAGES:
        write(msg_dir, "seed-" + name, msg_input(role, command, fields, payload))
    write(msg_dir, "seed-bad-version", msg_input(C, CMD["PING"], {"req": 1}, None)
          .replace(b"ZJQ\x01", b"ZJQ\x09", 1))
    clients = [(command, fields, payload) for _, role, command, fields, payload in MESSAGES
               if role == C]
    workers = [(command, fields, payload) for _, role, command, fields, payload in MESSAGES
               if role == W]
    write(batch_dir, "seed-clients", batch_input(C, clients))
    write(batch_dir, "seed-workers", batch_input(W, workers))
    write(batch_dir, "seed-submits", batch_input(C, [clients[0]] * 8))
    write(batch_dir, "seed-count-short", batch_input(C, clients[:3], count=2))
    write(batch_dir, "seed-count-long", batch_input(C, clients[:3], count=5))


if __name__ == "__main__":
    main()
