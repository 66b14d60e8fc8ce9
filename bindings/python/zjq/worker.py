"""Python workers: a handler is an ordinary function of the payload.

    def resize(payload: bytes) -> bytes:
        ...

    zjq.worker.run("tcp://127.0.0.1:5555", {"resize": resize}, concurrency=4)

The function returns bytes (or str, sent as UTF-8, or None for an empty
result); an exception fails the attempt with the exception's text
("ValueError: bad size") as the job's error, and the broker retries the
job until its max_attempts. Inside a handler, current_task() gives the
job's id, queue and attempt, and lets it report progress or notice that
the job was cancelled.

How it runs. Each process is one libzjq worker (worker/zjq_worker.h):
its broker I/O, heartbeats included, runs on a C thread that never needs
the GIL, so a handler may compute for minutes in pure Python and the
broker still sees the worker alive. Python code holds the GIL, so threads
give no CPU parallelism: run() starts `concurrency` worker processes
(fork by default, or spawn) and supervises them:

  - each serves every queue with `threads` handler threads (default 1;
    more only helps handlers that release the GIL: I/O, numpy, hashlib on
    large buffers);
  - a process that dies (a crash, kill -9) is started again after
    `restart_delay` seconds, doubling while it keeps dying young; the jobs
    it was running go back to their queue once the broker misses its
    heartbeats (3 intervals), and run elsewhere;
  - the first SIGTERM or SIGINT to run()'s process is forwarded to every
    worker process, which drains: it takes no new job and finishes those
    it runs within `grace` seconds; a second signal is forwarded too and
    aborts them (the broker requeues them). run() returns when all have
    exited. The worker processes live in their own process group, so a
    terminal's Ctrl-C reaches only run(), which forwards it once; and
    they get SIGTERM if run()'s process dies.

serve() runs one worker in the calling process instead (its main thread;
it handles SIGTERM and SIGINT the same way), for callers that supervise
processes themselves.
"""

import ctypes
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
import traceback

from . import errors
from ._native import HANDLER_FN, encode, lib, text

log = logging.getLogger("zjq.worker")

_local = threading.local()
_handlers = []          # the handler functions of this process (C arg: index + 1)
_PR_SET_PDEATHSIG = 1   # <linux/prctl.h>


class Task:
    """The job a handler is running (current_task()). Valid until the
    handler returns."""

    def __init__(self, ptr, payload):
        self._ptr = ptr
        native = lib()
        self.id = text(native.zjq_task_id(ptr))
        self.queue = text(native.zjq_task_queue(ptr))
        self.attempt = native.zjq_task_attempt(ptr)
        self.payload = payload

    def __repr__(self):
        return "<zjq.worker.Task %s queue=%s attempt=%d>" % (self.id, self.queue, self.attempt)

    def _check(self):
        if self._ptr is None:
            raise RuntimeError("the task's handler has returned")
        return self._ptr

    def remaining(self):
        """Seconds left before the job timeout."""
        return lib().zjq_task_remaining_ms(self._check()) / 1000.0

    def progress(self, fraction, message=None):
        """Report progress (0..1 and an optional short text): `zjq status`
        and Job.status() show it. Does not block."""
        lib().zjq_task_progress(self._check(), float(fraction), encode(message, "message"))

    @property
    def cancelled(self):
        """True once the job was cancelled or timed out, or the worker is
        aborting: the handler should return soon (its result is dropped)."""
        return bool(lib().zjq_task_cancelled(self._check()))

    def wait_cancelled(self, timeout):
        """Sleep up to timeout seconds, waking early on cancellation;
        returns True if the job is cancelled."""
        return bool(lib().zjq_task_wait_cancelled(self._check(), int(timeout * 1000)))


def current_task():
    """The Task of the job this thread runs (inside a handler only)."""
    task = getattr(_local, "task", None)
    if task is None:
        raise RuntimeError("zjq.worker.current_task() called outside a handler")
    return task


def _result_bytes(value):
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError("the handler returned %s; it must return bytes, str or None"
                    % type(value).__name__)


def _fail(ptr, exc):
    message = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    # zjq_task_fail is printf-like: pass the text as an argument, never as the format
    lib().zjq_task_fail(ctypes.c_void_p(ptr), b"%s",
                        ctypes.c_char_p(message.encode("utf-8", "replace")))
    return message


@HANDLER_FN
def _run_handler(ptr, index):
    """Called by libzjq on a handler thread (ctypes takes the GIL)."""
    task = None
    try:
        native = lib()
        payload = ctypes.string_at(native.zjq_task_payload(ptr), native.zjq_task_payload_size(ptr))
        task = Task(ptr, payload)
        _local.task = task
        data = _result_bytes(_handlers[index - 1](payload))
        # A result over the limit fails the attempt ("result of N bytes exceeds ...")
        return 0 if native.zjq_task_set_result(ptr, data, len(data)) == 0 else -1
    except BaseException as exc:
        try:
            message = _fail(ptr, exc)
            log.warning("job %s (queue %s, attempt %s) failed: %s",
                        task.id if task else "?", task.queue if task else "?",
                        task.attempt if task else "?", message,
                        exc_info=log.isEnabledFor(logging.DEBUG))
        except BaseException:
            pass                # never unwind into C
        return -1
    finally:
        _local.task = None
        if task is not None:
            task._ptr = None


