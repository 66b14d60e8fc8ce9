"""deploy/docker-compose.yml for real: build the image, run a broker (journal
on a named volume) and 3 workers, push 2,000 sha256 jobs through the host's
`zjq batch` on 127.0.0.1:<free port>, scale the workers 3 -> 1 -> 3 and
restart the broker container while they run, and check every result with
hashlib. Always torn down with `down -v` under a unique project name.

Skipped (visibly) only when no Docker engine is reachable; CI installs one
(.ci/run calls ../shared/tools/docker-engine.sh), so there it always runs.
"""

import json
import os
import shutil
import subprocess
import threading
import time
import uuid

import pytest

from zjqtest import SOURCE_DIR, T, binary, cli, free_port, check_sha256_batch, wait_until

COMPOSE_FILE = os.path.join(SOURCE_DIR, "deploy", "docker-compose.yml")
JOBS = 2000
ROUNDS = 60000          # ~10 ms of sha256 per job on one core of the dev VM


def docker_cli():
    """The docker client: Debian's (matches Debian's engine) if present."""
    for path in ("/usr/bin/docker", shutil.which("docker")):
        if path and os.path.exists(path):
            return path
    return None


def compose_cli():
    """argv prefix for Compose: docker-compose (v1, Debian's package), else
    `docker compose` (v2 plugin), else None."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = docker_cli()
    if docker and subprocess.run([docker, "compose", "version"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL).returncode == 0:
        return [docker, "compose"]
    return None


def engine_reachable():
    docker = docker_cli()
    if not docker:
        return False, "no docker client installed"
    try:
        proc = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    except subprocess.TimeoutExpired:
        return False, "`docker info` timed out"
    if proc.returncode != 0:
        return False, proc.stderr.decode(errors="replace").strip().splitlines()[-1:]
    return True, proc.stdout.decode().strip()


class Compose:
    """One compose project: its own name, image tag, host port and environment."""

    def __init__(self, argv):
        self.argv = argv
        self.project = "zjqtest%s" % uuid.uuid4().hex[:10]
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("ZJQ_")}
        self.env.update(ZJQ_IMAGE="zjq-test:%s" % self.project, ZJQ_PORT=str(self.port),
                        ZJQ_QUEUES="hash", ZJQ_HANDLER="sha256", ZJQ_HEARTBEAT="500",
                        ZJQ_GRACE="20", ZJQ_STOP_GRACE_PERIOD="30s",
                        ZJQ_WORKER_HOST="dockerhost")
        self.endpoint = "tcp://127.0.0.1:%d" % self.port

    def run(self, *args, timeout=300, check=True):
        argv = self.argv + ["-f", COMPOSE_FILE, "-p", self.project] + list(args)
        print("$ " + " ".join(argv))
        try:
            proc = subprocess.run(argv, env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=T(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError("%s did not finish within %.0fs" % (" ".join(argv), T(timeout)))
        out = proc.stdout.decode(errors="replace")
        if check and proc.returncode != 0:
            raise AssertionError("%s exited %d:\n%s" % (" ".join(argv), proc.returncode, out[-4000:]))
        return out

    def scale(self, workers):
        return self.run("up", "-d", "--no-build", "--no-recreate", "--scale",
                        "worker=%d" % workers, timeout=120)

    def zjq(self, *args, timeout=60):
        return cli("--broker", self.endpoint, *args, timeout=timeout)

    def stats(self):
        rc, out, err = self.zjq("stats", "--json", "--request-timeout", "2")
        return json.loads(out) if rc == 0 else None

    def workers(self):
        stats = self.stats()
        return None if stats is None else stats["broker"]["workers"]


@pytest.fixture
def compose():
    ok, detail = engine_reachable()
    if not ok:
        print("SKIPPED: no Docker engine reachable (%s)" % detail)
        pytest.skip("no Docker engine reachable (%s); run ../shared/tools/docker-engine.sh" % detail)
    argv = compose_cli()
    assert argv, "a Docker engine is up but neither docker-compose nor `docker compose` is installed"
    project = Compose(argv)
    try:
        yield project
    finally:
        try:
            print(project.run("logs", "--no-color", "--tail", "40", timeout=60, check=False))
        finally:
            print(project.run("down", "-v", "--rmi", "all", "--remove-orphans", "-t", "5",
                              timeout=180, check=False))


def test_compose_scale_and_restart_loses_nothing(compose):
    binary("zjq")
    compose.run("build", timeout=900)
    compose.run("up", "-d", "--no-build", "--scale", "worker=3", timeout=120)
    wait_until(lambda: (compose.workers() or 0) >= 3, timeout=60,
               message="3 workers registered with the broker in the container")
    hosts = {w["host"] for w in compose.stats()["workers"]}
    # ZJQ_WORKER_HOST names the machine; the entry point adds the container.
    assert len(hosts) == 3 and all(h.startswith("dockerhost:") for h in hosts), \
        "each container reports the machine and its own host name: %r" % hosts

    payloads = ["%d:compose-%d-%s" % (ROUNDS, n, compose.project) for n in range(1, JOBS + 1)]
    # The whole batch is submitted at once (window = JOBS), so nothing is in
    # flight as a submit when the broker restarts; batch then waits for
    # DONE, registering again with the new broker instance.
    argv = [binary("zjq"), "--broker", compose.endpoint, "batch", "hash", "--json",
            "--window", str(JOBS), "--timeout", str(int(T(600)))]
    env = {k: v for k, v in os.environ.items() if k != "ZJQ_BROKER"}
    batch = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env)
    lines = []

    def read_output():
        for line in batch.stdout:
            lines.append(line)

    reader = threading.Thread(target=read_output, daemon=True)
    reader.start()
    batch.stdin.write("".join(p + "\n" for p in payloads).encode())
    batch.stdin.close()
    try:
        def done_at_least(count):
            wait_until(lambda: len(lines) >= count or batch.poll() is not None, timeout=300,
                       interval=0.05, message="%d jobs done" % count)
            assert batch.poll() is None, "the batch ended early (exit %s): %s" % (
                batch.returncode, batch.stderr.read().decode(errors="replace"))
            return len(lines)

        events = []
        done_at_least(JOBS // 10)
        events.append(("scale to 1", len(lines)))
        compose.scale(1)
        wait_until(lambda: compose.workers() == 1, timeout=60, message="1 worker left")

        done_at_least(len(lines) + JOBS // 10)
        events.append(("scale to 3", len(lines)))
        started = time.monotonic()
        compose.scale(3)
        wait_until(lambda: compose.workers() == 3, timeout=60, message="3 workers again")
        events.append(("3 workers registered after %.1fs" % (time.monotonic() - started),
                       len(lines)))

        done_at_least(len(lines) + JOBS // 10)
        events.append(("restart broker", len(lines)))
        compose.run("restart", "broker", timeout=120)
        wait_until(lambda: compose.workers() == 3, timeout=60,
                   message="3 workers back with the restarted broker")
        events.append(("broker back", len(lines)))
        print("events (name, jobs done): %r" % events)
        assert events[-1][1] < JOBS, "the run ended before the broker restart: make jobs longer"

        batch.wait(timeout=T(600))
    finally:
        if batch.poll() is None:
            batch.kill()
            batch.wait()
    check_sha256_batch(batch, reader, lines, payloads)

    stats = compose.stats()
    print("broker stats after the run: %s" % json.dumps(stats["broker"]))
    assert stats["broker"]["journal"]["healthy"], stats["broker"]["journal"]
