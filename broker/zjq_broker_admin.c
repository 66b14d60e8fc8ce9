/*  zjq_broker_admin.c: admin commands: STATS, PING, RELOAD, and the
    operations PAUSE, RESUME, DRAIN, DEAD_LETTERS, RETRY.

    The command table (zjq_broker.c) has checked the role and the req field
    of each before it gets here. A paused queue keeps its jobs and
    dispatches none (journaled); draining rejects new submits and finishes
    the rest; failed jobs (dead letters) keep their payload and history and
    can be listed and retried. See zjq_broker_private.h.                   */

#include "zjq_broker_private.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>

void
zjq_broker_handle_stats (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    bool histograms = false;
    if (zjq_request_opt_bool (msg, "histograms", &histograms)) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO, "field 'histograms' must be a boolean");
        return;
    }
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    zjq_broker_stats_pack (self, &packer, histograms);
    zjq_msg_t *reply = zjq_broker_reply_new (msg, ZJQ_CMD_STATS_REPLY);
    zjq_msg_put_packed (reply, "stats", buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
    if (zjq_broker_reply_fits (self, msg, &reply, false))
        zjq_broker_send (self, &reply);
}

void
zjq_broker_handle_ping (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    zjq_msg_t *reply = zjq_broker_reply_new (msg, ZJQ_CMD_PONG);
    zjq_msg_put_str (reply, "instance", self->instance);
    zjq_msg_put_str (reply, "version", zjq_version ());
    zjq_broker_send (self, &reply);
}

void
zjq_broker_handle_reload (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    if (!self->auth) {
        zjq_broker_send_error (self, msg, ZJQ_EINVAL,
                               "the broker does not use CURVE: nothing to reload");
        return;
    }
    char error [512] = "";
    zjq_broker_reload (self, "RELOAD", error, sizeof (error));
    if (*error) {
        zjq_broker_send_error (self, msg, ZJQ_EINVAL, "reload failed, the old lists stay: %s",
                               error);
        return;
    }
    zjq_msg_t *reply = zjq_broker_reply_new (msg, ZJQ_CMD_RELOADED);
    zjq_msg_put_int (reply, "clients", (int64_t) zjq_auth_count (self->auth, ZJQ_AUTH_CLIENT));
    zjq_msg_put_int (reply, "workers", (int64_t) zjq_auth_count (self->auth, ZJQ_AUTH_WORKER));
    zjq_msg_put_int (reply, "admins", (int64_t) zjq_auth_count (self->auth, ZJQ_AUTH_ADMIN));
    zjq_broker_send (self, &reply);
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
void
zjq_broker_check_drain (zjq_broker_t *self)
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
    const char *name = zjq_msg_get_str (msg, "queue");
    if (!name) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO,
                               "missing or invalid field 'queue' (a string)");
        return NULL;
    }
    if (!zjq_proto_queue_name_valid (name)) {
        zjq_broker_send_error (self, msg, ZJQ_EINVAL,
                               "invalid queue name: use 1-128 characters of A-Z a-z 0-9 _ . : -");
        return NULL;
    }
    return name;
}

//  PAUSE and RESUME: set the flag (journaled), reply QUEUE_STATE once the
//  journal holds it
static void
s_set_paused (zjq_broker_t *self, zjq_msg_t *msg, bool paused)
{
    const char *name = s_request_queue (self, msg);
    if (!name)
        return;
    zjq_queue_t *queue = (zjq_queue_t *) zhashx_lookup (self->queues, name);
    if (!queue && paused) {
        //  A queue may be paused before its first job
        if (zjq_broker_queue_over_limit (self, name, 0)) {
            zjq_broker_send_error (self, msg, ZJQ_EQUEUEFULL,
                                   "queue limit reached (max-queues %llu)",
                                   (unsigned long long) self->max_queues);
            return;
        }
        queue = zjq_broker_queue_require (self, name);
        if (!queue) {
            zjq_broker_send_error (self, msg, ZJQ_ENOMEM, "broker out of memory");
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
            zjq_broker_make_eligible (self, queue, NULL);
    }
    zjq_msg_t *reply = zjq_broker_reply_new (msg, ZJQ_CMD_QUEUE_STATE);
    zjq_msg_put_str (reply, "queue", name);
    zjq_msg_put_bool (reply, "paused", queue && zjq_queue_paused (queue));
    zjq_msg_put_int (reply, "queued", queue? (int64_t) zjq_queue_size (queue): 0);
    zjq_msg_put_int (reply, "running",
                     queue? (int64_t) zjq_queue_counters (queue)->running: 0);
    zjq_msg_put_int (reply, "workers",
                     queue? (int64_t) zjq_queue_counters (queue)->workers: 0);
    zjq_broker_send_promise (self, &reply);
}

void
zjq_broker_handle_pause (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    s_set_paused (self, msg, true);
}

void
zjq_broker_handle_resume (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    s_set_paused (self, msg, false);
}

void
zjq_broker_handle_drain (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    bool off = false;
    if (zjq_request_opt_bool (msg, "off", &off)) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO, "field 'off' must be a boolean");
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
    zjq_msg_t *reply = zjq_broker_reply_new (msg, ZJQ_CMD_DRAIN_STATE);
    zjq_msg_put_bool (reply, "draining", self->draining);
    zjq_msg_put_bool (reply, "drained", self->draining && drained);
    zjq_msg_put_int (reply, "queued", (int64_t) stats->queued);
    zjq_msg_put_int (reply, "running", (int64_t) stats->running);
    zjq_msg_put_int (reply, "paused_queued", (int64_t) paused_queued);
    zjq_broker_send (self, &reply);
    zjq_broker_check_drain (self);
}

