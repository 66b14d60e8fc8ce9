/*  zjq_jobentry.h: one job as the broker holds it, and what reads it.

    The compact entry (one allocation per queued job, a small payload
    inline) and its side block (zjq_jobentry.c: what only some jobs need).
    The queue heaps read an entry's priority, order and queue_index through
    this header alone; the job table (zjq_jobtable.h) owns the entries and
    moves them through their states. Reading an entry's fields, its waiters,
    its worker and its progress are here; changing its state is the table's. */

#ifndef ZJQ_JOBENTRY_H_INCLUDED
#define ZJQ_JOBENTRY_H_INCLUDED

#include "zjq_job.h"

typedef struct _zjq_queue_t zjq_queue_t;
typedef struct _zjq_peer_t zjq_peer_t;
typedef struct _zjq_jobside_t zjq_jobside_t;
typedef struct _zjq_owner_t zjq_owner_t;


//  Payloads of at most this many bytes live inside the entry; larger ones
//  stay in the frame they arrived in, so a JOB sends them without a copy.
#define ZJQ_JOBENTRY_INLINE_MAX 1024
//  Largest generation, sequence and order an entry holds (48 bits)
#define ZJQ_JOBENTRY_48_MAX ((UINT64_C (1) << 48) - 1)

//  queue_index of an entry in no queue heap
#define ZJQ_JOBENTRY_NONE UINT32_MAX

//  One job in the table: its record in compact form plus the bookkeeping
//  to find and schedule it. Never persisted. One allocation holds what
//  every queued job needs, with a small payload inline; what only some
//  jobs need (the idempotency key, error, result, progress, waiters, the
//  worker running it, deadlines, long durations, the attempt history,
//  attempt counts past 16 bits after retries) is in a side block that the
//  table allocates on first use (private to zjq_jobtable.c).
//  The fields are the table's: callers read them through the accessors
//  below (zjq_queue reads priority, order and queue_index directly).
typedef struct {
    //  68 bytes before the payload: a 100-byte job is one 176-byte malloc
    //  chunk. Ids, orders and the generation fit 48 bits (ZJQ_JOBENTRY_48_MAX).
    uint64_t generation : 48;   //  the id is "<generation>-<sequence>", base 36
    uint64_t payload_size : 16; //  bytes inline (0 when the payload is a frame)
    uint64_t sequence : 48;
    uint64_t max_attempts : 16; //  1..1000; ZJQ_JOBENTRY_WIDE: the side block has it
    uint64_t order : 48;        //  submission order, broker-wide; kept on retry
    uint64_t state : 8;         //  zjq_state_t
    uint64_t flags : 8;         //  ZJQ_JOBENTRY_FRAME ...
    int64_t created_ms;         //  wall clock, Unix ms
    zjq_queue_t *queue;         //  the job's queue, which names it (not owned)
    zjq_owner_t *owner;         //  interned submitter key, or NULL
    zjq_jobside_t *side;        //  the side block, or NULL
    uint32_t queue_index;       //  position in the queue's heap, or ZJQ_JOBENTRY_NONE
    uint16_t job_timeout;       //  per attempt, coded (zjq_jobentry_set_duration);
                                //  ZJQ_DURATION_SIDE: the side block has it
    uint16_t result_ttl;        //  ditto, for the outcome
    int16_t priority;           //  -1000..1000, higher runs first
    uint16_t attempt;           //  current or last attempt, 0 before the first; ditto
    byte payload [];            //  the inline bytes, or a zframe_t * (unaligned)
} zjq_jobentry_t;

//  Bytes the table keeps for a job (its payload or its result).
typedef struct {
    const byte *data;           //  the bytes, or NULL if there are none
    size_t size;                //  bytes in data
    zframe_t *frame;            //  the frame holding them, or NULL if inline
} zjq_jobbytes_t;

//  Register a client (routing id bytes, copied, 1..255 of them) to receive
//  DONE for this job, with the CURVE key (Z85) it asked with, or NULL.
//  Returns 0 if added, 1 if it was already registered, -1 if out of memory
//  or the routing id is empty or too long.
int
    zjq_jobentry_add_waiter (zjq_jobentry_t *entry, const void *routing_id, size_t size,
                             const char *key);

//  Forget all waiters of a job.
void
    zjq_jobentry_clear_waiters (zjq_jobentry_t *entry);

//  The clients waiting for DONE: how many, and the routing id of each
//  (index < count): its bytes (the entry's, valid until the waiters
//  change) and *size_p, and its key copied into key (key_max bytes; ""
//  if none).
uint32_t
    zjq_jobentry_waiter_count (const zjq_jobentry_t *entry);
