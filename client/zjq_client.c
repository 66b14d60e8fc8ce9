/*  zjq_client.c: the zjq asynchronous client library: the connection core.
    See zjq_client.h for the API, zjq_client_private.h for how the library
    is split (this file, zjq_client_request.c, zjq_client_watch.c).

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
      req, watched job by id) are open-addressing tables (common/
      zjq_hashtab) that allocate nothing per entry.                        */

#include "zjq_client_private.h"
#include "zjq_cert.h"
#include "zjq_util.h"

#include <zmq.h>

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define ZJQ_CLIENT_REQUEST_TIMEOUT  5000    //  default, ms
#define ZJQ_CLIENT_PING_INTERVAL    1000    //  while watches exist, ms
#define ZJQ_CLIENT_RECONNECT_IVL    100     //  ms
#define ZJQ_CLIENT_RECONNECT_MAX    2000    //  ms
#define ZJQ_CLIENT_ROUTING_ID_SIZE  16
#define ZJQ_CLIENT_MONITOR          "inproc://zjq-client-monitor"   //  own context
#define s_RECV_BURST                256     //  replies read per ZMQ_EVENTS


//  --------------------------------------------------------------------------
//  Timers and small helpers

static bool
s_timer_before (const void *a, const void *b)
{
    const zjq_client_timer_t *x = (const zjq_client_timer_t *) a;
    const zjq_client_timer_t *y = (const zjq_client_timer_t *) b;
    return x->when < y->when || (x->when == y->when && x->order < y->order);
}

static void
s_timer_set_index (void *item, size_t index)
{
    ((zjq_client_timer_t *) item)->index = index;
}

//  Arm a timer. Returns 0, or ZJQ_ENOMEM (timer not armed).
int
zjq_client_timer_start (zjq_client_t *self, zjq_client_timer_t *timer,
                        zjq_client_timer_type_t type, int64_t when)
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

void
zjq_client_timer_stop (zjq_client_t *self, zjq_client_timer_t *timer)
{
    if (timer->index != ZJQ_HEAP_NONE)
        zjq_heap_remove (self->timers, timer->index);
    timer->index = ZJQ_HEAP_NONE;
}

