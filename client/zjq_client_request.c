/*  zjq_client_request.c: the client library's requests. See zjq_client.h
    and, for how the library is split, zjq_client_private.h.

    Every request (submit, status, result, cancel, stats, ping, reload and
    the operations answered as JSON, plus the client's own keepalive pings
    and RESULT waits for watched jobs) is encoded at once, waits in the
    outbox (zjq_client.c) until the socket takes it, and then in the table
    by its `req` id for the reply. Requests are recycled through a free
    list, so a request costs no allocation but its encoded frames and its
    payload copy.                                                          */

#include "zjq_client_private.h"
#include "zjq_json.h"
#include "zjq_util.h"

#include <assert.h>

#define ZJQ_KEY_MAX                 256


//  --------------------------------------------------------------------------
//  The request table and the life of a request

void
zjq_client_request_fail (zjq_client_t *self, zjq_request_t *request, int code)
{
    void *arg = request->arg;
    switch (request->kind) {
        case REQUEST_SUBMIT:
            if (request->callback.submit)
                ZJQ_CLIENT_CALLBACK (self, request->callback.submit (self, code, NULL, arg));
            else
            if (request->on_done)
                //  Nobody would learn of the failure otherwise
                ZJQ_CLIENT_CALLBACK (self, request->on_done (self, code, NULL, arg));
            break;
        case REQUEST_STATUS:
        case REQUEST_CANCEL:
            if (request->callback.status)
                ZJQ_CLIENT_CALLBACK (self, request->callback.status (self, code, NULL, arg));
            break;
        case REQUEST_RESULT:
            if (request->callback.result)
                ZJQ_CLIENT_CALLBACK (self, request->callback.result (self, code, NULL, arg));
            break;
        case REQUEST_STATS:
            if (request->callback.stats)
                ZJQ_CLIENT_CALLBACK (self, request->callback.stats (self, code, NULL, arg));
            break;
        case REQUEST_JSON:
            if (request->callback.json)
                ZJQ_CLIENT_CALLBACK (self, request->callback.json (self, code, NULL, arg));
            break;
        case REQUEST_PING:
        case REQUEST_RELOAD:
            if (request->callback.done)
                ZJQ_CLIENT_CALLBACK (self, request->callback.done (self, code, arg));
            break;
        case REQUEST_KEEPALIVE:
        case REQUEST_REWATCH:
            break;
    }
}

//  Give a request back to the free list (or free it).
void
zjq_client_request_free (zjq_client_t *self, zjq_request_t **request_p)
{
    zjq_request_t *request = *request_p;
    if (request) {
        zchunk_destroy (&request->header);
        zchunk_destroy (&request->fields);
        free (request->payload);
        zjq_client_id_free (&request->job_id, request->job_id_buf);
        if (self->spare_request_count < ZJQ_CLIENT_FREE_LIST_MAX) {
            request->next = self->spare_requests;
            self->spare_requests = request;
            self->spare_request_count++;
        }
        else
            free (request);
        *request_p = NULL;
    }
}

static bool
s_request_match (const void *item, const void *key)
{
    return ((const zjq_request_t *) item)->req == *(const uint64_t *) key;
}

zjq_request_t *
zjq_client_request_lookup (zjq_client_t *self, uint64_t req)
{
    return (zjq_request_t *) zjq_hashtab_lookup (&self->requests, zjq_client_req_hash (req),
                                                 s_request_match, &req);
}

//  Take a request out of every structure (the caller then frees it).
void
zjq_client_request_detach (zjq_client_t *self, zjq_request_t *request)
{
    zjq_client_outbox_unlink (self, request);
    zjq_client_timer_stop (self, &request->timer);
    zjq_hashtab_remove (&self->requests, zjq_client_req_hash (request->req), request);
    if (zjq_client_request_is_user (request)) {
        assert (self->user_requests > 0);
        self->user_requests--;
    }
    if (request->kind == REQUEST_KEEPALIVE && self->keepalive_req == request->req)
        self->keepalive_req = 0;
}

