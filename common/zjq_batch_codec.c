/*  zjq_batch_codec.c: the records of a BATCH: the encoder and the record
    reader. See zjq_batch_codec.h and docs/protocol.md ("Batches").       */

#include "zjq_batch_codec.h"
#include "zjq_error.h"
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define s_RECORD_HEAD     5       //  command + fields size
#define s_SIZE_BYTES      4

struct _zjq_batch_t {
    int role;                   //  of every message in it
    byte *data;                 //  the records (malloc'd; libzmq frees sent ones)
    size_t size;                //  bytes used
    size_t max;                 //  bytes allocated
    size_t count;               //  records
};

static void
s_put_u32 (byte *at, size_t value)
{
    at [0] = (byte) (value >> 24);
    at [1] = (byte) (value >> 16);
    at [2] = (byte) (value >> 8);
    at [3] = (byte) value;
}

static size_t
s_get_u32 (const byte *at)
{
    return ((size_t) at [0] << 24) | ((size_t) at [1] << 16) | ((size_t) at [2] << 8) | at [3];
}

zjq_batch_t *
zjq_batch_new (int role)
{
    zjq_batch_t *self = (zjq_batch_t *) calloc (1, sizeof (zjq_batch_t));
    if (self)
        self->role = role;
    return self;
}

void
zjq_batch_destroy (zjq_batch_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->data);
        free (*self_p);
        *self_p = NULL;
    }
}

int
zjq_batch_append (zjq_batch_t *self, int command, const void *fields, size_t fields_size,
                  const void *payload, size_t payload_size)
{
    assert (self);
    bool has_payload = zjq_proto_command_has_payload (command);
    size_t need = s_RECORD_HEAD + fields_size + (has_payload? s_SIZE_BYTES + payload_size: 0);
    if (self->size + need > self->max) {
        size_t max = self->max? self->max: 4096;
        while (max < self->size + need)
            max *= 2;
        byte *data = (byte *) realloc (self->data, max);
        if (!data)
            return -1;
        self->data = data;
        self->max = max;
    }
    byte *at = self->data + self->size;
    *at++ = (byte) command;
    s_put_u32 (at, fields_size);
    at += s_SIZE_BYTES;
    if (fields_size)
        memcpy (at, fields, fields_size);
    at += fields_size;
    if (has_payload) {
        s_put_u32 (at, payload_size);
        at += s_SIZE_BYTES;
        if (payload_size)
            memcpy (at, payload, payload_size);
        at += payload_size;
    }
    self->size = (size_t) (at - self->data);
    self->count++;
    return 0;
}

int
zjq_batch_append_msg (zjq_batch_t *self, zjq_msg_t *msg)
{
    assert (self);
    assert (msg);
    size_t fields_size, payload_size;
    const void *fields = zjq_msg_fields_data (msg, &fields_size);
    const void *payload = zjq_msg_payload_data (msg, &payload_size);
    return zjq_batch_append (self, zjq_msg_command (msg), fields, fields_size,
                             payload, payload_size);
}

size_t
zjq_batch_count (zjq_batch_t *self)
{
    assert (self);
    return self->count;
}

size_t
zjq_batch_size (zjq_batch_t *self)
{
    assert (self);
    return self->size;
}

void
zjq_batch_reset (zjq_batch_t *self)
{
    assert (self);
    self->size = 0;
    self->count = 0;
}

static void
s_free_records (void *data, void *hint)
{
    (void) hint;
    free (data);
}

