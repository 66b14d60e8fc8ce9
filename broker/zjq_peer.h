/*  zjq_peer.h: one worker connection, as the broker knows it.

    A peer is keyed by its ROUTER routing id. It holds what the worker said
    in READY (worker id, host, pid, version, capacity, heartbeat interval),
    its CURVE key, the queues it serves, and the (id, attempt) pairs of the
    JOBs it has not answered yet: one slot each, up to its capacity. Its
    credit is capacity minus the slots in use.

    While it can take jobs, the peer is listed on the worker list of each of
    its queues (zjq_queue_worker_append), so a queue with waiting jobs finds
    it. The peer knows nothing of jobs or of the broker: the broker decides
    when to list it, what to dispatch, and when to forget it.              */

#ifndef ZJQ_PEER_H_INCLUDED
#define ZJQ_PEER_H_INCLUDED

#include "zjq_queue.h"
#include "zjq_cert.h"

//  zjq_peer_t is declared in zjq_jobentry.h (a job knows its worker)

//  What a READY said, for zjq_peer_new (strings are copied).
typedef struct {
    const char *worker_id;      //  1-256 bytes
    const char *host;           //  or NULL: "?"
    const char *version;        //  or NULL: "?"
    const char *user_key;       //  its CURVE public key, or NULL
    long long pid;
    int64_t capacity;           //  jobs it runs at once, >= 1
    int64_t heartbeat_ms;       //  its heartbeat interval
    size_t queue_max;           //  queues it may add (zjq_peer_add_queue)
} zjq_peer_info_t;

//  Create a peer for a routing id (copied) whose hex text is key, seen and
//  sent to at now (monotonic ms). It serves no queue yet. Returns NULL if
//  out of memory.
zjq_peer_t *
    zjq_peer_new (const byte *routing_id, size_t size, const char *key,
                  const zjq_peer_info_t *info, int64_t now);

//  Destroy a peer; idempotent; nulls the pointer. It must not be listed on
//  queues that are gone (zjq_peer_unlist first if they may be).
void
    zjq_peer_destroy (zjq_peer_t **self_p);

//  Add a queue it serves. Returns 0, or 1 if it serves it already
//  (unchanged). Call before zjq_peer_list; at most info->queue_max times.
int
    zjq_peer_add_queue (zjq_peer_t *self, zjq_queue_t *queue);
//  Queues it serves, and the one at index (< count), in READY order.
size_t
    zjq_peer_queue_count (zjq_peer_t *self);
zjq_queue_t *
    zjq_peer_queue (zjq_peer_t *self, size_t index);

//  --- What READY said; owned by the peer.
zframe_t *
    zjq_peer_routing_id (zjq_peer_t *self);
//  Routing id in hex: the peer's key in the broker's table.
const char *
    zjq_peer_key (zjq_peer_t *self);
const char *
    zjq_peer_worker_id (zjq_peer_t *self);
const char *
    zjq_peer_host (zjq_peer_t *self);
const char *
    zjq_peer_version (zjq_peer_t *self);
//  Its CURVE public key, or "".
const char *
    zjq_peer_user_key (zjq_peer_t *self);
long long
    zjq_peer_pid (zjq_peer_t *self);
int64_t
    zjq_peer_capacity (zjq_peer_t *self);
//  A CREDIT changed the capacity (>= 1). Lowered below the JOBs it holds,
//  it only gets no new ones until it answered enough (the caller unlists
//  it when it can take none).
void
    zjq_peer_set_capacity (zjq_peer_t *self, int64_t capacity);
int64_t
    zjq_peer_heartbeat_ms (zjq_peer_t *self);

//  --- Liveness: monotonic ms of its last message, and of our last to it.
int64_t
    zjq_peer_last_seen (zjq_peer_t *self);
void
    zjq_peer_set_seen (zjq_peer_t *self, int64_t now);
int64_t
    zjq_peer_last_sent (zjq_peer_t *self);
void
    zjq_peer_set_sent (zjq_peer_t *self, int64_t now);

//  --- Credit. Capacity minus the JOBs it owes an answer for.
int64_t
    zjq_peer_credit (zjq_peer_t *self);
//  True if it may get a JOB now: credit left, not draining, reachable, and
//  (if bounded: zjq_peer_set_bytes_max) its JOBs' payload bytes under the
//  bound or no JOB outstanding (so it always gets one).
bool
    zjq_peer_can_take (zjq_peer_t *self);
//  It takes no more jobs (DISCONNECT with drain, or being forgotten).
bool
    zjq_peer_draining (zjq_peer_t *self);
void
    zjq_peer_set_draining (zjq_peer_t *self);
//  A send to it failed: the broker forgets it at its next scan.
bool
    zjq_peer_unreachable (zjq_peer_t *self);
void
    zjq_peer_set_unreachable (zjq_peer_t *self);
//  JOBs it owes an answer for, and results it has delivered.
size_t
    zjq_peer_outstanding (zjq_peer_t *self);
uint64_t
    zjq_peer_completed (zjq_peer_t *self);
void
    zjq_peer_count_completed (zjq_peer_t *self);

//  --- Listing on the worker lists of its queues.
//  True while it is listed.
bool
    zjq_peer_listed (zjq_peer_t *self);
//  List it on each of its queues (it must not be listed yet). Asserts on
//  out of memory (the queue's list node).
void
    zjq_peer_list (zjq_peer_t *self);
//  Take it off its queues' lists; nothing if it is not listed.
void
    zjq_peer_unlist (zjq_peer_t *self);

//  --- Slots: the (id, attempt) pairs of JOBs it has not answered.
//  Record a JOB it now owes an answer for. Returns the slot index, or -1 if
//  out of memory (unchanged). The caller checked the credit.
int
    zjq_peer_slot_take (zjq_peer_t *self, const char *id, int attempt);
//  The slot of (id, attempt), or -1 if it owes no such answer. hint is the
//  slot the caller believes it is in (UINT32_MAX if none): checked first,
//  then every slot is searched.
int
    zjq_peer_slot_find (zjq_peer_t *self, uint32_t hint, const char *id, int attempt);
//  Free a slot in use (an index from take or find); its bytes leave the
//  peer's count.
void
    zjq_peer_slot_release (zjq_peer_t *self, int index);
//  The payload bytes of the JOB in a slot in use (0 when taken): they count
//  in zjq_peer_bytes until the slot is released.
void
    zjq_peer_slot_set_bytes (zjq_peer_t *self, int index, uint64_t bytes);
//  Payload bytes of the JOBs it has not answered.
uint64_t
    zjq_peer_bytes (zjq_peer_t *self);
//  Bound those bytes (0: no bound, the default): past it zjq_peer_can_take
//  says no unless nothing is outstanding.
void
    zjq_peer_set_bytes_max (zjq_peer_t *self, uint64_t bytes_max);
//  Slot indexes run below zjq_peer_slot_max; the id of slot index, with
//  *attempt_p, or NULL if the slot is free.
size_t
    zjq_peer_slot_max (zjq_peer_t *self);
const char *
    zjq_peer_slot (zjq_peer_t *self, size_t index, int *attempt_p);

//  Self test
void
    zjq_peer_test (bool verbose);

#endif
