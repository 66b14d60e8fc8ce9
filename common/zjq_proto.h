/*  zjq_proto.h: the zjq wire protocol (version 1) and its message codec.

    Every zjq message is 2 or 3 ZeroMQ frames (after the routing id that a
    ROUTER socket adds or strips):

        frame 0  header   6 bytes: 'Z' 'J' 'Q' VERSION ROLE COMMAND
        frame 1  fields   a msgpack map with string keys (metadata)
        frame 2  payload  raw bytes, only for commands that carry one

    ROLE says who sent it: 'C' client, 'W' worker, 'B' broker. The payload is
    never re-encoded: the broker moves the frame it received. docs/protocol.md
    is the normative description; keep both in step.

    zjq_msg_t is one decoded or to-be-sent message. It is not thread-safe;
    use one per thread. Destroyed messages are kept for reuse in a small
    per-thread pool, so steady traffic does not allocate.                 */

#ifndef ZJQ_PROTO_H_INCLUDED
#define ZJQ_PROTO_H_INCLUDED

#include <czmq.h>
#include <msgpack.h>
#include "zjq_mp.h"
#include <stdbool.h>
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
//  so a message is self-describing. P = carries a payload frame.
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

//  True if name is a valid queue name (NULL is not).
bool
    zjq_proto_queue_name_valid (const char *name);
//  The same for len bytes that need not be NUL-terminated.
bool
    zjq_proto_queue_name_validn (const char *name, size_t len);

//  Return the command's name ("SUBMIT"), or NULL for an unknown code.
const char *
    zjq_proto_command_name (int command);

//  Result of zjq_msg_recv
typedef enum {
    ZJQ_RECV_OK = 0,            //  a well-formed message
    ZJQ_RECV_INTERRUPTED = -1,  //  nothing read (EINTR, EAGAIN, ETERM)
    ZJQ_RECV_MALFORMED = 1      //  frames were consumed but are not valid
} zjq_recv_t;

typedef struct _zjq_msg_t zjq_msg_t;

//  Create a message to send, with the given role and command.
zjq_msg_t *
    zjq_msg_new (int role, int command);

//  Destroy a message; idempotent; nulls the caller's pointer.
void
    zjq_msg_destroy (zjq_msg_t **self_p);

int
    zjq_msg_role (zjq_msg_t *self);
int
    zjq_msg_command (zjq_msg_t *self);
//  Protocol version from the header of a received message.
int
    zjq_msg_version (zjq_msg_t *self);

//  Routing id of a message received on, or to be sent through, a ROUTER:
//  its bytes (owned by the message) and *size_p, or NULL if none.
const byte *
    zjq_msg_routing_id (zjq_msg_t *self, size_t *size_p);
//  Set the routing id (copied; up to 256 bytes are kept).
void
    zjq_msg_set_routing_id (zjq_msg_t *self, const void *data, size_t size);

//  The "User-Id" property of a received message: what the ZAP handler
//  answered for the sender's connection (with CURVE, the broker's handler
//  gives the peer's public key in Z85). NULL without authentication, and
//  for messages that were built rather than received.
const char *
    zjq_msg_user_id (zjq_msg_t *self);

//  --- Fields, for messages being built. Each key is added once; the
//  encoder does not check for duplicates. Strings are copied.
void
    zjq_msg_put_str (zjq_msg_t *self, const char *key, const char *value);
void
    zjq_msg_put_strn (zjq_msg_t *self, const char *key, const char *value, size_t len);
void
    zjq_msg_put_int (zjq_msg_t *self, const char *key, int64_t value);
void
    zjq_msg_put_bool (zjq_msg_t *self, const char *key, bool value);
void
    zjq_msg_put_double (zjq_msg_t *self, const char *key, double value);
void
    zjq_msg_put_strlist (zjq_msg_t *self, const char *key, const char **values, size_t count);
//  Add a value that is already msgpack-encoded (a nested map, say).
void
    zjq_msg_put_packed (zjq_msg_t *self, const char *key, const void *data, size_t size);

//  --- Fields, for received messages. A missing key or a value of another
//  type counts as absent: the getter returns NULL or false and leaves *value
//  alone. Strings are NUL-terminated copies owned by the message; a string
//  containing a NUL byte counts as absent.
const char *
    zjq_msg_get_str (zjq_msg_t *self, const char *key);
bool
    zjq_msg_get_int (zjq_msg_t *self, const char *key, int64_t *value);
bool
    zjq_msg_get_bool (zjq_msg_t *self, const char *key, bool *value);
//  Accepts a msgpack float or integer.
bool
    zjq_msg_get_double (zjq_msg_t *self, const char *key, double *value);
//  The raw msgpack value for a key (for arrays and maps), or NULL.
const msgpack_object *
    zjq_msg_get (zjq_msg_t *self, const char *key);
//  --- Reading msgpack values outside a message: zjq_mp_map_get,
//  zjq_mp_text, zjq_mp_number are in zjq_mp.h (included above)
//  The whole fields map of a received message (NULL for one being built).
const msgpack_object *
    zjq_msg_fields (zjq_msg_t *self);
//  Number of fields in a received message
size_t
    zjq_msg_field_count (zjq_msg_t *self);
//  Whether a key is present at all
bool
    zjq_msg_has (zjq_msg_t *self, const char *key);

