/*  zjq_client.c: the zjq asynchronous client library. See zjq_client.h.

    One client owns one libzmq context and one DEALER socket (raw libzmq,
    never czmq's zsock/zsys, so no signal handlers are installed inside the
    host application). Everything happens in zjq_client_process ():

    - Requests are encoded at once and wait in the outbox until the socket
      can take them (ZMQ_IMMEDIATE: only while a connection is up). Every
      request has a deadline from the moment it was issued; one that is
      still unsent then fails with ZJQ_EUNREACHABLE and is never sent.
    - Sent requests wait in a hash by their `req` id for the reply.
    - A watch waits for a job's DONE notice (zjq_result with a timeout, or
      zjq_submit with on_done). Watches are grouped by job id, so one DONE
      completes all of them. The broker keeps DONE registrations per
      connection and per generation, so while any watch exists the client
      pings every second and registers again (RESULT wait) for every
      watched job when it reconnects (socket monitor), when the broker's
      instance changes, or when a ping was lost.
    - With CURVE (zjq_client_new_ex), the monitor also reports failed
      handshakes: a broker that refuses our key fails the requests still
      waiting to be sent with ZJQ_EDENIED at once; other failures (wrong
      broker key, a plaintext broker) are remembered for the message of the
      ZJQ_EUNREACHABLE that follows.
    - Request and watch deadlines live in one heap; zjq_client_timeout ()
      is the time to its top, or to the next ping.
    - Cost per job: requests, watches and watched jobs are recycled through
      free lists, job ids of broker size live in the object (longer ones,
      which callers may pass, on the heap), and the two lookups (request by
      req, watched job by id) are open-addressing tables that allocate
      nothing per entry.                                                   */

#include "zjq_client_private.h"
#include "zjq_cert.h"
#include "zjq_heap.h"
#include "zjq_jobid.h"
#include "zjq_json.h"
#include "zjq_proto.h"
#include "zjq_batch.h"
#include "zjq_util.h"

#include <czmq.h>
#include <zmq.h>

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define ZJQ_CLIENT_REQUEST_TIMEOUT  5000    //  default, ms
#define ZJQ_CLIENT_PING_INTERVAL    1000    //  while watches exist, ms
#define ZJQ_CLIENT_RECONNECT_IVL    100     //  ms
#define ZJQ_CLIENT_RECONNECT_MAX    2000    //  ms
#define ZJQ_CLIENT_ROUTING_ID_SIZE  16
#define ZJQ_KEY_MAX                 256
#define ZJQ_JOB_ID_TEXT_MAX         256     //  longest id we pass on
#define ZJQ_CLIENT_MONITOR          "inproc://zjq-client-monitor"   //  own context
#define s_RECV_BURST                256     //  replies read per ZMQ_EVENTS
#define s_FREE_LIST_MAX             4096    //  spare objects kept, per kind
#define s_TABLE_MIN                 64      //  slots in a new table

//  A deadline in the heap. First member of request_t and watch_t, so a heap
//  item can be cast to its owner after looking at the type.
typedef enum { TIMER_REQUEST, TIMER_WATCH } timer_type_t;

typedef struct {
    int64_t when;               //  zjq_mono_ms () time it fires
    uint64_t order;             //  tie-break: FIFO among equal times
    size_t index;               //  heap position, ZJQ_HEAP_NONE if not in
    timer_type_t type;
} s_timer_t;

//  An open-addressing hash table of pointers (linear probing, deletion by
//  backward shift, at most half full): no allocation per entry. Each slot
//  keeps its key's hash, so a probe compares keys only on a hash match.
typedef struct {
    size_t hash;                //  of the item's key
    void *item;                 //  NULL: empty slot
} s_slot_t;

typedef struct {
    s_slot_t *slots;
    size_t mask;                //  slot count - 1 (a power of two)
    size_t count;               //  items
} s_table_t;

typedef enum {
    REQUEST_SUBMIT,
    REQUEST_STATUS,
    REQUEST_RESULT,
    REQUEST_CANCEL,
    REQUEST_STATS,
    REQUEST_PING,
    REQUEST_RELOAD,
    REQUEST_JSON,               //  an operation answered as JSON (pause, ...)
    REQUEST_KEEPALIVE,          //  internal ping while watches exist
    REQUEST_REWATCH             //  internal RESULT wait for a watched job
} request_kind_t;

typedef struct _request_t request_t;
struct _request_t {
    s_timer_t timer;            //  request deadline (must come first)
    uint64_t req;               //  id echoed by the broker (hash key)
    request_kind_t kind;
    zchunk_t *header;           //  encoded frames, until sent
    zchunk_t *fields;
    void *payload;              //  SUBMIT payload copy, until sent
    size_t payload_size;
    bool queued;                //  in the outbox (not sent yet)
    request_t *prev, *next;     //  outbox links
    union {
        zjq_submit_cb *submit;
        zjq_status_cb *status;
        zjq_result_cb *result;
        zjq_stats_cb *stats;
        zjq_done_cb *done;
        zjq_json_cb *json;
    } callback;                 //  by kind; may be NULL
    int reply_command;          //  REQUEST_JSON: the reply it expects
    zjq_result_cb *on_done;     //  SUBMIT: watch the job once accepted
    void *arg;                  //  caller's pointer
    char *job_id;               //  RESULT, REWATCH, STATUS, CANCEL: job_id_buf
                                //  or, if longer, a heap copy; else NULL
    char job_id_buf [ZJQ_JOBID_MAX];
    int64_t wait_deadline;      //  RESULT: -2 no wait, -1 no limit, else mono ms
    bool expires_as_timeout;    //  RESULT: its deadline is the caller's
};

typedef struct _jobwatch_t jobwatch_t;
typedef struct _watch_t watch_t;

struct _watch_t {
    s_timer_t timer;            //  caller's deadline, if any (first member)
    jobwatch_t *job;            //  the job it waits for
    zjq_result_cb *callback;    //  may be NULL
    void *arg;
    watch_t *prev, *next;       //  siblings on the same job
};

//  All watches on one job id
struct _jobwatch_t {
    char *id;                   //  job id (the table key): id_buf or heap
    char id_buf [ZJQ_JOBID_MAX];
    size_t hash;                //  s_id_hash (id)
    watch_t *first;             //  at least one while in the hash
    size_t count;               //  watches in the chain
    uint64_t rewatch_req;       //  last RESULT wait sent for it, or 0
    jobwatch_t *next_spare;     //  free list link
};

struct _zjq_client_t {
    void *context;              //  own libzmq context
    void *dealer;               //  DEALER to the broker
    zjq_inbox_t *inbox;         //  reads it, a BATCH's messages one by one
    zjq_batch_t *batch;         //  encodes several requests into one BATCH
    bool send_blocked;          //  the last send found no room (or no broker)
    void *monitor;              //  PAIR receiving socket events
    char *endpoint;
    int request_timeout;        //  ms
    uint64_t next_req;          //  request id counter
    uint64_t timer_order;       //  tie-break counter
    s_table_t requests;         //  req -> request_t, every live request
    request_t *outbox_head;     //  unsent requests, oldest first
    request_t *outbox_tail;
    zjq_heap_t *timers;         //  request and watch deadlines
    s_table_t jobs;             //  job id -> jobwatch_t
    request_t *spare_requests;  //  free lists (linked by next), each at
    watch_t *spare_watches;     //  most s_FREE_LIST_MAX long
    jobwatch_t *spare_jobs;     //  (linked by next_spare)
    size_t spare_request_count;
    size_t spare_watch_count;
    size_t spare_job_count;
    size_t watches;             //  watch_t count
    size_t user_requests;       //  requests with a caller behind them
    uint64_t keepalive_req;     //  ping in flight, or 0
    int64_t next_ping;          //  mono ms
    bool ping_lost;             //  a keepalive timed out since the last PONG
    char *instance;             //  broker instance from the last PONG
    size_t connects;            //  successful connects seen by the monitor
    uint64_t fired;             //  callbacks fired so far
    uint64_t malformed;         //  replies dropped
    int depth;                  //  callbacks running (nesting)
    bool closing;               //  destroy is failing what is pending
    zjq_msg_t *reply;           //  reply being dispatched (for callbacks)
    const char *handshake_error;    //  last failed CURVE handshake (static), or NULL
    bool input_checked;         //  since the dealer was last used, a read
                                //  (recv EAGAIN or ZMQ_EVENTS) found no input
    zjq_progress_cb *progress_cb;   //  zjq_on_progress, or NULL
    void *progress_arg;
};


//  --------------------------------------------------------------------------
//  Small helpers

static bool
s_timer_before (const void *a, const void *b)
{
    const s_timer_t *x = (const s_timer_t *) a;
    const s_timer_t *y = (const s_timer_t *) b;
    return x->when < y->when || (x->when == y->when && x->order < y->order);
}

static void
s_timer_set_index (void *item, size_t index)
{
    ((s_timer_t *) item)->index = index;
}

static size_t
s_req_hash (const void *key)
{
    uint64_t value = *(const uint64_t *) key;
    value ^= value >> 33;
    value *= 0xff51afd7ed558ccdULL;
    value ^= value >> 33;
    return (size_t) value;
}

