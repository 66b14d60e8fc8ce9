/*  zjq_client.h: the zjq asynchronous client library (public C ABI).

    A client submits jobs to a zjq broker and learns their outcome, without
    ever blocking its caller. It is driven from the caller's event loop:

        fd = zjq_client_fd (client);         // watch for readability
        ms = zjq_client_timeout (client);    // and wake up after this long
        zjq_client_process (client);         // then let the client work

    Call zjq_client_process () whenever the fd is readable, when the timeout
    passes, and after issuing requests (it sends what is queued). The fd is
    libzmq's ZMQ_FD: edge-triggered, so process () always drains everything.
    For scripts, zjq_client_run () and zjq_wait () block on the same calls.

    Callbacks run inside zjq_client_process () (or run/wait), on the caller's
    thread. Callbacks take (client, status, ..., arg) where arg is the
    caller's pointer. If a request function returns an error, its callbacks
    are never called; otherwise each callback is called exactly once (a
    result callback may also be called with an error, e.g. ZJQ_ETIMEDOUT).
    Pointers passed to callbacks are valid only during the call.

    Thread safety: a zjq_client_t must be used by one thread at a time, and
    callbacks come on that thread. Separate clients are independent.

    Security: zjq_client_new_ex () can make the connection CURVE (encrypted,
    and authenticated by key pairs from `zjq keygen`); see README, "Running
    across hosts securely". Key files are read with no help from czmq's
    zsys, so no signal handlers are installed either.

    All functions return 0 (or a count) on success and a negative ZJQ_E*
    code on failure; see zjq_error.h and zjq_strerror ().                   */

#ifndef ZJQ_CLIENT_H_INCLUDED
#define ZJQ_CLIENT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include "zjq_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zjq_client_t zjq_client_t;

//  Options that grow: the option structs below (zjq_submit_opts_t,
//  zjq_client_opts_t) are allocated by the caller and carry their own size,
//  so that later versions add options without breaking programs built
//  against an older header (the library ships as a shared object):
//  - Initialise one with its init macro (zjq_submit_opts_init (&opts)) or
//    static initialiser (= ZJQ_SUBMIT_OPTS_INIT): size becomes the sizeof
//    of the struct in the header the caller was compiled with, and every
//    option its default (zero). Then set the options wanted. (The static
//    initialisers are designated: C, or C++20; else use the macro.)
//  - The library reads the options that lie wholly inside size and takes
//    the defaults for the rest: a program built against an older, shorter
//    header keeps working. A struct from a newer header than the library's
//    works too if the options this library does not know are left zero;
//    if one is set, the call fails with ZJQ_EVERSION rather than ignore
//    what it cannot do.
//  - Any other size is refused with ZJQ_EVERSION and nothing is done: 0
//    (the struct was not initialised, e.g. memset or = {0}), less than
//    sizeof (size_t), or not a multiple of the struct's alignment.
//  - Rule for adding an option: append it, never reorder or remove; keep
//    the struct free of tail padding (add fields in groups of 8 bytes, or
//    reserved fields), so that every published size ends at a field.
//  Published sizes (LP64): zjq_submit_opts_t 40 (0.1: priority through
//  key); zjq_client_opts_t 24 (0.1: the CURVE files).
//  Structs the library fills in (zjq_job_info_t, zjq_result_t) only grow
//  at the end, and a caller reads the fields its header knows.

//  Options for a submit. Zero fields take the broker's defaults.
typedef struct {
    size_t size;                //  sizeof as compiled: set by the init
    int priority;               //  -1000..1000, higher runs first (0)
    int max_attempts;           //  attempts before the job fails (0: default)
    int64_t job_timeout_ms;     //  per attempt (0: broker default)
    int64_t result_ttl_ms;      //  how long the outcome is kept (0: default)
    const char *key;            //  idempotency key, or NULL
} zjq_submit_opts_t;

#define ZJQ_SUBMIT_OPTS_INIT { .size = sizeof (zjq_submit_opts_t) }

//  What a job looks like now (status and cancel replies).
typedef struct {
    const char *id;             //  job id
    const char *queue;          //  queue name
    int state;                  //  zjq_state_t
    int attempt;                //  current or last attempt (0: not yet run)
    int max_attempts;           //  attempt limit
    int priority;               //  priority
    const char *error;          //  reason of failure/cancel or of the last
                                //  failed attempt, or NULL
    double progress;            //  0..1 as reported by the worker, or -1
    const char *progress_message;   //  worker's progress text, or NULL
    const char *worker;         //  id of the worker running it, or NULL
    int64_t created_ms;         //  Unix ms
    int64_t started_ms;         //  Unix ms of the last dispatch, or 0
    int64_t finished_ms;        //  Unix ms of the end, or 0
    int64_t expires_ms;         //  Unix ms when the outcome is dropped, or 0
    int64_t result_size;        //  bytes of result, or 0
} zjq_job_info_t;

