"""zjq: Python binding of libzjq, the ZeroMQ job queue client and worker.

    import zjq

    client = await zjq.connect("tcp://127.0.0.1:5555")
    job = await client.submit("sha256", b"100000:hello")
    digest = await job.result(timeout=30)

    with zjq.connect_sync("tcp://127.0.0.1:5555") as client:      # scripts
        print(client.submit("sha256", b"1000:x").result(timeout=30))

    zjq.worker.run("tcp://127.0.0.1:5555", {"resize": resize}, concurrency=4)

See bindings/python/README.md. libzjq.so is found through $ZJQ_LIBRARY,
ctypes.util.find_library("zjq"), or the usual install directories.
"""

from . import errors, worker
from ._core import JobInfo
from .aio import Client, Job, connect
from .errors import (BrokerUnavailable, ClientClosed, Error, JobCancelled, JobExpired, JobFailed,
                     JobNotFound, LibraryNotFound, QuotaExceeded, Rejected, Timeout)
from .sync import connect as connect_sync

__version__ = "0.1.0"

__all__ = [
    "connect", "connect_sync", "Client", "Job", "JobInfo", "worker", "errors",
    "Error", "JobFailed", "JobCancelled", "JobExpired", "JobNotFound", "Timeout",
    "BrokerUnavailable", "Rejected", "QuotaExceeded", "ClientClosed", "LibraryNotFound", "library_version",
]


def library_version():
    """The version of the loaded libzjq ("0.1.0")."""
    from ._native import lib, text
    return text(lib().zjq_version())