//  FNV-1a, then a final mix so that the low bits (the table index) depend
//  on every byte
static size_t
s_id_hash (const char *id)
{
    uint64_t value = 0xcbf29ce484222325ULL;
    for (const unsigned char *byte = (const unsigned char *) id; *byte; byte++)
        value = (value ^ *byte) * 0x100000001b3ULL;
    return s_req_hash (&value);
}

//  Returns 0, or -1 out of memory
static int
s_table_init (s_table_t *self)
{
    self->slots = (s_slot_t *) calloc (s_TABLE_MIN, sizeof (s_slot_t));
    self->mask = s_TABLE_MIN - 1;
    self->count = 0;
    return self->slots? 0: -1;
}

static void
s_table_place (s_slot_t *slots, size_t mask, size_t hash, void *item)
{
    size_t index = hash & mask;
    while (slots [index].item)
        index = (index + 1) & mask;
    slots [index].hash = hash;
    slots [index].item = item;
}

//  Add an item (not already in). Returns 0, or -1 out of memory (the table
//  is unchanged).
static int
s_table_insert (s_table_t *self, size_t hash, void *item)
{
    if ((self->count + 1) * 2 > self->mask + 1) {
        size_t size = (self->mask + 1) * 2;
        s_slot_t *slots = (s_slot_t *) calloc (size, sizeof (s_slot_t));
        if (!slots)
            return -1;
        for (size_t index = 0; index <= self->mask; index++)
            if (self->slots [index].item)
                s_table_place (slots, size - 1, self->slots [index].hash,
                               self->slots [index].item);
        free (self->slots);
        self->slots = slots;
        self->mask = size - 1;
    }
    s_table_place (self->slots, self->mask, hash, item);
    self->count++;
    return 0;
}

//  Remove an item (by identity) if it is in.
static void
s_table_remove (s_table_t *self, size_t hash, void *item)
{
    size_t mask = self->mask;
    size_t hole = hash & mask;
    while (self->slots [hole].item != item) {
        if (!self->slots [hole].item)
            return;
        hole = (hole + 1) & mask;
    }
    //  Pull later items of the same probe run back into the hole, unless
    //  their home slot lies cyclically in (hole, index]
    for (size_t index = (hole + 1) & mask; self->slots [index].item;
         index = (index + 1) & mask) {
        size_t home = self->slots [index].hash & mask;
        bool stays = hole <= index? (home > hole && home <= index)
                                  : (home > hole || home <= index);
        if (!stays) {
            self->slots [hole] = self->slots [index];
            hole = index;
        }
    }
    self->slots [hole].item = NULL;
    self->count--;
}

//  Some item, or NULL if the table is empty.
static void *
s_table_any (s_table_t *self)
{
    for (size_t index = 0; self->count && index <= self->mask; index++)
        if (self->slots [index].item)
            return self->slots [index].item;
    return NULL;
}

//  Copy a job id into buf (ZJQ_JOBID_MAX bytes) if it fits, else onto the
//  heap. Returns the copy, or NULL out of memory.
static char *
s_id_copy (char *buf, const char *id)
{
    size_t size = strlen (id) + 1;
    if (size <= ZJQ_JOBID_MAX) {
        memcpy (buf, id, size);
        return buf;
    }
    return strdup (id);
}

static void
s_id_free (char **id_p, char *buf)
{
    if (*id_p != buf)
        free (*id_p);
    *id_p = NULL;
}

//  Arm a timer. Returns 0, or ZJQ_ENOMEM (timer not armed).
static int
s_timer_start (zjq_client_t *self, s_timer_t *timer, timer_type_t type, int64_t when)
{
    timer->type = type;
    timer->when = when;
    timer->order = ++self->timer_order;
    if (zjq_heap_push (self->timers, timer) != 0) {
        timer->index = ZJQ_HEAP_NONE;
        return ZJQ_ENOMEM;
    }
    return 0;
}

static void
s_timer_stop (zjq_client_t *self, s_timer_t *timer)
{
    if (timer->index != ZJQ_HEAP_NONE)
        zjq_heap_remove (self->timers, timer->index);
    timer->index = ZJQ_HEAP_NONE;
}

//  A job id we are willing to send: the broker decides whether it is one
//  of its ids (EBADID); we only refuse what cannot be sent.
static bool
s_valid_job_id (const char *job_id)
{
    return job_id && *job_id && strlen (job_id) <= ZJQ_JOB_ID_TEXT_MAX;
}

static void
s_free_hint (void *data, void *hint)
{
    free (data);
}

static int
s_clamp_int (int64_t value)
{
    return value < INT_MIN? INT_MIN: value > INT_MAX? INT_MAX: (int) value;
}

//  ZMQ_EVENTS, retrying on EINTR. Returns the events, or -1 on a fatal error.
static int
s_socket_events (zjq_client_t *self)
{
    int events = 0;
    size_t size = sizeof (events);
    while (zmq_getsockopt (self->dealer, ZMQ_EVENTS, &events, &size) == -1) {
        if (errno != EINTR)
            return -1;
        size = sizeof (events);
    }
    return events;
}


//  --------------------------------------------------------------------------
//  Callbacks: every user callback goes through here, so the count of fired
//  callbacks and the nesting depth stay right.

#define S_CALLBACK(self, call) do {     \
    (self)->depth++;                    \
    (self)->fired++;                    \
    call;                               \
    (self)->depth--;                    \
} while (0)

//  Fail a request's caller with a code (no reply).
static void
s_request_fail (zjq_client_t *self, request_t *request, int code)
{
    switch (request->kind) {
        case REQUEST_SUBMIT:
            if (request->callback.submit)
                S_CALLBACK (self, request->callback.submit (self, code, NULL, request->arg));
            else
            if (request->on_done)
                //  Nobody would learn of the failure otherwise
                S_CALLBACK (self, request->on_done (self, code, NULL, request->arg));
            break;
        case REQUEST_STATUS:
        case REQUEST_CANCEL:
            if (request->callback.status)
                S_CALLBACK (self, request->callback.status (self, code, NULL, request->arg));
            break;
        case REQUEST_RESULT:
            if (request->callback.result)
                S_CALLBACK (self, request->callback.result (self, code, NULL, request->arg));
            break;
        case REQUEST_STATS:
            if (request->callback.stats)
                S_CALLBACK (self, request->callback.stats (self, code, NULL, request->arg));
            break;
        case REQUEST_JSON:
            if (request->callback.json)
                S_CALLBACK (self, request->callback.json (self, code, NULL, request->arg));
            break;
        case REQUEST_PING:
        case REQUEST_RELOAD:
            if (request->callback.done)
                S_CALLBACK (self, request->callback.done (self, code, request->arg));
            break;
        case REQUEST_KEEPALIVE:
        case REQUEST_REWATCH:
            break;
    }
}


//  --------------------------------------------------------------------------
//  Requests

static bool
s_request_is_user (request_t *request)
{
    return request->kind != REQUEST_KEEPALIVE && request->kind != REQUEST_REWATCH;
}

//  Give a request back to the free list (or free it).
static void
s_request_free (zjq_client_t *self, request_t **request_p)
{
    request_t *request = *request_p;
    if (request) {
        zchunk_destroy (&request->header);
        zchunk_destroy (&request->fields);
        free (request->payload);
        s_id_free (&request->job_id, request->job_id_buf);
        if (self->spare_request_count < s_FREE_LIST_MAX) {
            request->next = self->spare_requests;
            self->spare_requests = request;
            self->spare_request_count++;
        }
        else
            free (request);
        *request_p = NULL;
    }
}

static request_t *
s_request_lookup (zjq_client_t *self, uint64_t req)
{
    size_t hash = s_req_hash (&req);
    for (size_t index = hash & self->requests.mask; self->requests.slots [index].item;
         index = (index + 1) & self->requests.mask) {
        request_t *request = (request_t *) self->requests.slots [index].item;
        if (self->requests.slots [index].hash == hash && request->req == req)
            return request;
    }
    return NULL;
}

static jobwatch_t *
s_job_lookup (zjq_client_t *self, const char *job_id)
{
    size_t hash = s_id_hash (job_id);
    for (size_t index = hash & self->jobs.mask; self->jobs.slots [index].item;
         index = (index + 1) & self->jobs.mask) {
        jobwatch_t *job = (jobwatch_t *) self->jobs.slots [index].item;
        if (self->jobs.slots [index].hash == hash && streq (job->id, job_id))
            return job;
    }
    return NULL;
}

static void
s_outbox_unlink (zjq_client_t *self, request_t *request)
{
    if (!request->queued)
        return;
    if (request->prev)
        request->prev->next = request->next;
    else
        self->outbox_head = request->next;
    if (request->next)
        request->next->prev = request->prev;
    else
        self->outbox_tail = request->prev;
    request->prev = request->next = NULL;
    request->queued = false;
}

//  Take a request out of every structure (the caller then frees it).
static void
s_request_detach (zjq_client_t *self, request_t *request)
{
    s_outbox_unlink (self, request);
    s_timer_stop (self, &request->timer);
    s_table_remove (&self->requests, s_req_hash (&request->req), request);
    if (s_request_is_user (request)) {
        assert (self->user_requests > 0);
        self->user_requests--;
    }
    if (request->kind == REQUEST_KEEPALIVE && self->keepalive_req == request->req)
        self->keepalive_req = 0;
}

