/*  zjq_wire.c: the command table of the zjq wire protocol. See zjq_wire.h
    and docs/protocol.md ("Commands"), which this table follows row for
    row: a new command gets its number there and its row here.           */

#include "zjq_wire.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>

#define s_FIELDS(list) list, sizeof (list) / sizeof (list [0])
#define s_NO_FIELDS    NULL, 0

//  Client requests
static const zjq_field_t s_submit [] = {
    { "req", ZJQ_FIELD_INT, false }, { "queue", ZJQ_FIELD_STR, false },
    { "priority", ZJQ_FIELD_INT, true }, { "max_attempts", ZJQ_FIELD_INT, true },
    { "job_timeout_ms", ZJQ_FIELD_INT, true }, { "result_ttl_ms", ZJQ_FIELD_INT, true },
    { "key", ZJQ_FIELD_STR, true }, { "notify", ZJQ_FIELD_BOOL, true },
    { "progress", ZJQ_FIELD_BOOL, true }
};
static const zjq_field_t s_req_id [] = {
    { "req", ZJQ_FIELD_INT, false }, { "id", ZJQ_FIELD_STR, false }
};
static const zjq_field_t s_result [] = {
    { "req", ZJQ_FIELD_INT, false }, { "id", ZJQ_FIELD_STR, false },
    { "wait", ZJQ_FIELD_BOOL, true }, { "progress", ZJQ_FIELD_BOOL, true }
};
static const zjq_field_t s_stats [] = {
    { "req", ZJQ_FIELD_INT, false }, { "histograms", ZJQ_FIELD_BOOL, true }
};
static const zjq_field_t s_req [] = {
    { "req", ZJQ_FIELD_INT, false }
};
static const zjq_field_t s_req_queue [] = {
    { "req", ZJQ_FIELD_INT, false }, { "queue", ZJQ_FIELD_STR, false }
};
static const zjq_field_t s_drain [] = {
    { "req", ZJQ_FIELD_INT, false }, { "off", ZJQ_FIELD_BOOL, true }
};
static const zjq_field_t s_dead_letters [] = {
    { "req", ZJQ_FIELD_INT, false }, { "queue", ZJQ_FIELD_STR, true },
    { "after", ZJQ_FIELD_STR, true }, { "after_ms", ZJQ_FIELD_INT, true },
    { "limit", ZJQ_FIELD_INT, true }
};
static const zjq_field_t s_retry [] = {         //  exactly one of id, queue
    { "req", ZJQ_FIELD_INT, false }, { "id", ZJQ_FIELD_STR, true },
    { "queue", ZJQ_FIELD_STR, true }
};
//  Worker messages
static const zjq_field_t s_ready [] = {
    { "worker_id", ZJQ_FIELD_STR, false }, { "queues", ZJQ_FIELD_ARRAY, false },
    { "capacity", ZJQ_FIELD_INT, false }, { "heartbeat_ms", ZJQ_FIELD_INT, false },
    { "host", ZJQ_FIELD_STR, true }, { "pid", ZJQ_FIELD_INT, true },
    { "version", ZJQ_FIELD_STR, true }
};
static const zjq_field_t s_work_result [] = {
    { "id", ZJQ_FIELD_STR, false }, { "attempt", ZJQ_FIELD_INT, false },
    { "status", ZJQ_FIELD_STR, false }, { "error", ZJQ_FIELD_STR, true },
    { "duration_ms", ZJQ_FIELD_INT, false }, { "exit_code", ZJQ_FIELD_INT, true },
    { "signal", ZJQ_FIELD_INT, true }
};
static const zjq_field_t s_progress [] = {
    { "id", ZJQ_FIELD_STR, false }, { "attempt", ZJQ_FIELD_INT, false },
    { "progress", ZJQ_FIELD_NUMBER, false }, { "message", ZJQ_FIELD_STR, true }
};
static const zjq_field_t s_disconnect [] = {    //  drain from a worker, reason from the broker
    { "drain", ZJQ_FIELD_BOOL, true }, { "reason", ZJQ_FIELD_STR, true }
};
//  Broker replies
static const zjq_field_t s_accepted [] = {
    { "req", ZJQ_FIELD_INT, false }, { "id", ZJQ_FIELD_STR, false },
    { "duplicate", ZJQ_FIELD_BOOL, true }
};
static const zjq_field_t s_rejected [] = {
    { "req", ZJQ_FIELD_INT, false }, { "code", ZJQ_FIELD_INT, false },
    { "message", ZJQ_FIELD_STR, false }
};
static const zjq_field_t s_error [] = {         //  no req for undecodable requests
    { "req", ZJQ_FIELD_INT, true }, { "code", ZJQ_FIELD_INT, false },
    { "message", ZJQ_FIELD_STR, false }
};
static const zjq_field_t s_job_status [] = {
    { "req", ZJQ_FIELD_INT, false }, { "id", ZJQ_FIELD_STR, false },
    { "queue", ZJQ_FIELD_STR, false }, { "state", ZJQ_FIELD_STR, false },
    { "attempt", ZJQ_FIELD_INT, false }, { "max_attempts", ZJQ_FIELD_INT, false },
    { "priority", ZJQ_FIELD_INT, false }, { "created_ms", ZJQ_FIELD_INT, false },
    { "started_ms", ZJQ_FIELD_INT, true }, { "finished_ms", ZJQ_FIELD_INT, true },
    { "expires_ms", ZJQ_FIELD_INT, true }, { "error", ZJQ_FIELD_STR, true },
    { "progress", ZJQ_FIELD_NUMBER, true }, { "progress_message", ZJQ_FIELD_STR, true },
    { "worker", ZJQ_FIELD_STR, true }, { "result_size", ZJQ_FIELD_INT, true },
    { "history", ZJQ_FIELD_ARRAY, true }, { "history_dropped", ZJQ_FIELD_INT, true },
    { "retries", ZJQ_FIELD_INT, true }
};
static const zjq_field_t s_job_result [] = {
    { "req", ZJQ_FIELD_INT, false }, { "id", ZJQ_FIELD_STR, false },
    { "state", ZJQ_FIELD_STR, false }, { "attempt", ZJQ_FIELD_INT, false },
    { "error", ZJQ_FIELD_STR, true }
};
static const zjq_field_t s_done [] = {
    { "id", ZJQ_FIELD_STR, false }, { "state", ZJQ_FIELD_STR, false },
    { "attempt", ZJQ_FIELD_INT, false }, { "error", ZJQ_FIELD_STR, true }
};
static const zjq_field_t s_stats_reply [] = {
    { "req", ZJQ_FIELD_INT, false }, { "stats", ZJQ_FIELD_MAP, false }
};
static const zjq_field_t s_pong [] = {
    { "req", ZJQ_FIELD_INT, false }, { "instance", ZJQ_FIELD_STR, false },
    { "version", ZJQ_FIELD_STR, false }
};
static const zjq_field_t s_reloaded [] = {
    { "req", ZJQ_FIELD_INT, false }, { "clients", ZJQ_FIELD_INT, false },
    { "workers", ZJQ_FIELD_INT, false }, { "admins", ZJQ_FIELD_INT, false }
};
static const zjq_field_t s_queue_state [] = {
    { "req", ZJQ_FIELD_INT, false }, { "queue", ZJQ_FIELD_STR, false },
    { "paused", ZJQ_FIELD_BOOL, false }, { "queued", ZJQ_FIELD_INT, false },
    { "running", ZJQ_FIELD_INT, false }, { "workers", ZJQ_FIELD_INT, false }
};
static const zjq_field_t s_drain_state [] = {
    { "req", ZJQ_FIELD_INT, false }, { "draining", ZJQ_FIELD_BOOL, false },
    { "drained", ZJQ_FIELD_BOOL, false }, { "queued", ZJQ_FIELD_INT, false },
    { "running", ZJQ_FIELD_INT, false }, { "paused_queued", ZJQ_FIELD_INT, false }
};
static const zjq_field_t s_dead_letter_list [] = {
    { "req", ZJQ_FIELD_INT, false }, { "total", ZJQ_FIELD_INT, false },
    { "bytes", ZJQ_FIELD_INT, false }, { "jobs", ZJQ_FIELD_ARRAY, false },
    { "next", ZJQ_FIELD_STR, true }, { "next_ms", ZJQ_FIELD_INT, true }
};
static const zjq_field_t s_retried [] = {
    { "req", ZJQ_FIELD_INT, false }, { "count", ZJQ_FIELD_INT, false },
    { "stopped", ZJQ_FIELD_STR, true }
};
static const zjq_field_t s_progress_update [] = {
    { "id", ZJQ_FIELD_STR, false }, { "attempt", ZJQ_FIELD_INT, false },
    { "progress", ZJQ_FIELD_NUMBER, false }, { "message", ZJQ_FIELD_STR, true }
};
//  Broker to worker
static const zjq_field_t s_job [] = {
    { "id", ZJQ_FIELD_STR, false }, { "attempt", ZJQ_FIELD_INT, false },
    { "queue", ZJQ_FIELD_STR, false }, { "timeout_ms", ZJQ_FIELD_INT, false }
};
static const zjq_field_t s_job_cancel [] = {
    { "id", ZJQ_FIELD_STR, false }, { "attempt", ZJQ_FIELD_INT, false },
    { "reason", ZJQ_FIELD_STR, false }
};
static const zjq_field_t s_heartbeat [] = {
    { "ping", ZJQ_FIELD_INT, true }, { "pong", ZJQ_FIELD_INT, true }
};
static const zjq_field_t s_credit [] = {
    { "capacity", ZJQ_FIELD_INT, false }
};
static const zjq_field_t s_batch [] = {
    { "count", ZJQ_FIELD_INT, false }
};

