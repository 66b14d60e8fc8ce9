"""zjqtest: the harness for zjq's black-box tests (tests/test_*.py).

Not a test file. It starts the real binaries from ZJQ_BUILD_DIR on
127.0.0.1 ephemeral ports, stops them by PID, and speaks the wire protocol
(docs/protocol.md) with python3-zmq + msgpack for fake peers and malformed
input.

With env.enable_curve(), the brokers a test starts afterwards serve CURVE
only, and the Env's CLI runs, workers and stats use keys made by the real
`zjq keygen` (see Curve).

Rules the tests follow:
  - Only loopback (127.0.0.1). Every wait is bounded (wait_until, timeouts).
  - Never assert on timing, only on eventual behaviour. Timeouts are generous
    and scaled by ZJQ_TEST_TIMEOUT_SCALE (sanitizer builds set it to 3).
  - Every process is started through an Env (the `zjq` fixture), which stops
    it by PID at teardown (SIGTERM, then SIGKILL), prints the tail of its log,
    and fails the test if a sanitizer reported anything.
"""

import collections
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import msgpack
import pytest
import zmq

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("ZJQ_SOURCE_DIR") or os.path.dirname(HERE)
BUILD_DIR = os.environ.get("ZJQ_BUILD_DIR") or os.path.join(SOURCE_DIR, "build-tests")
SCALE = float(os.environ.get("ZJQ_TEST_TIMEOUT_SCALE") or "1")

#  Sanitizer reports that fail a test when they appear in any log.
SANITIZER_RE = re.compile(
    rb"ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer")


def T(seconds):
    """A timeout, scaled for slow (sanitizer, loaded) machines."""
    return seconds * SCALE


def binary(name):
    path = os.path.join(BUILD_DIR, name)
    if not os.path.exists(path):
        pytest.fail("binary %s not found (ZJQ_BUILD_DIR=%s)" % (name, BUILD_DIR))
    return path


def wait_until(predicate, timeout=30, interval=0.1, message=None):
    """Call predicate until it returns something truthy and return that.
    timeout (seconds) is scaled by T(); on time out, fail with message and
    the last value seen. Never use this to assert that something is fast."""
    deadline = time.monotonic() + T(timeout)
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s (last value: %r)"
                                 % (T(timeout), message or getattr(predicate, "__name__", "condition"),
                                    last))
        time.sleep(interval)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def sha256_rounds(text):
    """What `zjq-worker --builtin sha256` returns for payload "N:DATA"."""
    rounds, data = text.split(":", 1)
    digest = hashlib.sha256(data.encode()).digest()
    for _ in range(int(rounds) - 1):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()



def check_sha256_batch(batch, reader, lines, payloads):
    """Finish checking a `zjq batch --json` run of sha256 jobs whose stdout
    the thread `reader` collected into `lines`: it exited 0, every line's
    job succeeded and was reported once, none is missing, and every result
    is the right digest (hashlib). Returns {line number: record}."""
    import concurrent.futures
    reader.join(timeout=30)
    summary = batch.stderr.read().decode(errors="replace")
    print(summary)
    assert batch.returncode == 0, "zjq batch exited %d: %s" % (batch.returncode, summary)
    records = {}
    for raw in lines:
        record = json.loads(raw)
        assert record["state"] == "succeeded", record
        assert record["line"] not in records, "line %s reported twice" % record["line"]
        records[record["line"]] = record
    missing = sorted(set(range(1, len(payloads) + 1)) - set(records))
    assert not missing, "%d jobs have no result, e.g. lines %r" % (len(missing), missing[:10])
    with concurrent.futures.ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        expected = list(pool.map(sha256_rounds, payloads, chunksize=50))
    wrong = [n for n in records if records[n]["result"] != expected[n - 1]]
    assert not wrong, "%d wrong results, e.g. lines %r" % (len(wrong), wrong[:10])
    return records

# --- the CLI -----------------------------------------------------------------

CliResult = collections.namedtuple("CliResult", "rc out err")


