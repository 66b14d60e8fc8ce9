/*  zjq_worker_jobs.c: job bookkeeping on the main thread (see
    zjq_worker_private.h).

    Ownership. The main thread creates a task on JOB and destroys (or
    recycles) it after it reported it or decided to discard it. Every task
    not yet reported is on worker->tasks. A JOB goes first on the incoming
    batch of this read, and zjq_worker_hand_over gives the batch to the
    pool (or runs it inline) before anything else looks at task states. A
    handler thread touches a task only between taking it from the FIFO and
    putting it on the done list; zjq_worker_collect then reports it.      */

#include "zjq_worker_private.h"
#include "zjq_log.h"
#include "zjq_util.h"

#include <assert.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Cancel a task (see zjq_pool_cancel). The first reason sticks. Returns
//  true if the task was still waiting in the FIFO: it will never run and
//  the caller reports or discards it.
static bool
s_task_cancel (zjq_worker_t *self, zjq_task_t *task, const char *reason)
{
    if (!atomic_load (&task->cancelled))
        snprintf (task->reason, sizeof task->reason, "%s", reason);
    assert (self->incoming_count == 0);     //  zjq_worker_hand_over came first
    return zjq_pool_cancel (self->pool, task);
}

//  Forget a task the main thread owns: take it off the task list, recycle
//  it.
static void
s_task_forget (zjq_worker_t *self, zjq_task_t **task_p)
{
    zjq_task_t *task = *task_p;
    zlistx_detach (self->tasks, task->handle);
    if (self->spare_task_count < ZJQ_WORKER_SPARE_TASKS_MAX) {
        zjq_task_clear (task);
        task->next_spare = self->spare_tasks;
        self->spare_tasks = task;
        self->spare_task_count++;
        *task_p = NULL;
    }
    else
        zjq_task_destroy (task_p);
}

//  The WORK_RESULT of a task whose handler returned (not cancelled).
static zjq_msg_t *
s_task_result (zjq_task_t *task, int64_t duration)
{
    char too_big [128];
    snprintf (too_big, sizeof too_big, "result of %zu bytes exceeds the limit of %zu",
              task->too_big, task->max_result);
    bool ok = task->rc == 0 && task->too_big == 0;
    const char *error = ok ? NULL
                      : task->rc == 0 ? too_big
                      : task->error_set ? task->error
                      : task->too_big ? too_big
                      : "handler failed";
    zjq_msg_t *msg = zjq_worker_result_new (task->id, task->attempt, ok ? "ok" : "error", error,
                                            ok ? &task->result : NULL, duration);
    //  How a process the handler ran ended (zjq_task_set_exit)
    if (task->exit_code >= 0)
        zjq_msg_put_int (msg, "exit_code", task->exit_code);
    if (task->exit_signal > 0)
        zjq_msg_put_int (msg, "signal", task->exit_signal);
    return msg;
}

//  Report a task whose handler returned (or that never ran), then forget it.
//  Aborted tasks are not reported: the broker has requeued them already or
//  will.
static void
s_task_report (zjq_worker_t *self, zjq_task_t **task_p)
{
    zjq_task_t *task = *task_p;
    int64_t duration = task->started ? task->finished - task->started : 0;
    if (task->started)
        zjq_credit_job_done (self->credit, task->service_us);
    if (task->aborted)
        ;
    else
    if (atomic_load (&task->cancelled))
        zjq_worker_send_result (self, task->id, task->attempt, "cancelled", task->reason,
                                NULL, duration);
    else {
        zjq_msg_t *msg = s_task_result (task, duration);
        zjq_worker_send (self, &msg);
    }
    s_task_forget (self, task_p);
}

size_t
zjq_worker_live_tasks (zjq_worker_t *self)
{
    size_t count = 0;
    for (zjq_task_t *task = (zjq_task_t *) zlistx_first (self->tasks);
         task; task = (zjq_task_t *) zlistx_next (self->tasks))
        if (!task->aborted)
            count++;
    return count;
}

//  FNV-1a of a job id
static uint32_t
s_id_hash (const char *id)
{
    uint32_t hash = 2166136261u;
    for (; *id; id++)
        hash = (hash ^ (uint8_t) *id) * 16777619u;
    return hash;
}

