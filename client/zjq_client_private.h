/*  zjq_client_private.h: client library internals.

    Not installed and not part of the ABI. Two audiences:
    - the zjq CLI, which needs a few reply fields that the public callbacks
      do not carry (the `duplicate` flag, the broker's message with an
      error, PONG's instance and version, the raw stats map to print a
      table): the first section;
    - the three files of the library itself, which share the client object
      and call each other through the rest (hidden from the shared
      library's symbol table):
        zjq_client.c          the connection: socket, monitor, outbox and
                              batching, fd/timeout/process, the deadline
                              heap, routing each reply to its request or
                              watch; construction and destruction
        zjq_client_request.c  requests: the table by `req`, encoding, the
                              reply to each kind, the public request calls
        zjq_client_watch.c    watches: waiters for a job's DONE, grouped by
                              job id; re-registering them; progress
                              updates; the blocking zjq_wait
      Dependencies: request and watch call the core's timers and outbox,
      and each other (a submit with on_done adds a watch; a watch sends a
      RESULT wait), all through this header.                              */

#ifndef ZJQ_CLIENT_PRIVATE_H_INCLUDED
#define ZJQ_CLIENT_PRIVATE_H_INCLUDED

#include "zjq_client.h"
#include "zjq_proto.h"

//  --------------------------------------------------------------------------
//  For the CLI

//  The broker message whose callback is running now, or NULL (outside a
//  callback, or when the callback was not caused by a reply: a timeout,
//  ZJQ_ECLOSED). Owned by the client; valid only during that callback.
zjq_msg_t *
    zjq_client_reply (zjq_client_t *self);

//  Replies dropped since the client was created: malformed messages, and
//  well-formed ones that do not fit the request they name.
uint64_t
    zjq_client_malformed (zjq_client_t *self);

//  Why the last CURVE handshake with the broker failed (static English
//  text), or NULL if none failed since the last one that succeeded.
const char *
    zjq_client_handshake_error (zjq_client_t *self);


//  --------------------------------------------------------------------------
//  Inside the library

#include "zjq_batch_codec.h"
#include "zjq_inbox.h"
#include "zjq_hashtab.h"
#include "zjq_heap.h"
#include "zjq_jobid.h"

#include <czmq.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

//  Not exported from libzjq.so
#define ZJQ_CLIENT_INTERNAL __attribute__ ((visibility ("hidden")))

#define ZJQ_CLIENT_FREE_LIST_MAX    4096    //  spare objects kept, per kind
#define ZJQ_JOB_ID_TEXT_MAX         256     //  longest id we pass on

//  A deadline in the heap. First member of zjq_request_t and zjq_watch_t, so a heap
//  item can be cast to its owner after looking at the type.
typedef enum { TIMER_REQUEST, TIMER_WATCH } zjq_client_timer_type_t;

typedef struct {
    int64_t when;               //  zjq_mono_ms () time it fires
    uint64_t order;             //  tie-break: FIFO among equal times
    size_t index;               //  heap position, ZJQ_HEAP_NONE if not in
    zjq_client_timer_type_t type;
} zjq_client_timer_t;

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
} zjq_request_kind_t;

