/*  zjq_worker.c: the zjq worker library (see zjq_worker.h, docs/protocol.md):
    the public API, zjq_worker_run's event loop, signals and the stop.

    Threads. The thread that calls zjq_worker_run () owns the connection to
    the broker. It polls, in one zmq_poll with a timeout taken from the
    nearest timer: the DEALER socket, a signalfd for SIGTERM and SIGINT, the
    eventfd that zjq_worker_stop () writes, and the eventfd that handler
    threads write when a task finished or has progress to report. Timers:
    heartbeat to send, broker liveness, reconnect backoff, task deadlines,
    the grace period. Handler threads (zjq_pool.c) run the handlers; the
    credit announced to the broker (zjq_credit.h) is concurrency + prefetch,
    so that up to `prefetch` jobs wait in the pool's FIFO and a slot that
    frees up starts its next job without a round trip to the broker.

    The rooms of the library are listed in zjq_worker_private.h: the
    connection (zjq_worker_conn.c), job bookkeeping (zjq_worker_jobs.c), the
    handler threads (zjq_pool.c), tasks (zjq_task.c) and the credit
    (zjq_credit.c). If handlers do not return within a bound after the
    worker stopped, the pool is orphaned (zjq_pool_stop), so
    zjq_worker_run () never waits forever.                                 */

#include "zjq_worker_private.h"
#include "zjq_log.h"
#include "zjq_util.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#define s_FINAL_LINGER_MS    2000    //  for the last WORK_RESULTs and DISCONNECT
#define s_HANDLER_WAIT_MS    5000    //  on stop: wait this long for aborted handlers


//  --------------------------------------------------------------------------
//  Stopping

static void
s_request_stop (zjq_worker_t *self, int level)
{
    int current = atomic_load (&self->stop_request);
    while (current < level
       && !atomic_compare_exchange_weak (&self->stop_request, &current, level))
        ;
}

static void
s_read_signals (zjq_worker_t *self)
{
    for (int count = 0; count < 16; count++) {
        int signum = zjq_signalfd_read (self->signal_fd);
        if (signum <= 0)
            break;
        self->signals_seen++;
        if (self->signals_seen == 1
        &&  atomic_load (&self->stop_request) == ZJQ_WORKER_STOP_NONE) {
            zjq_log_info ("draining", "signal=%s grace_ms=%d msg=%s", strsignal (signum),
                          self->grace_ms, "finishing running jobs; send it again to abort them");
            s_request_stop (self, ZJQ_WORKER_STOP_GRACEFUL);
        }
        else {
            zjq_log_info ("aborting", "signal=%s", strsignal (signum));
            s_request_stop (self, ZJQ_WORKER_STOP_ABORT);
        }
    }
}

//  First step of a graceful stop: tell the broker, hand back queued jobs.
static void
s_begin_drain (zjq_worker_t *self, int64_t now)
{
    self->phase = ZJQ_WORKER_DRAINING;
    self->grace_deadline = now + self->grace_ms;
    if (!self->socket)
        return;
    zjq_worker_send_disconnect (self, true);
    zjq_worker_return_queued (self, "worker shutting down");
    zjq_log_info ("draining", "running=%zu", zjq_worker_live_tasks (self));
}

//  What the loop does next, given the stop requested and the drain.
typedef enum {
    s_GO_ON,                    //  keep serving
    s_STOP,                     //  clean stop: nothing left to run
    s_ABORT                     //  stop, aborting what runs
} s_step_t;

static s_step_t
s_check_stop (zjq_worker_t *self, int64_t now)
{
    int stop = atomic_load (&self->stop_request);
    if (stop == ZJQ_WORKER_STOP_ABORT)
        return s_ABORT;
    if (stop == ZJQ_WORKER_STOP_GRACEFUL && self->phase == ZJQ_WORKER_RUNNING)
        s_begin_drain (self, now);
    if (self->phase == ZJQ_WORKER_DRAINING) {
        if (!self->socket)
            return s_ABORT;             //  nobody to report to
        if (zjq_worker_live_tasks (self) == 0)
            return s_STOP;              //  clean stop
        if (now >= self->grace_deadline) {
            zjq_log_info ("grace_over", "grace_ms=%d", self->grace_ms);
            return s_ABORT;
        }
    }
    return s_GO_ON;
}

