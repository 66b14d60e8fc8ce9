"""CURVE security (README: Running across hosts securely): allowed keys get
service, unknown keys, wrong roles, wrong queues and plaintext peers are
refused and counted, reloads take effect on live connections, and the
payload never crosses the wire in clear text."""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

import zjqtest as zt


def test_allowed_client_and_worker_complete_jobs(zjq):
    curve = zjq.enable_curve()
    zjq.start_broker()
    zjq.start_worker("echo", builtin="echo", concurrency=4)
    rc, out, err = zjq.zjq("submit", "echo", "hello over curve", "--wait", "--timeout", 30)
    assert rc == 0, err
    assert out == b"hello over curve"
    lines = "".join("line-%d\n" % i for i in range(50))
    rc, out, err = zjq.zjq("batch", "echo", "--timeout", 60, input=lines)
    assert rc == 0, err
    assert len(out.decode().splitlines()) == 50
    stats = zjq.stats()
    broker = stats["broker"]
    assert broker["curve"] is True
    assert broker["succeeded"] == 51
    for counter in ("refused_handshakes", "refused_unknown_key", "refused_role", "denied_queue"):
        assert broker[counter] == 0, (counter, broker)
    # The broker logged its public key, never its secret one
    log = zjq.broker.log().decode(errors="replace")
    assert curve.broker.z85 in log
    assert zt.read_z85(curve.broker.secret, "secret-key") not in log


def test_refused_keys_and_roles(zjq):
    curve = zjq.enable_curve()
    stranger = curve.keygen("stranger")
    limited = curve.keygen("limited", roles=("clients",), queues="img,pdf")
    other = curve.keygen("other", roles=("clients",))
    zjq.start_broker()
    zjq.start_worker("echo", builtin="echo")

    # An unknown key: refused at the handshake, exit 7 (EDENIED)
    rc, out, err = zjq.zjq("ping", key=stranger)
    assert rc == 7, (rc, err)
    assert "refused this client's CURVE key" in err
    # A worker's key cannot submit
    rc, out, err = zjq.zjq("submit", "echo", "x", key=curve.worker)
    assert rc == 7, (rc, err)
    assert "client role" in err
    # A client key cannot read the stats (admin only)
    rc, out, err = zjq.zjq("stats")
    assert rc == 7 and "admin role" in err, (rc, err)
    # A queue-restricted key: its queues only
    rc, out, err = zjq.zjq("submit", "echo", "x", key=limited)
    assert rc == 7, (rc, err)
    assert "may not submit to queue echo" in err
    rc, out, err = zjq.zjq("submit", "img", "x", key=limited)
    assert rc == 0, err

    # A client's key used by a worker: never registered, never gets a job
    job_id = zjq.submit("other", "for nobody")
    impostor = zjq.start_worker("other", builtin="echo", key=curve.client, wait=False)
    zt.wait_until(lambda: b"broker denied access" in impostor.log(), timeout=30,
                  message="the worker logs that it was denied")
    assert impostor.alive()
    assert zjq.worker_info(impostor) is None
    assert zjq.status(job_id)["state"] == "queued"

    # Jobs belong to their key: another client key may not see or cancel
    rc, out, err = zjq.zjq("cancel", job_id, key=other)
    assert rc == 7 and "another key" in err, (rc, err)
    rc, out, err = zjq.zjq("status", job_id, key=curve.admin)
    assert rc == 0, err
    rc, out, err = zjq.zjq("cancel", job_id)
    assert rc == 0 and out.strip() == b"cancelled", (rc, out, err)

    # The broker kept serving everyone else, and counted each refusal
    rc, out, err = zjq.zjq("submit", "echo", "still fine", "--wait", "--timeout", 30)
    assert rc == 0 and out == b"still fine", err
    broker = zjq.stats()["broker"]
    assert broker["refused_unknown_key"] >= 1, broker
    assert broker["refused_role"] >= 4, broker       # submit, stats, READY, cancel
    assert broker["denied_queue"] == 1, broker
    log = zjq.broker.log().decode(errors="replace")
    assert stranger.z85 in log
    for key in (stranger, limited, curve.client, curve.worker):
        assert zt.read_z85(key.secret, "secret-key") not in log


