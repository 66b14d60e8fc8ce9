/*  zjq_backlog.c: the outbound backlog of each client connection. See
    zjq_backlog.h.                                                        */

#include "zjq_backlog.h"
#include <assert.h>
#include <string.h>

#define S_RID_MAX 256           //  libzmq routing ids are 1..255 bytes

typedef struct {
    byte routing_id [S_RID_MAX];
    size_t size;                //  bytes in routing_id
    uint64_t sent;              //  bytes sent since it appeared
    uint64_t acked;             //  of which it has read (<= sent)
    bool acks;                  //  it sends `ack`
    int64_t last_seen;          //  monotonic ms of its last message
    int64_t last_probe;         //  ... of the last probe to it
} s_conn_t;

struct _zjq_backlog_t {
    zhashx_t *conns;            //  hex routing id -> s_conn_t (owned)
    uint64_t peer_max;          //  allowance per connection
    uint64_t total_max;         //  all connections
    uint64_t total;             //  sum of sent - acked
    uint64_t slack;             //  unread bytes under which one big message goes
};

static void
s_conn_destroy (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static char *
s_key (const byte *data, size_t size, char *buf)
{
    static const char hex [] = "0123456789abcdef";
    if (size > S_RID_MAX)
        size = S_RID_MAX;
    for (size_t index = 0; index < size; index++) {
        buf [2 * index] = hex [data [index] >> 4];
        buf [2 * index + 1] = hex [data [index] & 15];
    }
    buf [2 * size] = 0;
    return buf;
}

zjq_backlog_t *
zjq_backlog_new (uint64_t peer_max, uint64_t total_max)
{
    assert (peer_max > 0 && total_max > 0);
    zjq_backlog_t *self = (zjq_backlog_t *) calloc (1, sizeof (zjq_backlog_t));
    if (!self)
        return NULL;
    self->conns = zhashx_new ();
    if (!self->conns)
        goto err;
    zhashx_set_destructor (self->conns, s_conn_destroy);
    self->peer_max = peer_max;
    self->total_max = total_max;
    self->slack = peer_max / 2 < ZJQ_BACKLOG_SLACK? peer_max / 2: ZJQ_BACKLOG_SLACK;
    return self;
err:
    zjq_backlog_destroy (&self);
    return NULL;
}

void
zjq_backlog_destroy (zjq_backlog_t **self_p)
{
    assert (self_p);
    zjq_backlog_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->conns);
    free (self);
    *self_p = NULL;
}

static s_conn_t *
s_lookup (zjq_backlog_t *self, const byte *routing_id, size_t size, char *key)
{
    return (s_conn_t *) zhashx_lookup (self->conns, s_key (routing_id, size, key));
}

//  The connection, created if new; NULL if out of memory
static s_conn_t *
s_require (zjq_backlog_t *self, const byte *routing_id, size_t size, int64_t now)
{
    char key [2 * S_RID_MAX + 1];
    s_conn_t *conn = s_lookup (self, routing_id, size, key);
    if (conn)
        return conn;
    conn = (s_conn_t *) calloc (1, sizeof (s_conn_t));
    if (!conn)
        return NULL;
    conn->size = size > S_RID_MAX? S_RID_MAX: size;
    memcpy (conn->routing_id, routing_id, conn->size);
    conn->last_seen = now;
    conn->last_probe = now;
    if (zhashx_insert (self->conns, key, conn) != 0) {
        free (conn);
        return NULL;
    }
    return conn;
}

uint64_t
zjq_backlog_sent (zjq_backlog_t *self, const byte *routing_id, size_t size, uint64_t bytes,
                  int64_t now, bool *acks_p)
{
    s_conn_t *conn = s_require (self, routing_id, size, now);
    *acks_p = conn && conn->acks;
    if (!conn)
        return 0;
    conn->sent += bytes;
    self->total += bytes;
    return conn->sent;
}

void
zjq_backlog_seen (zjq_backlog_t *self, const byte *routing_id, size_t size, bool has_ack,
                  uint64_t ack, int64_t now)
{
    s_conn_t *conn = s_require (self, routing_id, size, now);
    if (!conn)
        return;
    conn->last_seen = now;
    if (!has_ack)
        return;
    conn->acks = true;
    if (ack > conn->sent)
        ack = conn->sent;
    if (ack > conn->acked) {
        self->total -= ack - conn->acked;
        conn->acked = ack;
    }
}

bool
zjq_backlog_acks (zjq_backlog_t *self, const byte *routing_id, size_t size)
{
    char key [2 * S_RID_MAX + 1];
    s_conn_t *conn = s_lookup (self, routing_id, size, key);
    return conn && conn->acks;
}

bool
zjq_backlog_fits (zjq_backlog_t *self, const byte *routing_id, size_t size, uint64_t bytes,
                  bool total)
{
    if (total && self->total + bytes > self->total_max)
        return false;
    char key [2 * S_RID_MAX + 1];
    s_conn_t *conn = s_lookup (self, routing_id, size, key);
    uint64_t unread = conn? conn->sent - conn->acked: 0;
    return unread + bytes <= self->peer_max || unread <= self->slack;
}

void
zjq_backlog_forget (zjq_backlog_t *self, const byte *routing_id, size_t size)
{
    char key [2 * S_RID_MAX + 1];
    s_conn_t *conn = s_lookup (self, routing_id, size, key);
    if (!conn)
        return;
    self->total -= conn->sent - conn->acked;
    zhashx_delete (self->conns, key);
}

