/*  zjq_worker_conn.c: the worker's connection to the broker (see
    zjq_worker_private.h, docs/protocol.md).

    One DEALER socket at a time, read through a batch inbox and written
    through a batch outbox (what one loop turn sends leaves in one BATCH;
    zjq_worker_run flushes it before it polls). On connect the worker sends
    READY with its credit (zjq_credit.h); it sends HEARTBEAT when it was
    silent for an interval and gives the broker up after 3 silent ones.
    With adaptive credit it also pings the broker (HEARTBEAT ping, answered
    by pong) once per interval, and announces a changed credit with CREDIT
    (zjq_worker_credit_tend). A
    lost connection (silence, DISCONNECT, EDENIED, a failed CURVE
    handshake) aborts the tasks it carried and reconnects after a backoff
    that doubles up to 8 s and resets once the broker answers.            */

#include "zjq_worker_private.h"
#include "zjq_log.h"
#include "zjq_util.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define s_RECV_BATCH 256        //  messages read per poll round

int
zjq_worker_send (zjq_worker_t *self, zjq_msg_t **msg_p)
{
    if (!self->socket) {
        zjq_msg_destroy (msg_p);
        return -1;
    }
    zjq_outbox_send (self->outbox, msg_p);
    self->last_send = zjq_mono_ms ();
    return 0;
}

//  The outbox could not send (no connection, or the send queue is full).
static void
s_send_failed (void *arg, const byte *routing_id, size_t size, int command, int error)
{
    (void) arg; (void) routing_id; (void) size;
    zjq_log_warning ("send_failed", "command=%s error=%s",
                     zjq_proto_command_name (command), zmq_strerror (error));
}

zjq_msg_t *
zjq_worker_result_new (const char *id, int64_t attempt, const char *status,
                       const char *error, zframe_t **result_p, int64_t duration_ms)
{
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_WORK_RESULT);
    zjq_msg_put_str (msg, "id", id);
    zjq_msg_put_int (msg, "attempt", attempt);
    zjq_msg_put_str (msg, "status", status);
    if (error)
        zjq_msg_put_str (msg, "error", error);
    zjq_msg_put_int (msg, "duration_ms", duration_ms < 0 ? 0 : duration_ms);
    if (result_p && *result_p)
        zjq_msg_set_payload (msg, result_p);
    else
        zjq_msg_set_payload_mem (msg, "", 0);
    return msg;
}

void
zjq_worker_send_result (zjq_worker_t *self, const char *id, int64_t attempt, const char *status,
                        const char *error, zframe_t **result_p, int64_t duration_ms)
{
    zjq_msg_t *msg = zjq_worker_result_new (id, attempt, status, error, result_p, duration_ms);
    zjq_worker_send (self, &msg);
}

void
zjq_worker_send_disconnect (zjq_worker_t *self, bool drain)
{
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_DISCONNECT);
    if (drain)
        zjq_msg_put_bool (msg, "drain", true);
    zjq_worker_send (self, &msg);
}

static void
s_send_ready (zjq_worker_t *self)
{
    const char *queues [ZJQ_WORKER_MAX_QUEUES];
    for (size_t i = 0; i < self->handler_count; i++)
        queues [i] = self->handlers [i].queue;
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_READY);
    zjq_msg_put_str (msg, "worker_id", self->id);
    zjq_msg_put_strlist (msg, "queues", queues, self->handler_count);
    int capacity = zjq_credit_capacity (self->credit);
    zjq_credit_announced (self->credit, capacity, zjq_mono_us ());
    zjq_msg_put_int (msg, "capacity", capacity);
    zjq_msg_put_int (msg, "heartbeat_ms", self->heartbeat_ms);
    zjq_msg_put_str (msg, "host", zjq_hostname ());
    zjq_msg_put_int (msg, "pid", (int64_t) getpid ());
    zjq_msg_put_str (msg, "version", zjq_version ());
    zjq_worker_send (self, &msg);
}


//  A HEARTBEAT with a ping (our monotonic clock, us): the broker echoes it
//  as pong on a HEARTBEAT, which measures the round trip (adaptive credit).
static void
s_send_ping (zjq_worker_t *self, int64_t now)
{
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_HEARTBEAT);
    zjq_msg_put_int (msg, "ping", zjq_mono_us ());
    zjq_worker_send (self, &msg);
    self->last_ping = now;
}