int
zjq_batch_send (zjq_batch_t *self, void *socket, const void *routing_id, size_t routing_id_size,
                bool dontwait)
{
    assert (self);
    assert (self->count);
    void *handle = zsock_resolve (socket);
    assert (handle);
    int flags = dontwait? ZMQ_DONTWAIT: 0;
    if (routing_id && zmq_send (handle, routing_id, routing_id_size, flags | ZMQ_SNDMORE) == -1)
        return -1;
    const byte header [ZJQ_HEADER_SIZE] = {
        'Z', 'J', 'Q', ZJQ_PROTO_VERSION, (byte) self->role, ZJQ_CMD_BATCH
    };
    //  { "count": N } as a fixmap of one entry with a uint32 value
    byte fields [1 + 6 + 5] = { 0x81, 0xa5, 'c', 'o', 'u', 'n', 't', 0xce };
    s_put_u32 (fields + 8, self->count);
    if (zmq_send (handle, header, sizeof (header), flags | ZMQ_SNDMORE) == -1)
        return -1;
    //  Once the first part is in, libzmq takes the rest of the message
    zmq_send (handle, fields, sizeof (fields), flags | ZMQ_SNDMORE);
    zmq_msg_t part;
    if (zmq_msg_init_data (&part, self->data, self->size, s_free_records, NULL) == 0) {
        self->data = NULL;      //  libzmq frees it once sent
        self->max = 0;
        zmq_msg_send (&part, handle, flags);
    }
    else {
        //  Out of memory for the message: send a copy (may fail alike)
        zmq_send (handle, self->data, self->size, flags);
    }
    zjq_batch_reset (self);
    return 0;
}

const void *
zjq_batch_data (zjq_batch_t *self, size_t *size_p)
{
    assert (self);
    assert (size_p);
    *size_p = self->size;
    return self->data;
}


//  --------------------------------------------------------------------------
//  Reading records

int
zjq_batch_record_read (const void *data, size_t size, size_t *offset_p,
                       zjq_batch_record_t *record, const char **error_p)
{
    assert (data || size == 0);
    assert (offset_p && record && error_p);
    const byte *records = (const byte *) data;
    size_t at = *offset_p;
    *error_p = "batch record truncated";
    if (at > size || size - at < s_RECORD_HEAD)
        return -1;
    record->command = records [at];
    if (record->command == ZJQ_CMD_BATCH) {
        *error_p = "a batch inside a batch";
        return -1;
    }
    record->fields_size = s_get_u32 (records + at + 1);
    at += s_RECORD_HEAD;
    if (record->fields_size > size - at)
        return -1;
    record->fields_offset = at;
    at += record->fields_size;
    record->payload_offset = record->payload_size = 0;
    if (zjq_proto_command_has_payload (record->command)) {
        if (size - at < s_SIZE_BYTES)
            return -1;
        record->payload_size = s_get_u32 (records + at);
        at += s_SIZE_BYTES;
        if (record->payload_size > size - at)
            return -1;
        record->payload_offset = at;
        at += record->payload_size;
    }
    *offset_p = at;
    *error_p = NULL;
    return 0;
}


//  --------------------------------------------------------------------------
//  Self test

