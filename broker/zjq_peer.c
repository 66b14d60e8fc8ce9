/*  zjq_peer.c: one worker connection. See zjq_peer.h.                    */

#include "zjq_peer.h"
#include "zjq_jobid.h"
#include "zjq_util.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  One JOB a worker has not answered yet: (id, attempt)
typedef struct {
    char id [ZJQ_JOBID_MAX];    //  job id, "" when the slot is free
    int attempt;
    uint64_t bytes;             //  its JOB's payload bytes
} s_slot_t;

struct _zjq_peer_t {
    zframe_t *routing_id;       //  its ROUTER routing id
    char *key;                  //  routing id in hex: its key in broker->peers
    char *worker_id;            //  from READY
    char *host;                 //  from READY
    char *version;              //  from READY
    char user_key [ZJQ_CERT_KEY_TEXT];  //  its CURVE public key, or ""
    long long pid;              //  from READY
    zjq_queue_t **queues;       //  queues it serves, queue_count of them
    void **handles;             //  its place in each queue's worker list, or NULL
    size_t queue_count;
    size_t queue_max;           //  queues and handles allocated
    int64_t capacity;           //  jobs it runs at once
    int64_t heartbeat_ms;       //  its heartbeat interval
    int64_t last_seen;          //  monotonic ms of its last message
    int64_t last_sent;          //  monotonic ms of our last message to it
    s_slot_t *slots;            //  JOBs it has not answered yet (grows up to capacity)
    uint32_t *free_slots;       //  stack of free slot indexes
    size_t slot_max;            //  slots allocated
    size_t free_count;          //  indexes on free_slots
    size_t outstanding;         //  slots in use
    uint64_t completed;         //  results applied
    bool listed;                //  on its queues' worker lists (has credit)
    bool draining;              //  takes no more jobs
    bool unreachable;           //  a send failed: forget it at the next scan
    uint64_t bytes;             //  payload bytes of the JOBs in its slots
    uint64_t bytes_max;         //  it takes no more past this (0: no bound), but one
};

zjq_peer_t *
zjq_peer_new (const byte *routing_id, size_t size, const char *key,
              const zjq_peer_info_t *info, int64_t now)
{
    assert (key && info && info->worker_id && info->capacity >= 1);
    zjq_peer_t *self = (zjq_peer_t *) calloc (1, sizeof (zjq_peer_t));
    if (!self)
        return NULL;
    self->routing_id = zframe_new (routing_id, size);
    self->key = strdup (key);
    self->worker_id = strdup (info->worker_id);
    self->host = strdup (info->host? info->host: "?");
    self->version = strdup (info->version? info->version: "?");
    snprintf (self->user_key, sizeof (self->user_key), "%s",
              info->user_key? info->user_key: "");
    self->pid = info->pid;
    self->capacity = info->capacity;
    self->heartbeat_ms = info->heartbeat_ms;
    self->last_seen = self->last_sent = now;
    self->queue_max = info->queue_max? info->queue_max: 1;
    self->queues = (zjq_queue_t **) calloc (self->queue_max, sizeof (zjq_queue_t *));
    self->handles = (void **) calloc (self->queue_max, sizeof (void *));
    if (!self->routing_id || !self->key || !self->worker_id || !self->host || !self->version
    ||  !self->queues || !self->handles)
        goto err;
    return self;

err:
    zjq_peer_destroy (&self);
    return NULL;
}

void
zjq_peer_destroy (zjq_peer_t **self_p)
{
    assert (self_p);
    zjq_peer_t *self = *self_p;
    if (!self)
        return;
    zframe_destroy (&self->routing_id);
    free (self->slots);
    free (self->free_slots);
    free (self->key);
    free (self->worker_id);
    free (self->host);
    free (self->version);
    free (self->queues);
    free (self->handles);
    free (self);
    *self_p = NULL;
}

int
zjq_peer_add_queue (zjq_peer_t *self, zjq_queue_t *queue)
{
    assert (self && queue && !self->listed);
    for (size_t index = 0; index < self->queue_count; index++)
        if (self->queues [index] == queue)
            return 1;
    assert (self->queue_count < self->queue_max);
    self->queues [self->queue_count++] = queue;
    return 0;
}

size_t
zjq_peer_queue_count (zjq_peer_t *self)
{
    return self->queue_count;
}

zjq_queue_t *
zjq_peer_queue (zjq_peer_t *self, size_t index)
{
    assert (index < self->queue_count);
    return self->queues [index];
}