typedef struct _request_t zjq_request_t;
struct _request_t {
    zjq_client_timer_t timer;            //  request deadline (must come first)
    uint64_t req;               //  id echoed by the broker (hash key)
    zjq_request_kind_t kind;
    zchunk_t *header;           //  encoded frames, until sent
    zchunk_t *fields;
    void *payload;              //  SUBMIT payload copy, until sent
    size_t payload_size;
    bool queued;                //  in the outbox (not sent yet)
    zjq_request_t *prev, *next;     //  outbox links
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

typedef struct _jobwatch_t zjq_jobwatch_t;
typedef struct _watch_t zjq_watch_t;

struct _watch_t {
    zjq_client_timer_t timer;            //  caller's deadline, if any (first member)
    zjq_jobwatch_t *job;            //  the job it waits for
    zjq_result_cb *callback;    //  may be NULL
    void *arg;
    zjq_watch_t *prev, *next;       //  siblings on the same job
};

//  All watches on one job id
struct _jobwatch_t {
    char *id;                   //  job id (the table key): id_buf or heap
    char id_buf [ZJQ_JOBID_MAX];
    uint64_t hash;              //  zjq_client_id_hash (id)
    zjq_watch_t *first;             //  at least one while in the hash
    size_t count;               //  watches in the chain
    uint64_t rewatch_req;       //  last RESULT wait sent for it, or 0
    bool fetch;                 //  its DONE came without the result (withheld)
    zjq_jobwatch_t *next_spare;     //  free list link
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
    zjq_hashtab_t requests;     //  req -> zjq_request_t, every live request
    zjq_request_t *outbox_head;     //  unsent requests, oldest first
    zjq_request_t *outbox_tail;
    zjq_heap_t *timers;         //  request and watch deadlines
    zjq_hashtab_t jobs;         //  job id -> zjq_jobwatch_t
    zjq_request_t *spare_requests;  //  free lists (linked by next), each at
    zjq_watch_t *spare_watches;     //  most ZJQ_CLIENT_FREE_LIST_MAX long
    zjq_jobwatch_t *spare_jobs;     //  (linked by next_spare)
    size_t spare_request_count;
    size_t spare_watch_count;
    size_t spare_job_count;
    size_t watches;             //  zjq_watch_t count
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
    //  The broker's outbound backlog of this connection (docs/protocol.md)
    uint64_t out_seen;          //  highest `out` read on this connection
    uint64_t out_acked;         //  ... sent back as `ack`
    bool ack_due;               //  the broker probed: acknowledge soon
    bool fetch_retry;           //  a withheld result's fetch was refused: again
};

#define ZJQ_CLIENT_ACK_STEP (64 * 1024)     //  read this much: acknowledge it

//  Every user callback goes through here, so the count of fired callbacks
//  and the nesting depth stay right.
#define ZJQ_CLIENT_CALLBACK(self, call) do {    \
    (self)->depth++;                            \
    (self)->fired++;                            \
    call;                                       \
    (self)->depth--;                            \
} while (0)

//  --------------------------------------------------------------------------
//  Small helpers

//  The hash of a request's `req` (the murmur3 finaliser: every bit of the
//  counter reaches the top bits, the table's home slot)
static inline uint64_t
zjq_client_req_hash (uint64_t req)
{
    req ^= req >> 33;
    req *= 0xff51afd7ed558ccdULL;
    req ^= req >> 33;
    return req;
}

//  The hash of a job id: FNV-1a, then the same final mix
static inline uint64_t
zjq_client_id_hash (const char *id)
{
    uint64_t value = 0xcbf29ce484222325ULL;
    for (const unsigned char *byte = (const unsigned char *) id; *byte; byte++)
        value = (value ^ *byte) * 0x100000001b3ULL;
    return zjq_client_req_hash (value);
}

//  The tables' rehash callbacks (zjq_hashtab_hash_fn)
static inline uint64_t
zjq_client_request_item_hash (const void *item)
{
    return zjq_client_req_hash (((const zjq_request_t *) item)->req);
}

static inline uint64_t
zjq_client_jobwatch_item_hash (const void *item)
{
    return ((const zjq_jobwatch_t *) item)->hash;
}

//  Copy a job id into buf (ZJQ_JOBID_MAX bytes) if it fits, else onto the
//  heap. Returns the copy, or NULL out of memory.
static inline char *
zjq_client_id_copy (char *buf, const char *id)
{
    size_t size = strlen (id) + 1;
    if (size <= ZJQ_JOBID_MAX) {
        memcpy (buf, id, size);
        return buf;
    }
    return strdup (id);
}

static inline void
zjq_client_id_free (char **id_p, char *buf)
{
    if (*id_p != buf)
        free (*id_p);
    *id_p = NULL;
}

