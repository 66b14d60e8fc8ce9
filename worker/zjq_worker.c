/*  zjq_worker.c: the zjq worker library (see zjq_worker.h, docs/protocol.md).

    Threads. The thread that calls zjq_worker_run () owns the connection to
    the broker. It polls, in one zmq_poll with a timeout taken from the
    nearest timer: the DEALER socket, a signalfd for SIGTERM and SIGINT, the
    eventfd that zjq_worker_stop () writes, and the eventfd that handler
    threads write when a task finished or has progress to report. Timers:
    heartbeat to send, broker liveness, reconnect backoff, task deadlines,
    the grace period.

    Handler threads (one per concurrency slot) take tasks from the pool's
    FIFO, run the handler and put the task on the pool's done list. So never
    more than `concurrency` handlers run, and jobs that arrive while every
    slot is busy (with live or with aborted tasks) wait in the FIFO. The
    credit announced to the broker is concurrency + prefetch, so that up to
    `prefetch` jobs wait in the FIFO and a slot that frees up starts its next
    job without a round trip to the broker.

    Handoff cost. Every crossing between threads is batched: the main thread
    hands all the JOBs of one read batch to the FIFO under one lock and
    wakes one idle thread, which wakes the next only if work is left when it
    takes its task, so threads join one by one while a backlog lasts and
    short jobs do not wake a herd of threads (each wake-up is a context
    switch that costs more than an echo job); a handler thread
    puts its finished task on the done list and takes its next one in the
    same critical section, and writes the eventfd only when no wake is on
    its way already (pool->wake_pending); the main thread then takes the
    whole done list at once and sends every result in one pass.

    Ownership. The main thread creates a task on JOB and destroys it after it
    reported it (or decided to discard it). A handler thread touches a task
    only between taking it from the FIFO and putting it on the done list.
    Shared mutable state is guarded by the pool's one mutex, except the
    cancelled flag, which is atomic so that handlers can poll it cheaply.
    If handlers do not return within a bound after the worker stopped, the
    pool is orphaned: each remaining thread destroys its own task and the
    last one out frees the pool, so zjq_worker_run () never waits forever.  */

#include "zjq_worker.h"
#include "zjq_cert.h"
#include "zjq_jobid.h"
#include "zjq_proto.h"
#include "zjq_log.h"
#include "zjq_batch.h"
#include "zjq_util.h"

#include <czmq.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define s_MAX_QUEUES         64      //  READY carries 1-64 queues
#define s_ERROR_MAX          4096    //  zjq_task_fail text, with NUL
#define s_PROGRESS_TEXT_MAX  256     //  PROGRESS message, bytes
#define s_REASON_MAX         64
#define s_BACKOFF_MIN_MS     250
#define s_BACKOFF_MAX_MS     8000
#define s_FINAL_LINGER_MS    2000    //  for the last WORK_RESULTs and DISCONNECT
#define s_HANDLER_WAIT_MS    5000    //  on stop: wait this long for aborted handlers
#define s_RECV_BATCH         256     //  messages read per poll round
#define s_SPARE_TASKS_MAX    1024    //  recycled tasks kept by the main thread

#define s_STOP_NONE          0
#define s_STOP_GRACEFUL      1
#define s_STOP_ABORT         2

typedef enum {
    s_TASK_QUEUED,              //  in pool's FIFO, or in worker->incoming
    s_TASK_RUNNING,             //  a handler thread has it
    s_TASK_DONE                 //  the handler returned (or never will run)
} s_task_state_t;

typedef enum {
    s_PHASE_RUNNING,            //  taking jobs
    s_PHASE_DRAINING            //  stop requested: running tasks may finish
} s_phase_t;

typedef struct _s_pool_t s_pool_t;

struct _zjq_task_t {
    s_pool_t *pool;             //  the pool that runs it
    char *id;                   //  job id: id_buf, or a heap copy if longer
    char id_buf [ZJQ_JOBID_MAX];
    char queue [ZJQ_QUEUE_NAME_MAX + 1];  //  queue it came from
    int attempt;                //  attempt number from JOB
    zframe_t *payload;          //  job payload (never NULL)
    zjq_handler_fn *handler;    //  handler for the queue
    void *handler_arg;          //  its argument
    size_t max_result;          //  largest result allowed
    int64_t deadline;           //  monotonic ms; INT64_MAX if no timeout
    int64_t started;            //  monotonic ms when the handler started; 0 if never
    int64_t finished;           //  monotonic ms when it returned
    atomic_bool cancelled;      //  set once, by the main thread
    //  Guarded by pool->lock
    s_task_state_t state;       //  where the task is
    pid_t child;                //  registered child process group, or 0
    bool progress_pending;      //  on pool->progress, not sent yet
    double progress;            //  latest fraction reported
    char progress_text [s_PROGRESS_TEXT_MAX + 1];   //  latest message
    //  Main thread only
    bool aborted;               //  result is discarded (reconnect or abort)
    char reason [s_REASON_MAX]; //  why it was cancelled
    zjq_task_t *prev;           //  links in the FIFO (main thread's incoming
    zjq_task_t *next;           //  batch, the pool's FIFO, or its done list)
    void *handle;               //  handle in worker->tasks
    //  The running handler's, then the main thread's after DONE
    int rc;                     //  handler's return code
    zframe_t *result;           //  result set by the handler, or NULL
    size_t too_big;             //  size of a result that was refused, or 0
    bool error_set;             //  zjq_task_fail was called
    char *error;                //  its text (s_ERROR_MAX bytes), or NULL
    int exit_code;              //  zjq_task_set_exit: process exit status, or -1
    int exit_signal;            //  ... the signal that ended it, or 0
    zjq_task_t *next_spare;     //  main thread's free list
};

struct _s_pool_t {
    pthread_mutex_t lock;       //  guards everything below and task state
    pthread_cond_t work;        //  signalled when pending grows or on shutdown
    pthread_cond_t cancelled;   //  broadcast when a task is cancelled
                                //  (zjq_task_wait_cancelled; CLOCK_MONOTONIC)
    zjq_task_t *pending_head;   //  tasks waiting for a handler thread (FIFO,
    zjq_task_t *pending_tail;   //  linked by prev/next)
    zjq_task_t *done_head;      //  tasks whose handler returned, in order
    zjq_task_t *done_tail;      //  (linked by next)
    zlistx_t *progress;         //  tasks with progress to send
    int idle;                   //  threads waiting for work
    int waking;                 //  of those, signalled and not running yet
    int wake_fd;                //  eventfd: the main loop polls it
    bool wake_pending;          //  wake_fd written since the last collect
    bool shutdown;              //  threads exit when they see it
    bool orphaned;              //  the worker left; threads clean up after themselves
    int refs;                   //  the worker + each live thread
    int nthreads;               //  threads started
    pthread_t *threads;         //  their ids
};

typedef struct {
    char *queue;                //  queue name
    zjq_handler_fn *fn;         //  handler
    void *arg;                  //  its argument
} s_handler_t;

