/*  zjq_jobtable.h: every job the broker holds, from SUBMIT until its outcome
    expires.

    The table owns its entries. It indexes them by id and by idempotency key,
    moves them through their states (queued -> running -> ended, with running
    -> queued for a retry) while keeping the counts the limits and STATS
    need, and keeps the broker's single deadline heap: a running job sits in
    it until its attempt times out, an ended job until its outcome expires.
    A second heap orders the stored results for eviction when they exceed
    the result memory bound (earliest expiry first). Failed jobs (dead
    letters) keep their payload and attempt history (zjq_history.h) and sit
    on a dead-letter list, oldest failure first, until they expire, are
    trimmed or are retried.

    The table does not know about queue heaps, workers, the network or the
    store: the broker takes a job out of its queue heap before it starts or
    ends it, and tells the workers; the store (zjq_store.h) learns of every
    change through the table's change hook, and rebuilds a table at start
    through its one apply path, zjq_jobtable_restore.

    Files: zjq_jobtable.c (index, state machine, counts, restore, hook),
    zjq_jobtable_dead.c (attempt histories, dead letters, retry),
    zjq_jobtable_scan.c (scans in submission order), zjq_jobentry.c (the
    entries and their side blocks).                                         */

#ifndef ZJQ_JOBTABLE_H_INCLUDED
#define ZJQ_JOBTABLE_H_INCLUDED

#include "zjq_jobentry.h"

typedef struct _zjq_jobtable_t zjq_jobtable_t;

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

//  Add a new queued job. From spec it takes priority, max_attempts,
//  job_timeout_ms, result_ttl_ms, owner and key (copied; may be NULL); it
//  assigns id, sequence, order and created_ms itself. queue is the job's
//  queue (kept in the entry, not owned; its name is the job's, spec->queue
//  is not used). Takes the payload and nulls *payload_p: a payload of at
//  most ZJQ_JOBENTRY_INLINE_MAX bytes is copied into the entry and the
//  frame destroyed, a larger one kept as it is. The entry is in no queue
//  heap yet. Returns the entry, or NULL if out of memory (the table is
//  unchanged and *payload_p left with the caller).
zjq_jobentry_t *
    zjq_jobtable_insert (zjq_jobtable_t *self, const zjq_job_t *spec,
                         zjq_queue_t *queue, zframe_t **payload_p);

//  The same with the payload given as bytes, which are copied (into the
//  entry, or into a new frame if larger than ZJQ_JOBENTRY_INLINE_MAX).
//  data may be NULL if size is 0.
zjq_jobentry_t *
    zjq_jobtable_insert_copy (zjq_jobtable_t *self, const zjq_job_t *spec,
                              zjq_queue_t *queue, const void *data, size_t size);

//  Find a job by id (as the table spells it: see zjq_jobid_parse_exact);
//  NULL if not in the table.
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
//  State changes need the job's side block: if memory for it runs out, the
//  broker logs it and aborts, as czmq does for its own allocations.
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
//  is taken and nulled. The payload is dropped (a frame is freed), and a
//  result that fits in the payload's place is copied there (its frame
//  freed), else kept as the frame. The peer link is cleared, and the job
//  waits in the deadline heap until now + result_ttl_ms. A failed job is a
//  dead letter: it keeps its payload (a result goes in a frame), waits at
//  least the dead-letter TTL, and goes on the dead-letter list. Waiters are
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

//  Longest submitter name: a routing id of up to 255 bytes in hex
#define ZJQ_SUBMITTER_MAX (2 * 255)

//  What a submitter has in the table that is queued or running (jobs, and
//  their payload bytes): the submitter is a CURVE key, which the table
//  knows from each job's owner; or with connection, a plaintext connection
//  by its routing id in hex (at most ZJQ_SUBMITTER_MAX characters), as
//  zjq_jobtable_set_connection named it. 0 and 0 for one it does not know.
//  The counts follow every change: ends, cancels, retries, removal, and
//  jobs restored from the journal (those count to their owner key; a
//  connection does not outlive the broker).
void
    zjq_jobtable_usage (zjq_jobtable_t *self, const char *submitter, bool connection,
                        uint64_t *jobs_p, uint64_t *bytes_p);

//  Count a queued job that has no owner key (plaintext) to the connection
//  that submitted it, by its routing id in hex (at most ZJQ_SUBMITTER_MAX
//  characters). Not announced, not journaled: the job's owner stays "".
//  Returns 0, or -1 if out of memory (the job then counts to no one).
int
    zjq_jobtable_set_connection (zjq_jobtable_t *self, zjq_jobentry_t *entry,
                                 const char *rid_hex);
//  The name of the job's queue (the queue object names it).
const char *
    zjq_jobentry_queue_name (const zjq_jobentry_t *entry);

