/*  zjq_pool.c: the handler threads and their hand-off (see
    zjq_worker_private.h).

    Handler threads (one per concurrency slot) take tasks from the pool's
    FIFO, run the handler and put the task on the pool's done list. So never
    more than `concurrency` handlers run, and jobs that arrive while every
    slot is busy (with live or with aborted tasks) wait in the FIFO.

    Handoff cost. Every crossing between threads is batched: the main thread
    hands all the JOBs of one read batch to the FIFO under one lock
    (zjq_pool_push) and wakes one idle thread, which wakes the next only if
    work is left when it takes its task, so threads join one by one while a
    backlog lasts and short jobs do not wake a herd of threads (each wake-up
    is a context switch that costs more than an echo job); a handler thread
    puts its finished task on the done list and takes its next one in the
    same critical section, and writes the eventfd only when no wake is on
    its way already (wake_pending); the main thread then takes the whole
    done list at once (zjq_pool_collect) and sends every result in one pass.

    Shared mutable state is guarded by the pool's one mutex, except the
    tasks' cancelled flag, which is atomic so that handlers can poll it
    cheaply. If handlers do not return within a bound after the worker
    stopped, the pool is orphaned (zjq_pool_stop): each remaining thread
    destroys its own task and the last one out frees the pool.             */

#include "zjq_worker_private.h"
#include "zjq_log.h"

#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>

static void
s_pool_free (zjq_pool_t *self)
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
s_pool_release (zjq_pool_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool last = --self->refs == 0;
    pthread_mutex_unlock (&self->lock);
    if (last)
        s_pool_free (self);
}

//  Take the next task from the FIFO, or NULL. Lock held.
static zjq_task_t *
s_pending_pop (zjq_pool_t *self)
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
s_pending_remove (zjq_pool_t *self, zjq_task_t *task)
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

//  If the task has not started, take it out of the FIFO (it will never
//  run). Returns true if it was taken. Lock held.
static bool
s_pending_withdraw (zjq_pool_t *self, zjq_task_t *task)
{
    if (task->state != ZJQ_TASK_QUEUED)
        return false;
    s_pending_remove (self, task);
    task->state = ZJQ_TASK_DONE;
    return true;
}

//  A handler returned: put the task on the done list (or destroy it if the
//  worker left). Returns true if the caller must wake the main thread once
//  it dropped the lock. Lock held.
static bool
s_pool_finish (zjq_pool_t *self, zjq_task_t *task)
{
    task->state = ZJQ_TASK_DONE;
    task->child = 0;
    if (self->orphaned) {
        zjq_task_destroy (&task);
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

//  Wake one idle thread, unless one is on its way: it wakes the next if
//  there is more than it can take. Lock held.
static void
s_pool_wake_one (zjq_pool_t *self)
{
    if (self->idle > self->waking && !self->waking) {
        self->waking++;
        pthread_cond_signal (&self->work);
    }
}

static void *
s_handler_thread (void *args)
{
    zjq_pool_t *pool = (zjq_pool_t *) args;
    zjq_task_t *task = NULL;
    pthread_mutex_lock (&pool->lock);
    while (true) {
        //  Report the last task and take the next in one critical section
        bool wake = task && s_pool_finish (pool, task);
        task = NULL;
        if (wake && !pool->pending_head) {
            //  About to sleep: wake the main thread first
            pthread_mutex_unlock (&pool->lock);
            zjq_worker_eventfd_signal (pool->wake_fd);
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
                zjq_worker_eventfd_signal (pool->wake_fd);
                pthread_mutex_lock (&pool->lock);
            }
            break;
        }
        task = s_pending_pop (pool);
        task->state = ZJQ_TASK_RUNNING;
        //  Work left for another thread: wake one (which does the same).
        //  Threads join one by one while a backlog lasts, so short tasks
        //  are run by the threads already awake instead of a herd of them.
        if (pool->pending_head)
            s_pool_wake_one (pool);
        pthread_mutex_unlock (&pool->lock);
        if (wake)
            zjq_worker_eventfd_signal (pool->wake_fd);

        zjq_task_execute (task);

        pthread_mutex_lock (&pool->lock);
    }
    bool last = --pool->refs == 0;
    pthread_mutex_unlock (&pool->lock);
    if (last)
        s_pool_free (pool);
    return NULL;
}

//  Tell every thread to exit. Lock not held.
static void
s_pool_shutdown (zjq_pool_t *self)
{
    pthread_mutex_lock (&self->lock);
    self->shutdown = true;
    pthread_cond_broadcast (&self->work);
    pthread_mutex_unlock (&self->lock);
}

zjq_pool_t *
zjq_pool_new (int nthreads)
{
    zjq_pool_t *self = (zjq_pool_t *) calloc (1, sizeof (zjq_pool_t));
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
            pthread_mutex_unlock (&self->lock);
            s_pool_shutdown (self);
            for (int j = 0; j < i; j++)
                pthread_join (self->threads [j], NULL);
            s_pool_release (self);
            return NULL;
        }
        self->nthreads++;
    }
    return self;
}