//  Start a request message: the caller adds its fields, then s_request_queue.
static request_t *
s_request_new (zjq_client_t *self, request_kind_t kind)
{
    request_t *request = self->spare_requests;
    if (request) {
        self->spare_requests = request->next;
        self->spare_request_count--;
        memset (request, 0, sizeof (*request));
    }
    else
        request = (request_t *) calloc (1, sizeof (request_t));
    if (!request)
        return NULL;
    request->kind = kind;
    request->req = ++self->next_req;
    request->timer.index = ZJQ_HEAP_NONE;
    request->wait_deadline = -2;
    return request;
}

//  Encode the message for a request, arm its deadline and put it in the
//  outbox. Takes ownership of the request and of the message in any case.
//  Returns 0, or ZJQ_ENOMEM (the request is freed, its callbacks not called).
static int
s_request_queue (zjq_client_t *self, request_t *request, zjq_msg_t **msg_p, int64_t deadline)
{
    int rc = zjq_msg_encode (*msg_p, &request->header, &request->fields);
    zjq_msg_destroy (msg_p);
    if (rc != 0)
        goto nomem;
    if (s_table_insert (&self->requests, s_req_hash (&request->req), request) != 0)
        goto nomem;
    if (s_timer_start (self, &request->timer, TIMER_REQUEST, deadline) != 0) {
        s_table_remove (&self->requests, s_req_hash (&request->req), request);
        goto nomem;
    }
    request->queued = true;
    request->prev = self->outbox_tail;
    if (self->outbox_tail)
        self->outbox_tail->next = request;
    else
        self->outbox_head = request;
    self->outbox_tail = request;
    if (s_request_is_user (request))
        self->user_requests++;
    return 0;
nomem:
    s_request_free (self, &request);
    return ZJQ_ENOMEM;
}

static zjq_msg_t *
s_request_msg (request_t *request, int command)
{
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_CLIENT, command);
    if (msg)
        zjq_msg_put_int (msg, "req", (int64_t) request->req);
    return msg;
}

//  Start a request that names a job (STATUS, CANCEL, RESULT, REWATCH).
//  Returns the request and its message in *msg_p, or NULL out of memory.
static request_t *
s_job_request_new (zjq_client_t *self, request_kind_t kind, int command,
                   const char *job_id, bool wait, zjq_msg_t **msg_p)
{
    request_t *request = s_request_new (self, kind);
    if (!request)
        return NULL;
    request->job_id = s_id_copy (request->job_id_buf, job_id);
    zjq_msg_t *msg = s_request_msg (request, command);
    if (!request->job_id || !msg) {
        zjq_msg_destroy (&msg);
        s_request_free (self, &request);
        return NULL;
    }
    zjq_msg_put_str (msg, "id", job_id);
    if (command == ZJQ_CMD_RESULT)
        zjq_msg_put_bool (msg, "wait", wait);
    if (command == ZJQ_CMD_RESULT && wait && self->progress_cb)
        zjq_msg_put_bool (msg, "progress", true);
    *msg_p = msg;
    return request;
}

//  A request's payload, if it carries one
static size_t
s_request_payload_size (request_t *request)
{
    return request->kind == REQUEST_SUBMIT? request->payload_size: 0;
}

//  The request has been handed to libzmq: it now waits for its reply only
static void
s_request_sent (zjq_client_t *self, request_t *request)
{
    s_outbox_unlink (self, request);
    zchunk_destroy (&request->header);
    zchunk_destroy (&request->fields);
    free (request->payload);
    request->payload = NULL;
}

//  Send the oldest queued request on its own. Returns 1 if sent, 0 if the
//  socket would block, or ZJQ_ESYS.
static int
s_send_one (zjq_client_t *self)
{
    request_t *request = self->outbox_head;
    bool has_payload = request->kind == REQUEST_SUBMIT;
    if (zmq_send (self->dealer, zchunk_data (request->header), zchunk_size (request->header),
                  ZMQ_DONTWAIT | ZMQ_SNDMORE) == -1) {
        if (errno == EAGAIN || errno == EINTR)
            return 0;               //  stays queued for the next round
        return ZJQ_ESYS;
    }
    //  Once the first part is in, libzmq takes the rest of the message
    int rc = zmq_send (self->dealer, zchunk_data (request->fields),
                       zchunk_size (request->fields),
                       ZMQ_DONTWAIT | (has_payload? ZMQ_SNDMORE: 0));
    if (rc != -1 && has_payload) {
        zmq_msg_t part;
        if (request->payload_size) {
            zmq_msg_init_data (&part, request->payload, request->payload_size,
                               s_free_hint, NULL);
            request->payload = NULL;        //  libzmq frees it now
        }
        else
            zmq_msg_init (&part);
        rc = zmq_msg_send (&part, self->dealer, ZMQ_DONTWAIT);
        if (rc == -1)
            zmq_msg_close (&part);
    }
    if (rc == -1)
        return ZJQ_ESYS;
    s_request_sent (self, request);
    return 1;
}

//  Send the oldest queued requests in one BATCH, as many as one may hold
//  (a request with a large payload ends it, and goes on its own). Returns
//  the number sent, 0 if the socket would block, or ZJQ_ESYS.
static int
s_send_batch (zjq_client_t *self)
{
    zjq_batch_reset (self->batch);
    request_t *request = self->outbox_head;
    for (; request && zjq_batch_count (self->batch) < ZJQ_BATCH_MAX_COUNT
           && zjq_batch_size (self->batch) < ZJQ_BATCH_FLUSH_BYTES
           && s_request_payload_size (request) <= ZJQ_BATCH_PAYLOAD_MAX;
         request = request->next) {
        const byte *header = zchunk_data (request->header);
        if (zjq_batch_append (self->batch, header [5], zchunk_data (request->fields),
                              zchunk_size (request->fields), request->payload,
                              s_request_payload_size (request)) == -1)
            break;                  //  out of memory: send what there is
    }
    size_t count = zjq_batch_count (self->batch);
    if (count < 2)
        return s_send_one (self);
    if (zjq_batch_send (self->batch, self->dealer, NULL, 0, true) == -1) {
        zjq_batch_reset (self->batch);
        return (errno == EAGAIN || errno == EINTR)? 0: ZJQ_ESYS;
    }
    for (size_t index = 0; index < count; index++)
        s_request_sent (self, self->outbox_head);
    return (int) count;
}

//  Send queued requests until the socket refuses them (EAGAIN: no
//  connection, or the high-water mark); several go in one BATCH. Each
//  ZMQ_EVENTS costs libzmq a poll () on its mailbox, so it is not read
//  after every send: the caller reads it again after any progress. Returns
//  1 if anything was sent, 0 if not, or ZJQ_ESYS on a fatal socket error.
static int
s_flush_outbox (zjq_client_t *self)
{
    int progress = 0;
    while (self->outbox_head) {
        //  After a refusal, one request tries the way before a whole batch
        //  is encoded for it
        int sent = (self->send_blocked || !self->outbox_head->next)?
                   s_send_one (self): s_send_batch (self);
        if (sent < 0)
            return sent;
        self->send_blocked = sent == 0;
        if (sent == 0)
            break;
        progress = 1;
    }
    return progress;
}


//  --------------------------------------------------------------------------
//  Watches

//  Recycle a watch (out of every structure).
static void
s_watch_free (zjq_client_t *self, watch_t *watch)
{
    if (self->spare_watch_count < s_FREE_LIST_MAX) {
        watch->next = self->spare_watches;
        self->spare_watches = watch;
        self->spare_watch_count++;
    }
    else
        free (watch);
}

//  Recycle a watched job (out of the table, no watches left).
static void
s_jobwatch_free (zjq_client_t *self, jobwatch_t *job)
{
    s_id_free (&job->id, job->id_buf);
    if (self->spare_job_count < s_FREE_LIST_MAX) {
        job->next_spare = self->spare_jobs;
        self->spare_jobs = job;
        self->spare_job_count++;
    }
    else
        free (job);
}

//  Add a watch on a job, with a deadline (mono ms) or -1. Returns 0, or
//  ZJQ_ENOMEM (nothing changed).
static int
s_watch_add (zjq_client_t *self, const char *job_id, zjq_result_cb *callback, void *arg,
             int64_t deadline)
{
    watch_t *watch = self->spare_watches;
    if (watch) {
        self->spare_watches = watch->next;
        self->spare_watch_count--;
        memset (watch, 0, sizeof (*watch));
    }
    else
        watch = (watch_t *) calloc (1, sizeof (watch_t));
    if (!watch)
        return ZJQ_ENOMEM;
    watch->timer.index = ZJQ_HEAP_NONE;
    watch->callback = callback;
    watch->arg = arg;
    jobwatch_t *job = s_job_lookup (self, job_id);
    bool created = false;
    if (!job) {
        job = self->spare_jobs;
        if (job) {
            self->spare_jobs = job->next_spare;
            self->spare_job_count--;
            memset (job, 0, sizeof (*job));
        }
        else
            job = (jobwatch_t *) calloc (1, sizeof (jobwatch_t));
        if (job) {
            job->id = s_id_copy (job->id_buf, job_id);
            job->hash = s_id_hash (job_id);
        }
        if (!job || !job->id || s_table_insert (&self->jobs, job->hash, job) != 0) {
            if (job)
                s_jobwatch_free (self, job);
            s_watch_free (self, watch);
            return ZJQ_ENOMEM;
        }
        created = true;
    }
    if (deadline >= 0 && s_timer_start (self, &watch->timer, TIMER_WATCH, deadline) != 0) {
        if (created) {
            s_table_remove (&self->jobs, job->hash, job);
            s_jobwatch_free (self, job);
        }
        s_watch_free (self, watch);
        return ZJQ_ENOMEM;
    }
    //  Append, so watches on one job fire in the order they were made
    watch->job = job;
    if (job->first) {
        watch_t *last = job->first;
        while (last->next)
            last = last->next;
        last->next = watch;
        watch->prev = last;
    }
    else
        job->first = watch;
    job->count++;
    if (self->watches++ == 0)
        self->next_ping = zjq_mono_ms ();       //  learn the instance now
    return 0;
}

