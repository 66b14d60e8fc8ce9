/*  zjq_broker.c: the zjq broker. See zjq_broker.h and docs/protocol.md.

    Structure:
    - zjq_jobtable_t holds every job (records + bookkeeping) and the single
      deadline heap (attempt timeouts, outcome expiries).
    - zjq_queue_t per queue name: the heap of waiting jobs and the list of
      workers with free credit. Invariant: one of the two is empty.
    - zjq_peer_t per worker connection (keyed by routing id): its queues, its
      capacity, and the (id, attempt) pairs it still owes a WORK_RESULT for.
      Clients have no state beyond the waiters registered on jobs.
    - With CURVE (zjq_auth_t), the ZAP handler and a monitor of the ROUTER
      are polled too, and every message is checked against the roles its
      key holds before it reaches a handler (s_authorize).
    - The loop polls the ROUTER and the signal fd with a timeout from the
      data, drains the ROUTER (bounded per turn so timers get their turn),
      fires due deadlines and, once per heartbeat tick, scans the workers.
    - The store (zjq_store.h: the journal, or memory only) appends every change; the
      loop writes them once per turn, before it polls, and holds every
      promise to a client (ACCEPTED, DONE, JOB_RESULT, the JOB_STATUS of a
      cancel) until the journal says the records before it are durable, in
      order. Other replies (STATUS, errors) go at once. Messages to workers go at once: a worker may run a job whose
      submit was then lost, but no client was told it was accepted.
    - Operations (admin): a paused queue keeps its jobs and dispatches none
      (journaled); draining rejects new submits and finishes the rest;
      failed jobs (dead letters) keep their payload and attempt history
      (zjq_history.h) and can be listed and retried. Clients that asked for
      progress (`progress` on SUBMIT or RESULT) are pushed PROGRESS_UPDATE,
      from a table keyed by job id, so jobs pay nothing for it.             */

#include "zjq_broker.h"
#include "zjq_auth.h"
#include "zjq_proto.h"
#include "zjq_batch.h"
#include "zjq_jobtable.h"
#include "zjq_queue.h"
#include "zjq_stats.h"
#include "zjq_metrics.h"
#include "zjq_log.h"
#include "zjq_jobid.h"
#include "zjq_store.h"
#include "zjq_util.h"
#include <assert.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ZJQ_DRAIN_BATCH     4096    //  messages per loop turn before timers run
#define ZJQ_DEADLINE_BATCH  4096    //  deadlines fired per loop turn
#define ZJQ_POLL_MAX_MS     1000    //  longest poll, as a safety net
#define ZJQ_HWM             100000  //  ROUTER send and receive high-water marks
#define ZJQ_LIVENESS        3       //  heartbeats a worker may miss
#define ZJQ_KEY_MAX         256     //  idempotency key bytes
#define ZJQ_TEXT_MAX        256     //  worker id, host, version, progress message
#define ZJQ_ERROR_MAX       1024    //  error text kept from a worker
#define ZJQ_WORKER_QUEUES   64      //  queues one worker may serve
#define ZJQ_DURATION_MAX_MS (10LL * 366 * 24 * 3600 * 1000)    //  longer is forever
#define ZJQ_RID_KEY_MAX     (2 * 256 + 1)                       //  hex routing id
#define ZJQ_WARN_PER_SECOND 10      //  warnings about bad input, then quiet
#define ZJQ_TRIM_INTERVAL   1000    //  ms between checks for memory to give back
#define ZJQ_TRIM_MIN_PEAK   10000   //  jobs: below this peak, never trim
#define ZJQ_DEAD_PAGE_BYTES (24 * 1024)     //  a DEAD_LETTER_LIST page stops past this
#define ZJQ_DEAD_PAGE_MAX   10000   //  jobs in one page at most

//  One JOB a worker has not answered yet: (id, attempt)
typedef struct {
    char id [ZJQ_JOBID_MAX];    //  job id, "" when the slot is free
    int attempt;
} s_slot_t;

//  A worker connection
struct _zjq_peer_t {
    zframe_t *routing_id;       //  its ROUTER routing id
    char *key;                  //  routing id in hex: its key in broker->peers
    char *worker_id;            //  from READY
    char *host;                 //  from READY
    char *version;              //  from READY
    char user_key [ZJQ_CERT_KEY_TEXT];  //  its CURVE public key, or ""
    long long pid;              //  from READY
    zjq_queue_t **queues;       //  queues it serves, queue_count of them
    void **handles;             //  its place in each queue's worker list, or NULL
    size_t queue_count;
    int64_t capacity;           //  jobs it runs at once
    int64_t heartbeat_ms;       //  its heartbeat interval
    int64_t last_seen;          //  monotonic ms of its last message
    int64_t last_sent;          //  monotonic ms of our last message to it
    s_slot_t *slots;            //  JOBs it has not answered yet (grows up to capacity)
    uint32_t *free_slots;       //  stack of free slot indexes
    size_t slot_max;            //  slots allocated
    size_t free_count;          //  indexes on free_slots
    size_t outstanding;         //  slots in use
    uint64_t completed;         //  results applied
    bool listed;                //  on its queues' worker lists (has credit)
    bool draining;              //  takes no more jobs
    bool unreachable;           //  a send failed: forget it at the next scan
};

//  A client message waiting for the journal to reach its LSN
typedef struct {
    zjq_msg_t *msg;
    uint64_t lsn;
} s_held_t;

//  Broker-wide counters for STATS (the job table counts the rest)
typedef struct {
    uint64_t succeeded;
    uint64_t failed;
    uint64_t cancelled;
    uint64_t rejected;
    uint64_t malformed;
    uint64_t stale_results;
    uint64_t refused_handshakes;    //  CURVE handshakes that failed (not the ZAP's)
    uint64_t refused_unknown_key;   //  keys in no allow-list (ZAP, or since a reload)
    uint64_t refused_role;          //  messages a key's roles do not allow
    uint64_t denied_queue;          //  queues a key may not use
    uint64_t workers_lost;          //  workers declared dead or unreachable
    zjq_stats_ring_t submits;       //  submits over the last minute, all queues
    zjq_stats_ring_t ends;          //  jobs that ended over the last minute
} s_counters_t;

struct _zjq_broker_t {
    //  Settings
    uint64_t max_payload;       //  largest payload and result
    uint64_t max_jobs;          //  queued + running
    uint64_t max_queues;        //  distinct queue names
    uint64_t max_queued_bytes;  //  payload bytes of queued + running jobs
    uint64_t max_result_bytes;  //  stored result bytes
    int64_t result_ttl_ms;      //  defaults for SUBMIT
    int64_t job_timeout_ms;
    int max_attempts;
    int64_t dead_letter_ttl_ms; //  failed jobs are kept at least this long
    uint64_t max_dead_letters;  //  ... this many at most
    uint64_t max_dead_letter_bytes; //  ... holding this many bytes at most
    bool verbose;               //  per-message debug logs
    //  State
    zsock_t *router;            //  the one socket
    zjq_inbox_t *inbox;         //  reads it, a BATCH's messages one by one
    zjq_outbox_t *outbox;       //  what this turn sends, batched per peer
    zjq_auth_t *auth;           //  CURVE keys and ZAP handler, or NULL (plaintext)
    uint64_t generation;        //  start time, Unix ms: the id generation
    char instance [16];         //  generation in base 36
    int64_t started;            //  monotonic ms at start
    int64_t now;                //  monotonic ms, refreshed per message
    zjq_jobtable_t *jobs;       //  every job
    zhashx_t *queues;           //  name -> zjq_queue_t (owned)
    zhashx_t *peers;            //  hex routing id -> zjq_peer_t (owned)
    int64_t next_check;         //  monotonic ms of the next worker scan
    bool reap;                  //  a peer became unreachable
    uint64_t jobs_peak;         //  most jobs in the table since the last trim
    bool trim_tail;             //  the last trim left jobs: trim again once empty
    int64_t next_trim;          //  monotonic ms of the next trim check
    bool draining;              //  zjq drain: submits are rejected
    bool drain_reported;        //  the end of the drain was logged
    zhashx_t *progress_watchers;    //  job id -> zlistx_t of routing ids (zframe_t)
    s_counters_t counters;
    //  Rate limit for warnings caused by peers
    int64_t warn_window;        //  start of the current one-second window
    unsigned warn_count;        //  warnings logged in it
    uint64_t warn_suppressed;   //  warnings not logged in it
    //  Journal
    zjq_store_t *store;         //  the file journal, or memory only
    int64_t journal_wait;       //  ms the store lets the loop sleep
    s_held_t *held;             //  ring of client messages held for the journal
    size_t held_head;           //  index of the oldest
    size_t held_count;          //  messages in the ring
    size_t held_max;            //  ring size
    //  Prometheus /metrics, or NULL
    zjq_metrics_t *metrics;
    int64_t metrics_due;        //  monotonic ms when it must run without input
};


//  --------------------------------------------------------------------------
//  Small helpers

//  Hex of a routing id into buf (ZJQ_RID_KEY_MAX bytes)
static char *
s_rid_key (const byte *data, size_t size, char *buf)
{
    static const char hex [] = "0123456789abcdef";
    if (size > 256)
        size = 256;
    for (size_t index = 0; index < size; index++) {
        buf [2 * index] = hex [data [index] >> 4];
        buf [2 * index + 1] = hex [data [index] & 15];
    }
    buf [2 * size] = 0;
    return buf;
}

//  Hex of a message's routing id into buf (ZJQ_RID_KEY_MAX bytes)
static char *
s_sender_key (zjq_msg_t *msg, char *buf)
{
    size_t size;
    const byte *data = zjq_msg_routing_id (msg, &size);
    return s_rid_key (data, size, buf);
}

static int64_t
s_min (int64_t a, int64_t b)
{
    return a < b? a: b;
}