void
zjq_backlog_idle (zjq_backlog_t *self, int64_t now, int64_t idle_ms,
                  zjq_backlog_probe_fn *probe, void *arg)
{
    for (s_conn_t *conn = (s_conn_t *) zhashx_first (self->conns); conn;
         conn = (s_conn_t *) zhashx_next (self->conns))
        if (conn->last_seen <= now - idle_ms && conn->last_probe <= now - idle_ms) {
            conn->last_probe = now;
            probe (arg, conn->routing_id, conn->size);
        }
}

uint64_t
zjq_backlog_total (zjq_backlog_t *self)
{
    return self->total;
}

size_t
zjq_backlog_size (zjq_backlog_t *self)
{
    return zhashx_size (self->conns);
}

size_t
zjq_backlog_top (zjq_backlog_t *self, zjq_backlog_info_t *top, size_t max)
{
    size_t count = 0;
    for (s_conn_t *conn = (s_conn_t *) zhashx_first (self->conns); conn;
         conn = (s_conn_t *) zhashx_next (self->conns)) {
        uint64_t bytes = conn->sent - conn->acked;
        if (!bytes || !max)
            continue;
        //  Insertion into the sorted top (max is small)
        size_t at = count;
        while (at > 0 && top [at - 1].bytes < bytes)
            at--;
        if (at >= max)
            continue;
        size_t last = count < max? count: max - 1;
        memmove (&top [at + 1], &top [at], (last - at) * sizeof (top [0]));
        s_key (conn->routing_id, conn->size, top [at].key);
        top [at].bytes = bytes;
        top [at].acks = conn->acks;
        if (count < max)
            count++;
    }
    return count;
}


//  --------------------------------------------------------------------------
//  Self test

static size_t s_probed;

static void
s_probe (void *arg, const byte *routing_id, size_t size)
{
    (void) arg;
    (void) routing_id;
    assert (size == 2);
    s_probed++;
}

void
zjq_backlog_test (bool verbose)
{
    if (verbose)
        printf (" * zjq_backlog: ");
    zjq_backlog_t *backlog = zjq_backlog_new (1000, 1500);
    assert (backlog);
    const byte a [] = { 0, 1 }, b [] = { 0, 2 };
    bool acks;
    //  A connection that never acknowledges keeps everything counted
    assert (zjq_backlog_fits (backlog, a, 2, 900, true));
    assert (zjq_backlog_sent (backlog, a, 2, 900, 0, &acks) == 900);
    assert (!zjq_backlog_acks (backlog, a, 2));
    assert (!zjq_backlog_fits (backlog, a, 2, 200, true));
    assert (zjq_backlog_fits (backlog, a, 2, 100, true));
    //  One that acknowledges: its backlog is what it has not read
    zjq_backlog_seen (backlog, b, 2, true, 0, 0);
    assert (zjq_backlog_acks (backlog, b, 2));
    assert (zjq_backlog_sent (backlog, b, 2, 500, 0, &acks) == 500 && acks);
    assert (zjq_backlog_total (backlog) == 1400);
    //  The total limits both
    assert (!zjq_backlog_fits (backlog, b, 2, 200, true));
    zjq_backlog_seen (backlog, b, 2, true, 500, 1);
    assert (zjq_backlog_total (backlog) == 900);
    //  Nothing unread: a big one goes (the slack), the total permitting
    assert (!zjq_backlog_fits (backlog, b, 2, 700, true));
    zjq_backlog_forget (backlog, a, 2);
    assert (zjq_backlog_total (backlog) == 0);
    assert (zjq_backlog_fits (backlog, b, 2, 1200, true));
    assert (!zjq_backlog_fits (backlog, b, 2, 1600, true));
    assert (zjq_backlog_fits (backlog, b, 2, 1600, false));
    //  An ack past the count (an earlier connection's stamp) is clamped
    assert (zjq_backlog_sent (backlog, b, 2, 100, 2, &acks) == 600);
    zjq_backlog_seen (backlog, b, 2, true, 5000, 2);
    assert (zjq_backlog_total (backlog) == 0);
    assert (zjq_backlog_sent (backlog, b, 2, 50, 2, &acks) == 650);
    //  Older acks change nothing
    zjq_backlog_seen (backlog, b, 2, true, 10, 2);
    assert (zjq_backlog_total (backlog) == 50);
    //  Top, largest first
    assert (zjq_backlog_sent (backlog, a, 2, 70, 2, &acks) == 70);
    zjq_backlog_info_t top [2];
    assert (zjq_backlog_top (backlog, top, 2) == 2);
    assert (top [0].bytes == 70 && streq (top [0].key, "0001") && !top [0].acks);
    assert (top [1].bytes == 50 && top [1].acks);
    assert (zjq_backlog_top (backlog, top, 1) == 1 && top [0].bytes == 70);
    //  Idle connections are probed once per idle period
    assert (zjq_backlog_size (backlog) == 2);
    s_probed = 0;
    zjq_backlog_idle (backlog, 5, 10, s_probe, NULL);
    assert (s_probed == 0);
    zjq_backlog_idle (backlog, 12, 10, s_probe, NULL);
    assert (s_probed == 2);
    zjq_backlog_idle (backlog, 15, 10, s_probe, NULL);
    assert (s_probed == 2);
    zjq_backlog_seen (backlog, a, 2, false, 0, 20);
    zjq_backlog_idle (backlog, 23, 10, s_probe, NULL);
    assert (s_probed == 3);
    zjq_backlog_destroy (&backlog);
    zjq_backlog_destroy (&backlog);
    if (verbose)
        printf ("OK\n");
}