//  Take one watch out of its job; frees the job when it was the last.
static void
s_watch_unlink (zjq_client_t *self, watch_t *watch)
{
    jobwatch_t *job = watch->job;
    s_timer_stop (self, &watch->timer);
    if (watch->prev)
        watch->prev->next = watch->next;
    else
        job->first = watch->next;
    if (watch->next)
        watch->next->prev = watch->prev;
    watch->prev = watch->next = NULL;
    job->count--;
    self->watches--;
    if (!job->first) {
        s_table_remove (&self->jobs, job->hash, job);
        s_jobwatch_free (self, job);
    }
    watch->job = NULL;
}

//  A job has ended (or can no longer be watched): complete every watch on
//  it. status and result as for zjq_result_cb.
static void
s_job_complete (zjq_client_t *self, const char *job_id, int status, const zjq_result_t *result)
{
    jobwatch_t *job = s_job_lookup (self, job_id);
    if (!job)
        return;                 //  nobody waits (late or duplicate DONE)
    //  Detach the whole chain first: callbacks may add watches on this id
    s_table_remove (&self->jobs, job->hash, job);
    watch_t *watch = job->first;
    for (watch_t *item = watch; item; item = item->next) {
        s_timer_stop (self, &item->timer);
        self->watches--;
    }
    while (watch) {
        watch_t *next = watch->next;
        if (watch->callback)
            S_CALLBACK (self, watch->callback (self, status, result, watch->arg));
        s_watch_free (self, watch);
        watch = next;
    }
    s_jobwatch_free (self, job);
}

//  Register again with the broker for DONE on one watched job, unless a
//  registration is already waiting in the outbox.
static void
s_rewatch (zjq_client_t *self, jobwatch_t *job)
{
    if (job->rewatch_req) {
        request_t *pending = s_request_lookup (self, job->rewatch_req);
        if (pending && pending->queued)
            return;
    }
    zjq_msg_t *msg = NULL;
    request_t *request =
        s_job_request_new (self, REQUEST_REWATCH, ZJQ_CMD_RESULT, job->id, true, &msg);
    if (!request)
        return;                 //  out of memory: the next trigger retries
    uint64_t req = request->req;
    if (s_request_queue (self, request, &msg, zjq_mono_ms () + self->request_timeout) == 0)
        job->rewatch_req = req;
}

static void
s_rewatch_all (zjq_client_t *self)
{
    //  s_rewatch does not change self->jobs, so iterating is safe
    for (size_t index = 0; index <= self->jobs.mask; index++)
        if (self->jobs.slots [index].item)
            s_rewatch (self, (jobwatch_t *) self->jobs.slots [index].item);
}


//  --------------------------------------------------------------------------
//  Decoding replies

//  The error code of a REJECTED or ERROR reply. Returns false if absent or
//  not a negative int.
static bool
s_reply_code (zjq_msg_t *msg, int *code)
{
    int64_t value;
    if (!zjq_msg_get_int (msg, "code", &value) || value >= 0 || value < INT_MIN)
        return false;
    *code = (int) value;
    return true;
}

//  Read a job outcome from JOB_RESULT or DONE. Returns true and the status
//  for the callback (0, ZJQ_EFAILED, ZJQ_ECANCELLED), or false if malformed.
static bool
s_reply_result (zjq_msg_t *msg, zjq_result_t *result, int *status)
{
    memset (result, 0, sizeof (*result));
    result->id = zjq_msg_get_str (msg, "id");
    int state = zjq_state_from_name (zjq_msg_get_str (msg, "state"));
    if (!result->id
    || (state != ZJQ_STATE_SUCCEEDED && state != ZJQ_STATE_FAILED && state != ZJQ_STATE_CANCELLED))
        return false;
    int64_t attempt = 0;
    zjq_msg_get_int (msg, "attempt", &attempt);
    result->state = state;
    result->attempt = s_clamp_int (attempt);
    if (state == ZJQ_STATE_SUCCEEDED) {
        zframe_t *payload = zjq_msg_payload (msg);
        result->size = payload? zframe_size (payload): 0;
        result->data = result->size? (const void *) zframe_data (payload): (const void *) "";
        *status = 0;
    }
    else {
        result->error = zjq_msg_get_str (msg, "error");
        if (!result->error)
            result->error = state == ZJQ_STATE_FAILED? "failed": "cancelled";
        *status = state == ZJQ_STATE_FAILED? ZJQ_EFAILED: ZJQ_ECANCELLED;
    }
    return true;
}

//  Read a JOB_STATUS. Returns false if malformed.
static bool
s_reply_info (zjq_msg_t *msg, zjq_job_info_t *info)
{
    memset (info, 0, sizeof (*info));
    info->id = zjq_msg_get_str (msg, "id");
    const char *state = zjq_msg_get_str (msg, "state");
    if (!info->id || !state)
        return false;
    info->state = zjq_state_from_name (state);
    info->queue = zjq_msg_get_str (msg, "queue");
    if (!info->queue)
        info->queue = "";
    int64_t value;
    if (zjq_msg_get_int (msg, "attempt", &value))
        info->attempt = s_clamp_int (value);
    if (zjq_msg_get_int (msg, "max_attempts", &value))
        info->max_attempts = s_clamp_int (value);
    if (zjq_msg_get_int (msg, "priority", &value))
        info->priority = s_clamp_int (value);
    zjq_msg_get_int (msg, "created_ms", &info->created_ms);
    zjq_msg_get_int (msg, "started_ms", &info->started_ms);
    zjq_msg_get_int (msg, "finished_ms", &info->finished_ms);
    zjq_msg_get_int (msg, "expires_ms", &info->expires_ms);
    zjq_msg_get_int (msg, "result_size", &info->result_size);
    info->progress = -1;
    zjq_msg_get_double (msg, "progress", &info->progress);
    info->error = zjq_msg_get_str (msg, "error");
    info->progress_message = zjq_msg_get_str (msg, "progress_message");
    info->worker = zjq_msg_get_str (msg, "worker");
    return true;
}

//  PONG: re-register watches if the broker restarted or a ping was lost.
//  Returns false if malformed.
static bool
s_handle_pong (zjq_client_t *self, zjq_msg_t *msg)
{
    const char *instance = zjq_msg_get_str (msg, "instance");
    if (!instance)
        return false;
    bool restarted = self->instance && strcmp (self->instance, instance) != 0;
    if (restarted || self->ping_lost)
        s_rewatch_all (self);
    self->ping_lost = false;
    if (!self->instance || restarted) {
        char *copy = strdup (instance);
        if (copy) {
            free (self->instance);
            self->instance = copy;
        }
    }
    return true;
}

static char *s_fields_json (zjq_msg_t *msg);