struct _zjq_worker_t {
    char *endpoint;             //  broker endpoint
    char id [256];              //  "host/pid/xxxx"
    s_handler_t handlers [s_MAX_QUEUES];    //  registered queues
    size_t handler_count;       //  how many
    int concurrency;            //  handler threads
    bool inline_handlers;       //  run handlers on this thread, no handler threads
    int prefetch;               //  extra credit; -1: equal to concurrency
    int heartbeat_ms;           //  heartbeat interval
    int grace_ms;               //  grace period on graceful stop
    size_t max_result;          //  largest result
    int stop_fd;                //  eventfd written by zjq_worker_stop
    atomic_int stop_request;    //  s_STOP_*
    atomic_bool running;        //  inside zjq_worker_run
    //  State of a run, main thread only
    void *ctx;                  //  libzmq context
    void *socket;               //  DEALER to the broker, NULL while backing off
    zjq_inbox_t *inbox;         //  reads it, a BATCH's messages one by one
    zjq_outbox_t *outbox;       //  what this turn sends, in one BATCH if several
    bool greeted;               //  got a message on this connection
    int signal_fd;              //  SIGTERM/SIGINT
    int signals_seen;           //  count, the second one aborts
    s_pool_t *pool;             //  handler threads
    zjq_task_t *incoming_head;  //  JOBs of this read batch, not yet handed
    zjq_task_t *incoming_tail;  //  to the pool (see s_hand_over)
    int incoming_count;         //  how many
    zjq_task_t *spare_tasks;    //  recycled tasks (linked by next_spare)
    size_t spare_task_count;    //  how many
    zlistx_t *tasks;            //  every task not yet reported or discarded
    s_phase_t phase;            //  running or draining
    int64_t last_send;          //  monotonic ms of the last message sent
    int64_t last_recv;          //  monotonic ms of the last message received
    int64_t connect_at;         //  when to open the next connection
    int64_t grace_deadline;     //  end of the grace period while draining
    int backoff_ms;             //  delay before the next reconnect
    //  CURVE (zjq_worker_set_curve), or all "" for plaintext
    char public_key [ZJQ_CERT_KEY_TEXT];    //  ours, Z85
    char secret_key [ZJQ_CERT_KEY_TEXT];    //  ours, Z85
    char server_key [ZJQ_CERT_KEY_TEXT];    //  the broker's, Z85
    void *monitor;              //  PAIR reading the socket's handshake failures
    unsigned monitors;          //  monitors made: each gets its own endpoint
};


//  --------------------------------------------------------------------------
//  Small helpers

//  Wake whoever polls an eventfd. Cannot fail in a way we could handle:
//  the counter does not overflow at one write per event.
static void
s_eventfd_signal (int fd)
{
    uint64_t one = 1;
    ssize_t rc = write (fd, &one, sizeof one);
    (void) rc;
}

static void
s_eventfd_drain (int fd)
{
    uint64_t value;
    ssize_t rc = read (fd, &value, sizeof value);
    (void) rc;
}

//  Copy at most max bytes of text into buf (max + 1 bytes), not cutting a
//  UTF-8 sequence in half.
static void
s_copy_utf8 (char *buf, const char *text, size_t max)
{
    size_t len = strlen (text);
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char) text [len] & 0xC0) == 0x80)
            len--;
    }
    memcpy (buf, text, len);
    buf [len] = 0;
}


//  --------------------------------------------------------------------------
//  Tasks

//  Create a task, from spare (a recycled task, or NULL); takes ownership of
//  *payload_p. Returns NULL on out of memory (the payload is destroyed).
static zjq_task_t *
s_task_new (s_pool_t *pool, zjq_task_t *spare, const char *id, const char *queue,
            int attempt, zframe_t **payload_p, s_handler_t *handler, size_t max_result,
            int64_t deadline)
{
    zjq_task_t *self = spare;
    if (self)
        memset (self, 0, sizeof (zjq_task_t));
    else
        self = (zjq_task_t *) calloc (1, sizeof (zjq_task_t));
    size_t id_size = strlen (id) + 1;
    if (self)
        self->id = id_size <= sizeof self->id_buf ? self->id_buf : malloc (id_size);
    if (!self || !self->id) {
        free (self);
        zframe_destroy (payload_p);
        return NULL;
    }
    memcpy (self->id, id, id_size);
    s_copy_utf8 (self->queue, queue, ZJQ_QUEUE_NAME_MAX);
    self->pool = pool;
    self->attempt = attempt;
    self->payload = *payload_p;
    *payload_p = NULL;
    if (!self->payload)
        self->payload = zframe_new (NULL, 0);
    self->handler = handler->fn;
    self->handler_arg = handler->arg;
    self->max_result = max_result;
    self->deadline = deadline;
    self->exit_code = -1;
    atomic_init (&self->cancelled, false);
    self->state = s_TASK_QUEUED;
    if (!self->payload) {
        if (self->id != self->id_buf)
            free (self->id);
        free (self);
        return NULL;
    }
    return self;
}

//  Free what a task holds, not the task itself.
static void
s_task_clear (zjq_task_t *self)
{
    if (self->id != self->id_buf)
        free (self->id);
    self->id = NULL;
    free (self->error);
    self->error = NULL;
    zframe_destroy (&self->payload);
    zframe_destroy (&self->result);
}

static void
s_task_destroy (zjq_task_t **self_p)
{
    assert (self_p);
    zjq_task_t *self = *self_p;
    if (self) {
        s_task_clear (self);
        free (self);
        *self_p = NULL;
    }
}

//  Run the handler on a handler thread.
static void
s_task_execute (zjq_task_t *self)
{
    self->started = zjq_mono_ms ();
    if (atomic_load (&self->cancelled))
        self->rc = -1;
    else
        self->rc = self->handler (self, self->handler_arg);
    self->finished = zjq_mono_ms ();
}


//  --------------------------------------------------------------------------
//  The pool of handler threads

static void
s_pool_free (s_pool_t *self)
{
    zlistx_destroy (&self->progress);
    if (self->wake_fd >= 0)
        close (self->wake_fd);
    pthread_cond_destroy (&self->work);
    pthread_cond_destroy (&self->cancelled);
    pthread_mutex_destroy (&self->lock);
    free (self->threads);
    free (self);
}

//  Drop one reference; the last one frees the pool.
static void
s_pool_release (s_pool_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool last = --self->refs == 0;
    pthread_mutex_unlock (&self->lock);
    if (last)
        s_pool_free (self);
}

//  Write the eventfd the main thread polls. Lock not held.
static void
s_pool_wake (s_pool_t *self)
{
    s_eventfd_signal (self->wake_fd);
}

//  Take the next task from the FIFO, or NULL. Lock held.
static zjq_task_t *
s_pending_pop (s_pool_t *self)
{
    zjq_task_t *task = self->pending_head;
    if (task) {
        self->pending_head = task->next;
        if (self->pending_head)
            self->pending_head->prev = NULL;
        else
            self->pending_tail = NULL;
        task->prev = task->next = NULL;
    }
    return task;
}

//  Take a task out of the middle of the FIFO. Lock held.
static void
s_pending_remove (s_pool_t *self, zjq_task_t *task)
{
    if (task->prev)
        task->prev->next = task->next;
    else
        self->pending_head = task->next;
    if (task->next)
        task->next->prev = task->prev;
    else
        self->pending_tail = task->prev;
    task->prev = task->next = NULL;
}