static const zjq_command_t s_commands [] = {
    { ZJQ_CMD_SUBMIT,       "SUBMIT",       "C",   true,  s_FIELDS (s_submit) },
    { ZJQ_CMD_STATUS,       "STATUS",       "C",   false, s_FIELDS (s_req_id) },
    { ZJQ_CMD_RESULT,       "RESULT",       "C",   false, s_FIELDS (s_result) },
    { ZJQ_CMD_CANCEL,       "CANCEL",       "C",   false, s_FIELDS (s_req_id) },
    { ZJQ_CMD_STATS,        "STATS",        "C",   false, s_FIELDS (s_stats) },
    { ZJQ_CMD_PING,         "PING",         "C",   false, s_FIELDS (s_req) },
    { ZJQ_CMD_RELOAD,       "RELOAD",       "C",   false, s_FIELDS (s_req) },
    { ZJQ_CMD_PAUSE,        "PAUSE",        "C",   false, s_FIELDS (s_req_queue) },
    { ZJQ_CMD_RESUME,       "RESUME",       "C",   false, s_FIELDS (s_req_queue) },
    { ZJQ_CMD_DRAIN,        "DRAIN",        "C",   false, s_FIELDS (s_drain) },
    { ZJQ_CMD_DEAD_LETTERS, "DEAD_LETTERS", "C",   false, s_FIELDS (s_dead_letters) },
    { ZJQ_CMD_RETRY,        "RETRY",        "C",   false, s_FIELDS (s_retry) },
    { ZJQ_CMD_ACCEPTED,     "ACCEPTED",     "B",   false, s_FIELDS (s_accepted) },
    { ZJQ_CMD_REJECTED,     "REJECTED",     "B",   false, s_FIELDS (s_rejected) },
    { ZJQ_CMD_JOB_STATUS,   "JOB_STATUS",   "B",   false, s_FIELDS (s_job_status) },
    { ZJQ_CMD_JOB_RESULT,   "JOB_RESULT",   "B",   true,  s_FIELDS (s_job_result) },
    { ZJQ_CMD_DONE,         "DONE",         "B",   true,  s_FIELDS (s_done) },
    { ZJQ_CMD_STATS_REPLY,  "STATS_REPLY",  "B",   false, s_FIELDS (s_stats_reply) },
    { ZJQ_CMD_PONG,         "PONG",         "B",   false, s_FIELDS (s_pong) },
    { ZJQ_CMD_RELOADED,     "RELOADED",     "B",   false, s_FIELDS (s_reloaded) },
    { ZJQ_CMD_QUEUE_STATE,  "QUEUE_STATE",  "B",   false, s_FIELDS (s_queue_state) },
    { ZJQ_CMD_DRAIN_STATE,  "DRAIN_STATE",  "B",   false, s_FIELDS (s_drain_state) },
    { ZJQ_CMD_DEAD_LETTER_LIST, "DEAD_LETTER_LIST", "B", false, s_FIELDS (s_dead_letter_list) },
    { ZJQ_CMD_RETRIED,      "RETRIED",      "B",   false, s_FIELDS (s_retried) },
    { ZJQ_CMD_PROGRESS_UPDATE, "PROGRESS_UPDATE", "B", false, s_FIELDS (s_progress_update) },
    { ZJQ_CMD_ERROR,        "ERROR",        "B",   false, s_FIELDS (s_error) },
    { ZJQ_CMD_READY,        "READY",        "W",   false, s_FIELDS (s_ready) },
    { ZJQ_CMD_HEARTBEAT,    "HEARTBEAT",    "WB",  false, s_FIELDS (s_heartbeat) },
    { ZJQ_CMD_WORK_RESULT,  "WORK_RESULT",  "W",   true,  s_FIELDS (s_work_result) },
    { ZJQ_CMD_PROGRESS,     "PROGRESS",     "W",   false, s_FIELDS (s_progress) },
    { ZJQ_CMD_DISCONNECT,   "DISCONNECT",   "WB",  false, s_FIELDS (s_disconnect) },
    { ZJQ_CMD_CREDIT,       "CREDIT",       "W",   false, s_FIELDS (s_credit) },
    { ZJQ_CMD_JOB,          "JOB",          "B",   true,  s_FIELDS (s_job) },
    { ZJQ_CMD_JOB_CANCEL,   "JOB_CANCEL",   "B",   false, s_FIELDS (s_job_cancel) },
    { ZJQ_CMD_BATCH,        "BATCH",        "CWB", true,  s_FIELDS (s_batch) },
};
#define s_COMMAND_COUNT (sizeof (s_commands) / sizeof (s_commands [0]))

