"""Multi-host on one machine: a broker "host" and two worker "hosts", each a
network namespace of its own (ip netns), joined by veth pairs to a bridge in
the broker's namespace, on a private 10.x subnet that exists only inside
these namespaces. The binaries from the build run in them with
`ip netns exec`. One worker host's link is cut in the middle of a run: its
jobs go to the other host after the heartbeat timeout (--heartbeat 200), and
every job completes. The link comes back: that worker rejoins by itself,
and whatever it still reports for the jobs it lost is dropped as stale.

Needs root (CI runs as root); skipped with a visible message otherwise.
Namespaces, bridge and veths have unique names per run and are always
deleted (fixture finalizer).
"""

import json
import os
import random
import re
import shutil
import subprocess
import threading
import uuid

import pytest

from zjqtest import SANITIZER_RE, T, Process, Worker, binary, check_sha256_batch, wait_until

JOBS = 800
ROUNDS = 50000          # ~17 ms of sha256 per job on the dev VM
PORT = 5555             # inside the broker's namespace: nothing else is there


def ip(*args, check=True):
    proc = subprocess.run(["ip"] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=30)
    if check and proc.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(map(str, args)),
                                          proc.stderr.decode(errors="replace").strip()))
    return proc


class Hosts:
    """Three namespaces: broker (with bridge), hostA and hostB (one veth each)."""

    def __init__(self):
        tag = uuid.uuid4().hex[:6]
        self.broker_ns = "zjqb-%s" % tag
        self.worker_ns = {"hostA": "zjqwa-%s" % tag, "hostB": "zjqwb-%s" % tag}
        self.bridge = "zbr%s" % tag
        # The worker-side end of each veth (named in its own namespace).
        self.link = {"hostA": "zva%s" % tag, "hostB": "zvb%s" % tag}
        self.net = "10.%d.%d" % (random.randint(200, 250), random.randint(1, 254))
        self.broker_ip = "%s.1" % self.net
        self.created = []

    def setup(self):
        for ns in [self.broker_ns] + list(self.worker_ns.values()):
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", self.broker_ns, "link", "add", self.bridge, "type", "bridge")
        ip("-n", self.broker_ns, "addr", "add", "%s/24" % self.broker_ip, "dev", self.bridge)
        ip("-n", self.broker_ns, "link", "set", self.bridge, "up")
        for number, (host, ns) in enumerate(sorted(self.worker_ns.items()), start=10):
            port_end = "zp" + self.link[host][2:]
            ip("-n", self.broker_ns, "link", "add", port_end, "type", "veth",
               "peer", "name", self.link[host], "netns", ns)
            ip("-n", self.broker_ns, "link", "set", port_end, "master", self.bridge, "up")
            ip("-n", ns, "addr", "add", "%s.%d/24" % (self.net, number), "dev", self.link[host])
            ip("-n", ns, "link", "set", self.link[host], "up")

    def teardown(self):
        # Deleting a namespace destroys the veths and the bridge in it (and the
        # peer end of each veth with them).
        for ns in reversed(self.created):
            ip("netns", "del", ns, check=False)
        self.created = []

    def set_link(self, host, up):
        ip("-n", self.worker_ns[host], "link", "set", self.link[host], "up" if up else "down")


@pytest.fixture
def hosts():
    reason = None
    if os.geteuid() != 0:
        reason = "network namespaces need root (CI runs as root)"
    elif not shutil.which("ip"):
        reason = "no `ip` command (iproute2)"
    if reason:
        print("SKIPPED: %s" % reason)
        pytest.skip(reason)
    net = Hosts()
    try:
        try:
            net.setup()
        except RuntimeError as exc:
            print("SKIPPED: cannot create network namespaces: %s" % exc)
            pytest.skip("cannot create network namespaces: %s" % exc)
        yield net
    finally:
        net.teardown()


def netns_cli(net, *args, input=None, timeout=60):
    """The build's zjq run in the broker's namespace against its loopback."""
    argv = ["ip", "netns", "exec", net.broker_ns, binary("zjq"), "--broker",
            "tcp://127.0.0.1:%d" % PORT] + [str(a) for a in args]
    env = {k: v for k, v in os.environ.items() if k != "ZJQ_BROKER"}
    proc = subprocess.run(argv, input=input or b"", stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=T(timeout), env=env)
    assert not SANITIZER_RE.search(proc.stderr), proc.stderr.decode(errors="replace")
    return proc


def stats(net):
    proc = netns_cli(net, "stats", "--json")
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return json.loads(proc.stdout)


def hosts_in_stats(net):
    return sorted(w["host"] for w in stats(net)["workers"])


