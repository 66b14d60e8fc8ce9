/*  zjq_heap.h: a binary heap of opaque items with back-indexes.

    The heap calls set_index whenever an item moves, so each item can record
    its own position and be removed or re-sorted in O(log n). The broker uses
    it for queue order (priority, then FIFO) and for its single deadline
    structure (leases, job timeouts, result expiry). Items are not owned.  */

#ifndef ZJQ_HEAP_H_INCLUDED
#define ZJQ_HEAP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZJQ_HEAP_NONE SIZE_MAX      //  index of an item not in a heap

typedef struct _zjq_heap_t zjq_heap_t;

//  True when item a must come out before item b.
typedef bool (zjq_heap_before_fn) (const void *a, const void *b);
//  Record an item's new position; ZJQ_HEAP_NONE once it leaves the heap.
typedef void (zjq_heap_index_fn) (void *item, size_t index);

zjq_heap_t *
    zjq_heap_new (zjq_heap_before_fn *before, zjq_heap_index_fn *set_index);
//  Destroy the heap, not its items; idempotent.
void
    zjq_heap_destroy (zjq_heap_t **self_p);
//  Add an item. Returns 0, or -1 if out of memory (heap unchanged).
int
    zjq_heap_push (zjq_heap_t *self, void *item);
//  The first item, or NULL if empty.
void *
    zjq_heap_top (zjq_heap_t *self);
//  Remove and return the first item, or NULL if empty.
void *
    zjq_heap_pop (zjq_heap_t *self);
//  Remove and return the item at index (as given to set_index).
void *
    zjq_heap_remove (zjq_heap_t *self, size_t index);
//  Restore order after the key of the item at index changed.
void
    zjq_heap_update (zjq_heap_t *self, size_t index);
size_t
    zjq_heap_size (zjq_heap_t *self);
//  Item at a position, for iteration in no particular order; NULL if out
//  of range.
void *
    zjq_heap_at (zjq_heap_t *self, size_t index);

void
    zjq_heap_test (bool verbose);

#endif
