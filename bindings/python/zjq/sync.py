"""The synchronous client, for scripts: `client = zjq.connect_sync(...)`.

Built on the same calls as the asyncio client: it runs
zjq_client_process() and waits in poll() on zjq_client_fd() (bounded by
zjq_client_timeout()) until the answer it needs has come. Methods block
the calling thread; use one client per thread.
"""

import collections
import select
import time

from . import errors
from ._core import Core, submit_opts, wait_ms


class Job:
    """A job known to the broker (from Client.submit or Client.job)."""

    def __init__(self, client, job_id, queue=None, watched=False):
        self.id = job_id
        self.queue = queue
        self._client = client
        self._watched = watched     # the client is told when it ends
        self._outcome = None        # how it ended, once known for good
        self._listener = None       # as_completed's, called with the job

    def __repr__(self):
        return "<zjq.sync.Job %s%s>" % (self.id, " done" if self.done() else "")

    def _set_outcome(self, outcome):
        if outcome.final or self._watched:
            self._outcome = outcome
        if self._listener:
            self._listener(self)

    def done(self):
        """True once the client knows how the job ended."""
        return self._outcome is not None

    def result(self, timeout=None):
        """Wait up to timeout seconds (None: no limit) and return the
        result bytes; raises JobFailed, JobCancelled, JobExpired,
        JobNotFound, Timeout, BrokerUnavailable (zjq.Error)."""
        if self._outcome is None:
            if self._watched:
                if not self._client._run_until(self.done, timeout):
                    raise errors.Timeout("job %s: not finished after %gs" % (self.id, timeout),
                                         errors.ETIMEDOUT, self.id)
            else:
                box = []
                self._client._core.result(self.id, wait_ms(timeout),
                                          lambda status, outcome, _: box.append(outcome))
                self._client._run_until(lambda: box)
                if not box[0].final:
                    return box[0].value(self.id)
                self._outcome = box[0]
        return self._outcome.value(self.id)

    def status(self):
        """The job as the broker sees it now (a JobInfo)."""
        return self._client.status(self.id)

    def cancel(self):
        """Cancel the job; returns its new JobInfo (zjq.Error ESTATE if it
        had already ended)."""
        return self._client.cancel(self.id)


class Client:
    """A blocking zjq client. Arguments as for zjq.connect()."""

    def __init__(self, endpoint, *, curve_secret_file=None, broker_key_file=None,
                 request_timeout=5.0, check=True):
        self._core = Core(endpoint, curve_secret_file, broker_key_file, request_timeout)
        self._poll = select.poll()
        self._poll.register(self._core.fd(), select.POLLIN)
        if check:
            try:
                self.ping()
            except BaseException:
                self.close()
                raise

    def __repr__(self):
        return "<zjq.sync.Client %s%s>" % (self._core.endpoint,
                                           " closed" if self._core.closed else "")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        core = getattr(self, "_core", None)
        if core is not None:
            core.close()

    @property
    def closed(self):
        return self._core.closed

    def close(self):
        """Close the client; idempotent."""
        self._core.close()

    def _run_until(self, done, timeout=None):
        """Process and wait until done() is true (returns True) or timeout
        seconds pass (returns False)."""
        deadline = None if timeout is None else time.monotonic() + wait_ms(timeout) / 1000
        while True:
            self._core.process()
            if done():
                return True
            if self._core.closed:
                raise errors.ClientClosed("the client is closed", errors.ECLOSED)
            wait = self._core.timeout_ms()
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                left = int(left * 1000) + 1
                wait = left if wait < 0 else min(wait, left)
            if wait < 0 and not self._core.pending():
                raise RuntimeError("zjq: waiting for an answer to no request")
            if wait != 0:
                self._poll.poll(None if wait < 0 else wait)

    def _call(self, issue, rejected=False, job_id=None):
        """Issue a request with a callback and wait for its answer."""
        box = []
        issue(lambda status, value, message: box.append((status, value, message)))
        self._run_until(lambda: box)
        status, value, message = box[0]
        if status < 0:
            raise errors.from_code(status, message, job_id, rejected)
        return value

    def submit(self, queue, payload, *, priority=0, job_timeout=None, max_attempts=None,
               key=None, result_ttl=None):
        """Submit a job; returns its Job once the broker accepted it. See
        zjq.aio.Client.submit for the arguments and errors."""
        opts = submit_opts(priority, job_timeout, max_attempts, key, result_ttl)
        job = Job(self, None, queue, watched=True)
        job.id = self._call(lambda accepted: self._core.submit(
            queue, payload, opts, accepted, lambda status, outcome, _: job._set_outcome(outcome)),
            rejected=True)
        return job

    def job(self, job_id):
        """A Job for an id submitted elsewhere (or earlier)."""
        if not isinstance(job_id, str) or not job_id:
            raise ValueError("job_id must be a non-empty str")
        return Job(self, job_id)

    def result(self, job_id, timeout=None):
        """The result bytes of a job id (see Job.result)."""
        return self.job(job_id).result(timeout)

    def status(self, job_id):
        """The JobInfo of a job id."""
        return self._call(lambda callback: self._core.status(job_id, callback), job_id=job_id)

    def cancel(self, job_id):
        """Cancel a job id; returns its JobInfo (state "cancelled")."""
        return self._call(lambda callback: self._core.status(job_id, callback, cancel=True),
                          job_id=job_id)

    def ping(self):
        """Check that the broker answers; returns the round trip in seconds."""
        start = time.monotonic()
        self._call(self._core.ping)
        return time.monotonic() - start

    def stats(self):
        """The broker's statistics (a dict, as `zjq stats --json`)."""
        return self._call(self._core.stats)

    def as_completed(self, jobs, timeout=None):
        """Yield each job as it ends (see zjq.aio.Client.as_completed)."""
        jobs = list(jobs)
        finished = collections.deque()
        for job in jobs:
            job._listener = finished.append
            if job.done():
                finished.append(job)
            elif not job._watched:
                self._core.result(job.id, -1,
                                  lambda status, outcome, _, job=job: job._set_outcome(outcome))
        deadline = None if timeout is None else time.monotonic() + wait_ms(timeout) / 1000
        try:
            for count in range(len(jobs)):
                left = None if deadline is None else max(0, deadline - time.monotonic())
                if not finished and not self._run_until(lambda: finished, left):
                    raise errors.Timeout("%d of %d jobs not finished after %gs"
                                         % (len(jobs) - count, len(jobs), timeout),
                                         errors.ETIMEDOUT)
                job = finished.popleft()
                job._listener = None
                yield job
        finally:
            for job in jobs:
                job._listener = None


def connect(endpoint, **options):
    """A synchronous Client (zjq.sync.Client); options as for zjq.connect."""
    return Client(endpoint, **options)