def cli(*args, input=None, timeout=120, env=None):
    """Run the zjq CLI with args as given. Returns (rc, stdout bytes,
    stderr str). Fails the test if it runs past timeout (scaled) or a
    sanitizer complained."""
    argv = [binary("zjq")] + [str(a) for a in args]
    full_env = dict(os.environ)
    full_env.pop("ZJQ_BROKER", None)
    if env:
        full_env.update(env)
    if isinstance(input, str):
        input = input.encode()
    try:
        proc = subprocess.run(argv, input=input if input is not None else b"",
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=T(timeout), env=full_env)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s did not finish within %.0fs" % (" ".join(argv), T(timeout)))
    if SANITIZER_RE.search(proc.stderr):
        raise AssertionError("sanitizer report from %s:\n%s"
                             % (" ".join(argv), proc.stderr.decode(errors="replace")))
    return CliResult(proc.returncode, proc.stdout, proc.stderr.decode(errors="replace"))


# --- processes -----------------------------------------------------------------

class Process:
    """One started binary, logging to a file, stopped by PID only."""

    def __init__(self, env, name, argv, extra_env=None):
        self.env = env
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = os.path.join(env.dir, "%s.log" % name)
        self.extra_env = extra_env or {}
        self.proc = None
        self.stopped = True

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        full_env = dict(os.environ)
        full_env.pop("ZJQ_BROKER", None)
        full_env.update(self.extra_env)
        log = open(self.log_path, "ab")
        log.write(("=== start: %s\n" % " ".join(self.argv)).encode())
        log.flush()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, env=full_env,
                                     start_new_session=True)
        log.close()
        self.stopped = False
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def returncode(self):
        return self.proc.poll()

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self):
        """SIGKILL, and reap."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGKILL)
        self.proc.wait(timeout=T(30))
        self.stopped = True

    def wait(self, timeout=30):
        """Wait for exit (scaled timeout) and return the exit code; fail if
        it does not exit."""
        try:
            return self.proc.wait(timeout=T(timeout))
        except subprocess.TimeoutExpired:
            raise AssertionError("%s (pid %d) did not exit within %.0fs"
                                 % (self.name, self.proc.pid, T(timeout)))

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL if still running after timeout. Returns the
        exit code."""
        if self.proc is None:
            return None
        if self.alive():
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=T(timeout))
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(timeout=T(30))
        self.stopped = True
        return self.proc.returncode

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""


class Broker(Process):
    """zjq-broker bound to tcp://127.0.0.1:* (or a fixed port after the
    first start), with --endpoint-file. .endpoint and .port are known once
    start() returns."""

    def __init__(self, env, args=(), name="broker", verbose=True):
        self.args = [str(a) for a in args]
        self.verbose = verbose
        self.port = None
        self.endpoint = None
        self.endpoint_file = os.path.join(env.dir, "%s.endpoint" % name)
        super().__init__(env, name, [])

    def start(self, port=None):
        port = port or self.port
        bind = "tcp://127.0.0.1:%s" % (port if port else "*")
        # A port just released can take a moment to be bindable again.
        deadline = time.monotonic() + T(30)
        while True:
            if os.path.exists(self.endpoint_file):
                os.unlink(self.endpoint_file)
            self.argv = [binary("zjq-broker"), "--bind", bind,
                         "--endpoint-file", self.endpoint_file] + self.args
            if self.verbose:
                self.argv.append("-v")
            super().start()
            try:
                wait_until(lambda: os.path.exists(self.endpoint_file) or not self.alive(),
                           timeout=30, interval=0.05, message="broker endpoint file")
            except AssertionError:
                self.kill()
                raise
            if os.path.exists(self.endpoint_file):
                break
            if time.monotonic() > deadline or not port:
                raise AssertionError("broker exited with %s before listening:\n%s"
                                     % (self.returncode(), self.log().decode(errors="replace")[-4000:]))
            time.sleep(0.5)
        with open(self.endpoint_file) as f:
            lines = [line.strip() for line in f if line.strip()]
        assert lines, "empty endpoint file"
        tcp = [line for line in lines if line.startswith("tcp://127.0.0.1:")]
        assert tcp, "no tcp endpoint in %r" % lines
        self.endpoint = tcp[0]
        self.port = int(self.endpoint.rsplit(":", 1)[1])
        assert self.port > 0
        return self

    def restart(self):
        """Stop (SIGTERM) and start again on the same port."""
        self.stop()
        return self.start(self.port)


