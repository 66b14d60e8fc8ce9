"""The part of a client shared by the asyncio and the synchronous APIs.

Internal. A Core owns one zjq_client_t and issues requests; it knows
nothing about event loops. Each request gets a token (an int passed to C
as the callback's `void *arg`) that maps, in `_pending`, to the Python
callables to call with the answer. The C callbacks are a handful of
module-level ctypes function objects: they live as long as the module,
so the C side can never call a freed trampoline, and no ctypes callback
object is made per request.

libzjq calls every callback exactly once for each request it accepted
(with ZJQ_ECLOSED when the client is destroyed first), so each token is
removed when its last callback has run.
"""

import dataclasses
import itertools
import json
import sys
import traceback

import ctypes

from . import errors
from ._native import (DONE_CB, RESULT_CB, STATS_CB, STATUS_CB, SUBMIT_CB, ClientOpts,
                      SubmitOpts, encode, init_sized, lib, text)

STATES = {0: "unknown", 1: "queued", 2: "running", 3: "succeeded", 4: "failed",
          5: "cancelled"}

#  token -> callable(status, value, message), or for a submit a pair
#  (on_accepted, on_done)
_pending = {}
_tokens = itertools.count(1)


@dataclasses.dataclass(frozen=True)
class JobInfo:
    """A job as the broker sees it now (status and cancel). Times are Unix
    milliseconds (0: not yet); progress is None until a worker reports it."""
    id: str
    queue: str
    state: str                  # queued, running, succeeded, failed, cancelled
    attempt: int
    max_attempts: int
    priority: int
    error: str = None
    progress: float = None
    progress_message: str = None
    worker: str = None
    created_ms: int = 0
    started_ms: int = 0
    finished_ms: int = 0
    expires_ms: int = 0
    result_size: int = 0

    @property
    def finished(self):
        return self.state in ("succeeded", "failed", "cancelled")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a wait for a job ended: status 0 with data, or a negative code
    (with error and attempt for a failed or cancelled job, message for
    other codes)."""
    status: int
    data: bytes = None
    error: str = None
    attempt: int = 0
    message: str = None

    @property
    def final(self):
        """True if waiting again would give the same answer."""
        return self.status not in (errors.ETIMEDOUT, errors.ENOTREADY, errors.EUNREACHABLE,
                                   errors.ECLOSED, errors.ENOMEM)

    def value(self, job_id):
        """The result bytes, or raise the matching zjq.Error."""
        if self.status == 0:
            return self.data
        if self.status == errors.EFAILED:
            raise errors.JobFailed("job %s failed: %s" % (job_id, self.error), job_id=job_id,
                                   error=self.error, attempt=self.attempt)
        if self.status == errors.ECANCELLED:
            raise errors.JobCancelled("job %s was cancelled: %s" % (job_id, self.error),
                                      job_id=job_id, error=self.error, attempt=self.attempt)
        raise errors.from_code(self.status, self.message, job_id)


def _report(where):
    """An exception escaped a callback: it must not unwind into C."""
    print("zjq: exception in %s callback (ignored):" % where, file=sys.stderr)
    traceback.print_exc()


def _message(client, status):
    if status >= 0:
        return None
    return text(lib().zjq_client_error_message(client))


@SUBMIT_CB
def _on_submit(client, status, job_id, token):
    try:
        entry = _pending.get(token)
        if entry is None:
            return
        if status < 0:
            del _pending[token]     # on_done never fires after a rejection
        entry[0](status, text(job_id), _message(client, status))
    except BaseException:
        _report("submit")


def _outcome(client, status, result):
    if result:
        r = result.contents
        data = ctypes.string_at(r.data, r.size) if status == 0 else None
        return Outcome(status, data, text(r.error), r.attempt)
    return Outcome(status, message=_message(client, status))


@RESULT_CB
def _on_result(client, status, result, token):
    try:
        entry = _pending.pop(token, None)
        if entry is None:
            return
        callback = entry[1] if isinstance(entry, tuple) else entry
        callback(status, _outcome(client, status, result), None)
    except BaseException:
        _report("result")


def _info(info):
    i = info.contents
    return JobInfo(
        id=text(i.id), queue=text(i.queue), state=STATES.get(i.state, "unknown"),
        attempt=i.attempt, max_attempts=i.max_attempts, priority=i.priority,
        error=text(i.error), progress=i.progress if i.progress >= 0 else None,
        progress_message=text(i.progress_message), worker=text(i.worker),
        created_ms=i.created_ms, started_ms=i.started_ms, finished_ms=i.finished_ms,
        expires_ms=i.expires_ms, result_size=i.result_size)


@STATUS_CB
def _on_status(client, status, info, token):
    try:
        callback = _pending.pop(token, None)
        if callback is not None:
            callback(status, _info(info) if status == 0 and info else None,
                     _message(client, status))
    except BaseException:
        _report("status")


@STATS_CB
def _on_stats(client, status, data, token):
    try:
        callback = _pending.pop(token, None)
        if callback is not None:
            callback(status, json.loads(text(data)) if status == 0 else None,
                     _message(client, status))
    except BaseException:
        _report("stats")


@DONE_CB
def _on_done(client, status, token):
    try:
        callback = _pending.pop(token, None)
        if callback is not None:
            callback(status, None, _message(client, status))
    except BaseException:
        _report("ping")


def _ms(seconds, what):
    """Seconds (int or float, or None) as whole milliseconds."""
    if seconds is None:
        return 0
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError("%s must be a number of seconds" % what)
    if seconds <= 0:
        raise ValueError("%s must be > 0 seconds" % what)
    return max(1, int(round(seconds * 1000)))


def payload_bytes(payload):
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, (bytearray, memoryview)):
        return bytes(payload)
    raise TypeError("payload must be bytes, bytearray, memoryview or str, not %s"
                    % type(payload).__name__)


def submit_opts(priority=0, job_timeout=None, max_attempts=None, key=None, result_ttl=None):
    """A zjq_submit_opts_t from keyword arguments (seconds for times), or
    None when they are all defaults (libzjq then takes its own)."""
    if priority == 0 and job_timeout is None and max_attempts is None and key is None \
            and result_ttl is None:
        return None
    opts = init_sized(lib().zjq_submit_opts_init_sized, SubmitOpts())
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError("priority must be an int")
    opts.priority = priority
    opts.job_timeout_ms = _ms(job_timeout, "job_timeout")
    opts.result_ttl_ms = _ms(result_ttl, "result_ttl")
    if max_attempts is not None:
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) \
                or max_attempts < 1:
            raise ValueError("max_attempts must be an int >= 1")
        opts.max_attempts = max_attempts
    opts.key = encode(key, "key")
    return opts


def wait_ms(timeout):
    """A wait in seconds (None: no limit) for zjq_result: -1 or ms >= 0."""
    if timeout is None:
        return -1
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ValueError("timeout must be None or a number of seconds >= 0")
    return min(int(timeout * 1000 + 0.999), 2 ** 31 - 1)


class Core:
    """One zjq_client_t. Not thread-safe: one thread (or event loop) at a
    time, as libzjq requires."""

    def __init__(self, endpoint, curve_secret_file=None, broker_key_file=None,
                 request_timeout=None):
        self._lib = lib()
        opts = init_sized(self._lib.zjq_client_opts_init_sized, ClientOpts())
        opts.curve_secret_file = encode(curve_secret_file, "curve_secret_file")
        opts.broker_key_file = encode(broker_key_file, "broker_key_file")
        handle = ctypes.c_void_p()
        error = ctypes.create_string_buffer(512)
        rc = self._lib.zjq_client_new_ex(ctypes.byref(handle), encode(endpoint, "endpoint"),
                                         ctypes.byref(opts), error, len(error))
        if rc < 0:
            detail = text(error.value) or "endpoint %r" % (endpoint,)
            raise errors.from_code(rc, detail)
        self.ptr = handle
        self.endpoint = endpoint
        if request_timeout is not None:
            self.set_request_timeout(request_timeout)

    @property
    def closed(self):
        return not self.ptr

    def _check(self):
        if not self.ptr:
            raise errors.ClientClosed("the client is closed", errors.ECLOSED)
        return self.ptr

    def close(self):
        """Destroy the client: pending requests get ECLOSED callbacks now."""
        if self.ptr:
            handle = self.ptr
            self.ptr = None
            self._lib.zjq_client_destroy(ctypes.byref(handle))

    def set_request_timeout(self, seconds):
        rc = self._lib.zjq_client_set_request_timeout(self._check(),
                                                      _ms(seconds, "request_timeout"))
        if rc < 0:
            raise errors.from_code(rc, "request_timeout %r" % (seconds,))

    def fd(self):
        fd = self._lib.zjq_client_fd(self._check())
        if fd < 0:
            raise errors.from_code(fd)
        return fd

    def timeout_ms(self):
        return self._lib.zjq_client_timeout(self.ptr) if self.ptr else -1

    def process(self):
        """Run zjq_client_process; raises on a fatal socket error."""
        if not self.ptr:
            return 0
        rc = self._lib.zjq_client_process(self.ptr)
        if rc < 0 and rc != errors.ECLOSED:
            raise errors.from_code(rc, "zjq_client_process")
        return rc

    def pending(self):
        return self._lib.zjq_client_pending(self.ptr) if self.ptr else 0

    # --- requests: each returns once the request is queued, or raises ------

    def _issue(self, entry, call, what, *args):
        """call(*args, token): a libzjq request whose callbacks take token.
        what() explains an EINVAL."""
        token = next(_tokens)
        _pending[token] = entry
        try:
            rc = call(*args, token)
        except BaseException:
            _pending.pop(token, None)
            raise
        if rc < 0:
            _pending.pop(token, None)
            raise errors.from_code(rc, what() if rc == errors.EINVAL else None)
        return token

    def submit(self, queue, payload, opts, on_accepted, on_done):
        """on_accepted(status, job_id, message); on_done(status, Outcome,
        None) once the job ends (never after a rejection). opts: a
        SubmitOpts, or None for the defaults."""
        data = payload_bytes(payload)
        return self._issue((on_accepted, on_done), self._lib.zjq_submit,
                           lambda: "invalid submit to queue %r (queue names are 1-128 bytes of "
                           "[A-Za-z0-9_.:-]; priority -1000..1000; max_attempts 1..1000)"
                           % (queue,), self._check(), encode(queue, "queue"), data, len(data),
                           opts, _on_submit, _on_result)

    def result(self, job_id, timeout_ms, callback):
        """callback(status, Outcome, None)."""
        return self._issue(callback, self._lib.zjq_result, lambda: "job id %r" % (job_id,),
                           self._check(), encode(job_id, "job_id"), timeout_ms, _on_result)

    def status(self, job_id, callback, cancel=False):
        """callback(status, JobInfo, message)."""
        function = self._lib.zjq_cancel if cancel else self._lib.zjq_status
        return self._issue(callback, function, lambda: "job id %r" % (job_id,),
                           self._check(), encode(job_id, "job_id"), _on_status)

    def stats(self, callback):
        return self._issue(callback, self._lib.zjq_stats, lambda: "stats", self._check(),
                           _on_stats)

    def ping(self, callback):
        return self._issue(callback, self._lib.zjq_ping, lambda: "ping", self._check(),
                           _on_done)