def test_plaintext_peers_get_no_service(zjq):
    curve = zjq.enable_curve()
    zjq.start_broker()
    # zjq without keys: the broker is unreachable for it
    rc, out, err = zt.cli("--broker", zjq.endpoint, "--request-timeout", 2, "ping")
    assert rc == 6, (rc, err)
    assert "does not match" in err or "handshake" in err, err
    # Nor does a raw plaintext socket get an answer
    with zt.RawPeer(zjq.endpoint) as peer:
        peer.send(zt.CMD["PING"], {"req": 1})
        assert peer.recv(timeout=1) is None
    # A wrong broker key is refused too
    impostor_broker = curve.keygen("impostor-broker")
    rc, out, err = zt.cli("--broker", zjq.endpoint, "--request-timeout", 2, "ping",
                          env={"ZJQ_CURVE_SECRET": curve.client.secret,
                               "ZJQ_BROKER_KEY": impostor_broker.public})
    assert rc == 6, (rc, err)
    broker = zjq.stats()["broker"]
    assert broker["refused_handshakes"] >= 2, broker
    # The same raw socket with an allowed key is served
    with zt.RawPeer(zjq.endpoint, curve=(curve.client, curve.broker)) as peer:
        assert peer.request(zt.CMD["PING"]).name == "PONG"


def test_bad_key_files_exit_2(zjq):
    curve = zjq.enable_curve()
    missing = os.path.join(zjq.dir, "missing.key_secret")
    for binary, args in (("zjq", ("--broker", "tcp://127.0.0.1:1", "ping")),
                         ("zjq-worker", ("--broker", "tcp://127.0.0.1:1", "--queue", "q",
                                         "--builtin", "echo"))):
        # missing file
        rc, out, err = run(binary, *args, env={"ZJQ_CURVE_SECRET": missing,
                                               "ZJQ_BROKER_KEY": curve.broker.public})
        assert rc == 2 and "missing.key_secret" in err, (binary, rc, err)
        # a public certificate where the secret one belongs
        rc, out, err = run(binary, *args, env={"ZJQ_CURVE_SECRET": curve.client.public,
                                               "ZJQ_BROKER_KEY": curve.broker.public})
        assert rc == 2 and "secret-key" in err, (binary, rc, err)
        # only one of the two
        rc, out, err = run(binary, *args, "--curve-secret", curve.client.secret)
        assert rc == 2, (binary, rc, err)
    # A secret file others can read
    loose = os.path.join(zjq.dir, "loose.key_secret")
    shutil.copy(curve.client.secret, loose)
    os.chmod(loose, 0o644)
    rc, out, err = run("zjq", "--curve-secret", loose, "--broker-key", curve.broker.public,
                       "ping")
    assert rc == 2 and "chmod 600" in err, (rc, err)
    secret = zt.read_z85(curve.client.secret, "secret-key")
    assert secret not in err
    # The broker: bad secret, missing allow-list, a list without the secret
    rc, out, err = run("zjq-broker", "--bind", "tcp://127.0.0.1:*", "--curve-secret", loose,
                       "--curve-clients", os.path.join(curve.dir, "clients"))
    assert rc == 2 and "chmod 600" in err, (rc, err)
    rc, out, err = run("zjq-broker", "--bind", "tcp://127.0.0.1:*", "--curve-secret",
                       curve.broker.secret, "--curve-clients", os.path.join(zjq.dir, "nodir"))
    assert rc == 2 and "nodir" in err, (rc, err)
    rc, out, err = run("zjq-broker", "--bind", "tcp://127.0.0.1:*", "--curve-clients",
                       os.path.join(curve.dir, "clients"))
    assert rc == 2 and "--curve-secret" in err, (rc, err)
    # keygen never overwrites, and makes the secret file private
    rc, out, err = zt.cli("keygen", os.path.join(curve.dir, "client"))
    assert rc == 2 and "not overwriting" in err, (rc, err)
    assert os.stat(curve.client.secret).st_mode & 0o777 == 0o600
    rc, out, err = zt.cli("keygen", os.path.join(zjq.dir, "x"), "--queues", "bad name")
    assert rc == 2, (rc, err)


