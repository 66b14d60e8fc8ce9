/*  zjq_wire.h: the facts of the zjq wire protocol (version 1): the frame
    layout, the roles, the limits, the command codes, and the command table
    that says for each command its name, who may send it, the fields it
    carries and whether it has a payload.

    Every zjq message is 2 or 3 ZeroMQ frames (after the routing id that a
    ROUTER socket adds or strips):

        frame 0  header   6 bytes: 'Z' 'J' 'Q' VERSION ROLE COMMAND
        frame 1  fields   a msgpack map with string keys (metadata)
        frame 2  payload  raw bytes, only for commands that carry one

    ROLE says who sent it: 'C' client, 'W' worker, 'B' broker.
    docs/protocol.md is the normative description; keep both in step.

    This is the lowest layer of the codec: it knows nothing of messages or
    sockets. The message class (zjq_msg.h) decodes and checks headers with
    this table; the broker builds its dispatch (command -> handler, rights)
    on it. Callers include zjq_proto.h, which includes this header. The
    functions keep the zjq_proto_ prefix they always had: they are the
    protocol's, this file only holds them below the message class.       */

#ifndef ZJQ_WIRE_H_INCLUDED
#define ZJQ_WIRE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZJQ_PROTO_VERSION      1
#define ZJQ_HEADER_SIZE        6
#define ZJQ_MAX_FIELDS_SIZE    (64 * 1024)     //  bound on frame 1
#define ZJQ_MAX_FIELDS         64              //  bound on map entries
#define ZJQ_USER_ID_MAX        64              //  longest "User-Id" kept

//  Roles (byte 4 of the header)
#define ZJQ_ROLE_CLIENT  'C'
#define ZJQ_ROLE_WORKER  'W'
#define ZJQ_ROLE_BROKER  'B'

//  Commands (byte 5 of the header). Each code is unique across directions,
//  so a message is self-describing. P = carries a payload frame. A new
//  command takes its number in docs/protocol.md and gets a row in the
//  table (zjq_wire.c).
//  client -> broker
#define ZJQ_CMD_SUBMIT        0x01   //  P  queue + options
#define ZJQ_CMD_STATUS        0x02   //     job id
#define ZJQ_CMD_RESULT        0x03   //     job id, wait flag
#define ZJQ_CMD_CANCEL        0x04   //     job id
#define ZJQ_CMD_STATS         0x05
#define ZJQ_CMD_PING          0x06
#define ZJQ_CMD_RELOAD        0x07   //     admin: re-read the CURVE allow-lists
#define ZJQ_CMD_PAUSE         0x08   //     admin: stop dispatching a queue
#define ZJQ_CMD_RESUME        0x09   //     admin: dispatch a paused queue again
#define ZJQ_CMD_DRAIN         0x0A   //     admin: stop accepting jobs, finish the rest
#define ZJQ_CMD_DEAD_LETTERS  0x0B   //     admin: list failed jobs (a page)
#define ZJQ_CMD_RETRY         0x0C   //     admin: requeue failed jobs
//  worker -> broker
#define ZJQ_CMD_READY         0x11   //     queues, capacity, host, pid, ...
#define ZJQ_CMD_HEARTBEAT     0x12   //     (also broker -> worker)
#define ZJQ_CMD_WORK_RESULT   0x13   //  P  job id, attempt, status
#define ZJQ_CMD_PROGRESS      0x14   //     job id, attempt, fraction, text
#define ZJQ_CMD_DISCONNECT    0x15   //     (also broker -> worker)
#define ZJQ_CMD_CREDIT        0x16   //     the worker's credit changed: capacity
//  broker -> client
#define ZJQ_CMD_ACCEPTED      0x41   //     job id
#define ZJQ_CMD_REJECTED      0x42   //     code, message
#define ZJQ_CMD_JOB_STATUS    0x43   //     job description
#define ZJQ_CMD_JOB_RESULT    0x44   //  P  finished job + result payload
#define ZJQ_CMD_DONE          0x45   //  P  unsolicited completion notice
#define ZJQ_CMD_STATS_REPLY   0x46   //     stats map
#define ZJQ_CMD_PONG          0x47   //     broker instance, version
#define ZJQ_CMD_RELOADED      0x48   //     keys now allowed, per role
#define ZJQ_CMD_QUEUE_STATE   0x49   //     a queue's paused flag and counts
#define ZJQ_CMD_DRAIN_STATE   0x4A   //     draining flag and what is left
#define ZJQ_CMD_DEAD_LETTER_LIST 0x4B   //  a page of failed jobs
#define ZJQ_CMD_RETRIED       0x4C   //     jobs requeued
#define ZJQ_CMD_PROGRESS_UPDATE 0x4D //     unsolicited: a watched job's progress
#define ZJQ_CMD_ERROR         0x4F   //     code, message
//  broker -> worker
#define ZJQ_CMD_JOB           0x51   //  P  job id, attempt, queue, timeout
#define ZJQ_CMD_JOB_CANCEL    0x52   //     job id, attempt, reason
//  any role
#define ZJQ_CMD_BATCH         0x60   //  P  several messages in one (zjq_batch.h)

//  Queue names: 1-128 bytes of [A-Za-z0-9_.:-] (docs/protocol.md).
#define ZJQ_QUEUE_NAME_MAX 128

//  --- The command table

//  The msgpack type a field has on the wire (docs/protocol.md, "Commands")
typedef enum {
    ZJQ_FIELD_INT,              //  msgpack int, signed or unsigned
    ZJQ_FIELD_STR,              //  msgpack str without NUL bytes
    ZJQ_FIELD_BOOL,             //  msgpack boolean
    ZJQ_FIELD_NUMBER,           //  msgpack float or int
    ZJQ_FIELD_ARRAY,            //  msgpack array (of str for "queues")
    ZJQ_FIELD_MAP               //  msgpack map
} zjq_field_type_t;

//  One field a command carries
typedef struct {
    const char *name;           //  the key in the fields map
    zjq_field_type_t type;      //  its value's type
    bool optional;              //  a sender may leave it out
} zjq_field_t;

//  One command: everything the wire says about it. Rows are constant and
//  live as long as the program.
typedef struct {
    int code;                   //  ZJQ_CMD_*, byte 5 of the header
    const char *name;           //  "SUBMIT", as in docs/protocol.md
    const char *senders;        //  roles that may send it: "C", "WB", "CWB"
    bool payload;               //  carries a payload frame (P)
    const zjq_field_t *fields;  //  the fields it carries, field_count of them
    size_t field_count;         //    (receivers ignore fields not listed)
} zjq_command_t;

//  The row of a command code, or NULL for a code the protocol does not
//  have. Constant time (the decoder asks for every message).
const zjq_command_t *
    zjq_proto_command (int code);

//  Every row, in the order of docs/protocol.md; *count_p gets how many.
//  For building tables indexed by command (the broker's dispatch).
const zjq_command_t *
    zjq_proto_commands (size_t *count_p);

//  True if role ('C', 'W', 'B') may send the command. False for NULL.
bool
    zjq_proto_command_sent_by (const zjq_command_t *command, int role);

//  The command's field named by key_size bytes at key (need not be
//  NUL-terminated), or NULL if it carries no such field.
const zjq_field_t *
    zjq_proto_command_field (const zjq_command_t *command, const char *key, size_t key_size);

//  Return the command's name ("SUBMIT"), or NULL for an unknown code.
const char *
    zjq_proto_command_name (int command);

//  Whether a command carries a payload frame (false for an unknown code)
bool
    zjq_proto_command_has_payload (int command);

//  Self test
void
    zjq_wire_test (bool verbose);

#endif
