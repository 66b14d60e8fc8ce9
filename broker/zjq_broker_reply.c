/*  zjq_broker_reply.c: what the broker sends, and how it packs it.

    Every message out goes through here: replies to a request (its req
    echoed), errors and rejections, promises held until the journal has
    made them durable (zjq_held.h), messages to workers, DONE and
    PROGRESS_UPDATE to the clients that asked. And the packing of what a
    reply describes: a job's status and attempt history, the STATS map, a
    dead letter. See zjq_broker_private.h.                                  */

#include "zjq_broker_private.h"
#include "zjq_mp.h"
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Small helpers

//  Hex of a routing id into buf (ZJQ_RID_KEY_MAX bytes)
char *
zjq_broker_rid_key (const byte *data, size_t size, char *buf)
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
char *
zjq_broker_sender_key (zjq_msg_t *msg, char *buf)
{
    size_t size;
    const byte *data = zjq_msg_routing_id (msg, &size);
    return zjq_broker_rid_key (data, size, buf);
}

//  Log a warning about input from a peer, at most ZJQ_WARN_PER_SECOND a
//  second, so garbage cannot flood the log.

void
zjq_broker_warn (zjq_broker_t *self, const char *event, const char *format, ...)
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

//  --------------------------------------------------------------------------
//  Messages out: replies, promises, errors

//  msgpack into a small stack buffer, to echo req exactly
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
zjq_msg_t *
zjq_broker_msg_to (const byte *routing_id, size_t size, int command)
{
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_BROKER, command);
    assert (msg);               //  out of memory
    zjq_msg_set_routing_id (msg, routing_id, size);
    return msg;
}

//  A new broker message to a routing id kept as a frame
zjq_msg_t *
zjq_broker_msg_to_frame (zframe_t *routing_id, int command)
{
    return zjq_broker_msg_to (zframe_data (routing_id), zframe_size (routing_id), command);
}

//  A new message to the sender of a request
zjq_msg_t *
zjq_broker_msg_to_sender (zjq_msg_t *request, int command)
{
    size_t size;
    const byte *routing_id = zjq_msg_routing_id (request, &size);
    return zjq_broker_msg_to (routing_id, size, command);
}

//  A new reply to a request: same routing id, req echoed
zjq_msg_t *
zjq_broker_reply_new (zjq_msg_t *request, int command)
{
    zjq_msg_t *reply = zjq_broker_msg_to_sender (request, command);
    s_put_req (reply, request);
    return reply;
}


//  zjq_held's send callback: a released promise goes out with the turn
static void
s_send_held (void *arg, zjq_msg_t **msg_p)
{
    zjq_outbox_send (((zjq_broker_t *) arg)->outbox, msg_p);    //  counted when held
}

//  Send the held messages whose records are durable, oldest first; with
//  all, send every one (or, if the journal failed, drop what it never made
//  durable).
void
zjq_broker_release (zjq_broker_t *self, bool all)
{
    zjq_held_release (self->held, zjq_store_durable (self->store), all, s_send_held, self);
}

//  Send a promise to a client (ACCEPTED, DONE, JOB_RESULT, the JOB_STATUS
//  of a cancel), or hold it while the journal has records that are not
//  durable yet: it may depend on them. Held promises keep their order.
//  Other replies (STATUS, REJECTED, ERROR, ...) promise nothing and go at
//  once through zjq_broker_send, so a client hears EUNAVAILABLE while the
//  journal cannot be written.
void
zjq_broker_send_promise (zjq_broker_t *self, zjq_msg_t **msg_p)
{
    zjq_broker_count_out (self, *msg_p);
    uint64_t lsn = zjq_store_lsn (self->store);
    if ((zjq_held_size (self->held) || lsn > zjq_store_durable (self->store))
    &&  zjq_held_push (self->held, msg_p, lsn) == 0)
        return;
    //  Out of memory holding it: the journal state is lost, not the reply
    zjq_outbox_send (self->outbox, msg_p);
}

//  Send a message to a client, at the end of this turn (batched with the
//  turn's other messages to the same client); a client that has gone is
//  not an error.
void
zjq_broker_send (zjq_broker_t *self, zjq_msg_t **msg_p)
{
    zjq_broker_count_out (self, *msg_p);
    zjq_outbox_send (self->outbox, msg_p);
}


//  Send a message to a worker, at the end of this turn. If the worker turns
//  out to be gone (or, for JOBs, cannot take them), zjq_broker_send_failed marks it
//  unreachable: the next scan requeues its jobs.
void
zjq_broker_send_peer (zjq_broker_t *self, zjq_peer_t *peer, zjq_msg_t **msg_p)
{
    zjq_peer_set_sent (peer, self->now);
    zjq_outbox_send (self->outbox, msg_p);
}