class Worker(Process):
    """zjq-worker connected to a broker."""

    def __init__(self, env, endpoint, queues, builtin=None, exec_command=None,
                 concurrency=1, heartbeat=None, grace=None, args=(), name="worker",
                 verbose=True, extra_env=None):
        argv = [binary("zjq-worker"), "--broker", endpoint]
        for queue in ([queues] if isinstance(queues, str) else queues):
            argv += ["--queue", queue]
        argv += ["--concurrency", str(concurrency)]
        if builtin:
            argv += ["--builtin", builtin]
        if exec_command:
            argv += ["--exec", exec_command]
        if heartbeat:
            argv += ["--heartbeat", str(heartbeat)]
        if grace is not None:
            argv += ["--grace", str(grace)]
        if verbose:
            argv.append("-v")
        argv += list(args)
        super().__init__(env, name, argv, extra_env=extra_env)

    def sigterm(self):
        self.signal(signal.SIGTERM)

    def sigstop(self):
        self.signal(signal.SIGSTOP)

    def sigcont(self):
        self.signal(signal.SIGCONT)

    def stop(self, timeout=15):
        # The first SIGTERM drains (up to --grace), a second one aborts: at
        # teardown nothing needs to finish, so keep signalling.
        if self.alive():
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=T(3))
            except subprocess.TimeoutExpired:
                deadline = time.monotonic() + T(timeout)
                while self.alive() and time.monotonic() < deadline:
                    self.signal(signal.SIGTERM)
                    try:
                        self.proc.wait(timeout=0.5)
                    except subprocess.TimeoutExpired:
                        pass
        return super().stop(timeout)


Key = collections.namedtuple("Key", "name public secret z85")


def read_z85(path, field="public-key"):
    """A key (Z85 text) from a certificate file written by zjq keygen."""
    with open(path) as f:
        match = re.search(r'^\s+%s = "(.{40})"' % field, f.read(), re.M)
    assert match, "no %s in %s" % (field, path)
    return match.group(1)


class Curve:
    """CURVE keys for one test (directory DIR/keys): the broker's key pair
    and the allow-list directories clients/, workers/, admins/. Keys are
    made with the real `zjq keygen`."""

    ROLES = ("clients", "workers", "admins")

    def __init__(self, directory):
        self.dir = os.path.join(str(directory), "keys")
        for role in self.ROLES:
            os.makedirs(os.path.join(self.dir, role), exist_ok=True)
        self.broker = self.keygen("broker")

    def keygen(self, name, roles=(), queues=None):
        """A new key pair NAME.key / NAME.key_secret, allowed in roles."""
        args = ["keygen", os.path.join(self.dir, name)]
        if queues:
            args += ["--queues", queues]
        rc, out, err = cli(*args)
        assert rc == 0, "zjq keygen %s failed rc=%s: %s" % (name, rc, err)
        public = os.path.join(self.dir, name + ".key")
        key = Key(name, public, public + "_secret", read_z85(public))
        assert out.decode().strip() == key.z85
        for role in roles:
            self.allow(key, role)
        return key

    def allow(self, key, role):
        assert role in self.ROLES, role
        shutil.copy(key.public, os.path.join(self.dir, role, key.name + ".key"))

    def revoke(self, key, role):
        os.unlink(os.path.join(self.dir, role, key.name + ".key"))

    def broker_args(self):
        args = ["--curve-secret", self.broker.secret]
        for role in self.ROLES:
            args += ["--curve-" + role, os.path.join(self.dir, role)]
        return args

    def env(self, key):
        """Environment for zjq or zjq-worker to use a key."""
        return {"ZJQ_CURVE_SECRET": key.secret, "ZJQ_BROKER_KEY": self.broker.public}


