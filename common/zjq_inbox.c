/*  zjq_inbox.c: incoming messages, a BATCH handed out as its messages.
    See zjq_inbox.h and docs/protocol.md ("Batches").                     */

#include "zjq_inbox.h"
#include "zjq_batch_codec.h"
#include "zjq_outbox.h"            //  (the self-test sends with one)
#include "zjq_error.h"
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
    const void *records = zjq_msg_batch_records (self->batch, &size);
    zjq_batch_record_t record;
    const char *error;
    if (zjq_batch_record_read (records, size, &self->offset, &record, &error) == -1)
        return s_batch_broken (self, msg_p, error);
    zjq_recv_t rc = zjq_msg_decode_batched (self->batch, record.command, record.fields_offset,
                                            record.fields_size, record.payload_offset,
                                            record.payload_size, msg_p);
    self->left--;
    if (self->left == 0) {
        if (rc == ZJQ_RECV_OK && self->offset != size) {
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

static int s_failed_command;
static int s_failed_error;

static void
s_test_on_fail (void *arg, const byte *routing_id, size_t size, int command, int error)
{
    (void) arg; (void) routing_id; (void) size;
    s_failed_command = command;
    s_failed_error = error;
}

//  Client -> broker -> client through outboxes and inboxes: every message
//  comes out as it went in, batched or not
static void
s_test_through_outboxes (zsock_t *router, zsock_t *dealer)
{
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

    zjq_outbox_destroy (&client_out);
    zjq_outbox_destroy (&broker_out);
    zjq_inbox_destroy (&broker_in);
    zjq_inbox_destroy (&client_in);
}

void
zjq_inbox_test (bool verbose)
{
    (void) verbose;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_router_mandatory (router, 1);
    assert (zsock_bind (router, "inproc://zjq-inbox-test") == 0);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_identity (dealer, "client-1");
    assert (zsock_connect (dealer, "inproc://zjq-inbox-test") == 0);

    s_test_through_outboxes (router, dealer);

    zjq_inbox_t *broker_in = zjq_inbox_new (router, true);
    assert (broker_in);
    zjq_msg_t *msg = NULL;
    //  Malformed batches: each is answered by one malformed message, and the
    //  inbox goes on with the next message
    zjq_batch_t *batch = zjq_batch_new (ZJQ_ROLE_CLIENT);
    zjq_msg_t *ping = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_PING);
    zjq_msg_put_int (ping, "req", 7);
    assert (zjq_batch_append_msg (batch, ping) == 0);
    assert (zjq_batch_append_msg (batch, ping) == 0);
    size_t good_size = zjq_batch_size (batch);
    byte *records = (byte *) malloc (good_size + 8);
    size_t data_size = 0;
    memcpy (records, zjq_batch_data (batch, &data_size), good_size);
    assert (data_size == good_size);
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

    zjq_inbox_destroy (&broker_in);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}
