"""libzjq through ctypes: finding the library, its structs and prototypes.

Internal. The rest of the package calls `lib()`, which loads libzjq.so
once: from $ZJQ_LIBRARY, else wherever ctypes.util.find_library("zjq")
says, else the usual install directories. Nothing is compiled at install
time; the C ABI is plain (opaque handles, ints, char pointers, byte
buffers), see client/zjq_client.h and worker/zjq_worker.h.
"""

import ctypes
import ctypes.util
import os
import threading

from .errors import LibraryNotFound

#  Where `cmake --install` and distributions put the library.
SEARCH_DIRS = (
    "/usr/local/lib",
    "/usr/local/lib64",
    "/usr/local/lib/x86_64-linux-gnu",
    "/usr/local/lib/aarch64-linux-gnu",
    "/usr/lib",
    "/usr/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
)
NAMES = ("libzjq.so", "libzjq.so.0")

_lock = threading.Lock()
_lib = None


# --- structs (client/zjq_client.h) ---------------------------------------------

#  The option structs carry their size first (client/zjq_client.h, "Options
#  that grow"): init_sized () sets it to ctypes.sizeof of the struct as
#  declared here, and libzjq reads only the fields that size covers. A field
#  is added here when this package starts to use it, at the end, as in the
#  header; an older libzjq then refuses a non-zero new option (EVERSION)
#  instead of ignoring it.

class SubmitOpts(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("priority", ctypes.c_int),
        ("max_attempts", ctypes.c_int),
        ("job_timeout_ms", ctypes.c_int64),
        ("result_ttl_ms", ctypes.c_int64),
        ("key", ctypes.c_char_p),
    ]


class ClientOpts(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_size_t),
        ("curve_secret_file", ctypes.c_char_p),
        ("broker_key_file", ctypes.c_char_p),
    ]


class JobInfoC(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_char_p),
        ("queue", ctypes.c_char_p),
        ("state", ctypes.c_int),
        ("attempt", ctypes.c_int),
        ("max_attempts", ctypes.c_int),
        ("priority", ctypes.c_int),
        ("error", ctypes.c_char_p),
        ("progress", ctypes.c_double),
        ("progress_message", ctypes.c_char_p),
        ("worker", ctypes.c_char_p),
        ("created_ms", ctypes.c_int64),
        ("started_ms", ctypes.c_int64),
        ("finished_ms", ctypes.c_int64),
        ("expires_ms", ctypes.c_int64),
        ("result_size", ctypes.c_int64),
    ]


class ResultC(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_char_p),
        ("state", ctypes.c_int),
        ("attempt", ctypes.c_int),
        ("error", ctypes.c_char_p),
        ("data", ctypes.c_void_p),
        ("size", ctypes.c_size_t),
    ]


# --- callback types ----------------------------------------------------------------
#  Callbacks run on the thread that called zjq_client_process (the event loop's),
#  or, for the worker, on a libzjq handler thread (ctypes takes the GIL).

SUBMIT_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p,
                             ctypes.c_void_p)
RESULT_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ResultC),
                             ctypes.c_void_p)
STATUS_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(JobInfoC),
                             ctypes.c_void_p)
STATS_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_void_p)
DONE_CB = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p)
HANDLER_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p)

_c_int, _c_void_p, _c_char_p = ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p

#  name: (restype, argtypes)
PROTOTYPES = {
    "zjq_strerror": (_c_char_p, [_c_int]),
    "zjq_errname": (_c_char_p, [_c_int]),
    "zjq_state_name": (_c_char_p, [_c_int]),
    "zjq_version": (_c_char_p, []),
    # client
    "zjq_submit_opts_init_sized": (_c_int, [ctypes.POINTER(SubmitOpts), ctypes.c_size_t]),
    "zjq_client_opts_init_sized": (_c_int, [ctypes.POINTER(ClientOpts), ctypes.c_size_t]),
    "zjq_client_new_ex": (_c_int, [ctypes.POINTER(_c_void_p), _c_char_p,
                                   ctypes.POINTER(ClientOpts), _c_char_p, ctypes.c_size_t]),
    "zjq_client_destroy": (None, [ctypes.POINTER(_c_void_p)]),
    "zjq_client_set_request_timeout": (_c_int, [_c_void_p, _c_int]),
    "zjq_client_fd": (_c_int, [_c_void_p]),
    "zjq_client_timeout": (_c_int, [_c_void_p]),
    "zjq_client_process": (_c_int, [_c_void_p]),
    "zjq_client_pending": (_c_int, [_c_void_p]),
    "zjq_client_error_message": (_c_char_p, [_c_void_p]),
    "zjq_submit": (_c_int, [_c_void_p, _c_char_p, _c_char_p, ctypes.c_size_t,
                            ctypes.POINTER(SubmitOpts), SUBMIT_CB, RESULT_CB, _c_void_p]),
    "zjq_status": (_c_int, [_c_void_p, _c_char_p, STATUS_CB, _c_void_p]),
    "zjq_cancel": (_c_int, [_c_void_p, _c_char_p, STATUS_CB, _c_void_p]),
    "zjq_result": (_c_int, [_c_void_p, _c_char_p, _c_int, RESULT_CB, _c_void_p]),
    "zjq_stats": (_c_int, [_c_void_p, STATS_CB, _c_void_p]),
    "zjq_ping": (_c_int, [_c_void_p, DONE_CB, _c_void_p]),
    # worker
    "zjq_worker_new": (_c_void_p, [_c_char_p]),
    "zjq_worker_destroy": (None, [ctypes.POINTER(_c_void_p)]),
    "zjq_worker_handle": (_c_int, [_c_void_p, _c_char_p, HANDLER_FN, _c_void_p]),
    "zjq_worker_set_concurrency": (_c_int, [_c_void_p, _c_int]),
    "zjq_worker_set_prefetch": (_c_int, [_c_void_p, _c_int]),
    "zjq_worker_set_heartbeat": (_c_int, [_c_void_p, _c_int]),
    "zjq_worker_set_grace": (_c_int, [_c_void_p, _c_int]),
    "zjq_worker_set_max_result": (_c_int, [_c_void_p, ctypes.c_size_t]),
    "zjq_worker_set_curve": (_c_int, [_c_void_p, _c_char_p, _c_char_p, _c_char_p,
                                      ctypes.c_size_t]),
    "zjq_worker_run": (_c_int, [_c_void_p]),
    "zjq_worker_stop": (None, [_c_void_p, ctypes.c_bool]),
    "zjq_worker_id": (_c_char_p, [_c_void_p]),
    "zjq_task_id": (_c_char_p, [_c_void_p]),
    "zjq_task_queue": (_c_char_p, [_c_void_p]),
    "zjq_task_attempt": (_c_int, [_c_void_p]),
    "zjq_task_payload": (_c_void_p, [_c_void_p]),
    "zjq_task_payload_size": (ctypes.c_size_t, [_c_void_p]),
    "zjq_task_remaining_ms": (ctypes.c_int64, [_c_void_p]),
    "zjq_task_set_result": (_c_int, [_c_void_p, _c_char_p, ctypes.c_size_t]),
    "zjq_task_progress": (_c_int, [_c_void_p, ctypes.c_double, _c_char_p]),
    "zjq_task_cancelled": (ctypes.c_bool, [_c_void_p]),
    "zjq_task_wait_cancelled": (ctypes.c_bool, [_c_void_p, _c_int]),
    # zjq_task_fail is variadic: called with ("%s", text) and no argtypes
}


