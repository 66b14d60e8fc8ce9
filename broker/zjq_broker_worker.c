/*  zjq_broker_worker.c: worker commands: READY, HEARTBEAT, WORK_RESULT,
    PROGRESS, DISCONNECT, CREDIT.

    READY creates the worker's peer (zjq_peer.h); the other commands come
    from a registered worker (the router looked it up and refreshed its
    liveness). See zjq_broker_private.h.                                    */

#include "zjq_broker_private.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>


//  --------------------------------------------------------------------------
//  READY

//  A queue name of a READY's 'queues' into text (ZJQ_QUEUE_NAME_MAX + 1
//  bytes), or NULL if it is no valid queue name.
static const char *
s_ready_queue (const msgpack_object *name, char *text)
{
    if (name->type != MSGPACK_OBJECT_STR || name->via.str.size > ZJQ_QUEUE_NAME_MAX)
        return NULL;
    memcpy (text, name->via.str.ptr, name->via.str.size);
    text [name->via.str.size] = 0;
    return zjq_proto_queue_name_valid (text)? text: NULL;
}

//  Admit a parsed READY's queues: valid names, ones the key may serve,
//  within --max-queues. Returns true, or false after replying ERROR
//  (*problem_p set when it is EPROTO "READY: <problem>", NULL when it was
//  answered already).
static bool
s_ready_admit (zjq_broker_t *self, zjq_msg_t *msg, zjq_ready_req_t *req,
               const char **problem_p)
{
    *problem_p = NULL;
    const char *key = self->auth? zjq_msg_user_id (msg): NULL;
    size_t new_queues = 0;
    for (uint32_t index = 0; index < req->queues->via.array.size; index++) {
        char text [ZJQ_QUEUE_NAME_MAX + 1];
        if (!s_ready_queue (&req->queues->via.array.ptr [index], text)) {
            *problem_p = "invalid queue name in 'queues'";
            return false;
        }
        if (key && !zjq_auth_queue_allowed (self->auth, key, ZJQ_AUTH_WORKER, text)) {
            self->counters.denied_queue++;
            zjq_broker_warn (self, "refused", "command=READY queue=%s key=%s reason=%s", text,
                             key, "not one of its queues");
            zjq_broker_send_error (self, msg, ZJQ_EDENIED,
                                   "READY: this key may not serve queue %s", text);
            return false;
        }
        if (zjq_broker_queue_over_limit (self, text, new_queues)) {
            *problem_p = "queue limit reached (max-queues)";
            return false;
        }
        if (!zhashx_lookup (self->queues, text))
            new_queues++;   //  (a name repeated in READY counts twice: harmless)
    }
    return true;
}

//  A new peer for an admitted READY, serving its queues (names into
//  names, names_size bytes, for the log). Asserts on out of memory.
static zjq_peer_t *
s_ready_peer (zjq_broker_t *self, zjq_msg_t *msg, zjq_ready_req_t *req, const char *rid_key,
              char *names, size_t names_size)
{
    zjq_peer_info_t info = {
        .worker_id = req->worker_id, .host = req->host, .version = req->version,
        .user_key = self->auth? zjq_msg_user_id (msg): NULL, .pid = (long long) req->pid,
        .capacity = req->capacity, .heartbeat_ms = req->heartbeat_ms,
        .queue_max = req->queues->via.array.size
    };
    size_t rid_size;
    const byte *rid = zjq_msg_routing_id (msg, &rid_size);
    zjq_peer_t *peer = zjq_peer_new (rid, rid_size, rid_key, &info, self->now);
    assert (peer);
    zjq_peer_set_bytes_max (peer, self->max_peer_outbound);
    size_t names_len = 0;
    *names = 0;
    for (uint32_t index = 0; index < req->queues->via.array.size; index++) {
        char text [ZJQ_QUEUE_NAME_MAX + 1];
        s_ready_queue (&req->queues->via.array.ptr [index], text);
        zjq_queue_t *queue = zjq_broker_queue_require (self, text);
        assert (queue);         //  out of memory
        if (zjq_peer_add_queue (peer, queue) != 0)
            continue;           //  a repeated name
        zjq_queue_counters (queue)->workers++;
        if (names_len < names_size)
            names_len += snprintf (names + names_len, names_size - names_len, "%s%s",
                                   names_len? ",": "", text);
    }
    return peer;
}

