/*  zjq_broker_client.c: client commands: SUBMIT, STATUS, RESULT, CANCEL.

    Each handler parses its message once (zjq_request.h), then admits the
    request (the broker's state, limits, the key's rights), then accepts
    it: each a step of its own. See zjq_broker_private.h.                  */

#include "zjq_broker_private.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>


//  --------------------------------------------------------------------------
//  SUBMIT

//  Check a parsed SUBMIT against what the broker allows before it looks at
//  the job table: the fields, the drain, the key's queues, the payload
//  size. Returns true, or false after replying REJECTED.
static bool
s_submit_valid (zjq_broker_t *self, zjq_msg_t *msg, zjq_submit_req_t *req, size_t size)
{
    if (!req->has_req) {
        zjq_broker_send_rejected (self, msg, ZJQ_EINVAL,
                                  "missing or invalid field 'req' (an integer)");
        return false;
    }
    if (self->draining) {
        zjq_broker_send_rejected (self, msg, ZJQ_EDRAINING, "not accepting new jobs until the "
                                  "drain ends (zjq drain --off) or the broker restarts");
        return false;
    }
    if (req->queue_problem) {
        zjq_broker_send_rejected (self, msg, ZJQ_EINVAL, "%s", req->queue_problem);
        return false;
    }
    const char *owner = self->auth? zjq_msg_user_id (msg): NULL;
    if (owner && !zjq_auth_queue_allowed (self->auth, owner, ZJQ_AUTH_CLIENT, req->queue)) {
        self->counters.denied_queue++;
        zjq_broker_warn (self, "refused", "command=SUBMIT queue=%s key=%s reason=%s",
                         req->queue, owner, "not one of its queues");
        zjq_broker_send_rejected (self, msg, ZJQ_EDENIED, "this key may not submit to queue %s",
                                  req->queue);
        return false;
    }
    if (req->problem) {
        zjq_broker_send_rejected (self, msg, ZJQ_EINVAL, "%s", req->problem);
        return false;
    }
    if (size > self->max_payload) {
        zjq_broker_send_rejected (self, msg, ZJQ_ETOOBIG,
                                  "payload of %zu bytes is over the limit of %llu bytes",
                                  size, (unsigned long long) self->max_payload);
        return false;
    }
    return true;
}

//  Reply ACCEPTED (a promise) for a job, and register the sender for DONE
//  and progress as it asked.
static void
s_submit_accepted (zjq_broker_t *self, zjq_msg_t *msg, zjq_submit_req_t *req,
                   zjq_jobentry_t *entry, bool duplicate)
{
    if (!duplicate) {
        //  The order of the original: waiters first, then the reply
        if (req->notify)
            zjq_broker_add_waiter (self, entry, msg);
        if (req->progress)
            zjq_broker_watch_progress (self, entry, msg);
    }
    zjq_msg_t *reply = zjq_broker_reply_new (msg, ZJQ_CMD_ACCEPTED);
    zjq_msg_put_str (reply, "id", zjq_jobentry_id (entry).text);
    zjq_msg_put_bool (reply, "duplicate", duplicate);
    zjq_broker_send_promise (self, &reply);
    if (duplicate) {
        if (req->notify)
            zjq_broker_add_waiter (self, entry, msg);
        if (req->progress)
            zjq_broker_watch_progress (self, entry, msg);
    }
}

//  An idempotency key already in use: true after answering for the job
//  that holds it (ACCEPTED duplicate, or REJECTED if another key owns it).
static bool
s_submit_duplicate (zjq_broker_t *self, zjq_msg_t *msg, zjq_submit_req_t *req)
{
    if (!req->key)
        return false;
    zjq_jobentry_t *existing = zjq_jobtable_lookup_key (self->jobs, req->queue, req->key);
    if (!existing)
        return false;
    const char *owner = self->auth? zjq_msg_user_id (msg): NULL;
    if (owner && !streq (zjq_jobentry_owner (existing), owner))
        zjq_broker_send_rejected (self, msg, ZJQ_EDENIED,
                                  "idempotency key is in use by another client key");
    else
        s_submit_accepted (self, msg, req, existing, true);
    return true;
}

//  Who the sender is for its share (zjq_quota.h): its CURVE key, or in
//  plaintext its connection, the routing id in hex (into buf,
//  ZJQ_RID_KEY_MAX bytes). NULL if the broker keeps no shares.
static const char *
s_submitter (zjq_broker_t *self, zjq_msg_t *msg, char *buf)
{
    if (!zjq_quota_enabled (self->quota))
        return NULL;
    return self->auth? zjq_msg_user_id (msg): zjq_broker_sender_key (msg, buf);
}