int
zjq_pool_wake_fd (zjq_pool_t *self)
{
    assert (self);
    return self->wake_fd;
}

void
zjq_pool_push (zjq_pool_t *self, zjq_task_t *head, zjq_task_t *tail)
{
    assert (self);
    assert (head && tail);
    pthread_mutex_lock (&self->lock);
    if (self->pending_tail) {
        self->pending_tail->next = head;
        head->prev = self->pending_tail;
    }
    else
        self->pending_head = head;
    self->pending_tail = tail;
    s_pool_wake_one (self);
    pthread_mutex_unlock (&self->lock);
}

bool
zjq_pool_cancel (zjq_pool_t *self, zjq_task_t *task)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    atomic_store (&task->cancelled, true);
    pthread_cond_broadcast (&self->cancelled);
    if (task->child > 0)
        kill (-task->child, SIGKILL);
    bool was_queued = s_pending_withdraw (self, task);
    pthread_mutex_unlock (&self->lock);
    return was_queued;
}

bool
zjq_pool_withdraw (zjq_pool_t *self, zjq_task_t *task)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    bool was_queued = s_pending_withdraw (self, task);
    pthread_mutex_unlock (&self->lock);
    return was_queued;
}

zjq_task_t *
zjq_pool_collect (zjq_pool_t *self, zjq_pool_progress_fn *progress_fn, void *arg)
{
    assert (self);
    pthread_mutex_lock (&self->lock);
    self->wake_pending = false;
    zjq_task_t *done = self->done_head;
    self->done_head = self->done_tail = NULL;
    //  A task on the done list no longer adds progress, so once the progress
    //  list is empty none of them is on it any more, and they may go
    zjq_task_t *task;
    while ((task = (zjq_task_t *) zlistx_detach (self->progress, NULL))) {
        task->progress_pending = false;
        double fraction = task->progress;
        char text [ZJQ_WORKER_PROGRESS_MAX + 1];
        memcpy (text, task->progress_text, sizeof text);
        pthread_mutex_unlock (&self->lock);
        progress_fn (task, fraction, text, arg);
        pthread_mutex_lock (&self->lock);
    }
    pthread_mutex_unlock (&self->lock);
    return done;
}

void
zjq_pool_stop (zjq_pool_t **self_p, bool orphan)
{
    assert (self_p);
    zjq_pool_t *self = *self_p;
    if (!self)
        return;
    *self_p = NULL;
    pthread_mutex_lock (&self->lock);
    self->shutdown = true;
    pthread_cond_broadcast (&self->work);
    if (orphan) {
        //  Handlers that ignore cancellation: leave them the pool
        self->orphaned = true;
        zjq_task_t *task;
        while ((task = self->done_head)) {
            self->done_head = task->next;
            zjq_task_destroy (&task);
        }
        self->done_tail = NULL;
        zlistx_purge (self->progress);
    }
    pthread_mutex_unlock (&self->lock);
    for (int i = 0; i < self->nthreads; i++)
        if (orphan)
            pthread_detach (self->threads [i]);
        else
            pthread_join (self->threads [i], NULL);
    s_pool_release (self);
}


//  --------------------------------------------------------------------------
//  Self-test

//  Payload "p": report progress; "w": wait for cancellation; "s": sleep
//  100 ms ignoring it; else succeed.
static int
s_test_handler (zjq_task_t *task, void *arg)
{
    atomic_int *runs = (atomic_int *) arg;
    atomic_fetch_add (runs, 1);
    const char *payload = (const char *) zjq_task_payload (task);
    if (*payload == 'p')
        zjq_task_progress (task, 0.5, "half");
    else
    if (*payload == 'w')
        return zjq_task_wait_cancelled (task, 5000) ? -1 : 0;
    else
    if (*payload == 's')
        usleep (100 * 1000);
    return 0;
}

static void
s_test_progress (zjq_task_t *task, double fraction, const char *text, void *arg)
{
    assert (fraction == 0.5);
    assert (streq (text, "half"));
    (*(int *) arg)++;
}