//  A READY: from a new connection, validate it, create the peer, give it
//  work; a second READY on a connection forgets the worker.
void
zjq_broker_handle_ready (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    if (peer) {
        zjq_broker_warn (self, "bad_ready", "worker=%s host=%s pid=%lld problem=%s",
                         zjq_peer_worker_id (peer), zjq_peer_host (peer), zjq_peer_pid (peer),
                         "READY twice; forgetting it");
        zjq_broker_send_error (self, msg, ZJQ_EPROTO,
                               "READY: duplicate READY on this connection");
        zjq_broker_peer_forget (self, peer, "worker re-registered");
        return;
    }
    char rid_key [ZJQ_RID_KEY_MAX];
    zjq_broker_sender_key (msg, rid_key);
    zjq_ready_req_t req;
    zjq_ready_parse (msg, &req);
    const char *problem = req.problem;
    if (!problem && !s_ready_admit (self, msg, &req, &problem) && !problem)
        return;
    if (problem) {
        zjq_broker_warn (self, "bad_ready", "peer=%.40s problem=%s", rid_key, problem);
        zjq_broker_send_error (self, msg, ZJQ_EPROTO, "READY: %s", problem);
        return;
    }
    char names [512];
    peer = s_ready_peer (self, msg, &req, rid_key, names, sizeof (names));
    if (zhashx_insert (self->peers, zjq_peer_key (peer), peer) != 0) {
        //  The router looked it up, so only out of memory
        zjq_log_error ("out_of_memory", "what=registering_worker worker=%s",
                       zjq_peer_worker_id (peer));
        for (size_t index = 0; index < zjq_peer_queue_count (peer); index++)
            zjq_queue_counters (zjq_peer_queue (peer, index))->workers--;
        zjq_peer_destroy (&peer);
        return;
    }
    zjq_log_info ("worker_joined", "worker=%s host=%s pid=%lld queues=%s capacity=%lld "
                  "heartbeat_ms=%lld version=%s", zjq_peer_worker_id (peer),
                  zjq_peer_host (peer), zjq_peer_pid (peer), names,
                  (long long) zjq_peer_capacity (peer), (long long) zjq_peer_heartbeat_ms (peer),
                  zjq_peer_version (peer));
    self->next_check = zjq_broker_min (self->next_check,
                                       self->now + zjq_peer_heartbeat_ms (peer));
    zjq_broker_peer_pump (self, peer);
}

//  HEARTBEAT: the router has refreshed the worker's liveness already. A
//  ping is echoed at once as pong (the worker times its round trip).
void
zjq_broker_handle_heartbeat (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    int64_t ping = 0;
    if (!zjq_msg_has (msg, "ping"))
        return;
    if (!zjq_msg_get_int (msg, "ping", &ping)) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO, "HEARTBEAT: field 'ping' must be an integer");
        return;
    }
    zjq_msg_t *pong = zjq_broker_msg_to_frame (zjq_peer_routing_id (peer), ZJQ_CMD_HEARTBEAT);
    zjq_msg_put_int (pong, "pong", ping);
    zjq_broker_send_peer (self, peer, &pong);
}

//  CREDIT: the worker's capacity changed (adaptive credit). Applied at
//  once: raised, it gets jobs now; lowered, it gets no new ones until it
//  holds fewer than its capacity (nothing it holds is taken back).
void
zjq_broker_handle_credit (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    int64_t capacity = 0;
    if (!zjq_msg_get_int (msg, "capacity", &capacity) || capacity < 1 || capacity > 10000) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO, "CREDIT: missing or invalid field "
                               "'capacity' (an integer from 1 to 10000)");
        return;
    }
    zjq_log_debug ("worker_credit", "worker=%s capacity=%lld before=%lld",
                   zjq_peer_worker_id (peer), (long long) capacity,
                   (long long) zjq_peer_capacity (peer));
    zjq_peer_set_capacity (peer, capacity);
    if (zjq_peer_can_take (peer))
        zjq_broker_peer_pump (self, peer);      //  fills it, then lists it
    else
        zjq_peer_unlist (peer);
}


//  --------------------------------------------------------------------------
//  WORK_RESULT