class Env:
    """Everything one test started. Use through the `zjq` fixture."""

    def __init__(self, directory):
        self.dir = str(directory)
        self.processes = []
        self.popens = []
        self.broker = None          # the first broker started
        self.counter = collections.Counter()
        self.curve = None           # set by enable_curve()

    def enable_curve(self):
        """From now on, brokers serve CURVE only, and the CLI, workers and
        RawPeers of this Env use keys: the CLI a client key (stats: an admin
        key), workers a worker key. Returns the Curve, with .client,
        .worker and .admin."""
        self.curve = Curve(self.dir)
        self.curve.client = self.curve.keygen("client", roles=("clients",))
        self.curve.worker = self.curve.keygen("worker", roles=("workers",))
        self.curve.admin = self.curve.keygen("admin", roles=("admins",))
        return self.curve

    def key_env(self, key=None, default="client"):
        """Extra environment for a process of this Env: none without CURVE,
        else the given key (or the default role's)."""
        if self.curve is None:
            return {}
        return self.curve.env(key or getattr(self.curve, default))

    def _name(self, base):
        self.counter[base] += 1
        return base if self.counter[base] == 1 else "%s%d" % (base, self.counter[base])

    @property
    def endpoint(self):
        assert self.broker is not None, "no broker started"
        return self.broker.endpoint

    def start_broker(self, *args, verbose=True, port=None):
        """Start a broker on 127.0.0.1, on port or else any free port."""
        if self.curve is not None:
            args = tuple(self.curve.broker_args()) + tuple(args)
        broker = Broker(self, args, name=self._name("broker"), verbose=verbose)
        self.processes.append(broker)
        broker.start(port)
        if self.broker is None:
            self.broker = broker
        return broker

    def start_worker(self, queues, builtin=None, exec_command=None, concurrency=1,
                     heartbeat=None, grace=None, args=(), endpoint=None, wait=True,
                     verbose=True, key=None):
        """Start a worker; with wait, return once the broker lists it. With
        CURVE, it uses key (default: the Env's worker key)."""
        worker = Worker(self, endpoint or self.endpoint, queues, builtin=builtin,
                        exec_command=exec_command, concurrency=concurrency,
                        heartbeat=heartbeat, grace=grace, args=args,
                        name=self._name("worker"), verbose=verbose,
                        extra_env=self.key_env(key, "worker"))
        self.processes.append(worker)
        worker.start()
        if wait:
            self.wait_worker_registered(worker)
        return worker

    def wait_worker_registered(self, worker, timeout=30):
        def registered():
            assert worker.alive(), "worker exited with %s:\n%s" % (
                worker.returncode(), worker.log().decode(errors="replace")[-3000:])
            return self.worker_info(worker)
        return wait_until(registered, timeout, interval=0.1,
                          message="worker pid %d registered with the broker" % worker.pid)

    def worker_info(self, worker):
        """The broker's stats entry for this worker process, or None."""
        for entry in self.stats().get("workers", []):
            if entry.get("pid") == worker.pid:
                return entry
        return None

    def zjq(self, *args, input=None, timeout=120, endpoint=None, key=None):
        """Run the CLI against this test's broker (--broker EP first); with
        CURVE, as key (default: the Env's client key)."""
        return cli("--broker", endpoint or self.endpoint, *args, input=input, timeout=timeout,
                   env=self.key_env(key))

    def popen_zjq(self, *args, stdin=None, endpoint=None, key=None):
        """Start the CLI in the background (stdout/stderr as pipes)."""
        argv = [binary("zjq"), "--broker", endpoint or self.endpoint] + [str(a) for a in args]
        full_env = dict(os.environ)
        full_env.pop("ZJQ_BROKER", None)
        full_env.update(self.key_env(key))
        proc = subprocess.Popen(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env)
        self.popens.append(proc)
        return proc

    # --- common CLI steps, asserting success --------------------------------

    def submit(self, queue, payload="", *options, endpoint=None):
        """Submit (payload via stdin, so any bytes work) and return the id."""
        if isinstance(payload, str):
            payload = payload.encode()
        rc, out, err = self.zjq("submit", queue, "-", *options, input=payload, endpoint=endpoint)
        assert rc == 0, "submit failed rc=%s: %s" % (rc, err)
        job_id = out.decode().strip()
        assert re.fullmatch(r"[0-9a-z]+-[0-9a-z]+", job_id), "not a job id: %r" % out
        return job_id

    def status(self, job_id, endpoint=None):
        rc, out, err = self.zjq("status", job_id, "--json", endpoint=endpoint)
        assert rc == 0, "status %s failed rc=%s: %s" % (job_id, rc, err)
        return json.loads(out)

    def stats(self, endpoint=None):
        rc, out, err = self.zjq("stats", "--json", endpoint=endpoint,
                                key=self.curve.admin if self.curve else None)
        assert rc == 0, "stats failed rc=%s: %s" % (rc, err)
        return json.loads(out)

    def wait_state(self, job_id, states, timeout=60, endpoint=None):
        """Wait until the job is in one of states; return its status."""
        if isinstance(states, str):
            states = (states,)
        return wait_until(lambda: (lambda s: s if s["state"] in states else None)(
            self.status(job_id, endpoint=endpoint)),
            timeout, interval=0.1, message="job %s in state %s" % (job_id, "/".join(states)))

    # --- teardown --------------------------------------------------------------

    def cleanup(self):
        problems = []
        for proc in self.popens:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        # Workers first (they may drain), then brokers.
        order = [p for p in self.processes if isinstance(p, Worker)] + \
                [p for p in self.processes if not isinstance(p, Worker)]
        for proc in order:
            try:
                proc.stop()
            except Exception as exc:     # keep stopping the others
                problems.append("%s: %s" % (proc.name, exc))
        for proc in self.processes:
            log = proc.log()
            tail = log.decode(errors="replace").splitlines()[-150:]
            print("----- %s (pid %s, exit %s) log tail: %s"
                  % (proc.name, proc.proc.pid if proc.proc else "-",
                     proc.proc.returncode if proc.proc else "-", proc.log_path))
            print("\n".join(tail))
            match = SANITIZER_RE.search(log)
            if match:
                start = max(0, match.start() - 200)
                problems.append("sanitizer report in %s:\n%s"
                                % (proc.name, log[start:start + 6000].decode(errors="replace")))
        return problems


