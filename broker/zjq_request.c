/*  zjq_request.c: requests parsed once. See zjq_request.h.               */

#include "zjq_request.h"
#include "zjq_job.h"
#include "zjq_util.h"
#include <assert.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  One pass over the fields map

//  A field a request knows, by name
typedef struct {
    const char *name;
    size_t len;
} s_name_t;

#define S_NAME(text) { text, sizeof (text) - 1 }

//  For each name, the first field of the message by that name (value NULL
//  if it has none): one walk over the fields (zjq_msg_next_field).
static void
s_scan (zjq_msg_t *msg, const s_name_t *names, size_t count, zjq_msg_field_t *fields)
{
    for (size_t index = 0; index < count; index++)
        fields [index].value = NULL;
    size_t cursor = 0;
    zjq_msg_field_t field;
    while (zjq_msg_next_field (msg, &cursor, &field))
        for (size_t index = 0; index < count; index++)
            if (!fields [index].value && field.key_size == names [index].len
            &&  memcmp (field.key, names [index].name, names [index].len) == 0) {
                fields [index] = field;
                break;
            }
}

//  An integer value (as zjq_msg_get_int): false if absent or not one.
static bool
s_int (const zjq_msg_field_t *field, int64_t *value)
{
    return zjq_msg_field_int (field, value);
}

//  An optional integer in [min, max]: 0 if absent (value unchanged) or in
//  range, -1 if present and not.
static int
s_opt_int (const zjq_msg_field_t *field, int64_t min, int64_t max, int64_t *value)
{
    if (!field->value)
        return 0;
    int64_t number;
    if (!s_int (field, &number) || number < min || number > max)
        return -1;
    *value = number;
    return 0;
}

//  An optional boolean: 0 if absent or a boolean, -1 if not.
static int
s_opt_bool (const zjq_msg_field_t *field, bool *value)
{
    if (!field->value)
        return 0;
    return zjq_msg_field_bool (field, value)? 0: -1;
}

//  A string without NUL bytes (as zjq_msg_get_str); false if not one.
static bool
s_str (const zjq_msg_field_t *field, const char **ptr, size_t *len)
{
    const msgpack_object *object = field->value;
    if (!object || object->type != MSGPACK_OBJECT_STR
    ||  memchr (object->via.str.ptr, 0, object->via.str.size))
        return false;
    *ptr = object->via.str.ptr;
    *len = object->via.str.size;
    return true;
}

//  A string of at most size - 1 bytes copied into buf; NULL if object is
//  no string or too long.
static const char *
s_copy (const zjq_msg_field_t *field, char *buf, size_t size)
{
    const char *ptr;
    size_t len;
    if (!s_str (field, &ptr, &len) || len >= size)
        return NULL;
    memcpy (buf, ptr, len);
    buf [len] = 0;
    return buf;
}

//  A job id: copied into buf when it fits (any real id does), else the
//  message's own copy (a longer one finds no job, but is reported as sent).
static const char *
s_id (zjq_msg_t *msg, const zjq_msg_field_t *field, char *buf, size_t size)
{
    const char *id = s_copy (field, buf, size);
    return id? id: (field->value? zjq_msg_field_str (msg, field): NULL);
}


//  --------------------------------------------------------------------------
//  Single fields