zframe_t *
zjq_peer_routing_id (zjq_peer_t *self)
{
    return self->routing_id;
}

const char *
zjq_peer_key (zjq_peer_t *self)
{
    return self->key;
}

const char *
zjq_peer_worker_id (zjq_peer_t *self)
{
    return self->worker_id;
}

const char *
zjq_peer_host (zjq_peer_t *self)
{
    return self->host;
}

const char *
zjq_peer_version (zjq_peer_t *self)
{
    return self->version;
}

const char *
zjq_peer_user_key (zjq_peer_t *self)
{
    return self->user_key;
}

long long
zjq_peer_pid (zjq_peer_t *self)
{
    return self->pid;
}

int64_t
zjq_peer_capacity (zjq_peer_t *self)
{
    return self->capacity;
}

void
zjq_peer_set_capacity (zjq_peer_t *self, int64_t capacity)
{
    assert (capacity >= 1);
    self->capacity = capacity;
}

int64_t
zjq_peer_heartbeat_ms (zjq_peer_t *self)
{
    return self->heartbeat_ms;
}

int64_t
zjq_peer_last_seen (zjq_peer_t *self)
{
    return self->last_seen;
}

void
zjq_peer_set_seen (zjq_peer_t *self, int64_t now)
{
    self->last_seen = now;
}

int64_t
zjq_peer_last_sent (zjq_peer_t *self)
{
    return self->last_sent;
}

void
zjq_peer_set_sent (zjq_peer_t *self, int64_t now)
{
    self->last_sent = now;
}

int64_t
zjq_peer_credit (zjq_peer_t *self)
{
    return self->capacity - (int64_t) self->outstanding;
}

bool
zjq_peer_can_take (zjq_peer_t *self)
{
    return !self->draining && !self->unreachable && zjq_peer_credit (self) > 0
        && (!self->bytes_max || self->bytes < self->bytes_max || !self->outstanding);
}

bool
zjq_peer_draining (zjq_peer_t *self)
{
    return self->draining;
}

void
zjq_peer_set_draining (zjq_peer_t *self)
{
    self->draining = true;
}

bool
zjq_peer_unreachable (zjq_peer_t *self)
{
    return self->unreachable;
}

void
zjq_peer_set_unreachable (zjq_peer_t *self)
{
    self->unreachable = true;
}

size_t
zjq_peer_outstanding (zjq_peer_t *self)
{
    return self->outstanding;
}

uint64_t
zjq_peer_completed (zjq_peer_t *self)
{
    return self->completed;
}

void
zjq_peer_count_completed (zjq_peer_t *self)
{
    self->completed++;
}

bool
zjq_peer_listed (zjq_peer_t *self)
{
    return self->listed;
}

void
zjq_peer_list (zjq_peer_t *self)
{
    assert (!self->listed);
    for (size_t index = 0; index < self->queue_count; index++) {
        assert (!self->handles [index]);
        self->handles [index] = zjq_queue_worker_append (self->queues [index], self);
        assert (self->handles [index]);     //  out of memory
    }
    self->listed = true;
}

void
zjq_peer_unlist (zjq_peer_t *self)
{
    if (!self->listed)
        return;
    for (size_t index = 0; index < self->queue_count; index++)
        zjq_queue_worker_remove (self->queues [index], &self->handles [index]);
    self->listed = false;
}

//  Grow the slots (doubling, up to the capacity). Returns -1 if out of
//  memory.
static int
s_slots_grow (zjq_peer_t *self)
{
    size_t max = self->slot_max? self->slot_max * 2: 16;
    if (max > (size_t) self->capacity)
        max = (size_t) self->capacity;
    assert (max > self->slot_max);
    s_slot_t *slots = (s_slot_t *) realloc (self->slots, max * sizeof (s_slot_t));
    if (!slots)
        return -1;
    self->slots = slots;
    uint32_t *free_slots = (uint32_t *) realloc (self->free_slots, max * sizeof (uint32_t));
    if (!free_slots)
        return -1;
    self->free_slots = free_slots;
    //  Lowest index on top
    for (size_t index = max; index > self->slot_max; index--) {
        self->slots [index - 1].id [0] = 0;
        self->free_slots [self->free_count++] = (uint32_t) (index - 1);
    }
    self->slot_max = max;
    return 0;
}