static void
s_free_hint (void *data, void *hint)
{
    free (data);
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
//  The outbox: sending requests, several in one BATCH

void
zjq_client_outbox_unlink (zjq_client_t *self, zjq_request_t *request)
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

//  A request's payload, if it carries one
static size_t
s_request_payload_size (zjq_request_t *request)
{
    return request->kind == REQUEST_SUBMIT? request->payload_size: 0;
}

//  The request has been handed to libzmq: it now waits for its reply only
static void
s_request_sent (zjq_client_t *self, zjq_request_t *request)
{
    zjq_client_outbox_unlink (self, request);
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
    zjq_request_t *request = self->outbox_head;
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
    zjq_request_t *request = self->outbox_head;
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
//  Routing replies

static void
s_dispatch (zjq_client_t *self, zjq_msg_t *msg)
{
    zjq_msg_t *outer = self->reply;
    self->reply = msg;
    bool ok = false;
    if (zjq_msg_role (msg) == ZJQ_ROLE_BROKER) {
        int64_t out;
        if (zjq_msg_get_int (msg, "out", &out) && out > 0 && (uint64_t) out > self->out_seen)
            self->out_seen = (uint64_t) out;
        if (zjq_msg_command (msg) == ZJQ_CMD_PONG && !zjq_msg_has (msg, "req"))
            ok = self->ack_due = true;      //  the broker's probe: acknowledge
        else
        if (zjq_msg_command (msg) == ZJQ_CMD_DONE)
            ok = zjq_client_handle_done (self, msg);
        else
        if (zjq_msg_command (msg) == ZJQ_CMD_PROGRESS_UPDATE)
            ok = zjq_client_handle_progress (self, msg);
        else {
            int64_t req;
            if (zjq_msg_get_int (msg, "req", &req) && req > 0) {
                zjq_request_t *request = zjq_client_request_lookup (self, (uint64_t) req);
                if (!request || request->queued)
                    ok = true;      //  a late reply to a request that timed out
                else
                if (zjq_client_handle_reply (self, request, msg)) {
                    zjq_client_request_free (self, &request);
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
    zjq_client_timer_t *timer;
    while ((timer = (zjq_client_timer_t *) zjq_heap_top (self->timers)) && timer->when <= now) {
        expired++;
        if (timer->type == TIMER_REQUEST) {
            zjq_request_t *request = (zjq_request_t *) timer;
            zjq_client_request_detach (self, request);
            if (request->kind == REQUEST_KEEPALIVE)
                self->ping_lost = true;
            zjq_client_request_fail (self, request, request->expires_as_timeout?
                                     ZJQ_ETIMEDOUT: ZJQ_EUNREACHABLE);
            zjq_client_request_free (self, &request);
        }
        else {
            zjq_watch_t *watch = (zjq_watch_t *) timer;
            zjq_client_watch_unlink (self, watch);
            if (watch->callback)
                ZJQ_CLIENT_CALLBACK (self, watch->callback (self, ZJQ_ETIMEDOUT, NULL, watch->arg));
            zjq_client_watch_free (self, watch);
        }
    }
    return expired;
}

//  Ping the broker every interval while watches exist, one ping at a time.
static void
s_keepalive (zjq_client_t *self)
{
    //  Acknowledge what was read (on a ping, if no request carries it)
    //  when the broker probes and past ZJQ_CLIENT_ACK_STEP. A refused fetch
    //  goes again after the next PONG: one that follows reading that much,
    //  or the keepalive's (not at once: the broker's total may be held by
    //  other clients, and retrying would spin)
    bool ack_due = self->out_seen > self->out_acked
                && (self->ack_due || self->out_seen - self->out_acked >= ZJQ_CLIENT_ACK_STEP);
    if ((!self->watches && !ack_due) || self->keepalive_req)
        return;
    int64_t now = zjq_mono_ms ();
    if (now < self->next_ping && !ack_due)
        return;
    self->next_ping = now + ZJQ_CLIENT_PING_INTERVAL;
    zjq_request_t *request = zjq_client_request_new (self, REQUEST_KEEPALIVE);
    zjq_msg_t *msg = request? zjq_client_request_msg (request, ZJQ_CMD_PING): NULL;
    if (!msg) {
        zjq_client_request_free (self, &request);
        return;
    }
    uint64_t req = request->req;
    if (zjq_client_request_queue (self, request, &msg, now + self->request_timeout) == 0)
        self->keepalive_req = req;
}

//  Fail every user request that is still waiting to be sent.
static void
s_fail_outbox (zjq_client_t *self, int code)
{
    //  Only those queued now: callbacks may queue new ones
    zjq_request_t *request = self->outbox_head;
    zjq_request_t *last = self->outbox_tail;
    while (request) {
        zjq_request_t *next = request == last? NULL: request->next;
        if (zjq_client_request_is_user (request)) {
            zjq_client_request_detach (self, request);
            zjq_client_request_fail (self, request, code);
            zjq_client_request_free (self, &request);
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
        if (event == ZMQ_EVENT_CONNECTED && ++self->connects > 1) {
            //  A new connection: the broker counts its bytes from 0
            self->out_seen = self->out_acked = 0;
            zjq_client_rewatch_all (self);
        }
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
    //  Stop the monitor before closing its reading end: libzmq's I/O thread
    //  sends events with a blocking send, holding the lock that stopping
    //  the monitor takes, and a PAIR with no peer blocks (a client
    //  destroyed while its handshake events were on their way hung here)
    if (self->dealer)
        zmq_socket_monitor (self->dealer, NULL, 0);
    if (self->monitor)
        zmq_close (self->monitor);
    zjq_inbox_destroy (&self->inbox);
    zjq_batch_destroy (&self->batch);
    if (self->dealer)
        zmq_close (self->dealer);
    if (self->context)
        zmq_ctx_term (self->context);
    zjq_hashtab_fini (&self->requests);
    zjq_hashtab_fini (&self->jobs);
    while (self->spare_requests) {
        zjq_request_t *next = self->spare_requests->next;
        free (self->spare_requests);
        self->spare_requests = next;
    }
    while (self->spare_watches) {
        zjq_watch_t *next = self->spare_watches->next;
        free (self->spare_watches);
        self->spare_watches = next;
    }
    while (self->spare_jobs) {
        zjq_jobwatch_t *next = self->spare_jobs->next_spare;
        free (self->spare_jobs);
        self->spare_jobs = next;
    }
    zjq_heap_destroy (&self->timers);
    free (self->endpoint);
    free (self->instance);
    free (self);
}

int
zjq_client_opts_size_check (size_t size, size_t align)
{
    return size < sizeof (size_t) || size % align? ZJQ_EVERSION: 0;
}

int
zjq_client_opts_read (void *copy, size_t copy_size, size_t align, const void *opts)
{
    memset (copy, 0, copy_size);
    size_t size = copy_size;
    if (opts) {
        memcpy (&size, opts, sizeof (size));
        if (zjq_client_opts_size_check (size, align) != 0)
            return ZJQ_EVERSION;
        //  From a newer header: what this library does not know must be
        //  left at its default
        const unsigned char *byte = (const unsigned char *) opts;
        for (size_t index = copy_size; index < size; index++)
            if (byte [index])
                return ZJQ_EVERSION;
        memcpy (copy, opts, size < copy_size? size: copy_size);
    }
    memcpy (copy, &copy_size, sizeof (copy_size));
    return 0;
}

int
zjq_client_opts_init_sized (zjq_client_opts_t *opts, size_t size)
{
    if (!opts)
        return ZJQ_EINVAL;
    if (zjq_client_opts_size_check (size, _Alignof (zjq_client_opts_t)) != 0)
        return ZJQ_EVERSION;
    memset (opts, 0, size);
    opts->size = size;
    return 0;
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

//  The dealer's options: a random routing id, sends only while connected,
//  no linger, quick reconnects. Returns 0 or -1.
static int
s_dealer_setup (zjq_client_t *self)
{
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
        return -1;
    return 0;
}

//  The monitor only tells us about reconnects and failed handshakes; a
//  client works without it (the keepalive pings still catch lost
//  registrations), so failing to start it is no error.
static void
s_monitor_start (zjq_client_t *self)
{
    int zero = 0;
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED
               | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
               | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor (self->dealer, ZJQ_CLIENT_MONITOR, events) != 0)
        return;
    self->monitor = zmq_socket (self->context, ZMQ_PAIR);
    if (self->monitor) {
        zmq_setsockopt (self->monitor, ZMQ_LINGER, &zero, sizeof (zero));
        if (zmq_connect (self->monitor, ZJQ_CLIENT_MONITOR) != 0) {
            zmq_close (self->monitor);
            self->monitor = NULL;
        }
    }
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
    zjq_client_opts_t options;
    if (zjq_client_opts_read (&options, sizeof (options), _Alignof (zjq_client_opts_t), opts))
        return s_error (error, error_size, ZJQ_EVERSION,
                        "client options of a size this library cannot read (%zu bytes; "
                        "initialise them with zjq_client_opts_init)", opts->size);
    opts = &options;
    bool curve = opts->curve_secret_file || opts->broker_key_file;
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
    //  64 slots, at most half full, never shrinking
    if (!self->endpoint
    ||  zjq_hashtab_init (&self->requests, zjq_client_request_item_hash, 6, 4, 0) != 0
    ||  zjq_hashtab_init (&self->jobs, zjq_client_jobwatch_item_hash, 6, 4, 0) != 0
    ||  !self->timers)
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
    if (s_dealer_setup (self) != 0)
        goto err;
    s_monitor_start (self);
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
    zjq_request_t *request;
    while ((request = (zjq_request_t *) zjq_hashtab_any (&self->requests))) {
        zjq_client_request_detach (self, request);
        zjq_client_request_fail (self, request, ZJQ_ECLOSED);
        zjq_client_request_free (self, &request);
    }
    zjq_jobwatch_t *job;
    while ((job = (zjq_jobwatch_t *) zjq_hashtab_any (&self->jobs)))
        //  job->id is only used for the lookup, before the job is freed
        zjq_client_job_complete (self, job->id, ZJQ_ECLOSED, NULL);
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
    zjq_client_timer_t *top = (zjq_client_timer_t *) zjq_heap_top (self->timers);
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
void
zjq_client_poll (zjq_client_t *self, int timeout_ms)
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
        zjq_client_poll (self, wait);
    }
}


//  --------------------------------------------------------------------------
//  Error messages and the private API for the CLI (zjq_client_private.h)

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
