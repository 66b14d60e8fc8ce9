/*  zjq_worker_private.h: what the files of the worker library share.

    The worker library (zjq_worker.h) is one unit in several rooms:

        zjq_worker.c       the public API, zjq_worker_run's event loop,
                           signals and the stop (drain, grace, finish)
        zjq_worker_conn.c  the connection to the broker: connect (CURVE,
                           handshake monitor), READY with the credit,
                           heartbeats and liveness, reconnect backoff,
                           reading (inbox) and sending (outbox) messages
        zjq_worker_jobs.c  job bookkeeping on the main thread: JOB and
                           JOB_CANCEL, the list of tasks, results and
                           progress sent back, deadlines, aborts, handing
                           JOBs to the pool (or running them inline)
        zjq_pool.c         the handler threads and their hand-off (FIFO,
                           done list, one-at-a-time wake-up, eventfd)
        zjq_task.c         a task's lifecycle and the zjq_task_* API that
                           handlers call
        zjq_credit.c       how many jobs the worker asks the broker for

    Dependencies run one way: zjq_worker.c drives conn and jobs; jobs use the
    pool and tasks; the pool knows nothing of the broker or of the worker
    (it hands progress back through a callback). Nothing here is public ABI:
    the structs may change freely.                                          */

#ifndef ZJQ_WORKER_PRIVATE_H_INCLUDED
#define ZJQ_WORKER_PRIVATE_H_INCLUDED

#include "zjq_worker.h"
#include "zjq_inbox.h"
#include "zjq_outbox.h"
#include "zjq_cert.h"
#include "zjq_credit.h"
#include "zjq_jobid.h"
#include "zjq_proto.h"

#include <czmq.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

//  The functions below are internal to libzjq: hidden, so they are not part
//  of its ABI and calls between the library's files do not go through the
//  PLT.
#define ZJQ_WORKER_INTERNAL __attribute__ ((visibility ("hidden")))

#define ZJQ_WORKER_MAX_QUEUES       64      //  READY carries 1-64 queues
#define ZJQ_WORKER_ERROR_MAX        4096    //  zjq_task_fail text, with NUL
#define ZJQ_WORKER_PROGRESS_MAX     256     //  PROGRESS message, bytes
#define ZJQ_WORKER_REASON_MAX       64
#define ZJQ_WORKER_BACKOFF_MIN_MS   250
#define ZJQ_WORKER_BACKOFF_MAX_MS   8000
#define ZJQ_WORKER_SPARE_TASKS_MAX  1024    //  recycled tasks kept by the main thread

#define ZJQ_WORKER_STOP_NONE        0
#define ZJQ_WORKER_STOP_GRACEFUL    1
#define ZJQ_WORKER_STOP_ABORT       2

typedef enum {
    ZJQ_TASK_QUEUED,            //  in pool's FIFO, or in worker->incoming
    ZJQ_TASK_RUNNING,           //  a handler thread has it
    ZJQ_TASK_DONE               //  the handler returned (or never will run)
} zjq_task_state_t;

typedef enum {
    ZJQ_WORKER_RUNNING,         //  taking jobs
    ZJQ_WORKER_DRAINING         //  stop requested: running tasks may finish
} zjq_worker_phase_t;

typedef struct _zjq_pool_t zjq_pool_t;

typedef struct {
    char *queue;                //  queue name
    zjq_handler_fn *fn;         //  handler
    void *arg;                  //  its argument
} zjq_worker_handler_t;