//  Command code -> its row, built from the table when the program (or the
//  library) is loaded, so a lookup is one load and the codes are written
//  once, in the table
static const zjq_command_t *s_by_code [256];

__attribute__ ((constructor)) static void
s_index_commands (void)
{
    for (size_t index = 0; index < s_COMMAND_COUNT; index++)
        s_by_code [s_commands [index].code] = &s_commands [index];
}

const zjq_command_t *
zjq_proto_command (int code)
{
    return code >= 0 && code <= 255? s_by_code [code]: NULL;
}

const zjq_command_t *
zjq_proto_commands (size_t *count_p)
{
    assert (count_p);
    *count_p = s_COMMAND_COUNT;
    return s_commands;
}

bool
zjq_proto_command_sent_by (const zjq_command_t *command, int role)
{
    return command && role > 0 && role < 256 && strchr (command->senders, role);
}

const zjq_field_t *
zjq_proto_command_field (const zjq_command_t *command, const char *key, size_t key_size)
{
    if (!command || !key)
        return NULL;
    for (size_t index = 0; index < command->field_count; index++) {
        const char *name = command->fields [index].name;
        if (strlen (name) == key_size && memcmp (name, key, key_size) == 0)
            return &command->fields [index];
    }
    return NULL;
}

const char *
zjq_proto_command_name (int command)
{
    const zjq_command_t *row = zjq_proto_command (command);
    return row? row->name: NULL;
}