def _seconds_ms(value, what, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number of seconds" % what)
    ms = int(round(value * 1000))
    if not low <= ms <= high:
        raise ValueError("%s must be %g..%g seconds" % (what, low / 1000, high / 1000))
    return ms


def _count(value, what, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError("%s must be an int from %d to %d" % (what, low, high))
    return value


class _Options:
    """What run() and serve() accept, checked once."""

    def __init__(self, endpoint, handlers, threads=1, prefetch=None, heartbeat=None, grace=None,
                 max_result=None, curve_secret_file=None, broker_key_file=None):
        self.endpoint = encode(endpoint, "endpoint")
        if not isinstance(handlers, dict) or not handlers:
            raise ValueError("handlers must be a non-empty dict {queue name: function}")
        for queue, function in handlers.items():
            encode(queue, "queue name")
            if not callable(function):
                raise TypeError("the handler of queue %r is not callable" % (queue,))
        self.handlers = dict(handlers)
        self.threads = _count(threads, "threads", 1, 1000)
        self.prefetch = None if prefetch is None else _count(prefetch, "prefetch", 0, 1000)
        self.heartbeat_ms = None if heartbeat is None else \
            _seconds_ms(heartbeat, "heartbeat", 100, 60000)
        self.grace_ms = None if grace is None else _seconds_ms(grace, "grace", 0, 2 ** 31 - 1)
        self.max_result = None if max_result is None else \
            _count(max_result, "max_result", 0, 2 ** 62)
        if (curve_secret_file is None) != (broker_key_file is None):
            raise ValueError("curve_secret_file and broker_key_file go together")
        self.curve = (curve_secret_file, broker_key_file) if curve_secret_file else None

    def make_worker(self):
        """A configured zjq_worker_t (a c_void_p); raises zjq.Error."""
        native = lib()
        ptr = native.zjq_worker_new(self.endpoint)
        if not ptr:
            raise errors.Error("invalid broker endpoint %r (e.g. tcp://127.0.0.1:5555)"
                               % self.endpoint.decode(errors="replace"), errors.EINVAL)
        worker = ctypes.c_void_p(ptr)
        try:
            del _handlers[:]
            for index, (queue, function) in enumerate(self.handlers.items()):
                _handlers.append(function)
                # arg index + 1: a NULL arg would reach the callback as None
                rc = native.zjq_worker_handle(worker, encode(queue, "queue"), _run_handler,
                                              index + 1)
                if rc < 0:
                    raise errors.from_code(rc, "queue name %r (1-128 bytes of [A-Za-z0-9_.:-])"
                                           % (queue,))
            self._set(native.zjq_worker_set_concurrency, worker, self.threads, "threads")
            if self.prefetch is not None:
                self._set(native.zjq_worker_set_prefetch, worker, self.prefetch, "prefetch")
            if self.heartbeat_ms is not None:
                self._set(native.zjq_worker_set_heartbeat, worker, self.heartbeat_ms, "heartbeat")
            if self.grace_ms is not None:
                self._set(native.zjq_worker_set_grace, worker, self.grace_ms, "grace")
            if self.max_result is not None:
                self._set(native.zjq_worker_set_max_result, worker, self.max_result, "max_result")
            if self.curve:
                error = ctypes.create_string_buffer(512)
                rc = native.zjq_worker_set_curve(worker, encode(self.curve[0], "curve_secret_file"),
                                                 encode(self.curve[1], "broker_key_file"),
                                                 error, len(error))
                if rc < 0:
                    raise errors.from_code(rc, text(error.value))
        except BaseException:
            native.zjq_worker_destroy(ctypes.byref(worker))
            raise
        return worker

    @staticmethod
    def _set(function, worker, value, what):
        rc = function(worker, value)
        if rc < 0:
            raise errors.from_code(rc, "%s %r" % (what, value))


def _serve(options):
    native = lib()
    worker = options.make_worker()
    try:
        return native.zjq_worker_run(worker)    # the GIL is released while it runs
    finally:
        native.zjq_worker_destroy(ctypes.byref(worker))


def serve(endpoint, handlers, *, threads=1, prefetch=None, heartbeat=None, grace=None,
          max_result=None, curve_secret_file=None, broker_key_file=None):
    """Run one worker in this process, from its main thread, until SIGTERM
    or SIGINT (the first drains, a second aborts). Returns 0 after a clean
    stop; raises zjq.Error if it cannot start. Arguments as for run()."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("zjq.worker.serve() must run in the main thread")
    rc = _serve(_Options(endpoint, handlers, threads, prefetch, heartbeat, grace, max_result,
                         curve_secret_file, broker_key_file))
    if rc < 0:
        raise errors.from_code(rc, "the worker could not start")
    return rc


def _child_main(options, parent):
    """A worker process: its own process group, SIGTERM if run() dies."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(0)             # run() is gone already
    # SIGTERM and SIGINT are blocked since before the fork (run() blocks them
    # around starting a process), so one already sent waits for zjq_worker_run's
    # signalfd; dispositions go back to the defaults.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        rc = _serve(options)
    except errors.Error as exc:
        print("zjq worker %d: %s" % (os.getpid(), exc), file=sys.stderr)
        sys.exit(2)
    sys.exit(0 if rc == 0 else 1)


class _Supervisor:

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, options, concurrency, start_method, restart_delay):
        self.options = options
        self.concurrency = concurrency
        self.context = multiprocessing.get_context(start_method)
        self.restart_delay = restart_delay
        self.signals = 0
        self.children = {}          # slot -> Process
        self.started = {}           # slot -> monotonic start time
        self.delay = {}             # slot -> current restart delay
        self.due = {}               # slot -> monotonic time to restart it
        self.failed = False

    def on_signal(self, signum, frame):
        self.signals += 1
        self.due.clear()
        log.info("%s: %s %d worker process(es)", signal.Signals(signum).name,
                 "draining" if self.signals == 1 else "aborting", len(self.children))
        for process in self.children.values():
            try:
                os.kill(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def start(self, slot):
        process = self.context.Process(target=_child_main, args=(self.options, os.getpid()),
                                       name="zjq-worker-%d" % slot, daemon=False)
        old = signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
        try:
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        self.children[slot] = process
        self.started[slot] = time.monotonic()

    def reap(self, slot):
        process = self.children.pop(slot)
        process.join()
        code = process.exitcode
        if self.signals:
            if code != 0:
                self.failed = True
            return
        lived = time.monotonic() - self.started[slot]
        if code == 2 and lived < 5:
            # It could not start (e.g. its key file went away): do not loop
            log.error("worker process %d could not start; stopping", process.pid)
            self.failed = True
            self.on_signal(signal.SIGTERM, None)
            return
        previous = self.delay.get(slot)
        delay = self.restart_delay if previous is None or lived > 10 else \
            min(max(previous * 2, 0.1), 30.0)
        self.delay[slot] = delay
        log.warning("worker process %d exited with %s; starting another in %.1fs",
                    process.pid, code if code is None or code >= 0 else
                    signal.Signals(-code).name, delay)
        self.due[slot] = time.monotonic() + delay

    def run(self):
        previous = {signum: signal.signal(signum, self.on_signal) for signum in self.SIGNALS}
        try:
            for slot in range(self.concurrency):
                self.start(slot)
            while self.children or self.due:
                now = time.monotonic()
                for slot, when in list(self.due.items()):
                    if when <= now:
                        del self.due[slot]
                        self.start(slot)
                timeout = max(0.0, min(self.due.values()) - now) if self.due else None
                by_sentinel = {process.sentinel: slot for slot, process in self.children.items()}
                for sentinel in multiprocessing.connection.wait(list(by_sentinel), timeout):
                    self.reap(by_sentinel[sentinel])
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 1 if self.failed else 0


def run(endpoint, handlers, concurrency=1, *, threads=1, prefetch=None, heartbeat=None,
        grace=None, max_result=None, curve_secret_file=None, broker_key_file=None,
        start_method="fork", restart_delay=1.0):
    """Serve queues with Python functions in `concurrency` worker processes
    until SIGTERM or SIGINT; returns 0 after a clean stop (1 if a process
    failed). handlers: {queue name: function(payload bytes) -> bytes}.

    threads: handler threads per process (1..1000). prefetch: jobs each
    process takes on beyond those running (default: adaptive, sized from
    the measured job time and round trip; 0..1000 fixes it). heartbeat (s, default 1), grace (s after the first SIGTERM,
    default 30), max_result (bytes, default 16 MiB). curve_secret_file and
    broker_key_file: talk CURVE. start_method: "fork" (handlers may be any
    callable) or "spawn" (they must be importable module-level functions).

    Must be called from the main thread. Raises ValueError, TypeError or
    zjq.Error (bad endpoint, queue name, key file ...) before starting any
    process."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("zjq.worker.run() must run in the main thread")
    concurrency = _count(concurrency, "concurrency", 1, 1000)
    options = _Options(endpoint, handlers, threads, prefetch, heartbeat, grace, max_result,
                       curve_secret_file, broker_key_file)
    lib().zjq_worker_destroy(ctypes.byref(options.make_worker()))   # checks it all, here
    if start_method not in multiprocessing.get_all_start_methods():
        raise ValueError("start_method must be one of %s"
                         % ", ".join(multiprocessing.get_all_start_methods()))
    return _Supervisor(options, concurrency, start_method, restart_delay).run()