//  The sender's share: true, or false after REJECTED EQUOTA (logged,
//  rate-limited).
static bool
s_submit_share (zjq_broker_t *self, zjq_msg_t *msg, const char *submitter, size_t size)
{
    if (!submitter)
        return true;
    uint64_t jobs, bytes;
    zjq_jobtable_usage (self->jobs, submitter, !self->auth, &jobs, &bytes);
    char why [256];
    if (zjq_quota_admit (self->quota, jobs, bytes, size, why, sizeof (why)) == 0)
        return true;
    zjq_broker_warn (self, "quota_exceeded", "client=%.40s jobs=%llu bytes=%llu",
                     submitter, (unsigned long long) jobs, (unsigned long long) bytes);
    zjq_broker_send_rejected (self, msg, ZJQ_EQUOTA, "%s", why);
    return false;
}

//  Room for one more job of size payload bytes: the journal, the sender's
//  share, the job and byte limits, the queue limit. Returns true, or false
//  after REJECTED.
static bool
s_submit_room (zjq_broker_t *self, zjq_msg_t *msg, const char *queue_name, size_t size,
               const char *submitter)
{
    const char *reason = NULL;
    if (!zjq_store_healthy (self->store, &reason)) {
        zjq_broker_send_rejected (self, msg, ZJQ_EUNAVAILABLE, "journal unavailable: %s",
                                  reason);
        return false;
    }
    if (!s_submit_share (self, msg, submitter, size))
        return false;
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (self->jobs);
    if (stats->queued + stats->running >= self->max_jobs) {
        zjq_broker_send_rejected (self, msg, ZJQ_EQUEUEFULL, "job limit reached (max-jobs %llu)",
                                  (unsigned long long) self->max_jobs);
        return false;
    }
    if (stats->queued_bytes + size > self->max_queued_bytes) {
        zjq_broker_send_rejected (self, msg, ZJQ_EQUEUEFULL,
                                  "payload bytes limit reached (max-queued-bytes %llu)",
                                  (unsigned long long) self->max_queued_bytes);
        return false;
    }
    if (zjq_broker_queue_over_limit (self, queue_name, 0)) {
        zjq_broker_send_rejected (self, msg, ZJQ_EQUEUEFULL,
                                  "queue limit reached (max-queues %llu)",
                                  (unsigned long long) self->max_queues);
        return false;
    }
    return true;
}

//  Insert the job into the table (the payload is taken from the message).
//  Returns the entry, or NULL after REJECTED (out of memory).
static zjq_jobentry_t *
s_submit_insert (zjq_broker_t *self, zjq_msg_t *msg, zjq_submit_req_t *req, bool has_payload)
{
    zjq_queue_t *queue = zjq_broker_queue_require (self, req->queue);
    zjq_job_t spec = {
        .queue = queue? zjq_queue_name (queue): NULL,
        .key = (char *) req->key,
        .priority = (int) req->priority,
        .max_attempts = (int) req->max_attempts,
        .job_timeout_ms = zjq_broker_min (req->job_timeout_ms, ZJQ_DURATION_MAX_MS),
        .result_ttl_ms = zjq_broker_min (req->result_ttl_ms, ZJQ_DURATION_MAX_MS)
    };
    //  The owner is part of the record, so the journal keeps it
    const char *owner = self->auth? zjq_msg_user_id (msg): NULL;
    if (owner)
        snprintf (spec.owner, sizeof (spec.owner), "%s", owner);
    zframe_t *payload = has_payload? zjq_msg_take_payload (msg): zframe_new_empty ();
    zjq_jobentry_t *entry = NULL;
    if (queue && payload)
        entry = zjq_jobtable_insert (self->jobs, &spec, queue, &payload);
    if (!entry) {
        zframe_destroy (&payload);
        zjq_log_error ("out_of_memory", "what=accepting_job queue=%s", req->queue);
        zjq_broker_send_rejected (self, msg, ZJQ_EUNAVAILABLE, "broker out of memory");
        return NULL;
    }
    zjq_stats_submitted (&zjq_queue_counters (queue)->stats, self->now);
    zjq_stats_ring_add (&self->counters.submits, self->now, 1);
    return entry;
}