//  Start a request message: the caller adds its fields, then zjq_client_request_queue.
zjq_request_t *
zjq_client_request_new (zjq_client_t *self, zjq_request_kind_t kind)
{
    zjq_request_t *request = self->spare_requests;
    if (request) {
        self->spare_requests = request->next;
        self->spare_request_count--;
        memset (request, 0, sizeof (*request));
    }
    else
        request = (zjq_request_t *) calloc (1, sizeof (zjq_request_t));
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
int
zjq_client_request_queue (zjq_client_t *self, zjq_request_t *request, zjq_msg_t **msg_p,
                          int64_t deadline)
{
    //  Every request acknowledges what this connection has read: the
    //  broker counts it out of its backlog (and knows we fetch results)
    zjq_msg_put_int (*msg_p, "ack", (int64_t) self->out_seen);
    self->out_acked = self->out_seen;
    self->ack_due = false;
    int rc = zjq_msg_encode (*msg_p, &request->header, &request->fields);
    zjq_msg_destroy (msg_p);
    if (rc != 0)
        goto nomem;
    if (zjq_hashtab_insert (&self->requests, zjq_client_req_hash (request->req), request) != 0)
        goto nomem;
    if (zjq_client_timer_start (self, &request->timer, TIMER_REQUEST, deadline) != 0) {
        zjq_hashtab_remove (&self->requests, zjq_client_req_hash (request->req), request);
        goto nomem;
    }
    request->queued = true;
    request->prev = self->outbox_tail;
    if (self->outbox_tail)
        self->outbox_tail->next = request;
    else
        self->outbox_head = request;
    self->outbox_tail = request;
    if (zjq_client_request_is_user (request))
        self->user_requests++;
    return 0;
nomem:
    zjq_client_request_free (self, &request);
    return ZJQ_ENOMEM;
}

zjq_msg_t *
zjq_client_request_msg (zjq_request_t *request, int command)
{
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_CLIENT, command);
    if (msg)
        zjq_msg_put_int (msg, "req", (int64_t) request->req);
    return msg;
}