//  Last step of a run: abort what is left if asked to, say goodbye, wait a
//  bounded time for handler threads, and release the pool.
static void
s_finish (zjq_worker_t *self, bool abort)
{
    if (abort) {
        size_t live = zjq_worker_live_tasks (self);
        zjq_worker_abort_tasks (self, "worker stopping");
        if (live)
            zjq_log_info ("aborted", "jobs=%zu", live);
    }
    if (self->socket)
        zjq_worker_send_disconnect (self, false);

    //  Wait for the handlers of aborted tasks to return
    int wake_fd = zjq_pool_wake_fd (self->pool);
    int64_t until = zjq_mono_ms () + s_HANDLER_WAIT_MS;
    while (zlistx_size (self->tasks) > 0) {
        int64_t now = zjq_mono_ms ();
        if (now >= until)
            break;
        zmq_pollitem_t item = { NULL, wake_fd, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, (long) (until - now)) > 0) {
            zjq_worker_eventfd_drain (wake_fd);
            zjq_worker_collect (self);
        }
    }
    //  Give the last messages time to leave, unless the broker never answered
    zjq_worker_close_socket (self, self->greeted ? s_FINAL_LINGER_MS : 0);

    //  Handlers that ignore cancellation: leave them the pool (the threads
    //  destroy running tasks)
    size_t stuck = zlistx_size (self->tasks);
    zjq_pool_stop (&self->pool, stuck > 0);
    if (stuck) {
        zlistx_purge (self->tasks);
        zjq_log_error ("handlers_stuck", "handlers=%zu wait_ms=%d msg=%s", stuck, s_HANDLER_WAIT_MS,
                       "still running after cancellation; left behind");
    }
}


//  --------------------------------------------------------------------------
//  A run: start, the event loop, end

//  Free what s_run_begin made (whatever of it exists).
static void
s_run_free (zjq_worker_t *self)
{
    zjq_pool_stop (&self->pool, false);
    zjq_credit_destroy (&self->credit);
    zlistx_destroy (&self->tasks);
    zjq_worker_free_spares (self);
    if (self->ctx)
        zmq_ctx_term (self->ctx);       //  bounded by the socket's linger
    self->ctx = NULL;
}

//  Block the signals (before any thread starts: handler threads, libzmq's
//  I/O threads, so that only our signalfd ever sees them), and make the
//  context, the pool and the credit. Returns 0, or ZJQ_ESYS with nothing
//  left (the mask restored).
static int
s_run_begin (zjq_worker_t *self, sigset_t *saved_mask)
{
    pthread_sigmask (SIG_BLOCK, NULL, saved_mask);
    const int signals [] = { SIGTERM, SIGINT };
    self->signal_fd = zjq_signalfd_open (signals, 2);
    if (self->signal_fd < 0) {
        zjq_log_error ("signalfd_failed", "error=%s", strerror (errno));
        pthread_sigmask (SIG_SETMASK, saved_mask, NULL);
        return ZJQ_ESYS;
    }
    int slots = self->inline_handlers ? 1 : self->concurrency;
    self->ctx = zmq_ctx_new ();
    self->pool = self->ctx ? zjq_pool_new (self->inline_handlers ? 0 : self->concurrency) : NULL;
    self->credit = zjq_credit_new (slots, self->prefetch);
    self->tasks = zlistx_new ();
    if (!self->ctx || !self->pool || !self->credit || !self->tasks) {
        s_run_free (self);
        close (self->signal_fd);
        self->signal_fd = -1;
        pthread_sigmask (SIG_SETMASK, saved_mask, NULL);
        return ZJQ_ESYS;
    }
    self->phase = ZJQ_WORKER_RUNNING;
    self->signals_seen = 0;
    self->backoff_ms = ZJQ_WORKER_BACKOFF_MIN_MS;
    self->connect_at = zjq_mono_ms ();
    self->socket = NULL;
    zjq_worker_eventfd_drain (self->stop_fd);
    return 0;
}

static void
s_run_end (zjq_worker_t *self, const sigset_t *saved_mask)
{
    s_run_free (self);
    zjq_log_info ("stopped", "worker=%s", self->id);
    //  Consume signals that are still pending before unblocking them
    while (zjq_signalfd_read (self->signal_fd) > 0)
        ;
    close (self->signal_fd);
    self->signal_fd = -1;
    pthread_sigmask (SIG_SETMASK, saved_mask, NULL);
    atomic_store (&self->stop_request, ZJQ_WORKER_STOP_NONE);
}

//  How long the loop may sleep: until the nearest timer (task deadlines,
//  which cancels the tasks past theirs, the connection's, the grace
//  period), 0 if the inbox holds messages already. Flushes what this turn
//  sent, in one BATCH if several.
static long
s_next_timeout (zjq_worker_t *self, int64_t now)
{
    int64_t wake = now + self->heartbeat_ms;
    int64_t deadline = zjq_worker_check_deadlines (self, now);
    if (deadline < wake)
        wake = deadline;
    zjq_worker_credit_tend (self, now);
    if (self->credit_check_at < wake)
        wake = self->credit_check_at;
    wake = zjq_worker_conn_next_timer (self, wake);
    if (self->phase == ZJQ_WORKER_DRAINING && self->grace_deadline < wake)
        wake = self->grace_deadline;
    long timeout = wake > now ? (long) (wake - now) : 0;
    if (self->socket) {
        zjq_outbox_flush (self->outbox);
        if (zjq_inbox_pending (self->inbox))
            timeout = 0;
    }
    return timeout;
}