bool
zjq_request_has_req (zjq_msg_t *msg)
{
    const msgpack_object *req = zjq_msg_get (msg, "req");
    return req && (req->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                || req->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
}

int
zjq_request_opt_int (zjq_msg_t *msg, const char *key, int64_t min, int64_t max, int64_t *value)
{
    zjq_msg_field_t field = { .value = zjq_msg_get (msg, key) };
    return s_opt_int (&field, min, max, value);
}

int
zjq_request_opt_bool (zjq_msg_t *msg, const char *key, bool *value)
{
    zjq_msg_field_t field = { .value = zjq_msg_get (msg, key) };
    return s_opt_bool (&field, value);
}

int
zjq_request_opt_str (zjq_msg_t *msg, const char *key, size_t max_len, const char **value)
{
    *value = NULL;
    if (!zjq_msg_has (msg, key))
        return 0;
    *value = zjq_msg_get_str (msg, key);
    return (*value && strlen (*value) <= max_len)? 0: -1;
}

static bool
s_is_int (const zjq_msg_field_t *field)
{
    const msgpack_object *object = field->value;
    return object && (object->type == MSGPACK_OBJECT_POSITIVE_INTEGER
                   || object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
}


//  --------------------------------------------------------------------------
//  SUBMIT

enum { S_SUB_REQ, S_SUB_QUEUE, S_SUB_PRIORITY, S_SUB_MAX_ATTEMPTS, S_SUB_JOB_TIMEOUT,
       S_SUB_RESULT_TTL, S_SUB_KEY, S_SUB_NOTIFY, S_SUB_PROGRESS, S_SUB_COUNT };

static const s_name_t s_submit_names [S_SUB_COUNT] = {
    S_NAME ("req"), S_NAME ("queue"), S_NAME ("priority"), S_NAME ("max_attempts"),
    S_NAME ("job_timeout_ms"), S_NAME ("result_ttl_ms"), S_NAME ("key"), S_NAME ("notify"),
    S_NAME ("progress")
};

//  The first bad option of a SUBMIT, in the order they were always checked
static const char *
s_submit_options (const zjq_msg_field_t *fields, zjq_submit_req_t *req)
{
    if (s_opt_int (&fields [S_SUB_PRIORITY], -1000, 1000, &req->priority))
        return "field 'priority' must be an integer from -1000 to 1000";
    if (s_opt_int (&fields [S_SUB_MAX_ATTEMPTS], 1, 1000, &req->max_attempts))
        return "field 'max_attempts' must be an integer from 1 to 1000";
    if (s_opt_int (&fields [S_SUB_JOB_TIMEOUT], 1, INT64_MAX, &req->job_timeout_ms))
        return "field 'job_timeout_ms' must be an integer > 0";
    if (s_opt_int (&fields [S_SUB_RESULT_TTL], 1, INT64_MAX, &req->result_ttl_ms))
        return "field 'result_ttl_ms' must be an integer > 0";
    if (fields [S_SUB_KEY].value) {
        req->key = s_copy (&fields [S_SUB_KEY], req->key_buf, sizeof (req->key_buf));
        if (!req->key || !*req->key)
            return "field 'key' must be a string of 1-256 bytes";
    }
    if (s_opt_bool (&fields [S_SUB_NOTIFY], &req->notify))
        return "field 'notify' must be a boolean";
    if (s_opt_bool (&fields [S_SUB_PROGRESS], &req->progress))
        return "field 'progress' must be a boolean";
    return NULL;
}

void
zjq_submit_parse (zjq_msg_t *msg, zjq_submit_req_t *req)
{
    assert (msg && req);
    zjq_msg_field_t fields [S_SUB_COUNT];
    s_scan (msg, s_submit_names, S_SUB_COUNT, fields);
    req->has_req = s_is_int (&fields [S_SUB_REQ]);
    req->key = NULL;
    req->notify = req->progress = false;
    req->queue = NULL;
    req->queue_problem = NULL;
    const char *name;
    size_t len;
    if (!s_str (&fields [S_SUB_QUEUE], &name, &len))
        req->queue_problem = "missing or invalid field 'queue' (a string)";
    else
    if (!zjq_proto_queue_name_validn (name, len))
        req->queue_problem = "invalid queue name: use 1-128 characters of A-Z a-z 0-9 _ . : -";
    else {
        memcpy (req->queue_buf, name, len);
        req->queue_buf [len] = 0;
        req->queue = req->queue_buf;
    }
    req->problem = s_submit_options (fields, req);
}


//  --------------------------------------------------------------------------
//  STATUS, RESULT, CANCEL

enum { S_JOB_REQ, S_JOB_ID, S_JOB_WAIT, S_JOB_PROGRESS, S_JOB_COUNT };

static const s_name_t s_job_names [S_JOB_COUNT] = {
    S_NAME ("req"), S_NAME ("id"), S_NAME ("wait"), S_NAME ("progress")
};

void
zjq_job_req_parse (zjq_msg_t *msg, zjq_job_req_t *req)
{
    assert (msg && req);
    zjq_msg_field_t fields [S_JOB_COUNT];
    s_scan (msg, s_job_names, S_JOB_COUNT, fields);
    req->has_req = s_is_int (&fields [S_JOB_REQ]);
    req->id = s_id (msg, &fields [S_JOB_ID], req->id_buf, sizeof (req->id_buf));
    req->wait = req->progress = false;
    req->flags_bad = s_opt_bool (&fields [S_JOB_WAIT], &req->wait)
                  || s_opt_bool (&fields [S_JOB_PROGRESS], &req->progress);
}


//  --------------------------------------------------------------------------
//  READY

enum { S_RDY_WORKER_ID, S_RDY_QUEUES, S_RDY_CAPACITY, S_RDY_HEARTBEAT, S_RDY_HOST, S_RDY_PID,
       S_RDY_VERSION, S_RDY_COUNT };

static const s_name_t s_ready_names [S_RDY_COUNT] = {
    S_NAME ("worker_id"), S_NAME ("queues"), S_NAME ("capacity"), S_NAME ("heartbeat_ms"),
    S_NAME ("host"), S_NAME ("pid"), S_NAME ("version")
};

//  An optional text of at most ZJQ_TEXT_MAX bytes into buf: 0, or -1 if
//  present and not such a string.
static int
s_opt_text (const zjq_msg_field_t *field, char *buf, size_t size, const char **value)
{
    *value = NULL;
    if (!field->value)
        return 0;
    *value = s_copy (field, buf, size);
    return *value? 0: -1;
}

static const char *
s_ready_problem (const zjq_msg_field_t *fields, zjq_ready_req_t *req)
{
    req->worker_id = s_copy (&fields [S_RDY_WORKER_ID], req->worker_id_buf,
                             sizeof (req->worker_id_buf));
    if (!req->worker_id || !*req->worker_id)
        return "missing or invalid field 'worker_id' (a string of 1-256 bytes)";
    const msgpack_object *queues = fields [S_RDY_QUEUES].value;
    if (!queues || queues->type != MSGPACK_OBJECT_ARRAY
    ||  queues->via.array.size < 1 || queues->via.array.size > ZJQ_WORKER_QUEUES)
        return "missing or invalid field 'queues' (an array of 1-64 queue names)";
    req->queues = queues;
    if (!s_int (&fields [S_RDY_CAPACITY], &req->capacity)
    ||  req->capacity < 1 || req->capacity > 10000)
        return "missing or invalid field 'capacity' (an integer from 1 to 10000)";
    if (!s_int (&fields [S_RDY_HEARTBEAT], &req->heartbeat_ms)
    ||  req->heartbeat_ms < 100 || req->heartbeat_ms > 60000)
        return "missing or invalid field 'heartbeat_ms' (an integer from 100 to 60000)";
    if (s_opt_text (&fields [S_RDY_HOST], req->host_buf, sizeof (req->host_buf), &req->host))
        return "invalid field 'host' (a string of at most 256 bytes)";
    if (s_opt_int (&fields [S_RDY_PID], 0, INT64_MAX, &req->pid))
        return "invalid field 'pid' (an integer >= 0)";
    if (s_opt_text (&fields [S_RDY_VERSION], req->version_buf, sizeof (req->version_buf),
                    &req->version))
        return "invalid field 'version' (a string of at most 256 bytes)";
    return NULL;
}

void
zjq_ready_parse (zjq_msg_t *msg, zjq_ready_req_t *req)
{
    assert (msg && req);
    zjq_msg_field_t fields [S_RDY_COUNT];
    s_scan (msg, s_ready_names, S_RDY_COUNT, fields);
    req->queues = NULL;
    req->capacity = req->heartbeat_ms = req->pid = 0;
    req->host = req->version = NULL;
    req->problem = s_ready_problem (fields, req);
}


//  --------------------------------------------------------------------------
//  WORK_RESULT

enum { S_WR_ID, S_WR_ATTEMPT, S_WR_STATUS, S_WR_ERROR, S_WR_EXIT_CODE, S_WR_SIGNAL,
       S_WR_DURATION, S_WR_COUNT };

static const s_name_t s_work_result_names [S_WR_COUNT] = {
    S_NAME ("id"), S_NAME ("attempt"), S_NAME ("status"), S_NAME ("error"),
    S_NAME ("exit_code"), S_NAME ("signal"), S_NAME ("duration_ms")
};

//  The status word, or -1
static int
s_work_status (const zjq_msg_field_t *field)
{
    static const char *words [] = { "ok", "error", "cancelled", "returned" };
    const char *ptr;
    size_t len;
    if (!s_str (field, &ptr, &len))
        return -1;
    for (int index = 0; index < 4; index++)
        if (strlen (words [index]) == len && memcmp (words [index], ptr, len) == 0)
            return index;
    return -1;
}

static const char *
s_work_result_problem (zjq_msg_t *msg, const zjq_msg_field_t *fields,
                       zjq_work_result_req_t *req)
{
    req->id = s_id (msg, &fields [S_WR_ID], req->id_buf, sizeof (req->id_buf));
    if (!req->id)
        return "WORK_RESULT: missing or invalid field 'id' (a string)";
    if (!s_int (&fields [S_WR_ATTEMPT], &req->attempt) || req->attempt < 1
    ||  req->attempt > ZJQ_JOB_ATTEMPTS_MAX)
        return "WORK_RESULT: missing or invalid field 'attempt'";
    int status = s_work_status (&fields [S_WR_STATUS]);
    if (status < 0)
        return "WORK_RESULT: field 'status' must be 'ok', 'error', 'cancelled' or 'returned'";
    req->status = (zjq_work_status_t) status;
    if (fields [S_WR_ERROR].value && !s_str (&fields [S_WR_ERROR], &req->error, &req->error_len))
        return "WORK_RESULT: field 'error' must be a string";
    if (s_opt_int (&fields [S_WR_EXIT_CODE], 0, 255, &req->exit_code)
    ||  s_opt_int (&fields [S_WR_SIGNAL], 1, 255, &req->signal)
    ||  s_opt_int (&fields [S_WR_DURATION], 0, INT64_MAX, &req->duration_ms))
        return "WORK_RESULT: fields 'exit_code' (0..255), 'signal' (1..255) and "
               "'duration_ms' (>= 0) must be integers";
    return NULL;
}

void
zjq_work_result_parse (zjq_msg_t *msg, zjq_work_result_req_t *req)
{
    assert (msg && req);
    zjq_msg_field_t fields [S_WR_COUNT];
    s_scan (msg, s_work_result_names, S_WR_COUNT, fields);
    req->attempt = 0;
    req->status = ZJQ_WORK_OK;
    req->error = NULL;
    req->error_len = 0;
    req->exit_code = -1;
    req->signal = 0;
    req->duration_ms = -1;
    req->problem = s_work_result_problem (msg, fields, req);
}


//  --------------------------------------------------------------------------
//  PROGRESS

enum { S_PR_ID, S_PR_ATTEMPT, S_PR_PROGRESS, S_PR_MESSAGE, S_PR_COUNT };

static const s_name_t s_progress_names [S_PR_COUNT] = {
    S_NAME ("id"), S_NAME ("attempt"), S_NAME ("progress"), S_NAME ("message")
};

//  A number (as zjq_msg_get_double): false if absent or not one.
static bool
s_double (const zjq_msg_field_t *field, double *value)
{
    return zjq_msg_field_double (field, value);
}

static const char *
s_progress_problem (zjq_msg_t *msg, const zjq_msg_field_t *fields, zjq_progress_req_t *req)
{
    req->id = s_id (msg, &fields [S_PR_ID], req->id_buf, sizeof (req->id_buf));
    if (!req->id)
        return "PROGRESS: missing or invalid field 'id' (a string)";
    if (!s_int (&fields [S_PR_ATTEMPT], &req->attempt))
        return "PROGRESS: missing or invalid field 'attempt'";
    if (!s_double (&fields [S_PR_PROGRESS], &req->progress)
    ||  !(req->progress >= 0 && req->progress <= 1))
        return "PROGRESS: field 'progress' must be a number from 0 to 1";
    if (s_opt_text (&fields [S_PR_MESSAGE], req->message_buf, sizeof (req->message_buf),
                    &req->message))
        return "PROGRESS: field 'message' must be a string of at most 256 bytes";
    return NULL;
}

void
zjq_progress_parse (zjq_msg_t *msg, zjq_progress_req_t *req)
{
    assert (msg && req);
    zjq_msg_field_t fields [S_PR_COUNT];
    s_scan (msg, s_progress_names, S_PR_COUNT, fields);
    req->attempt = 0;
    req->progress = 0;
    req->message = NULL;
    req->problem = s_progress_problem (msg, fields, req);
}


//  --------------------------------------------------------------------------
//  Self test

//  A received message with these fields (a msgpack map built by the caller)
static zjq_msg_t *
s_test_msg (int command, msgpack_sbuffer *fields)
{
    byte header [ZJQ_HEADER_SIZE] = {
        'Z', 'J', 'Q', ZJQ_PROTO_VERSION, ZJQ_ROLE_CLIENT, (byte) command };
    if (command >= ZJQ_CMD_READY && command <= ZJQ_CMD_DISCONNECT)
        header [4] = ZJQ_ROLE_WORKER;
    zframe_t *payload = zjq_proto_command_has_payload (command)? zframe_new ("x", 1): NULL;
    zjq_msg_t *msg = NULL;
    zjq_recv_t rc = zjq_msg_decode (header, sizeof (header), fields->data, fields->size,
                                    payload? &payload: NULL, &msg);
    zframe_destroy (&payload);
    assert (rc == ZJQ_RECV_OK);
    return msg;
}

static void
s_pack_str (msgpack_packer *packer, const char *text)
{
    msgpack_pack_str (packer, strlen (text));
    msgpack_pack_str_body (packer, text, strlen (text));
}

//  A SUBMIT with every option, a repeated key (the first counts)
static void
s_test_submit (void)
{
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 8);
    s_pack_str (&packer, "req");        msgpack_pack_int (&packer, 7);
    s_pack_str (&packer, "queue");      s_pack_str (&packer, "images");
    s_pack_str (&packer, "priority");   msgpack_pack_int (&packer, -5);
    s_pack_str (&packer, "priority");   msgpack_pack_int (&packer, 9);
    s_pack_str (&packer, "key");        s_pack_str (&packer, "k1");
    s_pack_str (&packer, "notify");     msgpack_pack_true (&packer);
    s_pack_str (&packer, "max_attempts"); msgpack_pack_int (&packer, 4);
    s_pack_str (&packer, "other");      msgpack_pack_nil (&packer);
    zjq_msg_t *msg = s_test_msg (ZJQ_CMD_SUBMIT, &buffer);
    zjq_submit_req_t submit = { .priority = 0, .max_attempts = 3, .job_timeout_ms = 10,
                                .result_ttl_ms = 20 };
    zjq_submit_parse (msg, &submit);
    assert (submit.has_req && !submit.problem && !submit.queue_problem);
    assert (streq (submit.queue, "images") && streq (submit.key, "k1"));
    assert (submit.priority == -5 && submit.max_attempts == 4);
    assert (submit.job_timeout_ms == 10 && submit.result_ttl_ms == 20);
    assert (submit.notify && !submit.progress);
    zjq_msg_destroy (&msg);
    msgpack_sbuffer_destroy (&buffer);
}

//  Problems keep their order: the queue, then the first bad option
static void
s_test_submit_problems (void)
{
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 3);
    s_pack_str (&packer, "progress");   msgpack_pack_int (&packer, 1);
    s_pack_str (&packer, "result_ttl_ms"); msgpack_pack_int (&packer, 0);
    s_pack_str (&packer, "queue");      s_pack_str (&packer, "bad name");
    zjq_msg_t *msg = s_test_msg (ZJQ_CMD_SUBMIT, &buffer);
    zjq_submit_req_t submit = { .priority = 0 };
    zjq_submit_parse (msg, &submit);
    assert (!submit.has_req && !submit.queue);
    assert (strstr (submit.queue_problem, "invalid queue name"));
    assert (streq (submit.problem, "field 'result_ttl_ms' must be an integer > 0"));
    zjq_msg_destroy (&msg);
    msgpack_sbuffer_destroy (&buffer);
}