//  --- Payload frame. A message has a payload frame when one was set or
//  received. set_payload takes ownership and nulls the caller's pointer.
void
    zjq_msg_set_payload (zjq_msg_t *self, zframe_t **frame_p);
//  Copy bytes into a new payload frame.
void
    zjq_msg_set_payload_mem (zjq_msg_t *self, const void *data, size_t size);
//  Send this frame as the payload without copying its bytes (libzmq
//  counts references to them). The frame stays the caller's, unchanged,
//  and must outlive the message unless zjq_msg_own_payload is called.
void
    zjq_msg_set_payload_shared (zjq_msg_t *self, zframe_t *frame);
//  Send these bytes as the payload; they are copied only when the message
//  is sent or a frame is asked for, so they must stay unchanged until then
//  unless zjq_msg_own_payload is called.
void
    zjq_msg_set_payload_borrowed (zjq_msg_t *self, const void *data, size_t size);
//  Make a shared or borrowed payload the message's own (a copy), for a message that
//  may outlive the frame. Returns 0, or -1 if out of memory (the message
//  then has no payload).
int
    zjq_msg_own_payload (zjq_msg_t *self);
//  The payload frame (still owned by the message or shared), or NULL.
zframe_t *
    zjq_msg_payload (zjq_msg_t *self);
//  Take the payload frame; the caller owns it; NULL if none.
zframe_t *
    zjq_msg_take_payload (zjq_msg_t *self);
//  The payload's bytes and size (0 if none), without making a frame for
//  them; valid while the message lives and its payload is not changed.
const void *
    zjq_msg_payload_data (zjq_msg_t *self, size_t *size_p);

//  Encode and send the message on a socket, then destroy it (also on
//  error). With a routing id set, it is sent first (ROUTER). Sends with
//  ZMQ_DONTWAIT when dontwait is true. Returns 0, or -1 with errno set
//  (EAGAIN when dontwait and the socket would block; the message is still
//  destroyed).
int
    zjq_msg_send (zjq_msg_t **self_p, void *socket, bool dontwait);

//  Receive one whole message from a socket (a zsock_t or a raw libzmq
//  socket). from_router says a routing id frame comes first. Non-blocking
//  when dontwait is true. On ZJQ_RECV_OK or ZJQ_RECV_MALFORMED, *msg_p is a
//  new message the caller destroys: for a malformed one it holds whatever
//  could be read (the routing id at least, and role and command where the
//  header was valid) and zjq_msg_error () says what was wrong, and
//  zjq_msg_error_code () gives ZJQ_EPROTO, ZJQ_EVERSION or ZJQ_ECOMMAND.
//  The rest of a multipart message is always drained.
zjq_recv_t
    zjq_msg_recv (void *socket, bool from_router, bool dontwait, zjq_msg_t **msg_p);

//  For malformed messages: what was wrong, or NULL.
const char *
    zjq_msg_error (zjq_msg_t *self);
int
    zjq_msg_error_code (zjq_msg_t *self);

//  Decode from frames already read (without the routing id): header,
//  fields, optional payload (payload_p taken and nulled). Used by recv and
//  by tests. Returns ZJQ_RECV_OK or ZJQ_RECV_MALFORMED, and always a
//  message in *msg_p.
zjq_recv_t
    zjq_msg_decode (const void *header, size_t header_size,
                    const void *fields, size_t fields_size,
                    zframe_t **payload_p, zjq_msg_t **msg_p);

//  Encode the header and fields into caller-supplied chunks (for tests and
//  the journal). The caller destroys both.
int
    zjq_msg_encode (zjq_msg_t *self, zchunk_t **header_p, zchunk_t **fields_p);

//  --- For zjq_batch. The packed fields of a message being built (owned
//  by the message).
const void *
    zjq_msg_fields_data (zjq_msg_t *self, size_t *size_p);
//  A new malformed message (EPROTO, reason) from a BATCH's sender.
zjq_msg_t *
    zjq_msg_batch_malformed (zjq_msg_t *batch, const char *reason);
//  The records frame of a received BATCH, or NULL.
const void *
    zjq_msg_batch_records (zjq_msg_t *self, size_t *size_p);
//  Decode one message out of a received BATCH's records: command, its
//  fields and (for commands that carry one) its payload, at these offsets
//  of the records frame, which the message keeps a reference to. It gets
//  the batch's role, version, routing id and User-Id, and is checked like
//  a message of its own. Returns ZJQ_RECV_OK or ZJQ_RECV_MALFORMED, and
//  always a message in *msg_p.
zjq_recv_t
    zjq_msg_decode_batched (zjq_msg_t *batch, int command, size_t fields_offset,
                            size_t fields_size, size_t payload_offset, size_t payload_size,
                            zjq_msg_t **msg_p);

//  Read one event from a socket monitor (the PAIR connected to the
//  endpoint given to zmq_socket_monitor), without blocking: the
//  ZMQ_EVENT_* and its value. Returns false if none was waiting.
bool
    zjq_monitor_recv (void *monitor, int *event, uint32_t *value);

//  Whether a command carries a payload frame
bool
    zjq_proto_command_has_payload (int command);

//  Self test
void
    zjq_proto_test (bool verbose);

#endif