struct _zjq_task_t {
    zjq_pool_t *pool;           //  the pool that runs it
    char *id;                   //  job id: id_buf, or a heap copy if longer
    char id_buf [ZJQ_JOBID_MAX];
    char queue [ZJQ_QUEUE_NAME_MAX + 1];  //  queue it came from
    int attempt;                //  attempt number from JOB
    uint32_t id_hash;           //  of id, so that looking a task up rarely compares ids
    zframe_t *payload;          //  job payload (never NULL)
    zjq_handler_fn *handler;    //  handler for the queue
    void *handler_arg;          //  its argument
    size_t max_result;          //  largest result allowed
    int64_t deadline;           //  monotonic ms; INT64_MAX if no timeout
    int64_t started;            //  monotonic ms when the handler started; 0 if never
    int64_t finished;           //  monotonic ms when it returned
    int64_t service_us;         //  how long the handler ran, microseconds
    atomic_llong running_since; //  monotonic us the handler started; 0 unless it runs
    atomic_bool cancelled;      //  set once, by the main thread
    //  Guarded by pool->lock
    zjq_task_state_t state;     //  where the task is
    pid_t child;                //  registered child process group, or 0
    bool progress_pending;      //  on pool->progress, not sent yet
    double progress;            //  latest fraction reported
    char progress_text [ZJQ_WORKER_PROGRESS_MAX + 1];   //  latest message
    //  Main thread only
    bool aborted;               //  result is discarded (reconnect or abort)
    char reason [ZJQ_WORKER_REASON_MAX];    //  why it was cancelled
    zjq_task_t *prev;           //  links in the FIFO (main thread's incoming
    zjq_task_t *next;           //  batch, the pool's FIFO, or its done list)
    void *handle;               //  handle in worker->tasks
    //  The running handler's, then the main thread's after DONE
    int rc;                     //  handler's return code
    zframe_t *result;           //  result set by the handler, or NULL
    size_t too_big;             //  size of a result that was refused, or 0
    bool error_set;             //  zjq_task_fail was called
    char *error;                //  its text (ZJQ_WORKER_ERROR_MAX bytes), or NULL
    int exit_code;              //  zjq_task_set_exit: process exit status, or -1
    int exit_signal;            //  ... the signal that ended it, or 0
    zjq_task_t *next_spare;     //  main thread's free list
};

