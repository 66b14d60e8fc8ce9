/*  zjq_msg.h: one zjq message (zjq_msg_t), decoded or to be sent: its
    header (role, command), its fields, its payload, and how it travels
    (send, receive, decode from frames, and the records of a BATCH).

    The frame layout, the commands and who may send them are in zjq_wire.h;
    the bytes of the fields frame are read and written by zjq_fields.h.
    Callers include zjq_proto.h, which includes this header.

    zjq_msg_t is not thread-safe; use one per thread. Destroyed messages
    are kept for reuse in a small per-thread pool, so steady traffic does
    not allocate. The payload is never re-encoded: the broker moves the
    frame it received.                                                    */

#ifndef ZJQ_MSG_H_INCLUDED
#define ZJQ_MSG_H_INCLUDED

#include "zjq_wire.h"
#include <czmq.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

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
//  The whole fields map of a received message (NULL for one being built).
const msgpack_object *
    zjq_msg_fields (zjq_msg_t *self);
//  Number of fields in a received message
size_t
    zjq_msg_field_count (zjq_msg_t *self);
//  Whether a key is present at all
bool
    zjq_msg_has (zjq_msg_t *self, const char *key);

//  --- Walking the fields of a received message once, in wire order, to
//  parse a typed request in one pass instead of one lookup per field:
//
//      size_t cursor = 0;
//      zjq_msg_field_t field;
//      while (zjq_msg_next_field (msg, &cursor, &field))
//          if (zjq_msg_field_is (&field, "queue"))
//              queue = zjq_msg_field_str (msg, &field);
//          else ...
//
//  The zjq_msg_field_* readers read a value exactly as the per-key
//  getters above do (same types, same absent cases).
typedef struct {
    const char *key;            //  the key's bytes, not NUL-terminated
    size_t key_size;            //  bytes in key
    const msgpack_object *value;    //  its value, owned by the message
    size_t index;               //  position in the fields map
} zjq_msg_field_t;

//  Fill *field with the field at *cursor (start at 0) and move the cursor
//  on. Returns false, *field unchanged, after the last field and for a
//  message being built.
bool
    zjq_msg_next_field (zjq_msg_t *self, size_t *cursor, zjq_msg_field_t *field);
//  True if the field's key is name (NUL-terminated).
bool
    zjq_msg_field_is (const zjq_msg_field_t *field, const char *name);
//  The field's value as zjq_msg_get_str would give it (owned by self), or
//  NULL.
const char *
    zjq_msg_field_str (zjq_msg_t *self, const zjq_msg_field_t *field);
//  The field's value as zjq_msg_get_int, _bool and _double read it: false,
//  *value unchanged, if it has another type.
bool
    zjq_msg_field_int (const zjq_msg_field_t *field, int64_t *value);
bool
    zjq_msg_field_bool (const zjq_msg_field_t *field, bool *value);
bool
    zjq_msg_field_double (const zjq_msg_field_t *field, double *value);

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
//  The bytes a message takes on the wire apart from its header and routing
//  id: its fields (as put so far, or as received) and its payload.
size_t
    zjq_msg_size (zjq_msg_t *self);

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

//  --- For batches (zjq_batch_codec.h, zjq_inbox.h). The packed fields of
//  a message being built (owned by the message).
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

//  Self test
void
    zjq_msg_test (bool verbose);

#endif