//  The reply to a request we hold. Returns false if it does not fit the
//  request (the request stays pending).
static bool
s_handle_reply (zjq_client_t *self, request_t *request, zjq_msg_t *msg)
{
    int command = zjq_msg_command (msg);
    int code = 0;
    bool is_error = (command == ZJQ_CMD_ERROR
                 || (command == ZJQ_CMD_REJECTED && request->kind == REQUEST_SUBMIT));
    if (is_error) {
        if (!s_reply_code (msg, &code))
            return false;
        s_request_detach (self, request);
        if (request->kind == REQUEST_REWATCH) {
            if (code == ZJQ_ENOTFOUND || code == ZJQ_EEXPIRED || code == ZJQ_EBADID)
                s_job_complete (self, request->job_id, code, NULL);
        }
        else
            s_request_fail (self, request, code);
        return true;
    }
    switch (request->kind) {
        case REQUEST_SUBMIT: {
            if (command != ZJQ_CMD_ACCEPTED)
                return false;
            const char *job_id = zjq_msg_get_str (msg, "id");
            if (!job_id)
                return false;
            bool duplicate = false;
            zjq_msg_get_bool (msg, "duplicate", &duplicate);
            s_request_detach (self, request);
            int watch_rc = 0;
            if (request->on_done) {
                watch_rc = s_watch_add (self, job_id, request->on_done, request->arg, -1);
                //  A duplicate may have ended already: DONE would never come
                if (watch_rc == 0 && duplicate)
                    s_rewatch (self, s_job_lookup (self, job_id));
            }
            if (request->callback.submit)
                S_CALLBACK (self, request->callback.submit (self, 0, job_id, request->arg));
            if (watch_rc != 0)
                S_CALLBACK (self, request->on_done (self, watch_rc, NULL, request->arg));
            return true;
        }
        case REQUEST_STATUS:
        case REQUEST_CANCEL: {
            zjq_job_info_t info;
            if (command != ZJQ_CMD_JOB_STATUS || !s_reply_info (msg, &info))
                return false;
            s_request_detach (self, request);
            if (request->callback.status)
                S_CALLBACK (self, request->callback.status (self, 0, &info, request->arg));
            return true;
        }
        case REQUEST_RESULT:
        case REQUEST_REWATCH: {
            bool rewatch = request->kind == REQUEST_REWATCH;
            if (command == ZJQ_CMD_JOB_RESULT) {
                zjq_result_t result;
                int status;
                if (!s_reply_result (msg, &result, &status))
                    return false;
                s_request_detach (self, request);
                if (rewatch)
                    s_job_complete (self, request->job_id, status, &result);
                else
                if (request->callback.result)
                    S_CALLBACK (self,
                                request->callback.result (self, status, &result, request->arg));
                return true;
            }
            if (command != ZJQ_CMD_JOB_STATUS || !zjq_msg_get_str (msg, "id"))
                return false;
            s_request_detach (self, request);
            if (rewatch)
                ;               //  registered again: DONE will come
            else
            if (request->wait_deadline == -2) {
                if (request->callback.result)
                    S_CALLBACK (self,
                                request->callback.result (self, ZJQ_ENOTREADY, NULL, request->arg));
            }
            else {
                int rc = s_watch_add (self, request->job_id, request->callback.result,
                                      request->arg, request->wait_deadline);
                if (rc != 0 && request->callback.result)
                    S_CALLBACK (self, request->callback.result (self, rc, NULL, request->arg));
            }
            return true;
        }
        case REQUEST_STATS: {
            const msgpack_object *stats = zjq_msg_get (msg, "stats");
            if (command != ZJQ_CMD_STATS_REPLY || !stats || stats->type != MSGPACK_OBJECT_MAP)
                return false;
            s_request_detach (self, request);
            char *json = request->callback.stats? zjq_json_from_msgpack (stats): NULL;
            if (request->callback.stats)
                S_CALLBACK (self, request->callback.stats (self, json? 0: ZJQ_ENOMEM, json,
                                                           request->arg));
            free (json);
            return true;
        }
        case REQUEST_JSON: {
            if (command != request->reply_command)
                return false;
            s_request_detach (self, request);
            char *json = request->callback.json? s_fields_json (msg): NULL;
            if (request->callback.json)
                S_CALLBACK (self, request->callback.json (self, json? 0: ZJQ_ENOMEM, json,
                                                          request->arg));
            free (json);
            return true;
        }
        case REQUEST_RELOAD:
            if (command != ZJQ_CMD_RELOADED)
                return false;
            s_request_detach (self, request);
            if (request->callback.done)
                S_CALLBACK (self, request->callback.done (self, 0, request->arg));
            return true;
        case REQUEST_PING:
        case REQUEST_KEEPALIVE:
            if (command != ZJQ_CMD_PONG || !s_handle_pong (self, msg))
                return false;
            s_request_detach (self, request);
            if (request->kind == REQUEST_PING && request->callback.done)
                S_CALLBACK (self, request->callback.done (self, 0, request->arg));
            return true;
    }
    return false;
}

//  The fields of a reply, but req, as a JSON object; NULL if out of memory.
static char *
s_fields_json (zjq_msg_t *msg)
{
    const msgpack_object *fields = zjq_msg_fields (msg);
    char *buf = NULL;
    size_t len = 0;
    int rc = zjq_json_append (&buf, &len, "{");
    bool first = true;
    for (uint32_t index = 0; rc == 0 && index < fields->via.map.size; index++) {
        const msgpack_object_kv *field = &fields->via.map.ptr [index];
        if (field->key.type == MSGPACK_OBJECT_STR && field->key.via.str.size == 3
        &&  memcmp (field->key.via.str.ptr, "req", 3) == 0)
            continue;
        rc = zjq_json_append (&buf, &len, first? "": ",");
        if (rc == 0)
            rc = zjq_json_append_msgpack (&buf, &len, &field->key);
        if (rc == 0)
            rc = zjq_json_append (&buf, &len, ":");
        if (rc == 0)
            rc = zjq_json_append_msgpack (&buf, &len, &field->val);
        first = false;
    }
    if (rc == 0)
        rc = zjq_json_append (&buf, &len, "}");
    if (rc != 0) {
        free (buf);
        return NULL;
    }
    return buf;
}

//  PROGRESS_UPDATE: a job we asked about reports progress. Returns false if
//  malformed.
static bool
s_handle_progress (zjq_client_t *self, zjq_msg_t *msg)
{
    const char *job_id = zjq_msg_get_str (msg, "id");
    double progress = -1;
    int64_t attempt = 0;
    if (!job_id || !zjq_msg_get_double (msg, "progress", &progress)
    ||  !zjq_msg_get_int (msg, "attempt", &attempt))
        return false;
    if (self->progress_cb)
        S_CALLBACK (self, self->progress_cb (self, job_id, s_clamp_int (attempt), progress,
                                             zjq_msg_get_str (msg, "message"),
                                             self->progress_arg));
    return true;
}

//  DONE: a watched job has ended.
static bool
s_handle_done (zjq_client_t *self, zjq_msg_t *msg)
{
    zjq_result_t result;
    int status;
    if (!s_reply_result (msg, &result, &status))
        return false;
    s_job_complete (self, result.id, status, &result);
    return true;
}

static void
s_dispatch (zjq_client_t *self, zjq_msg_t *msg)
{
    zjq_msg_t *outer = self->reply;
    self->reply = msg;
    bool ok = false;
    if (zjq_msg_role (msg) == ZJQ_ROLE_BROKER) {
        if (zjq_msg_command (msg) == ZJQ_CMD_DONE)
            ok = s_handle_done (self, msg);
        else
        if (zjq_msg_command (msg) == ZJQ_CMD_PROGRESS_UPDATE)
            ok = s_handle_progress (self, msg);
        else {
            int64_t req;
            if (zjq_msg_get_int (msg, "req", &req) && req > 0) {
                request_t *request = s_request_lookup (self, (uint64_t) req);
                if (!request || request->queued)
                    ok = true;      //  a late reply to a request that timed out
                else
                if (s_handle_reply (self, request, msg)) {
                    s_request_free (self, &request);
                    ok = true;
                }
            }
        }
    }
    if (!ok)
        self->malformed++;
    self->reply = outer;
}


//  --------------------------------------------------------------------------
//  Timers and the socket monitor

//  Fire every timer that is due. Returns how many fired.
static int
s_expire (zjq_client_t *self)
{
    int64_t now = zjq_mono_ms ();
    int expired = 0;
    s_timer_t *timer;
    while ((timer = (s_timer_t *) zjq_heap_top (self->timers)) && timer->when <= now) {
        expired++;
        if (timer->type == TIMER_REQUEST) {
            request_t *request = (request_t *) timer;
            s_request_detach (self, request);
            if (request->kind == REQUEST_KEEPALIVE)
                self->ping_lost = true;
            s_request_fail (self, request,
                            request->expires_as_timeout? ZJQ_ETIMEDOUT: ZJQ_EUNREACHABLE);
            s_request_free (self, &request);
        }
        else {
            watch_t *watch = (watch_t *) timer;
            s_watch_unlink (self, watch);
            if (watch->callback)
                S_CALLBACK (self, watch->callback (self, ZJQ_ETIMEDOUT, NULL, watch->arg));
            s_watch_free (self, watch);
        }
    }
    return expired;
}

//  Ping the broker every interval while watches exist, one ping at a time.
static void
s_keepalive (zjq_client_t *self)
{
    if (!self->watches || self->keepalive_req)
        return;
    int64_t now = zjq_mono_ms ();
    if (now < self->next_ping)
        return;
    self->next_ping = now + ZJQ_CLIENT_PING_INTERVAL;
    request_t *request = s_request_new (self, REQUEST_KEEPALIVE);
    zjq_msg_t *msg = request? s_request_msg (request, ZJQ_CMD_PING): NULL;
    if (!msg) {
        s_request_free (self, &request);
        return;
    }
    uint64_t req = request->req;
    if (s_request_queue (self, request, &msg, now + self->request_timeout) == 0)
        self->keepalive_req = req;
}

//  Fail every user request that is still waiting to be sent.
static void
s_fail_outbox (zjq_client_t *self, int code)
{
    //  Only those queued now: callbacks may queue new ones
    request_t *request = self->outbox_head;
    request_t *last = self->outbox_tail;
    while (request) {
        request_t *next = request == last? NULL: request->next;
        if (s_request_is_user (request)) {
            s_request_detach (self, request);
            s_request_fail (self, request, code);
            s_request_free (self, &request);
        }
        request = next;
    }
}