//  RESULT by id
static void
s_test_job (void)
{
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 3);
    s_pack_str (&packer, "req");        msgpack_pack_int (&packer, 1);
    s_pack_str (&packer, "id");         s_pack_str (&packer, "abc-1");
    s_pack_str (&packer, "wait");       msgpack_pack_true (&packer);
    zjq_msg_t *msg = s_test_msg (ZJQ_CMD_RESULT, &buffer);
    zjq_job_req_t job;
    zjq_job_req_parse (msg, &job);
    assert (job.has_req && streq (job.id, "abc-1") && job.wait && !job.progress);
    assert (!job.flags_bad);
    zjq_msg_destroy (&msg);
    msgpack_sbuffer_destroy (&buffer);
}

//  READY
static void
s_test_ready (void)
{
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 5);
    s_pack_str (&packer, "worker_id");  s_pack_str (&packer, "w1");
    s_pack_str (&packer, "queues");     msgpack_pack_array (&packer, 1);
    s_pack_str (&packer, "q");
    s_pack_str (&packer, "capacity");   msgpack_pack_int (&packer, 4);
    s_pack_str (&packer, "heartbeat_ms"); msgpack_pack_int (&packer, 1000);
    s_pack_str (&packer, "host");       msgpack_pack_int (&packer, 1);
    zjq_msg_t *msg = s_test_msg (ZJQ_CMD_READY, &buffer);
    zjq_ready_req_t ready;
    zjq_ready_parse (msg, &ready);
    assert (streq (ready.problem, "invalid field 'host' (a string of at most 256 bytes)"));
    assert (streq (ready.worker_id, "w1") && ready.capacity == 4);
    zjq_msg_destroy (&msg);
    msgpack_sbuffer_destroy (&buffer);
}