void
zjq_worker_credit_tend (zjq_worker_t *self, int64_t now)
{
    self->credit_check_at = INT64_MAX;
    if (!self->socket || !zjq_credit_adaptive (self->credit)
    ||  self->phase != ZJQ_WORKER_RUNNING)
        return;
    int64_t now_us = zjq_mono_us ();
    int64_t oldest = self->oldest_running_us;
    zjq_credit_running_age (self->credit, oldest ? now_us - oldest : 0);
    int slots = zjq_credit_slots (self->credit);
    int credit = zjq_credit_update (self->credit, now_us);
    if (credit) {
        zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_CREDIT);
        zjq_msg_put_int (msg, "capacity", credit);
        zjq_worker_send (self, &msg);
        zjq_log_debug ("credit", "capacity=%d rtt_us=%lld", credit,
                       (long long) zjq_credit_rtt_us (self->credit));
        //  No prefetch any more: what waits here would wait behind a long
        //  job; the broker gives it to a worker that is free
        size_t returned = credit == slots
                        ? zjq_worker_return_queued (self, "handed back: a job runs long") : 0;
        if (returned)
            zjq_log_info ("jobs_handed_back", "count=%zu reason=%s", returned,
                          "a job runs long: no prefetch");
    }
    //  While the worker holds jobs with a prefetch, look again when the
    //  oldest running one turns long (or one that has not started yet)
    if (zjq_credit_told (self->credit) > slots && zlistx_size (self->tasks))
        self->credit_check_at = ((oldest ? oldest : now_us) + zjq_credit_long_us (self->credit))
                              / 1000 + 1;
    (void) now;
}


//  --------------------------------------------------------------------------
//  Opening and closing

void
zjq_worker_close_socket (zjq_worker_t *self, int linger_ms)
{
    if (self->monitor) {
        zmq_socket_monitor (self->socket, NULL, 0);
        zmq_close (self->monitor);
        self->monitor = NULL;
    }
    if (self->socket) {
        if (self->outbox)
            zjq_outbox_flush (self->outbox);
        zjq_outbox_destroy (&self->outbox);
        zjq_inbox_destroy (&self->inbox);
        zmq_setsockopt (self->socket, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close (self->socket);
        self->socket = NULL;
    }
}

//  Make the new socket a CURVE client, and watch its handshakes with a
//  monitor (a refused key is otherwise only a silent broker). Returns 0 or
//  -1 (errno set).
static int
s_curve_apply (zjq_worker_t *self)
{
    if (zmq_setsockopt (self->socket, ZMQ_CURVE_SERVERKEY, self->server_key, 40)
    ||  zmq_setsockopt (self->socket, ZMQ_CURVE_PUBLICKEY, self->public_key, 40)
    ||  zmq_setsockopt (self->socket, ZMQ_CURVE_SECRETKEY, self->secret_key, 40))
        return -1;
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://zjq-worker-monitor-%u", ++self->monitors);
    int events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
               | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor (self->socket, endpoint, events) == 0) {
        self->monitor = zmq_socket (self->ctx, ZMQ_PAIR);
        if (self->monitor && zmq_connect (self->monitor, endpoint) != 0) {
            zmq_close (self->monitor);
            self->monitor = NULL;
        }
        if (!self->monitor)
            zmq_socket_monitor (self->socket, NULL, 0);
    }
    return 0;                   //  works without the monitor, only less clearly
}

//  Schedule the next connection attempt after the backoff, and double it.
static void
s_backoff (zjq_worker_t *self, int64_t now)
{
    self->connect_at = now + self->backoff_ms;
    self->backoff_ms = self->backoff_ms * 2 > ZJQ_WORKER_BACKOFF_MAX_MS
                     ? ZJQ_WORKER_BACKOFF_MAX_MS : self->backoff_ms * 2;
}