//  A handler returned: put the task on the done list (or destroy it if the
//  worker left). Returns true if the caller must wake the main thread once
//  it dropped the lock. Lock held.
static bool
s_pool_finish (s_pool_t *self, zjq_task_t *task)
{
    task->state = s_TASK_DONE;
    task->child = 0;
    if (self->orphaned) {
        s_task_destroy (&task);
        return false;
    }
    task->next = NULL;
    if (self->done_tail)
        self->done_tail->next = task;
    else
        self->done_head = task;
    self->done_tail = task;
    if (self->wake_pending)
        return false;
    self->wake_pending = true;
    return true;
}

static void *
s_handler_thread (void *args)
{
    s_pool_t *pool = (s_pool_t *) args;
    zjq_task_t *task = NULL;
    pthread_mutex_lock (&pool->lock);
    while (true) {
        //  Report the last task and take the next in one critical section
        bool wake = task && s_pool_finish (pool, task);
        task = NULL;
        if (wake && !pool->pending_head) {
            //  About to sleep: wake the main thread first
            pthread_mutex_unlock (&pool->lock);
            s_pool_wake (pool);
            wake = false;
            pthread_mutex_lock (&pool->lock);
        }
        while (!pool->shutdown && !pool->pending_head) {
            pool->idle++;
            pthread_cond_wait (&pool->work, &pool->lock);
            pool->idle--;
            if (pool->waking)
                pool->waking--;
        }
        if (pool->shutdown) {
            if (wake) {
                pthread_mutex_unlock (&pool->lock);
                s_pool_wake (pool);
                pthread_mutex_lock (&pool->lock);
            }
            break;
        }
        task = s_pending_pop (pool);
        task->state = s_TASK_RUNNING;
        //  Work left for another thread: wake one (which does the same).
        //  Threads join one by one while a backlog lasts, so short tasks
        //  are run by the threads already awake instead of a herd of them.
        if (pool->pending_head && pool->idle > pool->waking && !pool->waking) {
            pool->waking++;
            pthread_cond_signal (&pool->work);
        }
        pthread_mutex_unlock (&pool->lock);
        if (wake)
            s_pool_wake (pool);

        s_task_execute (task);

        pthread_mutex_lock (&pool->lock);
    }
    bool last = --pool->refs == 0;
    pthread_mutex_unlock (&pool->lock);
    if (last)
        s_pool_free (pool);
    return NULL;
}

//  Create a pool and start its threads. They inherit the caller's signal
//  mask. Returns NULL on failure (nothing left running).
static s_pool_t *
s_pool_new (int nthreads)
{
    s_pool_t *self = (s_pool_t *) calloc (1, sizeof (s_pool_t));
    if (!self)
        return NULL;
    self->wake_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    self->threads = (pthread_t *) calloc ((size_t) nthreads, sizeof (pthread_t));
    self->progress = zlistx_new ();
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->work, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->cancelled, &attr);
    pthread_condattr_destroy (&attr);
    self->refs = 1;
    if (self->wake_fd < 0 || !self->threads || !self->progress) {
        s_pool_free (self);
        return NULL;
    }
    for (int i = 0; i < nthreads; i++) {
        pthread_mutex_lock (&self->lock);
        self->refs++;
        pthread_mutex_unlock (&self->lock);
        if (pthread_create (&self->threads [i], NULL, s_handler_thread, self) != 0) {
            zjq_log_error ("worker_thread_failed", "error=%s", strerror (errno));
            pthread_mutex_lock (&self->lock);
            self->refs--;
            self->shutdown = true;
            pthread_cond_broadcast (&self->work);
            pthread_mutex_unlock (&self->lock);
            for (int j = 0; j < i; j++)
                pthread_join (self->threads [j], NULL);
            s_pool_release (self);
            return NULL;
        }
        self->nthreads++;
    }
    return self;
}


//  --------------------------------------------------------------------------
//  Sending

//  Send a message to the broker (never blocks); destroys it. Returns 0, or
//  -1 if there is no connection or the send queue is full (it is dropped:
//  the broker's own timers recover from a lost message).
static int
s_send (zjq_worker_t *self, zjq_msg_t **msg_p)
{
    if (!self->socket) {
        zjq_msg_destroy (msg_p);
        return -1;
    }
    zjq_outbox_send (self->outbox, msg_p);
    self->last_send = zjq_mono_ms ();
    return 0;
}

//  The outbox could not send (no connection, or the send queue is full).
static void
s_send_failed (void *arg, const byte *routing_id, size_t size, int command, int error)
{
    (void) arg; (void) routing_id; (void) size;
    zjq_log_warning ("send_failed", "command=%s error=%s",
                     zjq_proto_command_name (command), zmq_strerror (error));
}

//  A WORK_RESULT. result_p may be NULL (empty payload); it is taken.
static zjq_msg_t *
s_result_new (const char *id, int64_t attempt, const char *status,
              const char *error, zframe_t **result_p, int64_t duration_ms)
{
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_WORK_RESULT);
    zjq_msg_put_str (msg, "id", id);
    zjq_msg_put_int (msg, "attempt", attempt);
    zjq_msg_put_str (msg, "status", status);
    if (error)
        zjq_msg_put_str (msg, "error", error);
    zjq_msg_put_int (msg, "duration_ms", duration_ms < 0 ? 0 : duration_ms);
    if (result_p && *result_p)
        zjq_msg_set_payload (msg, result_p);
    else
        zjq_msg_set_payload_mem (msg, "", 0);
    return msg;
}

//  Send WORK_RESULT. result_p may be NULL (empty payload); it is taken.
static void
s_send_result (zjq_worker_t *self, const char *id, int64_t attempt, const char *status,
               const char *error, zframe_t **result_p, int64_t duration_ms)
{
    zjq_msg_t *msg = s_result_new (id, attempt, status, error, result_p, duration_ms);
    s_send (self, &msg);
}

//  Send DISCONNECT, with drain true or without the key.
static void
s_send_disconnect (zjq_worker_t *self, bool drain)
{
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_DISCONNECT);
    if (drain)
        zjq_msg_put_bool (msg, "drain", true);
    s_send (self, &msg);
}

//  The credit announced in READY: handler threads plus prefetched jobs.
static int
s_capacity (zjq_worker_t *self)
{
    int slots = self->inline_handlers ? 1 : self->concurrency;
    return slots + (self->prefetch < 0 ? slots : self->prefetch);
}

static void
s_send_ready (zjq_worker_t *self)
{
    const char *queues [s_MAX_QUEUES];
    for (size_t i = 0; i < self->handler_count; i++)
        queues [i] = self->handlers [i].queue;
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_READY);
    zjq_msg_put_str (msg, "worker_id", self->id);
    zjq_msg_put_strlist (msg, "queues", queues, self->handler_count);
    zjq_msg_put_int (msg, "capacity", s_capacity (self));
    zjq_msg_put_int (msg, "heartbeat_ms", self->heartbeat_ms);
    zjq_msg_put_str (msg, "host", zjq_hostname ());
    zjq_msg_put_int (msg, "pid", (int64_t) getpid ());
    zjq_msg_put_str (msg, "version", zjq_version ());
    s_send (self, &msg);
}