def candidates():
    """Where the library is looked for, in order."""
    found = []
    env = os.environ.get("ZJQ_LIBRARY")
    if env:
        found.append(("$ZJQ_LIBRARY", env))
    name = ctypes.util.find_library("zjq")
    if name:
        found.append(("ctypes.util.find_library('zjq')", name))
    for directory in SEARCH_DIRS:
        for base in NAMES:
            path = os.path.join(directory, base)
            if os.path.exists(path):
                found.append((directory, path))
    return found


def _needs_preloaded_asan(path):
    """True if path is a libzjq built with AddressSanitizer (ZJQ_SANITIZE)
    and this process did not start with the ASan runtime: loading it would
    make ASan abort the whole process."""
    try:
        with open(path, "rb") as f:
            if b"libasan.so" not in f.read():
                return False
        with open("/proc/self/maps") as f:
            return "libasan" not in f.read()
    except OSError:
        return False


def _load():
    tried = []
    env = os.environ.get("ZJQ_LIBRARY")
    for origin, path in candidates():
        if _needs_preloaded_asan(path):
            tried.append("%s (%s): built with AddressSanitizer; start python with "
                         "LD_PRELOAD=$(gcc -print-file-name=libasan.so) and "
                         "ASAN_OPTIONS=detect_leaks=0 (CPython does not free everything)"
                         % (path, origin))
            if origin == "$ZJQ_LIBRARY":
                break
            continue
        try:
            handle = ctypes.CDLL(path)
        except OSError as exc:
            tried.append("%s (%s): %s" % (path, origin, exc))
            if origin == "$ZJQ_LIBRARY":
                # The caller named it: do not quietly use another one.
                break
            continue
        missing = [name for name in PROTOTYPES if not hasattr(handle, name)]
        if missing:
            tried.append("%s (%s): not a usable libzjq (missing %s)"
                         % (path, origin, ", ".join(missing[:3])))
            if origin == "$ZJQ_LIBRARY":
                break
            continue
        for name, (restype, argtypes) in PROTOTYPES.items():
            function = getattr(handle, name)
            function.restype = restype
            function.argtypes = argtypes
        return handle
    where = "\n  ".join(tried) if tried else "nothing found"
    raise LibraryNotFound(
        "cannot load libzjq.so. Build it (cmake -S . -B build && cmake --build build) and set "
        "ZJQ_LIBRARY=/path/to/build/libzjq.so, or install it (cmake --install build) into a "
        "directory the dynamic linker searches.%s Tried:\n  %s"
        % (" ZJQ_LIBRARY=%s." % env if env else "", where))


def init_sized(function, opts):
    """Fill an option struct with defaults and its size, as declared here."""
    rc = function(ctypes.byref(opts), ctypes.sizeof(opts))
    if rc != 0:
        raise RuntimeError("libzjq refused %s of %d bytes (%d)"
                           % (type(opts).__name__, ctypes.sizeof(opts), rc))
    return opts


def lib():
    """The loaded libzjq (raises LibraryNotFound)."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                _lib = _load()
    return _lib


def text(value):
    """A C string from libzjq as str (None stays None)."""
    return None if value is None else value.decode("utf-8", "replace")


def encode(value, what):
    """A str argument for a char * parameter; None stays None."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.encode("utf-8")
    elif isinstance(value, os.PathLike):
        value = os.fsencode(value)
    elif not isinstance(value, bytes):
        raise TypeError("%s must be str, not %s" % (what, type(value).__name__))
    if b"\0" in value:
        raise ValueError("%s must not contain a NUL character" % what)
    return value
