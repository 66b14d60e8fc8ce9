/*  zjq_jobentry_private.h: the side block and the helpers the job table
    shares with zjq_jobentry.c. Not for use outside the job table's files. */

#ifndef ZJQ_JOBENTRY_PRIVATE_H_INCLUDED
#define ZJQ_JOBENTRY_PRIVATE_H_INCLUDED

#include "zjq_jobentry.h"

#define ZJQ_JOBENTRY_FRAME   0x01       //  flags: payload area holds a zframe_t *
#define ZJQ_JOBENTRY_NOPAY   0x02       //  flags: the payload is gone (job ended)
#define ZJQ_JOBENTRY_RESULT  0x04       //  flags: payload area holds the result
#define ZJQ_JOBENTRY_WIDE    0x08       //  flags: attempt counts are in the side block
#define ZJQ_DURATION_SIDE    UINT16_MAX //  a duration kept in the side block


//  Fields only some jobs need. The deadline and result heaps hold side
//  blocks (so that comparing two reads one block each), which point back
//  at their entries.
struct _zjq_jobside_t {
    zjq_jobentry_t *entry;      //  the entry this block belongs to
    uint64_t order;             //  the entry's order (the heaps' tie-break)
    char *key;                  //  idempotency key, or NULL
    char *error;                //  final error, or the last failed attempt's reason
    char *progress_message;     //  or NULL
    zframe_t *result;           //  the result of a succeeded job, or NULL
    zjq_peer_t *peer;           //  the worker running the current attempt, or NULL
    byte *waiters;              //  clients to send DONE to, packed: for each, a
                                //  size byte and its routing id, then a size
                                //  byte and its CURVE key (Z85; 0: none)
    int64_t deadline;           //  monotonic ms: attempt timeout, or outcome expiry
    int64_t started_ms;         //  start of the current or last attempt; 0 = never
    int64_t finished_ms;        //  0 until the job ends
    int64_t expires_ms;         //  when the outcome is dropped; 0 until the end
    int64_t job_timeout_ms;     //  exact, when the entry says ZJQ_DURATION_SIDE
    int64_t result_ttl_ms;      //  exact, when the entry says ZJQ_DURATION_SIDE
    double progress;            //  0..1 as reported by the worker; < 0 = none
    zjq_history_t *history;     //  failed attempts (and dead-letter links), or NULL
    int32_t attempt;            //  exact, when the entry says ZJQ_JOBENTRY_WIDE
    int32_t max_attempts;       //  ditto
    uint32_t deadline_index;    //  position in the deadline heap, or ZJQ_JOBENTRY_NONE
    uint32_t result_index;      //  position in the result heap, or ZJQ_JOBENTRY_NONE
    uint32_t peer_slot;         //  the attempt's slot on the worker (the broker's)
    uint32_t waiter_count;      //  waiters in use
    uint32_t waiter_bytes;      //  bytes of waiters in use
    uint32_t waiter_max;        //  bytes of waiters allocated
};

//  An interned submitter: a CURVE key (the job's owner), or in plaintext a
//  connection (zjq_jobtable_set_connection; never the job's owner)
struct _zjq_owner_t {
    size_t refs;                //  entries pointing here
    uint64_t active;            //  of them, jobs queued or running
    uint64_t active_bytes;      //  their payload bytes
    bool connection;            //  a plaintext connection, not a key
    char text [];               //  the key (Z85), or "~" and the routing id in hex
};

//  A new entry with room for size payload bytes inline, or for a frame if
//  size is over ZJQ_JOBENTRY_INLINE_MAX; its indexes unset. NULL if out of
//  memory. Freed by the table (zjq_jobtable_entry_free: owners are the
//  table's).
zjq_jobentry_t *
    zjq_jobentry_new (size_t size);

//  The payload frame of an entry whose payload is a frame, else NULL; and
//  setting it (the entry has ZJQ_JOBENTRY_FRAME).
zframe_t *
    zjq_jobentry_frame (const zjq_jobentry_t *entry);
void
    zjq_jobentry_set_frame (zjq_jobentry_t *entry, zframe_t *frame);

//  The side block, allocated if need be; NULL if out of memory.
zjq_jobside_t *
    zjq_jobentry_side_try (zjq_jobentry_t *entry);

//  The side block for a state change, which cannot be undone half-way: if
//  memory runs out, logs it and aborts.
zjq_jobside_t *
    zjq_jobentry_side (zjq_jobentry_t *entry);

//  Free a side block and what it holds; nulls the pointer.
void
    zjq_jobentry_side_free (zjq_jobside_t **side_p);

//  Store a duration in the entry's field, or exactly in the side block if
//  it does not fit. Returns 0, or -1 if out of memory for the side block.
int
    zjq_jobentry_set_duration (zjq_jobentry_t *entry, uint16_t *field, int64_t ms, bool timeout);

//  Store attempt counts: in the entry while they fit 16 bits, else in the
//  side block from then on. Returns 0, or -1 if out of memory (unchanged).
int
    zjq_jobentry_set_attempts (zjq_jobentry_t *entry, int attempt, int max_attempts);

//  Keep the result of an ended job: inline if its payload area (room
//  bytes) is free and the result fits, else as a frame in the side block,
//  taken from *frame_p (then nulled) or made from the bytes. Returns 0, or
//  -1 if out of memory.
int
    zjq_jobentry_store_result (zjq_jobentry_t *entry, size_t room, zframe_t **frame_p,
                               const void *data, size_t size);

//  The payload goes (the job ended): a frame is freed; returns the room
//  the payload area has for a result.
size_t
    zjq_jobentry_drop_payload (zjq_jobentry_t *entry);

#endif