//  --------------------------------------------------------------------------
//  Task bookkeeping on the main thread

//  Cancel a task: set its flag, wake zjq_task_wait_cancelled and kill its
//  child's process group. The first reason sticks. Returns true if the task
//  was still waiting in the FIFO: it is then taken out (it will never run)
//  and the caller reports or discards it.
static bool
s_task_cancel (zjq_worker_t *self, zjq_task_t *task, const char *reason)
{
    if (!atomic_load (&task->cancelled))
        snprintf (task->reason, sizeof task->reason, "%s", reason);
    assert (self->incoming_count == 0);     //  s_hand_over came first
    bool was_queued = false;
    pthread_mutex_lock (&self->pool->lock);
    atomic_store (&task->cancelled, true);
    pthread_cond_broadcast (&self->pool->cancelled);
    if (task->child > 0)
        kill (-task->child, SIGKILL);
    if (task->state == s_TASK_QUEUED) {
        s_pending_remove (self->pool, task);
        task->state = s_TASK_DONE;
        was_queued = true;
    }
    pthread_mutex_unlock (&self->pool->lock);
    return was_queued;
}

//  Forget a task the main thread owns: take it off the task list, recycle
//  it.
static void
s_task_forget (zjq_worker_t *self, zjq_task_t **task_p)
{
    zjq_task_t *task = *task_p;
    zlistx_detach (self->tasks, task->handle);
    if (self->spare_task_count < s_SPARE_TASKS_MAX) {
        s_task_clear (task);
        task->next_spare = self->spare_tasks;
        self->spare_tasks = task;
        self->spare_task_count++;
        *task_p = NULL;
    }
    else
        s_task_destroy (task_p);
}

//  Report a task whose handler returned (or that never ran), then forget it.
//  Aborted tasks are not reported: the broker has requeued them already or
//  will.
static void
s_task_report (zjq_worker_t *self, zjq_task_t **task_p)
{
    zjq_task_t *task = *task_p;
    int64_t duration = task->started ? task->finished - task->started : 0;
    if (task->aborted)
        ;
    else
    if (atomic_load (&task->cancelled))
        s_send_result (self, task->id, task->attempt, "cancelled", task->reason, NULL, duration);
    else {
        char too_big [128];
        snprintf (too_big, sizeof too_big, "result of %zu bytes exceeds the limit of %zu",
                  task->too_big, task->max_result);
        bool ok = task->rc == 0 && task->too_big == 0;
        const char *error = ok ? NULL
                          : task->rc == 0 ? too_big
                          : task->error_set ? task->error
                          : task->too_big ? too_big
                          : "handler failed";
        zjq_msg_t *msg = s_result_new (task->id, task->attempt, ok ? "ok" : "error", error,
                                       ok ? &task->result : NULL, duration);
        //  How a process the handler ran ended (zjq_task_set_exit)
        if (task->exit_code >= 0)
            zjq_msg_put_int (msg, "exit_code", task->exit_code);
        if (task->exit_signal > 0)
            zjq_msg_put_int (msg, "signal", task->exit_signal);
        s_send (self, &msg);
    }
    s_task_forget (self, task_p);
}

//  Tasks that still belong to the broker connection (not aborted).
static size_t
s_live_tasks (zjq_worker_t *self)
{
    size_t count = 0;
    for (zjq_task_t *task = (zjq_task_t *) zlistx_first (self->tasks);
         task; task = (zjq_task_t *) zlistx_next (self->tasks))
        if (!task->aborted)
            count++;
    return count;
}

static zjq_task_t *
s_task_lookup (zjq_worker_t *self, const char *id, int64_t attempt)
{
    for (zjq_task_t *task = (zjq_task_t *) zlistx_first (self->tasks);
         task; task = (zjq_task_t *) zlistx_next (self->tasks))
        if (!task->aborted && task->attempt == attempt && streq (task->id, id))
            return task;
    return NULL;
}

//  Abort every live task: its result will be discarded, running handlers are
//  cancelled (children killed), queued ones are dropped.
static void
s_abort_tasks (zjq_worker_t *self, const char *reason)
{
    zjq_task_t *task = (zjq_task_t *) zlistx_first (self->tasks);
    while (task) {
        zjq_task_t *next = (zjq_task_t *) zlistx_next (self->tasks);
        if (!task->aborted) {
            task->aborted = true;
            if (s_task_cancel (self, task, reason))
                s_task_forget (self, &task);
        }
        task = next;
    }
}

//  Send the results and progress that handler threads left for us: take
//  the whole done list at once, send the progress (of tasks still running
//  and of those done), then every result.
static void
s_collect (zjq_worker_t *self)
{
    s_pool_t *pool = self->pool;
    pthread_mutex_lock (&pool->lock);
    pool->wake_pending = false;
    zjq_task_t *done = pool->done_head;
    pool->done_head = pool->done_tail = NULL;
    //  A task on the done list no longer adds progress, so once the progress
    //  list is empty none of them is on it any more, and they may go
    zjq_task_t *task;
    while ((task = (zjq_task_t *) zlistx_detach (pool->progress, NULL))) {
        task->progress_pending = false;
        double fraction = task->progress;
        char text [s_PROGRESS_TEXT_MAX + 1];
        memcpy (text, task->progress_text, sizeof text);
        pthread_mutex_unlock (&pool->lock);
        if (!task->aborted && !atomic_load (&task->cancelled)) {
            zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_PROGRESS);
            zjq_msg_put_str (msg, "id", task->id);
            zjq_msg_put_int (msg, "attempt", task->attempt);
            zjq_msg_put_double (msg, "progress", fraction);
            if (*text)
                zjq_msg_put_str (msg, "message", text);
            s_send (self, &msg);
        }
        pthread_mutex_lock (&pool->lock);
    }
    pthread_mutex_unlock (&pool->lock);
    while (done) {
        task = done;
        done = task->next;
        task->next = NULL;
        s_task_report (self, &task);
    }
}

//  Cancel live tasks past their deadline (reason "timeout"). Returns the
//  nearest deadline still ahead, or INT64_MAX.
static int64_t
s_check_deadlines (zjq_worker_t *self, int64_t now)
{
    int64_t next = INT64_MAX;
    zjq_task_t *task = (zjq_task_t *) zlistx_first (self->tasks);
    while (task) {
        zjq_task_t *next_task = (zjq_task_t *) zlistx_next (self->tasks);
        if (!task->aborted && !atomic_load (&task->cancelled)) {
            if (task->deadline <= now) {
                zjq_log_info ("job_timeout", "job=%s attempt=%d", task->id, task->attempt);
                if (s_task_cancel (self, task, "timeout"))
                    s_task_report (self, &task);
            }
            else
            if (task->deadline < next)
                next = task->deadline;
        }
        task = next_task;
    }
    return next;
}


//  --------------------------------------------------------------------------
//  The connection