//  The outbox could not send to a peer (ZMQ_DONTWAIT).
void
zjq_broker_send_failed (void *arg, const byte *routing_id, size_t size, int command, int error)
{
    zjq_broker_t *self = (zjq_broker_t *) arg;
    char rid_key [ZJQ_RID_KEY_MAX];
    zjq_peer_t *peer = routing_id?
        (zjq_peer_t *) zhashx_lookup (self->peers, zjq_broker_rid_key (routing_id, size, rid_key))
        : NULL;
    zjq_log_debug ("send_failed", "command=%s to=%s worker=%s error=%s",
                   zjq_proto_command_name (command), peer? "worker": "client",
                   peer? zjq_peer_worker_id (peer): "", zmq_strerror (error));
    if (!peer && routing_id && error == EHOSTUNREACH)
        zjq_backlog_forget (self->backlog, routing_id, size);   //  the client has gone
    //  A batch to a worker carries its JOBs
    if (peer && (error == EHOSTUNREACH
             || (error == EAGAIN && (command == ZJQ_CMD_JOB || command == ZJQ_CMD_BATCH)))
    &&  !zjq_peer_unreachable (peer)) {
        zjq_peer_set_unreachable (peer);
        zjq_peer_unlist (peer);
        self->reap = true;
    }
}


//  A reply with a code and a message (ERROR or REJECTED) to a request
static void
s_send_coded (zjq_broker_t *self, zjq_msg_t *request, int command, int code,
              const char *format, va_list args)
{
    char text [256];
    vsnprintf (text, sizeof (text), format, args);
    if (command == ZJQ_CMD_ERROR)
        zjq_log_debug ("error_reply", "code=%s role=%c message=%s", zjq_errname (code),
                       zjq_msg_role (request), text);
    else {
        self->counters.rejected++;
        zjq_log_debug ("submit_rejected", "code=%s message=%s", zjq_errname (code), text);
    }
    zjq_msg_t *reply = zjq_broker_reply_new (request, command);
    zjq_msg_put_int (reply, "code", code);
    zjq_msg_put_str (reply, "message", text);
    if (zjq_msg_role (request) == ZJQ_ROLE_WORKER)
        zjq_outbox_send (self->outbox, &reply);     //  not a client's backlog
    else
        zjq_broker_send (self, &reply);
}

void
zjq_broker_send_error (zjq_broker_t *self, zjq_msg_t *request, int code,
                       const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_send_coded (self, request, ZJQ_CMD_ERROR, code, format, args);
    va_end (args);
}

void
zjq_broker_send_rejected (zjq_broker_t *self, zjq_msg_t *request, int code,
                          const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_send_coded (self, request, ZJQ_CMD_REJECTED, code, format, args);
    va_end (args);
}


//  --------------------------------------------------------------------------
//  Who hears about a job: JOB_STATUS, DONE and JOB_RESULT outcomes, waiters,
//  progress watchers

void
zjq_broker_send_status (zjq_broker_t *self, zjq_msg_t *request, zjq_jobentry_t *entry)
{
    zjq_msg_t *reply = zjq_broker_reply_new (request, ZJQ_CMD_JOB_STATUS);
    zjq_broker_put_status (reply, entry);
    zjq_broker_send (self, &reply);
}

//  Attach bytes that the job table keeps (a payload or a result) as the
//  message's payload: a frame (large) is shared without a copy, bytes kept
//  inline are copied.
void
zjq_broker_attach_payload (zjq_msg_t *msg, zjq_jobbytes_t bytes)
{
    if (bytes.frame)
        zjq_msg_set_payload_shared (msg, bytes.frame);
    else
        zjq_msg_set_payload_borrowed (msg, bytes.data, bytes.size);
}

//  Put the outcome of an ended job into a JOB_RESULT or DONE.
void
zjq_broker_put_outcome (zjq_msg_t *msg, zjq_jobentry_t *entry)
{
    zjq_state_t state = zjq_jobentry_state (entry);
    const char *error = zjq_jobentry_error (entry);
    zjq_msg_put_str (msg, "id", zjq_jobentry_id (entry).text);
    zjq_msg_put_str (msg, "state", zjq_state_name (state));
    zjq_msg_put_int (msg, "attempt", zjq_jobentry_attempt (entry));
    if (state != ZJQ_STATE_SUCCEEDED)
        zjq_msg_put_str (msg, "error", error? error: zjq_state_name (state));
    if (state == ZJQ_STATE_SUCCEEDED && zjq_jobentry_result (entry).size)
        zjq_broker_attach_payload (msg, zjq_jobentry_result (entry));
}