//  The outcome of a job that has ended.
typedef struct {
    const char *id;             //  job id
    int state;                  //  SUCCEEDED, FAILED or CANCELLED
    int attempt;                //  the attempt that ended it
    const char *error;          //  reason, unless succeeded (else NULL)
    const void *data;           //  result bytes (succeeded), else NULL
    size_t size;                //  result size
} zjq_result_t;

//  Submit answered: status 0 and the new job id, or a negative code
//  (ZJQ_EQUEUEFULL, ZJQ_ETOOBIG, ZJQ_EINVAL, ZJQ_EUNREACHABLE, ...) and NULL.
typedef void (zjq_submit_cb) (zjq_client_t *client, int status,
                              const char *job_id, void *arg);
//  A job's outcome: status 0 with a succeeded result, ZJQ_EFAILED or
//  ZJQ_ECANCELLED with the result describing it, or another negative code
//  (ZJQ_ENOTREADY, ZJQ_ENOTFOUND, ZJQ_EEXPIRED, ZJQ_ETIMEDOUT,
//  ZJQ_EUNREACHABLE, ZJQ_ECLOSED, ...) with result NULL.
typedef void (zjq_result_cb) (zjq_client_t *client, int status,
                              const zjq_result_t *result, void *arg);
//  A job's state: status 0 with info, or a negative code with NULL.
typedef void (zjq_status_cb) (zjq_client_t *client, int status,
                              const zjq_job_info_t *info, void *arg);
//  Broker statistics as a JSON text (status 0), or a negative code and NULL.
typedef void (zjq_stats_cb) (zjq_client_t *client, int status,
                             const char *json, void *arg);
//  Plain completion (ping): status 0 or a negative code.
typedef void (zjq_done_cb) (zjq_client_t *client, int status, void *arg);
//  An operation's answer as a JSON object (status 0), or a negative code
//  and NULL. The object has the reply's fields (docs/protocol.md).
typedef void (zjq_json_cb) (zjq_client_t *client, int status,
                            const char *json, void *arg);
//  A job's progress as its worker reported it: fraction 0..1 and its
//  message or NULL, for the given attempt. Reports about one job arrive in
//  the order the worker made them.
typedef void (zjq_progress_cb) (zjq_client_t *client, const char *job_id, int attempt,
                                double progress, const char *message, void *arg);

//  Fill opts with defaults (all zero) and its size, as compiled: a macro,
//  so that the size is the caller's sizeof (see "Options that grow").
#define zjq_submit_opts_init(opts) \
    zjq_submit_opts_init_sized ((opts), sizeof (*(opts)))

//  What zjq_submit_opts_init does, for callers that cannot use the macro
//  (bindings: ctypes, cffi): zero size bytes at opts and set opts->size to
//  size, the size of the struct as the caller declares it. Returns 0, or
//  ZJQ_EINVAL (opts NULL) or ZJQ_EVERSION (a size the library cannot
//  read, see above), opts untouched.
int
    zjq_submit_opts_init_sized (zjq_submit_opts_t *opts, size_t size);

//  Options for a client (zjq_client_new_ex). Versioned by size like
//  zjq_submit_opts_t (see "Options that grow").
typedef struct {
    size_t size;                //  sizeof as compiled: set by the init
    //  CURVE: this client's secret certificate (`zjq keygen NAME` writes
    //  NAME.key_secret; mode 0600) and the broker's public certificate.
    //  Both or neither; neither means plaintext.
    const char *curve_secret_file;
    const char *broker_key_file;
} zjq_client_opts_t;

#define ZJQ_CLIENT_OPTS_INIT { .size = sizeof (zjq_client_opts_t) }

//  Fill opts with defaults (all zero: plaintext) and its size, as
//  compiled (a macro, like zjq_submit_opts_init).
#define zjq_client_opts_init(opts) \
    zjq_client_opts_init_sized ((opts), sizeof (*(opts)))

//  What zjq_client_opts_init does, for bindings: as
//  zjq_submit_opts_init_sized. Returns 0, ZJQ_EINVAL or ZJQ_EVERSION.
int
    zjq_client_opts_init_sized (zjq_client_opts_t *opts, size_t size);