//  Start a request that names a job (STATUS, CANCEL, RESULT, REWATCH).
//  Returns the request and its message in *msg_p, or NULL out of memory.
zjq_request_t *
zjq_client_job_request_new (zjq_client_t *self, zjq_request_kind_t kind, int command,
                            const char *job_id, bool wait, zjq_msg_t **msg_p)
{
    zjq_request_t *request = zjq_client_request_new (self, kind);
    if (!request)
        return NULL;
    request->job_id = zjq_client_id_copy (request->job_id_buf, job_id);
    zjq_msg_t *msg = zjq_client_request_msg (request, command);
    if (!request->job_id || !msg) {
        zjq_msg_destroy (&msg);
        zjq_client_request_free (self, &request);
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
bool
zjq_client_reply_result (zjq_msg_t *msg, zjq_result_t *result, int *status)
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
    result->attempt = zjq_client_clamp_int (attempt);
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
        info->attempt = zjq_client_clamp_int (value);
    if (zjq_msg_get_int (msg, "max_attempts", &value))
        info->max_attempts = zjq_client_clamp_int (value);
    if (zjq_msg_get_int (msg, "priority", &value))
        info->priority = zjq_client_clamp_int (value);
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
        zjq_client_rewatch_all (self);
    else
    if (self->fetch_retry)
        zjq_client_refetch (self);
    self->fetch_retry = false;
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

//  The handlers of replies by request kind: each returns false if the
//  reply does not fit the request (which then stays pending), else detaches
//  the request and fires its callback. The caller frees the request.

//  ERROR, or REJECTED for a submit
static bool
s_reply_error (zjq_client_t *self, zjq_request_t *request, zjq_msg_t *msg)
{
    int code = 0;
    if (!s_reply_code (msg, &code))
        return false;
    zjq_client_request_detach (self, request);
    if (request->kind == REQUEST_REWATCH) {
        if (code == ZJQ_ENOTFOUND || code == ZJQ_EEXPIRED || code == ZJQ_EBADID)
            zjq_client_job_complete (self, request->job_id, code, NULL);
        else
        if (code == ZJQ_EUNAVAILABLE)
            self->fetch_retry = true;   //  our backlog is full: after the next ack
    }
    else
        zjq_client_request_fail (self, request, code);
    return true;
}

//  SUBMIT: ACCEPTED, and the job is watched if the caller asked
static bool
s_reply_accepted (zjq_client_t *self, zjq_request_t *request, zjq_msg_t *msg, int command)
{
    const char *job_id = zjq_msg_get_str (msg, "id");
    if (command != ZJQ_CMD_ACCEPTED || !job_id)
        return false;
    bool duplicate = false;
    zjq_msg_get_bool (msg, "duplicate", &duplicate);
    zjq_client_request_detach (self, request);
    int watch_rc = 0;
    if (request->on_done) {
        watch_rc = zjq_client_watch_add (self, job_id, request->on_done, request->arg, -1);
        //  A duplicate may have ended already: DONE would never come
        if (watch_rc == 0 && duplicate)
            zjq_client_rewatch (self, zjq_client_job_lookup (self, job_id));
    }
    if (request->callback.submit)
        ZJQ_CLIENT_CALLBACK (self, request->callback.submit (self, 0, job_id, request->arg));
    if (watch_rc != 0)
        ZJQ_CLIENT_CALLBACK (self, request->on_done (self, watch_rc, NULL, request->arg));
    return true;
}

//  STATUS and CANCEL: JOB_STATUS
static bool
s_reply_status (zjq_client_t *self, zjq_request_t *request, zjq_msg_t *msg, int command)
{
    zjq_job_info_t info;
    if (command != ZJQ_CMD_JOB_STATUS || !s_reply_info (msg, &info))
        return false;
    zjq_client_request_detach (self, request);
    if (request->callback.status)
        ZJQ_CLIENT_CALLBACK (self, request->callback.status (self, 0, &info, request->arg));
    return true;
}

//  RESULT and REWATCH: JOB_RESULT if the job has ended, else JOB_STATUS
//  (not ready; with a wait, the broker registered us for DONE)
static bool
s_reply_result (zjq_client_t *self, zjq_request_t *request, zjq_msg_t *msg, int command)
{
    bool rewatch = request->kind == REQUEST_REWATCH;
    zjq_result_cb *callback = request->callback.result;
    if (command == ZJQ_CMD_JOB_RESULT) {
        zjq_result_t result;
        int status;
        if (!zjq_client_reply_result (msg, &result, &status))
            return false;
        zjq_client_request_detach (self, request);
        if (rewatch)
            zjq_client_job_complete (self, request->job_id, status, &result);
        else
        if (callback)
            ZJQ_CLIENT_CALLBACK (self, callback (self, status, &result, request->arg));
        return true;
    }
    if (command != ZJQ_CMD_JOB_STATUS || !zjq_msg_get_str (msg, "id"))
        return false;
    zjq_client_request_detach (self, request);
    if (rewatch)
        ;               //  registered again: DONE will come
    else
    if (request->wait_deadline == -2) {
        if (callback)
            ZJQ_CLIENT_CALLBACK (self, callback (self, ZJQ_ENOTREADY, NULL, request->arg));
    }
    else {
        int rc = zjq_client_watch_add (self, request->job_id, callback, request->arg,
                                       request->wait_deadline);
        if (rc != 0 && callback)
            ZJQ_CLIENT_CALLBACK (self, callback (self, rc, NULL, request->arg));
    }
    return true;
}

//  STATS: STATS_REPLY, handed on as JSON
static bool
s_reply_stats (zjq_client_t *self, zjq_request_t *request, zjq_msg_t *msg, int command)
{
    const msgpack_object *stats = zjq_msg_get (msg, "stats");
    if (command != ZJQ_CMD_STATS_REPLY || !stats || stats->type != MSGPACK_OBJECT_MAP)
        return false;
    zjq_client_request_detach (self, request);
    zjq_stats_cb *callback = request->callback.stats;
    char *json = callback? zjq_json_from_msgpack (stats): NULL;
    if (callback)
        ZJQ_CLIENT_CALLBACK (self, callback (self, json? 0: ZJQ_ENOMEM, json, request->arg));
    free (json);
    return true;
}

//  An operation: the reply it expects, its fields handed on as JSON
static bool
s_reply_json (zjq_client_t *self, zjq_request_t *request, zjq_msg_t *msg, int command)
{
    if (command != request->reply_command)
        return false;
    zjq_client_request_detach (self, request);
    zjq_json_cb *callback = request->callback.json;
    char *json = callback? s_fields_json (msg): NULL;
    if (callback)
        ZJQ_CLIENT_CALLBACK (self, callback (self, json? 0: ZJQ_ENOMEM, json, request->arg));
    free (json);
    return true;
}

//  PING, KEEPALIVE (PONG) and RELOAD (RELOADED): a plain status
static bool
s_reply_done (zjq_client_t *self, zjq_request_t *request, zjq_msg_t *msg, int command)
{
    if (request->kind == REQUEST_RELOAD? command != ZJQ_CMD_RELOADED
                                       : command != ZJQ_CMD_PONG || !s_handle_pong (self, msg))
        return false;
    zjq_client_request_detach (self, request);
    if (request->kind != REQUEST_KEEPALIVE && request->callback.done)
        ZJQ_CLIENT_CALLBACK (self, request->callback.done (self, 0, request->arg));
    return true;
}

bool
zjq_client_handle_reply (zjq_client_t *self, zjq_request_t *request, zjq_msg_t *msg)
{
    int command = zjq_msg_command (msg);
    if (command == ZJQ_CMD_ERROR
    || (command == ZJQ_CMD_REJECTED && request->kind == REQUEST_SUBMIT))
        return s_reply_error (self, request, msg);
    switch (request->kind) {
        case REQUEST_SUBMIT:
            return s_reply_accepted (self, request, msg, command);
        case REQUEST_STATUS:
        case REQUEST_CANCEL:
            return s_reply_status (self, request, msg, command);
        case REQUEST_RESULT:
        case REQUEST_REWATCH:
            return s_reply_result (self, request, msg, command);
        case REQUEST_STATS:
            return s_reply_stats (self, request, msg, command);
        case REQUEST_JSON:
            return s_reply_json (self, request, msg, command);
        case REQUEST_RELOAD:
        case REQUEST_PING:
        case REQUEST_KEEPALIVE:
            return s_reply_done (self, request, msg, command);
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

int
zjq_submit_opts_init_sized (zjq_submit_opts_t *opts, size_t size)
{
    if (!opts)
        return ZJQ_EINVAL;
    if (zjq_client_opts_size_check (size, _Alignof (zjq_submit_opts_t)) != 0)
        return ZJQ_EVERSION;
    memset (opts, 0, size);
    opts->size = size;
    return 0;
}


//  --------------------------------------------------------------------------
//  The public requests

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
    //  The caller's options, as this library's version of the struct
    zjq_submit_opts_t options;
    if (zjq_client_opts_read (&options, sizeof (options), _Alignof (zjq_submit_opts_t), opts))
        return ZJQ_EVERSION;
    opts = &options;
    if (!zjq_proto_queue_name_valid (queue)
    ||  opts->priority < -1000 || opts->priority > 1000
    ||  opts->max_attempts < 0 || opts->max_attempts > 1000
    ||  opts->job_timeout_ms < 0 || opts->result_ttl_ms < 0
    ||  (opts->key && (!*opts->key || strlen (opts->key) > ZJQ_KEY_MAX)))
        return ZJQ_EINVAL;

    zjq_request_t *request = zjq_client_request_new (self, REQUEST_SUBMIT);
    if (!request)
        return ZJQ_ENOMEM;
    request->payload = malloc (size? size: 1);
    zjq_msg_t *msg = zjq_client_request_msg (request, ZJQ_CMD_SUBMIT);
    if (!request->payload || !msg) {
        zjq_msg_destroy (&msg);
        zjq_client_request_free (self, &request);
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
    return zjq_client_request_queue (self, request, &msg, zjq_mono_ms () + self->request_timeout);
}

//  STATUS and CANCEL
static int
s_status_request (zjq_client_t *self, zjq_request_kind_t kind, int command, const char *job_id,
                  zjq_status_cb *callback, void *arg)
{
    if (!self || !zjq_client_job_id_valid (job_id))
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_msg_t *msg = NULL;
    zjq_request_t *request = zjq_client_job_request_new (self, kind, command, job_id, false, &msg);
    if (!request)
        return ZJQ_ENOMEM;
    request->callback.status = callback;
    request->arg = arg;
    return zjq_client_request_queue (self, request, &msg, zjq_mono_ms () + self->request_timeout);
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
    if (!self || !zjq_client_job_id_valid (job_id) || timeout_ms < -1)
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_msg_t *msg = NULL;
    zjq_request_t *request = zjq_client_job_request_new (self, REQUEST_RESULT, ZJQ_CMD_RESULT,
                                                         job_id, timeout_ms != 0, &msg);
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
    return zjq_client_request_queue (self, request, &msg, deadline);
}

int
zjq_stats (zjq_client_t *self, zjq_stats_cb *callback, void *arg)
{
    if (!self)
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_request_t *request = zjq_client_request_new (self, REQUEST_STATS);
    zjq_msg_t *msg = request? zjq_client_request_msg (request, ZJQ_CMD_STATS): NULL;
    if (!msg) {
        zjq_client_request_free (self, &request);
        return ZJQ_ENOMEM;
    }
    request->callback.stats = callback;
    request->arg = arg;
    return zjq_client_request_queue (self, request, &msg, zjq_mono_ms () + self->request_timeout);
}

//  A request without fields whose answer is a plain status (PING, RELOAD).
static int
s_done_request (zjq_client_t *self, zjq_request_kind_t kind, int command,
                zjq_done_cb *callback, void *arg)
{
    if (!self)
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_request_t *request = zjq_client_request_new (self, kind);
    zjq_msg_t *msg = request? zjq_client_request_msg (request, command): NULL;
    if (!msg) {
        zjq_client_request_free (self, &request);
        return ZJQ_ENOMEM;
    }
    request->callback.done = callback;
    request->arg = arg;
    return zjq_client_request_queue (self, request, &msg, zjq_mono_ms () + self->request_timeout);
}

//  Start an operation answered as JSON: reply is the command it expects.
//  Returns the request and its message in *msg_p, or NULL out of memory.
static zjq_request_t *
s_json_request_new (zjq_client_t *self, int command, int reply, zjq_json_cb *callback,
                    void *arg, zjq_msg_t **msg_p)
{
    zjq_request_t *request = zjq_client_request_new (self, REQUEST_JSON);
    zjq_msg_t *msg = request? zjq_client_request_msg (request, command): NULL;
    if (!msg) {
        zjq_client_request_free (self, &request);
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
s_json_request_queue (zjq_client_t *self, zjq_request_t *request, zjq_msg_t **msg_p)
{
    return zjq_client_request_queue (self, request, msg_p, zjq_mono_ms () + self->request_timeout);
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
    zjq_request_t *request = s_json_request_new (self, command, ZJQ_CMD_QUEUE_STATE, callback,
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
    zjq_request_t *request = s_json_request_new (self, ZJQ_CMD_DRAIN, ZJQ_CMD_DRAIN_STATE,
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
    ||  (after && !zjq_client_job_id_valid (after)) || limit < 0 || limit > 10000)
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_msg_t *msg;
    zjq_request_t *request = s_json_request_new (self, ZJQ_CMD_DEAD_LETTERS,
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
    if (!self || !job_id == !queue || (job_id && !zjq_client_job_id_valid (job_id))
    ||  (queue && !zjq_proto_queue_name_valid (queue)))
        return ZJQ_EINVAL;
    if (self->closing)
        return ZJQ_ECLOSED;
    zjq_msg_t *msg;
    zjq_request_t *request = s_json_request_new (self, ZJQ_CMD_RETRY, ZJQ_CMD_RETRIED, callback,
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