//  Read socket events: a connect after the first one is a reconnect, and
//  the broker has forgotten our DONE registrations on the old connection.
//  Failed handshakes: see the top of this file.
static void
s_monitor_drain (zjq_client_t *self)
{
    if (!self->monitor)
        return;
    int event;
    uint32_t value;
    while (zjq_monitor_recv (self->monitor, &event, &value)) {
        if (event == ZMQ_EVENT_CONNECTED && ++self->connects > 1)
            s_rewatch_all (self);
        else
        if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED)
            self->handshake_error = NULL;
        else
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            self->handshake_error = "the broker refused this client's CURVE key "
                                    "(not in its allow-lists)";
            s_fail_outbox (self, ZJQ_EDENIED);
        }
        else
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
            self->handshake_error = value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH?
                "the broker's security does not match ours (CURVE on one side only?)":
                "the CURVE handshake with the broker failed (wrong broker key?)";
        else
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL && !self->handshake_error)
            //  Less telling than the others: keep theirs
            self->handshake_error = "the handshake with the broker failed (wrong broker key?)";
    }
}


//  --------------------------------------------------------------------------
//  Construction and destruction

void
zjq_submit_opts_init (zjq_submit_opts_t *opts)
{
    assert (opts);
    memset (opts, 0, sizeof (*opts));
}

//  16 random bytes, the first one not zero (libzmq reserves ids that
//  start with a zero byte for the ones it makes up).
static void
s_random_routing_id (unsigned char *id, size_t size)
{
    ssize_t got = getrandom (id, size, GRND_NONBLOCK);
    if (got != (ssize_t) size) {
        static uint64_t counter;
        struct timespec now;
        clock_gettime (CLOCK_REALTIME, &now);
        uint64_t state = ((uint64_t) now.tv_sec * 1000000007ULL) ^ (uint64_t) now.tv_nsec
                       ^ ((uint64_t) getpid () << 32) ^ (uint64_t) (uintptr_t) id ^ ++counter;
        for (size_t index = 0; index < size; index++) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            id [index] = (unsigned char) (state >> 24);
        }
    }
    if (id [0] == 0)
        id [0] = 1;
}

static void
s_client_free (zjq_client_t *self)
{
    if (self->monitor)
        zmq_close (self->monitor);
    zjq_inbox_destroy (&self->inbox);
    zjq_batch_destroy (&self->batch);
    if (self->dealer) {
        zmq_socket_monitor (self->dealer, NULL, 0);
        zmq_close (self->dealer);
    }
    if (self->context)
        zmq_ctx_term (self->context);
    free (self->requests.slots);
    free (self->jobs.slots);
    while (self->spare_requests) {
        request_t *next = self->spare_requests->next;
        free (self->spare_requests);
        self->spare_requests = next;
    }
    while (self->spare_watches) {
        watch_t *next = self->spare_watches->next;
        free (self->spare_watches);
        self->spare_watches = next;
    }
    while (self->spare_jobs) {
        jobwatch_t *next = self->spare_jobs->next_spare;
        free (self->spare_jobs);
        self->spare_jobs = next;
    }
    zjq_heap_destroy (&self->timers);
    free (self->endpoint);
    free (self->instance);
    free (self);
}

void
zjq_client_opts_init (zjq_client_opts_t *opts)
{
    assert (opts);
    memset (opts, 0, sizeof (*opts));
}

static int
s_error (char *error, size_t error_size, int code, const char *format, ...)
    __attribute__ ((format (printf, 4, 5)));

static int
s_error (char *error, size_t error_size, int code, const char *format, ...)
{
    if (error && error_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (error, error_size, format, args);
        va_end (args);
    }
    return code;
}

//  Load the key files and make the socket a CURVE client. Returns 0 or
//  ZJQ_EKEY with error set.
static int
s_set_curve (void *socket, const char *secret_file, const char *broker_key_file,
             char *error, size_t error_size)
{
    char reason [512];
    zjq_cert_t *mine = zjq_cert_load (secret_file, true, reason, sizeof (reason));
    if (!mine)
        return s_error (error, error_size, ZJQ_EKEY, "%s", reason);
    zjq_cert_t *broker = zjq_cert_load (broker_key_file, false, reason, sizeof (reason));
    if (!broker) {
        zjq_cert_destroy (&mine);
        return s_error (error, error_size, ZJQ_EKEY, "broker key %s", reason);
    }
    int rc = 0;
    if (zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, zjq_cert_public_key (broker), 40)
    ||  zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, zjq_cert_public_key (mine), 40)
    ||  zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, zjq_cert_secret_key (mine), 40))
        rc = s_error (error, error_size, ZJQ_EKEY, "cannot use CURVE: %s (is libzmq built "
                      "with CURVE support?)", zmq_strerror (errno));
    zjq_cert_destroy (&mine);
    zjq_cert_destroy (&broker);
    return rc;
}

zjq_client_t *
zjq_client_new (const char *endpoint)
{
    zjq_client_t *client = NULL;
    zjq_client_new_ex (&client, endpoint, NULL, NULL, 0);
    return client;
}

int
zjq_client_new_ex (zjq_client_t **client_p, const char *endpoint, const zjq_client_opts_t *opts,
                   char *error, size_t error_size)
{
    if (!client_p)
        return s_error (error, error_size, ZJQ_EINVAL, "no place for the client");
    *client_p = NULL;
    if (!endpoint || !*endpoint)
        return s_error (error, error_size, ZJQ_EINVAL, "no broker endpoint");
    bool curve = opts && (opts->curve_secret_file || opts->broker_key_file);
    if (curve && !(opts->curve_secret_file && opts->broker_key_file))
        return s_error (error, error_size, ZJQ_EINVAL,
                        "CURVE needs both this client's secret key file and the broker's "
                        "public key file");
    int rc = ZJQ_ENOMEM;
    zjq_client_t *self = (zjq_client_t *) calloc (1, sizeof (zjq_client_t));
    if (!self)
        return s_error (error, error_size, rc, "out of memory");
    self->request_timeout = ZJQ_CLIENT_REQUEST_TIMEOUT;
    self->endpoint = strdup (endpoint);
    self->timers = zjq_heap_new (s_timer_before, s_timer_set_index);
    if (!self->endpoint || s_table_init (&self->requests) != 0
    ||  s_table_init (&self->jobs) != 0 || !self->timers)
        goto err;

    self->context = zmq_ctx_new ();
    if (!self->context)
        goto err;
    zmq_ctx_set (self->context, ZMQ_BLOCKY, 0);
    self->dealer = zmq_socket (self->context, ZMQ_DEALER);
    if (!self->dealer)
        goto err;
    self->inbox = zjq_inbox_new (self->dealer, false);
    self->batch = zjq_batch_new (ZJQ_ROLE_CLIENT);
    if (!self->inbox || !self->batch)
        goto err;
    if (curve) {
        rc = s_set_curve (self->dealer, opts->curve_secret_file, opts->broker_key_file,
                          error, error_size);
        if (rc)
            goto err;
        rc = ZJQ_ENOMEM;
    }
    unsigned char routing_id [ZJQ_CLIENT_ROUTING_ID_SIZE];
    s_random_routing_id (routing_id, sizeof (routing_id));
    int zero = 0, one = 1;
    int reconnect = ZJQ_CLIENT_RECONNECT_IVL, reconnect_max = ZJQ_CLIENT_RECONNECT_MAX;
    if (zmq_setsockopt (self->dealer, ZMQ_ROUTING_ID, routing_id, sizeof (routing_id))
    ||  zmq_setsockopt (self->dealer, ZMQ_IMMEDIATE, &one, sizeof (one))
    ||  zmq_setsockopt (self->dealer, ZMQ_LINGER, &zero, sizeof (zero))
    ||  zmq_setsockopt (self->dealer, ZMQ_RECONNECT_IVL, &reconnect, sizeof (reconnect))
    ||  zmq_setsockopt (self->dealer, ZMQ_RECONNECT_IVL_MAX, &reconnect_max,
                        sizeof (reconnect_max)))
        goto err;
    //  The monitor only tells us about reconnects and failed handshakes; a
    //  client works without it (the keepalive pings still catch lost
    //  registrations).
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
               | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
               | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor (self->dealer, ZJQ_CLIENT_MONITOR, events) == 0) {
        self->monitor = zmq_socket (self->context, ZMQ_PAIR);
        if (self->monitor) {
            zmq_setsockopt (self->monitor, ZMQ_LINGER, &zero, sizeof (zero));
            if (zmq_connect (self->monitor, ZJQ_CLIENT_MONITOR) != 0) {
                zmq_close (self->monitor);
                self->monitor = NULL;
            }
        }
    }
    if (zmq_connect (self->dealer, endpoint) != 0) {
        rc = s_error (error, error_size, ZJQ_EINVAL, "cannot use broker endpoint '%s': %s",
                      endpoint, zmq_strerror (errno));
        goto err;
    }
    *client_p = self;
    return 0;
err:
    if (rc == ZJQ_ENOMEM)
        s_error (error, error_size, rc, "out of memory or sockets");
    s_client_free (self);
    return rc;
}

void
zjq_client_destroy (zjq_client_t **self_p)
{
    assert (self_p);
    zjq_client_t *self = *self_p;
    if (!self)
        return;
    //  Destroying the client from one of its own callbacks is not allowed
    assert (self->depth == 0);
    assert (!self->closing);
    self->closing = true;
    //  Fail what is pending; callbacks cannot start anything new now
    //  (requests return ZJQ_ECLOSED), so this ends.
    request_t *request;
    while ((request = (request_t *) s_table_any (&self->requests))) {
        s_request_detach (self, request);
        s_request_fail (self, request, ZJQ_ECLOSED);
        s_request_free (self, &request);
    }
    jobwatch_t *job;
    while ((job = (jobwatch_t *) s_table_any (&self->jobs)))
        //  job->id is only used for the lookup, before the job is freed
        s_job_complete (self, job->id, ZJQ_ECLOSED, NULL);
    s_client_free (self);
    *self_p = NULL;
}