//  SUBMIT: parse, admit (fields, rights, duplicates, limits), accept
void
zjq_broker_handle_submit (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    zjq_submit_req_t req;
    req.priority = 0;
    req.max_attempts = self->max_attempts;
    req.job_timeout_ms = self->job_timeout_ms;
    req.result_ttl_ms = self->result_ttl_ms;
    zjq_submit_parse (msg, &req);
    zframe_t *input = zjq_msg_payload (msg);        //  the codec ensures one
    size_t size = input? zframe_size (input): 0;
    char rid_key [ZJQ_RID_KEY_MAX];
    const char *submitter = s_submitter (self, msg, rid_key);
    if (!s_submit_valid (self, msg, &req, size)
    ||  s_submit_duplicate (self, msg, &req)
    ||  !s_submit_room (self, msg, req.queue, size, submitter))
        return;
    zjq_jobentry_t *entry = s_submit_insert (self, msg, &req, input != NULL);
    if (!entry)
        return;
    //  In plaintext the connection's share counts it (a key's counts by owner)
    if (submitter && !self->auth && zjq_jobtable_set_connection (self->jobs, entry, submitter))
        zjq_log_error ("out_of_memory", "what=counting_share job=%s",
                       zjq_jobentry_id (entry).text);
    s_submit_accepted (self, msg, &req, entry, false);
    zjq_log_debug ("job_accepted", "job=%s queue=%s bytes=%zu priority=%d",
                   zjq_jobentry_id (entry).text, req.queue, size,
                   zjq_jobentry_priority (entry));
    zjq_broker_enqueue (self, entry);
}


//  --------------------------------------------------------------------------
//  STATUS, RESULT, CANCEL

//  Common start of STATUS, RESULT and CANCEL: the job named by 'id', or
//  NULL after replying ERROR.
static zjq_jobentry_t *
s_request_job (zjq_broker_t *self, zjq_msg_t *msg, zjq_job_req_t *req)
{
    if (!req->has_req) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO,
                               "missing or invalid field 'req' (an integer)");
        return NULL;
    }
    if (!req->id) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO,
                               "missing or invalid field 'id' (a string)");
        return NULL;
    }
    zjq_jobentry_t *entry;
    const char *message;
    int code = zjq_jobtable_find (self->jobs, req->id, &entry, &message);
    if (code) {
        zjq_broker_send_error (self, msg, code, "%s", message);
        return NULL;
    }
    //  With CURVE, a client key sees and cancels its own jobs; admins all
    const char *key = self->auth? zjq_msg_user_id (msg): NULL;
    const char *owner = zjq_jobentry_owner (entry);
    if (key && *owner && !streq (owner, key)
    &&  !(zjq_auth_roles (self->auth, key) & ZJQ_AUTH_ADMIN)) {
        self->counters.refused_role++;
        zjq_broker_warn (self, "refused", "command=%s job=%s key=%s reason=%s",
                         zjq_proto_command_name (zjq_msg_command (msg)), req->id, key,
                         "submitted by another key");
        zjq_broker_send_error (self, msg, ZJQ_EDENIED, "job %s was submitted by another key "
                               "(admin keys may act on any job)", req->id);
        return NULL;
    }
    return entry;
}

void
zjq_broker_handle_status (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    zjq_job_req_t req;
    zjq_job_req_parse (msg, &req);
    zjq_jobentry_t *entry = s_request_job (self, msg, &req);
    if (entry)
        zjq_broker_send_status (self, msg, entry);
}

void
zjq_broker_handle_result (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    zjq_job_req_t req;
    zjq_job_req_parse (msg, &req);
    if (req.flags_bad) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO,
                               "fields 'wait' and 'progress' must be booleans");
        return;
    }
    zjq_jobentry_t *entry = s_request_job (self, msg, &req);
    if (!entry)
        return;
    if (zjq_jobentry_ended (entry)) {
        zjq_msg_t *reply = zjq_broker_reply_new (msg, ZJQ_CMD_JOB_RESULT);
        zjq_broker_put_outcome (reply, entry);
        if (zjq_broker_reply_fits (self, msg, &reply, true))
            zjq_broker_send_promise (self, &reply);
    }
    else {
        zjq_broker_send_status (self, msg, entry);
        if (req.wait)
            zjq_broker_add_waiter (self, entry, msg);
        if (req.progress)
            zjq_broker_watch_progress (self, entry, msg);
    }
}

void
zjq_broker_handle_cancel (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    zjq_job_req_t req;
    zjq_job_req_parse (msg, &req);
    zjq_jobentry_t *entry = s_request_job (self, msg, &req);
    if (!entry)
        return;
    if (zjq_jobentry_ended (entry)) {
        zjq_broker_send_error (self, msg, ZJQ_ESTATE, "job has already ended (%s)",
                               zjq_state_name (zjq_jobentry_state (entry)));
        return;
    }
    if (zjq_jobentry_peer (entry))
        zjq_broker_send_job_cancel (self, zjq_jobentry_peer (entry), entry, "cancelled");
    //  A cancelled job holds no result, so the entry survives the end
    zjq_broker_job_end (self, entry, ZJQ_STATE_CANCELLED, "cancelled by client", NULL);
    zjq_msg_t *reply = zjq_broker_reply_new (msg, ZJQ_CMD_JOB_STATUS);
    zjq_broker_put_status (reply, entry);
    zjq_broker_send_promise (self, &reply);
}
