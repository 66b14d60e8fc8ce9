/*  zjq_broker_backlog.c: the bytes the broker holds for clients that have
    not read them (zjq_backlog.h does the counting).

    Every message to a client is counted in its connection's backlog as it
    is sent (or held for the journal); a client that acknowledges gets the
    running count on each message (`out`) and sends back the highest it has
    read (`ack`, on any message). A DONE whose result would take the
    connection past its allowance (or all clients past the broker-wide
    limit) goes without it, marked `withheld`: the result stays in the job
    table (under --max-result-bytes) and the client library fetches it with
    RESULT. Replies with bulky bodies (JOB_RESULT, STATS_REPLY,
    DEAD_LETTER_LIST) that would not fit are answered ERROR EUNAVAILABLE.
    Connections idle for ZJQ_PROBE_IDLE_MS are probed with a PONG without
    req, so that the backlog of one that has gone is forgotten (the send
    fails with EHOSTUNREACH) and a live one acknowledges.                  */

#include "zjq_broker_private.h"
#include "zjq_mp.h"
#include <string.h>

#define S_STAMP_BYTES   13      //  the `out` field itself: key and uint64
#define S_TOP_MAX       5       //  connections listed in STATS

void
zjq_broker_count_out (zjq_broker_t *self, zjq_msg_t *msg)
{
    int command = zjq_msg_command (msg);
    if (command < ZJQ_CMD_ACCEPTED || command > ZJQ_CMD_ERROR)
        return;                 //  to a worker: its JOBs count on its peer
    size_t size;
    const byte *routing_id = zjq_msg_routing_id (msg, &size);
    if (!routing_id)
        return;
    bool acks;
    uint64_t stamp = zjq_backlog_sent (self->backlog, routing_id, size,
                                       zjq_msg_size (msg) + S_STAMP_BYTES, self->now, &acks);
    if (acks && stamp)
        zjq_msg_put_int (msg, "out", (int64_t) stamp);
}

void
zjq_broker_backlog_seen (zjq_broker_t *self, zjq_msg_t *msg)
{
    size_t size;
    const byte *routing_id = zjq_msg_routing_id (msg, &size);
    if (!routing_id)
        return;
    int64_t ack = 0;
    bool has_ack = zjq_msg_get_int (msg, "ack", &ack) && ack >= 0;
    zjq_backlog_seen (self->backlog, routing_id, size, has_ack, (uint64_t) ack, self->now);
}

void
zjq_broker_send_withheld (zjq_broker_t *self, zjq_jobentry_t *entry, const byte *routing_id,
                          size_t size)
{
    self->counters.results_withheld++;
    zjq_jobid_text_t id = zjq_jobentry_id (entry);
    bool acks = zjq_backlog_acks (self->backlog, routing_id, size);
    zjq_log_debug ("result_withheld", "job=%s bytes=%zu client_fetches=%s", id.text,
                   zjq_jobentry_result (entry).size, acks? "yes": "no");
    zjq_msg_t *msg;
    if (acks) {
        msg = zjq_broker_msg_to (routing_id, size, ZJQ_CMD_DONE);
        zjq_msg_put_str (msg, "id", id.text);
        zjq_msg_put_str (msg, "state", zjq_state_name (zjq_jobentry_state (entry)));
        zjq_msg_put_int (msg, "attempt", zjq_jobentry_attempt (entry));
        zjq_msg_put_bool (msg, "withheld", true);
        zjq_msg_put_int (msg, "result_size", (int64_t) zjq_jobentry_result (entry).size);
    }
    else {
        //  A client that does not fetch must not read an empty DONE as an
        //  empty result: it is told, and may ask with RESULT later
        msg = zjq_broker_msg_to (routing_id, size, ZJQ_CMD_ERROR);
        zjq_msg_put_int (msg, "code", ZJQ_EUNAVAILABLE);
        zjq_msg_put_str (msg, "id", id.text);
        zjq_msg_put_str (msg, "message", "result withheld: this connection has too many "
                                         "unread bytes; ask for it with RESULT");
    }
    zjq_broker_send_promise (self, &msg);
}

bool
zjq_broker_reply_fits (zjq_broker_t *self, zjq_msg_t *request, zjq_msg_t **reply_p, bool total)
{
    size_t size;
    const byte *routing_id = zjq_msg_routing_id (request, &size);
    uint64_t bytes = zjq_msg_size (*reply_p);
    if (!routing_id
    ||  zjq_backlog_fits (self->backlog, routing_id, size, bytes, total))
        return true;
    zjq_msg_destroy (reply_p);
    self->counters.backlog_refused++;
    zjq_broker_send_error (self, request, ZJQ_EUNAVAILABLE,
                           "reply of %llu bytes withheld: this connection has too many unread "
                           "bytes (read its replies first)", (unsigned long long) bytes);
    return false;
}

static void
s_probe (void *arg, const byte *routing_id, size_t size)
{
    zjq_broker_t *self = (zjq_broker_t *) arg;
    char rid_key [ZJQ_RID_KEY_MAX];
    if (zhashx_lookup (self->peers, zjq_broker_rid_key (routing_id, size, rid_key)))
        return;                 //  a worker (an ERROR to it was counted): not probed
    zjq_msg_t *msg = zjq_broker_msg_to (routing_id, size, ZJQ_CMD_PONG);
    zjq_msg_put_str (msg, "instance", self->instance);
    zjq_broker_send (self, &msg);
}

void
zjq_broker_probe_idle (zjq_broker_t *self)
{
    zjq_backlog_idle (self->backlog, self->now, ZJQ_PROBE_IDLE_MS, s_probe, self);
}

void
zjq_broker_backlog_stats (zjq_broker_t *self, zjq_stats_map_t *broker)
{
    zjq_backlog_info_t top [S_TOP_MAX];
    size_t count = zjq_backlog_top (self->backlog, top, S_TOP_MAX);
    uint64_t workers = 0;
    for (zjq_peer_t *peer = (zjq_peer_t *) zhashx_first (self->peers); peer;
         peer = (zjq_peer_t *) zhashx_next (self->peers))
        workers += zjq_peer_bytes (peer);
    zjq_stats_map_uint (broker, "outbound_bytes", zjq_backlog_total (self->backlog));
    zjq_stats_map_uint (broker, "outbound_peer_max_bytes", count? top [0].bytes: 0);
    zjq_stats_map_uint (broker, "outbound_connections", zjq_backlog_size (self->backlog));
    zjq_stats_map_uint (broker, "worker_outbound_bytes", workers);
    zjq_stats_map_uint (broker, "results_withheld", self->counters.results_withheld);
    zjq_stats_map_uint (broker, "outbound_refused", self->counters.backlog_refused);
    msgpack_packer *list = zjq_stats_map_key (broker, "outbound_top");
    msgpack_pack_array (list, count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_map (list, 3);
        zjq_mp_entry_str (list, "peer", top [index].key);
        zjq_mp_entry_int (list, "bytes", (int64_t) top [index].bytes);
        zjq_mp_pack_str (list, "acks");
        if (top [index].acks)
            msgpack_pack_true (list);
        else
            msgpack_pack_false (list);
    }
}