static zjq_task_t *
s_test_task (zjq_pool_t *pool, zjq_worker_handler_t *handler, int index, const char *payload)
{
    char id [32];
    snprintf (id, sizeof id, "1-%d", index);
    zframe_t *frame = zframe_new (payload, strlen (payload));
    zjq_task_t *task = zjq_task_new (pool, NULL, id, "q", 1, &frame, handler, 1024, INT64_MAX);
    assert (task && !frame);
    return task;
}

//  Wait for the pool's wake, collect; returns the done tasks (destroyed),
//  after checking each succeeded or was cancelled.
static int
s_test_collect (zjq_pool_t *pool, int *progress)
{
    zmq_pollitem_t item = { NULL, zjq_pool_wake_fd (pool), ZMQ_POLLIN, 0 };
    int done = 0;
    if (zmq_poll (&item, 1, 5000) > 0) {
        zjq_worker_eventfd_drain (zjq_pool_wake_fd (pool));
        zjq_task_t *task = zjq_pool_collect (pool, s_test_progress, progress);
        while (task) {
            zjq_task_t *next = task->next;
            assert (task->state == ZJQ_TASK_DONE);
            assert (task->rc == 0 || atomic_load (&task->cancelled));
            zjq_task_destroy (&task);
            task = next;
            done++;
        }
    }
    return done;
}

//  Wait until a handler thread took the task.
static void
s_test_wait_running (zjq_pool_t *pool, zjq_task_t *task)
{
    for (int spins = 0; spins < 5000; spins++) {
        pthread_mutex_lock (&pool->lock);
        bool started = task->state == ZJQ_TASK_RUNNING;
        pthread_mutex_unlock (&pool->lock);
        if (started)
            return;
        usleep (1000);
    }
    assert (false);
}

void
zjq_pool_test (bool verbose)
{
    atomic_int runs;
    atomic_init (&runs, 0);
    zjq_worker_handler_t handler = { "q", s_test_handler, &runs };

    //  Two threads run two batches, every task once, progress reported
    zjq_pool_t *pool = zjq_pool_new (2);
    assert (pool);
    enum { COUNT = 200 };
    for (int batch = 0; batch < 2; batch++) {
        zjq_task_t *head = NULL, *tail = NULL;
        for (int index = 0; index < COUNT / 2; index++) {
            zjq_task_t *task = s_test_task (pool, &handler, index, index % 10 ? "x" : "p");
            task->prev = tail;
            if (tail)
                tail->next = task;
            else
                head = task;
            tail = task;
        }
        zjq_pool_push (pool, head, tail);
    }
    int done = 0, progress = 0, rounds = 0;
    while (done < COUNT && rounds++ < 1000)
        done += s_test_collect (pool, &progress);
    assert (done == COUNT);
    assert (atomic_load (&runs) == COUNT);
    assert (progress >= 1 && progress <= COUNT / 10);
    zjq_pool_stop (&pool, false);
    assert (pool == NULL);

    //  One thread: a running task is cancelled, a queued one withdrawn
    pool = zjq_pool_new (1);
    zjq_task_t *running = s_test_task (pool, &handler, 1, "w");
    zjq_task_t *queued = s_test_task (pool, &handler, 2, "x");
    running->next = queued;
    queued->prev = running;
    zjq_pool_push (pool, running, queued);
    s_test_wait_running (pool, running);
    assert (zjq_pool_withdraw (pool, queued));
    assert (queued->state == ZJQ_TASK_DONE);
    zjq_task_destroy (&queued);
    assert (!zjq_pool_cancel (pool, running));     //  it runs: not ours yet
    done = 0;
    for (rounds = 0; done < 1 && rounds < 100; rounds++)
        done += s_test_collect (pool, &progress);
    assert (done == 1);
    zjq_pool_stop (&pool, false);

    //  A handler that ignores cancellation: the pool is left to it
    pool = zjq_pool_new (1);
    zjq_task_t *stuck = s_test_task (pool, &handler, 3, "s");
    zjq_pool_push (pool, stuck, stuck);
    s_test_wait_running (pool, stuck);  //  (the FIFO is empty when a worker stops)
    zjq_pool_stop (&pool, true);        //  the thread destroys the task, frees the pool
    usleep (300 * 1000);

    //  No threads (inline handlers): only the wake fd
    pool = zjq_pool_new (0);
    assert (pool && zjq_pool_wake_fd (pool) >= 0);
    zjq_pool_stop (&pool, false);
    if (verbose)
        printf ("pool: %d tasks on 2 threads, cancel, withdraw, orphan\n", COUNT);
}
