/*  zjq_jobtable.h: every job the broker holds, from SUBMIT until its outcome
    expires.

    The table owns its entries. It indexes them by id and by idempotency key,
    moves them through their states (queued -> running -> ended, with running
    -> queued for a retry) while keeping the counts the limits and STATS
    need, and keeps the broker's single deadline heap: a running job sits in
    it until its attempt times out, an ended job until its outcome expires.
    A second heap orders the stored results for eviction when they exceed
    the result memory bound (earliest expiry first).

    The table does not know about queue heaps, workers or the network: the
    broker takes a job out of its queue heap before it starts or ends it,
    and tells the workers.                                                   */

#ifndef ZJQ_JOBTABLE_H_INCLUDED
#define ZJQ_JOBTABLE_H_INCLUDED

#include "zjq_job.h"
#include "zjq_heap.h"
#include "zjq_journal.h"

typedef struct _zjq_jobtable_t zjq_jobtable_t;
typedef struct _zjq_queue_t zjq_queue_t;
typedef struct _zjq_peer_t zjq_peer_t;

//  In-memory bookkeeping around one job record. Never persisted.
typedef struct {
    zjq_job_t job;              //  the record
    zjq_queue_t *queue;         //  the queue named by job.queue (not owned)
    size_t queue_index;         //  position in the queue's heap, or ZJQ_HEAP_NONE
    size_t deadline_index;      //  position in the deadline heap, or ZJQ_HEAP_NONE
    size_t result_index;        //  position in the result heap, or ZJQ_HEAP_NONE
    int64_t deadline;           //  monotonic ms: attempt timeout, or outcome expiry
    zjq_peer_t *peer;           //  the worker running the current attempt, or NULL
    uint32_t peer_slot;         //  the attempt's slot on that worker (the broker's)
    zframe_t **waiters;         //  routing ids of clients to send DONE to
    uint32_t waiter_count;      //  waiters in use
    uint32_t waiter_max;        //  waiters allocated
    void *older;                //  previous entry in insertion order, or NULL
    void *newer;                //  next entry in insertion order, or NULL
} zjq_jobentry_t;

//  What the table counts; read-only for callers.
typedef struct {
    uint64_t jobs;              //  entries in the table
    uint64_t queued;            //  in state queued
    uint64_t running;           //  in state running
    uint64_t ended;             //  ended, outcome still stored
    uint64_t queued_bytes;      //  payload bytes of queued and running jobs
    uint64_t result_bytes;      //  result bytes of ended jobs
    uint64_t inserted;          //  jobs ever inserted
    uint64_t expired;           //  ended jobs removed (expiry or eviction)
} zjq_jobtable_stats_t;

//  Create a table for a broker generation (its start time in Unix ms).
//  Returns NULL if out of memory.
zjq_jobtable_t *
    zjq_jobtable_new (uint64_t generation);

//  Destroy the table and every job in it; idempotent; nulls the pointer.
void
    zjq_jobtable_destroy (zjq_jobtable_t **self_p);

//  The generation the table issues ids in.
uint64_t
    zjq_jobtable_generation (zjq_jobtable_t *self);

//  Add a new queued job. From spec it takes queue, priority, max_attempts,
//  job_timeout_ms, result_ttl_ms and key (copied; may be NULL); it assigns
//  id, sequence, order and created_ms itself. queue is the queue object
//  (kept in the entry, not owned). Takes the payload and nulls *payload_p.
//  The entry is in no queue heap yet. Returns the entry, or NULL if out of
//  memory (the table is unchanged and *payload_p left with the caller).
zjq_jobentry_t *
    zjq_jobtable_insert (zjq_jobtable_t *self, const zjq_job_t *spec,
                         zjq_queue_t *queue, zframe_t **payload_p);

//  Find a job by id; NULL if not in the table.
zjq_jobentry_t *
    zjq_jobtable_lookup (zjq_jobtable_t *self, const char *id);