void
zjq_batch_test (bool verbose)
{
    (void) verbose;
    //  Records of commands with and without a payload read back as written
    zjq_batch_t *batch = zjq_batch_new (ZJQ_ROLE_CLIENT);
    assert (batch && zjq_batch_count (batch) == 0 && zjq_batch_size (batch) == 0);
    zjq_msg_t *ping = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_PING);
    zjq_msg_put_int (ping, "req", 7);
    zjq_msg_t *submit = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_SUBMIT);
    zjq_msg_put_str (submit, "queue", "q");
    zjq_msg_set_payload_mem (submit, "abc", 3);
    assert (zjq_batch_append_msg (batch, ping) == 0);
    assert (zjq_batch_append_msg (batch, submit) == 0);
    assert (zjq_batch_append (batch, ZJQ_CMD_SUBMIT, "\x80", 1, NULL, 0) == 0);
    assert (zjq_batch_count (batch) == 3);
    size_t size = 0;
    const byte *records = (const byte *) zjq_batch_data (batch, &size);
    assert (size == zjq_batch_size (batch));
    size_t fields_size = 0;
    const void *fields = zjq_msg_fields_data (ping, &fields_size);
    size_t offset = 0;
    zjq_batch_record_t record;
    const char *error = NULL;
    assert (zjq_batch_record_read (records, size, &offset, &record, &error) == 0 && !error);
    assert (record.command == ZJQ_CMD_PING && record.fields_size == fields_size
         && memcmp (records + record.fields_offset, fields, fields_size) == 0);
    assert (record.payload_size == 0 && offset == s_RECORD_HEAD + fields_size);
    assert (zjq_batch_record_read (records, size, &offset, &record, &error) == 0);
    assert (record.command == ZJQ_CMD_SUBMIT && record.payload_size == 3
         && memcmp (records + record.payload_offset, "abc", 3) == 0);
    assert (zjq_batch_record_read (records, size, &offset, &record, &error) == 0);
    assert (record.fields_size == 1 && record.payload_size == 0 && offset == size);
    //  Cut anywhere, a record is truncated, never read past the frame
    for (size_t cut = 0; cut < s_RECORD_HEAD + fields_size; cut++) {
        offset = 0;
        assert (zjq_batch_record_read (records, cut, &offset, &record, &error) == -1);
        assert (strstr (error, "truncated") && offset == 0);
    }
    offset = size;
    assert (zjq_batch_record_read (records, size, &offset, &record, &error) == -1);
    byte nested [s_RECORD_HEAD] = { ZJQ_CMD_BATCH, 0, 0, 0, 0 };
    offset = 0;
    assert (zjq_batch_record_read (nested, sizeof (nested), &offset, &record, &error) == -1);
    assert (strstr (error, "batch inside a batch"));
    const byte lying [s_RECORD_HEAD] = { ZJQ_CMD_PING, 0xff, 0xff, 0xff, 0xff };
    assert (zjq_batch_record_read (lying, sizeof (lying), &offset, &record, &error) == -1);

    //  Sent as one BATCH: header, { "count": N }, the records
    zsock_t *pull = zsock_new_pull ("inproc://zjq-batch-test");
    zsock_t *push = zsock_new_push ("inproc://zjq-batch-test");
    assert (pull && push);
    byte *copy = (byte *) malloc (size);
    assert (copy);
    memcpy (copy, records, size);
    assert (zjq_batch_send (batch, push, NULL, 0, false) == 0);
    assert (zjq_batch_count (batch) == 0 && zjq_batch_size (batch) == 0);
    zmsg_t *sent = zmsg_recv (pull);
    assert (sent && zmsg_size (sent) == 3);
    zframe_t *head = zmsg_first (sent);
    assert (zframe_size (head) == ZJQ_HEADER_SIZE && zframe_data (head) [4] == ZJQ_ROLE_CLIENT
         && zframe_data (head) [5] == ZJQ_CMD_BATCH);
    zjq_msg_t *header = NULL;
    zframe_t *frame = zmsg_next (sent);
    assert (zjq_msg_decode (zframe_data (head), ZJQ_HEADER_SIZE,
                            zframe_data (frame), zframe_size (frame), NULL, &header)
            == ZJQ_RECV_MALFORMED);     //  (no records frame given)
    int64_t count = 0;
    assert (zjq_msg_get_int (header, "count", &count) && count == 3);
    zjq_msg_destroy (&header);
    frame = zmsg_next (sent);
    assert (zframe_size (frame) == size && memcmp (zframe_data (frame), copy, size) == 0);
    zmsg_destroy (&sent);
    free (copy);
    //  A batch is reused after a send or a reset
    assert (zjq_batch_append_msg (batch, ping) == 0 && zjq_batch_count (batch) == 1);
    zjq_batch_reset (batch);
    assert (zjq_batch_count (batch) == 0 && zjq_batch_size (batch) == 0);
    zsock_destroy (&push);
    zsock_destroy (&pull);
    zjq_msg_destroy (&ping);
    zjq_msg_destroy (&submit);
    zjq_batch_destroy (&batch);
    zjq_batch_destroy (&batch);
}