//  The live task of (id, attempt), or NULL. The worker may hold a thousand
//  (adaptive prefetch): the hash spares comparing ids.
static zjq_task_t *
s_task_lookup (zjq_worker_t *self, const char *id, int64_t attempt)
{
    uint32_t hash = s_id_hash (id);
    for (zjq_task_t *task = (zjq_task_t *) zlistx_first (self->tasks);
         task; task = (zjq_task_t *) zlistx_next (self->tasks))
        if (task->id_hash == hash && !task->aborted && task->attempt == attempt
        &&  streq (task->id, id))
            return task;
    return NULL;
}

void
zjq_worker_abort_tasks (zjq_worker_t *self, const char *reason)
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

size_t
zjq_worker_return_queued (zjq_worker_t *self, const char *why)
{
    size_t count = 0;
    zjq_task_t *task = (zjq_task_t *) zlistx_first (self->tasks);
    while (task) {
        zjq_task_t *next = (zjq_task_t *) zlistx_next (self->tasks);
        if (!task->aborted && zjq_pool_withdraw (self->pool, task)) {
            zjq_worker_send_result (self, task->id, task->attempt, "returned", why, NULL, 0);
            s_task_forget (self, &task);
            count++;
        }
        task = next;
    }
    return count;
}

void
zjq_worker_free_spares (zjq_worker_t *self)
{
    while (self->spare_tasks) {
        zjq_task_t *next = self->spare_tasks->next_spare;
        free (self->spare_tasks);
        self->spare_tasks = next;
    }
    self->spare_task_count = 0;
}


//  --------------------------------------------------------------------------
//  What handler threads left

//  Send a task's latest progress (zjq_pool_collect calls this).
static void
s_send_progress (zjq_task_t *task, double fraction, const char *text, void *arg)
{
    zjq_worker_t *self = (zjq_worker_t *) arg;
    if (task->aborted || atomic_load (&task->cancelled))
        return;
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_PROGRESS);
    zjq_msg_put_str (msg, "id", task->id);
    zjq_msg_put_int (msg, "attempt", task->attempt);
    zjq_msg_put_double (msg, "progress", fraction);
    if (*text)
        zjq_msg_put_str (msg, "message", text);
    zjq_worker_send (self, &msg);
}

//  Take the whole done list at once, send the progress (of tasks still
//  running and of those done), then every result.
void
zjq_worker_collect (zjq_worker_t *self)
{
    zjq_task_t *done = zjq_pool_collect (self->pool, s_send_progress, self);
    while (done) {
        zjq_task_t *task = done;
        done = task->next;
        task->next = NULL;
        s_task_report (self, &task);
    }
}