//  Create a client for a broker endpoint ("tcp://127.0.0.1:5555",
//  "ipc:///run/zjq.sock"). Connecting is asynchronous: this never waits for
//  the broker, and requests issued before the connection is up are sent
//  when it is. Returns NULL if the endpoint is invalid or on out of memory.
zjq_client_t *
    zjq_client_new (const char *endpoint);

//  Create a client with options (opts may be NULL: like zjq_client_new).
//  Key files are read here, once. Returns 0 and the client in *client_p,
//  or a negative code with *client_p NULL and, if error is not NULL, a
//  message in it (error_size bytes; it names files, never key material):
//  ZJQ_EINVAL (bad endpoint or options), ZJQ_EVERSION (opts->size is not
//  one the library can read: opts not initialised?), ZJQ_EKEY (a key file
//  is missing, unreadable, not a certificate, or a secret one is readable
//  by others), ZJQ_ENOMEM.
//  With CURVE, a broker that refuses this client's key fails the requests
//  waiting to be sent with ZJQ_EDENIED; a broker that cannot be talked to
//  (wrong broker key, a plaintext broker) looks unreachable
//  (ZJQ_EUNREACHABLE).
int
    zjq_client_new_ex (zjq_client_t **client_p, const char *endpoint,
                       const zjq_client_opts_t *opts, char *error, size_t error_size);

//  Destroy a client; idempotent; nulls the caller's pointer. Callbacks of
//  requests still pending are called with ZJQ_ECLOSED first. Must not be
//  called from inside one of the client's own callbacks.
void
    zjq_client_destroy (zjq_client_t **self_p);

//  How long to wait for the broker to answer a request before failing it
//  with ZJQ_EUNREACHABLE (default 5000 ms). Affects later requests.
int
    zjq_client_set_request_timeout (zjq_client_t *self, int timeout_ms);

//  File descriptor to watch for readability (edge-triggered; see above).
int
    zjq_client_fd (zjq_client_t *self);

//  Milliseconds until zjq_client_process () must run for timers, or -1 if
//  no timer is pending. 0 means call it now.
int
    zjq_client_timeout (zjq_client_t *self);

//  Do all the work that can be done now without blocking: send queued
//  requests, read every reply, fire callbacks, fail requests whose time has
//  run out. Returns the number of callbacks fired, or a negative code on a
//  fatal socket error.
int
    zjq_client_process (zjq_client_t *self);

//  Requests and watches still waiting for an answer.
int
    zjq_client_pending (zjq_client_t *self);

//  Block, processing, until nothing is pending or timeout_ms passes (-1:
//  no limit). Returns 0 when idle, ZJQ_ETIMEDOUT if time ran out.
int
    zjq_client_run (zjq_client_t *self, int timeout_ms);

//  Submit a job: payload bytes (copied) to a queue. on_accepted (may be
//  NULL) fires when the broker accepts or rejects it. If on_done is not
//  NULL, the broker is asked to notify this client when the job ends, and
//  on_done fires then, once (it never fires if the submit is rejected,
//  unless on_accepted is NULL: then on_done gets the rejection's code).
//  opts may be NULL (defaults). Returns 0, or ZJQ_EINVAL (bad queue name
//  or options), ZJQ_EVERSION (opts->size is not one the library can read:
//  opts not initialised?), ZJQ_ENOMEM.
int
    zjq_submit (zjq_client_t *self, const char *queue,
                const void *payload, size_t size,
                const zjq_submit_opts_t *opts,
                zjq_submit_cb *on_accepted, zjq_result_cb *on_done, void *arg);

//  Ask for a job's state. Returns 0 or a negative code.
int
    zjq_status (zjq_client_t *self, const char *job_id,
                zjq_status_cb *callback, void *arg);

//  Ask for a job's outcome. timeout_ms 0: answer at once (ZJQ_ENOTREADY
//  while the job has not ended); > 0: wait up to that long for the end
//  (then ZJQ_ETIMEDOUT); -1: wait without limit. Waiting survives broker
//  restarts and reconnects. Returns 0 or a negative code.
int
    zjq_result (zjq_client_t *self, const char *job_id, int timeout_ms,
                zjq_result_cb *callback, void *arg);

//  Cancel a job: a queued one is removed, a running one is killed on its
//  worker. The callback gets the job's new state (cancelled), or ESTATE if
//  it had already ended. Returns 0 or a negative code.
int
    zjq_cancel (zjq_client_t *self, const char *job_id,
                zjq_status_cb *callback, void *arg);