//  Apply a current attempt's result: success, failure, or handed back.
static void
s_apply_result (zjq_broker_t *self, zjq_peer_t *peer, zjq_msg_t *msg,
                zjq_work_result_req_t *req, zjq_jobentry_t *entry)
{
    char text [ZJQ_ERROR_MAX + 64];
    char reason [ZJQ_ERROR_MAX];
    if (req->status == ZJQ_WORK_RETURNED) {
        //  Never started (prefetched, and the worker is leaving): back in
        //  its place, and the attempt does not count
        zjq_log_info ("job_returned", "job=%s worker=%s msg=%s", req->id,
                      zjq_peer_worker_id (peer), "handed back unstarted: requeued");
        zjq_queue_counters (zjq_jobentry_queue (entry))->running--;
        zjq_jobtable_unstart (self->jobs, entry);
        zjq_broker_enqueue (self, entry);
        return;
    }
    zjq_peer_count_completed (peer);
    if (req->status == ZJQ_WORK_OK) {
        zframe_t *result = zjq_msg_take_payload (msg);
        size_t size = result? zframe_size (result): 0;
        if (size <= self->max_payload) {
            if (size == 0)
                zframe_destroy (&result);
            zjq_broker_job_end (self, entry, ZJQ_STATE_SUCCEEDED, NULL, &result);
            zframe_destroy (&result);
            return;
        }
        zframe_destroy (&result);
        snprintf (reason, sizeof (reason), "result too large (%zu bytes, limit %llu)",
                  size, (unsigned long long) self->max_payload);
    }
    else
    if (req->error_len)
        snprintf (reason, sizeof (reason), "%.*s",
                  (int) (req->error_len < ZJQ_ERROR_MAX - 1? req->error_len: ZJQ_ERROR_MAX - 1),
                  req->error);
    else
        snprintf (reason, sizeof (reason), "%s",
                  req->status == ZJQ_WORK_ERROR? "failed": "cancelled by worker");
    zjq_broker_record_attempt (self, entry, reason, (int) req->exit_code, (int) req->signal,
                               req->duration_ms);
    zjq_broker_attempt_failed (self, entry,
                               zjq_broker_attempt_error (text, sizeof (text), entry, reason));
}

void
zjq_broker_handle_work_result (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    zjq_work_result_req_t req;
    zjq_work_result_parse (msg, &req);
    if (req.problem) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO, "%s", req.problem);
        return;
    }
    //  The slot is free again, whatever happens to the result
    zjq_jobentry_t *entry = zjq_jobtable_lookup (self->jobs, req.id);
    bool current = entry && zjq_jobentry_peer (entry) == peer
                && zjq_jobentry_attempt (entry) == req.attempt;
    int slot = zjq_peer_slot_find (peer, current? zjq_jobentry_peer_slot (entry): UINT32_MAX,
                                   req.id, (int) req.attempt);
    if (slot >= 0)
        zjq_peer_slot_release (peer, slot);
    if (current && zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING)
        s_apply_result (self, peer, msg, &req, entry);
    else {
        self->counters.stale_results++;
        zjq_log_debug ("stale_result", "job=%s attempt=%lld worker=%s reason=not_current",
                       req.id, (long long) req.attempt, zjq_peer_worker_id (peer));
    }
    if (slot >= 0)
        zjq_broker_peer_pump (self, peer);
}


//  --------------------------------------------------------------------------
//  PROGRESS, DISCONNECT

void
zjq_broker_handle_progress (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    zjq_progress_req_t req;
    zjq_progress_parse (msg, &req);
    if (req.problem) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO, "%s", req.problem);
        return;
    }
    zjq_jobentry_t *entry = zjq_jobtable_lookup (self->jobs, req.id);
    if (entry && zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING
    &&  zjq_jobentry_peer (entry) == peer && zjq_jobentry_attempt (entry) == req.attempt) {
        if (zjq_jobentry_set_progress (entry, req.progress, req.message) == -1)
            zjq_log_error ("out_of_memory", "what=progress_message job=%s", req.id);
        zjq_broker_push_progress (self, entry, req.message);
    }
}

void
zjq_broker_handle_disconnect (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    bool drain = false;
    if (zjq_request_opt_bool (msg, "drain", &drain)) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO,
                               "DISCONNECT: field 'drain' must be a boolean");
        return;
    }
    if (drain) {
        if (!zjq_peer_draining (peer))
            zjq_log_info ("worker_draining", "worker=%s host=%s pid=%lld running=%zu",
                          zjq_peer_worker_id (peer), zjq_peer_host (peer), zjq_peer_pid (peer),
                          zjq_peer_outstanding (peer));
        zjq_peer_set_draining (peer);
        zjq_peer_unlist (peer);
    }
    else {
        zjq_log_info ("worker_left", "worker=%s host=%s pid=%lld running=%zu",
                      zjq_peer_worker_id (peer), zjq_peer_host (peer), zjq_peer_pid (peer),
                      zjq_peer_outstanding (peer));
        zjq_broker_peer_forget (self, peer, "worker left");
    }
}