//  DEAD_LETTERS: a page of failed jobs, oldest failure first, optionally of
//  one queue, after a cursor (after: the last id of the previous page,
//  after_ms: its failed_ms, for when that job has gone meanwhile)
void
zjq_broker_handle_dead_letters (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    const char *queue = NULL, *after = NULL;
    int64_t after_ms = INT64_MIN, limit = 1000;
    if (zjq_request_opt_str (msg, "queue", ZJQ_QUEUE_NAME_MAX, &queue)
    ||  zjq_request_opt_str (msg, "after", ZJQ_JOBID_MAX, &after)
    ||  zjq_request_opt_int (msg, "after_ms", INT64_MIN, INT64_MAX, &after_ms)
    ||  zjq_request_opt_int (msg, "limit", 1, ZJQ_DEAD_PAGE_MAX, &limit)) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO,
                               "DEAD_LETTERS: 'queue' and 'after' are strings, "
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
        zjq_broker_pack_dead_letter (&packer, entry);
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
    zjq_msg_t *reply = zjq_broker_reply_new (msg, ZJQ_CMD_DEAD_LETTER_LIST);
    zjq_msg_put_int (reply, "total", (int64_t) dead->count);
    zjq_msg_put_int (reply, "bytes", (int64_t) dead->bytes);
    zjq_msg_put_packed (reply, "jobs", jobs.data, jobs.size);
    if (entry && last) {
        zjq_msg_put_str (reply, "next", zjq_jobentry_id (last).text);
        zjq_msg_put_int (reply, "next_ms", zjq_jobentry_finished_ms (last));
    }
    msgpack_sbuffer_destroy (&jobs);
    if (zjq_broker_reply_fits (self, msg, &reply, false))
        zjq_broker_send (self, &reply);
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
    zjq_broker_enqueue (self, entry);
    return 0;
}

//  RETRY: one dead letter by id, or every dead letter of a queue
void
zjq_broker_handle_retry (zjq_broker_t *self, zjq_msg_t *msg, zjq_peer_t *peer)
{
    (void) peer;
    const char *id = NULL, *queue = NULL;
    if (zjq_request_opt_str (msg, "id", ZJQ_TEXT_MAX, &id)
    ||  zjq_request_opt_str (msg, "queue", ZJQ_TEXT_MAX, &queue)
    ||  !id == !queue) {
        zjq_broker_send_error (self, msg, ZJQ_EPROTO, "RETRY needs a field 'id' or a field 'queue' "
                               "(a string), not both");
        return;
    }
    if (self->draining) {
        zjq_broker_send_error (self, msg, ZJQ_EDRAINING, "not requeueing jobs until the drain ends "
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
            zjq_broker_send_error (self, msg, code, "job %s: %s", id, message);
            return;
        }
        count = 1;
    }
    else {
        //  Take the next one before requeueing this one (it leaves the list)
        zjq_jobentry_t *entry = zjq_jobtable_dead_first (self->jobs);
        while (entry && !code) {
            zjq_jobentry_t *next = zjq_jobtable_dead_next (self->jobs, entry);
            if (streq (zjq_jobentry_queue_name (entry), queue)
            &&  zjq_jobentry_payload (entry).data) {
                code = s_retry_job (self, entry, &message);
                count += code == 0;
            }
            entry = next;
        }
        if (code && count == 0) {
            zjq_broker_send_error (self, msg, code, "queue %s: %s", queue, message);
            return;
        }
    }
    zjq_msg_t *reply = zjq_broker_reply_new (msg, ZJQ_CMD_RETRIED);
    zjq_msg_put_int (reply, "count", count);
    if (code)
        zjq_msg_put_str (reply, "stopped", message);
    zjq_broker_send_promise (self, &reply);
}


//
