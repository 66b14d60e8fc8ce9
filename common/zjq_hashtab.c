/*  zjq_hashtab.c: open-addressing hash table of item pointers. See
    zjq_hashtab.h.                                                          */

#include "zjq_hashtab.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Rehash into 1 << bits slots. Returns 0, or -1 if out of memory
//  (unchanged).
static int
s_resize (zjq_hashtab_t *self, unsigned bits)
{
    void **slots = (void **) calloc ((size_t) 1 << bits, sizeof (void *));
    if (!slots)
        return -1;
    size_t mask = ((size_t) 1 << bits) - 1;
    size_t old_capacity = self->slots? (size_t) 1 << self->bits: 0;
    for (size_t index = 0; index < old_capacity; index++) {
        void *item = self->slots [index];
        if (!item)
            continue;
        size_t slot = (size_t) (self->hash (item) >> (64 - bits));
        while (slots [slot])
            slot = (slot + 1) & mask;
        slots [slot] = item;
    }
    free (self->slots);
    self->slots = slots;
    self->bits = bits;
    return 0;
}

int
zjq_hashtab_init (zjq_hashtab_t *self, zjq_hashtab_hash_fn *hash, unsigned min_bits,
                  unsigned grow_eighths, unsigned shrink_eighths)
{
    assert (self);
    assert (hash);
    assert (min_bits >= 1 && min_bits <= 40);
    assert (grow_eighths >= 1 && grow_eighths <= 7);
    assert (shrink_eighths == 0 || shrink_eighths * 2 < grow_eighths);
    memset (self, 0, sizeof (*self));
    self->hash = hash;
    self->min_bits = min_bits;
    self->grow_eighths = grow_eighths;
    self->shrink_eighths = shrink_eighths;
    self->bits = min_bits;
    return s_resize (self, min_bits);
}

void
zjq_hashtab_fini (zjq_hashtab_t *self)
{
    assert (self);
    free (self->slots);
    self->slots = NULL;
    self->count = 0;
}

int
zjq_hashtab_grow (zjq_hashtab_t *self)
{
    assert (self);
    return s_resize (self, self->bits + 1);
}

//  Give memory back once it is mostly empty
static void
s_shrink (zjq_hashtab_t *self)
{
    size_t capacity = (size_t) 1 << self->bits;
    if (self->shrink_eighths == 0 || self->bits <= self->min_bits
    ||  self->count * 8 >= capacity * self->shrink_eighths)
        return;
    unsigned bits = self->min_bits;
    while (((size_t) 1 << bits) * self->shrink_eighths * 2 < self->count * 8)
        bits++;
    s_resize (self, bits);      //  out of memory: stays as it is
}

bool
zjq_hashtab_remove (zjq_hashtab_t *self, uint64_t hash, const void *item)
{
    assert (self);
    assert (item);
    size_t mask = ((size_t) 1 << self->bits) - 1;
    size_t hole = zjq_hashtab_home (self, hash);
    while (self->slots [hole] != item) {
        if (!self->slots [hole])
            return false;
        hole = (hole + 1) & mask;
    }
    //  Pull later items of the probe run back into the hole, unless their
    //  home lies cyclically in (hole, slot]
    for (size_t slot = (hole + 1) & mask; self->slots [slot]; slot = (slot + 1) & mask) {
        size_t home = zjq_hashtab_home (self, self->hash (self->slots [slot]));
        bool stays = hole <= slot? (home > hole && home <= slot)
                                 : (home > hole || home <= slot);
        if (!stays) {
            self->slots [hole] = self->slots [slot];
            hole = slot;
        }
    }
    self->slots [hole] = NULL;
    self->count--;
    s_shrink (self);
    return true;
}

void *
zjq_hashtab_any (const zjq_hashtab_t *self)
{
    assert (self);
    size_t cursor = 0;
    return self->count? zjq_hashtab_next (self, &cursor): NULL;
}


//  --------------------------------------------------------------------------
//  Self-test

typedef struct {
    uint64_t generation;
    uint64_t sequence;
    bool in;                    //  in the table (the test's own record)
} s_test_item_t;

typedef struct {
    uint64_t generation;
    uint64_t sequence;
} s_test_key_t;

static uint64_t s_test_collide;    //  nonzero: every hash is this value

static uint64_t
s_test_key_hash (uint64_t generation, uint64_t sequence)
{
    if (s_test_collide)
        return s_test_collide;
    return (sequence ^ (generation * 0xC2B2AE3D27D4EB4FULL)) * 0x9E3779B97F4A7C15ULL;
}

static uint64_t
s_test_hash (const void *item)
{
    const s_test_item_t *self = (const s_test_item_t *) item;
    return s_test_key_hash (self->generation, self->sequence);
}

static bool
s_test_match (const void *item, const void *key)
{
    const s_test_item_t *self = (const s_test_item_t *) item;
    const s_test_key_t *wanted = (const s_test_key_t *) key;
    return self->sequence == wanted->sequence && self->generation == wanted->generation;
}

static s_test_item_t *
s_test_lookup (zjq_hashtab_t *table, uint64_t generation, uint64_t sequence)
{
    s_test_key_t key = { generation, sequence };
    return (s_test_item_t *) zjq_hashtab_lookup (table, s_test_key_hash (generation, sequence),
                                                 s_test_match, &key);
}

