/*  zjq_queue.c: one named queue. See zjq_queue.h.                          */

#include "zjq_queue.h"
#include "zjq_heap.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <string.h>

struct _zjq_queue_t {
    char *name;                     //  interned; job records point here
    zjq_heap_t *jobs;               //  waiting jobs, dispatch order
    zlistx_t *workers;              //  available workers, longest waiting first
    zjq_queue_counters_t counters;  //  for STATS
    size_t prioritized;             //  jobs in the heap with a priority other than 0
    bool paused;                    //  no dispatching (zjq pause)
};


bool
zjq_queue_before (const zjq_jobentry_t *a, const zjq_jobentry_t *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->order < b->order;
}

static bool
s_before (const void *a, const void *b)
{
    return zjq_queue_before ((const zjq_jobentry_t *) a, (const zjq_jobentry_t *) b);
}

static void
s_set_index (void *item, size_t index)
{
    ((zjq_jobentry_t *) item)->queue_index =
        index == ZJQ_HEAP_NONE? ZJQ_JOBENTRY_NONE: (uint32_t) index;
}

zjq_queue_t *
zjq_queue_new (const char *name)
{
    assert (name);
    zjq_queue_t *self = (zjq_queue_t *) calloc (1, sizeof (zjq_queue_t));
    if (!self)
        return NULL;
    self->name = strdup (name);
    self->jobs = zjq_heap_new (s_before, s_set_index);
    self->workers = zlistx_new ();
    if (!self->name || !self->jobs || !self->workers)
        zjq_queue_destroy (&self);
    return self;
}

void
zjq_queue_destroy (zjq_queue_t **self_p)
{
    assert (self_p);
    zjq_queue_t *self = *self_p;
    if (!self)
        return;
    //  Jobs still in the heap lose their back-index
    while (self->jobs && zjq_heap_pop (self->jobs))
        ;
    zjq_heap_destroy (&self->jobs);
    zlistx_destroy (&self->workers);
    free (self->name);
    free (self);
    *self_p = NULL;
}

const char *
zjq_queue_name (zjq_queue_t *self)
{
    assert (self);
    return self->name;
}

int
zjq_queue_push (zjq_queue_t *self, zjq_jobentry_t *entry)
{
    assert (self);
    assert (entry);
    assert (entry->queue_index == ZJQ_JOBENTRY_NONE);
    if (zjq_heap_push (self->jobs, entry))
        return -1;
    if (zjq_jobentry_priority (entry))
        self->prioritized++;
    return 0;
}

zjq_jobentry_t *
zjq_queue_top (zjq_queue_t *self)
{
    assert (self);
    return (zjq_jobentry_t *) zjq_heap_top (self->jobs);
}

zjq_jobentry_t *
zjq_queue_pop (zjq_queue_t *self)
{
    assert (self);
    zjq_jobentry_t *entry = (zjq_jobentry_t *) zjq_heap_pop (self->jobs);
    if (entry && entry->priority)
        self->prioritized--;
    return entry;
}

void
zjq_queue_remove (zjq_queue_t *self, zjq_jobentry_t *entry)
{
    assert (self);
    assert (entry);
    assert (entry->queue_index != ZJQ_JOBENTRY_NONE);
    assert (zjq_heap_at (self->jobs, entry->queue_index) == entry);
    zjq_heap_remove (self->jobs, entry->queue_index);
    if (entry->priority)
        self->prioritized--;
}

zjq_jobentry_t *
zjq_queue_oldest (zjq_queue_t *self)
{
    assert (self);
    zjq_jobentry_t *oldest = (zjq_jobentry_t *) zjq_heap_top (self->jobs);
    if (!self->prioritized)
        return oldest;          //  one priority: dispatch order is submission order
    size_t size = zjq_heap_size (self->jobs);
    for (size_t index = 0; index < size; index++) {
        zjq_jobentry_t *entry = (zjq_jobentry_t *) zjq_heap_at (self->jobs, index);
        if (entry->order < oldest->order)
            oldest = entry;
    }
    return oldest;
}

size_t
zjq_queue_size (zjq_queue_t *self)
{
    assert (self);
    return zjq_heap_size (self->jobs);
}