bool
zjq_proto_command_has_payload (int command)
{
    const zjq_command_t *row = zjq_proto_command (command);
    return row && row->payload;
}


//  --------------------------------------------------------------------------
//  Self test

void
zjq_wire_test (bool verbose)
{
    //  Every row is found by its code, and codes and names are unique
    size_t count = 0;
    const zjq_command_t *rows = zjq_proto_commands (&count);
    for (size_t index = 0; index < count; index++) {
        const zjq_command_t *row = &rows [index];
        assert (zjq_proto_command (row->code) == row);
        assert (strcmp (zjq_proto_command_name (row->code), row->name) == 0);
        assert (zjq_proto_command_has_payload (row->code) == row->payload);
        assert (*row->senders);
        for (size_t other = index + 1; other < count; other++)
            assert (rows [other].code != row->code && strcmp (rows [other].name, row->name) != 0);
        //  Field names are unique within a row
        for (size_t field = 0; field < row->field_count; field++) {
            const zjq_field_t *entry = &row->fields [field];
            assert (zjq_proto_command_field (row, entry->name, strlen (entry->name)) == entry);
        }
    }
    //  Every code of zjq_wire.h has its row
    const int codes [] = {
        ZJQ_CMD_SUBMIT, ZJQ_CMD_STATUS, ZJQ_CMD_RESULT, ZJQ_CMD_CANCEL, ZJQ_CMD_STATS, ZJQ_CMD_PING,
        ZJQ_CMD_RELOAD, ZJQ_CMD_PAUSE, ZJQ_CMD_RESUME, ZJQ_CMD_DRAIN, ZJQ_CMD_DEAD_LETTERS,
        ZJQ_CMD_RETRY, ZJQ_CMD_READY, ZJQ_CMD_HEARTBEAT, ZJQ_CMD_WORK_RESULT, ZJQ_CMD_PROGRESS,
        ZJQ_CMD_DISCONNECT, ZJQ_CMD_ACCEPTED, ZJQ_CMD_REJECTED, ZJQ_CMD_JOB_STATUS,
        ZJQ_CMD_JOB_RESULT, ZJQ_CMD_DONE, ZJQ_CMD_STATS_REPLY, ZJQ_CMD_PONG, ZJQ_CMD_RELOADED,
        ZJQ_CMD_QUEUE_STATE, ZJQ_CMD_DRAIN_STATE, ZJQ_CMD_DEAD_LETTER_LIST, ZJQ_CMD_RETRIED,
        ZJQ_CMD_PROGRESS_UPDATE, ZJQ_CMD_ERROR, ZJQ_CMD_JOB, ZJQ_CMD_JOB_CANCEL, ZJQ_CMD_BATCH,
        ZJQ_CMD_CREDIT
    };
    assert (sizeof (codes) / sizeof (codes [0]) == count);
    for (size_t index = 0; index < count; index++)
        assert (zjq_proto_command (codes [index]) && zjq_proto_command (codes [index])->code == codes [index]);
    for (size_t index = 0; index < count; index++)
        for (const char *role = rows [index].senders; *role; role++)
            assert (*role == ZJQ_ROLE_CLIENT || *role == ZJQ_ROLE_WORKER || *role == ZJQ_ROLE_BROKER);
    size_t known = 0;
    for (int code = -1; code < 300; code++)
        if (zjq_proto_command (code))
            known++;
    assert (known == count);
    assert (zjq_proto_command_name (0x7e) == NULL && !zjq_proto_command_has_payload (0x7e));

    //  Senders and fields
    const zjq_command_t *submit = zjq_proto_command (ZJQ_CMD_SUBMIT);
    assert (submit && submit->payload && strcmp (submit->name, "SUBMIT") == 0);
    assert (zjq_proto_command_sent_by (submit, ZJQ_ROLE_CLIENT));
    assert (!zjq_proto_command_sent_by (submit, ZJQ_ROLE_WORKER));
    assert (!zjq_proto_command_sent_by (submit, 0));
    assert (!zjq_proto_command_sent_by (NULL, ZJQ_ROLE_CLIENT));
    assert (zjq_proto_command_sent_by (zjq_proto_command (ZJQ_CMD_HEARTBEAT), ZJQ_ROLE_BROKER));
    const zjq_field_t *queue = zjq_proto_command_field (submit, "queue!", 5);
    assert (queue && queue->type == ZJQ_FIELD_STR && !queue->optional);
    assert (zjq_proto_command_field (submit, "queu", 4) == NULL);
    assert (zjq_proto_command_field (submit, "queues", 6) == NULL);
    assert (zjq_proto_command_field (zjq_proto_command (ZJQ_CMD_HEARTBEAT), "req", 3) == NULL);
    if (verbose)
        printf ("(%zu commands) ", count);
}