//  Wait for input up to timeout ms and handle what came: signals, a stop
//  request, finished tasks, the broker's messages, handshake failures.
//  Returns 0, or -1 if polling failed (the run must abort).
static int
s_poll (zjq_worker_t *self, long timeout)
{
    int wake_fd = zjq_pool_wake_fd (self->pool);
    zmq_pollitem_t items [] = {
        { NULL, self->signal_fd, ZMQ_POLLIN, 0 },
        { NULL, self->stop_fd, ZMQ_POLLIN, 0 },
        { NULL, wake_fd, ZMQ_POLLIN, 0 },
        { self->socket, -1, ZMQ_POLLIN, 0 },
        { self->monitor, -1, ZMQ_POLLIN, 0 }
    };
    int rc = zmq_poll (items, !self->socket ? 3 : self->monitor ? 5 : 4, timeout);
    if (rc < 0) {
        if (errno == EINTR)
            return 0;
        zjq_log_error ("poll_failed", "error=%s", zmq_strerror (errno));
        return -1;
    }
    if (items [0].revents & ZMQ_POLLIN)
        s_read_signals (self);
    if (items [1].revents & ZMQ_POLLIN)
        zjq_worker_eventfd_drain (self->stop_fd);
    if (items [2].revents & ZMQ_POLLIN) {
        zjq_worker_eventfd_drain (wake_fd);
        zjq_worker_collect (self);
    }
    if (self->socket && ((items [3].revents & ZMQ_POLLIN) || zjq_inbox_pending (self->inbox)))
        zjq_worker_recv_all (self);
    if (self->monitor && (items [4].revents & ZMQ_POLLIN))
        zjq_worker_read_monitor (self);
    return 0;
}

int
zjq_worker_run (zjq_worker_t *self)
{
    assert (self);
    if (self->handler_count == 0)
        return ZJQ_EINVAL;
    if (atomic_exchange (&self->running, true))
        return ZJQ_ESTATE;
    sigset_t saved_mask;
    int rc = s_run_begin (self, &saved_mask);
    if (rc != 0) {
        atomic_store (&self->running, false);
        return rc;
    }
    s_step_t step;
    while (true) {
        int64_t now = zjq_mono_ms ();
        if ((step = s_check_stop (self, now)) != s_GO_ON)
            break;
        if (zjq_worker_conn_tend (self, now) != 0)
            continue;                   //  connection lost: look again
        if (s_poll (self, s_next_timeout (self, now)) != 0) {
            step = s_ABORT;
            break;
        }
    }
    s_finish (self, step == s_ABORT);
    s_run_end (self, &saved_mask);
    atomic_store (&self->running, false);
    return 0;
}

void
zjq_worker_stop (zjq_worker_t *self, bool graceful)
{
    assert (self);
    s_request_stop (self, graceful ? ZJQ_WORKER_STOP_GRACEFUL : ZJQ_WORKER_STOP_ABORT);
    zjq_worker_eventfd_signal (self->stop_fd);
}


//  --------------------------------------------------------------------------
//  Construction and settings

int
zjq_worker_set_curve (zjq_worker_t *self, const char *secret_file, const char *broker_key_file,
                      char *error, size_t error_size)
{
    if (!self || !secret_file || !broker_key_file || atomic_load (&self->running)) {
        if (error && error_size)
            snprintf (error, error_size, "CURVE needs both key files, before run");
        return ZJQ_EINVAL;
    }
    char reason [512];
    zjq_cert_t *mine = zjq_cert_load (secret_file, true, reason, sizeof reason);
    zjq_cert_t *broker = mine ? zjq_cert_load (broker_key_file, false, reason, sizeof reason)
                              : NULL;
    if (!mine || !broker) {
        if (error && error_size)
            snprintf (error, error_size, "%s%s", mine ? "broker key " : "", reason);
        zjq_cert_destroy (&mine);
        return ZJQ_EKEY;
    }
    memcpy (self->public_key, zjq_cert_public_key (mine), ZJQ_CERT_KEY_TEXT);
    memcpy (self->secret_key, zjq_cert_secret_key (mine), ZJQ_CERT_KEY_TEXT);
    memcpy (self->server_key, zjq_cert_public_key (broker), ZJQ_CERT_KEY_TEXT);
    zjq_cert_destroy (&mine);
    zjq_cert_destroy (&broker);
    return 0;
}