def test_help_lists_curve_options():
    for binary, options in (("zjq-broker", ("--curve-secret", "--curve-clients", "--curve-workers",
                                            "--curve-admins", "SIGHUP")),
                            ("zjq-worker", ("--curve-secret", "--broker-key", "ZJQ_CURVE_SECRET",
                                            "ZJQ_BROKER_KEY")),
                            ("zjq", ("--curve-secret", "--broker-key", "keygen", "reload",
                                     "ZJQ_CURVE_SECRET", "ZJQ_BROKER_KEY"))):
        rc, out, err = run(binary, "--help")
        assert rc == 0, (binary, err)
        for option in options:
            assert option in out, "%s --help does not mention %s" % (binary, option)
    rc, out, err = run("zjq", "keygen", "--help")
    assert rc == 0 and "--queues" in out, (rc, out, err)


def run(binary, *args, env=None, timeout=30):
    full_env = dict(os.environ)
    for name in ("ZJQ_BROKER", "ZJQ_CURVE_SECRET", "ZJQ_BROKER_KEY"):
        full_env.pop(name, None)
    full_env.update(env or {})
    proc = subprocess.run([zt.binary(binary)] + [str(a) for a in args], stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=zt.T(timeout), env=full_env)
    return proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")


@pytest.mark.parametrize("how", ["sighup", "zjq reload"])
def test_reload_admits_and_drops_keys(zjq, how):
    curve = zjq.enable_curve()
    broker = zjq.start_broker()
    worker = zjq.start_worker("echo", builtin="echo")
    newcomer = curve.keygen("newcomer")
    rc, out, err = zjq.zjq("ping", key=newcomer)
    assert rc == 7, (rc, err)

    # A connection that is up before the reload, waiting for a job that no
    # worker serves
    live = zt.RawPeer(zjq.endpoint, curve=(curve.client, curve.broker))
    assert live.request(zt.CMD["PING"]).name == "PONG"
    held = live.request(zt.CMD["SUBMIT"], {"queue": "held", "notify": True}, payload=b"h")
    assert held.name == "ACCEPTED", held

    curve.allow(newcomer, "clients")
    curve.revoke(curve.client, "clients")
    curve.revoke(curve.worker, "workers")
    if how == "sighup":
        broker.signal(signal.SIGHUP)
        zt.wait_until(lambda: b"event=allowlists_reloaded why=SIGHUP" in broker.log(), timeout=30)
    else:
        rc, out, err = zjq.zjq("reload", key=curve.admin)
        assert rc == 0, err
        assert b"reloaded: 1 client, 0 worker, 1 admin" in out, out

    # The new key is admitted; the removed one is refused, on its old
    # connection as well as on new ones
    rc, out, err = zjq.zjq("submit", "echo", "x", key=newcomer)
    assert rc == 0, err
    reply = live.request(zt.CMD["PING"])
    assert reply.name == "ERROR" and reply["code"] == zt.ERR["EDENIED"], reply
    # ... and it is not told how its job ended: an admin cancels it, then the
    # revoked key's next request is answered, with no DONE before that answer
    rc, out, err = zjq.zjq("cancel", held["id"], key=curve.admin)
    assert rc == 0, err
    req = live.next_req()
    live.send(zt.CMD["PING"], {"req": req})
    seen = []
    while True:
        msg = live.recv(timeout=30)
        assert msg is not None, "no answer to the revoked key's PING (saw %r)" % seen
        seen.append(msg.name)
        if msg.get("req") == req:
            break
    assert seen == ["ERROR"], seen
    assert b"event=done_withheld" in broker.log()
    live.close()
    rc, out, err = zjq.zjq("ping")
    assert rc == 7, (rc, err)
    # The worker whose key was removed is dropped and gets no more jobs
    zt.wait_until(lambda: zjq.worker_info(worker) is None, timeout=30,
                  message="the revoked worker dropped")
    assert b"access revoked" in broker.log()
    stats = zjq.stats()
    assert stats["broker"]["refused_unknown_key"] >= 2, stats["broker"]
    assert stats["queues"]["echo"]["workers"] == 0

    # A broken certificate makes a reload fail and keeps the lists in force
    with open(os.path.join(curve.dir, "clients", "broken.key"), "w") as f:
        f.write("not a certificate\n")
    rc, out, err = zjq.zjq("reload", key=curve.admin)
    assert rc == 7 and "broken.key" in err, (rc, err)
    rc, out, err = zjq.zjq("ping", key=newcomer)
    assert rc == 0, err


