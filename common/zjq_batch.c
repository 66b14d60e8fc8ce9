/*  zjq_batch.c: BATCH messages, the outbox and the inbox. See zjq_batch.h
    and docs/protocol.md ("Batches").                                      */

#include "zjq_batch.h"
#include "zjq_error.h"
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define s_RECORD_HEAD     5       //  command + fields size
#define s_SIZE_BYTES      4
#define s_DESTS           64      //  destinations an outbox batches for at once
#define s_ROUTING_ID_MAX  256

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


//  --------------------------------------------------------------------------
//  Outbox

typedef struct {
    bool used;                  //  has queued messages
    bool has_routing_id;
    size_t routing_id_size;
    byte routing_id [s_ROUTING_ID_MAX];
    zjq_msg_t *first;           //  the only message queued, not encoded yet
    zjq_batch_t *batch;         //  two or more, encoded (kept for reuse)
    int command;                //  of what is queued; ZJQ_CMD_BATCH if mixed
} s_dest_t;

struct _zjq_outbox_t {
    void *socket;               //  not owned
    zjq_outbox_fail_fn *on_fail;
    void *arg;
    s_dest_t dests [s_DESTS];
    size_t used;                //  dests in use: the first `used` slots
    size_t queued;              //  messages queued
    size_t last;                //  slot of the last message queued
};

zjq_outbox_t *
zjq_outbox_new (void *socket, zjq_outbox_fail_fn *on_fail, void *arg)
{
    assert (socket);
    zjq_outbox_t *self = (zjq_outbox_t *) calloc (1, sizeof (zjq_outbox_t));
    if (!self)
        return NULL;
    self->socket = socket;
    self->on_fail = on_fail;
    self->arg = arg;
    return self;
}

void
zjq_outbox_destroy (zjq_outbox_t **self_p)
{
    assert (self_p);
    zjq_outbox_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < s_DESTS; index++) {
        zjq_msg_destroy (&self->dests [index].first);
        zjq_batch_destroy (&self->dests [index].batch);
    }
    free (self);
    *self_p = NULL;
}

static void
s_dest_failed (zjq_outbox_t *self, s_dest_t *dest, int command, int error)
{
    if (self->on_fail)
        self->on_fail (self->arg, dest->has_routing_id? dest->routing_id: NULL,
                       dest->routing_id_size, command, error);
}

//  Send what is queued for one destination and empty it.
static void
s_dest_flush (zjq_outbox_t *self, s_dest_t *dest)
{
    if (dest->first) {
        self->queued--;
        if (zjq_msg_send (&dest->first, self->socket, true) == -1)
            s_dest_failed (self, dest, dest->command, errno);
    }
    else
    if (dest->batch && zjq_batch_count (dest->batch)) {
        self->queued -= zjq_batch_count (dest->batch);
        if (zjq_batch_send (dest->batch, self->socket,
                            dest->has_routing_id? dest->routing_id: NULL,
                            dest->routing_id_size, true) == -1) {
            int error = errno;
            zjq_batch_reset (dest->batch);
            s_dest_failed (self, dest, dest->command, error);
        }
    }
    dest->used = false;
}

void
zjq_outbox_flush (zjq_outbox_t *self)
{
    assert (self);
    //  Latest destination first: a turn's last messages are usually the
    //  work it set going (a broker's JOB after the ACCEPTED, a worker's
    //  result after its progress), and the rest can wait a microsecond
    for (size_t index = self->used; index-- > 0;)
        s_dest_flush (self, &self->dests [index]);
    self->used = 0;
    self->last = 0;
    assert (self->queued == 0);
}

//  The slot for a routing id (NULL: the socket's one peer); a new one if
//  none is in use, after flushing everything if every slot is taken.
static s_dest_t *
s_dest_for (zjq_outbox_t *self, const byte *routing_id, size_t size)
{
    s_dest_t *dest = &self->dests [self->last];
    if (self->last < self->used && dest->has_routing_id == (routing_id != NULL)
    &&  dest->routing_id_size == size && (!size || memcmp (dest->routing_id, routing_id, size) == 0))
        return dest;
    for (size_t index = 0; index < self->used; index++) {
        dest = &self->dests [index];
        if (dest->has_routing_id == (routing_id != NULL) && dest->routing_id_size == size
        &&  (!size || memcmp (dest->routing_id, routing_id, size) == 0)) {
            self->last = index;
            return dest;
        }
    }
    if (self->used == s_DESTS)
        zjq_outbox_flush (self);
    self->last = self->used++;
    dest = &self->dests [self->last];
    dest->used = true;
    dest->has_routing_id = routing_id != NULL;
    dest->routing_id_size = size;
    if (size)
        memcpy (dest->routing_id, routing_id, size);
    return dest;
}

