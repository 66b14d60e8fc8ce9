/*  zjq_worker.h: the zjq worker library (public C ABI).

    A worker connects to a broker, announces the queues it serves and how
    many jobs it runs at once, and runs each job it receives through the
    handler registered for that job's queue:

        zjq_worker_t *worker = zjq_worker_new ("tcp://127.0.0.1:5555");
        zjq_worker_handle (worker, "resize", resize_handler, NULL);
        zjq_worker_set_concurrency (worker, 4);
        int rc = zjq_worker_run (worker);     // until SIGTERM/SIGINT
        zjq_worker_destroy (&worker);

    Handlers run on handler threads (one per concurrency slot), never on the
    thread that talks to the broker, so heartbeats keep flowing however long
    a handler computes. A handler must be thread-safe if concurrency > 1.

    Signals: zjq_worker_run () handles SIGTERM and SIGINT itself (the first
    stops taking jobs and lets running ones finish within the grace period;
    the second, or the end of the grace period, aborts them and the broker
    requeues them). It blocks those signals in the calling thread while it
    runs; call it from the main thread, before starting other threads.

    Functions return 0 on success and a negative ZJQ_E* code on failure.   */

#ifndef ZJQ_WORKER_H_INCLUDED
#define ZJQ_WORKER_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "zjq_error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _zjq_worker_t zjq_worker_t;
typedef struct _zjq_task_t zjq_task_t;

//  Run one job. Return 0 on success (the result is what was set with
//  zjq_task_set_result, empty if nothing), or -1 on failure (the error is
//  what was set with zjq_task_fail, else "handler failed"). Called on a
//  handler thread.
typedef int (zjq_handler_fn) (zjq_task_t *task, void *arg);

//  Create a worker for a broker endpoint. Returns NULL if the endpoint is
//  invalid or on out of memory.
zjq_worker_t *
    zjq_worker_new (const char *endpoint);

//  Destroy a worker that is not running; idempotent; nulls the pointer.
void
    zjq_worker_destroy (zjq_worker_t **self_p);

//  Serve a queue with a handler. Call before run. Returns 0, ZJQ_EINVAL for
//  a bad queue name or a queue already registered.
int
    zjq_worker_handle (zjq_worker_t *self, const char *queue,
                       zjq_handler_fn *handler, void *arg);

//  Jobs run at once (handler threads), 1..1000, default 1. Returns 0,
//  ZJQ_EINVAL out of range, ZJQ_ESTATE while running.
int
    zjq_worker_set_concurrency (zjq_worker_t *self, int concurrency);

//  Jobs the worker takes on beyond those it runs, 0..1000, so that a
//  handler thread that finishes finds its next job already here instead of
//  idling for a round trip to the broker; or -1 (the default): adaptive,
//  sized from the measured service time, round trip and payload size, 0
//  for jobs much longer than a round trip (see README "Worker credit" and
//  docs/protocol.md). The worker announces capacity = concurrency +
//  prefetch (its credit); prefetched jobs wait in the worker, in arrival
//  order, and their job timeout runs from dispatch. A graceful stop hands
//  them back at once ("worker shutting down": the broker requeues them).
//  A fixed 0 disables prefetching. Returns 0, ZJQ_EINVAL out of range,
//  ZJQ_ESTATE while running.
int
    zjq_worker_set_prefetch (zjq_worker_t *self, int prefetch);

//  Run handlers inline: on the thread that calls zjq_worker_run, one job at
//  a time, between reads from the broker, instead of on handler threads.
//  That saves two thread wake-ups per job, which is most of the cost of a
//  job that takes microseconds (a null job costs the worker about a third
//  of the CPU it costs with handler threads). Only for handlers that are
//  short (far below the heartbeat interval: while one runs, the worker
//  neither reads nor sends anything) and never block: such a handler
//  cannot be cancelled or timed out while it runs (zjq_task_wait_cancelled
//  just waits out its timeout). The concurrency is then 1;
//  prefetch still applies. Call before run. Returns 0, or ZJQ_ESTATE while
//  running.
int
    zjq_worker_set_inline (zjq_worker_t *self, bool inline_handlers);