//  Fill *job with a snapshot of the whole record: every pointer in it is
//  borrowed from the entry and valid until the entry changes.
void
    zjq_jobentry_record (const zjq_jobentry_t *entry, zjq_job_t *job);

//  A failed job (a dead letter) is kept at least ttl_ms after it failed,
//  whatever its result TTL, with its payload and attempt history, and sits
//  on the dead-letter list. Set it before restoring jobs. Default 0.
void
    zjq_jobtable_set_dead_letter_ttl (zjq_jobtable_t *self, int64_t ttl_ms);

//  Record a failed attempt of a queued or running job in its history (made
//  at the first one) and announce it. Call it before requeueing or finishing
//  the job. Returns 0, or -1 if out of memory (not recorded).
int
    zjq_jobtable_add_attempt (zjq_jobtable_t *self, zjq_jobentry_t *entry,
                              const zjq_attempt_t *attempt);

//  A dead letter goes back to queued with a fresh attempt budget (its own
//  max_attempts more attempts; numbering goes on), off the dead-letter
//  list; announced (as an insert). The caller checks the job limits first and puts it in
//  its queue heap. Returns 0, or ZJQ_ESTATE with *message_p saying why not
//  (not failed, payload not kept, too many attempts in all), or ZJQ_ENOMEM.
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

//  --- The change hook: how the store learns of every change (beanstalkd's
//  job.c never calls the WAL). Each callback gets the hook's arg; entry
//  callbacks get the entry after the change (read it with
//  zjq_jobentry_record). Any callback may be NULL.
typedef struct {
    //  A new job, or a dead letter requeued by a retry: the whole record
    void (*insert) (void *arg, const zjq_jobentry_t *entry);
    //  Start, requeue, unstart or finish: the job's new state
    void (*state) (void *arg, const zjq_jobentry_t *entry);
    //  A failed attempt was added to the job's history (its last one)
    void (*attempt) (void *arg, const zjq_jobentry_t *entry);
    //  The job is about to leave the table (expired, evicted, trimmed)
    void (*remove) (void *arg, const zjq_jobentry_t *entry);
    //  A queue was paused or resumed (zjq_jobtable_set_paused)
    void (*queue) (void *arg, const char *queue, bool paused);
    //  An earlier generation became known (zjq_jobtable_add_generation)
    void (*generation) (void *arg, uint64_t generation, uint64_t last_sequence);
} zjq_jobtable_hook_t;

//  Announce every change from now on through hook (copied) with arg; NULL
//  stops. Set once, after restoring, in the manner of
//  zlistx_set_comparator. Not owned.
void
    zjq_jobtable_set_hook (zjq_jobtable_t *self, const zjq_jobtable_hook_t *hook, void *arg);

//  Pause or resume a queue by name (copied): the table keeps the names of
//  the paused queues, which are part of the live state a store writes.
//  Announced. Returns 0, or -1 if out of memory (unchanged).
int
    zjq_jobtable_set_paused (zjq_jobtable_t *self, const char *queue, bool paused);

//  Given each paused queue.
typedef void (zjq_jobtable_queue_fn) (void *arg, const char *queue);

//  Call fn for every paused queue. Returns how many there are.
size_t
    zjq_jobtable_paused_queues (zjq_jobtable_t *self, zjq_jobtable_queue_fn *fn, void *arg);

//  The one apply path: put back a job the store read (zjq_replay.h folds
//  the records into such jobs): queued, or ended with an outcome
//  that has not expired. The fields are copied into a new entry and the
//  record's key, error, progress_message, payload, result and history are
//  taken and nulled (the caller only frees the struct); queue is the job's
//  queue (not owned). An ended job waits in the deadline heap until its
//  expires_ms (wall clock; now is monotonic ms); a failed one until its end
//  plus the dead-letter TTL in force, on the dead-letter list (with its
//  payload if the record kept it). Not announced. Call it in
//  submission order. Returns the entry (a queued one is in no queue heap
//  yet), or NULL after logging why if the id or key is already taken, a
//  field does not fit the entry (a priority or attempt count out of the
//  protocol's range) or memory ran out: then the job's fields are freed.
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
//  later are not returned; jobs removed meanwhile are skipped. The scan
//  holds a sorted list of the jobs (16 bytes each) until it ends. Returns
//  0, or -1 if out of memory for it (then the scan returns nothing).
int
    zjq_jobtable_scan_start (zjq_jobtable_t *self);

//  The next job of the scan, or NULL when it is over.
zjq_jobentry_t *
    zjq_jobtable_scan_next (zjq_jobtable_t *self);

//  End a scan before it is over, freeing what it holds; no-op if none.
void
    zjq_jobtable_scan_stop (zjq_jobtable_t *self);

//  Self test
void
    zjq_jobtable_test (bool verbose);

#endif
