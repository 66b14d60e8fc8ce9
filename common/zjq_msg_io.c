/*  zjq_msg_io.c: the message class on the wire: sending, receiving and
    decoding (of a message of its own, and of the records of a BATCH). See
    zjq_msg.h; zjq_msg.c has the object, its pool and its fields.        */

#include "zjq_msg_private.h"
#include "zjq_fields.h"
#include "zjq_wire.h"
#include "zjq_error.h"
#include <assert.h>
#include <string.h>

//  Received payloads smaller than this are copied into a frame of their own:
//  libzmq receives them zero-copy into a shared 8 KiB batch buffer, which a
//  payload kept for long (a queued job) would pin whole. Larger messages
//  get an allocation of their own from libzmq, and are kept without a copy.
#define ZJQ_PAYLOAD_COPY_MAX 8192

//  --------------------------------------------------------------------------
//  Sending

int
zjq_msg_send (zjq_msg_t **self_p, void *socket, bool dontwait)
{
    assert (self_p);
    zjq_msg_t *self = *self_p;
    assert (self);
    void *handle = zsock_resolve (socket);
    assert (handle);
    int flags = dontwait? ZMQ_DONTWAIT: 0;
    bool has_payload = zjq_proto_command_has_payload (self->command);
    assert (self->command != ZJQ_CMD_BATCH);    //  zjq_batch_send builds those
    zjq_msg_payload_materialize (self);
    int rc = 0;

    if (self->has_routing_id) {
        //  A routing id is at most 33 bytes in practice: libzmq stores it
        //  in the message itself, without allocating
        rc = zmq_send (handle, self->routing_id, self->routing_id_size, flags | ZMQ_SNDMORE);
        if (rc == -1) {
            int saved = errno;
            zjq_msg_destroy (self_p);
            errno = saved;
            return -1;
        }
    }
    //  After the first part is accepted, libzmq accepts the rest of the
    //  message: the remaining sends cannot block or fail for lack of room.
    unsigned char header [ZJQ_HEADER_SIZE] = {
        'Z', 'J', 'Q', ZJQ_PROTO_VERSION, (unsigned char) self->role, (unsigned char) self->command
    };
    rc = zmq_send (handle, header, sizeof (header), flags | ZMQ_SNDMORE);
    if (rc == -1) {
        int saved = errno;
        zjq_msg_destroy (self_p);
        errno = saved;
        return -1;
    }
    //  The fields are copied, so the packing buffer stays with the message
    //  for reuse (and is not freed by libzmq's I/O thread)
    zjq_msg_fields_finish (self);
    rc = zmq_send (handle, self->buffer.data, self->buffer.size,
                   flags | (has_payload? ZMQ_SNDMORE: 0));
    if (rc != -1 && has_payload) {
        if (self->payload_shared) {
            //  A reference to the same bytes (libzmq counts them), no copy
            zframe_t *shared = self->payload_shared;
            rc = zframe_send (&shared, socket, ZFRAME_REUSE | (dontwait? ZFRAME_DONTWAIT: 0));
        }
        else {
            zframe_t *payload = self->payload? self->payload: zframe_new_empty ();
            self->payload = NULL;
            rc = zframe_send (&payload, socket, dontwait? ZFRAME_DONTWAIT: 0);
            zframe_destroy (&payload);
        }
    }
    int saved = errno;
    zjq_msg_destroy (self_p);
    errno = saved;
    return rc == -1? -1: 0;
}


//  --------------------------------------------------------------------------
//  Decoding

static zjq_recv_t
s_malformed (zjq_msg_t *self, int code, const char *reason)
{
    self->error_code = code;
    snprintf (self->error, sizeof (self->error), "%s", reason);
    return ZJQ_RECV_MALFORMED;
}