static void
s_close_socket (zjq_worker_t *self, int linger_ms)
{
    if (self->monitor) {
        zmq_socket_monitor (self->socket, NULL, 0);
        zmq_close (self->monitor);
        self->monitor = NULL;
    }
    if (self->socket) {
        if (self->outbox)
            zjq_outbox_flush (self->outbox);
        zjq_outbox_destroy (&self->outbox);
        zjq_inbox_destroy (&self->inbox);
        zmq_setsockopt (self->socket, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close (self->socket);
        self->socket = NULL;
    }
}

//  Make the new socket a CURVE client, and watch its handshakes with a
//  monitor (a refused key is otherwise only a silent broker). Returns 0 or
//  -1 (errno set).
static int
s_curve_apply (zjq_worker_t *self)
{
    if (zmq_setsockopt (self->socket, ZMQ_CURVE_SERVERKEY, self->server_key, 40)
    ||  zmq_setsockopt (self->socket, ZMQ_CURVE_PUBLICKEY, self->public_key, 40)
    ||  zmq_setsockopt (self->socket, ZMQ_CURVE_SECRETKEY, self->secret_key, 40))
        return -1;
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://zjq-worker-monitor-%u", ++self->monitors);
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
               | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor (self->socket, endpoint, events) == 0) {
        self->monitor = zmq_socket (self->ctx, ZMQ_PAIR);
        if (self->monitor && zmq_connect (self->monitor, endpoint) != 0) {
            zmq_close (self->monitor);
            self->monitor = NULL;
        }
        if (!self->monitor)
            zmq_socket_monitor (self->socket, NULL, 0);
    }
    return 0;                   //  works without the monitor, only less clearly
}

//  A handshake failed: say why, and retry with backoff (libzmq would retry
//  at once, for ever).
static void s_connection_lost (zjq_worker_t *self, const char *why);

static void
s_read_monitor (zjq_worker_t *self)
{
    int event;
    uint32_t value;
    if (!zjq_monitor_recv (self->monitor, &event, &value))
        return;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        s_connection_lost (self, "the broker refused this worker's CURVE key "
                                 "(not in its allow-lists)");
    else
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        s_connection_lost (self, "CURVE handshake failed: the broker does not use CURVE");
    else
        s_connection_lost (self, "CURVE handshake failed (wrong broker key?)");
}

//  Open a new connection and send READY. On failure, schedules a retry.
static void
s_connect (zjq_worker_t *self, int64_t now)
{
    self->socket = zmq_socket (self->ctx, ZMQ_DEALER);
    if (self->socket) {
        self->inbox = zjq_inbox_new (self->socket, false);
        self->outbox = zjq_outbox_new (self->socket, s_send_failed, self);
        if (!self->inbox || !self->outbox) {
            zjq_log_error ("out_of_memory", "what=%s", "connection batching");
            s_close_socket (self, 0);
        }
    }
    if (self->socket && *self->secret_key && s_curve_apply (self) != 0) {
        zjq_log_error ("curve_failed", "error=%s", zmq_strerror (errno));
        s_close_socket (self, 0);
    }
    if (!self->socket || zmq_connect (self->socket, self->endpoint) != 0) {
        zjq_log_error ("connect_failed", "broker=%s error=%s", self->endpoint,
                       zmq_strerror (errno));
        s_close_socket (self, 0);
        self->connect_at = now + self->backoff_ms;
        self->backoff_ms = self->backoff_ms * 2 > s_BACKOFF_MAX_MS ? s_BACKOFF_MAX_MS
                                                                   : self->backoff_ms * 2;
        return;
    }
    zjq_log_info ("connecting", "broker=%s worker=%s", self->endpoint, self->id);
    self->greeted = false;
    self->last_recv = now;
    s_send_ready (self);
    self->last_send = now;
}

//  The connection is gone (broker silent or DISCONNECT). Abort what runs,
//  close the socket and reconnect after the backoff delay, or, while
//  draining, give up: the worker is leaving anyway.
static void
s_connection_lost (zjq_worker_t *self, const char *why)
{
    int64_t now = zjq_mono_ms ();
    size_t live = s_live_tasks (self);
    s_abort_tasks (self, "connection lost");
    s_close_socket (self, 0);
    if (self->phase == s_PHASE_DRAINING) {
        zjq_log_warning ("connection_lost", "reason=%s abandoned=%zu draining=true", why, live);
        return;
    }
    zjq_log_warning ("connection_lost", "reason=%s abandoned=%zu reconnect_ms=%d",
                     why, live, self->backoff_ms);
    self->connect_at = now + self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > s_BACKOFF_MAX_MS ? s_BACKOFF_MAX_MS
                                                               : self->backoff_ms * 2;
}


//  --------------------------------------------------------------------------
//  Messages from the broker

static s_handler_t *
s_handler_lookup (zjq_worker_t *self, const char *queue)
{
    for (size_t i = 0; i < self->handler_count; i++)
        if (streq (self->handlers [i].queue, queue))
            return &self->handlers [i];
    return NULL;
}

static void
s_on_job (zjq_worker_t *self, zjq_msg_t *msg)
{
    const char *id = zjq_msg_get_str (msg, "id");
    int64_t attempt = 0;
    if (!id || !*id || !zjq_msg_get_int (msg, "attempt", &attempt)
    ||  attempt < 1 || attempt > INT_MAX) {
        zjq_log_warning ("bad_job", "reason=%s", "JOB without a valid id and attempt, dropped");
        return;
    }
    if (self->phase != s_PHASE_RUNNING) {
        s_send_result (self, id, attempt, "returned", "worker shutting down", NULL, 0);
        return;
    }
    const char *queue = zjq_msg_get_str (msg, "queue");
    if (!queue) {
        s_send_result (self, id, attempt, "error", "malformed JOB: no queue", NULL, 0);
        return;
    }
    s_handler_t *handler = s_handler_lookup (self, queue);
    if (!handler) {
        char error [ZJQ_QUEUE_NAME_MAX + 64];
        snprintf (error, sizeof error, "no handler for queue %.*s", ZJQ_QUEUE_NAME_MAX, queue);
        s_send_result (self, id, attempt, "error", error, NULL, 0);
        return;
    }
    int64_t now = zjq_mono_ms ();
    int64_t deadline = INT64_MAX;
    if (zjq_msg_has (msg, "timeout_ms")) {
        int64_t timeout_ms = 0;
        if (!zjq_msg_get_int (msg, "timeout_ms", &timeout_ms) || timeout_ms <= 0) {
            s_send_result (self, id, attempt, "error", "malformed JOB: bad timeout_ms", NULL, 0);
            return;
        }
        deadline = timeout_ms > INT64_MAX - now ? INT64_MAX : now + timeout_ms;
    }
    if (s_task_lookup (self, id, attempt)) {
        zjq_log_warning ("bad_job", "job=%s attempt=%d reason=%s", id, (int) attempt,
                         "duplicate JOB, dropped");
        return;
    }
    zframe_t *payload = zjq_msg_take_payload (msg);
    zjq_task_t *spare = self->spare_tasks;
    if (spare) {
        self->spare_tasks = spare->next_spare;
        self->spare_task_count--;
    }
    zjq_task_t *task = s_task_new (self->pool, spare, id, queue, (int) attempt, &payload,
                                   handler, self->max_result, deadline);
    if (!task) {
        s_send_result (self, id, attempt, "error", "worker out of memory", NULL, 0);
        return;
    }
    task->handle = zlistx_add_end (self->tasks, task);
    task->prev = self->incoming_tail;
    if (self->incoming_tail)
        self->incoming_tail->next = task;
    else
        self->incoming_head = task;
    self->incoming_tail = task;
    self->incoming_count++;
}