//  Open a new connection and send READY. On failure, schedules a retry.
static void
s_connect (zjq_worker_t *self, int64_t now)
{
    self->socket = zmq_socket (self->ctx, ZMQ_DEALER);
    if (self->socket) {
        self->inbox = zjq_inbox_new (self->socket, false);
        self->outbox = zjq_outbox_new (self->socket, s_send_failed, self);
        if (!self->inbox || !self->outbox) {
            zjq_log_error ("out_of_memory", "what=%s", "connection batching");
            zjq_worker_close_socket (self, 0);
        }
    }
    if (self->socket && *self->secret_key && s_curve_apply (self) != 0) {
        zjq_log_error ("curve_failed", "error=%s", zmq_strerror (errno));
        zjq_worker_close_socket (self, 0);
    }
    if (!self->socket || zmq_connect (self->socket, self->endpoint) != 0) {
        zjq_log_error ("connect_failed", "broker=%s error=%s", self->endpoint,
                       zmq_strerror (errno));
        zjq_worker_close_socket (self, 0);
        s_backoff (self, now);
        return;
    }
    zjq_log_info ("connecting", "broker=%s worker=%s", self->endpoint, self->id);
    self->greeted = false;
    self->last_recv = now;
    s_send_ready (self);
    self->last_send = now;
    if (zjq_credit_adaptive (self->credit))
        s_send_ping (self, now);
}

//  The connection is gone (broker silent or DISCONNECT). Abort what runs,
//  close the socket and reconnect after the backoff delay, or, while
//  draining, give up: the worker is leaving anyway.
static void
s_connection_lost (zjq_worker_t *self, const char *why)
{
    int64_t now = zjq_mono_ms ();
    size_t live = zjq_worker_live_tasks (self);
    zjq_worker_abort_tasks (self, "connection lost");
    zjq_worker_close_socket (self, 0);
    if (self->phase == ZJQ_WORKER_DRAINING) {
        zjq_log_warning ("connection_lost", "reason=%s abandoned=%zu draining=true", why, live);
        return;
    }
    zjq_log_warning ("connection_lost", "reason=%s abandoned=%zu reconnect_ms=%d",
                     why, live, self->backoff_ms);
    s_backoff (self, now);
}

//  A handshake failed: say why, and retry with backoff (libzmq would retry
//  at once, for ever).
void
zjq_worker_read_monitor (zjq_worker_t *self)
{
    int event;
    uint32_t value;
    if (!zjq_monitor_recv (self->monitor, &event, &value))
        return;
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        s_connection_lost (self, "the broker refused this worker's CURVE key "
                                 "(not in its allow-lists)");
    else
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        s_connection_lost (self, "CURVE handshake failed: the broker does not use CURVE");
    else
        s_connection_lost (self, "CURVE handshake failed (wrong broker key?)");
}


//  --------------------------------------------------------------------------
//  Timers

int
zjq_worker_conn_tend (zjq_worker_t *self, int64_t now)
{
    const int64_t heartbeat = self->heartbeat_ms;
    if (!self->socket && now >= self->connect_at)
        s_connect (self, now);
    if (self->socket && now - self->last_recv >= 3 * heartbeat)
        zjq_worker_recv_all (self);     //  maybe we were slow, not the broker
    if (self->socket && now - self->last_recv >= 3 * heartbeat) {
        char why [100];
        snprintf (why, sizeof why, "broker silent for %d ms", (int) (now - self->last_recv));
        s_connection_lost (self, why);
        return -1;
    }
    bool ping = zjq_credit_adaptive (self->credit) && now - self->last_ping >= heartbeat;
    if (self->socket && (now - self->last_send >= heartbeat || ping)) {
        if (ping)
            s_send_ping (self, now);
        else {
            zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_HEARTBEAT);
            zjq_worker_send (self, &msg);
        }
        self->last_send = now;          //  also when dropped: retry next interval
    }
    return 0;
}

int64_t
zjq_worker_conn_next_timer (zjq_worker_t *self, int64_t wake)
{
    const int64_t heartbeat = self->heartbeat_ms;
    if (self->socket) {
        if (self->last_send + heartbeat < wake)
            wake = self->last_send + heartbeat;
        if (self->last_recv + 3 * heartbeat < wake)
            wake = self->last_recv + 3 * heartbeat;
        if (zjq_credit_adaptive (self->credit) && self->last_ping + heartbeat < wake)
            wake = self->last_ping + heartbeat;
    }
    else
    if (self->connect_at < wake)
        wake = self->connect_at;
    return wake;
}