//  A job id we are willing to send: the broker decides whether it is one
//  of its ids (EBADID); we only refuse what cannot be sent.
static inline bool
zjq_client_job_id_valid (const char *job_id)
{
    return job_id && *job_id && strlen (job_id) <= ZJQ_JOB_ID_TEXT_MAX;
}

static inline int
zjq_client_clamp_int (int64_t value)
{
    return value < INT_MIN? INT_MIN: value > INT_MAX? INT_MAX: (int) value;
}

//  A request a caller waits for (not the client's own keepalive or rewatch)
static inline bool
zjq_client_request_is_user (zjq_request_t *request)
{
    return request->kind != REQUEST_KEEPALIVE && request->kind != REQUEST_REWATCH;
}




//  --------------------------------------------------------------------------
//  The connection core (zjq_client.c)

//  Arm a timer in the deadline heap. Returns 0, or ZJQ_ENOMEM (not armed).
ZJQ_CLIENT_INTERNAL int
    zjq_client_timer_start (zjq_client_t *self, zjq_client_timer_t *timer,
                            zjq_client_timer_type_t type, int64_t when);

//  Disarm a timer if it is armed.
ZJQ_CLIENT_INTERNAL void
    zjq_client_timer_stop (zjq_client_t *self, zjq_client_timer_t *timer);

//  Take a request out of the outbox if it is in.
ZJQ_CLIENT_INTERNAL void
    zjq_client_outbox_unlink (zjq_client_t *self, zjq_request_t *request);

//  Sleep until the client's fd is readable or timeout_ms passes.
ZJQ_CLIENT_INTERNAL void
    zjq_client_poll (zjq_client_t *self, int timeout_ms);

//  Options that grow (zjq_client.h): a size a caller may give for an
//  options struct whose alignment is align. Returns 0 or ZJQ_EVERSION.
ZJQ_CLIENT_INTERNAL int
    zjq_client_opts_size_check (size_t size, size_t align);

//  Read a caller's options struct (its size in its first field) into
//  copy, this library's version of it (copy_size bytes, alignment align):
//  the fields the caller's size covers, defaults (zero) for the rest; opts
//  NULL gives all defaults. Returns 0, or ZJQ_EVERSION (a size this library
//  cannot read, or options set that it does not know) with copy zeroed.
ZJQ_CLIENT_INTERNAL int
    zjq_client_opts_read (void *copy, size_t copy_size, size_t align, const void *opts);


//  --------------------------------------------------------------------------
//  Requests (zjq_client_request.c)

//  Start a request message: the caller adds its fields, then queues it.
//  Returns NULL out of memory.
ZJQ_CLIENT_INTERNAL zjq_request_t *
    zjq_client_request_new (zjq_client_t *self, zjq_request_kind_t kind);

//  The message of a request: its command and `req`; NULL out of memory.
ZJQ_CLIENT_INTERNAL zjq_msg_t *
    zjq_client_request_msg (zjq_request_t *request, int command);

//  Start a request that names a job (STATUS, CANCEL, RESULT, REWATCH).
//  Returns the request and its message in *msg_p, or NULL out of memory.
ZJQ_CLIENT_INTERNAL zjq_request_t *
    zjq_client_job_request_new (zjq_client_t *self, zjq_request_kind_t kind, int command,
                                const char *job_id, bool wait, zjq_msg_t **msg_p);

//  Encode the message for a request, arm its deadline (mono ms) and put it
//  in the outbox. Takes ownership of the request and of the message in any
//  case. Returns 0, or ZJQ_ENOMEM (the request is freed, its callbacks not
//  called).
ZJQ_CLIENT_INTERNAL int
    zjq_client_request_queue (zjq_client_t *self, zjq_request_t *request,
                              zjq_msg_t **msg_p, int64_t deadline);