void *
zjq_queue_worker_append (zjq_queue_t *self, void *worker)
{
    assert (self);
    assert (worker);
    return zlistx_add_end (self->workers, worker);
}

void
zjq_queue_worker_remove (zjq_queue_t *self, void **handle_p)
{
    assert (self);
    assert (handle_p);
    if (*handle_p) {
        zlistx_delete (self->workers, *handle_p);
        *handle_p = NULL;
    }
}

void *
zjq_queue_worker_first (zjq_queue_t *self, void **handle_p)
{
    assert (self);
    assert (handle_p);
    void *worker = zlistx_first (self->workers);
    *handle_p = worker? zlistx_cursor (self->workers): NULL;
    return worker;
}

void *
zjq_queue_worker_next (zjq_queue_t *self, void **handle_p)
{
    assert (self);
    assert (handle_p);
    void *worker = zlistx_next (self->workers);
    *handle_p = worker? zlistx_cursor (self->workers): NULL;
    return worker;
}

void
zjq_queue_worker_rotate (zjq_queue_t *self, void *handle)
{
    assert (self);
    assert (handle);
    zlistx_move_end (self->workers, handle);
}

size_t
zjq_queue_worker_count (zjq_queue_t *self)
{
    assert (self);
    return zlistx_size (self->workers);
}

zjq_queue_counters_t *
zjq_queue_counters (zjq_queue_t *self)
{
    assert (self);
    return &self->counters;
}

bool
zjq_queue_paused (zjq_queue_t *self)
{
    assert (self);
    return self->paused;
}

void
zjq_queue_set_paused (zjq_queue_t *self, bool paused)
{
    assert (self);
    self->paused = paused;
}


//  --------------------------------------------------------------------------
//  Self test

static zjq_jobentry_t *
s_test_entry (int priority, uint64_t order)
{
    zjq_jobentry_t *entry = (zjq_jobentry_t *) calloc (1, sizeof (zjq_jobentry_t));
    assert (entry);
    entry->priority = (int16_t) priority;
    entry->order = order;
    entry->queue_index = ZJQ_JOBENTRY_NONE;
    return entry;
}