int
zjq_peer_slot_take (zjq_peer_t *self, const char *id, int attempt)
{
    if (self->free_count == 0 && s_slots_grow (self) == -1)
        return -1;
    uint32_t index = self->free_slots [--self->free_count];
    s_slot_t *slot = &self->slots [index];
    snprintf (slot->id, sizeof (slot->id), "%s", id);
    slot->attempt = attempt;
    slot->bytes = 0;
    self->outstanding++;
    return (int) index;
}

int
zjq_peer_slot_find (zjq_peer_t *self, uint32_t hint, const char *id, int attempt)
{
    if (hint < self->slot_max) {
        s_slot_t *slot = &self->slots [hint];
        if (slot->attempt == attempt && streq (slot->id, id))
            return (int) hint;
    }
    for (size_t index = 0; index < self->slot_max; index++) {
        s_slot_t *slot = &self->slots [index];
        if (*slot->id && slot->attempt == attempt && streq (slot->id, id))
            return (int) index;
    }
    return -1;
}

void
zjq_peer_slot_release (zjq_peer_t *self, int index)
{
    assert (index >= 0 && (size_t) index < self->slot_max && self->slots [index].id [0]);
    self->slots [index].id [0] = 0;
    self->free_slots [self->free_count++] = (uint32_t) index;
    self->outstanding--;
    self->bytes -= self->slots [index].bytes;
}

void
zjq_peer_slot_set_bytes (zjq_peer_t *self, int index, uint64_t bytes)
{
    assert (index >= 0 && (size_t) index < self->slot_max && self->slots [index].id [0]);
    self->bytes += bytes - self->slots [index].bytes;
    self->slots [index].bytes = bytes;
}

uint64_t
zjq_peer_bytes (zjq_peer_t *self)
{
    return self->bytes;
}

void
zjq_peer_set_bytes_max (zjq_peer_t *self, uint64_t bytes_max)
{
    self->bytes_max = bytes_max;
}

size_t
zjq_peer_slot_max (zjq_peer_t *self)
{
    return self->slot_max;
}

const char *
zjq_peer_slot (zjq_peer_t *self, size_t index, int *attempt_p)
{
    assert (index < self->slot_max && attempt_p);
    s_slot_t *slot = &self->slots [index];
    if (!*slot->id)
        return NULL;
    *attempt_p = slot->attempt;
    return slot->id;
}


//  --------------------------------------------------------------------------
//  Self test