# --- the wire protocol (docs/protocol.md) ----------------------------------------

ROLE_CLIENT, ROLE_WORKER, ROLE_BROKER = b"C", b"W", b"B"

CMD = dict(SUBMIT=0x01, STATUS=0x02, RESULT=0x03, CANCEL=0x04, STATS=0x05, PING=0x06,
           RELOAD=0x07, RELOADED=0x48,
           READY=0x11, HEARTBEAT=0x12, WORK_RESULT=0x13, PROGRESS=0x14, DISCONNECT=0x15,
           CREDIT=0x16,
           ACCEPTED=0x41, REJECTED=0x42, JOB_STATUS=0x43, JOB_RESULT=0x44, DONE=0x45,
           STATS_REPLY=0x46, PONG=0x47, ERROR=0x4F, JOB=0x51, JOB_CANCEL=0x52,
           PAUSE=0x08, RESUME=0x09, DRAIN=0x0A, DEAD_LETTERS=0x0B, RETRY=0x0C,
           QUEUE_STATE=0x49, DRAIN_STATE=0x4A, DEAD_LETTER_LIST=0x4B, RETRIED=0x4C,
           PROGRESS_UPDATE=0x4D, BATCH=0x60)
# commands whose messages carry a payload frame (and so a payload in a BATCH record)
PAYLOAD_CMDS = {0x01, 0x13, 0x44, 0x45, 0x51, 0x60}
CMD_NAME = {code: name for name, code in CMD.items()}

