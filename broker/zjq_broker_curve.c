/*  zjq_broker_curve.c: CURVE in the broker: every message checked against
    the roles its key holds now, reloads of the allow-lists (SIGHUP or
    RELOAD), the ZAP handler's verdicts and the handshakes that failed
    before it. See zjq_broker_private.h and zjq_auth.h.                    */

#include "zjq_broker_private.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>

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
//  this message? rights (from the command table: SUBMIT the client role,
//  STATS, RELOAD and the operations the admin role, STATUS, RESULT, CANCEL
//  and PING either, worker messages the worker role) are the roles of
//  which the key must hold one. If not: ERROR EDENIED, counted and logged
//  (by public key), a worker registered on the connection is forgotten,
//  and false is returned.
bool
zjq_broker_authorize (zjq_broker_t *self, zjq_msg_t *msg, int rights)
{
    const char *key = zjq_msg_user_id (msg);
    int roles = zjq_auth_roles (self->auth, key);
    if (roles & rights)
        return true;
    const char *name = zjq_proto_command_name (zjq_msg_command (msg));
    char held [32], needed [32];
    if (!roles) {
        self->counters.refused_unknown_key++;
        zjq_broker_warn (self, "refused", "command=%s key=%s reason=%s", name? name: "?",
                         key? key: "(none)", "the key is in no allow-list (any more)");
        zjq_broker_send_error (self, msg, ZJQ_EDENIED,
                               "this key is not in the broker's allow-lists");
    }
    else {
        self->counters.refused_role++;
        zjq_broker_warn (self, "refused", "command=%s key=%s reason=role needs=%s holds=%s",
                         name? name: "?", key, s_roles_text (rights, needed, sizeof (needed)),
                         s_roles_text (roles, held, sizeof (held)));
        zjq_broker_send_error (self, msg, ZJQ_EDENIED,
                               "%s needs a key with the %s role; this key is %s",
                               name? name: "this command",
                               s_roles_text (rights, needed, sizeof (needed)),
                               s_roles_text (roles, held, sizeof (held)));
    }
    if (zjq_msg_role (msg) == ZJQ_ROLE_WORKER) {
        char rid_key [ZJQ_RID_KEY_MAX];
        zjq_broker_sender_key (msg, rid_key);
        zjq_peer_t *peer = (zjq_peer_t *) zhashx_lookup (self->peers, rid_key);
        if (peer) {
            zjq_log_info ("worker_refused", "worker=%s host=%s pid=%lld reason=%s",
                          zjq_peer_worker_id (peer), zjq_peer_host (peer), zjq_peer_pid (peer),
                          "its key lost the worker role");
            zjq_broker_peer_forget (self, peer, "worker key refused");
        }
    }
    return false;
}


//  --------------------------------------------------------------------------
//  Reloads, handshakes

//  Re-read the allow-lists (SIGHUP or RELOAD; why says which). Workers
//  whose key lost the worker role, or one of the queues they serve, are
//  told DISCONNECT and forgotten (their jobs requeued). On error the old
//  lists stay in force, and error (error_size bytes) says why; it is left
//  alone on success.
void
zjq_broker_reload (zjq_broker_t *self, const char *why, char *error, size_t error_size)
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
        for (size_t index = 0; allowed && index < zjq_peer_queue_count (peer); index++)
            allowed = zjq_auth_queue_allowed (self->auth, zjq_peer_user_key (peer), ZJQ_AUTH_WORKER,
                                              zjq_queue_name (zjq_peer_queue (peer, index)));
        if (!allowed)
            zlistx_add_end (revoked, peer);
    }
    for (zjq_peer_t *peer = (zjq_peer_t *) zlistx_first (revoked); peer;
         peer = (zjq_peer_t *) zlistx_next (revoked)) {
        zjq_log_info ("worker_revoked", "worker=%s host=%s pid=%lld key=%s reason=%s",
                      zjq_peer_worker_id (peer), zjq_peer_host (peer), zjq_peer_pid (peer),
                      zjq_peer_user_key (peer),
                      "access revoked by the reload");
        zjq_msg_t *msg = zjq_broker_msg_to_frame (zjq_peer_routing_id (peer), ZJQ_CMD_DISCONNECT);
        zjq_msg_put_str (msg, "reason", "access revoked");
        zjq_broker_send (self, &msg);
        zjq_broker_peer_forget (self, peer, "worker key revoked");
    }
    zlistx_destroy (&revoked);
}

//  Answer the ZAP requests that are waiting (bounded), counting and logging
//  refusals.
void
zjq_broker_serve_zap (zjq_broker_t *self)
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
        zjq_broker_warn (self, "refused_connection", "address=%s key=%s reason=%s", verdict.address,
                         *verdict.key? verdict.key: "(none)", verdict.reason);
    }
}

//  Count and log handshakes that failed before the ZAP handler saw them:
//  plaintext peers (mechanism mismatch), peers with a wrong broker key
//  (cryptographic error), malformed handshakes. ZAP refusals are counted
//  by zjq_broker_serve_zap.
void
zjq_broker_read_monitor (zjq_broker_t *self)
{
    int event, value;
    for (size_t count = 0; count < ZJQ_DRAIN_BATCH
                        && zjq_auth_monitor_read (self->auth, &event, &value); count++) {
        if (zjq_fdguard_event (self->fdguard, event, value)
        ||  event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            continue;
        self->counters.refused_handshakes++;
        const char *why = value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH?
                              "not CURVE (a plaintext peer?)":
                          value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC?
                              "cryptographic error (wrong broker key?)":
                          event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL?
                              "connection lost during the handshake": "protocol error";
        zjq_broker_warn (self, "refused_connection", "reason=%s", why);
    }
}


//  --------------------------------------------------------------------------