void
zjq_queue_test (bool verbose)
{
    //  Names
    assert (zjq_proto_queue_name_valid ("a"));
    assert (zjq_proto_queue_name_valid ("Resize_v2.high:eu-west-1"));
    assert (!zjq_proto_queue_name_valid (""));
    assert (!zjq_proto_queue_name_valid (NULL));
    assert (!zjq_proto_queue_name_valid ("has space"));
    assert (!zjq_proto_queue_name_valid ("slash/name"));
    assert (!zjq_proto_queue_name_valid ("caf\xc3\xa9"));
    char name [ZJQ_QUEUE_NAME_MAX + 2];
    memset (name, 'x', sizeof (name));
    name [ZJQ_QUEUE_NAME_MAX] = 0;
    assert (zjq_proto_queue_name_valid (name));
    name [ZJQ_QUEUE_NAME_MAX] = 'x';
    name [ZJQ_QUEUE_NAME_MAX + 1] = 0;
    assert (!zjq_proto_queue_name_valid (name));

    zjq_queue_t *queue = zjq_queue_new ("jobs");
    assert (queue);
    assert (streq (zjq_queue_name (queue), "jobs"));
    assert (zjq_queue_size (queue) == 0);
    assert (zjq_queue_top (queue) == NULL && zjq_queue_pop (queue) == NULL);

    //  Priority first, then submission order
    zjq_jobentry_t *low = s_test_entry (-5, 1);
    zjq_jobentry_t *normal1 = s_test_entry (0, 2);
    zjq_jobentry_t *high = s_test_entry (10, 3);
    zjq_jobentry_t *normal2 = s_test_entry (0, 4);
    zjq_jobentry_t *normal3 = s_test_entry (0, 5);
    assert (zjq_queue_before (high, low) && !zjq_queue_before (low, high));
    assert (zjq_queue_before (normal1, normal2) && !zjq_queue_before (normal2, normal1));
    zjq_jobentry_t *all [] = { low, normal1, high, normal2, normal3 };
    for (size_t index = 0; index < 5; index++) {
        assert (zjq_queue_push (queue, all [index]) == 0);
        assert (all [index]->queue_index != ZJQ_JOBENTRY_NONE);
    }
    assert (zjq_queue_size (queue) == 5);
    assert (zjq_queue_top (queue) == high);
    assert (zjq_queue_oldest (queue) == low);       //  order 1, lowest priority
    assert (zjq_queue_pop (queue) == high);
    assert (high->queue_index == ZJQ_JOBENTRY_NONE);

    //  Cancel from the middle, by back-index
    zjq_queue_remove (queue, normal2);
    assert (normal2->queue_index == ZJQ_JOBENTRY_NONE);
    assert (zjq_queue_size (queue) == 3);

    //  A retried job keeps its original order: ahead of newer jobs
    assert (zjq_queue_pop (queue) == normal1);
    assert (zjq_queue_push (queue, normal1) == 0);
    assert (zjq_queue_pop (queue) == normal1);
    assert (zjq_queue_pop (queue) == normal3);
    assert (zjq_queue_oldest (queue) == low);
    assert (zjq_queue_pop (queue) == low);
    assert (zjq_queue_pop (queue) == NULL);
    assert (zjq_queue_oldest (queue) == NULL);
    assert (queue->prioritized == 0);

    //  Many jobs come out in order, also with removals in between
    enum { COUNT = 5000 };
    zjq_jobentry_t *bulk [COUNT];
    for (int index = 0; index < COUNT; index++) {
        bulk [index] = s_test_entry ((index * 7919) % 21 - 10, (uint64_t) index + 10);
        assert (zjq_queue_push (queue, bulk [index]) == 0);
    }
    for (int index = 0; index < COUNT; index += 3)
        zjq_queue_remove (queue, bulk [index]);
    zjq_jobentry_t *previous = NULL;
    size_t popped = 0;
    zjq_jobentry_t *entry;
    while ((entry = zjq_queue_pop (queue))) {
        if (previous)
            assert (zjq_queue_before (previous, entry));
        previous = entry;
        popped++;
    }
    assert (popped == COUNT - (COUNT + 2) / 3);

    //  Destroying a queue releases jobs still in it
    assert (zjq_queue_push (queue, low) == 0);

    //  Available workers: round robin by rotation, removal by handle
    int worker_a = 1, worker_b = 2, worker_c = 3;
    void *handle_a = zjq_queue_worker_append (queue, &worker_a);
    void *handle_b = zjq_queue_worker_append (queue, &worker_b);
    void *handle_c = zjq_queue_worker_append (queue, &worker_c);
    assert (handle_a && handle_b && handle_c);
    assert (zjq_queue_worker_count (queue) == 3);
    void *handle = NULL;
    assert (zjq_queue_worker_first (queue, &handle) == &worker_a && handle == handle_a);
    zjq_queue_worker_rotate (queue, handle);
    assert (zjq_queue_worker_first (queue, &handle) == &worker_b && handle == handle_b);
    assert (zjq_queue_worker_next (queue, &handle) == &worker_c && handle == handle_c);
    assert (zjq_queue_worker_next (queue, &handle) == &worker_a && handle == handle_a);
    assert (zjq_queue_worker_next (queue, &handle) == NULL && handle == NULL);
    zjq_queue_worker_remove (queue, &handle_b);
    assert (handle_b == NULL);
    zjq_queue_worker_remove (queue, &handle_b);     //  no-op
    assert (zjq_queue_worker_first (queue, &handle) == &worker_c);
    zjq_queue_worker_rotate (queue, handle);
    assert (zjq_queue_worker_first (queue, &handle) == &worker_a);
    zjq_queue_worker_remove (queue, &handle_a);
    zjq_queue_worker_remove (queue, &handle_c);
    assert (zjq_queue_worker_count (queue) == 0);
    assert (zjq_queue_worker_first (queue, &handle) == NULL && handle == NULL);

    zjq_queue_counters (queue)->running = 2;
    assert (zjq_queue_counters (queue)->running == 2);

    zjq_queue_destroy (&queue);
    assert (queue == NULL);
    zjq_queue_destroy (&queue);
    assert (low->queue_index == ZJQ_JOBENTRY_NONE);

    for (size_t index = 0; index < 5; index++)
        free (all [index]);
    for (int index = 0; index < COUNT; index++)
        free (bulk [index]);
    if (verbose)
        printf ("(queue ok) ");
}