struct _zjq_pool_t {
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

struct _zjq_worker_t {
    char *endpoint;             //  broker endpoint
    char id [256];              //  "host/pid/xxxx"
    zjq_worker_handler_t handlers [ZJQ_WORKER_MAX_QUEUES];  //  registered queues
    size_t handler_count;       //  how many
    int concurrency;            //  handler threads
    bool inline_handlers;       //  run handlers on this thread, no handler threads
    int prefetch;               //  extra credit; -1: equal to concurrency
    int heartbeat_ms;           //  heartbeat interval
    int grace_ms;               //  grace period on graceful stop
    size_t max_result;          //  largest result
    int stop_fd;                //  eventfd written by zjq_worker_stop
    atomic_int stop_request;    //  ZJQ_WORKER_STOP_*
    atomic_bool running;        //  inside zjq_worker_run
    //  State of a run, main thread only
    void *ctx;                  //  libzmq context
    void *socket;               //  DEALER to the broker, NULL while backing off
    zjq_inbox_t *inbox;         //  reads it, a BATCH's messages one by one
    zjq_outbox_t *outbox;       //  what this turn sends, in one BATCH if several
    bool greeted;               //  got a message on this connection
    int signal_fd;              //  SIGTERM/SIGINT
    int signals_seen;           //  count, the second one aborts
    zjq_pool_t *pool;           //  handler threads
    zjq_credit_t *credit;       //  the credit announced in READY and CREDIT
    int64_t oldest_running_us;  //  start of the oldest handler running, 0 if none
    int64_t credit_check_at;    //  monotonic ms: look at the credit again
    int64_t last_ping;          //  monotonic ms of the last HEARTBEAT ping
    zjq_task_t *incoming_head;  //  JOBs of this read batch, not yet handed
    zjq_task_t *incoming_tail;  //  to the pool (see zjq_worker_hand_over)
    int incoming_count;         //  how many
    zjq_task_t *spare_tasks;    //  recycled tasks (linked by next_spare)
    size_t spare_task_count;    //  how many
    zlistx_t *tasks;            //  every task not yet reported or discarded
    zjq_worker_phase_t phase;   //  running or draining
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


//  Wake whoever polls an eventfd. Cannot fail in a way we could handle:
//  the counter does not overflow at one write per event.
static inline void
zjq_worker_eventfd_signal (int fd)
{
    uint64_t one = 1;
    ssize_t rc = write (fd, &one, sizeof one);
    (void) rc;
}

//  Reset an eventfd (non-blocking) that poll said is readable.
static inline void
zjq_worker_eventfd_drain (int fd)
{
    uint64_t value;
    ssize_t rc = read (fd, &value, sizeof value);
    (void) rc;
}

//  --------------------------------------------------------------------------
//  zjq_task.c: a task's lifecycle (main thread, and the thread that runs it)

//  Create a task, from spare (a recycled task, or NULL); takes ownership of
//  *payload_p. Returns NULL on out of memory (the payload is destroyed).
ZJQ_WORKER_INTERNAL zjq_task_t *
    zjq_task_new (zjq_pool_t *pool, zjq_task_t *spare, const char *id, const char *queue,
                  int attempt, zframe_t **payload_p, zjq_worker_handler_t *handler,
                  size_t max_result, int64_t deadline);

//  Free what a task holds, not the task itself (it may be recycled).
ZJQ_WORKER_INTERNAL void
    zjq_task_clear (zjq_task_t *self);

//  Free a task and what it holds; idempotent; nulls the pointer.
ZJQ_WORKER_INTERNAL void
    zjq_task_destroy (zjq_task_t **self_p);

//  Run the handler (unless already cancelled: rc -1), timing it.
ZJQ_WORKER_INTERNAL void
    zjq_task_execute (zjq_task_t *self);

//  Copy at most max bytes of text into buf (max + 1 bytes), not cutting a
//  UTF-8 sequence in half.
ZJQ_WORKER_INTERNAL void
    zjq_task_copy_utf8 (char *buf, const char *text, size_t max);


//  --------------------------------------------------------------------------
//  zjq_pool.c: the handler threads. The main thread hands tasks in with
//  zjq_pool_push and collects them with zjq_pool_collect after wake_fd
//  became readable. The pool never talks to the broker.

//  Called by zjq_pool_collect for each task with progress to send, with the
//  pool's lock not held; fraction and text are a copy of the latest report.
typedef void (zjq_pool_progress_fn) (zjq_task_t *task, double fraction, const char *text,
                                     void *arg);

//  Create a pool and start nthreads threads (0 is valid: inline handlers).
//  They inherit the caller's signal mask. Returns NULL on failure (nothing
//  left running).
ZJQ_WORKER_INTERNAL zjq_pool_t *
    zjq_pool_new (int nthreads);

//  The eventfd that becomes readable when tasks are done or have progress.
ZJQ_WORKER_INTERNAL int
    zjq_pool_wake_fd (zjq_pool_t *self);

//  Append a linked batch of tasks (head..tail, by prev/next) to the FIFO
//  under one lock, and wake one idle thread unless one is on its way.
ZJQ_WORKER_INTERNAL void
    zjq_pool_push (zjq_pool_t *self, zjq_task_t *head, zjq_task_t *tail);

//  Cancel a task: set its flag, wake zjq_task_wait_cancelled and kill its
//  child's process group. Returns true if the task was still in the FIFO:
//  it is then taken out (state DONE, it will never run) and belongs to the
//  caller alone.
ZJQ_WORKER_INTERNAL bool
    zjq_pool_cancel (zjq_pool_t *self, zjq_task_t *task);

//  Take a task out of the FIFO if it has not started. Returns true if it
//  was taken (state DONE, it will never run), false if it runs or ran.
ZJQ_WORKER_INTERNAL bool
    zjq_pool_withdraw (zjq_pool_t *self, zjq_task_t *task);

//  Take what handler threads left: call progress_fn for every task with
//  progress to send (done ones included), then return the done list
//  (linked by next, in order; the caller owns those tasks), or NULL.
ZJQ_WORKER_INTERNAL zjq_task_t *
    zjq_pool_collect (zjq_pool_t *self, zjq_pool_progress_fn *progress_fn, void *arg);

//  Stop the threads and drop the caller's reference; nulls the pointer. If
//  orphan, some handlers still run (they ignored cancellation): the done
//  list and progress are dropped, the threads are detached and destroy
//  their own tasks, and the last one out frees the pool. Otherwise waits
//  for every thread. Tasks still in the FIFO never run and are not freed:
//  the caller withdraws or cancels them first.
ZJQ_WORKER_INTERNAL void
    zjq_pool_stop (zjq_pool_t **self_p, bool orphan);

//  Self-test (zjq_selftest --test pool).
ZJQ_WORKER_INTERNAL void
    zjq_pool_test (bool verbose);


//  --------------------------------------------------------------------------
//  zjq_worker_conn.c: the connection to the broker (main thread)

//  Send a message to the broker (never blocks; batched until the next
//  flush); destroys it. Returns 0, or -1 if there is no connection (the
//  message is dropped: the broker's own timers recover from a lost one).
ZJQ_WORKER_INTERNAL int
    zjq_worker_send (zjq_worker_t *self, zjq_msg_t **msg_p);

//  A WORK_RESULT message. result_p may be NULL (empty payload); it is taken.
ZJQ_WORKER_INTERNAL zjq_msg_t *
    zjq_worker_result_new (const char *id, int64_t attempt, const char *status,
                           const char *error, zframe_t **result_p, int64_t duration_ms);

//  Send WORK_RESULT. result_p may be NULL (empty payload); it is taken.
ZJQ_WORKER_INTERNAL void
    zjq_worker_send_result (zjq_worker_t *self, const char *id, int64_t attempt,
                            const char *status, const char *error, zframe_t **result_p,
                            int64_t duration_ms);

//  Send DISCONNECT, with drain true or without the key.
ZJQ_WORKER_INTERNAL void
    zjq_worker_send_disconnect (zjq_worker_t *self, bool drain);

//  Open the connection if it is due, keep it alive (heartbeat), and give it
//  up if the broker fell silent. Returns 0, or -1 if the connection was
//  just lost (the caller starts its turn again).
ZJQ_WORKER_INTERNAL int
    zjq_worker_conn_tend (zjq_worker_t *self, int64_t now);

//  The nearest connection timer (heartbeat, liveness, reconnect) if it
//  comes before wake; else wake.
ZJQ_WORKER_INTERNAL int64_t
    zjq_worker_conn_next_timer (zjq_worker_t *self, int64_t wake);

//  Adaptive credit: feed the credit policy what was measured, announce a
//  changed credit (CREDIT), hand back prefetched jobs when the prefetch
//  dropped to 0, and set credit_check_at. Call once per loop turn.
ZJQ_WORKER_INTERNAL void
    zjq_worker_credit_tend (zjq_worker_t *self, int64_t now);

//  Read what the broker sent, a bounded batch at a time, and hand the JOBs
//  received to the handlers.
ZJQ_WORKER_INTERNAL void
    zjq_worker_recv_all (zjq_worker_t *self);

//  A CURVE handshake event is waiting on self->monitor: handle it.
ZJQ_WORKER_INTERNAL void
    zjq_worker_read_monitor (zjq_worker_t *self);

//  Flush what this turn sent and close the socket with this linger.
ZJQ_WORKER_INTERNAL void
    zjq_worker_close_socket (zjq_worker_t *self, int linger_ms);


//  --------------------------------------------------------------------------
//  zjq_worker_jobs.c: job bookkeeping (main thread)

//  The handler registered for a queue, or NULL.
ZJQ_WORKER_INTERNAL zjq_worker_handler_t *
    zjq_worker_handler_lookup (zjq_worker_t *self, const char *queue);

//  A JOB arrived: check it, make a task, queue it on the incoming batch
//  (or answer the broker at once if it cannot run).
ZJQ_WORKER_INTERNAL void
    zjq_worker_on_job (zjq_worker_t *self, zjq_msg_t *msg);

//  A JOB_CANCEL arrived.
ZJQ_WORKER_INTERNAL void
    zjq_worker_on_cancel (zjq_worker_t *self, zjq_msg_t *msg);

//  Hand the JOBs received so far to the handler threads (or, inline, run
//  them now). Called before anything else looks at task states, and at the
//  end of every read batch.
ZJQ_WORKER_INTERNAL void
    zjq_worker_hand_over (zjq_worker_t *self);

//  Send the results and progress that handler threads left.
ZJQ_WORKER_INTERNAL void
    zjq_worker_collect (zjq_worker_t *self);

//  Cancel live tasks past their deadline (reason "timeout"), and note when
//  the oldest running handler started (oldest_running_us). Returns the
//  nearest deadline still ahead, or INT64_MAX.
ZJQ_WORKER_INTERNAL int64_t
    zjq_worker_check_deadlines (zjq_worker_t *self, int64_t now);

//  Tasks that still belong to the broker connection (not aborted).
ZJQ_WORKER_INTERNAL size_t
    zjq_worker_live_tasks (zjq_worker_t *self);

//  Abort every live task: its result will be discarded, running handlers
//  are cancelled (children killed), queued ones are dropped.
ZJQ_WORKER_INTERNAL void
    zjq_worker_abort_tasks (zjq_worker_t *self, const char *reason);

//  Hand back every task that has not started ("returned" with error why:
//  "worker shutting down", or the credit dropped); running ones go on.
//  Returns how many were handed back.
ZJQ_WORKER_INTERNAL size_t
    zjq_worker_return_queued (zjq_worker_t *self, const char *why);

//  Free the recycled tasks.
ZJQ_WORKER_INTERNAL void
    zjq_worker_free_spares (zjq_worker_t *self);

#endif
