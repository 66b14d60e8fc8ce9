"""The C client library from a caller's poll() loop (tests/client_api_test.c)."""

import os
import subprocess

import zjqtest as zt


def test_client_api_event_loop(zjq):
    program = os.path.join(zt.BUILD_DIR, "tests", "client_api_test")
    assert os.path.exists(program), "not built: %s" % program
    zjq.start_broker(verbose=False)
    zjq.start_worker("api", builtin="echo", concurrency=4, verbose=False)
    dead = "tcp://127.0.0.1:%d" % zt.free_port()
    try:
        proc = subprocess.run([program, zjq.endpoint, dead], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=zt.T(400))
    except subprocess.TimeoutExpired:
        raise AssertionError("client_api_test did not finish")
    err = proc.stderr.decode(errors="replace")
    print(err)
    assert proc.returncode == 0, "client_api_test exited %d:\n%s" % (proc.returncode, err[-6000:])
    assert proc.stdout.strip() == b"ok"
    assert not zt.SANITIZER_RE.search(proc.stderr), err
    stats = zjq.stats()
    assert stats["queues"]["api"]["succeeded"] == 200, stats["queues"]