//  A DONE for an ended job to one client.
void
zjq_broker_send_done (zjq_broker_t *self, zjq_jobentry_t *entry, const byte *routing_id,
                      size_t size)
{
    if (zjq_jobentry_state (entry) == ZJQ_STATE_SUCCEEDED
    &&  !zjq_backlog_fits (self->backlog, routing_id, size, zjq_jobentry_result (entry).size,
                          true)) {
        zjq_broker_send_withheld (self, entry, routing_id, size);
        return;
    }
    zjq_msg_t *msg = zjq_broker_msg_to (routing_id, size, ZJQ_CMD_DONE);
    zjq_broker_put_outcome (msg, entry);
    zjq_broker_send_promise (self, &msg);
}

//  Register a client for DONE; if the job has already ended, send it now.
void
zjq_broker_add_waiter (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_msg_t *request)
{
    size_t size;
    const byte *routing_id = zjq_msg_routing_id (request, &size);
    if (zjq_jobentry_ended (entry))
        zjq_broker_send_done (self, entry, routing_id, size);
    else
    if (zjq_jobentry_add_waiter (entry, routing_id, size, zjq_msg_user_id (request)) == -1)
        zjq_log_error ("out_of_memory", "what=registering_waiter job=%s",
                       zjq_jobentry_id (entry).text);
}

//  Register the sender of a request for PROGRESS_UPDATE on a job that has
//  not ended.
void
zjq_broker_watch_progress (zjq_broker_t *self, zjq_jobentry_t *entry, zjq_msg_t *request)
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

//  Push a job's progress to the clients that asked for it, in the order
//  the worker reported it.
void
zjq_broker_push_progress (zjq_broker_t *self, zjq_jobentry_t *entry, const char *message)
{
    if (!zhashx_size (self->progress_watchers))
        return;
    zjq_jobid_text_t id = zjq_jobentry_id (entry);
    zlistx_t *watchers = (zlistx_t *) zhashx_lookup (self->progress_watchers, id.text);
    if (!watchers)
        return;
    for (zframe_t *routing_id = (zframe_t *) zlistx_first (watchers); routing_id;
         routing_id = (zframe_t *) zlistx_next (watchers)) {
        zjq_msg_t *update = zjq_broker_msg_to_frame (routing_id, ZJQ_CMD_PROGRESS_UPDATE);
        zjq_msg_put_str (update, "id", id.text);
        zjq_msg_put_int (update, "attempt", zjq_jobentry_attempt (entry));
        zjq_msg_put_double (update, "progress", zjq_jobentry_progress (entry));
        if (message)
            zjq_msg_put_str (update, "message", message);
        zjq_broker_send (self, &update);
    }
}


//  --------------------------------------------------------------------------
//  Packing: job status, attempt histories, stats, dead letters

static void
s_put_history (zjq_msg_t *msg, const char *key, const zjq_history_t *history)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    zjq_history_pack_attempts (&packer, history, &zjq_history_wire_keys);
    zjq_msg_put_packed (msg, key, buffer.data, buffer.size);
    msgpack_sbuffer_destroy (&buffer);
}

void
zjq_broker_put_status (zjq_msg_t *msg, zjq_jobentry_t *entry)
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
        zjq_msg_put_str (msg, "worker", zjq_peer_worker_id (zjq_jobentry_peer (entry)));
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

//  each queue's wait and run time histograms too (for /metrics).
//  One worker's entry in the STATS map
static void
s_pack_peer (zjq_broker_t *self, zjq_peer_t *peer, zjq_stats_map_t *map)
{
    zjq_stats_map_str (map, "id", zjq_peer_worker_id (peer));
    zjq_stats_map_str (map, "host", zjq_peer_host (peer));
    zjq_stats_map_int (map, "pid", zjq_peer_pid (peer));
    msgpack_packer *names = zjq_stats_map_key (map, "queues");
    size_t count = zjq_peer_queue_count (peer);
    msgpack_pack_array (names, count);
    for (size_t index = 0; index < count; index++)
        zjq_mp_pack_str (names, zjq_queue_name (zjq_peer_queue (peer, index)));
    zjq_stats_map_uint (map, "capacity", (uint64_t) zjq_peer_capacity (peer));
    zjq_stats_map_uint (map, "running", zjq_peer_outstanding (peer));
    zjq_stats_map_uint (map, "completed", zjq_peer_completed (peer));
    zjq_stats_map_uint (map, "last_seen_ms_ago",
                        (uint64_t) (self->now - zjq_peer_last_seen (peer)));
    zjq_stats_map_uint (map, "heartbeat_ms", (uint64_t) zjq_peer_heartbeat_ms (peer));
    zjq_stats_map_bool (map, "draining", zjq_peer_draining (peer));
    zjq_stats_map_str (map, "version", zjq_peer_version (peer));
    zjq_stats_map_uint (map, "outbound_bytes", zjq_peer_bytes (peer));
}