# `hosts` first, so its finalizer runs after the `zjq` fixture stopped every process.
def test_cut_worker_link_requeues_and_rejoins(hosts, zjq):
    net = hosts
    broker = Process(zjq, "broker", ["ip", "netns", "exec", net.broker_ns, binary("zjq-broker"),
                                     "--bind", "tcp://%s:%d" % (net.broker_ip, PORT),
                                     "--bind", "tcp://127.0.0.1:%d" % PORT, "-v"])
    zjq.processes.append(broker)
    broker.start()
    wait_until(lambda: netns_cli(net, "ping").returncode == 0, timeout=30,
               message="broker answering in its namespace")

    endpoint = "tcp://%s:%d" % (net.broker_ip, PORT)
    for host in ("hostA", "hostB"):
        worker = Worker(zjq, endpoint, "hash", builtin="sha256", concurrency=2, heartbeat=200,
                        grace=5, name="worker-%s" % host)
        worker.argv = ["ip", "netns", "exec", net.worker_ns[host]] + worker.argv
        worker.extra_env = {"ZJQ_WORKER_HOST": host}
        zjq.processes.append(worker)
        worker.start()
    wait_until(lambda: hosts_in_stats(net) == ["hostA", "hostB"], timeout=30,
               message="workers of hostA and hostB registered")

    payloads = ["%d:netns-%d" % (ROUNDS, n) for n in range(1, JOBS + 1)]
    argv = ["ip", "netns", "exec", net.broker_ns, binary("zjq"), "--broker",
            "tcp://127.0.0.1:%d" % PORT, "batch", "hash", "--json", "--window", str(JOBS),
            "--timeout", str(int(T(300)))]
    batch = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(batch.stdout), daemon=True)
    reader.start()
    batch.stdin.write("".join(p + "\n" for p in payloads).encode())
    batch.stdin.close()
    try:
        def worker_stats(host):
            return [w for w in stats(net)["workers"] if w["host"] == host]

        wait_until(lambda: len(lines) >= JOBS // 10 and worker_stats("hostA")
                   and worker_stats("hostA")[0]["running"] > 0, timeout=120, interval=0.05,
                   message="hostA running jobs, 10% done")
        cut_at = len(lines)
        net.set_link("hostA", up=False)
        # 3 heartbeats of 200 ms: the broker forgets hostA and requeues its jobs.
        wait_until(lambda: hosts_in_stats(net) == ["hostB"], timeout=10, interval=0.05,
                   message="the broker declared hostA dead")
        wait_until(lambda: len(lines) >= cut_at + JOBS // 10, timeout=120, interval=0.05,
                   message="hostB carrying on alone")
        restored_at = len(lines)
        net.set_link("hostA", up=True)
        wait_until(lambda: hosts_in_stats(net) == ["hostA", "hostB"], timeout=30, interval=0.1,
                   message="hostA's worker rejoined by itself")
        rejoined_at = len(lines)
        print("jobs done: cut at %d, restored at %d, rejoined at %d of %d"
              % (cut_at, restored_at, rejoined_at, JOBS))
        batch.wait(timeout=T(300))
    finally:
        if batch.poll() is None:
            batch.kill()
            batch.wait()
    check_sha256_batch(batch, reader, lines, payloads)

    # The jobs hostA was running when its link went down were requeued (the
    # broker never saw their results) and ran again, attempt 2, on hostB
    # (or on hostA once it was back). The worker logs (-v) say who ran what.
    def runs(host):
        text = open(zjq.dir + "/worker-%s.log" % host, "rb").read().decode(errors="replace")
        return set(re.findall(r"event=job_finished job=(\S+) attempt=(\d+) outcome=done", text))
    done = {host: runs(host) for host in ("hostA", "hostB")}
    retried = sorted({job for host in done for job, attempt in done[host] if attempt != "1"})
    print("retried jobs: %r" % retried)
    assert retried, "no job was requeued when hostA's link went down"
    assert any((job, "2") in done["hostB"] for job in retried), \
        "hostB ran none of hostA's jobs again: %r" % retried

    # What hostA finished after the cut can reach the broker only once the
    # link is back, by TCP retransmission on the connection both sides gave
    # up (a race: if the broker's own retransmission gets there first, hostA's
    # kernel answers with a reset and the late results are gone). Whatever
    # arrived was dropped and counted as stale, never applied: every result
    # above is attempt 2's, and it is correct.
    broker_stats = stats(net)
    log = broker.log().decode(errors="replace")
    late = len(re.findall(r"event=stale_result ", log))
    print("broker: %s" % json.dumps(broker_stats["broker"]))
    print("workers: %s" % json.dumps(broker_stats["workers"]))
    print("stale results: %d" % broker_stats["broker"]["stale_results"])
    assert broker_stats["broker"]["stale_results"] == late
    assert broker_stats["broker"]["succeeded"] == JOBS
    assert broker_stats["broker"]["failed"] == 0