//  Heartbeat interval in ms (100..60000, default 1000). The broker declares
//  the worker dead after 3 silent intervals, and the worker the broker.
int
    zjq_worker_set_heartbeat (zjq_worker_t *self, int heartbeat_ms);

//  Grace period for running jobs after the first SIGTERM, in ms (default
//  30000).
int
    zjq_worker_set_grace (zjq_worker_t *self, int grace_ms);

//  Largest result a handler may return, in bytes (default 16 MiB); a larger
//  result fails the attempt.
int
    zjq_worker_set_max_result (zjq_worker_t *self, size_t bytes);

//  Talk CURVE to the broker: this worker's secret certificate (`zjq keygen
//  NAME` writes NAME.key_secret; mode 0600) and the broker's public
//  certificate. The files are read now, once. Call before run. Returns 0,
//  ZJQ_EINVAL (missing argument, or running), or ZJQ_EKEY (a file is
//  missing, unreadable, not a certificate, or the secret one is readable by
//  others); then, if error is not NULL, error (error_size bytes) says which
//  file and why, never with key material. A broker that refuses the key
//  (or its role or queues) is retried with the reconnect backoff.
int
    zjq_worker_set_curve (zjq_worker_t *self, const char *secret_file,
                          const char *broker_key_file, char *error, size_t error_size);

//  Connect and serve until stopped. Reconnects with backoff whenever the
//  broker goes away. Returns 0 after a clean stop, or a negative code if it
//  could not start (no handler registered, ...).
int
    zjq_worker_run (zjq_worker_t *self);

//  Ask a running worker to stop, from any thread (or a handler): graceful
//  lets running jobs finish within the grace period, otherwise they are
//  aborted. Safe to call more than once.
void
    zjq_worker_stop (zjq_worker_t *self, bool graceful);

//  The worker's id as announced to the broker ("host/pid/xxxx").
const char *
    zjq_worker_id (zjq_worker_t *self);

//  --- For handlers: the job being run. Valid until the handler returns.
const char *
    zjq_task_id (zjq_task_t *task);
const char *
    zjq_task_queue (zjq_task_t *task);
int
    zjq_task_attempt (zjq_task_t *task);
const void *
    zjq_task_payload (zjq_task_t *task);
size_t
    zjq_task_payload_size (zjq_task_t *task);
//  Milliseconds left before the job timeout (never below 0).
int64_t
    zjq_task_remaining_ms (zjq_task_t *task);

//  Set the result (copied). Returns 0, or ZJQ_ETOOBIG / ZJQ_ENOMEM.
int
    zjq_task_set_result (zjq_task_t *task, const void *data, size_t size);
//  Set the error message (printf format) and return -1, so a handler can
//  `return zjq_task_fail (task, "bad input: %s", why);`.
int
    zjq_task_fail (zjq_task_t *task, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  Report progress: fraction 0..1 (clamped) and an optional short message
//  (at most 256 bytes are kept). Sent to the broker without blocking the
//  handler; clients that asked see it (zjq_on_progress, zjq status).
//  Reports keep their order; when a handler reports faster than the worker
//  sends, only the latest is sent. Returns 0.
int
    zjq_task_progress (zjq_task_t *task, double fraction, const char *message);
//  Say how a process that ran the job ended: its exit status (0..255, or
//  -1 if it did not exit) and the signal that killed it (or 0). Sent with
//  the result; the broker keeps it in the job's attempt history (zjq
//  failed, zjq status). Out-of-range values count as unknown.
void
    zjq_task_set_exit (zjq_task_t *task, int exit_code, int signal);

//  True once the job was cancelled, timed out, or the worker is aborting:
//  the handler should stop and return soon (its result is discarded).
bool
    zjq_task_cancelled (zjq_task_t *task);
//  Sleep up to timeout_ms, waking early on cancellation. Returns true if
//  the job is cancelled.
bool
    zjq_task_wait_cancelled (zjq_task_t *task, int timeout_ms);
//  For handlers that run a child process: register its pid (0 to clear),
//  and on cancellation the worker kills the child's process group at once
//  with SIGKILL. The child should be a process group leader (setpgid).
void
    zjq_task_set_child (zjq_task_t *task, pid_t pid);

#ifdef __cplusplus
}
#endif
#endif
