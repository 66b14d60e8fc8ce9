"""The asyncio client: `client = await zjq.connect(...)`.

The client is driven by the event loop itself, as client/zjq_client.h
asks: the loop watches zjq_client_fd() with add_reader, a call_at timer
follows zjq_client_timeout(), and both run zjq_client_process(), which
fires the C callbacks that resolve the futures. ZMQ_FD is edge-triggered,
so processing also runs (call_soon) after every request issued, and again
whenever zjq_client_timeout() says 0. No thread, no sleep loop: a client
costs nothing while idle, and one client serves thousands of concurrent
jobs from one loop.

A Client belongs to the event loop it was connected on; use it from
that loop only.
"""

import asyncio

from . import errors
from ._core import Core, submit_opts, wait_ms


class Job:
    """A job known to the broker. From Client.submit (the client is told
    when it ends, so result() costs no request) or Client.job(id)."""

    def __init__(self, client, job_id, queue=None, done=None):
        self.id = job_id
        self.queue = queue
        self._client = client
        self._done = done           # Future of Outcome, if watched since submit
        self._outcome = None        # final Outcome of a job known by id

    def __repr__(self):
        return "<zjq.aio.Job %s%s>" % (self.id, " done" if self.done() else "")

    def done(self):
        """True once the client knows how the job ended."""
        if self._done is not None:
            return self._done.done()
        return self._outcome is not None

    async def result(self, timeout=None):
        """Wait up to timeout seconds (None: no limit) for the job to end,
        and return its result bytes. Raises JobFailed, JobCancelled,
        JobExpired, JobNotFound, Timeout, BrokerUnavailable (zjq.Error)."""
        outcome = await self._wait(timeout)
        return outcome.value(self.id)

    async def _wait(self, timeout):
        if self._done is None:
            if self._outcome is not None:
                return self._outcome
            outcome = await self._client._result(self.id, wait_ms(timeout))
            if outcome.final:
                self._outcome = outcome
            return outcome
        if timeout is None:
            return await asyncio.shield(self._done)
        wait_ms(timeout)            # checks the value
        try:
            return await asyncio.wait_for(asyncio.shield(self._done), timeout)
        except asyncio.TimeoutError:
            raise errors.Timeout("job %s: not finished after %gs" % (self.id, timeout),
                                 errors.ETIMEDOUT, self.id) from None

    def _completion(self):
        """A future that completes when the job ends (for as_completed)."""
        if self._done is not None:
            return self._done
        if self._outcome is not None:
            future = self._client._loop.create_future()
            future.set_result(self._outcome)
            return future
        future = self._client._result(self.id, -1)

        def remember(future):
            if not future.cancelled() and future.result().final:
                self._outcome = future.result()
        future.add_done_callback(remember)
        return future

    async def status(self):
        """The job as the broker sees it now (a JobInfo)."""
        return await self._client.status(self.id)

    async def cancel(self):
        """Cancel the job (a queued one never runs, a running one is
        stopped); returns its new JobInfo. Raises zjq.Error with code
        ESTATE if it had already ended."""
        return await self._client.cancel(self.id)