//  Every item is found exactly when it is in, and the walk sees each once
static void
s_test_check (zjq_hashtab_t *table, s_test_item_t *items, size_t count)
{
    size_t in = 0;
    for (size_t index = 0; index < count; index++) {
        s_test_item_t *found = s_test_lookup (table, items [index].generation,
                                              items [index].sequence);
        assert (found == (items [index].in? &items [index]: NULL));
        in += items [index].in;
    }
    assert (zjq_hashtab_size (table) == in);
    size_t cursor = 0, walked = 0;
    s_test_item_t *item;
    while ((item = (s_test_item_t *) zjq_hashtab_next (table, &cursor))) {
        assert (item->in);
        walked++;
    }
    assert (walked == in);
    assert ((zjq_hashtab_any (table) != NULL) == (in > 0));
}

static void
s_test_remove (zjq_hashtab_t *table, s_test_item_t *item)
{
    bool was_in = zjq_hashtab_remove (table, s_test_hash (item), item);
    assert (was_in == item->in);
    item->in = false;
}

void
zjq_hashtab_test (bool verbose)
{
    (void) verbose;
    enum { COUNT = 50000 };
    s_test_item_t *items = (s_test_item_t *) calloc (COUNT, sizeof (s_test_item_t));
    assert (items);
    for (size_t index = 0; index < COUNT; index++) {
        items [index].generation = 1700000000000ULL + index % 3;
        items [index].sequence = index / 3 + 1;
    }
    //  The job index's policy: grows past 3/4, shrinks back after a drain
    zjq_hashtab_t table;
    assert (zjq_hashtab_init (&table, s_test_hash, 4, 6, 1) == 0);
    assert (zjq_hashtab_size (&table) == 0);
    assert (zjq_hashtab_any (&table) == NULL);
    assert (s_test_lookup (&table, 1, 1) == NULL);
    for (size_t index = 0; index < COUNT; index++) {
        assert (zjq_hashtab_insert (&table, s_test_hash (&items [index]), &items [index]) == 0);
        items [index].in = true;
        size_t capacity = (size_t) 1 << table.bits;
        assert (table.count * 8 <= capacity * 6);
    }
    assert (table.bits == 17);          //  50000 is past 3/4 of 65536 slots
    s_test_check (&table, items, COUNT);
    //  Remove every other one, in a scattered order: shift keeps runs whole
    unsigned int seed = 11;
    for (size_t round = 0; round < COUNT; round++) {
        size_t index = (size_t) rand_r (&seed) % COUNT;
        if (index % 2)
            s_test_remove (&table, &items [index]);
    }
    for (size_t index = 1; index < COUNT; index += 2)
        s_test_remove (&table, &items [index]);
    s_test_check (&table, items, COUNT);
    //  Removing what is not in is a no-op
    s_test_remove (&table, &items [1]);
    //  Drain: the table shrinks back to its smallest size
    for (size_t index = 0; index < COUNT; index += 2) {
        s_test_remove (&table, &items [index]);
        size_t capacity = (size_t) 1 << table.bits;
        assert (table.bits == table.min_bits || table.count * 8 >= capacity);
        if (index % 5000 == 0)
            s_test_check (&table, items, COUNT);
    }
    assert (table.bits == 4);
    s_test_check (&table, items, COUNT);
    //  Random churn against the record
    for (size_t round = 0; round < 200000; round++) {
        size_t index = (size_t) rand_r (&seed) % 2000;
        if (items [index].in)
            s_test_remove (&table, &items [index]);
        else {
            assert (zjq_hashtab_insert (&table, s_test_hash (&items [index]), &items [index]) == 0);
            items [index].in = true;
        }
    }
    s_test_check (&table, items, 2000);
    for (size_t index = 0; index < 2000; index++)
        s_test_remove (&table, &items [index]);
    zjq_hashtab_fini (&table);
    zjq_hashtab_fini (&table);          //  idempotent

    //  The request table's policy: at most half full, never shrinks;
    //  colliding keys (one hash for all) still come and go correctly,
    //  including runs that wrap around the end of the slots
    assert (zjq_hashtab_init (&table, s_test_hash, 3, 4, 0) == 0);
    s_test_collide = 0xFFFFFFFFFFFFFFFFULL;     //  home: the last slot
    for (size_t index = 0; index < 300; index++) {
        items [index].in = false;
        assert (zjq_hashtab_insert (&table, s_test_hash (&items [index]), &items [index]) == 0);
        items [index].in = true;
    }
    assert (table.count * 2 <= (size_t) 1 << table.bits);
    s_test_check (&table, items, 300);
    for (size_t index = 0; index < 300; index += 3)
        s_test_remove (&table, &items [index]);
    s_test_check (&table, items, 300);
    unsigned bits = table.bits;
    for (size_t index = 0; index < 300; index++)
        s_test_remove (&table, &items [index]);
    assert (table.bits == bits);        //  never shrinks
    s_test_check (&table, items, 300);
    s_test_collide = 0;
    //  Keys that share a sequence and differ in generation
    for (size_t index = 0; index < 1000; index++) {
        items [index].sequence = index % 7;
        items [index].generation = index;
    }
    for (size_t index = 0; index < 1000; index++) {
        assert (zjq_hashtab_insert (&table, s_test_hash (&items [index]), &items [index]) == 0);
        items [index].in = true;
    }
    for (size_t index = 0; index < 1000; index += 2)
        s_test_remove (&table, &items [index]);
    s_test_check (&table, items, 1000);
    zjq_hashtab_fini (&table);
    free (items);
}