//  --------------------------------------------------------------------------
//  Messages from the broker

//  ERROR EDENIED or DISCONNECT: the connection is over. Returns true if msg
//  was one of those (then handled).
static bool
s_on_goodbye (zjq_worker_t *self, zjq_msg_t *msg, int command)
{
    int64_t code = 0;
    char why [300];
    if (command == ZJQ_CMD_ERROR && zjq_msg_get_int (msg, "code", &code) && code == ZJQ_EDENIED) {
        //  Our key may not do this (a role or queue it lacks): retrying at
        //  once would not help, so back off like after a lost connection
        const char *text = zjq_msg_get_str (msg, "message");
        snprintf (why, sizeof why, "broker denied access (%.200s)", text ? text : "EDENIED");
        s_connection_lost (self, why);
        return true;
    }
    if (command == ZJQ_CMD_DISCONNECT) {
        const char *reason = zjq_msg_get_str (msg, "reason");
        snprintf (why, sizeof why, "broker sent DISCONNECT (%.200s)",
                  reason ? reason : "no reason");
        s_connection_lost (self, why);
        return true;
    }
    return false;
}

static void
s_on_error (zjq_worker_t *self, zjq_msg_t *msg)
{
    const char *text = zjq_msg_get_str (msg, "message");
    int64_t code = 0;
    zjq_msg_get_int (msg, "code", &code);
    zjq_log_warning ("broker_error", "code=%s message=%s",
                     zjq_errname ((int) code) ? zjq_errname ((int) code) : "?",
                     text ? text : "");
}

//  A HEARTBEAT may echo one of our pings: a round trip measured
static void
s_on_heartbeat (zjq_worker_t *self, zjq_msg_t *msg)
{
    int64_t pong = 0;
    if (!zjq_msg_get_int (msg, "pong", &pong))
        return;
    int64_t rtt = zjq_mono_us () - pong;
    if (pong > 0 && rtt >= 0 && rtt < 60 * 1000000LL)
        zjq_credit_rtt (self->credit, rtt);
}

static void
s_on_message (zjq_worker_t *self, zjq_msg_t *msg)
{
    int command = zjq_msg_command (msg);
    if (command != ZJQ_CMD_JOB)
        zjq_worker_hand_over (self);    //  a JOB_CANCEL may be for one of them
    if (zjq_msg_role (msg) != ZJQ_ROLE_BROKER) {
        zjq_log_warning ("unexpected_message", "command=%s reason=%s",
                         zjq_proto_command_name (command), "not from a broker, ignored");
        return;
    }
    if (s_on_goodbye (self, msg, command))
        return;
    //  Anything else proves the connection works
    self->backoff_ms = ZJQ_WORKER_BACKOFF_MIN_MS;
    if (!self->greeted) {
        self->greeted = true;
        zjq_log_info ("connected", "broker=%s worker=%s", self->endpoint, self->id);
    }
    switch (command) {
        case ZJQ_CMD_HEARTBEAT:
            s_on_heartbeat (self, msg);
            break;
        case ZJQ_CMD_JOB:
            zjq_worker_on_job (self, msg);
            break;
        case ZJQ_CMD_JOB_CANCEL:
            zjq_worker_on_cancel (self, msg);
            break;
        case ZJQ_CMD_ERROR:
            s_on_error (self, msg);
            break;
        default: {
            const char *name = zjq_proto_command_name (command);
            zjq_log_warning ("unexpected_message", "command=%s reason=%s",
                             name ? name : "?", "ignored");
        }
    }
}

void
zjq_worker_recv_all (zjq_worker_t *self)
{
    for (int count = 0; count < s_RECV_BATCH && self->socket; count++) {
        zjq_msg_t *msg = NULL;
        zjq_recv_t rc = zjq_inbox_recv (self->inbox, &msg);
        if (rc == ZJQ_RECV_INTERRUPTED)
            break;
        self->last_recv = zjq_mono_ms ();
        if (rc == ZJQ_RECV_MALFORMED) {
            const char *error = zjq_msg_error (msg);
            zjq_log_warning ("malformed", "error=%s", error ? error : "?");
        }
        else
            s_on_message (self, msg);
        zjq_msg_destroy (&msg);
    }
    zjq_worker_hand_over (self);
}
