/*  zjq_hashtab.h: an open-addressing hash table of item pointers.

    Linear probing, deletion by backward shift (no tombstones), one pointer
    per slot and no allocation per item. The table does not own its items
    and stores no keys: the caller gives each operation the key's 64-bit
    hash, and a lookup a match callback; the table keeps one callback that
    hashes an item again, for resizing and for the backward shift. The home
    slot of a hash is its top bits (hash >> (64 - bits)), so multiplicative
    (Fibonacci) hashes spread well.

    It grows (doubles) when an insert would pass grow_eighths / 8 load and,
    when shrink_eighths is not 0, shrinks after a removal leaves it below
    shrink_eighths / 8, to the smallest size at most 2 * shrink_eighths / 8
    full (never below 1 << min_bits slots). The job id index uses 10, 7, 1
    (1024 slots, grow at 7/8, shrink below 1/8 to 1/4); the client's request
    table 6, 4, 0 (64 slots, at most half full, never shrinks).

    The struct is public so that the lookup, the hot path, is inline: with
    a static match function the compiler inlines the match too, and the
    probe loop is the same code as a hand-written table. Read the fields
    only through the functions. Embed the struct in its owner (no pointer
    to follow):

        static uint64_t s_hash (uint64_t id) { return id * 0x9E3779B97F4A7C15ULL; }
        static uint64_t s_item_hash (const void *item) { return s_hash (((req_t *) item)->id); }
        static bool s_match (const void *item, const void *key)
            { return ((const req_t *) item)->id == *(const uint64_t *) key; }

        zjq_hashtab_init (&self->requests, s_item_hash, 6, 4, 0);
        zjq_hashtab_insert (&self->requests, s_hash (req->id), req);
        req_t *req = zjq_hashtab_lookup (&self->requests, s_hash (id), s_match, &id);
        zjq_hashtab_remove (&self->requests, s_hash (req->id), req);
        size_t cursor = 0;
        while ((req = zjq_hashtab_next (&self->requests, &cursor))) ...
        zjq_hashtab_fini (&self->requests);                                */

#ifndef ZJQ_HASHTAB_H_INCLUDED
#define ZJQ_HASHTAB_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  The hash of an item's key: the same value the caller passes for it.
typedef uint64_t (zjq_hashtab_hash_fn) (const void *item);
//  True when item has the key (whatever the caller's key is).
typedef bool (zjq_hashtab_match_fn) (const void *item, const void *key);

typedef struct {
    void **slots;               //  1 << bits item pointers, NULL = free
    unsigned bits;              //  capacity is 1 << bits
    unsigned min_bits;          //  never smaller than 1 << min_bits
    unsigned grow_eighths;      //  grow past this load (eighths)
    unsigned shrink_eighths;    //  shrink below this load, 0: never
    size_t count;               //  items in it
    zjq_hashtab_hash_fn *hash;  //  rehashes an item
} zjq_hashtab_t;

//  Set up an empty table of 1 << min_bits slots (min_bits 1..40). Load
//  limits in eighths: grow_eighths 1..7, shrink_eighths 0 (never shrink)
//  or below grow_eighths / 2. Returns 0, or -1 if out of memory (then fini
//  is still safe).
int
    zjq_hashtab_init (zjq_hashtab_t *self, zjq_hashtab_hash_fn *hash, unsigned min_bits,
                      unsigned grow_eighths, unsigned shrink_eighths);

//  Free the slots, not the items; idempotent. The table is empty after it
//  (and must be initialised again before use).
void
    zjq_hashtab_fini (zjq_hashtab_t *self);

//  Double the table (called by insert). Returns 0, or -1 if out of memory
//  (the table unchanged).
int
    zjq_hashtab_grow (zjq_hashtab_t *self);

//  Remove item (by identity) if it is in; hash is its key's hash. Backward
//  shift keeps every lookup's probe run free of holes; the table may
//  shrink (if that fails for memory, it stays as it is). Returns true if
//  the item was in.
bool
    zjq_hashtab_remove (zjq_hashtab_t *self, uint64_t hash, const void *item);

//  Some item, or NULL if the table is empty.
void *
    zjq_hashtab_any (const zjq_hashtab_t *self);

//  Self-test.
void
    zjq_hashtab_test (bool verbose);


//  --------------------------------------------------------------------------
//  Inline: the hot path

//  Items in the table.
static inline size_t
zjq_hashtab_size (const zjq_hashtab_t *self)
{
    return self->count;
}

//  The home slot of a hash.
static inline size_t
zjq_hashtab_home (const zjq_hashtab_t *self, uint64_t hash)
{
    return (size_t) (hash >> (64 - self->bits));
}

//  The item whose key matches (match (item, key)), or NULL. hash is the
//  key's hash. Pass a static match function for an inlined probe.
static inline void *
zjq_hashtab_lookup (const zjq_hashtab_t *self, uint64_t hash, zjq_hashtab_match_fn *match,
                    const void *key)
{
    size_t mask = ((size_t) 1 << self->bits) - 1;
    for (size_t slot = zjq_hashtab_home (self, hash);; slot = (slot + 1) & mask) {
        void *item = self->slots [slot];
        if (!item || match (item, key))
            return item;
    }
}

//  Add an item whose key is not in the table yet (a duplicate key is not
//  detected: look up first); hash is its key's hash. Grows the table when
//  needed. Returns 0, or -1 if out of memory and too full (7/8) to go on
//  (the table unchanged).
static inline int
zjq_hashtab_insert (zjq_hashtab_t *self, uint64_t hash, void *item)
{
    size_t capacity = (size_t) 1 << self->bits;
    if ((self->count + 1) * 8 > capacity * self->grow_eighths
    &&  zjq_hashtab_grow (self) == -1
    &&  (self->count + 1) * 8 > capacity * 7)
        return -1;              //  could not grow, and too full to go on
    size_t mask = ((size_t) 1 << self->bits) - 1;
    size_t slot = zjq_hashtab_home (self, hash);
    while (self->slots [slot])
        slot = (slot + 1) & mask;
    self->slots [slot] = item;
    self->count++;
    return 0;
}

//  Iterate: set *cursor to 0, then each call returns the next item, or NULL
//  at the end. The table must not change during the walk.
static inline void *
zjq_hashtab_next (const zjq_hashtab_t *self, size_t *cursor)
{
    size_t capacity = self->slots? (size_t) 1 << self->bits: 0;
    while (*cursor < capacity) {
        void *item = self->slots [(*cursor)++];
        if (item)
            return item;
    }
    return NULL;
}

#endif