int
zjq_client_set_request_timeout (zjq_client_t *self, int timeout_ms)
{
    if (!self || timeout_ms <= 0)
        return ZJQ_EINVAL;
    self->request_timeout = timeout_ms;
    return 0;
}


//  --------------------------------------------------------------------------
//  Event loop integration

int
zjq_client_fd (zjq_client_t *self)
{
    if (!self)
        return ZJQ_EINVAL;
    int fd = -1;
    size_t size = sizeof (fd);
    if (zmq_getsockopt (self->dealer, ZMQ_FD, &fd, &size) != 0)
        return ZJQ_ESYS;
    return fd;
}

int
zjq_client_timeout (zjq_client_t *self)
{
    if (!self || self->closing)
        return -1;
    //  Reading ZMQ_EVENTS resets the edge of the fd: whatever it shows must
    //  be handled now, or poll () could sleep on input already here. Not
    //  needed if zjq_client_process ended on a read that found no input and
    //  has nothing to send (each read costs libzmq a poll ()).
    if (!self->input_checked || self->outbox_head) {
        int events = s_socket_events (self);
        if (events < 0 || (events & ZMQ_POLLIN)
        ||  (self->outbox_head && (events & ZMQ_POLLOUT)))
            return 0;
        self->input_checked = true;
    }
    int64_t when = -1;
    s_timer_t *top = (s_timer_t *) zjq_heap_top (self->timers);
    if (top)
        when = top->when;
    if (self->watches && !self->keepalive_req && (when < 0 || self->next_ping < when))
        when = self->next_ping;
    if (when < 0)
        return -1;
    int64_t left = when - zjq_mono_ms ();
    return left <= 0? 0: left > INT_MAX? INT_MAX: (int) left;
}

int
zjq_client_process (zjq_client_t *self)
{
    if (!self)
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    uint64_t fired = self->fired;
    //  Called from a callback, callbacks fired here are not about the
    //  reply being dispatched outside
    zjq_msg_t *outer_reply = self->reply;
    self->reply = NULL;
    int rc = 0;
    //  Socket events (connects, failed handshakes) once per call: reading
    //  an empty monitor costs a poll () in libzmq
    s_monitor_drain (self);
    //  ZMQ_FD is edge-triggered, and any use of the socket may consume the
    //  edge: the loop ends only after a read that found no input (a recv
    //  that returned EAGAIN has processed libzmq's commands just as reading
    //  ZMQ_EVENTS does) with no send attempted since.
    bool input_checked = false;
    while (rc == 0) {
        bool progress = false;
        if (s_expire (self))
            progress = true;
        s_keepalive (self);
        if (self->outbox_head) {
            input_checked = false;
            int sent = s_flush_outbox (self);
            if (sent < 0) {
                rc = sent;
                break;
            }
            if (sent > 0)
                progress = true;
        }
        //  A burst of replies, until EAGAIN
        for (int count = 0; !input_checked && count < s_RECV_BURST; count++) {
            zjq_msg_t *msg = NULL;
            zjq_recv_t recv = zjq_inbox_recv (self->inbox, &msg);
            if (recv == ZJQ_RECV_OK) {
                s_dispatch (self, msg);
                progress = true;
            }
            else
            if (recv == ZJQ_RECV_MALFORMED) {
                self->malformed++;
                progress = true;
            }
            else
            if (errno == EAGAIN)
                input_checked = true;
            else
            if (errno != EINTR)
                rc = ZJQ_ESYS;
            zjq_msg_destroy (&msg);
            if (recv == ZJQ_RECV_INTERRUPTED)
                break;
        }
        //  No progress: nothing was sent and the burst ended on EAGAIN (or
        //  EINTR: the caller's next round retries), or input_checked held
        if (!progress)
            break;
    }
    self->input_checked = input_checked && !self->outbox_head;
    self->reply = outer_reply;
    if (rc < 0)
        return rc;
    uint64_t count = self->fired - fired;
    return count > INT_MAX? INT_MAX: (int) count;
}

int
zjq_client_pending (zjq_client_t *self)
{
    if (!self)
        return ZJQ_EINVAL;
    size_t pending = self->user_requests + self->watches;
    return pending > INT_MAX? INT_MAX: (int) pending;
}

//  Sleep until the client's fd is readable or timeout_ms passes.
static void
s_poll (zjq_client_t *self, int timeout_ms)
{
    if (timeout_ms == 0)
        return;
    struct pollfd item = { .fd = zjq_client_fd (self), .events = POLLIN };
    if (item.fd >= 0)
        poll (&item, 1, timeout_ms);        //  EINTR: just go round again
}

int
zjq_client_run (zjq_client_t *self, int timeout_ms)
{
    if (!self)
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    int64_t deadline = timeout_ms < 0? -1: zjq_mono_ms () + timeout_ms;
    while (true) {
        int rc = zjq_client_process (self);
        if (rc < 0)
            return rc;
        if (zjq_client_pending (self) == 0)
            return 0;
        int wait = zjq_client_timeout (self);
        if (deadline >= 0) {
            int64_t left = deadline - zjq_mono_ms ();
            if (left <= 0)
                return ZJQ_ETIMEDOUT;
            if (wait < 0 || wait > left)
                wait = (int) left;
        }
        s_poll (self, wait);
    }
}


//  --------------------------------------------------------------------------
//  Requests

int
zjq_submit (zjq_client_t *self, const char *queue,
            const void *payload, size_t size,
            const zjq_submit_opts_t *opts,
            zjq_submit_cb *on_accepted, zjq_result_cb *on_done, void *arg)
{
    if (!self || !queue || (!payload && size))
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_submit_opts_t defaults;
    if (!opts) {
        zjq_submit_opts_init (&defaults);
        opts = &defaults;
    }
    if (!zjq_proto_queue_name_valid (queue)
    ||  opts->priority < -1000 || opts->priority > 1000
    ||  opts->max_attempts < 0 || opts->max_attempts > 1000
    ||  opts->job_timeout_ms < 0 || opts->result_ttl_ms < 0
    ||  (opts->key && (!*opts->key || strlen (opts->key) > ZJQ_KEY_MAX)))
        return ZJQ_EINVAL;

    request_t *request = s_request_new (self, REQUEST_SUBMIT);
    if (!request)
        return ZJQ_ENOMEM;
    request->payload = malloc (size? size: 1);
    zjq_msg_t *msg = s_request_msg (request, ZJQ_CMD_SUBMIT);
    if (!request->payload || !msg) {
        zjq_msg_destroy (&msg);
        s_request_free (self, &request);
        return ZJQ_ENOMEM;
    }
    if (size)
        memcpy (request->payload, payload, size);
    request->payload_size = size;
    zjq_msg_put_str (msg, "queue", queue);
    if (opts->priority)
        zjq_msg_put_int (msg, "priority", opts->priority);
    if (opts->max_attempts)
        zjq_msg_put_int (msg, "max_attempts", opts->max_attempts);
    if (opts->job_timeout_ms)
        zjq_msg_put_int (msg, "job_timeout_ms", opts->job_timeout_ms);
    if (opts->result_ttl_ms)
        zjq_msg_put_int (msg, "result_ttl_ms", opts->result_ttl_ms);
    if (opts->key)
        zjq_msg_put_str (msg, "key", opts->key);
    if (on_done)
        zjq_msg_put_bool (msg, "notify", true);
    if (on_done && self->progress_cb)
        zjq_msg_put_bool (msg, "progress", true);
    request->callback.submit = on_accepted;
    request->on_done = on_done;
    request->arg = arg;
    return s_request_queue (self, request, &msg, zjq_mono_ms () + self->request_timeout);
}

//  STATUS and CANCEL
static int
s_status_request (zjq_client_t *self, request_kind_t kind, int command, const char *job_id,
                  zjq_status_cb *callback, void *arg)
{
    if (!self || !s_valid_job_id (job_id))
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_msg_t *msg = NULL;
    request_t *request = s_job_request_new (self, kind, command, job_id, false, &msg);
    if (!request)
        return ZJQ_ENOMEM;
    request->callback.status = callback;
    request->arg = arg;
    return s_request_queue (self, request, &msg, zjq_mono_ms () + self->request_timeout);
}

int
zjq_status (zjq_client_t *self, const char *job_id, zjq_status_cb *callback, void *arg)
{
    return s_status_request (self, REQUEST_STATUS, ZJQ_CMD_STATUS, job_id, callback, arg);
}

int
zjq_cancel (zjq_client_t *self, const char *job_id, zjq_status_cb *callback, void *arg)
{
    return s_status_request (self, REQUEST_CANCEL, ZJQ_CMD_CANCEL, job_id, callback, arg);
}