//  The live request with this req, or NULL.
ZJQ_CLIENT_INTERNAL zjq_request_t *
    zjq_client_request_lookup (zjq_client_t *self, uint64_t req);

//  Take a request out of every structure (the caller then frees it).
ZJQ_CLIENT_INTERNAL void
    zjq_client_request_detach (zjq_client_t *self, zjq_request_t *request);

//  Give a request back to the free list (or free it); nulls *request_p.
ZJQ_CLIENT_INTERNAL void
    zjq_client_request_free (zjq_client_t *self, zjq_request_t **request_p);

//  Fail a request's caller with a code (no reply). The request must be
//  detached already.
ZJQ_CLIENT_INTERNAL void
    zjq_client_request_fail (zjq_client_t *self, zjq_request_t *request, int code);

//  The reply to a request we hold: detach it and fire its callback.
//  Returns false if it does not fit the request (the request stays
//  pending, the reply counts as malformed); on true the caller frees it.
ZJQ_CLIENT_INTERNAL bool
    zjq_client_handle_reply (zjq_client_t *self, zjq_request_t *request, zjq_msg_t *msg);

//  Read a job outcome from JOB_RESULT or DONE into result (pointers into
//  msg). Returns true and the status for the callback (0, ZJQ_EFAILED,
//  ZJQ_ECANCELLED), or false if malformed.
ZJQ_CLIENT_INTERNAL bool
    zjq_client_reply_result (zjq_msg_t *msg, zjq_result_t *result, int *status);


//  --------------------------------------------------------------------------
//  Watches (zjq_client_watch.c)

//  Add a watch on a job, with a deadline (mono ms) or -1. Returns 0, or
//  ZJQ_ENOMEM (nothing changed).
ZJQ_CLIENT_INTERNAL int
    zjq_client_watch_add (zjq_client_t *self, const char *job_id, zjq_result_cb *callback,
                          void *arg, int64_t deadline);

//  Take one watch out of its job (its callback not called); frees the
//  job when it was the last. The caller then frees the watch.
ZJQ_CLIENT_INTERNAL void
    zjq_client_watch_unlink (zjq_client_t *self, zjq_watch_t *watch);

//  Recycle a watch (out of every structure).
ZJQ_CLIENT_INTERNAL void
    zjq_client_watch_free (zjq_client_t *self, zjq_watch_t *watch);

//  The watched job with this id, or NULL.
ZJQ_CLIENT_INTERNAL zjq_jobwatch_t *
    zjq_client_job_lookup (zjq_client_t *self, const char *job_id);

//  A job has ended (or can no longer be watched): complete every watch on
//  it. status and result as for zjq_result_cb. No-op if nobody watches it.
ZJQ_CLIENT_INTERNAL void
    zjq_client_job_complete (zjq_client_t *self, const char *job_id, int status,
                             const zjq_result_t *result);

//  Register again with the broker for DONE on one watched job, unless a
//  registration is already waiting in the outbox.
ZJQ_CLIENT_INTERNAL void
    zjq_client_rewatch (zjq_client_t *self, zjq_jobwatch_t *job);

//  The same for every watched job (after a reconnect, a broker restart or
//  a lost ping).
ZJQ_CLIENT_INTERNAL void
    zjq_client_rewatch_all (zjq_client_t *self);

//  Fetch again the withheld results (DONE `withheld`) whose RESULT the
//  broker refused with EUNAVAILABLE (its backlog for us was full).
ZJQ_CLIENT_INTERNAL void
    zjq_client_refetch (zjq_client_t *self);

//  DONE: a watched job has ended. Returns false if malformed.
ZJQ_CLIENT_INTERNAL bool
    zjq_client_handle_done (zjq_client_t *self, zjq_msg_t *msg);

//  PROGRESS_UPDATE: a job we asked about reports progress. Returns false
//  if malformed.
ZJQ_CLIENT_INTERNAL bool
    zjq_client_handle_progress (zjq_client_t *self, zjq_msg_t *msg);

#endif