zjq_worker_t *
zjq_worker_new (const char *endpoint)
{
    if (!endpoint || !strstr (endpoint, "://") || strstr (endpoint, "://") == endpoint
    ||  strlen (strstr (endpoint, "://")) <= 3)
        return NULL;
    zjq_worker_t *self = (zjq_worker_t *) calloc (1, sizeof (zjq_worker_t));
    if (!self)
        return NULL;
    self->endpoint = strdup (endpoint);
    self->stop_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!self->endpoint || self->stop_fd < 0) {
        free (self->endpoint);
        if (self->stop_fd >= 0)
            close (self->stop_fd);
        free (self);
        return NULL;
    }
    self->concurrency = 1;
    self->prefetch = ZJQ_CREDIT_ADAPTIVE;
    self->heartbeat_ms = 1000;
    self->grace_ms = 30000;
    self->max_result = 16 * 1024 * 1024;
    self->signal_fd = -1;
    atomic_init (&self->stop_request, ZJQ_WORKER_STOP_NONE);
    atomic_init (&self->running, false);

    uint16_t random = 0;
    if (getrandom (&random, sizeof random, 0) != (ssize_t) sizeof random)
        random = (uint16_t) (zjq_mono_ms () ^ getpid ());
    snprintf (self->id, sizeof self->id, "%.200s/%d/%04x",
              zjq_hostname (), (int) getpid (), (unsigned) random);
    return self;
}

void
zjq_worker_destroy (zjq_worker_t **self_p)
{
    assert (self_p);
    zjq_worker_t *self = *self_p;
    if (self) {
        assert (!atomic_load (&self->running));
        explicit_bzero (self->secret_key, sizeof self->secret_key);
        for (size_t i = 0; i < self->handler_count; i++)
            free (self->handlers [i].queue);
        close (self->stop_fd);
        free (self->endpoint);
        free (self);
        *self_p = NULL;
    }
}

int
zjq_worker_handle (zjq_worker_t *self, const char *queue, zjq_handler_fn *handler, void *arg)
{
    assert (self);
    if (atomic_load (&self->running))
        return ZJQ_ESTATE;
    if (!handler || !zjq_proto_queue_name_valid (queue) || zjq_worker_handler_lookup (self, queue)
    ||  self->handler_count >= ZJQ_WORKER_MAX_QUEUES)
        return ZJQ_EINVAL;
    char *copy = strdup (queue);
    if (!copy)
        return ZJQ_ENOMEM;
    zjq_worker_handler_t *entry = &self->handlers [self->handler_count++];
    entry->queue = copy;
    entry->fn = handler;
    entry->arg = arg;
    return 0;
}

int
zjq_worker_set_concurrency (zjq_worker_t *self, int concurrency)
{
    assert (self);
    if (atomic_load (&self->running))
        return ZJQ_ESTATE;
    if (concurrency < 1 || concurrency > 1000)
        return ZJQ_EINVAL;
    self->concurrency = concurrency;
    return 0;
}

int
zjq_worker_set_inline (zjq_worker_t *self, bool inline_handlers)
{
    assert (self);
    if (atomic_load (&self->running))
        return ZJQ_ESTATE;
    self->inline_handlers = inline_handlers;
    return 0;
}

int
zjq_worker_set_prefetch (zjq_worker_t *self, int prefetch)
{
    assert (self);
    if (atomic_load (&self->running))
        return ZJQ_ESTATE;
    if (prefetch < ZJQ_CREDIT_ADAPTIVE || prefetch > ZJQ_CREDIT_PREFETCH_MAX)
        return ZJQ_EINVAL;
    self->prefetch = prefetch;
    return 0;
}

int
zjq_worker_set_heartbeat (zjq_worker_t *self, int heartbeat_ms)
{
    assert (self);
    if (atomic_load (&self->running))
        return ZJQ_ESTATE;
    if (heartbeat_ms < 100 || heartbeat_ms > 60000)
        return ZJQ_EINVAL;
    self->heartbeat_ms = heartbeat_ms;
    return 0;
}

int
zjq_worker_set_grace (zjq_worker_t *self, int grace_ms)
{
    assert (self);
    if (atomic_load (&self->running))
        return ZJQ_ESTATE;
    if (grace_ms < 0)
        return ZJQ_EINVAL;
    self->grace_ms = grace_ms;
    return 0;
}

int
zjq_worker_set_max_result (zjq_worker_t *self, size_t bytes)
{
    assert (self);
    if (atomic_load (&self->running))
        return ZJQ_ESTATE;
    self->max_result = bytes;
    return 0;
}

const char *
zjq_worker_id (zjq_worker_t *self)
{
    assert (self);
    return self->id;
}

