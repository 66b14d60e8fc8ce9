/*  zjq_task.c: a job as the worker runs it (see zjq_worker_private.h).

    The main thread creates a task on JOB (zjq_task_new, from a recycled
    one when it can) and clears or destroys it once it reported it. In
    between, a handler thread runs it (zjq_task_execute) and the handler
    calls the zjq_task_* API of zjq_worker.h on it. What the handler sets
    (result, error, exit) is the running thread's alone; what the main
    thread reads while it runs (progress, child) is guarded by the pool's
    lock; the cancelled flag is atomic.                                     */

#include "zjq_worker_private.h"
#include "zjq_util.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
zjq_task_copy_utf8 (char *buf, const char *text, size_t max)
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
//  Lifecycle

zjq_task_t *
zjq_task_new (zjq_pool_t *pool, zjq_task_t *spare, const char *id, const char *queue,
              int attempt, zframe_t **payload_p, zjq_worker_handler_t *handler,
              size_t max_result, int64_t deadline)
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
    zjq_task_copy_utf8 (self->queue, queue, ZJQ_QUEUE_NAME_MAX);
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
    self->state = ZJQ_TASK_QUEUED;
    if (!self->payload) {
        if (self->id != self->id_buf)
            free (self->id);
        free (self);
        return NULL;
    }
    return self;
}

void
zjq_task_clear (zjq_task_t *self)
{
    if (self->id != self->id_buf)
        free (self->id);
    self->id = NULL;
    free (self->error);
    self->error = NULL;
    zframe_destroy (&self->payload);
    zframe_destroy (&self->result);
}

void
zjq_task_destroy (zjq_task_t **self_p)
{
    assert (self_p);
    zjq_task_t *self = *self_p;
    if (self) {
        zjq_task_clear (self);
        free (self);
        *self_p = NULL;
    }
}

void
zjq_task_execute (zjq_task_t *self)
{
    int64_t started_us = zjq_mono_us ();
    self->started = started_us / 1000;
    atomic_store_explicit (&self->running_since, started_us, memory_order_relaxed);
    if (atomic_load (&self->cancelled))
        self->rc = -1;
    else
        self->rc = self->handler (self, self->handler_arg);
    int64_t finished_us = zjq_mono_us ();
    atomic_store_explicit (&self->running_since, 0, memory_order_relaxed);
    self->finished = finished_us / 1000;
    self->service_us = finished_us - started_us;
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
        task->error = (char *) malloc (ZJQ_WORKER_ERROR_MAX);
    if (format && task->error) {
        va_list args;
        va_start (args, format);
        vsnprintf (task->error, ZJQ_WORKER_ERROR_MAX, format, args);
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
    zjq_pool_t *pool = task->pool;
    pthread_mutex_lock (&pool->lock);
    task->progress = fraction;
    zjq_task_copy_utf8 (task->progress_text, message ? message : "", ZJQ_WORKER_PROGRESS_MAX);
    bool wake = false;
    if (!task->progress_pending && !pool->orphaned) {
        task->progress_pending = true;
        zlistx_add_end (pool->progress, task);
        wake = !pool->wake_pending;
        pool->wake_pending = true;
    }
    pthread_mutex_unlock (&pool->lock);
    if (wake)
        zjq_worker_eventfd_signal (pool->wake_fd);
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
    zjq_pool_t *pool = task->pool;
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
    zjq_pool_t *pool = task->pool;
    pthread_mutex_lock (&pool->lock);
    task->child = pid > 0 ? pid : 0;
    if (task->child && atomic_load (&task->cancelled))
        kill (-task->child, SIGKILL);
    pthread_mutex_unlock (&pool->lock);
}