//  Check a header: the message takes its version, role and command.
//  Returns the command's row, or NULL (malformed).
static const zjq_command_t *
s_decode_header (zjq_msg_t *self, const void *header, size_t header_size)
{
    const unsigned char *bytes = (const unsigned char *) header;
    if (header_size != ZJQ_HEADER_SIZE || memcmp (bytes, "ZJQ", 3) != 0) {
        s_malformed (self, ZJQ_EPROTO, "first frame is not a ZJQ header");
        return NULL;
    }
    self->version = bytes [3];
    self->role = bytes [4];
    self->command = bytes [5];
    if (self->version != ZJQ_PROTO_VERSION) {
        char reason [80];
        snprintf (reason, sizeof (reason), "protocol version %d is not supported (this is version %d)",
                  self->version, ZJQ_PROTO_VERSION);
        s_malformed (self, ZJQ_EVERSION, reason);
        return NULL;
    }
    if (self->role != ZJQ_ROLE_CLIENT && self->role != ZJQ_ROLE_WORKER && self->role != ZJQ_ROLE_BROKER) {
        s_malformed (self, ZJQ_EPROTO, "unknown role in header");
        return NULL;
    }
    const zjq_command_t *command = zjq_proto_command (self->command);
    if (!command) {
        char reason [60];
        snprintf (reason, sizeof (reason), "unknown command 0x%02x", self->command);
        s_malformed (self, ZJQ_ECOMMAND, reason);
        return NULL;
    }
    if (!strchr (command->senders, self->role)) {     //  (role checked above)
        char reason [80];
        snprintf (reason, sizeof (reason), "command %s may not be sent by role '%c'",
                  command->name, self->role);
        s_malformed (self, ZJQ_ECOMMAND, reason);
        return NULL;
    }
    return command;
}

//  Decode the fields, fields_size bytes at fields_offset in fields_part:
//  one msgpack map of at most ZJQ_MAX_FIELDS entries with string keys,
//  and nothing after it. The entries go into the message's own array.
static zjq_recv_t
s_decode_fields (zjq_msg_t *self)
{
    if (self->fields_size > ZJQ_MAX_FIELDS_SIZE)
        return s_malformed (self, ZJQ_EPROTO, "fields frame larger than 64 KiB");
    const char *error = NULL;
    int count = zjq_fields_decode (
        (const byte *) zmq_msg_data (&self->fields_part) + self->fields_offset, self->fields_size,
        &self->zone, self->fields, ZJQ_MAX_FIELDS, &error);
    if (count < 0)
        return s_malformed (self, ZJQ_EPROTO, error);
    self->root.type = MSGPACK_OBJECT_MAP;
    self->root.via.map.size = (uint32_t) count;
    self->root.via.map.ptr = self->fields;
    self->map = &self->root.via.map;
    self->decoded = true;       //  fields can be read, even if frames below are wrong
    return ZJQ_RECV_OK;
}

//  Decode the header and the fields part (taken over by the message).
static zjq_recv_t
s_decode (zjq_msg_t *self, const void *header, size_t header_size, zmq_msg_t *fields_part,
          zframe_t **payload_p, bool payload_expected_present, size_t extra_frames)
{
    const zjq_command_t *command = s_decode_header (self, header, header_size);
    if (!command)
        return ZJQ_RECV_MALFORMED;
    if (!fields_part)
        return s_malformed (self, ZJQ_EPROTO, "fields frame missing");
    zmq_msg_move (&self->fields_part, fields_part);
    self->fields_offset = 0;
    self->fields_size = zmq_msg_size (&self->fields_part);
    if (s_decode_fields (self) != ZJQ_RECV_OK)
        return ZJQ_RECV_MALFORMED;

    if (command->payload) {
        if (!payload_expected_present)
            return s_malformed (self, ZJQ_EPROTO, "payload frame missing");
        if (payload_p) {
            self->payload = *payload_p;
            *payload_p = NULL;
        }
    }
    else
    if (payload_expected_present)
        return s_malformed (self, ZJQ_EPROTO, "unexpected extra frame");
    if (extra_frames)
        return s_malformed (self, ZJQ_EPROTO, "too many frames");
    return ZJQ_RECV_OK;
}

zjq_recv_t
zjq_msg_decode (const void *header, size_t header_size,
                const void *fields, size_t fields_size,
                zframe_t **payload_p, zjq_msg_t **msg_p)
{
    assert (msg_p);
    zjq_msg_t *self = zjq_msg_alloc ();
    assert (self);
    *msg_p = self;
    zmq_msg_t part;
    zmq_msg_t *part_p = NULL;
    if (fields) {
        zmq_msg_init_size (&part, fields_size);
        memcpy (zmq_msg_data (&part), fields, fields_size);
        part_p = &part;
    }
    zjq_recv_t rc = s_decode (self, header, header_size, part_p, payload_p,
                              payload_p && *payload_p, 0);
    if (part_p)
        zmq_msg_close (&part);
    return rc;
}

