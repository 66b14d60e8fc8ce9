/*  zjq_outbox.c: outgoing messages batched per destination. See
    zjq_outbox.h and docs/protocol.md ("Batches").                        */

#include "zjq_outbox.h"
#include "zjq_batch_codec.h"
#include "zjq_error.h"
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define s_DESTS           64      //  destinations an outbox batches for at once
#define s_ROUTING_ID_MAX  256

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

//  The next message that reached the socket (blocking), whole: its command,
//  and for a BATCH its count of records
static int
s_test_next (zsock_t *socket, bool from_router, int64_t *count)
{
    zjq_msg_t *msg = NULL;
    assert (zjq_msg_recv (socket, from_router, false, &msg) == ZJQ_RECV_OK);
    int command = zjq_msg_command (msg);
    *count = 1;
    if (command == ZJQ_CMD_BATCH)
        assert (zjq_msg_get_int (msg, "count", count));
    zjq_msg_destroy (&msg);
    return command;
}

void
zjq_outbox_test (bool verbose)
{
    (void) verbose;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_router_mandatory (router, 1);
    assert (zsock_bind (router, "inproc://zjq-outbox-test") == 0);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    assert (dealer);
    zsock_set_identity (dealer, "client-1");
    assert (zsock_connect (dealer, "inproc://zjq-outbox-test") == 0);
    int64_t count = 0;

    //  A lone message goes as it is, at the flush
    zjq_outbox_t *client_out = zjq_outbox_new (dealer, NULL, NULL);
    assert (client_out);
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_PING);
    zjq_outbox_send (client_out, &msg);
    assert (!msg && zjq_outbox_queued (client_out) == 1);
    zjq_outbox_flush (client_out);
    assert (zjq_outbox_queued (client_out) == 0);
    assert (s_test_next (router, true, &count) == ZJQ_CMD_PING);

    //  More go as one BATCH; a large payload on its own, in its place
    byte big [ZJQ_BATCH_PAYLOAD_MAX + 1];
    memset (big, 'b', sizeof (big));
    for (int index = 0; index < 10; index++) {
        msg = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_SUBMIT);
        zjq_msg_set_payload_mem (msg, big, index == 4? sizeof (big): 1);
        zjq_outbox_send (client_out, &msg);
    }
    assert (zjq_outbox_queued (client_out) == 5);
    zjq_outbox_flush (client_out);
    assert (s_test_next (router, true, &count) == ZJQ_CMD_BATCH && count == 4);
    assert (s_test_next (router, true, &count) == ZJQ_CMD_SUBMIT);
    assert (s_test_next (router, true, &count) == ZJQ_CMD_BATCH && count == 5);

    //  A batch is sent as soon as it holds ZJQ_BATCH_FLUSH_BYTES
    size_t sent = 0;
    while (zjq_outbox_queued (client_out) == sent) {
        msg = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_SUBMIT);
        zjq_msg_set_payload_mem (msg, big, 1000);
        zjq_outbox_send (client_out, &msg);
        sent++;
        assert (sent < 100);
    }
    assert (zjq_outbox_queued (client_out) == 0 && sent > ZJQ_BATCH_FLUSH_BYTES / 1100);
    assert (s_test_next (router, true, &count) == ZJQ_CMD_BATCH && count == (int64_t) sent);

    //  By routing id; a peer that is not there is reported, the others
    //  still get theirs
    zjq_outbox_t *broker_out = zjq_outbox_new (router, s_test_on_fail, NULL);
    assert (broker_out);
    for (int index = 0; index < 3; index++) {
        msg = zjq_msg_new (ZJQ_ROLE_BROKER, ZJQ_CMD_ACCEPTED);
        zjq_msg_set_routing_id (msg, "client-1", 8);
        zjq_outbox_send (broker_out, &msg);
        msg = zjq_msg_new (ZJQ_ROLE_BROKER, index? ZJQ_CMD_DONE: ZJQ_CMD_PONG);
        zjq_msg_set_routing_id (msg, "nobody", 6);
        zjq_outbox_send (broker_out, &msg);
    }
    assert (zjq_outbox_queued (broker_out) == 6);
    zjq_outbox_flush (broker_out);
    assert (s_failed_command == ZJQ_CMD_BATCH && s_failed_error == EHOSTUNREACH);
    assert (s_test_next (dealer, false, &count) == ZJQ_CMD_BATCH && count == 3);
    //  A shared payload queued is the message's own: the frame may go
    zframe_t *frame = zframe_new ("shared", 6);
    msg = zjq_msg_new (ZJQ_ROLE_BROKER, ZJQ_CMD_JOB);
    zjq_msg_set_routing_id (msg, "client-1", 8);
    zjq_msg_set_payload_shared (msg, frame);
    zjq_outbox_send (broker_out, &msg);
    zframe_destroy (&frame);
    zjq_outbox_flush (broker_out);
    assert (zjq_msg_recv (dealer, false, false, &msg) == ZJQ_RECV_OK);
    assert (zjq_msg_command (msg) == ZJQ_CMD_JOB && zframe_streq (zjq_msg_payload (msg), "shared"));
    zjq_msg_destroy (&msg);
    //  Destroyed with messages queued: dropped
    msg = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_PING);
    zjq_outbox_send (client_out, &msg);
    zjq_outbox_destroy (&client_out);
    zjq_outbox_destroy (&client_out);
    zjq_outbox_destroy (&broker_out);
    assert (zjq_msg_recv (router, true, true, &msg) == ZJQ_RECV_INTERRUPTED);
    zsock_destroy (&dealer);
    zsock_destroy (&router);
}