//  Log a warning about input from a peer, at most ZJQ_WARN_PER_SECOND a
//  second, so garbage cannot flood the log.
static void
s_warn (zjq_broker_t *self, const char *event, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_warn (zjq_broker_t *self, const char *event, const char *format, ...)
{
    if (self->now - self->warn_window >= 1000) {
        if (self->warn_suppressed)
            zjq_log_warning ("warnings_suppressed", "count=%llu",
                             (unsigned long long) self->warn_suppressed);
        self->warn_window = self->now;
        self->warn_count = 0;
        self->warn_suppressed = 0;
    }
    if (self->warn_count >= ZJQ_WARN_PER_SECOND) {
        self->warn_suppressed++;
        return;
    }
    self->warn_count++;
    va_list args;
    va_start (args, format);
    zjq_log_emitv (ZJQ_LOG_WARNING, event, format, args);
    va_end (args);
}

//  --- msgpack into a small stack buffer, to echo req exactly
typedef struct {
    char data [16];
    size_t size;
} s_smallbuf_t;

static int
s_smallbuf_write (void *data, const char *buf, size_t len)
{
    s_smallbuf_t *smallbuf = (s_smallbuf_t *) data;
    if (smallbuf->size + len > sizeof (smallbuf->data))
        return -1;
    memcpy (smallbuf->data + smallbuf->size, buf, len);
    smallbuf->size += len;
    return 0;
}

//  True if the request carries an integer req
static bool
s_has_req (zjq_msg_t *request)
{
    const msgpack_object *req = zjq_msg_get (request, "req");
    return req && (req->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                || req->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
}

//  Copy the request's req (any integer, up to uint64) into a reply
static void
s_put_req (zjq_msg_t *reply, zjq_msg_t *request)
{
    const msgpack_object *req = zjq_msg_get (request, "req");
    if (!req)
        return;
    if (req->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        s_smallbuf_t smallbuf = { .size = 0 };
        msgpack_packer packer;
        msgpack_packer_init (&packer, &smallbuf, s_smallbuf_write);
        msgpack_pack_uint64 (&packer, req->via.u64);
        zjq_msg_put_packed (reply, "req", smallbuf.data, smallbuf.size);
    }
    else
    if (req->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        zjq_msg_put_int (reply, "req", req->via.i64);
}

//  A new broker message to a routing id
static zjq_msg_t *
s_msg_to (const byte *routing_id, size_t size, int command)
{
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_BROKER, command);
    assert (msg);               //  out of memory
    zjq_msg_set_routing_id (msg, routing_id, size);
    return msg;
}

//  A new broker message to a routing id kept as a frame
static zjq_msg_t *
s_msg_to_frame (zframe_t *routing_id, int command)
{
    return s_msg_to (zframe_data (routing_id), zframe_size (routing_id), command);
}

//  A new message to the sender of a request
static zjq_msg_t *
s_msg_to_sender (zjq_msg_t *request, int command)
{
    size_t size;
    const byte *routing_id = zjq_msg_routing_id (request, &size);
    return s_msg_to (routing_id, size, command);
}

//  A new reply to a request: same routing id, req echoed
static zjq_msg_t *
s_reply_new (zjq_msg_t *request, int command)
{
    zjq_msg_t *reply = s_msg_to_sender (request, command);
    s_put_req (reply, request);
    return reply;
}

static void s_send (zjq_broker_t *self, zjq_msg_t **msg_p);

//  Hold a client message until the journal is durable up to its LSN.
//  Returns -1 if out of memory.
static int
s_hold (zjq_broker_t *self, zjq_msg_t **msg_p, uint64_t lsn)
{
    if (self->held_count == self->held_max) {
        size_t max = self->held_max? self->held_max * 2: 1024;
        s_held_t *held = (s_held_t *) malloc (max * sizeof (s_held_t));
        if (!held)
            return -1;
        for (size_t index = 0; index < self->held_count; index++)
            held [index] = self->held [(self->held_head + index) % self->held_max];
        free (self->held);
        self->held = held;
        self->held_head = 0;
        self->held_max = max;
    }
    //  The job, and with it a shared payload, may be gone when it is sent
    if (zjq_msg_own_payload (*msg_p) == -1)
        return -1;
    s_held_t *slot = &self->held [(self->held_head + self->held_count) % self->held_max];
    slot->msg = *msg_p;
    slot->lsn = lsn;
    *msg_p = NULL;
    self->held_count++;
    return 0;
}

//  Send the held messages whose records are durable, oldest first; with
//  all, send every one (or, if the journal failed, drop what it never made
//  durable).
static void
s_release (zjq_broker_t *self, bool all)
{
    uint64_t durable = zjq_store_durable (self->store);
    while (self->held_count) {
        s_held_t *slot = &self->held [self->held_head];
        if (slot->lsn > durable && !all)
            break;
        if (slot->lsn > durable)
            zjq_msg_destroy (&slot->msg);
        else
            s_send (self, &slot->msg);
        self->held_head = (self->held_head + 1) % self->held_max;
        self->held_count--;
    }
}

//  Send a promise to a client (ACCEPTED, DONE, JOB_RESULT, the JOB_STATUS
//  of a cancel), or hold it while the journal has records that are not
//  durable yet: it may depend on them. Held promises keep their order.
//  Other replies (STATUS, REJECTED, ERROR, ...) promise nothing and go at
//  once through s_send, so a client hears EUNAVAILABLE while the journal
//  cannot be written.
static void
s_send_promise (zjq_broker_t *self, zjq_msg_t **msg_p)
{
    uint64_t lsn = zjq_store_lsn (self->store);
    if ((self->held_count || lsn > zjq_store_durable (self->store))
    &&  s_hold (self, msg_p, lsn) == 0)
        return;
    //  Out of memory holding it: the journal state is lost, not the reply
    s_send (self, msg_p);
}



//  Send a message to a client, at the end of this turn (batched with the
//  turn's other messages to the same client); a client that has gone is
//  not an error.
static void
s_send (zjq_broker_t *self, zjq_msg_t **msg_p)
{
    zjq_outbox_send (self->outbox, msg_p);
}

static void s_peer_unlist (zjq_peer_t *peer);

//  Send a message to a worker, at the end of this turn. If the worker turns
//  out to be gone (or, for JOBs, cannot take them), s_send_failed marks it
//  unreachable: the next scan requeues its jobs.
static void
s_send_peer (zjq_broker_t *self, zjq_peer_t *peer, zjq_msg_t **msg_p)
{
    peer->last_sent = self->now;
    zjq_outbox_send (self->outbox, msg_p);
}

//  The outbox could not send to a peer (ZMQ_DONTWAIT).
static void
s_send_failed (void *arg, const byte *routing_id, size_t size, int command, int error)
{
    zjq_broker_t *self = (zjq_broker_t *) arg;
    char rid_key [ZJQ_RID_KEY_MAX];
    zjq_peer_t *peer = routing_id?
        (zjq_peer_t *) zhashx_lookup (self->peers, s_rid_key (routing_id, size, rid_key)): NULL;
    zjq_log_debug ("send_failed", "command=%s to=%s worker=%s error=%s",
                   zjq_proto_command_name (command), peer? "worker": "client",
                   peer? peer->worker_id: "", zmq_strerror (error));
    //  A batch to a worker carries its JOBs
    if (peer && (error == EHOSTUNREACH
             || (error == EAGAIN && (command == ZJQ_CMD_JOB || command == ZJQ_CMD_BATCH)))
    &&  !peer->unreachable) {
        peer->unreachable = true;
        s_peer_unlist (peer);
        self->reap = true;
    }
}

static void
s_send_error (zjq_broker_t *self, zjq_msg_t *request, int code, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_send_error (zjq_broker_t *self, zjq_msg_t *request, int code, const char *format, ...)
{
    char text [256];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof (text), format, args);
    va_end (args);
    zjq_log_debug ("error_reply", "code=%s role=%c message=%s", zjq_errname (code),
                   zjq_msg_role (request), text);
    zjq_msg_t *reply = s_reply_new (request, ZJQ_CMD_ERROR);
    zjq_msg_put_int (reply, "code", code);
    zjq_msg_put_str (reply, "message", text);
    s_send (self, &reply);
}

static void
s_send_rejected (zjq_broker_t *self, zjq_msg_t *request, int code, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static void
s_send_rejected (zjq_broker_t *self, zjq_msg_t *request, int code, const char *format, ...)
{
    char text [256];
    va_list args;
    va_start (args, format);
    vsnprintf (text, sizeof (text), format, args);
    va_end (args);
    self->counters.rejected++;
    zjq_log_debug ("submit_rejected", "code=%s message=%s", zjq_errname (code), text);
    zjq_msg_t *reply = s_reply_new (request, ZJQ_CMD_REJECTED);
    zjq_msg_put_int (reply, "code", code);
    zjq_msg_put_str (reply, "message", text);
    s_send (self, &reply);
}

//  An optional integer field. Returns 0 if it is absent (value unchanged)
//  or an integer in [min, max]; -1 if it is present and not.
static int
s_opt_int (zjq_msg_t *msg, const char *key, int64_t min, int64_t max, int64_t *value)
{
    if (!zjq_msg_has (msg, key))
        return 0;
    int64_t number;
    if (!zjq_msg_get_int (msg, key, &number) || number < min || number > max)
        return -1;
    *value = number;
    return 0;
}

//  An optional boolean field; same contract as s_opt_int.
static int
s_opt_bool (zjq_msg_t *msg, const char *key, bool *value)
{
    if (!zjq_msg_has (msg, key))
        return 0;
    return zjq_msg_get_bool (msg, key, value)? 0: -1;
}

//  An optional string field of at most max_len bytes; NULL if absent.
//  Returns -1 if present and not such a string.
static int
s_opt_str (zjq_msg_t *msg, const char *key, size_t max_len, const char **value)
{
    *value = NULL;
    if (!zjq_msg_has (msg, key))
        return 0;
    *value = zjq_msg_get_str (msg, key);
    return (*value && strlen (*value) <= max_len)? 0: -1;
}

//  True if holding a queue of that name would exceed --max-queues: queues
//  are never freed, so the cap is what bounds their memory.
static bool
s_queue_over_limit (zjq_broker_t *self, const char *name, size_t also_new)
{
    if (zhashx_lookup (self->queues, name))
        return false;
    return zhashx_size (self->queues) + also_new + 1 > self->max_queues;
}

//  The queue of that name, created if new; NULL if out of memory.
static zjq_queue_t *
s_queue_require (zjq_broker_t *self, const char *name)
{
    zjq_queue_t *queue = (zjq_queue_t *) zhashx_lookup (self->queues, name);
    if (!queue) {
        queue = zjq_queue_new (name);
        if (queue && zhashx_insert (self->queues, zjq_queue_name (queue), queue) != 0)
            zjq_queue_destroy (&queue);
    }
    return queue;
}


//  --------------------------------------------------------------------------
//  Workers: credit and the available lists

static int64_t
s_peer_credit (zjq_peer_t *peer)
{
    return peer->capacity - (int64_t) peer->outstanding;
}

static bool
s_peer_can_take (zjq_peer_t *peer)
{
    return !peer->draining && !peer->unreachable && s_peer_credit (peer) > 0;
}

//  Record (id, attempt) as a JOB the worker owes an answer for. Returns the
//  slot index, or -1 if out of memory. The caller checked the credit.
static int
s_slot_take (zjq_peer_t *peer, const char *id, int attempt)
{
    if (peer->free_count == 0) {
        size_t max = peer->slot_max? peer->slot_max * 2: 16;
        if (max > (size_t) peer->capacity)
            max = (size_t) peer->capacity;
        assert (max > peer->slot_max);
        s_slot_t *slots = (s_slot_t *) realloc (peer->slots, max * sizeof (s_slot_t));
        if (!slots)
            return -1;
        peer->slots = slots;
        uint32_t *free_slots = (uint32_t *) realloc (peer->free_slots, max * sizeof (uint32_t));
        if (!free_slots)
            return -1;
        peer->free_slots = free_slots;
        //  Lowest index on top
        for (size_t index = max; index > peer->slot_max; index--) {
            peer->slots [index - 1].id [0] = 0;
            peer->free_slots [peer->free_count++] = (uint32_t) (index - 1);
        }
        peer->slot_max = max;
    }
    uint32_t index = peer->free_slots [--peer->free_count];
    s_slot_t *slot = &peer->slots [index];
    snprintf (slot->id, sizeof (slot->id), "%s", id);
    slot->attempt = attempt;
    peer->outstanding++;
    return (int) index;
}

//  The slot of (id, attempt), or -1 if the worker owes no such answer.
//  entry (or NULL) is the job by that id: while the attempt runs on this
//  worker it knows its slot; otherwise (a stale answer) the slots are
//  searched.
static int
s_slot_find (zjq_peer_t *peer, zjq_jobentry_t *entry, const char *id, int attempt)
{
    uint32_t known = entry? zjq_jobentry_peer_slot (entry): UINT32_MAX;
    if (entry && zjq_jobentry_peer (entry) == peer && zjq_jobentry_attempt (entry) == attempt
    &&  known < peer->slot_max) {
        s_slot_t *slot = &peer->slots [known];
        if (slot->attempt == attempt && streq (slot->id, id))
            return (int) known;
    }
    for (size_t index = 0; index < peer->slot_max; index++) {
        s_slot_t *slot = &peer->slots [index];
        if (*slot->id && slot->attempt == attempt && streq (slot->id, id))
            return (int) index;
    }
    return -1;
}

static void
s_slot_release (zjq_peer_t *peer, int index)
{
    assert (index >= 0 && (size_t) index < peer->slot_max && peer->slots [index].id [0]);
    peer->slots [index].id [0] = 0;
    peer->free_slots [peer->free_count++] = (uint32_t) index;
    peer->outstanding--;
}

static void
s_peer_list (zjq_peer_t *peer)
{
    for (size_t index = 0; index < peer->queue_count; index++) {
        assert (!peer->handles [index]);
        peer->handles [index] = zjq_queue_worker_append (peer->queues [index], peer);
        assert (peer->handles [index]);     //  out of memory
    }
    peer->listed = true;
}

static void
s_peer_unlist (zjq_peer_t *peer)
{
    if (!peer->listed)
        return;
    for (size_t index = 0; index < peer->queue_count; index++)
        zjq_queue_worker_remove (peer->queues [index], &peer->handles [index]);
    peer->listed = false;
}

static void
s_peer_destroy (zjq_peer_t **peer_p)
{
    zjq_peer_t *peer = *peer_p;
    if (!peer)
        return;
    zframe_destroy (&peer->routing_id);
    free (peer->slots);
    free (peer->free_slots);
    free (peer->key);
    free (peer->worker_id);
    free (peer->host);
    free (peer->version);
    free (peer->queues);
    free (peer->handles);
    free (peer);
    *peer_p = NULL;
}


//  --------------------------------------------------------------------------
//  Jobs: dispatch, ends, failed attempts

static void s_job_end (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_state_t state,
                       const char *error, zframe_t **result_p);

//  Keep the dead letters within --max-dead-letters and
//  --max-dead-letter-bytes: the oldest go.
static void
s_trim_dead_letters (zjq_broker_t *self)
{
    size_t dropped = zjq_jobtable_trim_dead (self->jobs, self->max_dead_letters,
                                             self->max_dead_letter_bytes);
    if (dropped)
        s_warn (self, "dead_letters_dropped", "dropped=%zu max_dead_letters=%llu "
                "max_dead_letter_bytes=%llu", dropped,
                (unsigned long long) self->max_dead_letters,
                (unsigned long long) self->max_dead_letter_bytes);
}

//  Record a failed attempt of a running job in its history: why (without
//  the attempt count), and what the worker measured (exit_code -1, signal
//  0 and duration_ms -1 when it did not say). Call before the attempt is
//  failed (the worker is still known then).
static void
s_record_attempt (zjq_broker_t *self, zjq_jobentry_t *entry, const char *reason,
                  int exit_code, int signal, int64_t duration_ms)
{
    int64_t started_ms = zjq_jobentry_started_ms (entry);
    int64_t now = zjq_wall_ms ();
    if (duration_ms < 0 && started_ms)
        duration_ms = now - started_ms;
    zjq_peer_t *peer = zjq_jobentry_peer (entry);
    zjq_attempt_t attempt = {
        .attempt = zjq_jobentry_attempt (entry), .exit_code = exit_code, .signal = signal,
        .started_ms = started_ms, .ended_ms = now, .duration_ms = duration_ms,
        .error = (char *) reason, .worker = peer? peer->worker_id: NULL
    };
    zjq_jobtable_add_attempt (self->jobs, entry, &attempt);
}

//  Attach bytes that the job table keeps (a payload or a result) as the
//  message's payload: a frame (large) is shared without a copy, bytes kept
//  inline are copied.
static void
s_attach_payload (zjq_msg_t *msg, zjq_jobbytes_t bytes)
{
    if (bytes.frame)
        zjq_msg_set_payload_shared (msg, bytes.frame);
    else
        zjq_msg_set_payload_borrowed (msg, bytes.data, bytes.size);
}

//  Start the next attempt of a job (out of its queue heap) on a worker
//  with credit, and send it the JOB.
static void
s_dispatch (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_peer_t *peer)
{
    assert (s_peer_can_take (peer));
    zjq_jobtable_start (self->jobs, entry, self->now);
    zjq_jobid_text_t id = zjq_jobentry_id (entry);
    int attempt = zjq_jobentry_attempt (entry);
    zjq_queue_counters_t *counters = zjq_queue_counters (zjq_jobentry_queue (entry));
    counters->running++;
    zjq_stats_started (&counters->stats, attempt == 1?
                       zjq_jobentry_started_ms (entry) - zjq_jobentry_created_ms (entry): -1);
    int slot = s_slot_take (peer, id.text, attempt);
    if (slot < 0)
        zjq_log_error ("out_of_memory", "what=tracking_job job=%s worker=%s", id.text,
                       peer->worker_id);
    zjq_jobentry_set_peer (entry, peer, slot < 0? UINT32_MAX: (uint32_t) slot);
    if (s_peer_credit (peer) == 0)
        s_peer_unlist (peer);

    zjq_msg_t *msg = s_msg_to_frame (peer->routing_id, ZJQ_CMD_JOB);
    zjq_msg_put_str (msg, "id", id.text);
    zjq_msg_put_int (msg, "attempt", attempt);
    zjq_msg_put_str (msg, "queue", zjq_jobentry_queue_name (entry));
    zjq_msg_put_int (msg, "timeout_ms", zjq_jobentry_job_timeout_ms (entry));
    s_attach_payload (msg, zjq_jobentry_payload (entry));
    zjq_log_debug ("job_dispatched", "job=%s attempt=%d worker=%s queue=%s", id.text,
                   attempt, peer->worker_id, zjq_jobentry_queue_name (entry));
    s_send_peer (self, peer, &msg);
}

//  Give waiting jobs of a queue to its available workers, round robin
//  (none while the queue is paused).
static void
s_queue_pump (zjq_broker_t *self, zjq_queue_t *queue)
{
    if (zjq_queue_paused (queue))
        return;
    void *handle;
    zjq_peer_t *peer;
    while (zjq_queue_size (queue)
       && (peer = (zjq_peer_t *) zjq_queue_worker_first (queue, &handle))) {
        s_dispatch (self, zjq_queue_pop (queue), peer);
        if (peer->listed)
            zjq_queue_worker_rotate (queue, handle);
    }
}

//  Fill a worker's free credit with the best jobs across all its queues;
//  with credit left over, it waits on its queues' worker lists.
static void
s_peer_pump (zjq_broker_t *self, zjq_peer_t *peer)
{
    while (s_peer_can_take (peer)) {
        zjq_queue_t *best = NULL;
        zjq_jobentry_t *best_entry = NULL;
        for (size_t index = 0; index < peer->queue_count; index++) {
            if (zjq_queue_paused (peer->queues [index]))
                continue;
            zjq_jobentry_t *top = zjq_queue_top (peer->queues [index]);
            if (top && (!best_entry || zjq_queue_before (top, best_entry))) {
                best = peer->queues [index];
                best_entry = top;
            }
        }
        if (!best)
            break;
        s_dispatch (self, zjq_queue_pop (best), peer);
    }
    if (s_peer_can_take (peer) && !peer->listed)
        s_peer_list (peer);
}

//  Put a queued job (new or retried) in its queue and dispatch if possible.
static void
s_enqueue (zjq_broker_t *self, zjq_jobentry_t *entry)
{
    zjq_queue_t *queue = zjq_jobentry_queue (entry);
    if (zjq_queue_push (queue, entry) != 0) {
        zjq_log_error ("out_of_memory", "what=queueing_job job=%s", zjq_jobentry_id (entry).text);
        s_job_end (self, entry, ZJQ_STATE_FAILED, "broker out of memory", NULL);
        return;
    }
    s_queue_pump (self, queue);
}

//  Put the outcome of an ended job into a JOB_RESULT or DONE.
static void
s_put_outcome (zjq_msg_t *msg, zjq_jobentry_t *entry)
{
    zjq_state_t state = zjq_jobentry_state (entry);
    const char *error = zjq_jobentry_error (entry);
    zjq_msg_put_str (msg, "id", zjq_jobentry_id (entry).text);
    zjq_msg_put_str (msg, "state", zjq_state_name (state));
    zjq_msg_put_int (msg, "attempt", zjq_jobentry_attempt (entry));
    if (state != ZJQ_STATE_SUCCEEDED)
        zjq_msg_put_str (msg, "error", error? error: zjq_state_name (state));
    if (state == ZJQ_STATE_SUCCEEDED && zjq_jobentry_result (entry).size)
        s_attach_payload (msg, zjq_jobentry_result (entry));
}

//  A DONE for an ended job to one client.
static void
s_send_done (zjq_broker_t *self, zjq_jobentry_t *entry, const byte *routing_id, size_t size)
{
    zjq_msg_t *msg = s_msg_to (routing_id, size, ZJQ_CMD_DONE);
    s_put_outcome (msg, entry);
    s_send_promise (self, &msg);
}

//  End a queued or running job. Sends DONE to its waiters. The entry may be
//  gone when this returns (a stored result can push older ones, or itself,
//  out under the result memory bound): do not use it afterwards.
static void
s_job_end (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_state_t state,
           const char *error, zframe_t **result_p)
{
    zjq_queue_counters_t *counters = zjq_queue_counters (zjq_jobentry_queue (entry));
    bool was_running = zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING;
    if (was_running)
        counters->running--;
    else
    if (zjq_jobentry_in_queue (entry))
        zjq_queue_remove (zjq_jobentry_queue (entry), entry);
    zjq_jobtable_finish (self->jobs, entry, state, error, result_p, self->now);
    zjq_stats_ended (&counters->stats, self->now,
                     was_running? zjq_jobentry_finished_ms (entry) - zjq_jobentry_started_ms (entry)
                                : -1, false);
    zjq_stats_ring_add (&self->counters.ends, self->now, 1);
    switch (state) {
        case ZJQ_STATE_SUCCEEDED:
            counters->succeeded++;
            self->counters.succeeded++;
            break;
        case ZJQ_STATE_FAILED:
            counters->failed++;
            self->counters.failed++;
            break;
        default:
            counters->cancelled++;
            self->counters.cancelled++;
            break;
    }
    zjq_jobid_text_t id = zjq_jobentry_id (entry);
    zjq_log_debug ("job_ended", "job=%s queue=%s state=%s attempts=%d error=%s", id.text,
                   zjq_jobentry_queue_name (entry), zjq_state_name (state),
                   zjq_jobentry_attempt (entry), error? error: "");
    for (uint32_t index = 0; index < zjq_jobentry_waiter_count (entry); index++) {
        size_t size;
        char key [ZJQ_CERT_KEY_TEXT];
        const byte *waiter = zjq_jobentry_waiter (entry, index, &size, key, sizeof (key));
        //  A key a reload has taken the client and admin roles from since
        //  it asked gets nothing more (its requests are refused already)
        if (self->auth && *key
        &&  !(zjq_auth_roles (self->auth, key) & (ZJQ_AUTH_CLIENT | ZJQ_AUTH_ADMIN))) {
            self->counters.refused_role++;
            zjq_log_info ("done_withheld", "job=%s key=%s reason=%s", id.text, key,
                          "access revoked");
            continue;
        }
        s_send_done (self, entry, waiter, size);
    }
    zjq_jobentry_clear_waiters (entry);
    if (zhashx_size (self->progress_watchers))
        zhashx_delete (self->progress_watchers, id.text);
    if (zjq_jobentry_result (entry).size)
        zjq_jobtable_trim_results (self->jobs, self->max_result_bytes);
    else
    if (state == ZJQ_STATE_FAILED)
        s_trim_dead_letters (self);
}

//  A running job's attempt failed (error says why, with the attempt count):
//  requeue it if attempts are left, else it fails.
static void
s_attempt_failed (zjq_broker_t *self, zjq_jobentry_t *entry, const char *error)
{
    assert (zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING);
    if (zjq_jobentry_attempt (entry) < zjq_jobentry_max_attempts (entry)) {
        zjq_queue_counters_t *counters = zjq_queue_counters (zjq_jobentry_queue (entry));
        zjq_log_debug ("job_requeued", "job=%s queue=%s attempt=%d error=%s",
                       zjq_jobentry_id (entry).text, zjq_jobentry_queue_name (entry),
                       zjq_jobentry_attempt (entry), error);
        counters->running--;
        zjq_stats_ended (&counters->stats, self->now,
                         zjq_wall_ms () - zjq_jobentry_started_ms (entry), true);
        zjq_jobtable_requeue (self->jobs, entry, error);
        s_enqueue (self, entry);
    }
    else
        s_job_end (self, entry, ZJQ_STATE_FAILED, error, NULL);
}

//  "<reason> (attempt n of m)" into buf
static const char *
s_attempt_error (char *buf, size_t size, zjq_jobentry_t *entry, const char *reason)
{
    snprintf (buf, size, "%s (attempt %d of %d)", reason,
              zjq_jobentry_attempt (entry), zjq_jobentry_max_attempts (entry));
    return buf;
}

//  Tell a worker to stop an attempt it no longer owns. Its slot stays busy
//  until it answers.
static void
s_send_job_cancel (zjq_broker_t *self, zjq_peer_t *peer, zjq_jobentry_t *entry,
                   const char *reason)
{
    zjq_msg_t *msg = s_msg_to_frame (peer->routing_id, ZJQ_CMD_JOB_CANCEL);
    zjq_msg_put_str (msg, "id", zjq_jobentry_id (entry).text);
    zjq_msg_put_int (msg, "attempt", zjq_jobentry_attempt (entry));
    zjq_msg_put_str (msg, "reason", reason);
    s_send_peer (self, peer, &msg);
}

//  A running job's attempt timed out (it is out of the deadline heap).
static void
s_job_timeout (zjq_broker_t *self, zjq_jobentry_t *entry)
{
    if (zjq_jobentry_peer (entry))
        s_send_job_cancel (self, zjq_jobentry_peer (entry), entry, "timeout");
    char reason [64];
    snprintf (reason, sizeof (reason), "job timeout after %lld ms",
              (long long) zjq_jobentry_job_timeout_ms (entry));
    s_record_attempt (self, entry, reason, -1, 0, -1);
    char error [128];
    s_attempt_failed (self, entry, s_attempt_error (error, sizeof (error), entry, reason));
}


//  --------------------------------------------------------------------------
//  Forgetting workers

//  Forget a worker: it gets no more jobs, the jobs it runs count a failed
//  attempt ("<why> (host/pid) on attempt n of m") and go back to their
//  queues or fail. The peer is destroyed.
static void
s_peer_forget (zjq_broker_t *self, zjq_peer_t *peer, const char *why)
{
    s_peer_unlist (peer);
    peer->draining = true;
    //  Collect the jobs still running on it, then fail their attempts
    size_t count = 0;
    zjq_jobentry_t **running = NULL;
    if (peer->outstanding) {
        running = (zjq_jobentry_t **) calloc (peer->outstanding, sizeof (zjq_jobentry_t *));
        assert (running);
    }
    for (size_t index = 0; index < peer->slot_max; index++) {
        s_slot_t *slot = &peer->slots [index];
        if (!*slot->id)
            continue;
        zjq_jobentry_t *entry = zjq_jobtable_lookup (self->jobs, slot->id);
        if (entry && zjq_jobentry_peer (entry) == peer
        &&  zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING
        &&  zjq_jobentry_attempt (entry) == slot->attempt)
            running [count++] = entry;
    }
    for (size_t index = 0; index < count; index++) {
        zjq_jobentry_t *entry = running [index];
        char error [ZJQ_TEXT_MAX * 2];
        snprintf (error, sizeof (error), "%s (%s/%lld)", why, peer->host, peer->pid);
        s_record_attempt (self, entry, error, -1, 0, -1);
        snprintf (error, sizeof (error), "%s (%s/%lld) on attempt %d of %d", why, peer->host,
                  peer->pid, zjq_jobentry_attempt (entry), zjq_jobentry_max_attempts (entry));
        s_attempt_failed (self, entry, error);
    }
    free (running);
    for (size_t index = 0; index < peer->queue_count; index++)
        zjq_queue_counters (peer->queues [index])->workers--;
    zhashx_delete (self->peers, peer->key);
    s_peer_destroy (&peer);
}

//  Send heartbeats that are due, and forget workers that went silent or
//  unreachable. Sets the time of the next scan.
static void
s_check_peers (zjq_broker_t *self)
{
    int64_t next = INT64_MAX;
    zlistx_t *gone = NULL;
    self->reap = false;         //  a failed send below sets it again
    for (zjq_peer_t *peer = (zjq_peer_t *) zhashx_first (self->peers); peer;
         peer = (zjq_peer_t *) zhashx_next (self->peers)) {
        int64_t silence = self->now - peer->last_seen;
        if (peer->unreachable || silence > ZJQ_LIVENESS * peer->heartbeat_ms) {
            if (!gone)
                gone = zlistx_new ();
            zlistx_add_end (gone, peer);
            continue;
        }
        if (self->now - peer->last_sent >= peer->heartbeat_ms) {
            zjq_msg_t *msg = s_msg_to_frame (peer->routing_id, ZJQ_CMD_HEARTBEAT);
            s_send_peer (self, peer, &msg);
            //  Retry a failed heartbeat at the next interval
            peer->last_sent = self->now;
        }
        next = s_min (next, peer->last_sent + peer->heartbeat_ms);
        next = s_min (next, peer->last_seen + ZJQ_LIVENESS * peer->heartbeat_ms + 1);
    }
    if (gone) {
        for (zjq_peer_t *peer = (zjq_peer_t *) zlistx_first (gone); peer;
             peer = (zjq_peer_t *) zlistx_next (gone)) {
            self->counters.workers_lost++;
            if (peer->unreachable)
                zjq_log_info ("worker_lost", "worker=%s host=%s pid=%lld reason=unreachable "
                              "running=%zu", peer->worker_id, peer->host, peer->pid,
                              peer->outstanding);
            else
                zjq_log_info ("worker_lost", "worker=%s host=%s pid=%lld reason=silent "
                              "silent_ms=%lld running=%zu", peer->worker_id, peer->host,
                              peer->pid, (long long) (self->now - peer->last_seen),
                              peer->outstanding);
            s_peer_forget (self, peer, "worker lost");
        }
        zlistx_destroy (&gone);
    }
    self->next_check = next;
}


//  --------------------------------------------------------------------------
//  Client commands

static void s_put_history (zjq_msg_t *msg, const char *key, const zjq_history_t *history);

static void
s_put_status (zjq_msg_t *msg, zjq_jobentry_t *entry)
{
    zjq_job_t record;
    zjq_jobentry_record (entry, &record);
    const zjq_job_t *job = &record;
    zjq_msg_put_str (msg, "id", job->id);
    zjq_msg_put_str (msg, "queue", job->queue);
    zjq_msg_put_str (msg, "state", zjq_state_name (job->state));
    zjq_msg_put_int (msg, "attempt", job->attempt);
    zjq_msg_put_int (msg, "max_attempts", job->max_attempts);
    zjq_msg_put_int (msg, "priority", job->priority);
    zjq_msg_put_int (msg, "created_ms", job->created_ms);
    if (job->started_ms)
        zjq_msg_put_int (msg, "started_ms", job->started_ms);
    if (job->finished_ms)
        zjq_msg_put_int (msg, "finished_ms", job->finished_ms);
    if (job->expires_ms)
        zjq_msg_put_int (msg, "expires_ms", job->expires_ms);
    if (job->error)
        zjq_msg_put_str (msg, "error", job->error);
    if (job->progress >= 0)
        zjq_msg_put_double (msg, "progress", job->progress);
    if (job->progress_message)
        zjq_msg_put_str (msg, "progress_message", job->progress_message);
    if (zjq_jobentry_peer (entry))
        zjq_msg_put_str (msg, "worker", zjq_jobentry_peer (entry)->worker_id);
    if (job->state == ZJQ_STATE_SUCCEEDED)
        zjq_msg_put_int (msg, "result_size", (int64_t) job->result_size);
    if (job->history) {
        s_put_history (msg, "history", job->history);
        if (job->history->dropped)
            zjq_msg_put_int (msg, "history_dropped", job->history->dropped);
        if (job->history->retries)
            zjq_msg_put_int (msg, "retries", job->history->retries);
    }
}

static void
s_send_status (zjq_broker_t *self, zjq_msg_t *request, zjq_jobentry_t *entry)
{
    zjq_msg_t *reply = s_reply_new (request, ZJQ_CMD_JOB_STATUS);
    s_put_status (reply, entry);
    s_send (self, &reply);
}

//  Register a client for DONE; if the job has already ended, send it now.
static void
s_add_waiter (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_msg_t *request)
{
    size_t size;
    const byte *routing_id = zjq_msg_routing_id (request, &size);
    if (zjq_jobentry_ended (entry))
        s_send_done (self, entry, routing_id, size);
    else
    if (zjq_jobentry_add_waiter (entry, routing_id, size, zjq_msg_user_id (request)) == -1)
        zjq_log_error ("out_of_memory", "what=registering_waiter job=%s",
                       zjq_jobentry_id (entry).text);
}

//  Register the sender of a request for PROGRESS_UPDATE on a job that has
//  not ended.
static void
s_watch_progress (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_msg_t *request)
{
    if (zjq_jobentry_ended (entry))
        return;
    size_t size;
    const byte *routing_id = zjq_msg_routing_id (request, &size);
    zjq_jobid_text_t id = zjq_jobentry_id (entry);
    zlistx_t *watchers = (zlistx_t *) zhashx_lookup (self->progress_watchers, id.text);
    if (!watchers) {
        watchers = zlistx_new ();
        if (!watchers || zhashx_insert (self->progress_watchers, id.text, watchers) != 0) {
            zlistx_destroy (&watchers);
            zjq_log_error ("out_of_memory", "what=progress_watch job=%s", id.text);
            return;
        }
        zlistx_set_destructor (watchers, (zlistx_destructor_fn *) zframe_destroy);
    }
    for (zframe_t *known = (zframe_t *) zlistx_first (watchers); known;
         known = (zframe_t *) zlistx_next (watchers))
        if (zframe_size (known) == size && memcmp (zframe_data (known), routing_id, size) == 0)
            return;
    zframe_t *copy = zframe_new (routing_id, size);
    if (!copy || !zlistx_add_end (watchers, copy)) {
        zframe_destroy (&copy);
        zjq_log_error ("out_of_memory", "what=progress_watch job=%s", id.text);
    }
}

static void
s_handle_submit (zjq_broker_t *self, zjq_msg_t *msg)
{
    if (!s_has_req (msg)) {
        s_send_rejected (self, msg, ZJQ_EINVAL, "missing or invalid field 'req' (an integer)");
        return;
    }
    if (self->draining) {
        s_send_rejected (self, msg, ZJQ_EDRAINING, "not accepting new jobs until the drain "
                         "ends (zjq drain --off) or the broker restarts");
        return;
    }
    const char *queue_name = zjq_msg_get_str (msg, "queue");
    if (!queue_name) {
        s_send_rejected (self, msg, ZJQ_EINVAL, "missing or invalid field 'queue' (a string)");
        return;
    }
    if (!zjq_proto_queue_name_valid (queue_name)) {
        s_send_rejected (self, msg, ZJQ_EINVAL,
                         "invalid queue name: use 1-128 characters of A-Z a-z 0-9 _ . : -");
        return;
    }
    const char *owner = self->auth? zjq_msg_user_id (msg): NULL;
    if (owner && !zjq_auth_queue_allowed (self->auth, owner, ZJQ_AUTH_CLIENT, queue_name)) {
        self->counters.denied_queue++;
        s_warn (self, "refused", "command=SUBMIT queue=%s key=%s reason=%s", queue_name, owner,
                "not one of its queues");
        s_send_rejected (self, msg, ZJQ_EDENIED, "this key may not submit to queue %s",
                         queue_name);
        return;
    }
    int64_t priority = 0;
    int64_t max_attempts = self->max_attempts;
    int64_t job_timeout_ms = self->job_timeout_ms;
    int64_t result_ttl_ms = self->result_ttl_ms;
    const char *key = NULL;
    bool notify = false, progress = false;
    if (s_opt_int (msg, "priority", -1000, 1000, &priority)) {
        s_send_rejected (self, msg, ZJQ_EINVAL,
                         "field 'priority' must be an integer from -1000 to 1000");
        return;
    }
    if (s_opt_int (msg, "max_attempts", 1, 1000, &max_attempts)) {
        s_send_rejected (self, msg, ZJQ_EINVAL,
                         "field 'max_attempts' must be an integer from 1 to 1000");
        return;
    }
    if (s_opt_int (msg, "job_timeout_ms", 1, INT64_MAX, &job_timeout_ms)) {
        s_send_rejected (self, msg, ZJQ_EINVAL, "field 'job_timeout_ms' must be an integer > 0");
        return;
    }
    if (s_opt_int (msg, "result_ttl_ms", 1, INT64_MAX, &result_ttl_ms)) {
        s_send_rejected (self, msg, ZJQ_EINVAL, "field 'result_ttl_ms' must be an integer > 0");
        return;
    }
    if (s_opt_str (msg, "key", ZJQ_KEY_MAX, &key) || (key && !*key)) {
        s_send_rejected (self, msg, ZJQ_EINVAL, "field 'key' must be a string of 1-256 bytes");
        return;
    }
    if (s_opt_bool (msg, "notify", &notify)) {
        s_send_rejected (self, msg, ZJQ_EINVAL, "field 'notify' must be a boolean");
        return;
    }
    if (s_opt_bool (msg, "progress", &progress)) {
        s_send_rejected (self, msg, ZJQ_EINVAL, "field 'progress' must be a boolean");
        return;
    }
    zframe_t *input = zjq_msg_payload (msg);        //  the codec ensures one
    size_t size = input? zframe_size (input): 0;
    if (size > self->max_payload) {
        s_send_rejected (self, msg, ZJQ_ETOOBIG,
                         "payload of %zu bytes is over the limit of %llu bytes",
                         size, (unsigned long long) self->max_payload);
        return;
    }
    if (key) {
        zjq_jobentry_t *existing = zjq_jobtable_lookup_key (self->jobs, queue_name, key);
        if (existing && owner && !streq (zjq_jobentry_owner (existing), owner)) {
            s_send_rejected (self, msg, ZJQ_EDENIED,
                             "idempotency key is in use by another client key");
            return;
        }
        if (existing) {
            zjq_msg_t *reply = s_reply_new (msg, ZJQ_CMD_ACCEPTED);
            zjq_msg_put_str (reply, "id", zjq_jobentry_id (existing).text);
            zjq_msg_put_bool (reply, "duplicate", true);
            s_send_promise (self, &reply);
            if (notify)
                s_add_waiter (self, existing, msg);
            if (progress)
                s_watch_progress (self, existing, msg);
            return;
        }
    }
    const char *reason = NULL;
    if (!zjq_store_healthy (self->store, &reason)) {
        s_send_rejected (self, msg, ZJQ_EUNAVAILABLE, "journal unavailable: %s", reason);
        return;
    }
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (self->jobs);
    if (stats->queued + stats->running >= self->max_jobs) {
        s_send_rejected (self, msg, ZJQ_EQUEUEFULL, "job limit reached (max-jobs %llu)",
                         (unsigned long long) self->max_jobs);
        return;
    }
    if (stats->queued_bytes + size > self->max_queued_bytes) {
        s_send_rejected (self, msg, ZJQ_EQUEUEFULL,
                         "payload bytes limit reached (max-queued-bytes %llu)",
                         (unsigned long long) self->max_queued_bytes);
        return;
    }
    if (s_queue_over_limit (self, queue_name, 0)) {
        s_send_rejected (self, msg, ZJQ_EQUEUEFULL, "queue limit reached (max-queues %llu)",
                         (unsigned long long) self->max_queues);
        return;
    }
    zjq_queue_t *queue = s_queue_require (self, queue_name);
    zjq_job_t spec = {
        .queue = queue? zjq_queue_name (queue): NULL,
        .key = (char *) key,
        .priority = (int) priority,
        .max_attempts = (int) max_attempts,
        .job_timeout_ms = s_min (job_timeout_ms, ZJQ_DURATION_MAX_MS),
        .result_ttl_ms = s_min (result_ttl_ms, ZJQ_DURATION_MAX_MS)
    };
    //  The owner is part of the record, so the journal keeps it
    if (owner)
        snprintf (spec.owner, sizeof (spec.owner), "%s", owner);
    zframe_t *payload = input? zjq_msg_take_payload (msg): zframe_new_empty ();
    zjq_jobentry_t *entry = NULL;
    if (queue && payload)
        entry = zjq_jobtable_insert (self->jobs, &spec, queue, &payload);
    if (!entry) {
        zframe_destroy (&payload);
        zjq_log_error ("out_of_memory", "what=accepting_job queue=%s", queue_name);
        s_send_rejected (self, msg, ZJQ_EUNAVAILABLE, "broker out of memory");
        return;
    }
    zjq_stats_submitted (&zjq_queue_counters (queue)->stats, self->now);
    zjq_stats_ring_add (&self->counters.submits, self->now, 1);
    if (notify)
        s_add_waiter (self, entry, msg);
    if (progress)
        s_watch_progress (self, entry, msg);
    zjq_msg_t *reply = s_reply_new (msg, ZJQ_CMD_ACCEPTED);
    zjq_msg_put_str (reply, "id", zjq_jobentry_id (entry).text);
    zjq_msg_put_bool (reply, "duplicate", false);
    s_send_promise (self, &reply);
    zjq_log_debug ("job_accepted", "job=%s queue=%s bytes=%zu priority=%d",
                   zjq_jobentry_id (entry).text, queue_name, size, zjq_jobentry_priority (entry));
    s_enqueue (self, entry);
}

//  The string field key of a request (which must carry req), or NULL after
//  replying ERROR.
static const char *
s_request_str (zjq_broker_t *self, zjq_msg_t *msg, const char *key)
{
    if (!s_has_req (msg)) {
        s_send_error (self, msg, ZJQ_EPROTO, "missing or invalid field 'req' (an integer)");
        return NULL;
    }
    const char *value = zjq_msg_get_str (msg, key);
    if (!value)
        s_send_error (self, msg, ZJQ_EPROTO, "missing or invalid field '%s' (a string)", key);
    return value;
}

//  Common start of STATUS, RESULT and CANCEL: the job named by 'id', or
//  NULL after replying ERROR.
static zjq_jobentry_t *
s_request_job (zjq_broker_t *self, zjq_msg_t *msg)
{
    const char *id = s_request_str (self, msg, "id");
    if (!id)
        return NULL;
    zjq_jobentry_t *entry;
    const char *message;
    int code = zjq_jobtable_find (self->jobs, id, &entry, &message);
    if (code) {
        s_send_error (self, msg, code, "%s", message);
        return NULL;
    }
    //  With CURVE, a client key sees and cancels its own jobs; admins all
    const char *key = self->auth? zjq_msg_user_id (msg): NULL;
    const char *owner = zjq_jobentry_owner (entry);
    if (key && *owner && !streq (owner, key)
    &&  !(zjq_auth_roles (self->auth, key) & ZJQ_AUTH_ADMIN)) {
        self->counters.refused_role++;
        s_warn (self, "refused", "command=%s job=%s key=%s reason=%s",
                zjq_proto_command_name (zjq_msg_command (msg)), id, key,
                "submitted by another key");
        s_send_error (self, msg, ZJQ_EDENIED,
                      "job %s was submitted by another key (admin keys may act on any job)", id);
        return NULL;
    }
    return entry;
}

static void
s_handle_status (zjq_broker_t *self, zjq_msg_t *msg)
{
    zjq_jobentry_t *entry = s_request_job (self, msg);
    if (entry)
        s_send_status (self, msg, entry);
}

static void
s_handle_result (zjq_broker_t *self, zjq_msg_t *msg)
{
    bool wait = false, progress = false;
    if (s_opt_bool (msg, "wait", &wait) || s_opt_bool (msg, "progress", &progress)) {
        s_send_error (self, msg, ZJQ_EPROTO, "fields 'wait' and 'progress' must be booleans");
        return;
    }
    zjq_jobentry_t *entry = s_request_job (self, msg);
    if (!entry)
        return;
    if (zjq_jobentry_ended (entry)) {
        zjq_msg_t *reply = s_reply_new (msg, ZJQ_CMD_JOB_RESULT);
        s_put_outcome (reply, entry);
        s_send_promise (self, &reply);
    }
    else {
        s_send_status (self, msg, entry);
        if (wait)
            s_add_waiter (self, entry, msg);
        if (progress)
            s_watch_progress (self, entry, msg);
    }
}

static void
s_handle_cancel (zjq_broker_t *self, zjq_msg_t *msg)
{
    zjq_jobentry_t *entry = s_request_job (self, msg);
    if (!entry)
        return;
    if (zjq_jobentry_ended (entry)) {
        s_send_error (self, msg, ZJQ_ESTATE, "job has already ended (%s)",
                      zjq_state_name (zjq_jobentry_state (entry)));
        return;
    }
    if (zjq_jobentry_peer (entry))
        s_send_job_cancel (self, zjq_jobentry_peer (entry), entry, "cancelled");
    //  A cancelled job holds no result, so the entry survives s_job_end
    s_job_end (self, entry, ZJQ_STATE_CANCELLED, "cancelled by client", NULL);
    zjq_msg_t *reply = s_reply_new (msg, ZJQ_CMD_JOB_STATUS);
    s_put_status (reply, entry);
    s_send_promise (self, &reply);
}

//  The STATS map (docs/protocol.md, Stats) into a packer; with histograms,
//  each queue's wait and run time histograms too (for /metrics).
static void
s_stats_pack (zjq_broker_t *self, msgpack_packer *packer, bool histograms)
{
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (self->jobs);
    int64_t wall = zjq_wall_ms ();
    zjq_stats_map_t top;
    zjq_stats_map_init (&top);

    zjq_stats_map_t broker;
    zjq_stats_map_init (&broker);
    zjq_stats_map_str (&broker, "version", zjq_version ());
    zjq_stats_map_str (&broker, "instance", self->instance);
    zjq_stats_map_uint (&broker, "uptime_ms", (uint64_t) (self->now - self->started));
    zjq_stats_map_uint (&broker, "rss_bytes", zjq_stats_rss_bytes ());
    zjq_stats_map_uint (&broker, "jobs", stats->jobs);
    zjq_stats_map_uint (&broker, "queued", stats->queued);
    zjq_stats_map_uint (&broker, "running", stats->running);
    zjq_stats_map_uint (&broker, "results", stats->ended);
    zjq_stats_map_uint (&broker, "result_bytes", stats->result_bytes);
    zjq_stats_map_uint (&broker, "queued_bytes", stats->queued_bytes);
    zjq_stats_map_uint (&broker, "submitted", stats->inserted);
    zjq_stats_map_uint (&broker, "succeeded", self->counters.succeeded);
    zjq_stats_map_uint (&broker, "failed", self->counters.failed);
    zjq_stats_map_uint (&broker, "cancelled", self->counters.cancelled);
    zjq_stats_map_uint (&broker, "expired", stats->expired);
    zjq_stats_map_uint (&broker, "rejected", self->counters.rejected);
    zjq_stats_map_uint (&broker, "malformed", self->counters.malformed);
    zjq_stats_map_uint (&broker, "stale_results", self->counters.stale_results);
    zjq_stats_map_uint (&broker, "workers", zhashx_size (self->peers));
    zjq_stats_map_uint (&broker, "workers_lost", self->counters.workers_lost);
    zjq_stats_map_uint (&broker, "queues", zhashx_size (self->queues));
    zjq_stats_map_bool (&broker, "draining", self->draining);
    const zjq_deadlist_t *dead = zjq_jobtable_dead_letters (self->jobs);
    zjq_stats_map_uint (&broker, "dead_letters", dead->count);
    zjq_stats_map_uint (&broker, "dead_letter_bytes", dead->bytes);
    uint64_t submits = zjq_stats_ring_sum (&self->counters.submits, self->now);
    uint64_t ends = zjq_stats_ring_sum (&self->counters.ends, self->now);
    zjq_stats_map_uint (&broker, "submitted_1m", submits);
    zjq_stats_map_uint (&broker, "completed_1m", ends);
    zjq_stats_map_double (&broker, "submitted_per_s", (double) submits / ZJQ_STATS_RING_SLOTS);
    zjq_stats_map_double (&broker, "completed_per_s", (double) ends / ZJQ_STATS_RING_SLOTS);
    const zjq_store_stats_t *journal = zjq_store_stats (self->store);
    if (journal->path) {
        zjq_stats_map_t map;
        zjq_stats_map_init (&map);
        zjq_stats_map_str (&map, "path", journal->path);
        zjq_stats_map_uint (&map, "bytes", journal->bytes);
        zjq_stats_map_uint (&map, "live_bytes", journal->live_bytes);
        zjq_stats_map_str (&map, "fsync", journal->policy);
        zjq_stats_map_bool (&map, "healthy", zjq_store_healthy (self->store, NULL));
        zjq_stats_map_str (&map, "last_error", zjq_store_last_error (self->store));
        zjq_stats_map_uint (&map, "compactions", journal->compactions);
        zjq_stats_map_uint (&map, "records", journal->records);
        zjq_stats_map_uint (&map, "held_replies", self->held_count);
        zjq_stats_map_end (&map, zjq_stats_map_key (&broker, "journal"));
    }
    zjq_stats_map_bool (&broker, "curve", self->auth != NULL);
    zjq_stats_map_uint (&broker, "refused_handshakes", self->counters.refused_handshakes);
    zjq_stats_map_uint (&broker, "refused_unknown_key", self->counters.refused_unknown_key);
    zjq_stats_map_uint (&broker, "refused_role", self->counters.refused_role);
    zjq_stats_map_uint (&broker, "denied_queue", self->counters.denied_queue);
    zjq_stats_map_end (&broker, zjq_stats_map_key (&top, "broker"));

    msgpack_packer *queues = zjq_stats_map_key (&top, "queues");
    msgpack_pack_map (queues, zhashx_size (self->queues));
    for (zjq_queue_t *queue = (zjq_queue_t *) zhashx_first (self->queues); queue;
         queue = (zjq_queue_t *) zhashx_next (self->queues)) {
        zjq_queue_counters_t *counters = zjq_queue_counters (queue);
        zjq_jobentry_t *oldest = zjq_queue_oldest (queue);
        zjq_stats_map_t map;
        zjq_stats_map_init (&map);
        zjq_stats_map_uint (&map, "queued", zjq_queue_size (queue));
        zjq_stats_map_bool (&map, "paused", zjq_queue_paused (queue));
        zjq_stats_map_uint (&map, "running", counters->running);
        zjq_stats_map_uint (&map, "succeeded", counters->succeeded);
        zjq_stats_map_uint (&map, "failed", counters->failed);
        zjq_stats_map_uint (&map, "cancelled", counters->cancelled);
        zjq_stats_map_uint (&map, "workers", counters->workers);
        zjq_stats_map_uint (&map, "oldest_queued_ms",
                            oldest && wall > zjq_jobentry_created_ms (oldest)?
                            (uint64_t) (wall - zjq_jobentry_created_ms (oldest)): 0);
        zjq_stats_queue_pack (&counters->stats, &map, self->now, histograms);
        zjq_stats_pack_str (queues, zjq_queue_name (queue));
        zjq_stats_map_end (&map, queues);
    }

    msgpack_packer *workers = zjq_stats_map_key (&top, "workers");
    msgpack_pack_array (workers, zhashx_size (self->peers));
    for (zjq_peer_t *peer = (zjq_peer_t *) zhashx_first (self->peers); peer;
         peer = (zjq_peer_t *) zhashx_next (self->peers)) {
        zjq_stats_map_t map;
        zjq_stats_map_init (&map);
        zjq_stats_map_str (&map, "id", peer->worker_id);
        zjq_stats_map_str (&map, "host", peer->host);
        zjq_stats_map_int (&map, "pid", peer->pid);
        msgpack_packer *names = zjq_stats_map_key (&map, "queues");
        msgpack_pack_array (names, peer->queue_count);
        for (size_t index = 0; index < peer->queue_count; index++)
            zjq_stats_pack_str (names, zjq_queue_name (peer->queues [index]));
        zjq_stats_map_uint (&map, "capacity", (uint64_t) peer->capacity);
        zjq_stats_map_uint (&map, "running", peer->outstanding);
        zjq_stats_map_uint (&map, "completed", peer->completed);
        zjq_stats_map_uint (&map, "last_seen_ms_ago", (uint64_t) (self->now - peer->last_seen));
        zjq_stats_map_uint (&map, "heartbeat_ms", (uint64_t) peer->heartbeat_ms);
        zjq_stats_map_bool (&map, "draining", peer->draining);
        zjq_stats_map_str (&map, "version", peer->version);
        zjq_stats_map_end (&map, workers);
    }
    if (histograms) {
        msgpack_packer *bounds = zjq_stats_map_key (&top, "histogram_bounds_ms");
        msgpack_pack_array (bounds, ZJQ_STATS_BUCKETS - 1);
        for (size_t index = 0; index < ZJQ_STATS_BUCKETS - 1; index++)
            msgpack_pack_int64 (bounds, zjq_stats_bounds_ms () [index]);
    }
    zjq_stats_map_end (&top, packer);
}

static void
s_pack_int (msgpack_packer *packer, const char *key, int64_t value)
{
    zjq_stats_pack_str (packer, key);
    msgpack_pack_int64 (packer, value);
}

static void
s_pack_text (msgpack_packer *packer, const char *key, const char *value)
{
    zjq_stats_pack_str (packer, key);
    zjq_stats_pack_str (packer, value);
}

//  A history's attempts, oldest first, as an array of maps: attempt,
//  error, started_ms, ended_ms, duration_ms (-1: unknown), and when known
//  exit_code, signal, worker
static void
s_pack_attempts (msgpack_packer *packer, const zjq_history_t *history)
{
    msgpack_pack_array (packer, history->count);
    for (uint32_t index = 0; index < history->count; index++) {
        const zjq_attempt_t *attempt = &history->attempts [index];
        msgpack_pack_map (packer, 5 + (attempt->exit_code >= 0) + (attempt->signal > 0)
                                    + (attempt->worker != NULL));
        s_pack_int (packer, "attempt", attempt->attempt);
        s_pack_text (packer, "error", attempt->error? attempt->error: "");
        s_pack_int (packer, "started_ms", attempt->started_ms);
        s_pack_int (packer, "ended_ms", attempt->ended_ms);
        s_pack_int (packer, "duration_ms", attempt->duration_ms);
        if (attempt->exit_code >= 0)
            s_pack_int (packer, "exit_code", attempt->exit_code);
        if (attempt->signal > 0)
            s_pack_int (packer, "signal", attempt->signal);
        if (attempt->worker)
            s_pack_text (packer, "worker", attempt->worker);
    }
}

static void
s_put_history (zjq_msg_t *msg, const char *key, const zjq_history_t *history)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    s_pack_attempts (&packer, history);
    zjq_msg_put_packed (msg, key, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
}

static void
s_handle_stats (zjq_broker_t *self, zjq_msg_t *msg)
{
    if (!s_has_req (msg)) {
        s_send_error (self, msg, ZJQ_EPROTO, "missing or invalid field 'req' (an integer)");
        return;
    }
    bool histograms = false;
    if (s_opt_bool (msg, "histograms", &histograms)) {
        s_send_error (self, msg, ZJQ_EPROTO, "field 'histograms' must be a boolean");
        return;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    s_stats_pack (self, &packer, histograms);
    zjq_msg_t *reply = s_reply_new (msg, ZJQ_CMD_STATS_REPLY);
    zjq_msg_put_packed (reply, "stats", buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    s_send (self, &reply);
}

static void
s_handle_ping (zjq_broker_t *self, zjq_msg_t *msg)
{
    if (!s_has_req (msg)) {
        s_send_error (self, msg, ZJQ_EPROTO, "missing or invalid field 'req' (an integer)");
        return;
    }
    zjq_msg_t *reply = s_reply_new (msg, ZJQ_CMD_PONG);
    zjq_msg_put_str (reply, "instance", self->instance);
    zjq_msg_put_str (reply, "version", zjq_version ());
    s_send (self, &reply);
}

static void s_reload (zjq_broker_t *self, const char *why, char *error, size_t error_size);

static void
s_handle_reload (zjq_broker_t *self, zjq_msg_t *msg)
{
    if (!s_has_req (msg)) {
        s_send_error (self, msg, ZJQ_EPROTO, "missing or invalid field 'req' (an integer)");
        return;
    }
    if (!self->auth) {
        s_send_error (self, msg, ZJQ_EINVAL, "the broker does not use CURVE: nothing to reload");
        return;
    }
    char error [512] = "";
    s_reload (self, "RELOAD", error, sizeof (error));
    if (*error) {
        s_send_error (self, msg, ZJQ_EINVAL, "reload failed, the old lists stay: %s", error);
        return;
    }
    zjq_msg_t *reply = s_reply_new (msg, ZJQ_CMD_RELOADED);
    zjq_msg_put_int (reply, "clients", (int64_t) zjq_auth_count (self->auth, ZJQ_AUTH_CLIENT));
    zjq_msg_put_int (reply, "workers", (int64_t) zjq_auth_count (self->auth, ZJQ_AUTH_WORKER));
    zjq_msg_put_int (reply, "admins", (int64_t) zjq_auth_count (self->auth, ZJQ_AUTH_ADMIN));
    s_send (self, &reply);
}


//  --------------------------------------------------------------------------
//  Operations (admin): pause, resume, drain, dead letters, retry

//  Jobs queued in paused queues (they stay through a drain)
static uint64_t
s_paused_queued (zjq_broker_t *self)
{
    uint64_t count = 0;
    for (zjq_queue_t *queue = (zjq_queue_t *) zhashx_first (self->queues); queue;
         queue = (zjq_queue_t *) zhashx_next (self->queues))
        if (zjq_queue_paused (queue))
            count += zjq_queue_size (queue);
    return count;
}

//  Drained: nothing runs, and nothing is queued but in paused queues
static bool
s_drained (zjq_broker_t *self, uint64_t *paused_queued)
{
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (self->jobs);
    if (stats->running) {
        *paused_queued = 0;
        return false;
    }
    *paused_queued = s_paused_queued (self);
    return stats->queued == *paused_queued;
}

//  Once per drain, say in the log that it is complete
static void
s_check_drain (zjq_broker_t *self)
{
    uint64_t paused_queued;
    if (!self->draining || self->drain_reported || !s_drained (self, &paused_queued))
        return;
    self->drain_reported = true;
    zjq_log_info ("drain_complete", "paused_queued=%llu msg=%s", (unsigned long long) paused_queued,
                  "drain complete: nothing queued or running; the broker can be stopped "
                  "(SIGTERM) without losing work");
}

//  A request naming a queue: its valid name, or NULL after replying ERROR
static const char *
s_request_queue (zjq_broker_t *self, zjq_msg_t *msg)
{
    const char *name = s_request_str (self, msg, "queue");
    if (!name)
        return NULL;
    if (!zjq_proto_queue_name_valid (name)) {
        s_send_error (self, msg, ZJQ_EINVAL,
                      "invalid queue name: use 1-128 characters of A-Z a-z 0-9 _ . : -");
        return NULL;
    }
    return name;
}

//  PAUSE and RESUME: set the flag (journaled), reply QUEUE_STATE once the
//  journal holds it
static void
s_handle_pause (zjq_broker_t *self, zjq_msg_t *msg, bool paused)
{
    const char *name = s_request_queue (self, msg);
    if (!name)
        return;
    zjq_queue_t *queue = (zjq_queue_t *) zhashx_lookup (self->queues, name);
    if (!queue && paused) {
        //  A queue may be paused before its first job
        if (s_queue_over_limit (self, name, 0)) {
            s_send_error (self, msg, ZJQ_EQUEUEFULL, "queue limit reached (max-queues %llu)",
                          (unsigned long long) self->max_queues);
            return;
        }
        queue = s_queue_require (self, name);
        if (!queue) {
            s_send_error (self, msg, ZJQ_ENOMEM, "broker out of memory");
            return;
        }
    }
    if (queue && zjq_queue_paused (queue) != paused) {
        zjq_queue_set_paused (queue, paused);
        if (zjq_jobtable_set_paused (self->jobs, name, paused) != 0)
            zjq_log_error ("out_of_memory", "what=paused_queue queue=%s", name);
        zjq_log_info (paused? "queue_paused": "queue_resumed", "queue=%s queued=%zu", name,
                      zjq_queue_size (queue));
        if (!paused)
            s_queue_pump (self, queue);
    }
    zjq_msg_t *reply = s_reply_new (msg, ZJQ_CMD_QUEUE_STATE);
    zjq_msg_put_str (reply, "queue", name);
    zjq_msg_put_bool (reply, "paused", queue && zjq_queue_paused (queue));
    zjq_msg_put_int (reply, "queued", queue? (int64_t) zjq_queue_size (queue): 0);
    zjq_msg_put_int (reply, "running",
                     queue? (int64_t) zjq_queue_counters (queue)->running: 0);
    zjq_msg_put_int (reply, "workers",
                     queue? (int64_t) zjq_queue_counters (queue)->workers: 0);
    s_send_promise (self, &reply);
}

static void
s_handle_drain (zjq_broker_t *self, zjq_msg_t *msg)
{
    bool off = false;
    if (!s_has_req (msg)) {
        s_send_error (self, msg, ZJQ_EPROTO, "missing or invalid field 'req' (an integer)");
        return;
    }
    if (s_opt_bool (msg, "off", &off)) {
        s_send_error (self, msg, ZJQ_EPROTO, "field 'off' must be a boolean");
        return;
    }
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (self->jobs);
    if (off && self->draining) {
        self->draining = false;
        zjq_log_info ("drain_cancelled", "msg=%s", "accepting new jobs again");
    }
    else
    if (!off && !self->draining) {
        self->draining = true;
        self->drain_reported = false;
        zjq_log_info ("draining", "queued=%llu running=%llu msg=%s",
                      (unsigned long long) stats->queued, (unsigned long long) stats->running,
                      "new jobs are rejected");
    }
    uint64_t paused_queued;
    bool drained = s_drained (self, &paused_queued);
    zjq_msg_t *reply = s_reply_new (msg, ZJQ_CMD_DRAIN_STATE);
    zjq_msg_put_bool (reply, "draining", self->draining);
    zjq_msg_put_bool (reply, "drained", self->draining && drained);
    zjq_msg_put_int (reply, "queued", (int64_t) stats->queued);
    zjq_msg_put_int (reply, "running", (int64_t) stats->running);
    zjq_msg_put_int (reply, "paused_queued", (int64_t) paused_queued);
    s_send (self, &reply);
    s_check_drain (self);
}

//  One dead letter as a map for DEAD_LETTER_LIST
static void
s_pack_dead_letter (msgpack_packer *packer, zjq_jobentry_t *entry)
{
    zjq_job_t record;
    zjq_jobentry_record (entry, &record);
    const zjq_job_t *job = &record;
    const zjq_history_t *history = job->history;
    msgpack_pack_map (packer, 11);
    s_pack_text (packer, "id", job->id);
    s_pack_text (packer, "queue", job->queue);
    s_pack_int (packer, "attempts", job->attempt);
    s_pack_int (packer, "max_attempts", job->max_attempts);
    s_pack_int (packer, "retries", history->retries);
    s_pack_text (packer, "error", job->error? job->error: "failed");
    s_pack_int (packer, "created_ms", job->created_ms);
    s_pack_int (packer, "failed_ms", job->finished_ms);
    s_pack_int (packer, "expires_ms", job->expires_ms);
    s_pack_int (packer, "history_dropped", history->dropped);
    zjq_stats_pack_str (packer, "history");
    s_pack_attempts (packer, history);
}

//  DEAD_LETTERS: a page of failed jobs, oldest failure first, optionally of
//  one queue, after a cursor (after: the last id of the previous page,
//  after_ms: its failed_ms, for when that job has gone meanwhile)
static void
s_handle_dead_letters (zjq_broker_t *self, zjq_msg_t *msg)
{
    if (!s_has_req (msg)) {
        s_send_error (self, msg, ZJQ_EPROTO, "missing or invalid field 'req' (an integer)");
        return;
    }
    const char *queue = NULL, *after = NULL;
    int64_t after_ms = INT64_MIN, limit = 1000;
    if (s_opt_str (msg, "queue", ZJQ_QUEUE_NAME_MAX, &queue)
    ||  s_opt_str (msg, "after", ZJQ_JOBID_MAX, &after)
    ||  s_opt_int (msg, "after_ms", INT64_MIN, INT64_MAX, &after_ms)
    ||  s_opt_int (msg, "limit", 1, ZJQ_DEAD_PAGE_MAX, &limit)) {
        s_send_error (self, msg, ZJQ_EPROTO, "DEAD_LETTERS: 'queue' and 'after' are strings, "
                      "'after_ms' an integer, 'limit' an integer from 1 to %d",
                      ZJQ_DEAD_PAGE_MAX);
        return;
    }
    //  Where to start: after the cursor's job if it is still a dead letter,
    //  else after every job that failed no later than it
    zjq_jobentry_t *entry = zjq_jobtable_dead_first (self->jobs);
    zjq_jobentry_t *cursor = after? zjq_jobtable_lookup (self->jobs, after): NULL;
    if (cursor && zjq_jobtable_is_dead (self->jobs, cursor))
        entry = zjq_jobtable_dead_next (self->jobs, cursor);
    else
    if (after)
        while (entry && zjq_jobentry_finished_ms (entry) <= after_ms)
            entry = zjq_jobtable_dead_next (self->jobs, entry);
    msgpack_sbuffer items;
    msgpack_sbuffer_init (&items);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &items, msgpack_sbuffer_write);
    int64_t count = 0;
    zjq_jobentry_t *last = NULL;
    for (; entry && count < limit && items.size < ZJQ_DEAD_PAGE_BYTES;
         entry = zjq_jobtable_dead_next (self->jobs, entry)) {
        if (queue && !streq (zjq_jobentry_queue_name (entry), queue))
            continue;
        s_pack_dead_letter (&packer, entry);
        last = entry;
        count++;
    }
    //  More to come if the walk stopped early on a job that matches
    while (entry && queue && !streq (zjq_jobentry_queue_name (entry), queue))
        entry = zjq_jobtable_dead_next (self->jobs, entry);
    msgpack_sbuffer jobs;
    msgpack_sbuffer_init (&jobs);
    msgpack_packer_init (&packer, &jobs, msgpack_sbuffer_write);
    msgpack_pack_array (&packer, (size_t) count);
    msgpack_sbuffer_write (&jobs, items.data, items.size);
    msgpack_sbuffer_destroy (&items);
    const zjq_deadlist_t *dead = zjq_jobtable_dead_letters (self->jobs);
    zjq_msg_t *reply = s_reply_new (msg, ZJQ_CMD_DEAD_LETTER_LIST);
    zjq_msg_put_int (reply, "total", (int64_t) dead->count);
    zjq_msg_put_int (reply, "bytes", (int64_t) dead->bytes);
    zjq_msg_put_packed (reply, "jobs", jobs.data, jobs.size);
    if (entry && last) {
        zjq_msg_put_str (reply, "next", zjq_jobentry_id (last).text);
        zjq_msg_put_int (reply, "next_ms", zjq_jobentry_finished_ms (last));
    }
    msgpack_sbuffer_destroy (&jobs);
    s_send (self, &reply);
}

//  Requeue one dead letter if the job limits allow. Returns 0, or an error
//  code with *message_p.
static int
s_retry_job (zjq_broker_t *self, zjq_jobentry_t *entry, const char **message_p)
{
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (self->jobs);
    size_t size = zjq_jobentry_payload (entry).size;
    if (stats->queued + stats->running >= self->max_jobs
    ||  stats->queued_bytes + size > self->max_queued_bytes) {
        *message_p = "job limit reached (max-jobs or max-queued-bytes)";
        return ZJQ_EQUEUEFULL;
    }
    int code = zjq_jobtable_retry (self->jobs, entry, message_p);
    if (code)
        return code;
    zjq_log_info ("job_retried", "job=%s first_attempt=%d last_attempt=%d",
                  zjq_jobentry_id (entry).text, zjq_jobentry_attempt (entry) + 1,
                  zjq_jobentry_max_attempts (entry));
    s_enqueue (self, entry);
    return 0;
}

//  RETRY: one dead letter by id, or every dead letter of a queue
static void
s_handle_retry (zjq_broker_t *self, zjq_msg_t *msg)
{
    if (!s_has_req (msg)) {
        s_send_error (self, msg, ZJQ_EPROTO, "missing or invalid field 'req' (an integer)");
        return;
    }
    const char *id = NULL, *queue = NULL;
    if (s_opt_str (msg, "id", ZJQ_TEXT_MAX, &id) || s_opt_str (msg, "queue", ZJQ_TEXT_MAX, &queue)
    ||  !id == !queue) {
        s_send_error (self, msg, ZJQ_EPROTO, "RETRY needs a field 'id' or a field 'queue' "
                      "(a string), not both");
        return;
    }
    if (self->draining) {
        s_send_error (self, msg, ZJQ_EDRAINING, "not requeueing jobs until the drain ends "
                      "(zjq drain --off) or the broker restarts");
        return;
    }
    const char *message = NULL;
    int code = 0;
    int64_t count = 0;
    if (id) {
        zjq_jobentry_t *entry;
        code = zjq_jobtable_find (self->jobs, id, &entry, &message);
        if (!code)
            code = s_retry_job (self, entry, &message);
        if (code) {
            s_send_error (self, msg, code, "job %s: %s", id, message);
            return;
        }
        count = 1;
    }
    else {
        //  Take the next one before requeueing this one (it leaves the list)
        zjq_jobentry_t *entry = zjq_jobtable_dead_first (self->jobs);
        while (entry && !code) {
            zjq_jobentry_t *next = zjq_jobtable_dead_next (self->jobs, entry);
            if (streq (zjq_jobentry_queue_name (entry), queue) && zjq_jobentry_payload (entry).data) {
                code = s_retry_job (self, entry, &message);
                count += code == 0;
            }
            entry = next;
        }
        if (code && count == 0) {
            s_send_error (self, msg, code, "queue %s: %s", queue, message);
            return;
        }
    }
    zjq_msg_t *reply = s_reply_new (msg, ZJQ_CMD_RETRIED);
    zjq_msg_put_int (reply, "count", count);
    if (code)
        zjq_msg_put_str (reply, "stopped", message);
    s_send_promise (self, &reply);
}


//  --------------------------------------------------------------------------
//  Worker commands

//  A READY from a new connection: validate it, create the peer, give it work.
static void
s_handle_ready (zjq_broker_t *self, zjq_msg_t *msg, const char *rid_key)
{
    const char *worker_id = zjq_msg_get_str (msg, "worker_id");
    const msgpack_object *queues = zjq_msg_get (msg, "queues");
    int64_t capacity = 0, heartbeat_ms = 0, pid = 0;
    const char *host = NULL, *version = NULL;
    const char *problem = NULL;
    if (!worker_id || !*worker_id || strlen (worker_id) > ZJQ_TEXT_MAX)
        problem = "missing or invalid field 'worker_id' (a string of 1-256 bytes)";
    else
    if (!queues || queues->type != MSGPACK_OBJECT_ARRAY
    ||  queues->via.array.size < 1 || queues->via.array.size > ZJQ_WORKER_QUEUES)
        problem = "missing or invalid field 'queues' (an array of 1-64 queue names)";
    else
    if (!zjq_msg_get_int (msg, "capacity", &capacity) || capacity < 1 || capacity > 10000)
        problem = "missing or invalid field 'capacity' (an integer from 1 to 10000)";
    else
    if (!zjq_msg_get_int (msg, "heartbeat_ms", &heartbeat_ms)
    ||  heartbeat_ms < 100 || heartbeat_ms > 60000)
        problem = "missing or invalid field 'heartbeat_ms' (an integer from 100 to 60000)";
    else
    if (s_opt_str (msg, "host", ZJQ_TEXT_MAX, &host))
        problem = "invalid field 'host' (a string of at most 256 bytes)";
    else
    if (s_opt_int (msg, "pid", 0, INT64_MAX, &pid))
        problem = "invalid field 'pid' (an integer >= 0)";
    else
    if (s_opt_str (msg, "version", ZJQ_TEXT_MAX, &version))
        problem = "invalid field 'version' (a string of at most 256 bytes)";
    else {
        size_t new_queues = 0;
        for (uint32_t index = 0; index < queues->via.array.size; index++) {
            const msgpack_object *name = &queues->via.array.ptr [index];
            char text [ZJQ_QUEUE_NAME_MAX + 1];
            if (name->type != MSGPACK_OBJECT_STR || name->via.str.size > ZJQ_QUEUE_NAME_MAX) {
                problem = "invalid queue name in 'queues'";
                break;
            }
            memcpy (text, name->via.str.ptr, name->via.str.size);
            text [name->via.str.size] = 0;
            if (!zjq_proto_queue_name_valid (text)) {
                problem = "invalid queue name in 'queues'";
                break;
            }
            const char *key = self->auth? zjq_msg_user_id (msg): NULL;
            if (key && !zjq_auth_queue_allowed (self->auth, key, ZJQ_AUTH_WORKER, text)) {
                self->counters.denied_queue++;
                s_warn (self, "refused", "command=READY queue=%s key=%s reason=%s", text, key,
                        "not one of its queues");
                s_send_error (self, msg, ZJQ_EDENIED, "READY: this key may not serve queue %s",
                              text);
                return;
            }
            if (s_queue_over_limit (self, text, new_queues)) {
                problem = "queue limit reached (max-queues)";
                break;
            }
            if (!zhashx_lookup (self->queues, text))
                new_queues++;   //  (a name repeated in READY counts twice: harmless)
        }
    }
    if (problem) {
        s_warn (self, "bad_ready", "peer=%.40s problem=%s", rid_key, problem);
        s_send_error (self, msg, ZJQ_EPROTO, "READY: %s", problem);
        return;
    }

    zjq_peer_t *peer = (zjq_peer_t *) calloc (1, sizeof (zjq_peer_t));
    assert (peer);
    size_t rid_size;
    const byte *rid = zjq_msg_routing_id (msg, &rid_size);
    peer->routing_id = zframe_new (rid, rid_size);
    peer->key = strdup (rid_key);
    peer->worker_id = strdup (worker_id);
    peer->host = strdup (host? host: "?");
    peer->version = strdup (version? version: "?");
    peer->pid = pid;
    if (self->auth)
        snprintf (peer->user_key, sizeof (peer->user_key), "%s", zjq_msg_user_id (msg));
    peer->capacity = capacity;
    peer->heartbeat_ms = heartbeat_ms;
    peer->last_seen = self->now;
    peer->last_sent = self->now;
    uint32_t count = queues->via.array.size;
    peer->queues = (zjq_queue_t **) calloc (count, sizeof (zjq_queue_t *));
    peer->handles = (void **) calloc (count, sizeof (void *));
    assert (peer->routing_id && peer->key && peer->worker_id && peer->host && peer->version
         && peer->queues && peer->handles);
    char names [512] = "";
    size_t names_len = 0;
    for (uint32_t index = 0; index < count; index++) {
        const msgpack_object *name = &queues->via.array.ptr [index];
        char text [ZJQ_QUEUE_NAME_MAX + 1];
        memcpy (text, name->via.str.ptr, name->via.str.size);
        text [name->via.str.size] = 0;
        zjq_queue_t *queue = s_queue_require (self, text);
        assert (queue);         //  out of memory
        bool duplicate = false;
        for (size_t other = 0; other < peer->queue_count; other++)
            duplicate |= peer->queues [other] == queue;
        if (duplicate)
            continue;
        peer->queues [peer->queue_count++] = queue;
        zjq_queue_counters (queue)->workers++;
        if (names_len < sizeof (names))
            names_len += snprintf (names + names_len, sizeof (names) - names_len, "%s%s",
                                   names_len? ",": "", text);
    }
    if (zhashx_insert (self->peers, peer->key, peer) != 0) {
        //  The caller looked it up, so only out of memory
        zjq_log_error ("out_of_memory", "what=registering_worker worker=%s", peer->worker_id);
        for (size_t index = 0; index < peer->queue_count; index++)
            zjq_queue_counters (peer->queues [index])->workers--;
        s_peer_destroy (&peer);
        return;
    }
    zjq_log_info ("worker_joined", "worker=%s host=%s pid=%lld queues=%s capacity=%lld "
                  "heartbeat_ms=%lld version=%s", peer->worker_id, peer->host, peer->pid, names,
                  (long long) peer->capacity, (long long) peer->heartbeat_ms, peer->version);
    self->next_check = s_min (self->next_check, self->now + peer->heartbeat_ms);
    s_peer_pump (self, peer);
}

static void
s_handle_work_result (zjq_broker_t *self, zjq_peer_t *peer, zjq_msg_t *msg)
{
    const char *id = zjq_msg_get_str (msg, "id");
    const char *status = zjq_msg_get_str (msg, "status");
    int64_t attempt = 0;
    if (!id) {
        s_send_error (self, msg, ZJQ_EPROTO,
                      "WORK_RESULT: missing or invalid field 'id' (a string)");
        return;
    }
    if (!zjq_msg_get_int (msg, "attempt", &attempt) || attempt < 1
    ||  attempt > ZJQ_JOB_ATTEMPTS_MAX) {
        s_send_error (self, msg, ZJQ_EPROTO, "WORK_RESULT: missing or invalid field 'attempt'");
        return;
    }
    if (!status
    ||  !(streq (status, "ok") || streq (status, "error") || streq (status, "cancelled")
       || streq (status, "returned"))) {
        s_send_error (self, msg, ZJQ_EPROTO,
                      "WORK_RESULT: field 'status' must be 'ok', 'error', 'cancelled' or 'returned'");
        return;
    }
    const char *error = NULL;
    if (zjq_msg_has (msg, "error") && !(error = zjq_msg_get_str (msg, "error"))) {
        s_send_error (self, msg, ZJQ_EPROTO, "WORK_RESULT: field 'error' must be a string");
        return;
    }
    int64_t exit_code = -1, signal = 0, duration_ms = -1;
    if (s_opt_int (msg, "exit_code", 0, 255, &exit_code)
    ||  s_opt_int (msg, "signal", 1, 255, &signal)
    ||  s_opt_int (msg, "duration_ms", 0, INT64_MAX, &duration_ms)) {
        s_send_error (self, msg, ZJQ_EPROTO, "WORK_RESULT: fields 'exit_code' (0..255), "
                      "'signal' (1..255) and 'duration_ms' (>= 0) must be integers");
        return;
    }
    //  The slot is free again, whatever happens to the result
    zjq_jobentry_t *entry = zjq_jobtable_lookup (self->jobs, id);
    int slot = s_slot_find (peer, entry, id, (int) attempt);
    bool was_outstanding = slot >= 0;
    if (was_outstanding)
        s_slot_release (peer, slot);

    if (entry && zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING
    &&  zjq_jobentry_peer (entry) == peer && zjq_jobentry_attempt (entry) == attempt) {
        char text [ZJQ_ERROR_MAX + 64];
        char reason [ZJQ_ERROR_MAX];
        if (streq (status, "returned")) {
            //  Never started (prefetched, and the worker is leaving): back
            //  in its place, and the attempt does not count
            zjq_log_info ("job_returned", "job=%s worker=%s msg=%s", id, peer->worker_id,
                          "handed back unstarted: requeued");
            zjq_queue_counters (zjq_jobentry_queue (entry))->running--;
            zjq_jobtable_unstart (self->jobs, entry);
            s_enqueue (self, entry);
        }
        else
        if (streq (status, "ok")) {
            peer->completed++;
            zframe_t *result = zjq_msg_take_payload (msg);
            size_t size = result? zframe_size (result): 0;
            if (size > self->max_payload) {
                zframe_destroy (&result);
                snprintf (reason, sizeof (reason), "result too large (%zu bytes, limit %llu)",
                          size, (unsigned long long) self->max_payload);
                s_record_attempt (self, entry, reason, (int) exit_code, (int) signal,
                                  duration_ms);
                s_attempt_failed (self, entry,
                                  s_attempt_error (text, sizeof (text), entry, reason));
            }
            else {
                if (size == 0)
                    zframe_destroy (&result);
                s_job_end (self, entry, ZJQ_STATE_SUCCEEDED, NULL, &result);
                zframe_destroy (&result);
            }
        }
        else {
            peer->completed++;
            snprintf (reason, sizeof (reason), "%.*s", ZJQ_ERROR_MAX - 1,
                      error && *error? error:
                      streq (status, "error")? "failed": "cancelled by worker");
            s_record_attempt (self, entry, reason, (int) exit_code, (int) signal, duration_ms);
            s_attempt_failed (self, entry, s_attempt_error (text, sizeof (text), entry, reason));
        }
    }
    else {
        self->counters.stale_results++;
        zjq_log_debug ("stale_result", "job=%s attempt=%lld worker=%s reason=not_current",
                       id, (long long) attempt, peer->worker_id);
    }
    if (was_outstanding)
        s_peer_pump (self, peer);
}

//  Push a job's progress to the clients that asked for it, in the order
//  the worker reported it.
static void
s_push_progress (zjq_broker_t *self, zjq_jobentry_t *entry, const char *message)
{
    if (!zhashx_size (self->progress_watchers))
        return;
    zjq_jobid_text_t id = zjq_jobentry_id (entry);
    zlistx_t *watchers = (zlistx_t *) zhashx_lookup (self->progress_watchers, id.text);
    if (!watchers)
        return;
    for (zframe_t *routing_id = (zframe_t *) zlistx_first (watchers); routing_id;
         routing_id = (zframe_t *) zlistx_next (watchers)) {
        zjq_msg_t *update = s_msg_to_frame (routing_id, ZJQ_CMD_PROGRESS_UPDATE);
        zjq_msg_put_str (update, "id", id.text);
        zjq_msg_put_int (update, "attempt", zjq_jobentry_attempt (entry));
        zjq_msg_put_double (update, "progress", zjq_jobentry_progress (entry));
        if (message)
            zjq_msg_put_str (update, "message", message);
        s_send (self, &update);
    }
}

static void
s_handle_progress (zjq_broker_t *self, zjq_peer_t *peer, zjq_msg_t *msg)
{
    const char *id = zjq_msg_get_str (msg, "id");
    int64_t attempt = 0;
    double progress = 0;
    const char *message = NULL;
    if (!id) {
        s_send_error (self, msg, ZJQ_EPROTO, "PROGRESS: missing or invalid field 'id' (a string)");
        return;
    }
    if (!zjq_msg_get_int (msg, "attempt", &attempt)) {
        s_send_error (self, msg, ZJQ_EPROTO, "PROGRESS: missing or invalid field 'attempt'");
        return;
    }
    if (!zjq_msg_get_double (msg, "progress", &progress) || !(progress >= 0 && progress <= 1)) {
        s_send_error (self, msg, ZJQ_EPROTO,
                      "PROGRESS: field 'progress' must be a number from 0 to 1");
        return;
    }
    if (s_opt_str (msg, "message", ZJQ_TEXT_MAX, &message)) {
        s_send_error (self, msg, ZJQ_EPROTO,
                      "PROGRESS: field 'message' must be a string of at most 256 bytes");
        return;
    }
    zjq_jobentry_t *entry = zjq_jobtable_lookup (self->jobs, id);
    if (entry && zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING
    &&  zjq_jobentry_peer (entry) == peer && zjq_jobentry_attempt (entry) == attempt) {
        if (zjq_jobentry_set_progress (entry, progress, message) == -1)
            zjq_log_error ("out_of_memory", "what=progress_message job=%s", id);
        s_push_progress (self, entry, message);
    }
}

static void
s_handle_disconnect (zjq_broker_t *self, zjq_peer_t *peer, zjq_msg_t *msg)
{
    bool drain = false;
    if (s_opt_bool (msg, "drain", &drain)) {
        s_send_error (self, msg, ZJQ_EPROTO, "DISCONNECT: field 'drain' must be a boolean");
        return;
    }
    if (drain) {
        if (!peer->draining)
            zjq_log_info ("worker_draining", "worker=%s host=%s pid=%lld running=%zu",
                          peer->worker_id, peer->host, peer->pid, peer->outstanding);
        peer->draining = true;
        s_peer_unlist (peer);
    }
    else {
        zjq_log_info ("worker_left", "worker=%s host=%s pid=%lld running=%zu", peer->worker_id,
                      peer->host, peer->pid, peer->outstanding);
        s_peer_forget (self, peer, "worker left");
    }
}


//  --------------------------------------------------------------------------
//  Message routing

static void
s_handle_client (zjq_broker_t *self, zjq_msg_t *msg)
{
    switch (zjq_msg_command (msg)) {
        case ZJQ_CMD_SUBMIT: s_handle_submit (self, msg); break;
        case ZJQ_CMD_STATUS: s_handle_status (self, msg); break;
        case ZJQ_CMD_RESULT: s_handle_result (self, msg); break;
        case ZJQ_CMD_CANCEL: s_handle_cancel (self, msg); break;
        case ZJQ_CMD_STATS:  s_handle_stats (self, msg); break;
        case ZJQ_CMD_PING:   s_handle_ping (self, msg); break;
        case ZJQ_CMD_RELOAD: s_handle_reload (self, msg); break;
        case ZJQ_CMD_PAUSE:  s_handle_pause (self, msg, true); break;
        case ZJQ_CMD_RESUME: s_handle_pause (self, msg, false); break;
        case ZJQ_CMD_DRAIN:  s_handle_drain (self, msg); break;
        case ZJQ_CMD_DEAD_LETTERS: s_handle_dead_letters (self, msg); break;
        case ZJQ_CMD_RETRY:  s_handle_retry (self, msg); break;
        default:
            self->counters.malformed++;
            s_send_error (self, msg, ZJQ_ECOMMAND, "command %s is not a client command",
                          zjq_proto_command_name (zjq_msg_command (msg)));
    }
}

static void
s_handle_worker (zjq_broker_t *self, zjq_msg_t *msg)
{
    int command = zjq_msg_command (msg);
    char rid_key [ZJQ_RID_KEY_MAX];
    s_sender_key (msg, rid_key);
    zjq_peer_t *peer = (zjq_peer_t *) zhashx_lookup (self->peers, rid_key);
    if (command == ZJQ_CMD_READY) {
        if (peer) {
            s_warn (self, "bad_ready", "worker=%s host=%s pid=%lld problem=%s",
                    peer->worker_id, peer->host, peer->pid, "READY twice; forgetting it");
            s_send_error (self, msg, ZJQ_EPROTO, "READY: duplicate READY on this connection");
            s_peer_forget (self, peer, "worker re-registered");
        }
        else
            s_handle_ready (self, msg, rid_key);
        return;
    }
    if (!peer) {
        //  A worker we declared dead, or from before a restart: it must
        //  reconnect and say READY again.
        if (command == ZJQ_CMD_WORK_RESULT)
            self->counters.stale_results++;
        if (command != ZJQ_CMD_DISCONNECT) {
            if (command == ZJQ_CMD_WORK_RESULT)
                zjq_log_debug ("stale_result", "peer=%.40s reason=unknown_worker", rid_key);
            zjq_log_debug ("unknown_worker", "command=%s peer=%.40s reply=DISCONNECT",
                           zjq_proto_command_name (command), rid_key);
            zjq_msg_t *reply = s_msg_to_sender (msg, ZJQ_CMD_DISCONNECT);
            zjq_msg_put_str (reply, "reason", "unknown worker: send READY first");
            s_send (self, &reply);
        }
        return;
    }
    peer->last_seen = self->now;
    switch (command) {
        case ZJQ_CMD_HEARTBEAT:   break;
        case ZJQ_CMD_WORK_RESULT: s_handle_work_result (self, peer, msg); break;
        case ZJQ_CMD_PROGRESS:    s_handle_progress (self, peer, msg); break;
        case ZJQ_CMD_DISCONNECT:  s_handle_disconnect (self, peer, msg); break;
        default:
            self->counters.malformed++;
            s_send_error (self, msg, ZJQ_ECOMMAND, "command %s is not a worker command",
                          zjq_proto_command_name (command));
    }
}

static void
s_handle_malformed (zjq_broker_t *self, zjq_msg_t *msg)
{
    self->counters.malformed++;
    size_t rid_size;
    const byte *rid = zjq_msg_routing_id (msg, &rid_size);
    if (!rid)
        return;
    char rid_key [ZJQ_RID_KEY_MAX];
    s_rid_key (rid, rid_size, rid_key);
    zjq_peer_t *peer = (zjq_peer_t *) zhashx_lookup (self->peers, rid_key);
    if (peer)
        peer->last_seen = self->now;    //  still a sign of life
    const char *error = zjq_msg_error (msg);
    int code = zjq_msg_error_code (msg);
    s_warn (self, "malformed", "peer=%.40s worker=%s error=%s", rid_key,
            peer? peer->worker_id: "", error? error: "unknown error");
    s_send_error (self, msg, code? code: ZJQ_EPROTO, "%s", error? error: "malformed message");
}

//  "client+admin" for role bits
static const char *
s_roles_text (int roles, char *buf, size_t size)
{
    snprintf (buf, size, "%s%s%s%s%s", roles & ZJQ_AUTH_CLIENT? "client": "",
              (roles & ZJQ_AUTH_CLIENT) && (roles & ~ZJQ_AUTH_CLIENT)? "+": "",
              roles & ZJQ_AUTH_WORKER? "worker": "",
              (roles & ZJQ_AUTH_WORKER) && (roles & ZJQ_AUTH_ADMIN)? "+": "",
              roles & ZJQ_AUTH_ADMIN? "admin": "");
    return buf;
}

//  With CURVE: may the sender's key, as the allow-lists stand now, send
//  this message? SUBMIT needs the client role; STATS and RELOAD the admin
//  role (so do the operations: PAUSE, RESUME, DRAIN, DEAD_LETTERS, RETRY);
//  STATUS, RESULT, CANCEL and PING either (the job checks come
//  later); worker messages the worker role. If not: ERROR EDENIED, counted
//  and logged (by public key), a worker registered on the connection is
//  forgotten, and false is returned.
static bool
s_authorize (zjq_broker_t *self, zjq_msg_t *msg)
{
    int role = zjq_msg_role (msg);
    int command = zjq_msg_command (msg);
    int need;
    if (role == ZJQ_ROLE_WORKER)
        need = ZJQ_AUTH_WORKER;
    else
    if (role != ZJQ_ROLE_CLIENT)
        return true;            //  not a request: refused by s_handle_message
    else
    if (command == ZJQ_CMD_SUBMIT)
        need = ZJQ_AUTH_CLIENT;
    else
    if (command == ZJQ_CMD_STATS || command == ZJQ_CMD_RELOAD || command == ZJQ_CMD_PAUSE
    ||  command == ZJQ_CMD_RESUME || command == ZJQ_CMD_DRAIN
    ||  command == ZJQ_CMD_DEAD_LETTERS || command == ZJQ_CMD_RETRY)
        need = ZJQ_AUTH_ADMIN;
    else
        need = ZJQ_AUTH_CLIENT | ZJQ_AUTH_ADMIN;
    const char *key = zjq_msg_user_id (msg);
    int roles = zjq_auth_roles (self->auth, key);
    if (roles & need)
        return true;
    const char *name = zjq_proto_command_name (command);
    char held [32], needed [32];
    if (!roles) {
        self->counters.refused_unknown_key++;
        s_warn (self, "refused", "command=%s key=%s reason=%s", name? name: "?",
                key? key: "(none)", "the key is in no allow-list (any more)");
        s_send_error (self, msg, ZJQ_EDENIED, "this key is not in the broker's allow-lists");
    }
    else {
        self->counters.refused_role++;
        s_warn (self, "refused", "command=%s key=%s reason=role needs=%s holds=%s",
                name? name: "?", key, s_roles_text (need, needed, sizeof (needed)),
                s_roles_text (roles, held, sizeof (held)));
        s_send_error (self, msg, ZJQ_EDENIED, "%s needs a key with the %s role; this key is %s",
                      name? name: "this command", s_roles_text (need, needed, sizeof (needed)),
                      s_roles_text (roles, held, sizeof (held)));
    }
    if (role == ZJQ_ROLE_WORKER) {
        char rid_key [ZJQ_RID_KEY_MAX];
        s_sender_key (msg, rid_key);
        zjq_peer_t *peer = (zjq_peer_t *) zhashx_lookup (self->peers, rid_key);
        if (peer) {
            zjq_log_info ("worker_refused", "worker=%s host=%s pid=%lld reason=%s",
                          peer->worker_id, peer->host, peer->pid,
                          "its key lost the worker role");
            s_peer_forget (self, peer, "worker key refused");
        }
    }
    return false;
}

static void
s_handle_message (zjq_broker_t *self, zjq_msg_t *msg)
{
    if (zjq_log_enabled (ZJQ_LOG_DEBUG)) {
        char rid_key [ZJQ_RID_KEY_MAX];
        zjq_log_debug ("recv", "command=%s role=%c peer=%.40s",
                       zjq_proto_command_name (zjq_msg_command (msg)), zjq_msg_role (msg),
                       s_sender_key (msg, rid_key));
    }
    if (self->auth && !s_authorize (self, msg))
        return;
    switch (zjq_msg_role (msg)) {
        case ZJQ_ROLE_CLIENT: s_handle_client (self, msg); break;
        case ZJQ_ROLE_WORKER: s_handle_worker (self, msg); break;
        default:
            self->counters.malformed++;
            s_send_error (self, msg, ZJQ_ECOMMAND, "command %s may not be sent to a broker",
                          zjq_proto_command_name (zjq_msg_command (msg)));
    }
}


//  --------------------------------------------------------------------------
//  CURVE: reloads, handshakes

//  Re-read the allow-lists (SIGHUP or RELOAD; why says which). Workers
//  whose key lost the worker role, or one of the queues they serve, are
//  told DISCONNECT and forgotten (their jobs requeued). On error the old
//  lists stay in force, and error (error_size bytes) says why; it is left
//  alone on success.
static void
s_reload (zjq_broker_t *self, const char *why, char *error, size_t error_size)
{
    if (zjq_auth_reload (self->auth, error, error_size)) {
        zjq_log_error ("reload_failed", "why=%s error=%s msg=%s", why, error,
                       "the old allow-lists stay in force");
        return;
    }
    zjq_log_info ("allowlists_reloaded", "why=%s clients=%zu workers=%zu admins=%zu", why,
                  zjq_auth_count (self->auth, ZJQ_AUTH_CLIENT),
                  zjq_auth_count (self->auth, ZJQ_AUTH_WORKER),
                  zjq_auth_count (self->auth, ZJQ_AUTH_ADMIN));
    zlistx_t *revoked = zlistx_new ();
    assert (revoked);
    for (zjq_peer_t *peer = (zjq_peer_t *) zhashx_first (self->peers); peer;
         peer = (zjq_peer_t *) zhashx_next (self->peers)) {
        bool allowed = true;
        for (size_t index = 0; allowed && index < peer->queue_count; index++)
            allowed = zjq_auth_queue_allowed (self->auth, peer->user_key, ZJQ_AUTH_WORKER,
                                              zjq_queue_name (peer->queues [index]));
        if (!allowed)
            zlistx_add_end (revoked, peer);
    }
    for (zjq_peer_t *peer = (zjq_peer_t *) zlistx_first (revoked); peer;
         peer = (zjq_peer_t *) zlistx_next (revoked)) {
        zjq_log_info ("worker_revoked", "worker=%s host=%s pid=%lld key=%s reason=%s",
                      peer->worker_id, peer->host, peer->pid, peer->user_key,
                      "access revoked by the reload");
        zjq_msg_t *msg = s_msg_to_frame (peer->routing_id, ZJQ_CMD_DISCONNECT);
        zjq_msg_put_str (msg, "reason", "access revoked");
        s_send (self, &msg);
        s_peer_forget (self, peer, "worker key revoked");
    }
    zlistx_destroy (&revoked);
}

//  Answer the ZAP requests that are waiting (bounded), counting and logging
//  refusals.
static void
s_serve_zap (zjq_broker_t *self)
{
    zjq_auth_verdict_t verdict;
    for (size_t count = 0; count < ZJQ_DRAIN_BATCH && zjq_auth_zap_serve (self->auth, &verdict);
         count++) {
        if (verdict.allowed) {
            zjq_log_debug ("curve_accepted", "key=%s address=%s", verdict.key,
                           verdict.address);
            continue;
        }
        self->counters.refused_unknown_key++;
        s_warn (self, "refused_connection", "address=%s key=%s reason=%s", verdict.address,
                *verdict.key? verdict.key: "(none)", verdict.reason);
    }
}

//  Count and log handshakes that failed before the ZAP handler saw them:
//  plaintext peers (mechanism mismatch), peers with a wrong broker key
//  (cryptographic error), malformed handshakes. ZAP refusals are counted
//  by s_serve_zap.
static void
s_read_monitor (zjq_broker_t *self)
{
    int event, value;
    for (size_t count = 0; count < ZJQ_DRAIN_BATCH
                        && zjq_auth_monitor_read (self->auth, &event, &value); count++) {
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            continue;
        self->counters.refused_handshakes++;
        const char *why = value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH?
                              "not CURVE (a plaintext peer?)":
                          value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC?
                              "cryptographic error (wrong broker key?)":
                          event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL?
                              "connection lost during the handshake": "protocol error";
        s_warn (self, "refused_connection", "reason=%s", why);
    }
}


//  --------------------------------------------------------------------------
//  Setup

static bool
s_is_loopback (const char *endpoint)
{
    if (strncmp (endpoint, "tcp://", 6) != 0)
        return true;            //  ipc://, inproc:// stay on this host
    const char *host = endpoint + 6;
    const char *semicolon = strchr (host, ';');     //  "source;destination"
    if (semicolon)
        host = semicolon + 1;
    return strncmp (host, "127.", 4) == 0 || strncmp (host, "localhost:", 10) == 0
        || strncmp (host, "[::1]:", 6) == 0 || strncmp (host, "lo:", 3) == 0;
}

//  Write the bound endpoints, one per line, via a temporary file and rename.
static int
s_write_endpoint_file (const char *path, zlistx_t *endpoints)
{
    char tmp [4096];
    snprintf (tmp, sizeof (tmp), "%s.tmp.%d", path, (int) getpid ());
    FILE *file = fopen (tmp, "w");
    if (!file)
        return -1;
    for (const char *endpoint = (const char *) zlistx_first (endpoints); endpoint;
         endpoint = (const char *) zlistx_next (endpoints))
        fprintf (file, "%s\n", endpoint);
    bool ok = fflush (file) == 0 && fsync (fileno (file)) == 0;
    ok = fclose (file) == 0 && ok;
    if (!ok || rename (tmp, path) != 0) {
        unlink (tmp);
        return -1;
    }
    return 0;
}

//  A Prometheus scrape: the STATS map with histograms, from the loop's thread
static void
s_metrics_stats (void *arg, msgpack_packer *packer)
{
    zjq_broker_t *self = (zjq_broker_t *) arg;
    self->now = zjq_mono_ms ();
    s_stats_pack (self, packer, true);
}

static int
s_setsockopt_int (void *socket, int option, int value)
{
    return zmq_setsockopt (socket, option, &value, sizeof (value));
}

//  A job read back from the journal: into the table, and into its queue
static void
s_restore_job (void *arg, zjq_job_t *job, const char *queue_name)
{
    zjq_broker_t *self = (zjq_broker_t *) arg;
    zjq_queue_t *queue = zjq_proto_queue_name_valid (queue_name)? s_queue_require (self, queue_name): NULL;
    if (!queue) {
        zjq_log_error ("journal_job_dropped", "job=%s reason=%s", job->id,
                       "bad queue name or out of memory");
        zjq_job_free_fields (job);
        return;
    }
    job->queue = zjq_queue_name (queue);
    zjq_jobentry_t *entry = zjq_jobtable_restore (self->jobs, job, queue, self->now);
    if (entry && zjq_jobentry_state (entry) == ZJQ_STATE_QUEUED
    &&  zjq_queue_push (queue, entry) != 0) {
        zjq_log_error ("out_of_memory", "what=restoring_job job=%s",
                       zjq_jobentry_id (entry).text);
        zjq_jobtable_remove (self->jobs, &entry);
    }
}

//  A queue the journal holds as paused: paused again
static void
s_restore_paused (void *arg, const char *name)
{
    zjq_broker_t *self = (zjq_broker_t *) arg;
    zjq_queue_t *queue = zjq_proto_queue_name_valid (name)? s_queue_require (self, name): NULL;
    if (queue) {
        zjq_queue_set_paused (queue, true);
        zjq_log_info ("queue_paused", "queue=%s source=journal", name);
    }
    else
        zjq_log_error ("queue_dropped", "queue=%s source=journal reason=%s", name,
                       "bad name or out of memory");
}

//  Open and replay the journal, then create the job table of a generation
//  greater than any it has seen, restore the jobs and start journaling.
static int
s_journal_open (zjq_broker_t *self, const zjq_broker_config_t *config)
{
    zjq_journal_config_t settings = {
        .dir = config->journal,
        .policy = (zjq_fsync_policy_t) config->fsync_policy,
        .interval_ms = config->fsync_interval_ms,
        .compact_size = config->journal_compact_size,
        .salvage = config->journal_salvage
    };
    self->store = config->journal? zjq_store_new_file (&settings): zjq_store_new_memory ();
    if (!self->store || zjq_store_replay (self->store) == -1)
        return -1;
    uint64_t latest = zjq_store_max_generation (self->store);
    if (self->generation <= latest)
        self->generation = latest + 1;
    zjq_base36 (self->instance, self->generation);
    zjq_jobtable_destroy (&self->jobs);
    self->jobs = zjq_jobtable_new (self->generation);
    if (!self->jobs)
        return -1;
    zjq_jobtable_set_dead_letter_ttl (self->jobs, self->dead_letter_ttl_ms);
    size_t count = zjq_store_restore (self->store, self->jobs, s_restore_job, self);
    zjq_jobtable_paused_queues (self->jobs, s_restore_paused, self);
    s_trim_dead_letters (self);
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (self->jobs);
    if (count)
        zjq_log_info ("journal_restored", "queued=%llu outcomes=%llu",
                      (unsigned long long) stats->queued, (unsigned long long) stats->ended);
    return zjq_store_start (self->store, self->jobs);
}

zjq_broker_t *
zjq_broker_new (const zjq_broker_config_t *config, zjq_auth_t **auth_p)
{
    assert (config);
    zjq_broker_t *self = (zjq_broker_t *) calloc (1, sizeof (zjq_broker_t));
    if (!self) {
        if (auth_p)
            zjq_auth_destroy (auth_p);
        return NULL;
    }
    if (auth_p) {
        self->auth = *auth_p;
        *auth_p = NULL;
    }
    self->max_payload = config->max_payload;
    self->max_jobs = config->max_jobs;
    self->max_queues = config->max_queues;
    self->max_queued_bytes = config->max_queued_bytes;
    self->max_result_bytes = config->max_result_bytes;
    self->result_ttl_ms = config->result_ttl_ms;
    self->job_timeout_ms = config->job_timeout_ms;
    self->max_attempts = config->max_attempts;
    self->dead_letter_ttl_ms = config->dead_letter_ttl_ms;
    self->max_dead_letters = config->max_dead_letters;
    self->max_dead_letter_bytes = config->max_dead_letter_bytes;
    self->verbose = config->verbose;
    self->generation = (uint64_t) zjq_wall_ms ();
    zjq_base36 (self->instance, self->generation);
    self->started = self->now = zjq_mono_ms ();
    self->warn_window = self->now;
    self->next_check = INT64_MAX;
    zlistx_t *endpoints = zlistx_new ();
    self->jobs = zjq_jobtable_new (self->generation);
    self->queues = zhashx_new ();
    self->peers = zhashx_new ();
    self->progress_watchers = zhashx_new ();
    self->router = zsock_new (ZMQ_ROUTER);
    if (self->router) {
        self->inbox = zjq_inbox_new (self->router, true);
        self->outbox = zjq_outbox_new (self->router, s_send_failed, self);
    }
    if (!endpoints || !self->jobs || !self->queues || !self->peers || !self->router
    ||  !self->inbox || !self->outbox || !self->progress_watchers) {
        zjq_log_error ("start_failed", "reason=%s", "out of memory or sockets");
        goto err;
    }
    zlistx_set_destructor (endpoints, (zlistx_destructor_fn *) zstr_free);
    zhashx_set_destructor (self->queues, (zhashx_destructor_fn *) zjq_queue_destroy);
    zhashx_set_destructor (self->progress_watchers, (zhashx_destructor_fn *) zlistx_destroy);
    zjq_jobtable_set_dead_letter_ttl (self->jobs, self->dead_letter_ttl_ms);
    if (s_journal_open (self, config) == -1) {
        zjq_log_error ("start_failed", "journal=%s reason=%s", config->journal? config->journal: "",
                       "cannot open or replay the journal");
        goto err;
    }
    if (!config->journal)
        zjq_log_info ("memory_only", "msg=%s", "no --journal: jobs are kept in memory only "
                      "and are lost when the broker stops");

    void *handle = zsock_resolve (self->router);
    int64_t max_message = (int64_t) self->max_payload + (1 << 20);
    if (s_setsockopt_int (handle, ZMQ_ROUTER_HANDOVER, 1)
    ||  s_setsockopt_int (handle, ZMQ_ROUTER_MANDATORY, 1)
    ||  zmq_setsockopt (handle, ZMQ_MAXMSGSIZE, &max_message, sizeof (max_message))
    ||  s_setsockopt_int (handle, ZMQ_SNDHWM, ZJQ_HWM)
    ||  s_setsockopt_int (handle, ZMQ_RCVHWM, ZJQ_HWM)
    ||  s_setsockopt_int (handle, ZMQ_LINGER, 0)) {
        zjq_log_error ("start_failed", "reason=%s error=%s", "cannot set socket options",
                       zmq_strerror (errno));
        goto err;
    }
    if (self->auth) {
        char error [512];
        if (zjq_auth_attach (self->auth, self->router, error, sizeof (error))) {
            zjq_log_error ("start_failed", "reason=%s", error);
            goto err;
        }
        zjq_log_info ("curve_on", "broker_key=%s clients=%zu workers=%zu admins=%zu",
                      zjq_auth_public_key (self->auth),
                      zjq_auth_count (self->auth, ZJQ_AUTH_CLIENT),
                      zjq_auth_count (self->auth, ZJQ_AUTH_WORKER),
                      zjq_auth_count (self->auth, ZJQ_AUTH_ADMIN));
    }
    for (size_t index = 0; index < config->bind_count; index++) {
        const char *endpoint = config->binds [index];
        if (zmq_bind (handle, endpoint) == -1) {
            zjq_log_error ("start_failed", "endpoint=%s reason=%s error=%s", endpoint,
                           "cannot bind", zmq_strerror (errno));
            goto err;
        }
        char resolved [1024] = "";
        size_t size = sizeof (resolved);
        if (zmq_getsockopt (handle, ZMQ_LAST_ENDPOINT, resolved, &size) == -1 || !*resolved)
            snprintf (resolved, sizeof (resolved), "%s", endpoint);
        zlistx_add_end (endpoints, strdup (resolved));
        if (!self->auth && !s_is_loopback (resolved))
            zjq_log_warning ("plaintext_exposed", "endpoint=%s msg=%s", resolved,
                             "not a loopback address: traffic on it is plaintext and "
                             "unauthenticated; use CURVE (--curve-secret, see README: "
                             "Running across hosts securely)");
        zjq_log_info ("listening", "endpoint=%s", resolved);
    }
    if (config->metrics) {
        char error [512];
        self->metrics = zjq_metrics_new (config->metrics, s_metrics_stats, self,
                                         error, sizeof (error));
        if (!self->metrics) {
            zjq_log_error ("start_failed", "metrics=%s reason=%s", config->metrics, error);
            goto err;
        }
        zjq_log_info ("metrics_listening", "address=%s port=%d url=http://%s/metrics",
                      config->metrics, zjq_metrics_port (self->metrics), config->metrics);
    }
    if (config->endpoint_file
    &&  s_write_endpoint_file (config->endpoint_file, endpoints) == -1) {
        zjq_log_error ("start_failed", "endpoint_file=%s reason=%s error=%s",
                       config->endpoint_file, "cannot write the endpoint file", strerror (errno));
        goto err;
    }
    zlistx_destroy (&endpoints);
    zjq_log_info ("started", "version=%s instance=%s journal=%s curve=%s", zjq_version (),
                  self->instance, config->journal? config->journal: "",
                  self->auth? "on": "off");
    return self;

err:
    zlistx_destroy (&endpoints);
    zjq_broker_destroy (&self);
    return NULL;
}

void
zjq_broker_destroy (zjq_broker_t **self_p)
{
    assert (self_p);
    zjq_broker_t *self = *self_p;
    if (!self)
        return;
    if (self->peers) {
        for (zjq_peer_t *peer = (zjq_peer_t *) zhashx_first (self->peers); peer;
             peer = (zjq_peer_t *) zhashx_next (self->peers))
            s_peer_destroy (&peer);
        zhashx_destroy (&self->peers);
    }
    //  Replies still held were never promised: drop them
    while (self->held_count) {
        zjq_msg_destroy (&self->held [self->held_head].msg);
        self->held_head = (self->held_head + 1) % self->held_max;
        self->held_count--;
    }
    free (self->held);
    zjq_metrics_destroy (&self->metrics);
    zhashx_destroy (&self->progress_watchers);
    //  The journal before the table it journals (it flushes and syncs)
    zjq_store_destroy (&self->store);
    //  Queues first: they let go of the jobs in their heaps; the jobs'
    //  queue names are not read again
    zhashx_destroy (&self->queues);
    zjq_jobtable_destroy (&self->jobs);
    zjq_auth_destroy (&self->auth);     //  before the router it monitors
    zjq_inbox_destroy (&self->inbox);
    zjq_outbox_destroy (&self->outbox);
    zsock_destroy (&self->router);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  The loop

//  Handle waiting messages, at most ZJQ_DRAIN_BATCH. Returns true if it
//  stopped at the bound (more may be waiting).
static bool
s_drain (zjq_broker_t *self)
{
    for (size_t count = 0; count < ZJQ_DRAIN_BATCH; count++) {
        zjq_msg_t *msg = NULL;
        zjq_recv_t rc = zjq_inbox_recv (self->inbox, &msg);
        if (rc == ZJQ_RECV_INTERRUPTED)
            return false;
        self->now = zjq_mono_ms ();
        if (rc == ZJQ_RECV_MALFORMED)
            s_handle_malformed (self, msg);
        else
            s_handle_message (self, msg);
        zjq_msg_destroy (&msg);
    }
    return true;
}

//  Give freed memory back to the system when the table has shrunk to under
//  a quarter of its peak (checked at most once per ZJQ_TRIM_INTERVAL):
//  glibc keeps the free pages of a heap that was large otherwise.
static void
s_trim_memory (zjq_broker_t *self)
{
    uint64_t jobs = zjq_jobtable_stats (self->jobs)->jobs;
    if (jobs > self->jobs_peak)
        self->jobs_peak = jobs;
    if (self->now < self->next_trim)
        return;
    self->next_trim = self->now + ZJQ_TRIM_INTERVAL;
    //  After a large drain the last jobs go below the threshold for the
    //  quarter rule: one more trim when the table is empty
    bool tail = self->trim_tail && jobs == 0;
    if ((self->jobs_peak >= ZJQ_TRIM_MIN_PEAK && jobs < self->jobs_peak / 4) || tail) {
        zjq_log_debug ("memory_trim", "jobs=%llu peak=%llu",
                       (unsigned long long) jobs, (unsigned long long) self->jobs_peak);
        malloc_trim (0);
        self->jobs_peak = jobs;
        self->trim_tail = jobs > 0;
    }
}

//  Fire due deadlines, at most ZJQ_DEADLINE_BATCH. Returns true if it
//  stopped at the bound.
static bool
s_fire_deadlines (zjq_broker_t *self)
{
    for (size_t count = 0; count < ZJQ_DEADLINE_BATCH; count++) {
        zjq_jobentry_t *entry = zjq_jobtable_pop_due (self->jobs, self->now);
        if (!entry)
            return false;
        if (zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING)
            s_job_timeout (self, entry);
        else {
            zjq_log_debug ("outcome_expired", "job=%s", zjq_jobentry_id (entry).text);
            zjq_jobtable_remove (self->jobs, &entry);
        }
    }
    return true;
}

int
zjq_broker_run (zjq_broker_t *self, int signal_fd)
{
    assert (self);
    //  Poll the ROUTER, and whichever of these exist: the signal fd, the
    //  journal's sync notifications, CURVE's ZAP requests and handshake events
    zmq_pollitem_t items [6] = { { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 } };
    int item_count = 1;
    int signal_item = -1, journal_item = -1, metrics_item = -1;
    if (self->metrics) {
        metrics_item = item_count++;
        items [metrics_item] = (zmq_pollitem_t) {
            NULL, zjq_metrics_fd (self->metrics), ZMQ_POLLIN, 0 };
        self->metrics_due = INT64_MAX;
    }
    if (signal_fd >= 0) {
        signal_item = item_count++;
        items [signal_item] = (zmq_pollitem_t) { NULL, signal_fd, ZMQ_POLLIN, 0 };
    }
    self->journal_wait = 0;
    if (zjq_store_fd (self->store) >= 0) {
        journal_item = item_count++;
        items [journal_item] = (zmq_pollitem_t) {
            NULL, zjq_store_fd (self->store), ZMQ_POLLIN, 0 };
    }
    if (self->auth) {
        items [item_count++] = (zmq_pollitem_t) {
            zjq_auth_zap_socket (self->auth), 0, ZMQ_POLLIN, 0 };
        items [item_count++] = (zmq_pollitem_t) {
            zjq_auth_monitor_socket (self->auth), 0, ZMQ_POLLIN, 0 };
    }
    bool backlog = false;
    int rc = 0;
    while (true) {
        //  One write per turn for everything the turn appended
        zjq_store_flush (self->store);
        s_release (self, false);
        self->now = zjq_mono_ms ();
        int64_t next = s_min (zjq_jobtable_next_deadline (self->jobs), self->next_check);
        next = s_min (next, self->now + self->journal_wait);
        if (self->metrics)
            next = s_min (next, self->metrics_due);
        //  Everything this turn sent goes now, one message (or BATCH) per peer
        zjq_outbox_flush (self->outbox);
        backlog |= zjq_inbox_pending (self->inbox);
        long timeout = (backlog || self->reap)? 0: (long) s_min (ZJQ_POLL_MAX_MS, next - self->now);
        if (timeout < 0)
            timeout = 0;
        if (zmq_poll (items, item_count, timeout) == -1) {
            if (errno == EINTR)
                continue;
            zjq_log_error ("poll_failed", "error=%s", zmq_strerror (errno));
            rc = -1;
            break;
        }
        if (metrics_item >= 0 && ((items [metrics_item].revents & ZMQ_POLLIN)
                              || zjq_mono_ms () >= self->metrics_due)) {
            zjq_metrics_process (self->metrics);
            int64_t wait = zjq_metrics_timeout (self->metrics);
            self->metrics_due = wait < 0? INT64_MAX: zjq_mono_ms () + wait;
        }
        if (journal_item >= 0 && (items [journal_item].revents & ZMQ_POLLIN)) {
            zjq_store_process (self->store);
            s_release (self, false);
        }
        if (signal_item >= 0 && (items [signal_item].revents & ZMQ_POLLIN)) {
            int signum = zjq_signalfd_read (signal_fd);
            if (signum == SIGHUP) {
                if (self->auth) {
                    char error [512];
                    s_reload (self, "SIGHUP", error, sizeof (error));
                }
                else
                    zjq_log_info ("signal", "signal=SIGHUP msg=%s",
                                  "nothing to reload without CURVE");
            }
            else
            if (signum) {
                zjq_log_info ("signal", "signal=%s msg=%s",
                              signum == SIGTERM? "SIGTERM": signum == SIGINT? "SIGINT": "other",
                              "shutting down");
                break;
            }
        }
        if (self->auth) {
            //  Before the ROUTER: a handshake waits for its answer
            s_serve_zap (self);
            s_read_monitor (self);
        }
        backlog = s_drain (self);
        self->now = zjq_mono_ms ();
        backlog |= s_fire_deadlines (self);
        s_check_drain (self);
        if (self->reap || self->now >= self->next_check)
            s_check_peers (self);
        s_trim_memory (self);
        self->journal_wait = zjq_store_tick (self->store, self->jobs);
    }
    //  Make what was promised durable, then deliver the held replies
    if (zjq_store_sync_now (self->store) == -1)
        zjq_log_error ("journal_sync_failed", "error=%s msg=%s",
                       zjq_store_last_error (self->store),
                       "could not make the last records durable");
    s_release (self, true);
    zjq_outbox_flush (self->outbox);
    //  Say goodbye to the workers; give the socket a moment to flush that
    size_t peers = zhashx_size (self->peers);
    for (zjq_peer_t *peer = (zjq_peer_t *) zhashx_first (self->peers); peer;
         peer = (zjq_peer_t *) zhashx_next (self->peers)) {
        zjq_msg_t *msg = s_msg_to_frame (peer->routing_id, ZJQ_CMD_DISCONNECT);
        zjq_msg_put_str (msg, "reason", "broker shutting down");
        zjq_msg_send (&msg, self->router, true);
    }
    if (peers)
        zsock_set_linger (self->router, 100);
    zjq_log_info ("stopped", "jobs=%llu workers_told=%zu",
                  (unsigned long long) zjq_jobtable_stats (self->jobs)->jobs, peers);
    return rc;
}
