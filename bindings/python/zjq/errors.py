"""zjq's exceptions, one per way a request or a job can end badly.

Every exception is a zjq.Error with .code, the negative ZJQ_E* code of
common/zjq_error.h (0 for errors that have no code, such as a missing
library), and .job_id when it concerns a job.

    Error
     +-- JobFailed          the job ran out of attempts; .error is the worker's message
     +-- JobCancelled       the job was cancelled
     +-- JobExpired         its outcome is gone (result TTL, or the memory bound)
     +-- JobNotFound        the broker never issued that id (or forgot it: no journal),
     |                      or it is not a job id (EBADID)
     +-- Timeout            waited as long as asked (also a builtin TimeoutError)
     +-- BrokerUnavailable  the broker did not answer in time
     +-- Rejected           the broker refused a submit (queue full, too large, denied ...)
     |    +-- QuotaExceeded  EQUOTA: this client's share is taken (another may submit)
     +-- ClientClosed       the client was closed while the request was pending
     +-- LibraryNotFound    libzjq.so could not be loaded (also an ImportError)
"""

#  The codes of common/zjq_error.h: values never change once released.
EINVAL = -1
ENOMEM = -2
EPROTO = -3
EUNREACHABLE = -4
ETIMEDOUT = -5
ENOTFOUND = -6
EEXPIRED = -7
ETOOBIG = -8
EQUEUEFULL = -9
ESTATE = -10
EFAILED = -11
ECANCELLED = -12
ENOTREADY = -13
EVERSION = -14
ECOMMAND = -15
EDENIED = -16
EUNAVAILABLE = -17
ECLOSED = -18
ESYS = -19
EBADID = -20
EKEY = -21
EDRAINING = -22
EQUOTA = -23
NAMES = {code: name for name, code in globals().items()
         if name.startswith("E") and isinstance(code, int)}


class Error(Exception):
    """A zjq error. .code is the ZJQ_E* code (negative int, or 0), .name its
    symbolic name ("EQUEUEFULL"), .job_id the job concerned or None."""

    def __init__(self, message, code=0, job_id=None):
        super().__init__(message)
        self.code = code
        self.job_id = job_id

    @property
    def name(self):
        return NAMES.get(self.code)


class JobFailed(Error):
    """The job failed: .error is the worker's message (the handler's error,
    the exception text of a Python handler, "job timed out", ...), .attempt
    the attempt that ended it."""

    def __init__(self, message, code=EFAILED, job_id=None, error=None, attempt=0):
        super().__init__(message, code, job_id)
        self.error = error
        self.attempt = attempt


class JobCancelled(Error):
    """The job was cancelled; .error says by whom or why, if known."""

    def __init__(self, message, code=ECANCELLED, job_id=None, error=None, attempt=0):
        super().__init__(message, code, job_id)
        self.error = error
        self.attempt = attempt


class JobExpired(Error):
    """The job's outcome is no longer kept by the broker."""


class JobNotFound(Error):
    """The broker does not know this job id."""


class Timeout(Error, TimeoutError):
    """Waited as long as the caller allowed; the job may still finish."""


class BrokerUnavailable(Error):
    """The broker did not answer within the request timeout (down,
    unreachable, or a CURVE handshake that cannot succeed)."""


class Rejected(Error):
    """The broker refused a submit: .code is EQUEUEFULL, ETOOBIG, EINVAL,
    EDENIED, EUNAVAILABLE, EDRAINING (zjq drain: try another broker or
    later) or EQUOTA (this client's share is taken: --max-jobs-per-client,
    --max-queued-bytes-per-client; later, once its jobs end), and the
    message is the broker's."""


class QuotaExceeded(Rejected):
    """A Rejected whose code is EQUOTA: this client (its CURVE key, or in
    plaintext its connection) has its share of the broker's admission
    queued or running; another client may still submit."""


class ClientClosed(Error):
    """The client was closed before the request completed."""


class LibraryNotFound(Error, ImportError):
    """libzjq.so could not be loaded; the message says where it looked."""


_BY_CODE = {
    EFAILED: JobFailed,
    ECANCELLED: JobCancelled,
    EEXPIRED: JobExpired,
    ENOTFOUND: JobNotFound,
    EBADID: JobNotFound,        # not a job id at all
    ETIMEDOUT: Timeout,
    ENOTREADY: Timeout,         # a result asked for with timeout 0
    EUNREACHABLE: BrokerUnavailable,
    ECLOSED: ClientClosed,
    EQUOTA: QuotaExceeded,
}


def strerror(code):
    """libzjq's message for a code ("queue full")."""
    from ._native import lib, text
    return text(lib().zjq_strerror(code))


def from_code(code, detail=None, job_id=None, rejected=False):
    """The exception for a negative code. detail (the broker's message, or
    another explanation) is added to libzjq's message for the code.
    rejected: the code answers a submit, so the broker's refusals (anything
    but unreachable or closed) are Rejected."""
    message = strerror(code)
    if detail and detail != message:
        message = "%s: %s" % (message, detail)
    if job_id:
        message = "job %s: %s" % (job_id, message)
    cls = _BY_CODE.get(code, Error)
    if rejected and cls in (Error, JobNotFound, JobExpired, JobFailed, JobCancelled):
        cls = Rejected
    return cls(message, code, job_id)