void
zjq_outbox_send (zjq_outbox_t *self, zjq_msg_t **msg_p)
{
    assert (self);
    assert (msg_p && *msg_p);
    zjq_msg_t *msg = *msg_p;
    size_t size = 0;
    const byte *routing_id = zjq_msg_routing_id (msg, &size);
    s_dest_t *dest = s_dest_for (self, routing_id, size);
    int command = zjq_msg_command (msg);
    size_t payload_size = 0;
    zjq_msg_payload_data (msg, &payload_size);
    if (payload_size > ZJQ_BATCH_PAYLOAD_MAX) {
        //  Not copied into a batch: on its own, after what came before
        s_dest_flush (self, dest);
        dest->used = true;
        dest->command = command;
        if (zjq_msg_send (msg_p, self->socket, true) == -1)
            s_dest_failed (self, dest, command, errno);
        return;
    }
    if (!dest->first && !(dest->batch && zjq_batch_count (dest->batch))) {
        //  Kept until the flush: a payload shared with the caller may be
        //  gone by then, so it becomes the message's own (a small copy)
        if (zjq_msg_own_payload (msg) == -1) {
            s_dest_failed (self, dest, command, ENOMEM);
            zjq_msg_destroy (msg_p);
            return;
        }
        dest->first = msg;
        dest->command = command;
        *msg_p = NULL;
        self->queued++;
        return;
    }
    if (!dest->batch) {
        int role = zjq_msg_role (dest->first? dest->first: msg);
        dest->batch = zjq_batch_new (role);
    }
    if (dest->batch && dest->first) {
        if (zjq_batch_append_msg (dest->batch, dest->first) == 0)
            zjq_msg_destroy (&dest->first);
    }
    if (!dest->batch || dest->first || zjq_batch_append_msg (dest->batch, msg) == -1) {
        //  Out of memory batching: send what there is, then this, unbatched
        s_dest_flush (self, dest);
        dest->used = true;
        if (zjq_msg_send (msg_p, self->socket, true) == -1)
            s_dest_failed (self, dest, command, errno);
        return;
    }
    zjq_msg_destroy (msg_p);
    self->queued++;
    if (dest->command != command)
        dest->command = ZJQ_CMD_BATCH;
    if (zjq_batch_count (dest->batch) >= ZJQ_BATCH_MAX_COUNT
    ||  zjq_batch_size (dest->batch) >= ZJQ_BATCH_FLUSH_BYTES) {
        s_dest_flush (self, dest);
        dest->used = true;      //  stays in the list until the next flush
    }
}

size_t
zjq_outbox_queued (zjq_outbox_t *self)
{
    assert (self);
    return self->queued;
}


//  --------------------------------------------------------------------------
//  Inbox

struct _zjq_inbox_t {
    void *socket;               //  not owned
    bool from_router;
    zjq_msg_t *batch;           //  the BATCH being read, or NULL
    size_t offset;              //  next record in its records frame
    size_t left;                //  records still to read
};

zjq_inbox_t *
zjq_inbox_new (void *socket, bool from_router)
{
    assert (socket);
    zjq_inbox_t *self = (zjq_inbox_t *) calloc (1, sizeof (zjq_inbox_t));
    if (!self)
        return NULL;
    self->socket = socket;
    self->from_router = from_router;
    return self;
}

void
zjq_inbox_destroy (zjq_inbox_t **self_p)
{
    assert (self_p);
    zjq_inbox_t *self = *self_p;
    if (!self)
        return;
    zjq_msg_destroy (&self->batch);
    free (self);
    *self_p = NULL;
}

bool
zjq_inbox_pending (zjq_inbox_t *self)
{
    assert (self);
    return self->batch != NULL;
}

//  A malformed message standing for the rest of the batch, which is dropped.
static zjq_recv_t
s_batch_broken (zjq_inbox_t *self, zjq_msg_t **msg_p, const char *reason)
{
    *msg_p = zjq_msg_batch_malformed (self->batch, reason);
    zjq_msg_destroy (&self->batch);
    return ZJQ_RECV_MALFORMED;
}

