/*  zjq_jobtable_scan.c: scans of the job table in submission order.

    A scan (compaction, a rewrite of the live state) takes a snapshot of
    (order, entry) pairs sorted by order; removing an entry meanwhile clears
    its pair, and jobs inserted later are not its business.                 */

#include "zjq_jobtable_private.h"
#include "zjq_log.h"
#include "zjq_util.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <stddef.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  Scans, in insertion (submission) order

//  Sort scan items by order: a radix sort on order - min, 11 bits a pass,
//  as many passes as the spread of the orders needs (qsort if out of
//  memory for the second buffer)
static int
s_compare_order (const void *a, const void *b)
{
    uint64_t first = ((const s_scan_item_t *) a)->order;
    uint64_t second = ((const s_scan_item_t *) b)->order;
    return first < second? -1: first > second;
}

void
zjq_jobtable_sort_by_order (s_scan_item_t *items, size_t count)
{
    if (count < 2)
        return;
    uint64_t min = UINT64_MAX, max = 0;
    for (size_t index = 0; index < count; index++) {
        if (items [index].order < min)
            min = items [index].order;
        if (items [index].order > max)
            max = items [index].order;
    }
    s_scan_item_t *other = (s_scan_item_t *) malloc (count * sizeof (s_scan_item_t));
    if (!other) {
        qsort (items, count, sizeof (s_scan_item_t), s_compare_order);
        return;
    }
    s_scan_item_t *from = items, *to = other;
    uint64_t spread = max - min;
    for (unsigned shift = 0; shift < 64 && (spread >> shift); shift += 11) {
        size_t position [2048] = { 0 };
        for (size_t index = 0; index < count; index++)
            position [((from [index].order - min) >> shift) & 2047]++;
        size_t total = 0;
        for (size_t digit = 0; digit < 2048; digit++) {
            size_t here = position [digit];
            position [digit] = total;
            total += here;
        }
        for (size_t index = 0; index < count; index++)
            to [position [((from [index].order - min) >> shift) & 2047]++] = from [index];
        s_scan_item_t *swap = from;
        from = to;
        to = swap;
    }
    if (from != items)
        memcpy (items, from, count * sizeof (s_scan_item_t));
    free (other);
}

int
zjq_jobtable_scan_start (zjq_jobtable_t *self)
{
    assert (self);
    zjq_jobtable_scan_stop (self);
    size_t count = zjq_hashtab_size (&self->by_id);
    if (count == 0)
        return 0;
    self->scan = (s_scan_item_t *) malloc (count * sizeof (s_scan_item_t));
    if (!self->scan)
        return -1;
    size_t taken = 0;
    size_t cursor = 0;
    zjq_jobentry_t *entry;
    while ((entry = (zjq_jobentry_t *) zjq_hashtab_next (&self->by_id, &cursor)))
        self->scan [taken++] = (s_scan_item_t) { entry->order, entry };
    assert (taken == count);
    zjq_jobtable_sort_by_order (self->scan, count);
    self->scan_count = count;
    return 0;
}

zjq_jobentry_t *
zjq_jobtable_scan_next (zjq_jobtable_t *self)
{
    assert (self);
    while (self->scan_next < self->scan_count) {
        zjq_jobentry_t *entry = self->scan [self->scan_next++].entry;
        if (entry)
            return entry;
    }
    zjq_jobtable_scan_stop (self);
    return NULL;
}

void
zjq_jobtable_scan_stop (zjq_jobtable_t *self)
{
    assert (self);
    free (self->scan);
    self->scan = NULL;
    self->scan_count = self->scan_next = 0;
}

//  An entry leaves the table: a scan must not return it
void
zjq_jobtable_scan_forget (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    size_t low = self->scan_next, high = self->scan_count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (self->scan [middle].order < entry->order)
            low = middle + 1;
        else
            high = middle;
    }
    if (low < self->scan_count && self->scan [low].entry == entry)
        self->scan [low].entry = NULL;
}