//  A new message from the same sender as a batch (routing id, User-Id)
static zjq_msg_t *
s_msg_from_batch (zjq_msg_t *batch)
{
    zjq_msg_t *self = zjq_msg_alloc ();
    assert (self);
    if (batch->has_routing_id)
        zjq_msg_set_routing_id (self, batch->routing_id, batch->routing_id_size);
    strcpy (self->user_id, batch->user_id);
    return self;
}

zjq_recv_t
zjq_msg_decode_batched (zjq_msg_t *batch, int command, size_t fields_offset, size_t fields_size,
                        size_t payload_offset, size_t payload_size, zjq_msg_t **msg_p)
{
    assert (batch && batch->has_batch_part);
    assert (msg_p);
    zjq_msg_t *self = s_msg_from_batch (batch);
    *msg_p = self;
    const byte header [ZJQ_HEADER_SIZE] = {
        'Z', 'J', 'Q', (byte) batch->version, (byte) batch->role, (byte) command
    };
    const zjq_command_t *row = s_decode_header (self, header, sizeof (header));
    if (!row)
        return ZJQ_RECV_MALFORMED;
    assert (command != ZJQ_CMD_BATCH);          //  the inbox checks
    //  A reference to the records (libzmq counts it; small frames are copied)
    zmq_msg_copy (&self->fields_part, &batch->batch_part);
    self->fields_offset = fields_offset;
    self->fields_size = fields_size;
    if (s_decode_fields (self) != ZJQ_RECV_OK)
        return ZJQ_RECV_MALFORMED;
    if (row->payload) {
        self->payload_bytes = (const byte *) zmq_msg_data (&self->fields_part) + payload_offset;
        self->payload_size = payload_size;
        self->payload_borrowed = true;
    }
    return ZJQ_RECV_OK;
}

zjq_msg_t *
zjq_msg_batch_malformed (zjq_msg_t *batch, const char *reason)
{
    assert (batch);
    zjq_msg_t *self = s_msg_from_batch (batch);
    self->version = batch->version;
    self->role = batch->role;
    self->command = ZJQ_CMD_BATCH;
    s_malformed (self, ZJQ_EPROTO, reason);
    return self;
}

const void *
zjq_msg_batch_records (zjq_msg_t *self, size_t *size_p)
{
    assert (self);
    assert (size_p);
    *size_p = self->has_batch_part? zmq_msg_size (&self->batch_part): 0;
    return self->has_batch_part? zmq_msg_data (&self->batch_part): NULL;
}

const void *
zjq_msg_fields_data (zjq_msg_t *self, size_t *size_p)
{
    assert (self);
    assert (size_p);
    zjq_msg_fields_finish (self);
    *size_p = self->buffer.size;
    return self->buffer.data;
}

//  Connection metadata travels with the frames that came from the peer
//  (not with the routing id a ROUTER makes up): keep "User-Id" if there is
//  one, unless it is longer than ours ever are.
static void
s_take_user_id (zjq_msg_t *self, zmq_msg_t *part)
{
    const char *user_id = zmq_msg_gets (part, "User-Id");
    if (user_id && strlen (user_id) <= ZJQ_USER_ID_MAX)
        strcpy (self->user_id, user_id);
}

//  The frames of one message as zjq_msg_recv reads them
typedef struct {
    zmq_msg_t parts [2];        //  header, fields
    size_t count;               //  parts held
    size_t extra;               //  frames after the payload, drained
    zframe_t *payload;          //  the payload frame, or NULL
} s_frames_t;

//  A batch's records stay in the frame they came in, and the messages read
//  from them refer to it (zjq_inbox_recv). Returns whether more frames
//  follow (false too if the context was terminated mid-message).
static bool
s_recv_batch_part (zjq_msg_t *self, void *handle)
{
    zmq_msg_init (&self->batch_part);
    if (zmq_msg_recv (&self->batch_part, handle, 0) == -1) {
        zmq_msg_close (&self->batch_part);
        return false;
    }
    self->has_batch_part = true;
    return zmq_msg_more (&self->batch_part);
}