//  WORK_RESULT
static void
s_test_work_result (void)
{
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 5);
    s_pack_str (&packer, "id");         s_pack_str (&packer, "abc-1");
    s_pack_str (&packer, "attempt");    msgpack_pack_int (&packer, 2);
    s_pack_str (&packer, "status");     s_pack_str (&packer, "error");
    s_pack_str (&packer, "error");      s_pack_str (&packer, "boom");
    s_pack_str (&packer, "exit_code");  msgpack_pack_int (&packer, 3);
    zjq_msg_t *msg = s_test_msg (ZJQ_CMD_WORK_RESULT, &buffer);
    zjq_work_result_req_t result;
    zjq_work_result_parse (msg, &result);
    assert (!result.problem && streq (result.id, "abc-1") && result.attempt == 2);
    assert (result.status == ZJQ_WORK_ERROR && result.error_len == 4);
    assert (memcmp (result.error, "boom", 4) == 0);
    assert (result.exit_code == 3 && result.signal == 0 && result.duration_ms == -1);
    zjq_msg_destroy (&msg);
    msgpack_sbuffer_destroy (&buffer);
}

//  PROGRESS
static void
s_test_progress (void)
{
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 4);
    s_pack_str (&packer, "id");         s_pack_str (&packer, "abc-1");
    s_pack_str (&packer, "attempt");    msgpack_pack_int (&packer, 1);
    s_pack_str (&packer, "progress");   msgpack_pack_double (&packer, 0.25);
    s_pack_str (&packer, "message");    s_pack_str (&packer, "a quarter");
    zjq_msg_t *msg = s_test_msg (ZJQ_CMD_PROGRESS, &buffer);
    zjq_progress_req_t update;
    zjq_progress_parse (msg, &update);
    assert (!update.problem && streq (update.id, "abc-1") && update.attempt == 1);
    assert (update.progress == 0.25 && streq (update.message, "a quarter"));
    zjq_msg_destroy (&msg);
    msgpack_sbuffer_destroy (&buffer);
}

//  A bad status is reported before a bad error
static void
s_test_work_result_order (void)
{
    msgpack_sbuffer buffer;
    msgpack_packer packer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 4);
    s_pack_str (&packer, "id");         s_pack_str (&packer, "abc-1");
    s_pack_str (&packer, "attempt");    msgpack_pack_int (&packer, 1);
    s_pack_str (&packer, "status");     s_pack_str (&packer, "fine");
    s_pack_str (&packer, "error");      msgpack_pack_int (&packer, 1);
    zjq_msg_t *msg = s_test_msg (ZJQ_CMD_WORK_RESULT, &buffer);
    zjq_work_result_req_t result;
    zjq_work_result_parse (msg, &result);
    assert (strstr (result.problem, "field 'status' must be"));
    zjq_msg_destroy (&msg);
    msgpack_sbuffer_destroy (&buffer);
}

void
zjq_request_test (bool verbose)
{
    (void) verbose;
    s_test_submit ();
    s_test_submit_problems ();
    s_test_job ();
    s_test_ready ();
    s_test_work_result ();
    s_test_progress ();
    s_test_work_result_order ();
}