class Client:
    """An asyncio zjq client. Make one with `await zjq.connect(...)`."""

    def __init__(self, core, loop):
        self._core = core
        self._loop = loop
        self._fd = core.fd()
        self._soon = False          # a _run is scheduled with call_soon
        self._timer = None          # call_at handle for zjq_client_timeout
        self._timer_when = None
        loop.add_reader(self._fd, self._run)

    def __repr__(self):
        return "<zjq.aio.Client %s%s>" % (self._core.endpoint,
                                          " closed" if self._core.closed else "")

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()

    @property
    def closed(self):
        return self._core.closed

    def pending(self):
        """Requests and job waits still waiting for an answer."""
        return self._core.pending()

    def close(self):
        """Close the client. Requests and waits still pending fail with
        ClientClosed. Idempotent."""
        if self._core.closed:
            return
        self._loop.remove_reader(self._fd)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._core.close()

    # --- driving libzjq from the loop -------------------------------------

    def _kick(self):
        """Process soon: a request was queued (and must be sent), or
        zjq_client_timeout asked for it."""
        if not self._soon:
            self._soon = True
            self._loop.call_soon(self._run)

    def _run(self):
        self._soon = False
        if self._core.closed:
            return
        try:
            self._core.process()
        except errors.Error as exc:
            # A socket error libzjq cannot recover from: say so, and retry
            # later rather than at once (the requests fail by their timeouts)
            self._loop.call_exception_handler({"message": "zjq: zjq_client_process failed",
                                               "exception": exc, "client": self})
            if self._timer is None:
                self._timer_when = self._loop.time() + 0.1
                self._timer = self._loop.call_at(self._timer_when, self._on_timer)
            return
        self._arm()

    def _on_timer(self):
        self._timer = None
        self._run()

    def _arm(self):
        ms = self._core.timeout_ms()
        if ms == 0:
            self._kick()
            return
        if ms < 0:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        when = self._loop.time() + ms / 1000.0
        if self._timer is not None:
            if self._timer_when <= when:
                return              # an earlier wake-up is set: it re-arms
            self._timer.cancel()
        self._timer_when = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _future_callback(self, future, rejected=False, job_id=None):
        def callback(status, value, message):
            if future.done():
                return              # the awaiting task was cancelled
            if status < 0:
                future.set_exception(errors.from_code(status, message, job_id, rejected))
            else:
                future.set_result(value)
        return callback

    def _result(self, job_id, timeout_ms):
        future = self._loop.create_future()

        def callback(status, outcome, message):
            if not future.done():
                future.set_result(outcome)
        self._core.result(job_id, timeout_ms, callback)
        self._kick()
        return future

    # --- requests -----------------------------------------------------------

    async def submit(self, queue, payload, *, priority=0, job_timeout=None, max_attempts=None,
                     key=None, result_ttl=None):
        """Submit a job and return its Job once the broker has accepted it.
        payload: bytes (or str, sent as UTF-8). priority -1000..1000
        (higher first); job_timeout and result_ttl in seconds; key: an
        idempotency key (the same key gives the same job). Raises Rejected
        (queue full, too large, access denied ...), BrokerUnavailable, or
        ValueError/zjq.Error for invalid arguments."""
        opts = submit_opts(priority, job_timeout, max_attempts, key, result_ttl)
        accepted = self._loop.create_future()
        done = self._loop.create_future()

        def on_done(status, outcome, message):
            if not done.done():
                done.set_result(outcome)
        self._core.submit(queue, payload, opts,
                          self._future_callback(accepted, rejected=True), on_done)
        self._kick()
        job_id = await accepted
        return Job(self, job_id, queue, done)

    def job(self, job_id):
        """A Job for an id submitted elsewhere (or earlier)."""
        if not isinstance(job_id, str) or not job_id:
            raise ValueError("job_id must be a non-empty str")
        return Job(self, job_id)

    async def status(self, job_id):
        """The JobInfo of a job id. Raises JobNotFound, JobExpired, ..."""
        future = self._loop.create_future()
        self._core.status(job_id, self._future_callback(future, job_id=job_id))
        self._kick()
        return await future

    async def cancel(self, job_id):
        """Cancel a job id; returns its JobInfo (state "cancelled")."""
        future = self._loop.create_future()
        self._core.status(job_id, self._future_callback(future, job_id=job_id), cancel=True)
        self._kick()
        return await future

    async def result(self, job_id, timeout=None):
        """The result bytes of a job id (see Job.result)."""
        return await self.job(job_id).result(timeout)

    async def ping(self):
        """Check that the broker answers; returns the round trip in seconds.
        Raises BrokerUnavailable after the request timeout."""
        future = self._loop.create_future()
        start = self._loop.time()
        self._core.ping(self._future_callback(future))
        self._kick()
        await future
        return self._loop.time() - start

    async def stats(self):
        """The broker's statistics (a dict, as `zjq stats --json`)."""
        future = self._loop.create_future()
        self._core.stats(self._future_callback(future))
        self._kick()
        return await future

    async def as_completed(self, jobs, timeout=None):
        """Yield each job of jobs as it ends, in the order they end; then
        job.result() returns (or raises) at once. timeout (seconds) bounds
        the whole iteration: past it, Timeout is raised."""
        jobs = list(jobs)
        finished = asyncio.Queue()
        for job in jobs:
            job._completion().add_done_callback(lambda _, job=job: finished.put_nowait(job))
        deadline = None if timeout is None else self._loop.time() + wait_ms(timeout) / 1000
        for count in range(len(jobs)):
            if deadline is None:
                yield await finished.get()
                continue
            try:
                job = await asyncio.wait_for(finished.get(), max(0, deadline - self._loop.time()))
            except asyncio.TimeoutError:
                raise errors.Timeout("%d of %d jobs not finished after %gs"
                                     % (len(jobs) - count, len(jobs), timeout),
                                     errors.ETIMEDOUT) from None
            yield job


async def connect(endpoint, *, curve_secret_file=None, broker_key_file=None,
                  request_timeout=5.0, check=True):
    """Connect to a broker ("tcp://127.0.0.1:5555", "ipc:///run/zjq.sock")
    and return a Client bound to the running loop. With CURVE, give this
    client's secret certificate and the broker's public one (zjq keygen).
    request_timeout: seconds the broker has to answer a request before it
    fails with BrokerUnavailable. check: ping the broker first, so that an
    unreachable broker raises BrokerUnavailable here (otherwise requests
    simply wait for it, up to their timeout)."""
    loop = asyncio.get_running_loop()
    core = Core(endpoint, curve_secret_file, broker_key_file, request_timeout)
    client = Client(core, loop)
    if check:
        try:
            await client.ping()
        except BaseException:
            client.close()
            raise
    return client