//  The payload frame, received as a frame of its own so a large one's
//  bytes are not copied; a small one is (see ZJQ_PAYLOAD_COPY_MAX). NULL
//  if the context was terminated mid-message.
static zframe_t *
s_recv_payload (void *socket, bool *more_p)
{
    zframe_t *payload = zframe_recv (socket);   //  a zsock_t resolves faster
    if (!payload)
        return NULL;
    *more_p = zframe_more (payload);
    if (zframe_size (payload) < ZJQ_PAYLOAD_COPY_MAX) {
        zframe_t *copy = zframe_new (zframe_data (payload), zframe_size (payload));
        assert (copy);
        zframe_destroy (&payload);
        payload = copy;
    }
    return payload;
}

//  Read the rest of a multipart message (more: the first frame said more
//  follow): header, fields, the payload or a batch's records; anything
//  beyond is drained and counted.
static void
s_recv_rest (zjq_msg_t *self, void *socket, void *handle, s_frames_t *frames, bool more)
{
    while (more) {
        if (frames->count == 2 && !frames->payload && !frames->extra && !self->has_batch_part) {
            zmq_msg_t *header = &frames->parts [0];
            if (zmq_msg_size (header) == ZJQ_HEADER_SIZE
            &&  ((const byte *) zmq_msg_data (header)) [5] == ZJQ_CMD_BATCH)
                more = s_recv_batch_part (self, handle);
            else {
                frames->payload = s_recv_payload (socket, &more);
                if (!frames->payload)
                    break;      //  context terminated mid-message
            }
            continue;
        }
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, handle, 0) == -1) {
            zmq_msg_close (&part);
            break;              //  context terminated mid-message
        }
        more = zmq_msg_more (&part);
        if (frames->count == 0)
            s_take_user_id (self, &part);
        if (frames->count < 2) {
            zmq_msg_init (&frames->parts [frames->count]);
            zmq_msg_move (&frames->parts [frames->count++], &part);
        }
        else
            frames->extra++;
        zmq_msg_close (&part);
    }
}

zjq_recv_t
zjq_msg_recv (void *socket, bool from_router, bool dontwait, zjq_msg_t **msg_p)
{
    assert (msg_p);
    *msg_p = NULL;
    void *handle = zsock_resolve (socket);
    assert (handle);

    zmq_msg_t first;
    zmq_msg_init (&first);
    if (zmq_msg_recv (&first, handle, dontwait? ZMQ_DONTWAIT: 0) == -1) {
        zmq_msg_close (&first);
        return ZJQ_RECV_INTERRUPTED;
    }
    zjq_msg_t *self = zjq_msg_alloc ();
    assert (self);
    *msg_p = self;

    //  Read the whole multipart message: routing id, header, fields, the
    //  payload; anything beyond is drained and counted.
    s_frames_t frames;
    frames.count = frames.extra = 0;
    frames.payload = NULL;
    bool more = zmq_msg_more (&first);
    if (from_router) {
        zjq_msg_set_routing_id (self, zmq_msg_data (&first), zmq_msg_size (&first));
        zmq_msg_close (&first);
    }
    else {
        s_take_user_id (self, &first);
        zmq_msg_init (&frames.parts [0]);
        zmq_msg_move (&frames.parts [0], &first);
        zmq_msg_close (&first);
        frames.count = 1;
    }
    s_recv_rest (self, socket, handle, &frames, more);

    zjq_recv_t rc;
    if (frames.count == 0)
        rc = s_malformed (self, ZJQ_EPROTO, "empty message");
    else
        rc = s_decode (self, zmq_msg_data (&frames.parts [0]), zmq_msg_size (&frames.parts [0]),
                       frames.count >= 2? &frames.parts [1]: NULL, &frames.payload,
                       frames.payload != NULL || self->has_batch_part, frames.extra);
    zframe_destroy (&frames.payload);
    for (size_t index = 0; index < frames.count; index++)
        zmq_msg_close (&frames.parts [index]);
    return rc;
}

int
zjq_msg_encode (zjq_msg_t *self, zchunk_t **header_p, zchunk_t **fields_p)
{
    assert (self);
    assert (header_p && fields_p);
    unsigned char header [ZJQ_HEADER_SIZE] = {
        'Z', 'J', 'Q', ZJQ_PROTO_VERSION, (unsigned char) self->role, (unsigned char) self->command
    };
    zjq_msg_fields_finish (self);
    *header_p = zchunk_new (header, sizeof (header));
    *fields_p = zchunk_new (self->buffer.data, self->buffer.size);
    return (*header_p && *fields_p)? 0: -1;
}