//  The next message of the batch being read.
static zjq_recv_t
s_next_record (zjq_inbox_t *self, zjq_msg_t **msg_p)
{
    size_t size;
    const byte *records = (const byte *) zjq_msg_batch_records (self->batch, &size);
    size_t at = self->offset;
    if (size - at < s_RECORD_HEAD)
        return s_batch_broken (self, msg_p, "batch record truncated");
    int command = records [at];
    if (command == ZJQ_CMD_BATCH)
        return s_batch_broken (self, msg_p, "a batch inside a batch");
    size_t fields_size = s_get_u32 (records + at + 1);
    at += s_RECORD_HEAD;
    if (fields_size > size - at)
        return s_batch_broken (self, msg_p, "batch record truncated");
    size_t fields_offset = at;
    at += fields_size;
    size_t payload_offset = 0, payload_size = 0;
    if (zjq_proto_command_has_payload (command)) {
        if (size - at < s_SIZE_BYTES)
            return s_batch_broken (self, msg_p, "batch record truncated");
        payload_size = s_get_u32 (records + at);
        at += s_SIZE_BYTES;
        if (payload_size > size - at)
            return s_batch_broken (self, msg_p, "batch record truncated");
        payload_offset = at;
        at += payload_size;
    }
    zjq_recv_t rc = zjq_msg_decode_batched (self->batch, command, fields_offset, fields_size,
                                            payload_offset, payload_size, msg_p);
    self->offset = at;
    self->left--;
    if (self->left == 0) {
        if (rc == ZJQ_RECV_OK && at != size) {
            //  Bytes after the last record: the count was wrong
            zjq_msg_destroy (msg_p);
            return s_batch_broken (self, msg_p, "batch has more records than its count");
        }
        zjq_msg_destroy (&self->batch);
    }
    return rc;
}

zjq_recv_t
zjq_inbox_recv (zjq_inbox_t *self, zjq_msg_t **msg_p)
{
    assert (self);
    assert (msg_p);
    *msg_p = NULL;
    if (self->batch)
        return s_next_record (self, msg_p);
    zjq_recv_t rc = zjq_msg_recv (self->socket, self->from_router, true, msg_p);
    if (rc != ZJQ_RECV_OK || zjq_msg_command (*msg_p) != ZJQ_CMD_BATCH)
        return rc;
    //  A well-formed BATCH: check its count, then read it record by record
    int64_t count = 0;
    size_t size;
    zjq_msg_batch_records (*msg_p, &size);
    self->batch = *msg_p;
    *msg_p = NULL;
    self->offset = 0;
    if (!zjq_msg_get_int (self->batch, "count", &count)
    ||  count < 1 || count > ZJQ_BATCH_MAX_COUNT || size > ZJQ_BATCH_MAX_BYTES) {
        self->left = 0;
        return s_batch_broken (self, msg_p, "batch count or size out of range");
    }
    self->left = (size_t) count;
    return s_next_record (self, msg_p);
}


//  --------------------------------------------------------------------------
//  Self test

static int s_failed_command;
static int s_failed_error;

static void
s_test_on_fail (void *arg, const byte *routing_id, size_t size, int command, int error)
{
    (void) arg; (void) routing_id; (void) size;
    s_failed_command = command;
    s_failed_error = error;
}

//  Send raw frames (a hand-made BATCH) from a DEALER
static void
s_test_send_raw (zsock_t *dealer, int command, const void *fields, size_t fields_size,
                 const void *records, size_t records_size)
{
    byte header [ZJQ_HEADER_SIZE] = { 'Z', 'J', 'Q', ZJQ_PROTO_VERSION, ZJQ_ROLE_CLIENT, (byte) command };
    zmq_send (zsock_resolve (dealer), header, sizeof (header), ZMQ_SNDMORE);
    zmq_send (zsock_resolve (dealer), fields, fields_size, ZMQ_SNDMORE);
    zmq_send (zsock_resolve (dealer), records, records_size, 0);
}

static zjq_recv_t
s_test_recv (zjq_inbox_t *inbox, zjq_msg_t **msg_p)
{
    zjq_recv_t rc;
    for (int tries = 0; tries < 500; tries++) {
        rc = zjq_inbox_recv (inbox, msg_p);
        if (rc != ZJQ_RECV_INTERRUPTED)
            return rc;
        zclock_sleep (2);
    }
    return rc;
}

