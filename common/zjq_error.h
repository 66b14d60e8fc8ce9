/*  zjq_error.h: error codes, job states and version of the zjq public API.

    Every public zjq call that can fail returns 0 (or a positive count) on
    success and one of the negative ZJQ_E* codes below on failure. The same
    numeric codes travel on the wire in REJECTED and ERROR replies, so a code
    a client sees may have been decided by the broker.
    zjq_strerror () turns any code into a short English message.            */

#ifndef ZJQ_ERROR_H_INCLUDED
#define ZJQ_ERROR_H_INCLUDED

#ifdef __cplusplus
extern "C" {
#endif

#define ZJQ_VERSION_MAJOR 0
#define ZJQ_VERSION_MINOR 1
#define ZJQ_VERSION_PATCH 0

/*  X-macro table: XX (NAME, value, message). Values never change once
    released; new codes are appended with the next free value.              */
#define ZJQ_ERRNO_MAP(XX)                                                      \
    XX (EINVAL,       -1, "invalid argument")                                  \
    XX (ENOMEM,       -2, "out of memory")                                     \
    XX (EPROTO,       -3, "malformed message")                                 \
    XX (EUNREACHABLE, -4, "broker unreachable")                                \
    XX (ETIMEDOUT,    -5, "timed out")                                         \
    XX (ENOTFOUND,    -6, "job not found")                                     \
    XX (EEXPIRED,     -7, "job result expired")                                \
    XX (ETOOBIG,      -8, "payload too large")                                 \
    XX (EQUEUEFULL,   -9, "queue full")                                        \
    XX (ESTATE,      -10, "job is not in a state that allows this")            \
    XX (EFAILED,     -11, "job failed")                                        \
    XX (ECANCELLED,  -12, "job cancelled")                                     \
    XX (ENOTREADY,   -13, "job not finished yet")                              \
    XX (EVERSION,    -14, "unsupported version (protocol or option struct)")   \
    XX (ECOMMAND,    -15, "unknown command")                                   \
    XX (EDENIED,     -16, "access denied")                                     \
    XX (EUNAVAILABLE,-17, "broker not accepting jobs right now")               \
    XX (ECLOSED,     -18, "client closed before the request completed")        \
    XX (ESYS,        -19, "system error")                                      \
    XX (EBADID,      -20, "malformed job id")                                  \
    XX (EKEY,        -21, "unusable CURVE key file")                           \
    XX (EDRAINING,   -22, "broker is draining")                               \
    XX (EQUOTA,      -23, "client quota exceeded")

typedef enum {
    ZJQ_OK = 0,
#define ZJQ_ERRNO_ENUM(name, value, message) ZJQ_##name = value,
    ZJQ_ERRNO_MAP (ZJQ_ERRNO_ENUM)
#undef ZJQ_ERRNO_ENUM
} zjq_errno_t;

//  Return a static, human-readable message for a ZJQ_E* code, "success" for 0
//  and "unknown error" for anything else. Never returns NULL.
const char *
    zjq_strerror (int code);

//  Return the code's symbolic name without prefix ("EQUEUEFULL"), or NULL
//  for a value that is not a zjq error code.
const char *
    zjq_errname (int code);

//  Lifecycle of a job. A job is queued, then running (attempt n), then ends
//  in exactly one of succeeded, failed or cancelled. A failed attempt with
//  attempts left goes back to queued.
typedef enum {
    ZJQ_STATE_UNKNOWN   = 0,
    ZJQ_STATE_QUEUED    = 1,
    ZJQ_STATE_RUNNING   = 2,
    ZJQ_STATE_SUCCEEDED = 3,
    ZJQ_STATE_FAILED    = 4,
    ZJQ_STATE_CANCELLED = 5
} zjq_state_t;

//  Return the wire name of a state ("queued", "running", "succeeded",
//  "failed", "cancelled"; "unknown" for anything else). Never NULL.
const char *
    zjq_state_name (int state);

//  Parse a wire state name; returns ZJQ_STATE_UNKNOWN if it is not one.
int
    zjq_state_from_name (const char *name);

//  The library's version as "MAJOR.MINOR.PATCH". Static string.
const char *
    zjq_version (void);

#ifdef __cplusplus
}
#endif
#endif