//  The journal's entry in the STATS map's broker section (none for a
//  store without a path: memory only)
static void
s_pack_journal (zjq_broker_t *self, zjq_stats_map_t *broker)
{
    const zjq_store_stats_t *journal = zjq_store_stats (self->store);
    if (!journal->path)
        return;
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
    zjq_stats_map_uint (&map, "held_replies", zjq_held_size (self->held));
    zjq_stats_map_end (&map, zjq_stats_map_key (broker, "journal"));
}

//  One queue's entry in the STATS map
static void
s_pack_queue (zjq_broker_t *self, zjq_queue_t *queue, msgpack_packer *queues, int64_t wall,
              bool histograms)
{
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
    zjq_mp_pack_str (queues, zjq_queue_name (queue));
    zjq_stats_map_end (&map, queues);
}

//  The STATS map (docs/protocol.md, Stats) into a packer; with histograms,
//  each queue's wait and run time histograms too (for /metrics).
void
zjq_broker_stats_pack (zjq_broker_t *self, msgpack_packer *packer, bool histograms)
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
    s_pack_journal (self, &broker);
    zjq_stats_map_bool (&broker, "curve", self->auth != NULL);
    zjq_stats_map_uint (&broker, "refused_handshakes", self->counters.refused_handshakes);
    zjq_stats_map_uint (&broker, "refused_unknown_key", self->counters.refused_unknown_key);
    zjq_stats_map_uint (&broker, "refused_role", self->counters.refused_role);
    zjq_stats_map_uint (&broker, "denied_queue", self->counters.denied_queue);
    zjq_broker_backlog_stats (self, &broker);
    zjq_stats_map_uint (&broker, "rejected_quota", zjq_quota_rejected (self->quota));
    const zjq_fdguard_stats_t *fds = zjq_fdguard_stats (self->fdguard);
    zjq_stats_map_uint (&broker, "fd_limit", fds->soft_limit);
    zjq_stats_map_uint (&broker, "accept_failed", fds->accept_failed);
    zjq_stats_map_uint (&broker, "connections_shed", fds->shed);
    zjq_stats_map_end (&broker, zjq_stats_map_key (&top, "broker"));

    msgpack_packer *queues = zjq_stats_map_key (&top, "queues");
    msgpack_pack_map (queues, zhashx_size (self->queues));
    for (zjq_queue_t *queue = (zjq_queue_t *) zhashx_first (self->queues); queue;
         queue = (zjq_queue_t *) zhashx_next (self->queues)) {
        s_pack_queue (self, queue, queues, wall, histograms);
    }

    msgpack_packer *workers = zjq_stats_map_key (&top, "workers");
    msgpack_pack_array (workers, zhashx_size (self->peers));
    for (zjq_peer_t *peer = (zjq_peer_t *) zhashx_first (self->peers); peer;
         peer = (zjq_peer_t *) zhashx_next (self->peers)) {
        zjq_stats_map_t map;
        zjq_stats_map_init (&map);
        s_pack_peer (self, peer, &map);
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

//  One dead letter as a map for DEAD_LETTER_LIST
void
zjq_broker_pack_dead_letter (msgpack_packer *packer, zjq_jobentry_t *entry)
{
    zjq_job_t record;
    zjq_jobentry_record (entry, &record);
    const zjq_job_t *job = &record;
    const zjq_history_t *history = job->history;
    msgpack_pack_map (packer, 11);
    zjq_mp_entry_str (packer, "id", job->id);
    zjq_mp_entry_str (packer, "queue", job->queue);
    zjq_mp_entry_int (packer, "attempts", job->attempt);
    zjq_mp_entry_int (packer, "max_attempts", job->max_attempts);
    zjq_mp_entry_int (packer, "retries", history->retries);
    zjq_mp_entry_str (packer, "error", job->error? job->error: "failed");
    zjq_mp_entry_int (packer, "created_ms", job->created_ms);
    zjq_mp_entry_int (packer, "failed_ms", job->finished_ms);
    zjq_mp_entry_int (packer, "expires_ms", job->expires_ms);
    zjq_mp_entry_int (packer, "history_dropped", history->dropped);
    zjq_mp_pack_str (packer, "history");
    zjq_history_pack_attempts (packer, history, &zjq_history_wire_keys);
}