//  Hand the JOBs received so far to the handler threads: one lock, and a
//  wake for as many idle threads as there are new tasks (none if every
//  thread is busy: they look at the FIFO before they sleep). Called before
//  anything else looks at task states, and at the end of every read batch.
//  Inline handlers: run the JOBs of this read batch now, in order, and
//  report each.
static void
s_run_inline (zjq_worker_t *self)
{
    while (self->incoming_head) {
        zjq_task_t *task = self->incoming_head;
        self->incoming_head = task->next;
        task->prev = task->next = NULL;
        self->incoming_count--;
        task->state = s_TASK_RUNNING;
        s_task_execute (task);
        task->state = s_TASK_DONE;
        s_task_report (self, &task);
    }
    self->incoming_tail = NULL;
}

static void
s_hand_over (zjq_worker_t *self)
{
    if (self->incoming_count == 0)
        return;
    if (self->inline_handlers) {
        s_run_inline (self);
        return;
    }
    s_pool_t *pool = self->pool;
    pthread_mutex_lock (&pool->lock);
    if (pool->pending_tail) {
        pool->pending_tail->next = self->incoming_head;
        self->incoming_head->prev = pool->pending_tail;
    }
    else
        pool->pending_head = self->incoming_head;
    pool->pending_tail = self->incoming_tail;
    //  Wake one idle thread, unless one is on its way: it wakes the next
    //  if there is more than it can take (s_handler_thread)
    if (pool->idle > pool->waking && !pool->waking) {
        pool->waking++;
        pthread_cond_signal (&pool->work);
    }
    pthread_mutex_unlock (&pool->lock);
    self->incoming_head = self->incoming_tail = NULL;
    self->incoming_count = 0;
}

static void
s_on_cancel (zjq_worker_t *self, zjq_msg_t *msg)
{
    const char *id = zjq_msg_get_str (msg, "id");
    int64_t attempt = 0;
    if (!id || !zjq_msg_get_int (msg, "attempt", &attempt)) {
        zjq_log_warning ("bad_job_cancel", "reason=%s", "JOB_CANCEL without id and attempt, ignored");
        return;
    }
    zjq_task_t *task = s_task_lookup (self, id, attempt);
    if (!task)
        return;             //  already reported: the broker drops nothing
    const char *reason = zjq_msg_get_str (msg, "reason");
    if (!reason || !*reason)
        reason = "cancelled";
    if (s_task_cancel (self, task, reason))
        s_task_report (self, &task);
}

static void
s_on_message (zjq_worker_t *self, zjq_msg_t *msg)
{
    int command = zjq_msg_command (msg);
    if (command != ZJQ_CMD_JOB)
        s_hand_over (self);     //  a JOB_CANCEL may be for one of them
    if (zjq_msg_role (msg) != ZJQ_ROLE_BROKER) {
        zjq_log_warning ("unexpected_message", "command=%s reason=%s",
                         zjq_proto_command_name (command), "not from a broker, ignored");
        return;
    }
    int64_t code = 0;
    if (command == ZJQ_CMD_ERROR && zjq_msg_get_int (msg, "code", &code) && code == ZJQ_EDENIED) {
        //  Our key may not do this (a role or queue it lacks): retrying at
        //  once would not help, so back off like after a lost connection
        const char *text = zjq_msg_get_str (msg, "message");
        char why [300];
        snprintf (why, sizeof why, "broker denied access (%.200s)", text ? text : "EDENIED");
        s_connection_lost (self, why);
        return;
    }
    if (command == ZJQ_CMD_DISCONNECT) {
        const char *reason = zjq_msg_get_str (msg, "reason");
        char why [300];
        snprintf (why, sizeof why, "broker sent DISCONNECT (%.200s)",
                  reason ? reason : "no reason");
        s_connection_lost (self, why);
        return;
    }
    //  Anything else proves the connection works
    self->backoff_ms = s_BACKOFF_MIN_MS;
    if (!self->greeted) {
        self->greeted = true;
        zjq_log_info ("connected", "broker=%s worker=%s", self->endpoint, self->id);
    }
    switch (command) {
        case ZJQ_CMD_HEARTBEAT:
            break;
        case ZJQ_CMD_JOB:
            s_on_job (self, msg);
            break;
        case ZJQ_CMD_JOB_CANCEL:
            s_on_cancel (self, msg);
            break;
        case ZJQ_CMD_ERROR: {
            const char *text = zjq_msg_get_str (msg, "message");
            int64_t code = 0;
            zjq_msg_get_int (msg, "code", &code);
            zjq_log_warning ("broker_error", "code=%s message=%s",
                             zjq_errname ((int) code) ? zjq_errname ((int) code) : "?",
                             text ? text : "");
            break;
        }
        default: {
            const char *name = zjq_proto_command_name (command);
            zjq_log_warning ("unexpected_message", "command=%s reason=%s",
                             name ? name : "?", "ignored");
        }
    }
}

//  Read what the broker sent, a bounded batch at a time.
static void
s_recv_all (zjq_worker_t *self)
{
    for (int count = 0; count < s_RECV_BATCH && self->socket; count++) {
        zjq_msg_t *msg = NULL;
        zjq_recv_t rc = zjq_inbox_recv (self->inbox, &msg);
        if (rc == ZJQ_RECV_INTERRUPTED)
            break;
        self->last_recv = zjq_mono_ms ();
        if (rc == ZJQ_RECV_MALFORMED) {
            const char *error = zjq_msg_error (msg);
            zjq_log_warning ("malformed", "error=%s", error ? error : "?");
        }
        else
            s_on_message (self, msg);
        zjq_msg_destroy (&msg);
    }
    s_hand_over (self);
}


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
        if (self->signals_seen == 1 && atomic_load (&self->stop_request) == s_STOP_NONE) {
            zjq_log_info ("draining", "signal=%s grace_ms=%d msg=%s", strsignal (signum),
                          self->grace_ms, "finishing running jobs; send it again to abort them");
            s_request_stop (self, s_STOP_GRACEFUL);
        }
        else {
            zjq_log_info ("aborting", "signal=%s", strsignal (signum));
            s_request_stop (self, s_STOP_ABORT);
        }
    }
}

//  First step of a graceful stop: tell the broker, hand back queued jobs.
static void
s_begin_drain (zjq_worker_t *self, int64_t now)
{
    self->phase = s_PHASE_DRAINING;
    self->grace_deadline = now + self->grace_ms;
    if (!self->socket)
        return;
    s_send_disconnect (self, true);
    zjq_task_t *task = (zjq_task_t *) zlistx_first (self->tasks);
    while (task) {
        zjq_task_t *next = (zjq_task_t *) zlistx_next (self->tasks);
        if (!task->aborted) {
            bool queued = false;
            pthread_mutex_lock (&self->pool->lock);
            if (task->state == s_TASK_QUEUED) {
                s_pending_remove (self->pool, task);
                task->state = s_TASK_DONE;
                queued = true;
            }
            pthread_mutex_unlock (&self->pool->lock);
            if (queued) {
                s_send_result (self, task->id, task->attempt, "returned",
                               "worker shutting down", NULL, 0);
                s_task_forget (self, &task);
            }
        }
        task = next;
    }
    zjq_log_info ("draining", "running=%zu", s_live_tasks (self));
}