const byte *
    zjq_jobentry_waiter (const zjq_jobentry_t *entry, uint32_t index, size_t *size_p,
                         char *key, size_t key_max);

//  --- Reading a job. The entry's record fields, as in zjq_job_t:

//  The job id, as a value: zjq_jobentry_id (entry).text.
static inline zjq_jobid_text_t
zjq_jobentry_id (const zjq_jobentry_t *entry)
{
    return zjq_jobid_text (entry->generation, entry->sequence);
}
static inline zjq_state_t
zjq_jobentry_state (const zjq_jobentry_t *entry)
{
    return (zjq_state_t) entry->state;
}
static inline bool
zjq_jobentry_ended (const zjq_jobentry_t *entry)
{
    return entry->state == ZJQ_STATE_SUCCEEDED || entry->state == ZJQ_STATE_FAILED
        || entry->state == ZJQ_STATE_CANCELLED;
}
//  Attempt counts (beyond 16 bits only after many retries)
int
    zjq_jobentry_attempt (const zjq_jobentry_t *entry);
int
    zjq_jobentry_max_attempts (const zjq_jobentry_t *entry);
static inline int
zjq_jobentry_priority (const zjq_jobentry_t *entry)
{
    return entry->priority;
}
//  The job's queue object (not owned) and its name.
static inline zjq_queue_t *
zjq_jobentry_queue (const zjq_jobentry_t *entry)
{
    return entry->queue;
}
//  True while the job sits in its queue's heap.
static inline bool
zjq_jobentry_in_queue (const zjq_jobentry_t *entry)
{
    return entry->queue_index != ZJQ_JOBENTRY_NONE;
}
int64_t
    zjq_jobentry_job_timeout_ms (const zjq_jobentry_t *entry);
int64_t
    zjq_jobentry_result_ttl_ms (const zjq_jobentry_t *entry);
//  The submitter's CURVE key (Z85), or "" if none.
const char *
    zjq_jobentry_owner (const zjq_jobentry_t *entry);
//  Times, wall clock (Unix ms): submitted; start of the current or last
//  attempt (0 = never); end and expiry of the outcome (0 until the end).
static inline int64_t
zjq_jobentry_created_ms (const zjq_jobentry_t *entry)
{
    return entry->created_ms;
}
int64_t
    zjq_jobentry_started_ms (const zjq_jobentry_t *entry);
int64_t
    zjq_jobentry_finished_ms (const zjq_jobentry_t *entry);
int64_t
    zjq_jobentry_expires_ms (const zjq_jobentry_t *entry);
//  A running job's progress (0..1), or < 0 if none was reported.
double
    zjq_jobentry_progress (const zjq_jobentry_t *entry);
//  The idempotency key, the error, the progress message; NULL if none.
const char *
    zjq_jobentry_key (const zjq_jobentry_t *entry);
const char *
    zjq_jobentry_error (const zjq_jobentry_t *entry);
//  The payload of a queued or running job or of a dead letter (none after
//  any other end), and the stored result of a succeeded job (none if it
//  has none). A payload
//  larger than ZJQ_JOBENTRY_INLINE_MAX stays in the frame it arrived in,
//  a smaller one is kept inline; a result that fits where the payload was
//  is kept there, a larger one in its frame. Send a frame shared (no copy),
//  inline bytes by copying them. Valid until the entry changes.
zjq_jobbytes_t
    zjq_jobentry_payload (const zjq_jobentry_t *entry);
zjq_jobbytes_t
    zjq_jobentry_result (const zjq_jobentry_t *entry);

//  The attempt history (failed attempts), or NULL if no attempt failed and
//  the job is no dead letter. Valid until the entry changes.
const zjq_history_t *
    zjq_jobentry_history (const zjq_jobentry_t *entry);

//  --- The worker running the current attempt (set by the broker after
//  zjq_jobtable_start; cleared by requeue, unstart and finish).

//  The worker, or NULL.
zjq_peer_t *
    zjq_jobentry_peer (const zjq_jobentry_t *entry);
//  The attempt's slot on that worker (the broker's), or UINT32_MAX.
uint32_t
    zjq_jobentry_peer_slot (const zjq_jobentry_t *entry);
//  Record the worker and slot of a running job.
void
    zjq_jobentry_set_peer (zjq_jobentry_t *entry, zjq_peer_t *peer, uint32_t slot);

//  A running job's progress (0..1) and optional message (copied; NULL
//  keeps the previous one). Returns 0, or -1 if out of memory for the
//  message (the progress is still set).
int
    zjq_jobentry_set_progress (zjq_jobentry_t *entry, double progress, const char *message);

//  Self test
void
    zjq_jobentry_test (bool verbose);

#endif