ERR = dict(EINVAL=-1, ENOMEM=-2, EPROTO=-3, EUNREACHABLE=-4, ETIMEDOUT=-5, ENOTFOUND=-6,
           EEXPIRED=-7, ETOOBIG=-8, EQUEUEFULL=-9, ESTATE=-10, EFAILED=-11, ECANCELLED=-12,
           ENOTREADY=-13, EVERSION=-14, ECOMMAND=-15, EDENIED=-16, EUNAVAILABLE=-17,
           ECLOSED=-18, ESYS=-19, EBADID=-20, EKEY=-21, EDRAINING=-22, EQUOTA=-23)
ERR_NAME = {code: name for name, code in ERR.items()}

_CONTEXT = None


def context():
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = zmq.Context()
    return _CONTEXT


def header(role, command, version=1):
    return b"ZJQ" + bytes([version]) + role + bytes([command])


def pack(fields):
    return msgpack.packb(fields, use_bin_type=True)


class Msg:
    """A message received from the broker."""

    def __init__(self, frames):
        self.frames = frames
        head = frames[0]
        assert len(head) == 6 and head[:3] == b"ZJQ", "bad header from broker: %r" % head
        self.version = head[3]
        self.role = head[4:5]
        self.command = head[5]
        self.name = CMD_NAME.get(self.command, "0x%02x" % self.command)
        assert len(frames) in (2, 3), "broker sent %d frames" % len(frames)
        self.fields = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
        assert isinstance(self.fields, dict), "fields not a map: %r" % (self.fields,)
        self.payload = frames[2] if len(frames) == 3 else None

    def __getitem__(self, key):
        return self.fields[key]

    def get(self, key, default=None):
        return self.fields.get(key, default)

    def __repr__(self):
        return "<%s %r%s>" % (self.name, self.fields,
                              "" if self.payload is None else " payload=%r" % self.payload[:64])


def split_batch(frames):
    """The messages (as frame lists) of a BATCH (docs/protocol.md, Batches)."""
    head, fields, records = frames[0], msgpack.unpackb(frames[1]), frames[2]
    out, at = [], 0
    for _ in range(fields["count"]):
        command = records[at]
        size = int.from_bytes(records[at + 1:at + 5], "big")
        at += 5
        inner = [head[:5] + bytes([command]), records[at:at + size]]
        at += size
        if command in PAYLOAD_CMDS:
            size = int.from_bytes(records[at:at + 4], "big")
            inner.append(records[at + 4:at + 4 + size])
            at += 4 + size
        out.append(inner)
    assert at == len(records), "BATCH has bytes after its %d records" % fields["count"]
    return out


def batch_frames(role, messages, count=None):
    """A BATCH of (command, fields, payload or None) from role, as frames."""
    records = b""
    for command, fields, payload in messages:
        packed = pack(fields)
        records += bytes([command]) + len(packed).to_bytes(4, "big") + packed
        if command in PAYLOAD_CMDS:
            records += len(payload or b"").to_bytes(4, "big") + (payload or b"")
    return [header(role, CMD["BATCH"]),
            pack({"count": len(messages) if count is None else count}), records]


