/*  zjq_held.c: promises held for the store. See zjq_held.h.              */

#include "zjq_held.h"
#include <assert.h>
#include <stdlib.h>

//  A client message waiting for the store to reach its LSN
typedef struct {
    zjq_msg_t *msg;
    uint64_t lsn;
} s_held_t;

struct _zjq_held_t {
    s_held_t *ring;             //  held_max slots
    size_t head;                //  index of the oldest
    size_t count;               //  messages in the ring
    size_t max;                 //  ring size
};

zjq_held_t *
zjq_held_new (void)
{
    return (zjq_held_t *) calloc (1, sizeof (zjq_held_t));
}

void
zjq_held_destroy (zjq_held_t **self_p)
{
    assert (self_p);
    zjq_held_t *self = *self_p;
    if (!self)
        return;
    while (self->count) {
        zjq_msg_destroy (&self->ring [self->head].msg);
        self->head = (self->head + 1) % self->max;
        self->count--;
    }
    free (self->ring);
    free (self);
    *self_p = NULL;
}

//  Double the ring, oldest first at index 0. Returns -1 if out of memory.
static int
s_grow (zjq_held_t *self)
{
    size_t max = self->max? self->max * 2: 1024;
    s_held_t *ring = (s_held_t *) malloc (max * sizeof (s_held_t));
    if (!ring)
        return -1;
    for (size_t index = 0; index < self->count; index++)
        ring [index] = self->ring [(self->head + index) % self->max];
    free (self->ring);
    self->ring = ring;
    self->head = 0;
    self->max = max;
    return 0;
}

int
zjq_held_push (zjq_held_t *self, zjq_msg_t **msg_p, uint64_t lsn)
{
    assert (self && msg_p && *msg_p);
    if (self->count == self->max && s_grow (self) == -1)
        return -1;
    if (zjq_msg_own_payload (*msg_p) == -1)
        return -1;
    s_held_t *slot = &self->ring [(self->head + self->count) % self->max];
    slot->msg = *msg_p;
    slot->lsn = lsn;
    *msg_p = NULL;
    self->count++;
    return 0;
}

void
zjq_held_release (zjq_held_t *self, uint64_t durable, bool all,
                  zjq_held_send_fn *send, void *arg)
{
    assert (self && send);
    while (self->count) {
        s_held_t *slot = &self->ring [self->head];
        if (slot->lsn > durable && !all)
            break;
        if (slot->lsn > durable)
            zjq_msg_destroy (&slot->msg);
        else
            send (arg, &slot->msg);
        assert (!slot->msg);
        self->head = (self->head + 1) % self->max;
        self->count--;
    }
}

size_t
zjq_held_size (zjq_held_t *self)
{
    assert (self);
    return self->count;
}


//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    int64_t sent [3000];        //  the 'n' of each message, in send order
    size_t count;
} s_test_sink_t;

static void
s_test_send (void *arg, zjq_msg_t **msg_p)
{
    s_test_sink_t *sink = (s_test_sink_t *) arg;
    zchunk_t *header, *fields;
    assert (zjq_msg_encode (*msg_p, &header, &fields) == 0);
    zjq_msg_t *copy = NULL;
    zjq_msg_decode (zchunk_data (header), zchunk_size (header), zchunk_data (fields),
                    zchunk_size (fields), NULL, &copy);
    int64_t n = -1;
    assert (zjq_msg_get_int (copy, "n", &n));
    sink->sent [sink->count++] = n;
    zjq_msg_destroy (&copy);
    zchunk_destroy (&header);
    zchunk_destroy (&fields);
    zjq_msg_destroy (msg_p);
}

static zjq_msg_t *
s_test_msg (int64_t n)
{
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_BROKER, ZJQ_CMD_ACCEPTED);
    assert (msg);
    zjq_msg_put_int (msg, "n", n);
    return msg;
}

void
zjq_held_test (bool verbose)
{
    (void) verbose;
    s_test_sink_t *sink = (s_test_sink_t *) calloc (1, sizeof (s_test_sink_t));
    assert (sink);
    zjq_held_t *held = zjq_held_new ();
    assert (held && zjq_held_size (held) == 0);
    zjq_held_release (held, 100, false, s_test_send, sink);
    assert (sink->count == 0);

    //  Released in order up to the durable position, and not past it
    for (int64_t n = 0; n < 10; n++) {
        zjq_msg_t *msg = s_test_msg (n);
        assert (zjq_held_push (held, &msg, (uint64_t) (n / 2 + 1)) == 0);
        assert (msg == NULL);
    }
    assert (zjq_held_size (held) == 10);
    zjq_held_release (held, 0, false, s_test_send, sink);
    assert (sink->count == 0);
    zjq_held_release (held, 2, false, s_test_send, sink);
    assert (sink->count == 4 && zjq_held_size (held) == 6);
    for (size_t index = 0; index < sink->count; index++)
        assert (sink->sent [index] == (int64_t) index);

    //  The ring grows past its first size and wraps, keeping the order
    for (int64_t n = 10; n < 2500; n++) {
        zjq_msg_t *msg = s_test_msg (n);
        assert (zjq_held_push (held, &msg, 1000) == 0);
        if (n == 1000)
            zjq_held_release (held, 5, false, s_test_send, sink);
    }
    assert (sink->count == 10);
    zjq_held_release (held, 1000, false, s_test_send, sink);
    assert (sink->count == 2500 && zjq_held_size (held) == 0);
    for (size_t index = 0; index < sink->count; index++)
        assert (sink->sent [index] == (int64_t) index);

    //  With all, the durable ones go and the rest are dropped
    for (int64_t n = 0; n < 4; n++) {
        zjq_msg_t *msg = s_test_msg (100 + n);
        assert (zjq_held_push (held, &msg, (uint64_t) (2000 + n)) == 0);
    }
    zjq_held_release (held, 2001, true, s_test_send, sink);
    assert (sink->count == 2502 && zjq_held_size (held) == 0);
    assert (sink->sent [2500] == 100 && sink->sent [2501] == 101);

    //  Destroy drops what is still held
    zjq_msg_t *msg = s_test_msg (7);
    assert (zjq_held_push (held, &msg, 9999) == 0);
    zjq_held_destroy (&held);
    zjq_held_destroy (&held);
    assert (held == NULL);
    free (sink);
}
