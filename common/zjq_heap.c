/*  zjq_heap.c: binary heap with back-indexes. See zjq_heap.h.             */

#include "zjq_heap.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

struct _zjq_heap_t {
    void **items;                   //  the heap array
    size_t size;                    //  items in use
    size_t capacity;                //  allocated slots
    zjq_heap_before_fn *before;     //  ordering
    zjq_heap_index_fn *set_index;   //  back-index maintenance
};

zjq_heap_t *
zjq_heap_new (zjq_heap_before_fn *before, zjq_heap_index_fn *set_index)
{
    assert (before);
    assert (set_index);
    zjq_heap_t *self = (zjq_heap_t *) calloc (1, sizeof (zjq_heap_t));
    if (!self)
        return NULL;
    self->before = before;
    self->set_index = set_index;
    return self;
}

void
zjq_heap_destroy (zjq_heap_t **self_p)
{
    assert (self_p);
    if (*self_p) {
        free ((*self_p)->items);
        free (*self_p);
        *self_p = NULL;
    }
}

static void
s_place (zjq_heap_t *self, size_t index, void *item)
{
    self->items [index] = item;
    self->set_index (item, index);
}

//  Move the item at index up until its parent comes before it
static void
s_sift_up (zjq_heap_t *self, size_t index)
{
    void *item = self->items [index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (!self->before (item, self->items [parent]))
            break;
        s_place (self, index, self->items [parent]);
        index = parent;
    }
    s_place (self, index, item);
}

//  Move the item at index down until it comes before both children
static void
s_sift_down (zjq_heap_t *self, size_t index)
{
    void *item = self->items [index];
    while (true) {
        size_t child = 2 * index + 1;
        if (child >= self->size)
            break;
        if (child + 1 < self->size && self->before (self->items [child + 1], self->items [child]))
            child++;
        if (!self->before (self->items [child], item))
            break;
        s_place (self, index, self->items [child]);
        index = child;
    }
    s_place (self, index, item);
}

int
zjq_heap_push (zjq_heap_t *self, void *item)
{
    assert (self);
    assert (item);
    if (self->size == self->capacity) {
        size_t capacity = self->capacity? self->capacity * 2: 64;
        void **items = (void **) realloc (self->items, capacity * sizeof (void *));
        if (!items)
            return -1;
        self->items = items;
        self->capacity = capacity;
    }
    self->items [self->size] = item;
    s_sift_up (self, self->size++);
    return 0;
}

void *
zjq_heap_top (zjq_heap_t *self)
{
    assert (self);
    return self->size? self->items [0]: NULL;
}

void *
zjq_heap_remove (zjq_heap_t *self, size_t index)
{
    assert (self);
    assert (index < self->size);
    void *item = self->items [index];
    self->size--;
    if (index < self->size) {
        //  Put the last item in the hole and restore order either way
        self->items [index] = self->items [self->size];
        if (index > 0 && self->before (self->items [index], self->items [(index - 1) / 2]))
            s_sift_up (self, index);
        else
            s_sift_down (self, index);
    }
    self->set_index (item, ZJQ_HEAP_NONE);
    //  Give memory back after a large drain
    if (self->capacity > 1024 && self->size < self->capacity / 4) {
        void **items = (void **) realloc (self->items, (self->capacity / 2) * sizeof (void *));
        if (items) {
            self->items = items;
            self->capacity /= 2;
        }
    }
    return item;
}

void *
zjq_heap_pop (zjq_heap_t *self)
{
    assert (self);
    return self->size? zjq_heap_remove (self, 0): NULL;
}

void
zjq_heap_update (zjq_heap_t *self, size_t index)
{
    assert (self);
    assert (index < self->size);
    if (index > 0 && self->before (self->items [index], self->items [(index - 1) / 2]))
        s_sift_up (self, index);
    else
        s_sift_down (self, index);
}

size_t
zjq_heap_size (zjq_heap_t *self)
{
    assert (self);
    return self->size;
}

void *
zjq_heap_at (zjq_heap_t *self, size_t index)
{
    assert (self);
    return index < self->size? self->items [index]: NULL;
}


//  --------------------------------------------------------------------------
//  Self test

typedef struct {
    int key;
    size_t index;
} s_test_item_t;

static bool
s_test_before (const void *a, const void *b)
{
    return ((const s_test_item_t *) a)->key < ((const s_test_item_t *) b)->key;
}

static void
s_test_set_index (void *item, size_t index)
{
    ((s_test_item_t *) item)->index = index;
}

void
zjq_heap_test (bool verbose)
{
    zjq_heap_t *heap = zjq_heap_new (s_test_before, s_test_set_index);
    assert (heap);
    assert (zjq_heap_pop (heap) == NULL);
    enum { COUNT = 5000 };
    static s_test_item_t items [COUNT];
    unsigned int seed = 7;
    for (int index = 0; index < COUNT; index++) {
        items [index].key = rand_r (&seed) % 1000;
        assert (zjq_heap_push (heap, &items [index]) == 0);
    }
    assert (zjq_heap_size (heap) == COUNT);
    //  Back-indexes are right
    for (int index = 0; index < COUNT; index++)
        assert (zjq_heap_at (heap, items [index].index) == &items [index]);
    //  Remove every third item by its index, change keys of others
    for (int index = 0; index < COUNT; index += 3) {
        assert (zjq_heap_remove (heap, items [index].index) == &items [index]);
        assert (items [index].index == ZJQ_HEAP_NONE);
    }
    for (int index = 1; index < COUNT; index += 3) {
        items [index].key = rand_r (&seed) % 1000;
        zjq_heap_update (heap, items [index].index);
    }
    //  Pops come out in order
    int last = -1;
    size_t popped = 0;
    s_test_item_t *item;
    while ((item = (s_test_item_t *) zjq_heap_pop (heap))) {
        assert (item->key >= last);
        assert (item->index == ZJQ_HEAP_NONE);
        last = item->key;
        popped++;
    }
    assert (popped == COUNT - (COUNT + 2) / 3);
    zjq_heap_destroy (&heap);
    zjq_heap_destroy (&heap);
    assert (heap == NULL);
    if (verbose)
        printf ("(heap ok) ");
}