//  Last step of a run: abort what is left if asked to, say goodbye, wait a
//  bounded time for handler threads, and release the pool.
static void
s_finish (zjq_worker_t *self, bool abort)
{
    if (abort) {
        size_t live = s_live_tasks (self);
        s_abort_tasks (self, "worker stopping");
        if (live)
            zjq_log_info ("aborted", "jobs=%zu", live);
    }
    if (self->socket)
        s_send_disconnect (self, false);

    //  Wait for the handlers of aborted tasks to return
    int64_t until = zjq_mono_ms () + s_HANDLER_WAIT_MS;
    while (zlistx_size (self->tasks) > 0) {
        int64_t now = zjq_mono_ms ();
        if (now >= until)
            break;
        zmq_pollitem_t item = { NULL, self->pool->wake_fd, ZMQ_POLLIN, 0 };
        if (zmq_poll (&item, 1, (long) (until - now)) > 0) {
            s_eventfd_drain (self->pool->wake_fd);
            s_collect (self);
        }
    }
    //  Give the last messages time to leave, unless the broker never answered
    s_close_socket (self, self->greeted ? s_FINAL_LINGER_MS : 0);

    s_pool_t *pool = self->pool;
    self->pool = NULL;
    pthread_mutex_lock (&pool->lock);
    pool->shutdown = true;
    pthread_cond_broadcast (&pool->work);
    size_t stuck = zlistx_size (self->tasks);
    if (stuck) {
        //  Handlers that ignore cancellation: leave them the pool
        pool->orphaned = true;
        zjq_task_t *task;
        while ((task = pool->done_head)) {
            pool->done_head = task->next;
            s_task_destroy (&task);
        }
        pool->done_tail = NULL;
        zlistx_purge (pool->progress);
        zlistx_purge (self->tasks);     //  the threads destroy running tasks
    }
    pthread_mutex_unlock (&pool->lock);
    if (stuck) {
        zjq_log_error ("handlers_stuck", "handlers=%zu wait_ms=%d msg=%s", stuck, s_HANDLER_WAIT_MS,
                       "still running after cancellation; left behind");
        for (int i = 0; i < pool->nthreads; i++)
            pthread_detach (pool->threads [i]);
    }
    else
        for (int i = 0; i < pool->nthreads; i++)
            pthread_join (pool->threads [i], NULL);
    s_pool_release (pool);
}


//  --------------------------------------------------------------------------
//  Public API

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
    self->prefetch = -1;
    self->heartbeat_ms = 1000;
    self->grace_ms = 30000;
    self->max_result = 16 * 1024 * 1024;
    self->signal_fd = -1;
    atomic_init (&self->stop_request, s_STOP_NONE);
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
    if (!handler || !zjq_proto_queue_name_valid (queue) || s_handler_lookup (self, queue)
    ||  self->handler_count >= s_MAX_QUEUES)
        return ZJQ_EINVAL;
    char *copy = strdup (queue);
    if (!copy)
        return ZJQ_ENOMEM;
    s_handler_t *entry = &self->handlers [self->handler_count++];
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
    if (prefetch < 0 || prefetch > 1000)
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

void
zjq_worker_stop (zjq_worker_t *self, bool graceful)
{
    assert (self);
    s_request_stop (self, graceful ? s_STOP_GRACEFUL : s_STOP_ABORT);
    s_eventfd_signal (self->stop_fd);
}

int
zjq_worker_run (zjq_worker_t *self)
{
    assert (self);
    if (self->handler_count == 0)
        return ZJQ_EINVAL;
    if (atomic_exchange (&self->running, true))
        return ZJQ_ESTATE;

    //  Block the signals before any thread starts (handler threads, libzmq's
    //  I/O threads), so that only our signalfd ever sees them.
    sigset_t saved_mask;
    pthread_sigmask (SIG_BLOCK, NULL, &saved_mask);
    const int signals [] = { SIGTERM, SIGINT };
    self->signal_fd = zjq_signalfd_open (signals, 2);
    if (self->signal_fd < 0) {
        zjq_log_error ("signalfd_failed", "error=%s", strerror (errno));
        pthread_sigmask (SIG_SETMASK, &saved_mask, NULL);
        atomic_store (&self->running, false);
        return ZJQ_ESYS;
    }
    self->ctx = zmq_ctx_new ();
    self->pool = self->ctx ? s_pool_new (self->inline_handlers ? 0 : self->concurrency) : NULL;
    self->tasks = zlistx_new ();
    if (!self->ctx || !self->pool || !self->tasks) {
        if (self->pool) {
            s_pool_t *pool = self->pool;
            pthread_mutex_lock (&pool->lock);
            pool->shutdown = true;
            pthread_cond_broadcast (&pool->work);
            pthread_mutex_unlock (&pool->lock);
            for (int i = 0; i < pool->nthreads; i++)
                pthread_join (pool->threads [i], NULL);
            s_pool_release (pool);
            self->pool = NULL;
        }
        zlistx_destroy (&self->tasks);
        if (self->ctx)
            zmq_ctx_term (self->ctx);
        self->ctx = NULL;
        close (self->signal_fd);
        self->signal_fd = -1;
        pthread_sigmask (SIG_SETMASK, &saved_mask, NULL);
        atomic_store (&self->running, false);
        return ZJQ_ESYS;
    }
    self->phase = s_PHASE_RUNNING;
    self->signals_seen = 0;
    self->backoff_ms = s_BACKOFF_MIN_MS;
    self->connect_at = zjq_mono_ms ();
    self->socket = NULL;
    s_eventfd_drain (self->stop_fd);

    const int64_t heartbeat = self->heartbeat_ms;
    bool abort = false;
    while (true) {
        int64_t now = zjq_mono_ms ();
        int stop = atomic_load (&self->stop_request);
        if (stop == s_STOP_ABORT) {
            abort = true;
            break;
        }
        if (stop == s_STOP_GRACEFUL && self->phase == s_PHASE_RUNNING)
            s_begin_drain (self, now);
        if (self->phase == s_PHASE_DRAINING) {
            if (!self->socket) {
                abort = true;           //  nobody to report to
                break;
            }
            if (s_live_tasks (self) == 0)
                break;                  //  clean stop
            if (now >= self->grace_deadline) {
                zjq_log_info ("grace_over", "grace_ms=%d", self->grace_ms);
                abort = true;
                break;
            }
        }
        if (!self->socket && now >= self->connect_at)
            s_connect (self, now);
        if (self->socket && now - self->last_recv >= 3 * heartbeat)
            s_recv_all (self);          //  maybe we were slow, not the broker
        if (self->socket && now - self->last_recv >= 3 * heartbeat) {
            char why [100];
            snprintf (why, sizeof why, "broker silent for %d ms", (int) (now - self->last_recv));
            s_connection_lost (self, why);
            continue;
        }
        if (self->socket && now - self->last_send >= heartbeat) {
            zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_HEARTBEAT);
            s_send (self, &msg);
            self->last_send = now;      //  also when dropped: retry next interval
        }
        //  Sleep until the nearest timer
        int64_t wake = now + heartbeat;
        int64_t deadline = s_check_deadlines (self, now);
        if (deadline < wake)
            wake = deadline;
        if (self->socket) {
            if (self->last_send + heartbeat < wake)
                wake = self->last_send + heartbeat;
            if (self->last_recv + 3 * heartbeat < wake)
                wake = self->last_recv + 3 * heartbeat;
        }
        else
        if (self->connect_at < wake)
            wake = self->connect_at;
        if (self->phase == s_PHASE_DRAINING && self->grace_deadline < wake)
            wake = self->grace_deadline;
        long timeout = wake > now ? (long) (wake - now) : 0;
        if (self->socket) {
            //  Everything this turn sent goes now, in one BATCH if several
            zjq_outbox_flush (self->outbox);
            if (zjq_inbox_pending (self->inbox))
                timeout = 0;
        }

        zmq_pollitem_t items [] = {
            { NULL, self->signal_fd, ZMQ_POLLIN, 0 },
            { NULL, self->stop_fd, ZMQ_POLLIN, 0 },
            { NULL, self->pool->wake_fd, ZMQ_POLLIN, 0 },
            { self->socket, -1, ZMQ_POLLIN, 0 },
            { self->monitor, -1, ZMQ_POLLIN, 0 }
        };
        int rc = zmq_poll (items, !self->socket ? 3 : self->monitor ? 5 : 4, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            zjq_log_error ("poll_failed", "error=%s", zmq_strerror (errno));
            abort = true;
            break;
        }
        if (items [0].revents & ZMQ_POLLIN)
            s_read_signals (self);
        if (items [1].revents & ZMQ_POLLIN)
            s_eventfd_drain (self->stop_fd);
        if (items [2].revents & ZMQ_POLLIN) {
            s_eventfd_drain (self->pool->wake_fd);
            s_collect (self);
        }
        if (self->socket && ((items [3].revents & ZMQ_POLLIN) || zjq_inbox_pending (self->inbox)))
            s_recv_all (self);
        if (self->monitor && (items [4].revents & ZMQ_POLLIN))
            s_read_monitor (self);
    }
    s_finish (self, abort);
    zlistx_destroy (&self->tasks);
    while (self->spare_tasks) {
        zjq_task_t *next = self->spare_tasks->next_spare;
        free (self->spare_tasks);
        self->spare_tasks = next;
    }
    self->spare_task_count = 0;
    zmq_ctx_term (self->ctx);           //  bounded by the socket's linger
    self->ctx = NULL;
    zjq_log_info ("stopped", "worker=%s", self->id);

    //  Consume signals that are still pending before unblocking them
    while (zjq_signalfd_read (self->signal_fd) > 0)
        ;
    close (self->signal_fd);
    self->signal_fd = -1;
    pthread_sigmask (SIG_SETMASK, &saved_mask, NULL);
    atomic_store (&self->stop_request, s_STOP_NONE);
    atomic_store (&self->running, false);
    return 0;
}