//  Ask for the broker's statistics (JSON). Returns 0 or a negative code.
int
    zjq_stats (zjq_client_t *self, zjq_stats_cb *callback, void *arg);

//  Check that the broker answers. Returns 0 or a negative code.
int
    zjq_ping (zjq_client_t *self, zjq_done_cb *callback, void *arg);

//  Admin: ask a CURVE broker to read its allow-lists again. The callback
//  gets 0, ZJQ_EDENIED (not an admin key), or ZJQ_EINVAL (the broker has no
//  CURVE, or the new lists are unusable: the old ones stay). Returns 0 or a
//  negative code.
int
    zjq_reload (zjq_client_t *self, zjq_done_cb *callback, void *arg);

//  Inside a callback that got an error status: the reason in words, or
//  NULL. For an error the broker decided (a REJECTED submit, an ERROR
//  reply) it is the broker's message ("payload of 2048 bytes exceeds the
//  limit of 1024", ...); for ZJQ_EUNREACHABLE, why the last CURVE handshake
//  failed, if one did. Owned by the client; valid only during the callback.
//  For bindings that turn codes into exceptions with a message.
const char *
    zjq_client_error_message (zjq_client_t *self);
//  Be told of the progress of the jobs this client waits for: from now on,
//  zjq_submit with on_done and zjq_result (or zjq_wait) with a timeout ask
//  the broker to push each progress report of the job while it runs (also
//  after a reconnect), and callback gets them. NULL stops asking (reports
//  already on their way are dropped). Returns 0, or ZJQ_EINVAL.
int
    zjq_on_progress (zjq_client_t *self, zjq_progress_cb *callback, void *arg);

//  Operations: admin keys only under CURVE (ZJQ_EDENIED otherwise). Each
//  callback gets the broker's answer as JSON; see docs/protocol.md.

//  Stop dispatching a queue's jobs (submits are still accepted), or start
//  again. The broker keeps the flag across restarts (with a journal).
//  JSON: {"queue", "paused", "queued", "running", "workers"}. Returns 0,
//  ZJQ_EINVAL (bad queue name), ZJQ_ENOMEM.
int
    zjq_pause (zjq_client_t *self, const char *queue, zjq_json_cb *callback, void *arg);
int
    zjq_resume (zjq_client_t *self, const char *queue, zjq_json_cb *callback, void *arg);

//  Make the broker stop accepting jobs (SUBMIT and retries get
//  ZJQ_EDRAINING) and finish what it holds; off != 0 undoes it. Ask again
//  to follow it: JSON {"draining", "drained" (nothing runs, nothing is
//  queued but in paused queues), "queued", "running", "paused_queued"}.
int
    zjq_drain (zjq_client_t *self, int off, zjq_json_cb *callback, void *arg);

//  A page of failed jobs (dead letters), oldest failure first, of one
//  queue or all (queue NULL), after a cursor (after NULL: from the start;
//  else the "next" and "next_ms" of the previous page), at most limit
//  (1..10000; 0: 1000). JSON {"total", "bytes", "jobs": [{"id", "queue",
//  "attempts", "max_attempts", "retries", "error", "created_ms",
//  "failed_ms", "expires_ms", "history": [{"attempt", "error", "exit_code",
//  "signal", "duration_ms", "started_ms", "ended_ms", "worker"}, ...],
//  "history_dropped"}, ...], "next", "next_ms"}; no "next" on the last page.
int
    zjq_dead_letters (zjq_client_t *self, const char *queue, const char *after,
                      int64_t after_ms, int limit, zjq_json_cb *callback, void *arg);

//  Requeue a failed job (job_id), or every failed job of a queue (queue;
//  give exactly one), each with a fresh attempt budget. JSON {"count"},
//  and "stopped" (why) if a limit stopped a queue's retry part way.
//  ZJQ_ESTATE: not a failed job; ZJQ_EDRAINING: the broker is draining.
int
    zjq_retry (zjq_client_t *self, const char *job_id, const char *queue,
               zjq_json_cb *callback, void *arg);

//  Blocking: wait up to timeout_ms (-1: no limit) for a job's outcome,
//  calling callback (which may be NULL) with it, and return the status that
//  the callback got.
int
    zjq_wait (zjq_client_t *self, const char *job_id, int timeout_ms,
              zjq_result_cb *callback, void *arg);

#ifdef __cplusplus
}
#endif
#endif