# --- the wire ------------------------------------------------------------------

MARKER = "ZJQ-CLEARTEXT-MARKER-7f3a9c"


def capture(zjq, port, action):
    """Run action () while tcpdump records loopback traffic on port; return
    the captured bytes. Skips the test where tcpdump cannot capture."""
    tcpdump = shutil.which("tcpdump") or "/usr/sbin/tcpdump"
    if not os.path.exists(tcpdump):
        pytest.skip("tcpdump is not installed (scripts/lib.sh installs it)")
    path = os.path.join(zjq.dir, "capture-%d.pcap" % port)
    # --immediate-mode: else packets wait in kernel blocks, and may never
    # reach the file before tcpdump is stopped
    argv = [tcpdump, "-i", "lo", "--immediate-mode", "-U", "-s", "0", "-w", path]
    if os.geteuid() == 0:
        argv += ["-Z", "root"]      # keep the right to write into our directory
    proc = subprocess.Popen(argv + ["tcp port %d" % port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    zjq.popens.append(proc)
    try:
        # tcpdump says "listening on lo" once it captures
        line = proc.stderr.readline()
        if b"listening" not in line:
            proc.wait(timeout=zt.T(10))
            pytest.skip("tcpdump cannot capture here: %s" % line.decode(errors="replace"))
        action()
        time.sleep(0.5)             # let the last packets reach the file
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=zt.T(10))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with open(path, "rb") as f:
        return f.read()


def submit_marked(zjq):
    payload = "%s payload" % MARKER
    rc, out, err = zjq.zjq("submit", "echo", payload, "--wait", "--timeout", 30)
    assert rc == 0, err
    assert out.decode() == payload


def test_no_cleartext_on_the_wire_with_curve(zjq):
    # Control: without CURVE the marker is on the wire, so the capture works
    plain = zjq.start_broker()
    zjq.start_worker("echo", builtin="echo")
    data = capture(zjq, plain.port, lambda: submit_marked(zjq))
    assert MARKER.encode() in data, "the plaintext control capture does not show the payload"

    zjq.enable_curve()
    secure = zjq.start_broker()
    zjq.broker = secure             # the Env's helpers talk to this one now
    zjq.start_worker("echo", builtin="echo")
    data = capture(zjq, secure.port, lambda: submit_marked(zjq))
    assert len(data) > 2000, "captured too little to mean anything (%d bytes)" % len(data)
    assert MARKER.encode() not in data, "payload in clear text on a CURVE connection"
    assert b"echo" not in data, "queue name in clear text on a CURVE connection"



def test_job_owners_survive_a_journal_replay(zjq):
    """The submitting key is part of the job record: after kill -9 and a
    replay of the journal, a job is still visible to its owner only."""
    curve = zjq.enable_curve()
    other = curve.keygen("other", roles=("clients",))
    journal = os.path.join(zjq.dir, "journal")
    broker = zjq.start_broker("--journal", journal, "--fsync", "always")
    job = zjq.submit("nobody-serves-this", "mine")
    rc, out, err = zjq.zjq("status", job, key=other)
    assert rc == 7 and "EDENIED" in err, (rc, err)

    broker.kill()
    broker.start(broker.port)
    rc, out, err = zjq.zjq("status", job, "--json")
    assert rc == 0, (rc, err)
    assert json.loads(out)["state"] == "queued"
    rc, out, err = zjq.zjq("status", job, key=other)
    assert rc == 7 and "EDENIED" in err, (rc, err)
    rc, out, err = zjq.zjq("cancel", job, key=other)
    assert rc == 7, (rc, err)
    rc, out, err = zjq.zjq("cancel", job)
    assert rc == 0, (rc, err)