//  Find a job by id for a client request. Returns 0 and the entry, or a
//  negative code and a static message saying why there is no entry:
//  ZJQ_EBADID (not a job id), ZJQ_EEXPIRED (issued by this generation, or
//  an earlier one the table knows of, and since removed) or ZJQ_ENOTFOUND
//  (never issued, or from a generation the table does not know).
int
    zjq_jobtable_find (zjq_jobtable_t *self, const char *id,
                       zjq_jobentry_t **entry_p, const char **message_p);

//  Find the job holding an idempotency key within a queue; NULL if none.
zjq_jobentry_t *
    zjq_jobtable_lookup_key (zjq_jobtable_t *self, const char *queue, const char *key);

//  A queued job (already out of its queue heap) starts its next attempt:
//  state running, attempt + 1, started_ms now, progress cleared, and it
//  enters the deadline heap at now + job_timeout_ms (now is monotonic ms).
void
    zjq_jobtable_start (zjq_jobtable_t *self, zjq_jobentry_t *entry, int64_t now);

//  A running job goes back to queued after a failed attempt: it leaves the
//  deadline heap, loses its peer, and error (copied, may be NULL) becomes
//  its last error. The caller puts it back in its queue heap.
void
    zjq_jobtable_requeue (zjq_jobtable_t *self, zjq_jobentry_t *entry, const char *error);

//  A running job that its worker handed back without starting it (a
//  prefetched job when the worker shuts down) goes back to queued as if that
//  attempt had never been made: attempt - 1, its error unchanged. The caller
//  puts it back in its queue heap.
void
    zjq_jobtable_unstart (zjq_jobtable_t *self, zjq_jobentry_t *entry);

//  A queued (out of its queue heap) or running job ends in state (succeeded,
//  failed or cancelled). error is copied if not NULL; *result_p, if given,
//  is taken and nulled. The payload is freed, the peer link cleared, and the
//  job waits in the deadline heap until now + result_ttl_ms. A failed job
//  is a dead letter: it keeps its payload, waits at least the dead-letter
//  TTL, and goes on the dead-letter list. Waiters are
//  left for the caller to notify.
void
    zjq_jobtable_finish (zjq_jobtable_t *self, zjq_jobentry_t *entry, zjq_state_t state,
                         const char *error, zframe_t **result_p, int64_t now);

//  Remove a job from the table and free it; nulls *entry_p. Removing an
//  ended job counts as expired. The caller has taken it out of its queue
//  heap and its worker first.
void
    zjq_jobtable_remove (zjq_jobtable_t *self, zjq_jobentry_t **entry_p);

//  The earliest deadline in the table (monotonic ms), or INT64_MAX if none.
int64_t
    zjq_jobtable_next_deadline (zjq_jobtable_t *self);

//  Take the job with the earliest deadline out of the deadline heap if that
//  deadline is <= now, and return it; NULL if nothing is due. The caller
//  must then requeue, finish or remove it (a running job has timed out, an
//  ended one has expired).
zjq_jobentry_t *
    zjq_jobtable_pop_due (zjq_jobtable_t *self, int64_t now);

//  Drop ended jobs with stored results, earliest expiry first, until the
//  stored result bytes are <= max_bytes. Returns how many were dropped.
size_t
    zjq_jobtable_trim_results (zjq_jobtable_t *self, uint64_t max_bytes);

//  The table's counters.
const zjq_jobtable_stats_t *
    zjq_jobtable_stats (zjq_jobtable_t *self);

//  Register a client (routing id bytes, copied) to receive DONE for this job.
//  Returns 0 if added, 1 if it was already registered, -1 if out of memory.
int
    zjq_jobentry_add_waiter (zjq_jobentry_t *entry, const void *routing_id, size_t size);

//  Forget all waiters of a job.
void
    zjq_jobentry_clear_waiters (zjq_jobentry_t *entry);