int
zjq_result (zjq_client_t *self, const char *job_id, int timeout_ms,
            zjq_result_cb *callback, void *arg)
{
    if (!self || !s_valid_job_id (job_id) || timeout_ms < -1)
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_msg_t *msg = NULL;
    request_t *request = s_job_request_new (self, REQUEST_RESULT, ZJQ_CMD_RESULT, job_id,
                                            timeout_ms != 0, &msg);
    if (!request)
        return ZJQ_ENOMEM;
    request->callback.result = callback;
    request->arg = arg;
    int64_t now = zjq_mono_ms ();
    int64_t deadline = now + self->request_timeout;
    if (timeout_ms > 0) {
        request->wait_deadline = now + timeout_ms;
        //  The caller's limit holds while the request is out too
        if (request->wait_deadline < deadline) {
            deadline = request->wait_deadline;
            request->expires_as_timeout = true;
        }
    }
    else
    if (timeout_ms == -1)
        request->wait_deadline = -1;
    return s_request_queue (self, request, &msg, deadline);
}

int
zjq_stats (zjq_client_t *self, zjq_stats_cb *callback, void *arg)
{
    if (!self)
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    request_t *request = s_request_new (self, REQUEST_STATS);
    zjq_msg_t *msg = request? s_request_msg (request, ZJQ_CMD_STATS): NULL;
    if (!msg) {
        s_request_free (self, &request);
        return ZJQ_ENOMEM;
    }
    request->callback.stats = callback;
    request->arg = arg;
    return s_request_queue (self, request, &msg, zjq_mono_ms () + self->request_timeout);
}

//  A request without fields whose answer is a plain status (PING, RELOAD).
static int
s_done_request (zjq_client_t *self, request_kind_t kind, int command,
                zjq_done_cb *callback, void *arg)
{
    if (!self)
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    request_t *request = s_request_new (self, kind);
    zjq_msg_t *msg = request? s_request_msg (request, command): NULL;
    if (!msg) {
        s_request_free (self, &request);
        return ZJQ_ENOMEM;
    }
    request->callback.done = callback;
    request->arg = arg;
    return s_request_queue (self, request, &msg, zjq_mono_ms () + self->request_timeout);
}

int
zjq_on_progress (zjq_client_t *self, zjq_progress_cb *callback, void *arg)
{
    if (!self)
        return ZJQ_EINVAL;
    self->progress_cb = callback;
    self->progress_arg = arg;
    return 0;
}

//  Start an operation answered as JSON: reply is the command it expects.
//  Returns the request and its message in *msg_p, or NULL out of memory.
static request_t *
s_json_request_new (zjq_client_t *self, int command, int reply, zjq_json_cb *callback,
                    void *arg, zjq_msg_t **msg_p)
{
    request_t *request = s_request_new (self, REQUEST_JSON);
    zjq_msg_t *msg = request? s_request_msg (request, command): NULL;
    if (!msg) {
        s_request_free (self, &request);
        return NULL;
    }
    request->reply_command = reply;
    request->callback.json = callback;
    request->arg = arg;
    *msg_p = msg;
    return request;
}

//  Queue an operation's request
static int
s_json_request_queue (zjq_client_t *self, request_t *request, zjq_msg_t **msg_p)
{
    return s_request_queue (self, request, msg_p, zjq_mono_ms () + self->request_timeout);
}

//  PAUSE and RESUME
static int
s_queue_request (zjq_client_t *self, int command, const char *queue, zjq_json_cb *callback,
                 void *arg)
{
    if (!self || !zjq_proto_queue_name_valid (queue))
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_msg_t *msg;
    request_t *request = s_json_request_new (self, command, ZJQ_CMD_QUEUE_STATE, callback,
                                             arg, &msg);
    if (!request)
        return ZJQ_ENOMEM;
    zjq_msg_put_str (msg, "queue", queue);
    return s_json_request_queue (self, request, &msg);
}

int
zjq_pause (zjq_client_t *self, const char *queue, zjq_json_cb *callback, void *arg)
{
    return s_queue_request (self, ZJQ_CMD_PAUSE, queue, callback, arg);
}

int
zjq_resume (zjq_client_t *self, const char *queue, zjq_json_cb *callback, void *arg)
{
    return s_queue_request (self, ZJQ_CMD_RESUME, queue, callback, arg);
}

int
zjq_drain (zjq_client_t *self, int off, zjq_json_cb *callback, void *arg)
{
    if (!self)
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_msg_t *msg;
    request_t *request = s_json_request_new (self, ZJQ_CMD_DRAIN, ZJQ_CMD_DRAIN_STATE,
                                             callback, arg, &msg);
    if (!request)
        return ZJQ_ENOMEM;
    if (off)
        zjq_msg_put_bool (msg, "off", true);
    return s_json_request_queue (self, request, &msg);
}

int
zjq_dead_letters (zjq_client_t *self, const char *queue, const char *after, int64_t after_ms,
                  int limit, zjq_json_cb *callback, void *arg)
{
    if (!self || (queue && !zjq_proto_queue_name_valid (queue))
    ||  (after && !s_valid_job_id (after)) || limit < 0 || limit > 10000)
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_msg_t *msg;
    request_t *request = s_json_request_new (self, ZJQ_CMD_DEAD_LETTERS,
                                             ZJQ_CMD_DEAD_LETTER_LIST, callback, arg, &msg);
    if (!request)
        return ZJQ_ENOMEM;
    if (queue)
        zjq_msg_put_str (msg, "queue", queue);
    if (after) {
        zjq_msg_put_str (msg, "after", after);
        zjq_msg_put_int (msg, "after_ms", after_ms);
    }
    if (limit)
        zjq_msg_put_int (msg, "limit", limit);
    return s_json_request_queue (self, request, &msg);
}

int
zjq_retry (zjq_client_t *self, const char *job_id, const char *queue, zjq_json_cb *callback,
           void *arg)
{
    if (!self || !job_id == !queue || (job_id && !s_valid_job_id (job_id))
    ||  (queue && !zjq_proto_queue_name_valid (queue)))
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_msg_t *msg;
    request_t *request = s_json_request_new (self, ZJQ_CMD_RETRY, ZJQ_CMD_RETRIED, callback,
                                             arg, &msg);
    if (!request)
        return ZJQ_ENOMEM;
    zjq_msg_put_str (msg, job_id? "id": "queue", job_id? job_id: queue);
    return s_json_request_queue (self, request, &msg);
}

int
zjq_reload (zjq_client_t *self, zjq_done_cb *callback, void *arg)
{
    return s_done_request (self, REQUEST_RELOAD, ZJQ_CMD_RELOAD, callback, arg);
}

int
zjq_ping (zjq_client_t *self, zjq_done_cb *callback, void *arg)
{
    return s_done_request (self, REQUEST_PING, ZJQ_CMD_PING, callback, arg);
}


//  --------------------------------------------------------------------------
//  Blocking wait

typedef struct {
    zjq_result_cb *callback;    //  the caller's, or NULL
    void *arg;
    bool done;
    int status;
} s_wait_t;

static void
s_wait_done (zjq_client_t *client, int status, const zjq_result_t *result, void *arg)
{
    s_wait_t *wait = (s_wait_t *) arg;
    wait->done = true;
    wait->status = status;
    if (wait->callback)
        wait->callback (client, status, result, wait->arg);
}

//  Drop, without calling it, whatever request or watch still points at a
//  wait that is being abandoned.
static void
s_forget_wait (zjq_client_t *self, s_wait_t *wait)
{
    for (size_t index = 0; index <= self->requests.mask; index++) {
        request_t *request = (request_t *) self->requests.slots [index].item;
        if (request && request->kind == REQUEST_RESULT && request->arg == wait) {
            s_request_detach (self, request);
            s_request_free (self, &request);
            break;
        }
    }
    for (size_t index = 0; index <= self->jobs.mask; index++) {
        jobwatch_t *job = (jobwatch_t *) self->jobs.slots [index].item;
        for (watch_t *watch = job? job->first: NULL; watch; watch = watch->next)
            if (watch->arg == wait && watch->callback == s_wait_done) {
                s_watch_unlink (self, watch);
                s_watch_free (self, watch);
                return;
            }
    }
}

int
zjq_wait (zjq_client_t *self, const char *job_id, int timeout_ms,
          zjq_result_cb *callback, void *arg)
{
    s_wait_t wait = { callback, arg, false, 0 };
    int rc = zjq_result (self, job_id, timeout_ms, s_wait_done, &wait);
    if (rc != 0)
        return rc;
    //  Each request and watch ends by its reply or its deadline, so this
    //  loop ends.
    while (!wait.done) {
        rc = zjq_client_process (self);
        if (rc < 0) {
            s_forget_wait (self, &wait);
            return rc;
        }
        if (!wait.done)
            s_poll (self, zjq_client_timeout (self));
    }
    return wait.status;
}

const char *
zjq_client_error_message (zjq_client_t *self)
{
    if (!self)
        return NULL;
    if (self->reply) {
        int command = zjq_msg_command (self->reply);
        return command == ZJQ_CMD_REJECTED || command == ZJQ_CMD_ERROR?
               zjq_msg_get_str (self->reply, "message"): NULL;
    }
    return self->handshake_error;
}


//  --------------------------------------------------------------------------
//  Private API for the CLI (zjq_client_private.h)

zjq_msg_t *
zjq_client_reply (zjq_client_t *self)
{
    assert (self);
    return self->reply;
}

uint64_t
zjq_client_malformed (zjq_client_t *self)
{
    assert (self);
    return self->malformed;
}

const char *
zjq_client_handshake_error (zjq_client_t *self)
{
    assert (self);
    return self->handshake_error;
}