int64_t
zjq_worker_check_deadlines (zjq_worker_t *self, int64_t now)
{
    int64_t next = INT64_MAX;
    int64_t oldest = 0;
    zjq_task_t *task = (zjq_task_t *) zlistx_first (self->tasks);
    while (task) {
        zjq_task_t *next_task = (zjq_task_t *) zlistx_next (self->tasks);
        int64_t since = atomic_load_explicit (&task->running_since, memory_order_relaxed);
        if (since && (!oldest || since < oldest))
            oldest = since;
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
    self->oldest_running_us = oldest;
    return next;
}


//  --------------------------------------------------------------------------
//  JOB and JOB_CANCEL

zjq_worker_handler_t *
zjq_worker_handler_lookup (zjq_worker_t *self, const char *queue)
{
    for (size_t i = 0; i < self->handler_count; i++)
        if (streq (self->handlers [i].queue, queue))
            return &self->handlers [i];
    return NULL;
}

//  Check a JOB we will run: its queue has a handler and its timeout is
//  valid. Returns the handler and sets *deadline, or answers the broker
//  and returns NULL.
static zjq_worker_handler_t *
s_job_admit (zjq_worker_t *self, zjq_msg_t *msg, const char *id, int64_t attempt,
             const char *queue, int64_t *deadline)
{
    if (!queue) {
        zjq_worker_send_result (self, id, attempt, "error", "malformed JOB: no queue", NULL, 0);
        return NULL;
    }
    zjq_worker_handler_t *handler = zjq_worker_handler_lookup (self, queue);
    if (!handler) {
        char error [ZJQ_QUEUE_NAME_MAX + 64];
        snprintf (error, sizeof error, "no handler for queue %.*s", ZJQ_QUEUE_NAME_MAX, queue);
        zjq_worker_send_result (self, id, attempt, "error", error, NULL, 0);
        return NULL;
    }
    int64_t now = zjq_mono_ms ();
    *deadline = INT64_MAX;
    if (zjq_msg_has (msg, "timeout_ms")) {
        int64_t timeout_ms = 0;
        if (!zjq_msg_get_int (msg, "timeout_ms", &timeout_ms) || timeout_ms <= 0) {
            zjq_worker_send_result (self, id, attempt, "error", "malformed JOB: bad timeout_ms",
                                    NULL, 0);
            return NULL;
        }
        *deadline = timeout_ms > INT64_MAX - now ? INT64_MAX : now + timeout_ms;
    }
    return handler;
}

//  Put a new task on the task list and at the end of the incoming batch.
static void
s_job_accept (zjq_worker_t *self, zjq_task_t *task)
{
    task->id_hash = s_id_hash (task->id);
    task->handle = zlistx_add_end (self->tasks, task);
    task->prev = self->incoming_tail;
    if (self->incoming_tail)
        self->incoming_tail->next = task;
    else
        self->incoming_head = task;
    self->incoming_tail = task;
    self->incoming_count++;
}

void
zjq_worker_on_job (zjq_worker_t *self, zjq_msg_t *msg)
{
    const char *id = zjq_msg_get_str (msg, "id");
    int64_t attempt = 0;
    if (!id || !*id || !zjq_msg_get_int (msg, "attempt", &attempt)
    ||  attempt < 1 || attempt > INT_MAX) {
        zjq_log_warning ("bad_job", "reason=%s", "JOB without a valid id and attempt, dropped");
        return;
    }
    if (self->phase != ZJQ_WORKER_RUNNING) {
        zjq_worker_send_result (self, id, attempt, "returned", "worker shutting down", NULL, 0);
        return;
    }
    const char *queue = zjq_msg_get_str (msg, "queue");
    int64_t deadline;
    zjq_worker_handler_t *handler = s_job_admit (self, msg, id, attempt, queue, &deadline);
    if (!handler)
        return;
    if (s_task_lookup (self, id, attempt)) {
        zjq_log_warning ("bad_job", "job=%s attempt=%d reason=%s", id, (int) attempt,
                         "duplicate JOB, dropped");
        return;
    }
    zframe_t *payload = zjq_msg_take_payload (msg);
    zjq_credit_job_arrived (self->credit, payload ? zframe_size (payload) : 0);
    zjq_task_t *spare = self->spare_tasks;
    if (spare) {
        self->spare_tasks = spare->next_spare;
        self->spare_task_count--;
    }
    zjq_task_t *task = zjq_task_new (self->pool, spare, id, queue, (int) attempt, &payload,
                                     handler, self->max_result, deadline);
    if (!task) {
        zjq_worker_send_result (self, id, attempt, "error", "worker out of memory", NULL, 0);
        return;
    }
    s_job_accept (self, task);
}

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
        task->state = ZJQ_TASK_RUNNING;
        zjq_task_execute (task);
        task->state = ZJQ_TASK_DONE;
        s_task_report (self, &task);
    }
    self->incoming_tail = NULL;
}

//  Hand the JOBs received so far to the handler threads: one lock, and a
//  wake for one idle thread (none if every thread is busy: they look at
//  the FIFO before they sleep).
void
zjq_worker_hand_over (zjq_worker_t *self)
{
    if (self->incoming_count == 0)
        return;
    if (self->inline_handlers) {
        s_run_inline (self);
        return;
    }
    zjq_pool_push (self->pool, self->incoming_head, self->incoming_tail);
    self->incoming_head = self->incoming_tail = NULL;
    self->incoming_count = 0;
}

void
zjq_worker_on_cancel (zjq_worker_t *self, zjq_msg_t *msg)
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