//  A failed job (a dead letter) is kept at least ttl_ms after it failed,
//  whatever its result TTL, with its payload and attempt history, and sits
//  on the dead-letter list. Set it before restoring jobs. Default 0.
void
    zjq_jobtable_set_dead_letter_ttl (zjq_jobtable_t *self, int64_t ttl_ms);

//  Record a failed attempt of a queued or running job in its history (made
//  at the first one) and journal it. Call it before requeueing or finishing
//  the job. Returns 0, or -1 if out of memory (not recorded).
int
    zjq_jobtable_add_attempt (zjq_jobtable_t *self, zjq_jobentry_t *entry,
                              const zjq_attempt_t *attempt);

//  A dead letter goes back to queued with a fresh attempt budget (its own
//  max_attempts more attempts; numbering goes on), off the dead-letter
//  list; journaled. The caller checks the job limits first and puts it in
//  its queue heap. Returns 0, or ZJQ_ESTATE with *message_p saying why not
//  (not failed, payload not kept, too many attempts in all).
int
    zjq_jobtable_retry (zjq_jobtable_t *self, zjq_jobentry_t *entry, const char **message_p);

//  Walk the dead letters, oldest failure first: the first, or the one after
//  entry (which must be a dead letter); NULL at the end.
zjq_jobentry_t *
    zjq_jobtable_dead_first (zjq_jobtable_t *self);
zjq_jobentry_t *
    zjq_jobtable_dead_next (zjq_jobtable_t *self, zjq_jobentry_t *entry);

//  True if the job is on the dead-letter list.
bool
    zjq_jobtable_is_dead (zjq_jobtable_t *self, zjq_jobentry_t *entry);

//  The dead-letter list (count, bytes of payloads and histories).
const zjq_deadlist_t *
    zjq_jobtable_dead_letters (zjq_jobtable_t *self);

//  Remove the oldest dead letters until at most max_count are left and
//  they hold at most max_bytes. Returns how many were removed.
size_t
    zjq_jobtable_trim_dead (zjq_jobtable_t *self, uint64_t max_count, uint64_t max_bytes);

//  Journal every change from now on: insert appends the whole record,
//  start, requeue and finish its new state, remove its removal. NULL stops.
//  The journal is not owned.
void
    zjq_jobtable_set_journal (zjq_jobtable_t *self, zjq_journal_t *journal);

//  Put back a job read from the journal: queued, or ended with an outcome
//  that has not expired. The struct is copied and its key, error, payload,
//  result and history are taken (the caller only frees the struct); job->queue must
//  outlive the entry. An ended job waits in the deadline heap until its
//  expires_ms (wall clock; now is monotonic ms); a failed one until its
//  end plus the dead-letter TTL in force, on the dead-letter list. Not journaled. Call it in
//  submission order. Returns the entry (a queued one is in no queue heap
//  yet), or NULL if the id or key is already taken or memory ran out: then
//  the job's fields are freed.
zjq_jobentry_t *
    zjq_jobtable_restore (zjq_jobtable_t *self, zjq_job_t *job, zjq_queue_t *queue,
                          int64_t now);

//  Remember that an earlier generation issued sequences 1..last_sequence,
//  so that zjq_jobtable_find answers EEXPIRED for them.
void
    zjq_jobtable_add_generation (zjq_jobtable_t *self, uint64_t generation,
                                 uint64_t last_sequence);

//  Generations known to the table: index 0 is this one (with the last
//  sequence issued so far), then the earlier ones. Returns false past the
//  end.
bool
    zjq_jobtable_generation_at (zjq_jobtable_t *self, size_t index, uint64_t *generation,
                                uint64_t *last_sequence);

//  Begin a scan of the jobs in the table now, oldest first. Jobs inserted
//  later are not returned; jobs removed meanwhile are skipped.
void
    zjq_jobtable_scan_start (zjq_jobtable_t *self);

//  The next job of the scan, or NULL when it is over.
zjq_jobentry_t *
    zjq_jobtable_scan_next (zjq_jobtable_t *self);

//  Self test
void
    zjq_jobtable_test (bool verbose);

#endif
