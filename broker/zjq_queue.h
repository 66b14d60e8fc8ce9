/*  zjq_queue.h: one named queue in the broker.

    A queue holds its waiting jobs in a heap ordered for dispatch (higher
    priority first, then submission order, so a retried job keeps its place
    ahead of newer ones), with back-indexes so a cancelled job leaves in
    O(log n). It also holds the list of workers that serve it and have free
    credit, in the order they became available, for round-robin dispatch.
    The broker keeps the invariant that the heap or the worker list is empty,
    except while the queue is paused: then it dispatches none of its jobs,
    and workers with credit wait on the list as usual.

    Jobs and workers are not owned: the job table owns the jobs, the broker
    the workers. The queue interns its name: job records point at it.      */

#ifndef ZJQ_QUEUE_H_INCLUDED
#define ZJQ_QUEUE_H_INCLUDED

#include "zjq_jobentry.h"
#include "zjq_proto.h"
#include "zjq_stats.h"


typedef struct _zjq_queue_t zjq_queue_t;

//  Per-queue counts for STATS; the broker updates all but the heap size.
typedef struct {
    uint64_t running;           //  jobs of this queue running now
    uint64_t succeeded;         //  jobs that ended in each state
    uint64_t failed;
    uint64_t cancelled;
    uint64_t workers;           //  connected workers that serve this queue
    zjq_stats_queue_t stats;    //  rates and durations (zjq_stats.h)
} zjq_queue_counters_t;

//  Create an empty queue; the name is copied. Returns NULL if out of memory.
zjq_queue_t *
    zjq_queue_new (const char *name);

//  Destroy a queue (not its jobs or workers); idempotent; nulls the pointer.
void
    zjq_queue_destroy (zjq_queue_t **self_p);

//  The queue's name, owned by the queue for its whole life.
const char *
    zjq_queue_name (zjq_queue_t *self);

//  True if job a must be dispatched before job b: higher priority, then
//  earlier submission. Works across queues.
bool
    zjq_queue_before (const zjq_jobentry_t *a, const zjq_jobentry_t *b);

//  Add a job to the heap. Returns 0, or -1 if out of memory (unchanged).
int
    zjq_queue_push (zjq_queue_t *self, zjq_jobentry_t *entry);

//  The next job to dispatch, or NULL if none waits.
zjq_jobentry_t *
    zjq_queue_top (zjq_queue_t *self);

//  Take the next job to dispatch out of the heap; NULL if none.
zjq_jobentry_t *
    zjq_queue_pop (zjq_queue_t *self);

//  Take a job out of the heap wherever it is (cancel). The job must be in
//  this queue's heap.
void
    zjq_queue_remove (zjq_queue_t *self, zjq_jobentry_t *entry);

//  Jobs waiting in the heap.
size_t
    zjq_queue_size (zjq_queue_t *self);

//  The waiting job submitted first (the least submission order), or NULL
//  if none waits. O(1) while every waiting job has priority 0 (then it is
//  the top); otherwise a scan of the heap.
zjq_jobentry_t *
    zjq_queue_oldest (zjq_queue_t *self);

//  Append a worker to the available list. Returns a handle for later
//  removal or rotation, or NULL if out of memory.
void *
    zjq_queue_worker_append (zjq_queue_t *self, void *worker);

//  Remove a worker by its handle; nulls *handle_p; no-op if already NULL.
void
    zjq_queue_worker_remove (zjq_queue_t *self, void **handle_p);

//  The worker that has waited longest, or NULL; its handle in *handle_p.
void *
    zjq_queue_worker_first (zjq_queue_t *self, void **handle_p);

//  The worker after the one of *handle_p (first or next, nothing changed
//  in the list since), or NULL; its handle in *handle_p.
void *
    zjq_queue_worker_next (zjq_queue_t *self, void **handle_p);

//  Move a worker to the back of the available list (after it got a job).
void
    zjq_queue_worker_rotate (zjq_queue_t *self, void *handle);

//  Workers in the available list.
size_t
    zjq_queue_worker_count (zjq_queue_t *self);

//  The queue's counters, for the broker to update and read.
zjq_queue_counters_t *
    zjq_queue_counters (zjq_queue_t *self);

//  Whether the queue is paused (the broker dispatches none of its jobs);
//  a new queue is not.
bool
    zjq_queue_paused (zjq_queue_t *self);
void
    zjq_queue_set_paused (zjq_queue_t *self, bool paused);

//  Self test
void
    zjq_queue_test (bool verbose);

#endif