void
zjq_peer_test (bool verbose)
{
    (void) verbose;
    zjq_queue_t *fast = zjq_queue_new ("fast");
    zjq_queue_t *slow = zjq_queue_new ("slow");
    assert (fast && slow);
    zjq_peer_info_t info = {
        .worker_id = "w1", .capacity = 20, .heartbeat_ms = 1000, .pid = 42, .queue_max = 3
    };
    const byte rid [] = { 0, 1, 2, 0xab };
    zjq_peer_t *peer = zjq_peer_new (rid, sizeof (rid), "000102ab", &info, 100);
    assert (peer);
    assert (streq (zjq_peer_key (peer), "000102ab"));
    assert (streq (zjq_peer_worker_id (peer), "w1"));
    assert (streq (zjq_peer_host (peer), "?") && streq (zjq_peer_version (peer), "?"));
    assert (streq (zjq_peer_user_key (peer), ""));
    assert (zjq_peer_pid (peer) == 42 && zjq_peer_heartbeat_ms (peer) == 1000);
    assert (zframe_size (zjq_peer_routing_id (peer)) == sizeof (rid));
    assert (zjq_peer_last_seen (peer) == 100 && zjq_peer_last_sent (peer) == 100);
    zjq_peer_set_seen (peer, 150);
    zjq_peer_set_sent (peer, 160);
    assert (zjq_peer_last_seen (peer) == 150 && zjq_peer_last_sent (peer) == 160);

    //  Queues: a repeated one counts once
    assert (zjq_peer_add_queue (peer, fast) == 0);
    assert (zjq_peer_add_queue (peer, slow) == 0);
    assert (zjq_peer_add_queue (peer, fast) == 1);
    assert (zjq_peer_queue_count (peer) == 2 && zjq_peer_queue (peer, 1) == slow);

    //  Listing puts it on both queues' worker lists
    assert (!zjq_peer_listed (peer));
    zjq_peer_list (peer);
    assert (zjq_peer_listed (peer));
    void *handle;
    assert (zjq_queue_worker_first (fast, &handle) == peer);
    assert (zjq_queue_worker_first (slow, &handle) == peer);
    zjq_peer_unlist (peer);
    zjq_peer_unlist (peer);     //  idempotent
    assert (!zjq_peer_listed (peer));
    assert (zjq_queue_worker_count (fast) == 0 && zjq_queue_worker_count (slow) == 0);

    //  Slots grow up to the capacity; credit follows them
    assert (zjq_peer_credit (peer) == 20 && zjq_peer_can_take (peer));
    int slots [20];
    for (int index = 0; index < 20; index++) {
        char id [ZJQ_JOBID_MAX];
        snprintf (id, sizeof (id), "job-%d", index);
        slots [index] = zjq_peer_slot_take (peer, id, 1 + index % 3);
        assert (slots [index] == index);    //  lowest free index first
    }
    assert (zjq_peer_outstanding (peer) == 20 && zjq_peer_credit (peer) == 0);
    assert (!zjq_peer_can_take (peer));
    assert (zjq_peer_slot_max (peer) == 20);
    //  Found by hint or by search; a wrong attempt is not found
    assert (zjq_peer_slot_find (peer, 7, "job-7", 2) == 7);
    assert (zjq_peer_slot_find (peer, UINT32_MAX, "job-7", 2) == 7);
    assert (zjq_peer_slot_find (peer, 3, "job-7", 2) == 7);
    assert (zjq_peer_slot_find (peer, 7, "job-7", 1) == -1);
    assert (zjq_peer_slot_find (peer, UINT32_MAX, "nope", 1) == -1);
    int attempt = 0;
    assert (streq (zjq_peer_slot (peer, 7, &attempt), "job-7") && attempt == 2);
    zjq_peer_slot_release (peer, 7);
    assert (zjq_peer_slot (peer, 7, &attempt) == NULL);
    assert (zjq_peer_slot_find (peer, 7, "job-7", 2) == -1);
    assert (zjq_peer_credit (peer) == 1 && zjq_peer_can_take (peer));
    assert (zjq_peer_slot_take (peer, "again", 5) == 7);
    zjq_peer_slot_release (peer, 7);

    //  A CREDIT lowers the capacity below what it holds: no new JOB until
    //  it answered enough; raised again, it takes more
    zjq_peer_set_capacity (peer, 1);
    assert (zjq_peer_capacity (peer) == 1 && zjq_peer_credit (peer) <= 0);
    assert (!zjq_peer_can_take (peer));
    zjq_peer_set_capacity (peer, 20);
    assert (zjq_peer_can_take (peer));

    //  Payload bytes in hand: past the bound no more, but always one
    zjq_peer_set_bytes_max (peer, 1000);
    assert (zjq_peer_can_take (peer) && zjq_peer_bytes (peer) == 0);
    zjq_peer_slot_set_bytes (peer, 3, 600);
    assert (zjq_peer_can_take (peer) && zjq_peer_bytes (peer) == 600);
    zjq_peer_slot_set_bytes (peer, 4, 400);
    assert (!zjq_peer_can_take (peer) && zjq_peer_bytes (peer) == 1000);
    zjq_peer_slot_release (peer, 4);
    assert (zjq_peer_can_take (peer) && zjq_peer_bytes (peer) == 600);
    for (int index = 0; index < 20; index++)
        if (index != 7 && index != 4)
            zjq_peer_slot_release (peer, index);
    assert (zjq_peer_outstanding (peer) == 0 && zjq_peer_bytes (peer) == 0);
    int big = zjq_peer_slot_take (peer, "big", 1);
    zjq_peer_slot_set_bytes (peer, big, 5000);
    assert (!zjq_peer_can_take (peer));
    zjq_peer_slot_release (peer, big);
    assert (zjq_peer_can_take (peer));
    zjq_peer_set_bytes_max (peer, 0);

    //  Draining and unreachable take no jobs, whatever the credit
    zjq_peer_set_draining (peer);
    assert (zjq_peer_draining (peer) && !zjq_peer_can_take (peer));
    assert (!zjq_peer_unreachable (peer));
    zjq_peer_set_unreachable (peer);
    assert (zjq_peer_unreachable (peer));
    zjq_peer_count_completed (peer);
    assert (zjq_peer_completed (peer) == 1);

    //  Destroyed while listed elsewhere is the caller's mistake; unlisted is fine
    zjq_peer_destroy (&peer);
    zjq_peer_destroy (&peer);
    assert (peer == NULL);
    zjq_queue_destroy (&fast);
    zjq_queue_destroy (&slow);
}