//  --------------------------------------------------------------------------
//  Task API, for handlers

const char *
zjq_task_id (zjq_task_t *task)
{
    assert (task);
    return task->id;
}

const char *
zjq_task_queue (zjq_task_t *task)
{
    assert (task);
    return task->queue;
}

int
zjq_task_attempt (zjq_task_t *task)
{
    assert (task);
    return task->attempt;
}

const void *
zjq_task_payload (zjq_task_t *task)
{
    assert (task);
    if (zframe_size (task->payload) == 0)
        return "";
    return zframe_data (task->payload);
}

size_t
zjq_task_payload_size (zjq_task_t *task)
{
    assert (task);
    return zframe_size (task->payload);
}

int64_t
zjq_task_remaining_ms (zjq_task_t *task)
{
    assert (task);
    if (task->deadline == INT64_MAX)
        return INT64_MAX;
    int64_t remaining = task->deadline - zjq_mono_ms ();
    return remaining > 0 ? remaining : 0;
}

int
zjq_task_set_result (zjq_task_t *task, const void *data, size_t size)
{
    assert (task);
    assert (data || size == 0);
    zframe_destroy (&task->result);
    if (size > task->max_result) {
        task->too_big = size;
        return ZJQ_ETOOBIG;
    }
    task->too_big = 0;
    task->result = zframe_new (data, size);
    return task->result ? 0 : ZJQ_ENOMEM;
}

int
zjq_task_fail (zjq_task_t *task, const char *format, ...)
{
    assert (task);
    if (format && !task->error)
        task->error = (char *) malloc (s_ERROR_MAX);
    if (format && task->error) {
        va_list args;
        va_start (args, format);
        vsnprintf (task->error, s_ERROR_MAX, format, args);
        va_end (args);
        task->error_set = true;
    }
    return -1;
}

int
zjq_task_progress (zjq_task_t *task, double fraction, const char *message)
{
    assert (task);
    if (isnan (fraction) || fraction < 0)
        fraction = 0;
    if (fraction > 1)
        fraction = 1;
    s_pool_t *pool = task->pool;
    pthread_mutex_lock (&pool->lock);
    task->progress = fraction;
    s_copy_utf8 (task->progress_text, message ? message : "", s_PROGRESS_TEXT_MAX);
    bool wake = false;
    if (!task->progress_pending && !pool->orphaned) {
        task->progress_pending = true;
        zlistx_add_end (pool->progress, task);
        wake = !pool->wake_pending;
        pool->wake_pending = true;
    }
    pthread_mutex_unlock (&pool->lock);
    if (wake)
        s_pool_wake (pool);
    return 0;
}

void
zjq_task_set_exit (zjq_task_t *task, int exit_code, int signal)
{
    assert (task);
    task->exit_code = exit_code >= 0 && exit_code <= 255 ? exit_code : -1;
    task->exit_signal = signal > 0 && signal <= 255 ? signal : 0;
}

bool
zjq_task_cancelled (zjq_task_t *task)
{
    assert (task);
    return atomic_load (&task->cancelled);
}

bool
zjq_task_wait_cancelled (zjq_task_t *task, int timeout_ms)
{
    assert (task);
    if (timeout_ms <= 0)
        return atomic_load (&task->cancelled);
    struct timespec until;
    clock_gettime (CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long) (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    s_pool_t *pool = task->pool;
    pthread_mutex_lock (&pool->lock);
    while (!atomic_load (&task->cancelled)) {
        if (pthread_cond_timedwait (&pool->cancelled, &pool->lock, &until) == ETIMEDOUT)
            break;
    }
    pthread_mutex_unlock (&pool->lock);
    return atomic_load (&task->cancelled);
}

void
zjq_task_set_child (zjq_task_t *task, pid_t pid)
{
    assert (task);
    s_pool_t *pool = task->pool;
    pthread_mutex_lock (&pool->lock);
    task->child = pid > 0 ? pid : 0;
    if (task->child && atomic_load (&task->cancelled))
        kill (-task->child, SIGKILL);
    pthread_mutex_unlock (&pool->lock);
}