void
zjq_batch_test (bool verbose)
{
    (void) verbose;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_router_mandatory (router, 1);
    assert (zsock_bind (router, "inproc://zjq-batch-test") == 0);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_identity (dealer, "client-1");
    assert (zsock_connect (dealer, "inproc://zjq-batch-test") == 0);

    //  Client -> broker: 300 SUBMITs (one with a large payload) in one flush
    zjq_outbox_t *client_out = zjq_outbox_new (dealer, NULL, NULL);
    zjq_inbox_t *broker_in = zjq_inbox_new (router, true);
    assert (client_out && broker_in);
    byte big [ZJQ_BATCH_PAYLOAD_MAX + 1];
    memset (big, 'b', sizeof (big));
    for (int index = 0; index < 300; index++) {
        zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_SUBMIT);
        zjq_msg_put_int (msg, "req", index);
        zjq_msg_put_str (msg, "queue", "q");
        if (index == 150)
            zjq_msg_set_payload_mem (msg, big, sizeof (big));
        else {
            char text [32];
            snprintf (text, sizeof (text), "payload %d", index);
            zjq_msg_set_payload_mem (msg, text, strlen (text));
        }
        zjq_outbox_send (client_out, &msg);
        assert (!msg);
    }
    assert (zjq_outbox_queued (client_out) == 149);   //  0..150 went with the big one
    zjq_outbox_flush (client_out);
    assert (zjq_outbox_queued (client_out) == 0);
    for (int index = 0; index < 300; index++) {
        zjq_msg_t *msg = NULL;
        assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_OK);
        assert (zjq_msg_command (msg) == ZJQ_CMD_SUBMIT);
        assert (zjq_msg_role (msg) == ZJQ_ROLE_CLIENT);
        int64_t req = -1;
        assert (zjq_msg_get_int (msg, "req", &req) && req == index);
        assert (streq (zjq_msg_get_str (msg, "queue"), "q"));
        size_t size = 0;
        const byte *routing_id = zjq_msg_routing_id (msg, &size);
        assert (routing_id && size == 8 && memcmp (routing_id, "client-1", 8) == 0);
        const void *data = zjq_msg_payload_data (msg, &size);
        if (index == 150)
            assert (size == sizeof (big) && memcmp (data, big, size) == 0);
        else {
            char text [32];
            snprintf (text, sizeof (text), "payload %d", index);
            assert (size == strlen (text) && memcmp (data, text, size) == 0);
            //  A frame of its own when asked for, outliving the batch
            zframe_t *frame = zjq_msg_take_payload (msg);
            assert (frame && zframe_size (frame) == size);
            zjq_msg_destroy (&msg);
            assert (memcmp (zframe_data (frame), text, size) == 0);
            zframe_destroy (&frame);
        }
        zjq_msg_destroy (&msg);
    }
    assert (!zjq_inbox_pending (broker_in));

    //  Broker -> client: replies by routing id; a lone message goes as it is
    zjq_outbox_t *broker_out = zjq_outbox_new (router, s_test_on_fail, NULL);
    zjq_inbox_t *client_in = zjq_inbox_new (dealer, false);
    assert (broker_out && client_in);
    for (int index = 0; index < 3; index++) {
        zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_BROKER, ZJQ_CMD_ACCEPTED);
        zjq_msg_set_routing_id (msg, "client-1", 8);
        zjq_msg_put_int (msg, "req", index);
        zjq_outbox_send (broker_out, &msg);
        //  To a peer that is not there: reported, and the others still go
        msg = zjq_msg_new (ZJQ_ROLE_BROKER, ZJQ_CMD_DONE);
        zjq_msg_set_routing_id (msg, "nobody", 6);
        zjq_outbox_send (broker_out, &msg);
    }
    zjq_outbox_flush (broker_out);
    assert (s_failed_command == ZJQ_CMD_DONE && s_failed_error == EHOSTUNREACH);
    for (int index = 0; index < 3; index++) {
        zjq_msg_t *msg = NULL;
        assert (s_test_recv (client_in, &msg) == ZJQ_RECV_OK);
        int64_t req = -1;
        assert (zjq_msg_command (msg) == ZJQ_CMD_ACCEPTED);
        assert (zjq_msg_get_int (msg, "req", &req) && req == index);
        zjq_msg_destroy (&msg);
    }
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_BROKER, ZJQ_CMD_PONG);
    zjq_msg_set_routing_id (msg, "client-1", 8);
    zjq_outbox_send (broker_out, &msg);
    zjq_outbox_flush (broker_out);
    zmq_msg_t part;
    zmq_msg_init (&part);
    for (int tries = 0; tries < 500 && zmq_msg_recv (&part, zsock_resolve (dealer), ZMQ_DONTWAIT) == -1; tries++)
        zclock_sleep (2);
    assert (zmq_msg_size (&part) == ZJQ_HEADER_SIZE
         && ((byte *) zmq_msg_data (&part)) [5] == ZJQ_CMD_PONG);
    while (zmq_msg_more (&part))
        zmq_msg_recv (&part, zsock_resolve (dealer), 0);
    zmq_msg_close (&part);

    //  Malformed batches: each is answered by one malformed message, and the
    //  inbox goes on with the next message
    zjq_batch_t *batch = zjq_batch_new (ZJQ_ROLE_CLIENT);
    zjq_msg_t *ping = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_PING);
    zjq_msg_put_int (ping, "req", 7);
    assert (zjq_batch_append_msg (batch, ping) == 0);
    assert (zjq_batch_append_msg (batch, ping) == 0);
    size_t good_size = zjq_batch_size (batch);
    byte *records = (byte *) malloc (good_size + 8);
    memcpy (records, batch->data, good_size);
    const byte count2 [] = { 0x81, 0xa5, 'c', 'o', 'u', 'n', 't', 0x02 };
    const byte count3 [] = { 0x81, 0xa5, 'c', 'o', 'u', 'n', 't', 0x03 };
    const byte count0 [] = { 0x81, 0xa5, 'c', 'o', 'u', 'n', 't', 0x00 };
    s_test_send_raw (dealer, ZJQ_CMD_BATCH, count3, sizeof (count3), records, good_size);      //  short
    s_test_send_raw (dealer, ZJQ_CMD_BATCH, count2, sizeof (count2), records, good_size - 1);  //  truncated
    s_test_send_raw (dealer, ZJQ_CMD_BATCH, count0, sizeof (count0), records, good_size);      //  count 0
    records [0] = ZJQ_CMD_BATCH;                                                                //  nested
    s_test_send_raw (dealer, ZJQ_CMD_BATCH, count2, sizeof (count2), records, good_size);
    records [0] = 0x7e;                                                                         //  unknown
    s_test_send_raw (dealer, ZJQ_CMD_BATCH, count2, sizeof (count2), records, good_size);
    records [0] = ZJQ_CMD_PING;
    memcpy (records + good_size, "trailing", 8);                                                //  extra bytes
    s_test_send_raw (dealer, ZJQ_CMD_BATCH, count2, sizeof (count2), records, good_size + 8);
    assert (zjq_batch_send (batch, dealer, NULL, 0, false) == 0);                               //  good
    assert (zjq_batch_count (batch) == 0);
    //  short: two good pings, then the missing third
    for (int index = 0; index < 2; index++) {
        assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_OK && zjq_msg_command (msg) == ZJQ_CMD_PING);
        zjq_msg_destroy (&msg);
    }
    assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_MALFORMED);
    assert (zjq_msg_error_code (msg) == ZJQ_EPROTO && strstr (zjq_msg_error (msg), "truncated"));
    zjq_msg_destroy (&msg);
    //  truncated: one good ping, then malformed
    assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_OK);
    zjq_msg_destroy (&msg);
    assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_MALFORMED);
    zjq_msg_destroy (&msg);
    //  count 0
    assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_MALFORMED);
    assert (strstr (zjq_msg_error (msg), "count"));
    zjq_msg_destroy (&msg);
    //  nested, then unknown: malformed, rest dropped
    assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_MALFORMED);
    assert (strstr (zjq_msg_error (msg), "batch inside a batch"));
    zjq_msg_destroy (&msg);
    assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_MALFORMED);
    assert (zjq_msg_error_code (msg) == ZJQ_ECOMMAND);
    size_t size = 0;
    assert (zjq_msg_routing_id (msg, &size) && size == 8);
    zjq_msg_destroy (&msg);
    //  (an unknown command does not stop the batch: the second ping)
    assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_OK && zjq_msg_command (msg) == ZJQ_CMD_PING);
    zjq_msg_destroy (&msg);
    //  trailing bytes: the first ping, then malformed
    assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_OK);
    zjq_msg_destroy (&msg);
    assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_MALFORMED);
    assert (strstr (zjq_msg_error (msg), "more records"));
    zjq_msg_destroy (&msg);
    //  and the good batch
    for (int index = 0; index < 2; index++) {
        assert (s_test_recv (broker_in, &msg) == ZJQ_RECV_OK && zjq_msg_command (msg) == ZJQ_CMD_PING);
        int64_t req = 0;
        assert (zjq_msg_get_int (msg, "req", &req) && req == 7);
        zjq_msg_destroy (&msg);
    }
    assert (!zjq_inbox_pending (broker_in));
    free (records);
    zjq_msg_destroy (&ping);
    zjq_batch_destroy (&batch);

    zjq_outbox_destroy (&client_out);
    zjq_outbox_destroy (&broker_out);
    zjq_inbox_destroy (&broker_in);
    zjq_inbox_destroy (&client_in);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}