class RawPeer:
    """A DEALER speaking raw zjq frames to the broker, for fake workers and
    malformed input. With curve=(key, broker_key) (Key tuples), it talks
    CURVE. Not thread-safe (one test thread)."""

    def __init__(self, endpoint, role=ROLE_CLIENT, curve=None):
        self.role = role
        self.sock = context().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if curve:
            key, broker_key = curve
            self.sock.curve_secretkey = read_z85(key.secret, "secret-key").encode()
            self.sock.curve_publickey = key.z85.encode()
            self.sock.curve_serverkey = broker_key.z85.encode()
        self.sock.connect(endpoint)
        self.req = 1000
        self.pending = collections.deque()      # messages of a BATCH not read yet

    def close(self):
        if self.sock is not None:
            self.sock.close(0)
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_frames(self, frames):
        self.sock.send_multipart(frames)

    def send(self, command, fields=None, payload=None, role=None, version=1):
        frames = [header(role or self.role, command, version), pack(fields or {})]
        if payload is not None:
            frames.append(payload)
        self.send_frames(frames)

    def poll_msg(self, timeout_ms):
        """The next message within timeout_ms (not scaled), or None. The
        messages of a BATCH come out one by one."""
        if not self.pending:
            if not self.sock.poll(timeout_ms):
                return None
            frames = self.sock.recv_multipart()
            if len(frames[0]) == 6 and frames[0][5] == CMD["BATCH"] and len(frames) == 3:
                self.pending.extend(split_batch(frames))
            else:
                return Msg(frames)
        return Msg(self.pending.popleft())

    def recv(self, timeout=10):
        """The next message, or None after timeout seconds (scaled)."""
        return self.poll_msg(int(T(timeout) * 1000))

    def recv_skip(self, timeout=10, skip=("HEARTBEAT",)):
        """The next message whose command is not in skip, or None."""
        deadline = time.monotonic() + T(timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            msg = self.recv(left / SCALE)
            if msg is None or msg.name not in skip:
                return msg

    def next_req(self):
        self.req += 1
        return self.req

    def request(self, command, fields=None, payload=None, timeout=10):
        """Client request with a fresh req; returns the reply with that req
        (other messages, e.g. DONE, are skipped) or fails."""
        fields = dict(fields or {})
        fields["req"] = req = self.next_req()
        self.send(command, fields, payload)
        deadline = time.monotonic() + T(timeout)
        while time.monotonic() < deadline:
            msg = self.recv((deadline - time.monotonic()) / SCALE)
            if msg is not None and msg.get("req") == req:
                return msg
        raise AssertionError("no reply to %s req %d" % (CMD_NAME[command], req))


class FakeWorker(RawPeer):
    """A worker written by hand: READY, then whatever the test makes it do."""

    def __init__(self, endpoint, curve=None):
        super().__init__(endpoint, ROLE_WORKER, curve=curve)

    def ready(self, queues, capacity=1, heartbeat_ms=200, worker_id=None):
        self.worker_id = worker_id or "fake/%d/%x" % (os.getpid(), id(self) & 0xffff)
        self.send(CMD["READY"], dict(worker_id=self.worker_id, queues=list(queues),
                                     capacity=capacity, heartbeat_ms=heartbeat_ms,
                                     host="fakehost", pid=os.getpid(), version="test"))

    def heartbeat(self):
        self.send(CMD["HEARTBEAT"])

    def recv_job(self, timeout=30):
        """Wait for a JOB, answering the broker's heartbeats; return it."""
        deadline = time.monotonic() + T(timeout)
        while time.monotonic() < deadline:
            msg = self.poll_msg(50)
            if msg is None:
                self.heartbeat()
                continue
            if msg.name == "JOB":
                return msg
            if msg.name == "HEARTBEAT":
                self.heartbeat()
                continue
            raise AssertionError("fake worker expected JOB, got %r" % msg)
        raise AssertionError("fake worker got no JOB")

    def work_result(self, job_id, attempt, status="ok", payload=b"", error=None):
        fields = dict(id=job_id, attempt=attempt, status=status, duration_ms=1)
        if error is not None:
            fields["error"] = error
        self.send(CMD["WORK_RESULT"], fields, payload)


# --- the fixture --------------------------------------------------------------------

@pytest.fixture
def zjq(tmp_path):
    """An Env whose processes are always stopped at the end of the test."""
    env = Env(tmp_path)
    try:
        yield env
    finally:
        problems = env.cleanup()
    if problems:
        pytest.fail("\n".join(problems))
