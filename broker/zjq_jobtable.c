/*  zjq_jobtable.c: every job the broker holds. See zjq_jobtable.h.

    Memory. A queued job costs one allocation: the compact entry with its
    payload inline (up to ZJQ_JOBENTRY_INLINE_MAX bytes), one slot in the id
    index and one in its queue's heap. Everything else is in the side block,
    allocated the first time a job needs it (a key, a long duration, a
    waiter, the first attempt, an attempt history) and freed with the
    entry. Owner keys are
    interned: entries of one submitter share one refcounted copy.

    Indexes. The id index is an open-addressing hash table (linear probing,
    deletion by backward shift, no tombstones) of entry pointers keyed by
    (generation, sequence), the two numbers of the id; it grows at 3/4 load
    and shrinks below 1/8, so memory comes back after a drain. Idempotency
    keys are in a zhashx from "queue/key" to entry ('/' cannot appear in a
    queue name, so the pair is unambiguous). Heaps: one deadline heap
    (running jobs by timeout, ended jobs by expiry) and one result heap
    (ended jobs holding result bytes, by expiry) for eviction under the
    result memory bound.

    Scans (journal compaction) take a snapshot of (order, entry) pairs
    sorted by order; removing an entry meanwhile clears its pair.

    Dead letters. A failed job keeps its payload where it was (inline or its
    frame; a result, if any, then goes in a frame in the side block) and its
    attempt history (in the side block), which also holds its links on the
    dead-letter list (zjq_history.h).                                       */

#include "zjq_jobtable.h"
#include "zjq_queue.h"
#include "zjq_log.h"
#include "zjq_util.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <stddef.h>
#include <string.h>
#include <malloc.h>

#define ZJQ_JOBENTRY_FRAME   0x01       //  flags: payload area holds a zframe_t *
#define ZJQ_JOBENTRY_NOPAY   0x02       //  flags: the payload is gone (job ended)
#define ZJQ_JOBENTRY_RESULT  0x04       //  flags: payload area holds the result
#define ZJQ_JOBENTRY_WIDE    0x08       //  flags: attempt counts are in the side block
#define ZJQ_DURATION_SIDE    UINT32_MAX //  a duration kept in the side block
#define ZJQ_INDEX_MIN_BITS   10         //  smallest id index: 1024 slots

//  Fields only some jobs need. The deadline and result heaps hold side
//  blocks (so that comparing two reads one block each), which point back
//  at their entries.
struct _zjq_jobside_t {
    zjq_jobentry_t *entry;      //  the entry this block belongs to
    uint64_t order;             //  the entry's order (the heaps' tie-break)
    char *key;                  //  idempotency key, or NULL
    char *error;                //  final error, or the last failed attempt's reason
    char *progress_message;     //  or NULL
    zframe_t *result;           //  the result of a succeeded job, or NULL
    zjq_peer_t *peer;           //  the worker running the current attempt, or NULL
    byte *waiters;              //  clients to send DONE to, packed: for each, a
                                //  size byte and its routing id, then a size
                                //  byte and its CURVE key (Z85; 0: none)
    int64_t deadline;           //  monotonic ms: attempt timeout, or outcome expiry
    int64_t started_ms;         //  start of the current or last attempt; 0 = never
    int64_t finished_ms;        //  0 until the job ends
    int64_t expires_ms;         //  when the outcome is dropped; 0 until the end
    int64_t job_timeout_ms;     //  exact, when the entry says ZJQ_DURATION_SIDE
    int64_t result_ttl_ms;      //  exact, when the entry says ZJQ_DURATION_SIDE
    double progress;            //  0..1 as reported by the worker; < 0 = none
    zjq_history_t *history;     //  failed attempts (and dead-letter links), or NULL
    int32_t attempt;            //  exact, when the entry says ZJQ_JOBENTRY_WIDE
    int32_t max_attempts;       //  ditto
    uint32_t deadline_index;    //  position in the deadline heap, or ZJQ_JOBENTRY_NONE
    uint32_t result_index;      //  position in the result heap, or ZJQ_JOBENTRY_NONE
    uint32_t peer_slot;         //  the attempt's slot on the worker (the broker's)
    uint32_t waiter_count;      //  waiters in use
    uint32_t waiter_bytes;      //  bytes of waiters in use
    uint32_t waiter_max;        //  bytes of waiters allocated
};

//  An interned owner key
struct _zjq_owner_t {
    size_t refs;                //  entries pointing here
    char text [ZJQ_CERT_KEY_TEXT];
};

//  The id index
typedef struct {
    zjq_jobentry_t **slots;     //  entry pointers, NULL = free
    unsigned bits;              //  capacity is 1 << bits
    size_t count;               //  entries in it
} s_index_t;

//  One job of a scan
typedef struct {
    uint64_t order;             //  the entry's order (valid after its removal)
    zjq_jobentry_t *entry;      //  NULL once removed
} s_scan_item_t;

struct _zjq_jobtable_t {
    uint64_t generation;        //  broker start time, Unix ms
    uint64_t next_sequence;     //  sequence of the next id, from 1
    uint64_t next_order;        //  submission order of the next job
    s_index_t by_id;            //  (generation, sequence) -> entry
    zhashx_t *by_key;           //  "queue/key" -> entry
    zhashx_t *owners;           //  owner text -> zjq_owner_t (owned)
    zjq_heap_t *deadlines;      //  running (timeout) and ended (expiry) jobs
    zjq_heap_t *results;        //  ended jobs with result bytes, by expiry
    zjq_jobtable_stats_t stats; //  counters
    zjq_journal_t *journal;     //  where changes are appended, or NULL
    s_scan_item_t *scan;        //  the jobs of a scan, by order, or NULL
    size_t scan_count;          //  items in scan
    size_t scan_next;           //  next item to return
    uint64_t *generations;      //  earlier generations: (generation, last sequence)
    size_t generation_count;    //  pairs in generations
    zjq_deadlist_t dead;        //  failed jobs (dead letters), oldest failure first
    int64_t dead_ttl_ms;        //  a failed job is kept at least this long
};


//  --------------------------------------------------------------------------
//  The id index

//  Fibonacci hashing: consecutive sequences land far apart
static inline size_t
s_index_home (const s_index_t *index, uint64_t generation, uint64_t sequence)
{
    uint64_t hash = (sequence ^ (generation * 0xC2B2AE3D27D4EB4FULL)) * 0x9E3779B97F4A7C15ULL;
    return (size_t) (hash >> (64 - index->bits));
}

static inline size_t
s_index_mask (const s_index_t *index)
{
    return ((size_t) 1 << index->bits) - 1;
}

//  The slot holding (generation, sequence), or SIZE_MAX
static size_t
s_index_find (const s_index_t *index, uint64_t generation, uint64_t sequence)
{
    size_t mask = s_index_mask (index);
    for (size_t slot = s_index_home (index, generation, sequence);; slot = (slot + 1) & mask) {
        const zjq_jobentry_t *entry = index->slots [slot];
        if (!entry)
            return SIZE_MAX;
        if (entry->sequence == sequence && entry->generation == generation)
            return slot;
    }
}

static void
s_index_place (s_index_t *index, zjq_jobentry_t *entry)
{
    size_t mask = s_index_mask (index);
    size_t slot = s_index_home (index, entry->generation, entry->sequence);
    while (index->slots [slot])
        slot = (slot + 1) & mask;
    index->slots [slot] = entry;
}

//  Rehash into 1 << bits slots. Returns 0, or -1 if out of memory
//  (unchanged).
static int
s_index_resize (s_index_t *index, unsigned bits)
{
    zjq_jobentry_t **slots = (zjq_jobentry_t **) calloc ((size_t) 1 << bits, sizeof (*slots));
    if (!slots)
        return -1;
    s_index_t resized = { slots, bits, index->count };
    if (index->slots)
        for (size_t slot = 0; slot <= s_index_mask (index); slot++)
            if (index->slots [slot])
                s_index_place (&resized, index->slots [slot]);
    free (index->slots);
    *index = resized;
    return 0;
}

//  Add an entry (its id must not be in the index). Returns 0, or -1 if out
//  of memory (unchanged).
static int
s_index_insert (s_index_t *index, zjq_jobentry_t *entry)
{
    size_t capacity = (size_t) 1 << index->bits;
    if ((index->count + 1) * 4 > capacity * 3
    &&  s_index_resize (index, index->bits + 1) == -1
    &&  (index->count + 1) * 8 > capacity * 7)
        return -1;              //  could not grow, and too full to go on
    s_index_place (index, entry);
    index->count++;
    return 0;
}

//  Remove the entry at slot, shifting later entries of its probe run back
//  so that no lookup meets a hole before its entry
static void
s_index_remove_at (s_index_t *index, size_t hole)
{
    size_t mask = s_index_mask (index);
    size_t slot = hole;
    while (true) {
        slot = (slot + 1) & mask;
        zjq_jobentry_t *entry = index->slots [slot];
        if (!entry)
            break;
        size_t home = s_index_home (index, entry->generation, entry->sequence);
        //  The entry may move to the hole if its home is not in (hole, slot]
        bool stays = hole <= slot? (home > hole && home <= slot)
                                 : (home > hole || home <= slot);
        if (!stays) {
            index->slots [hole] = entry;
            hole = slot;
        }
    }
    index->slots [hole] = NULL;
    index->count--;
    //  Give memory back once it is mostly empty (to 1/4 load)
    if (index->bits > ZJQ_INDEX_MIN_BITS && index->count * 8 < ((size_t) 1 << index->bits)) {
        unsigned bits = ZJQ_INDEX_MIN_BITS;
        while (((size_t) 1 << bits) < index->count * 4)
            bits++;
        s_index_resize (index, bits);   //  out of memory: stays as it is
    }
}


//  --------------------------------------------------------------------------
//  Entries, side blocks, owners

static size_t
s_entry_alloc_size (size_t payload_area)
{
    size_t size = offsetof (zjq_jobentry_t, payload) + payload_area;
    return size < sizeof (zjq_jobentry_t)? sizeof (zjq_jobentry_t): size;
}

static zframe_t *
s_entry_frame (const zjq_jobentry_t *entry)
{
    zframe_t *frame = NULL;
    if (entry->flags & ZJQ_JOBENTRY_FRAME)
        memcpy (&frame, entry->payload, sizeof (frame));
    return frame;
}

static void
s_entry_set_frame (zjq_jobentry_t *entry, zframe_t *frame)
{
    memcpy (entry->payload, &frame, sizeof (frame));
}

//  The side block, allocated if need be; NULL if out of memory
static zjq_jobside_t *
s_side_try (zjq_jobentry_t *entry)
{
    if (!entry->side) {
        zjq_jobside_t *side = (zjq_jobside_t *) calloc (1, sizeof (zjq_jobside_t));
        if (!side)
            return NULL;
        side->entry = entry;
        side->order = entry->order;
        side->progress = -1;
        side->deadline_index = ZJQ_JOBENTRY_NONE;
        side->result_index = ZJQ_JOBENTRY_NONE;
        side->peer_slot = UINT32_MAX;
        entry->side = side;
    }
    return entry->side;
}

//  The side block for a state change, which cannot be undone half-way
static zjq_jobside_t *
s_side (zjq_jobentry_t *entry)
{
    zjq_jobside_t *side = s_side_try (entry);
    if (!side) {
        zjq_log_error ("out_of_memory", "what=job_state job=%s msg=%s",
                       zjq_jobentry_id (entry).text, "aborting");
        abort ();
    }
    return side;
}

//  Forget all waiters and give their array back (a job has waiters rarely
//  and briefly)
static void
s_side_clear_waiters (zjq_jobside_t *side)
{
    free (side->waiters);
    side->waiters = NULL;
    side->waiter_count = side->waiter_bytes = side->waiter_max = 0;
}

static void
s_side_free (zjq_jobside_t **side_p)
{
    zjq_jobside_t *side = *side_p;
    if (!side)
        return;
    s_side_clear_waiters (side);
    free (side->key);
    free (side->error);
    free (side->progress_message);
    zframe_destroy (&side->result);
    if (side->history)
        side->history->owner = NULL;    //  off any list: removal unlinked it, or the table goes
    zjq_history_destroy (&side->history);
    free (side);
    *side_p = NULL;
}

//  Store a duration in the entry's field, or exactly in the side block if
//  it does not fit. Returns 0, or -1 if out of memory for the side block.
static int
s_set_duration (zjq_jobentry_t *entry, uint32_t *field, int64_t ms, bool timeout)
{
    if (ms >= 0 && ms < ZJQ_DURATION_SIDE) {
        *field = (uint32_t) ms;
        return 0;
    }
    zjq_jobside_t *side = s_side_try (entry);
    if (!side)
        return -1;
    *field = ZJQ_DURATION_SIDE;
    if (timeout)
        side->job_timeout_ms = ms;
    else
        side->result_ttl_ms = ms;
    return 0;
}

//  Store a job's attempt counts: in the entry while they fit 16 bits, else
//  (after many retries) exactly in the side block from then on. Returns 0,
//  or -1 if out of memory for the side block (unchanged).
static int
s_set_attempts (zjq_jobentry_t *entry, int attempt, int max_attempts)
{
    if (!(entry->flags & ZJQ_JOBENTRY_WIDE)
    &&  attempt >= 0 && attempt <= UINT16_MAX && max_attempts >= 0 && max_attempts <= UINT16_MAX) {
        entry->attempt = (uint16_t) attempt;
        entry->max_attempts = (uint16_t) max_attempts;
        return 0;
    }
    zjq_jobside_t *side = s_side_try (entry);
    if (!side)
        return -1;
    entry->flags |= ZJQ_JOBENTRY_WIDE;
    side->attempt = attempt;
    side->max_attempts = max_attempts;
    return 0;
}

//  The interned copy of an owner key, with a reference taken; NULL for ""
//  or if out of memory (*failed set)
static zjq_owner_t *
s_owner_take (zjq_jobtable_t *self, const char *text, bool *failed)
{
    if (!*text)
        return NULL;
    zjq_owner_t *owner = (zjq_owner_t *) zhashx_lookup (self->owners, text);
    if (!owner) {
        owner = (zjq_owner_t *) calloc (1, sizeof (zjq_owner_t));
        if (!owner) {
            *failed = true;
            return NULL;
        }
        snprintf (owner->text, sizeof (owner->text), "%s", text);
        if (zhashx_insert (self->owners, owner->text, owner) != 0) {
            free (owner);
            *failed = true;
            return NULL;
        }
    }
    owner->refs++;
    return owner;
}

static void
s_owner_release (zjq_jobtable_t *self, zjq_owner_t *owner)
{
    if (owner && --owner->refs == 0) {
        zhashx_delete (self->owners, owner->text);
        free (owner);
    }
}

static void
s_entry_free (zjq_jobtable_t *self, zjq_jobentry_t **entry_p)
{
    zjq_jobentry_t *entry = *entry_p;
    if (!entry)
        return;
    zframe_t *frame = s_entry_frame (entry);
    zframe_destroy (&frame);
    s_owner_release (self, entry->owner);
    s_side_free (&entry->side);
    free (entry);
    *entry_p = NULL;
}

//  A new entry with room for size payload bytes inline, or for a frame if
//  size is over ZJQ_JOBENTRY_INLINE_MAX; its indexes unset. NULL if out of
//  memory.
static zjq_jobentry_t *
s_entry_new (size_t size)
{
    bool inline_payload = size <= ZJQ_JOBENTRY_INLINE_MAX;
    zjq_jobentry_t *entry = (zjq_jobentry_t *) calloc (
        1, s_entry_alloc_size (inline_payload? size: sizeof (zframe_t *)));
    if (!entry)
        return NULL;
    entry->queue_index = ZJQ_JOBENTRY_NONE;
    if (inline_payload)
        entry->payload_size = (uint16_t) size;
    else
        entry->flags = ZJQ_JOBENTRY_FRAME;
    return entry;
}


//  --------------------------------------------------------------------------
//  Hashing and heap callbacks

//  The heaps hold side blocks
static bool
s_deadline_before (const void *a, const void *b)
{
    const zjq_jobside_t *first = (const zjq_jobside_t *) a;
    const zjq_jobside_t *second = (const zjq_jobside_t *) b;
    if (first->deadline != second->deadline)
        return first->deadline < second->deadline;
    return first->order < second->order;
}

static uint32_t
s_index32 (size_t index)
{
    return index == ZJQ_HEAP_NONE? ZJQ_JOBENTRY_NONE: (uint32_t) index;
}

static void
s_deadline_index (void *item, size_t index)
{
    ((zjq_jobside_t *) item)->deadline_index = s_index32 (index);
}

static void
s_result_index (void *item, size_t index)
{
    ((zjq_jobside_t *) item)->result_index = s_index32 (index);
}

//  Build "queue/key" in buf if it fits, else in a new heap string that the
//  caller frees. Returns the text, or NULL if out of memory.
static char *
s_key_text (char *buf, size_t size, const char *queue, const char *key)
{
    size_t needed = strlen (queue) + 1 + strlen (key) + 1;
    char *text = needed <= size? buf: (char *) malloc (needed);
    if (text)
        snprintf (text, needed, "%s/%s", queue, key);
    return text;
}

//  Index an entry under its queue and key. Returns 0, or -1 if out of
//  memory or the key is taken.
static int
s_key_insert (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    char buf [512];
    char *text = s_key_text (buf, sizeof (buf), zjq_jobentry_queue_name (entry),
                             entry->side->key);
    int rc = text? zhashx_insert (self->by_key, text, entry): -1;
    if (text && text != buf)
        free (text);
    return rc;
}

//  Unindex an entry's key, if the key points at this entry
static void
s_key_delete (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    char buf [512];
    char *text = s_key_text (buf, sizeof (buf), zjq_jobentry_queue_name (entry),
                             entry->side->key);
    //  The key entry must point at this job (never at a newer one)
    if (text && zhashx_lookup (self->by_key, text) == entry)
        zhashx_delete (self->by_key, text);
    if (text && text != buf)
        free (text);
}


//  --------------------------------------------------------------------------
//  Constructor and destructor

zjq_jobtable_t *
zjq_jobtable_new (uint64_t generation)
{
    zjq_jobtable_t *self = (zjq_jobtable_t *) calloc (1, sizeof (zjq_jobtable_t));
    if (!self)
        return NULL;
    self->generation = generation;
    self->next_sequence = 1;
    self->next_order = 1;
    self->by_key = zhashx_new ();
    self->owners = zhashx_new ();
    self->deadlines = zjq_heap_new (s_deadline_before, s_deadline_index);
    self->results = zjq_heap_new (s_deadline_before, s_result_index);
    if (!self->by_key || !self->owners || !self->deadlines || !self->results
    ||  s_index_resize (&self->by_id, ZJQ_INDEX_MIN_BITS) == -1) {
        zjq_jobtable_destroy (&self);
        return NULL;
    }
    //  Owner keys live in the owner records themselves
    zhashx_set_key_duplicator (self->owners, NULL);
    zhashx_set_key_destructor (self->owners, NULL);
    return self;
}

void
zjq_jobtable_destroy (zjq_jobtable_t **self_p)
{
    assert (self_p);
    zjq_jobtable_t *self = *self_p;
    if (!self)
        return;
    if (self->by_id.slots)
        for (size_t slot = 0; slot <= s_index_mask (&self->by_id); slot++)
            s_entry_free (self, &self->by_id.slots [slot]);
    free (self->by_id.slots);
    zhashx_destroy (&self->by_key);
    zhashx_destroy (&self->owners);
    zjq_heap_destroy (&self->deadlines);
    zjq_heap_destroy (&self->results);
    free (self->scan);
    free (self->generations);
    free (self);
    *self_p = NULL;
}

uint64_t
zjq_jobtable_generation (zjq_jobtable_t *self)
{
    assert (self);
    return self->generation;
}


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

static void
s_sort_by_order (s_scan_item_t *items, size_t count)
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
    size_t count = self->by_id.count;
    if (count == 0)
        return 0;
    self->scan = (s_scan_item_t *) malloc (count * sizeof (s_scan_item_t));
    if (!self->scan)
        return -1;
    size_t taken = 0;
    for (size_t slot = 0; slot <= s_index_mask (&self->by_id); slot++) {
        zjq_jobentry_t *entry = self->by_id.slots [slot];
        if (entry)
            self->scan [taken++] = (s_scan_item_t) { entry->order, entry };
    }
    assert (taken == count);
    s_sort_by_order (self->scan, count);
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
static void
s_scan_forget (zjq_jobtable_t *self, zjq_jobentry_t *entry)
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


//  --------------------------------------------------------------------------
//  Insert and look up

//  Journal a change of an entry, as a record snapshot
static void
s_journal (zjq_jobtable_t *self, zjq_jobentry_t *entry, int change)
{
    zjq_job_t record;
    zjq_jobentry_record (entry, &record);
    if (change == 0)
        zjq_journal_append_job (self->journal, &record);
    else
    if (change == 1)
        zjq_journal_append_state (self->journal, &record);
    else
        zjq_journal_append_remove (self->journal, &record);
}
#define S_JOURNAL_JOB    0
#define S_JOURNAL_STATE  1
#define S_JOURNAL_REMOVE 2

//  Insert with the payload as a frame (frame_p) or as bytes to copy
static zjq_jobentry_t *
s_insert (zjq_jobtable_t *self, const zjq_job_t *spec, zjq_queue_t *queue,
          zframe_t **frame_p, const void *data, size_t size)
{
    assert (self);
    assert (spec && queue);
    if (self->by_id.count >= UINT32_MAX - 1)
        return NULL;            //  heap positions are 32 bits
    zjq_jobentry_t *entry = s_entry_new (size);
    if (!entry)
        return NULL;
    entry->generation = self->generation;
    entry->sequence = self->next_sequence;
    entry->order = self->next_order;
    entry->queue = queue;
    entry->priority = (int16_t) spec->priority;
    entry->max_attempts = (uint16_t) spec->max_attempts;
    entry->state = ZJQ_STATE_QUEUED;
    entry->created_ms = zjq_wall_ms ();
    bool failed = false;
    entry->owner = s_owner_take (self, spec->owner, &failed);
    if (failed
    ||  s_set_duration (entry, &entry->job_timeout_ms, spec->job_timeout_ms, true) == -1
    ||  s_set_duration (entry, &entry->result_ttl_ms, spec->result_ttl_ms, false) == -1)
        goto err;
    if (spec->key) {
        if (!s_side_try (entry) || !(entry->side->key = strdup (spec->key)))
            goto err;
        if (s_key_insert (self, entry) != 0)
            goto err;           //  out of memory (a duplicate key is the caller's error)
    }
    if (s_index_insert (&self->by_id, entry) != 0) {
        if (spec->key)
            s_key_delete (self, entry);
        goto err;
    }
    //  The payload, last: nothing can fail any more
    if (entry->flags & ZJQ_JOBENTRY_FRAME) {
        zframe_t *frame = frame_p? *frame_p: zframe_new (data, size);
        if (!frame) {
            s_index_remove_at (&self->by_id, s_index_find (&self->by_id, entry->generation,
                                                           entry->sequence));
            if (spec->key)
                s_key_delete (self, entry);
            goto err;
        }
        s_entry_set_frame (entry, frame);
        if (frame_p)
            *frame_p = NULL;
    }
    else {
        if (size)
            memcpy (entry->payload, frame_p? zframe_data (*frame_p): data, size);
        if (frame_p)
            zframe_destroy (frame_p);
    }
    self->next_sequence++;
    self->next_order++;
    self->stats.jobs++;
    self->stats.queued++;
    self->stats.inserted++;
    self->stats.queued_bytes += size;
    if (self->journal)
        s_journal (self, entry, S_JOURNAL_JOB);
    return entry;

err:
    s_entry_free (self, &entry);
    return NULL;
}

zjq_jobentry_t *
zjq_jobtable_insert (zjq_jobtable_t *self, const zjq_job_t *spec,
                     zjq_queue_t *queue, zframe_t **payload_p)
{
    assert (payload_p && *payload_p);
    return s_insert (self, spec, queue, payload_p, NULL, zframe_size (*payload_p));
}

zjq_jobentry_t *
zjq_jobtable_insert_copy (zjq_jobtable_t *self, const zjq_job_t *spec,
                          zjq_queue_t *queue, const void *data, size_t size)
{
    assert (data || size == 0);
    return s_insert (self, spec, queue, NULL, data, size);
}

zjq_jobentry_t *
zjq_jobtable_lookup (zjq_jobtable_t *self, const char *id)
{
    assert (self);
    assert (id);
    uint64_t generation, sequence;
    if (zjq_jobid_parse_exact (id, &generation, &sequence) == -1)
        return NULL;
    size_t slot = s_index_find (&self->by_id, generation, sequence);
    return slot == SIZE_MAX? NULL: self->by_id.slots [slot];
}

int
zjq_jobtable_find (zjq_jobtable_t *self, const char *id,
                   zjq_jobentry_t **entry_p, const char **message_p)
{
    assert (self);
    assert (entry_p && message_p);
    *entry_p = NULL;
    *message_p = NULL;
    uint64_t generation, sequence;
    if (!id || zjq_jobid_parse (id, &generation, &sequence) == -1) {
        *message_p = "not a job id";
        return ZJQ_EBADID;
    }
    *entry_p = zjq_jobtable_lookup (self, id);
    if (*entry_p)
        return 0;
    if (generation == self->generation && sequence < self->next_sequence) {
        *message_p = "job outcome expired";
        return ZJQ_EEXPIRED;
    }
    for (size_t index = 0; index < self->generation_count; index++)
        if (self->generations [2 * index] == generation
        &&  sequence <= self->generations [2 * index + 1]) {
            *message_p = "job outcome expired";
            return ZJQ_EEXPIRED;
        }
    if (generation < self->generation)
        *message_p = "unknown job (it may predate a broker restart)";
    else
        *message_p = "unknown job";
    return ZJQ_ENOTFOUND;
}

zjq_jobentry_t *
zjq_jobtable_lookup_key (zjq_jobtable_t *self, const char *queue, const char *key)
{
    assert (self);
    assert (queue && key);
    char buf [512];
    char *text = s_key_text (buf, sizeof (buf), queue, key);
    if (!text)
        return NULL;
    zjq_jobentry_t *entry = (zjq_jobentry_t *) zhashx_lookup (self->by_key, text);
    if (text != buf)
        free (text);
    return entry;
}


//  --------------------------------------------------------------------------
//  State changes

//  Put an entry in the deadline heap at a new deadline, or move it there.
static void
s_set_deadline (zjq_jobtable_t *self, zjq_jobentry_t *entry, int64_t deadline)
{
    zjq_jobside_t *side = s_side (entry);
    side->deadline = deadline;
    if (side->deadline_index != ZJQ_JOBENTRY_NONE)
        zjq_heap_update (self->deadlines, side->deadline_index);
    else
    if (zjq_heap_push (self->deadlines, side) != 0)
        //  Out of memory: the job just never times out or expires by itself
        zjq_log_error ("out_of_memory", "what=job_deadline job=%s", zjq_jobentry_id (entry).text);
}

static void
s_clear_deadline (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    if (entry->side && entry->side->deadline_index != ZJQ_JOBENTRY_NONE)
        zjq_heap_remove (self->deadlines, entry->side->deadline_index);
}

//  now + ms without overflow
static int64_t
s_after (int64_t now, int64_t ms)
{
    return ms > INT64_MAX - now? INT64_MAX: now + ms;
}

static void
s_set_string (char **field_p, const char *value)
{
    free (*field_p);
    *field_p = value? strdup (value): NULL;
}

void
zjq_jobtable_start (zjq_jobtable_t *self, zjq_jobentry_t *entry, int64_t now)
{
    assert (self);
    assert (entry);
    assert (entry->state == ZJQ_STATE_QUEUED);
    assert (entry->queue_index == ZJQ_JOBENTRY_NONE);
    zjq_jobside_t *side = s_side (entry);
    entry->state = ZJQ_STATE_RUNNING;
    if (entry->flags & ZJQ_JOBENTRY_WIDE)
        side->attempt++;
    else
        entry->attempt++;       //  a retry made the counts wide before they overflow
    side->started_ms = zjq_wall_ms ();
    side->progress = -1;
    s_set_string (&side->progress_message, NULL);
    s_set_deadline (self, entry, s_after (now, zjq_jobentry_job_timeout_ms (entry)));
    self->stats.queued--;
    self->stats.running++;
    if (self->journal)
        s_journal (self, entry, S_JOURNAL_STATE);
}

//  A running job goes back to queued (journaled once the caller's changes
//  to the record are made: see the two callers)
static void
s_back_to_queued (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    assert (entry->state == ZJQ_STATE_RUNNING);
    s_clear_deadline (self, entry);
    entry->state = ZJQ_STATE_QUEUED;
    entry->side->peer = NULL;
    entry->side->peer_slot = UINT32_MAX;
    self->stats.running--;
    self->stats.queued++;
}

void
zjq_jobtable_requeue (zjq_jobtable_t *self, zjq_jobentry_t *entry, const char *error)
{
    assert (self);
    assert (entry);
    s_back_to_queued (self, entry);
    if (error)
        s_set_string (&entry->side->error, error);
    if (self->journal)
        s_journal (self, entry, S_JOURNAL_STATE);
}

void
zjq_jobtable_unstart (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    assert (self);
    assert (entry);
    assert (zjq_jobentry_attempt (entry) > 0);
    s_back_to_queued (self, entry);
    if (entry->flags & ZJQ_JOBENTRY_WIDE)
        entry->side->attempt--;
    else
        entry->attempt--;
    if (zjq_jobentry_attempt (entry) == 0)
        entry->side->started_ms = 0;
    if (self->journal)
        s_journal (self, entry, S_JOURNAL_STATE);
}

//  Keep the result of an ended job: inline if its payload area (room
//  bytes) is free (the payload is gone) and the result fits, else as a
//  frame in the side block, taken from *frame_p (then nulled) or made from
//  the bytes. Returns 0, or -1 if out of memory.
static int
s_store_result (zjq_jobentry_t *entry, size_t room, zframe_t **frame_p,
                const void *data, size_t size)
{
    if ((entry->flags & ZJQ_JOBENTRY_NOPAY) && size <= room) {
        if (size)
            memcpy (entry->payload, data, size);
        entry->payload_size = (uint16_t) size;
        entry->flags |= ZJQ_JOBENTRY_RESULT;
        if (frame_p)
            zframe_destroy (frame_p);
        return 0;
    }
    zframe_t *frame = frame_p? *frame_p: zframe_new (data, size);
    if (!frame)
        return -1;
    if (frame_p)
        *frame_p = NULL;
    entry->side->result = frame;
    return 0;
}

//  Count an ended job's result, and put it in the result heap if it has
//  result bytes
static void
s_track_result (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    size_t result_size = zjq_jobentry_result (entry).size;
    if (result_size > 0) {
        self->stats.result_bytes += result_size;
        if (zjq_heap_push (self->results, entry->side) != 0)
            zjq_log_error ("out_of_memory", "what=job_result job=%s", zjq_jobentry_id (entry).text);
    }
}

//  The payload goes (the job ended): a frame is freed; returns the room
//  the payload area has for a result
static size_t
s_drop_payload (zjq_jobentry_t *entry)
{
    zframe_t *frame = s_entry_frame (entry);
    size_t room = frame? sizeof (zframe_t *): entry->payload_size;
    zframe_destroy (&frame);
    entry->flags = (entry->flags & ZJQ_JOBENTRY_WIDE) | ZJQ_JOBENTRY_NOPAY;
    entry->payload_size = 0;
    return room;
}

//  How long a failed job is kept: the longer of its result TTL and the
//  dead-letter TTL
static int64_t
s_dead_ttl (zjq_jobtable_t *self, const zjq_jobentry_t *entry)
{
    int64_t ttl_ms = zjq_jobentry_result_ttl_ms (entry);
    return ttl_ms > self->dead_ttl_ms? ttl_ms: self->dead_ttl_ms;
}

//  Put a failed job (its side block made) on the dead-letter list; it gets
//  an empty history if it never had a failed attempt
static void
s_dead_link (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    zjq_jobside_t *side = entry->side;
    if (!side->history)
        side->history = zjq_history_new (zjq_jobentry_max_attempts (entry));
    if (!side->history) {
        zjq_log_error ("out_of_memory", "what=dead_letter job=%s msg=%s",
                       zjq_jobentry_id (entry).text, "it cannot be retried");
        s_drop_payload (entry);
        return;
    }
    side->history->failed_ms = side->finished_ms;
    zjq_deadlist_insert (&self->dead, side->history, entry, zjq_jobentry_payload (entry).size);
}

//  Take a job off the dead-letter list if it is on it
static void
s_dead_unlink (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    zjq_history_t *history = entry->side? entry->side->history: NULL;
    if (zjq_deadlist_contains (&self->dead, history))
        zjq_deadlist_remove (&self->dead, history, zjq_jobentry_payload (entry).size);
}

void
zjq_jobtable_finish (zjq_jobtable_t *self, zjq_jobentry_t *entry, zjq_state_t state,
                     const char *error, zframe_t **result_p, int64_t now)
{
    assert (self);
    assert (entry);
    assert (state == ZJQ_STATE_SUCCEEDED || state == ZJQ_STATE_FAILED
         || state == ZJQ_STATE_CANCELLED);
    assert (entry->queue_index == ZJQ_JOBENTRY_NONE);
    zjq_jobside_t *side = s_side (entry);
    if (entry->state == ZJQ_STATE_RUNNING)
        self->stats.running--;
    else {
        assert (entry->state == ZJQ_STATE_QUEUED);
        self->stats.queued--;
    }
    self->stats.ended++;
    entry->state = (uint8_t) state;
    //  A dead letter keeps its payload, for a retry, and stays longer
    bool dead = state == ZJQ_STATE_FAILED;
    int64_t ttl_ms = dead? s_dead_ttl (self, entry): zjq_jobentry_result_ttl_ms (entry);
    side->finished_ms = zjq_wall_ms ();
    side->expires_ms = side->finished_ms + ttl_ms;
    if (error)
        s_set_string (&side->error, error);
    self->stats.queued_bytes -= zjq_jobentry_payload (entry).size;
    //  The payload goes; a result that fits takes its place
    size_t room = dead? 0: s_drop_payload (entry);
    if (result_p && *result_p)
        s_store_result (entry, room, result_p, zframe_data (*result_p),
                        zframe_size (*result_p));
    side->peer = NULL;
    side->peer_slot = UINT32_MAX;
    s_set_deadline (self, entry, s_after (now, ttl_ms));
    if (dead)
        s_dead_link (self, entry);
    s_track_result (self, entry);
    if (self->journal)
        s_journal (self, entry, S_JOURNAL_STATE);
}

void
zjq_jobtable_remove (zjq_jobtable_t *self, zjq_jobentry_t **entry_p)
{
    assert (self);
    assert (entry_p);
    zjq_jobentry_t *entry = *entry_p;
    if (!entry)
        return;
    assert (entry->queue_index == ZJQ_JOBENTRY_NONE);
    s_clear_deadline (self, entry);
    zjq_jobside_t *side = entry->side;
    if (side && side->result_index != ZJQ_JOBENTRY_NONE)
        zjq_heap_remove (self->results, side->result_index);
    if (side && side->key)
        s_key_delete (self, entry);
    s_dead_unlink (self, entry);
    if (self->journal)
        s_journal (self, entry, S_JOURNAL_REMOVE);
    if (self->scan)
        s_scan_forget (self, entry);
    size_t slot = s_index_find (&self->by_id, entry->generation, entry->sequence);
    assert (slot != SIZE_MAX);
    s_index_remove_at (&self->by_id, slot);
    if (zjq_jobentry_ended (entry)) {
        self->stats.ended--;
        self->stats.result_bytes -= zjq_jobentry_result (entry).size;
        self->stats.expired++;
    }
    else {
        if (entry->state == ZJQ_STATE_RUNNING)
            self->stats.running--;
        else
            self->stats.queued--;
        self->stats.queued_bytes -= zjq_jobentry_payload (entry).size;
    }
    self->stats.jobs--;
    s_entry_free (self, entry_p);
}


//  --------------------------------------------------------------------------
//  The journal

void
zjq_jobtable_set_journal (zjq_jobtable_t *self, zjq_journal_t *journal)
{
    assert (self);
    self->journal = journal;
}

//  The record's fields in range for the entry? NULL, or what is not.
static const char *
s_restore_problem (const zjq_job_t *job, uint64_t *generation)
{
    uint64_t sequence;
    if (zjq_jobid_parse_exact (job->id, generation, &sequence) == -1
    ||  sequence != job->sequence)
        return "a bad id";
    if (job->priority < INT16_MIN || job->priority > INT16_MAX)
        return "a priority out of range";
    if (job->max_attempts < 0 || job->max_attempts > ZJQ_JOB_ATTEMPTS_MAX
    ||  job->attempt < 0 || job->attempt > ZJQ_JOB_ATTEMPTS_MAX)
        return "an attempt count out of range";
    return NULL;
}

//  Does the restored job keep its payload: a queued one, or a dead letter
//  whose record kept it (v3+)
static bool
s_restore_keeps_payload (const zjq_job_t *job)
{
    return job->state == ZJQ_STATE_QUEUED || (job->state == ZJQ_STATE_FAILED && job->payload);
}

//  Copy a record's fields into a new entry, taking its strings and history.
//  Returns 0, or -1 if out of memory.
static int
s_restore_fields (zjq_jobtable_t *self, zjq_jobentry_t *entry, zjq_job_t *job)
{
    entry->sequence = job->sequence;
    entry->order = job->order;
    entry->created_ms = job->created_ms;
    entry->priority = (int16_t) job->priority;
    entry->state = (uint8_t) job->state;
    bool failed = false;
    entry->owner = s_owner_take (self, job->owner, &failed);
    bool ended = zjq_job_ended (job);
    bool side_needed = job->key || job->error || job->progress_message || job->started_ms
                    || job->history || ended;
    if (failed || (side_needed && !s_side_try (entry))
    ||  s_set_attempts (entry, job->attempt, job->max_attempts) == -1
    ||  s_set_duration (entry, &entry->job_timeout_ms, job->job_timeout_ms, true) == -1
    ||  s_set_duration (entry, &entry->result_ttl_ms, job->result_ttl_ms, false) == -1)
        return -1;
    zjq_jobside_t *side = entry->side;
    if (side) {
        side->key = job->key;
        side->error = job->error;
        side->progress_message = job->progress_message;
        side->history = job->history;
        side->started_ms = job->started_ms;
        side->finished_ms = job->finished_ms;
        side->expires_ms = job->expires_ms;
        side->progress = job->progress;
        job->key = job->error = job->progress_message = NULL;
        job->history = NULL;
    }
    if (!s_restore_keeps_payload (job)) {
        //  The payload area was made the size of a small result
        size_t room = entry->flags & ZJQ_JOBENTRY_FRAME? 0: entry->payload_size;
        entry->flags = (entry->flags & ZJQ_JOBENTRY_WIDE) | ZJQ_JOBENTRY_NOPAY;
        entry->payload_size = 0;
        return job->result? s_store_result (entry, room, NULL, job->result, job->result_size): 0;
    }
    size_t size = job->payload? job->payload_size: 0;
    if (entry->flags & ZJQ_JOBENTRY_FRAME) {
        zframe_t *frame = zframe_new (job->payload, size);
        if (!frame)
            return -1;
        s_entry_set_frame (entry, frame);
    }
    else
    if (size)
        memcpy (entry->payload, job->payload, size);
    //  A dead letter's result (if any) cannot take the payload's place
    return ended && job->result? s_store_result (entry, 0, NULL, job->result, job->result_size): 0;
}

zjq_jobentry_t *
zjq_jobtable_restore (zjq_jobtable_t *self, zjq_job_t *job, zjq_queue_t *queue, int64_t now)
{
    assert (self);
    assert (job && queue);
    assert (job->state == ZJQ_STATE_QUEUED || zjq_job_ended (job));
    //  The payload of a queued job or a dead letter, or the result of
    //  another ended job, inline if small enough
    size_t size = s_restore_keeps_payload (job)? (job->payload? job->payload_size: 0)
                                               : (job->result? job->result_size: 0);
    uint64_t generation = 0;
    const char *problem = s_restore_problem (job, &generation);
    zjq_jobentry_t *entry = problem? NULL: s_entry_new (size);
    if (entry) {
        entry->generation = generation;
        entry->queue = queue;
        if (s_restore_fields (self, entry, job) == -1) {
            s_entry_free (self, &entry);
            problem = "out of memory";
        }
    }
    else
    if (!problem)
        problem = "out of memory";
    //  The fields are the entry's now, or freed here
    zjq_job_free_fields (job);
    if (!entry) {
        zjq_log_error ("journal_job_dropped", "job=%s reason=%s", job->id, problem);
        return NULL;
    }
    if (s_index_find (&self->by_id, entry->generation, entry->sequence) != SIZE_MAX
    ||  s_index_insert (&self->by_id, entry) != 0) {
        zjq_log_error ("journal_job_dropped", "job=%s reason=%s", job->id,
                       "restored twice or out of memory");
        s_entry_free (self, &entry);
        return NULL;
    }
    if (entry->side && entry->side->key && s_key_insert (self, entry) != 0) {
        zjq_log_error ("journal_job_dropped", "job=%s reason=%s", job->id,
                       "its idempotency key is taken");
        s_index_remove_at (&self->by_id,
                           s_index_find (&self->by_id, entry->generation, entry->sequence));
        s_entry_free (self, &entry);
        return NULL;
    }
    if (entry->order >= self->next_order)
        self->next_order = entry->order + 1;
    if (entry->generation == self->generation && entry->sequence >= self->next_sequence)
        self->next_sequence = entry->sequence + 1;
    self->stats.jobs++;
    self->stats.inserted++;
    if (entry->state == ZJQ_STATE_QUEUED) {
        self->stats.queued++;
        self->stats.queued_bytes += zjq_jobentry_payload (entry).size;
    }
    else {
        self->stats.ended++;
        zjq_jobside_t *side = entry->side;
        bool dead = entry->state == ZJQ_STATE_FAILED;
        if (dead)
            //  The dead-letter TTL in force now decides
            side->expires_ms = side->finished_ms + s_dead_ttl (self, entry);
        int64_t left = side->expires_ms - zjq_wall_ms ();
        s_set_deadline (self, entry, s_after (now, left > 0? left: 0));
        s_track_result (self, entry);
        if (dead)
            s_dead_link (self, entry);
    }
    return entry;
}

void
zjq_jobtable_add_generation (zjq_jobtable_t *self, uint64_t generation, uint64_t last_sequence)
{
    assert (self);
    for (size_t index = 0; index < self->generation_count; index++)
        if (self->generations [2 * index] == generation) {
            if (last_sequence > self->generations [2 * index + 1])
                self->generations [2 * index + 1] = last_sequence;
            return;
        }
    uint64_t *pairs = (uint64_t *) realloc (self->generations,
                                            (self->generation_count + 1) * 2 * sizeof (uint64_t));
    if (!pairs) {
        zjq_log_error ("out_of_memory", "what=generation generation=%llu",
                       (unsigned long long) generation);
        return;
    }
    self->generations = pairs;
    pairs [2 * self->generation_count] = generation;
    pairs [2 * self->generation_count + 1] = last_sequence;
    self->generation_count++;
}

bool
zjq_jobtable_generation_at (zjq_jobtable_t *self, size_t index, uint64_t *generation,
                            uint64_t *last_sequence)
{
    assert (self);
    assert (generation && last_sequence);
    if (index == 0) {
        *generation = self->generation;
        *last_sequence = self->next_sequence - 1;
        return true;
    }
    if (index > self->generation_count)
        return false;
    *generation = self->generations [2 * (index - 1)];
    *last_sequence = self->generations [2 * (index - 1) + 1];
    return true;
}


//  --------------------------------------------------------------------------
//  Deadlines and the result bound

int64_t
zjq_jobtable_next_deadline (zjq_jobtable_t *self)
{
    assert (self);
    zjq_jobside_t *side = (zjq_jobside_t *) zjq_heap_top (self->deadlines);
    return side? side->deadline: INT64_MAX;
}

zjq_jobentry_t *
zjq_jobtable_pop_due (zjq_jobtable_t *self, int64_t now)
{
    assert (self);
    zjq_jobside_t *side = (zjq_jobside_t *) zjq_heap_top (self->deadlines);
    if (!side || side->deadline > now)
        return NULL;
    zjq_heap_pop (self->deadlines);
    return side->entry;
}

size_t
zjq_jobtable_trim_results (zjq_jobtable_t *self, uint64_t max_bytes)
{
    assert (self);
    size_t dropped = 0;
    while (self->stats.result_bytes > max_bytes) {
        zjq_jobside_t *side = (zjq_jobside_t *) zjq_heap_top (self->results);
        if (!side)
            break;              //  only if a push failed for lack of memory
        zjq_jobentry_t *entry = side->entry;
        zjq_jobtable_remove (self, &entry);
        dropped++;
    }
    return dropped;
}

const zjq_jobtable_stats_t *
zjq_jobtable_stats (zjq_jobtable_t *self)
{
    assert (self);
    return &self->stats;
}


//  --------------------------------------------------------------------------
//  Waiters

int
zjq_jobentry_add_waiter (zjq_jobentry_t *entry, const void *routing_id, size_t size,
                         const char *key)
{
    assert (entry);
    assert (routing_id);
    size_t key_size = key? strlen (key): 0;
    if (size == 0 || size > 255 || key_size > 255)
        return -1;              //  libzmq's routing ids are 1..255 bytes
    zjq_jobside_t *side = s_side_try (entry);
    if (!side)
        return -1;
    for (uint32_t at = 0; at < side->waiter_bytes;) {
        const byte *waiter = side->waiters + at;
        if (waiter [0] == size && memcmp (waiter + 1, routing_id, size) == 0)
            return 1;
        at += 2 + waiter [0] + waiter [1 + waiter [0]];
    }
    size_t need = 2 + size + key_size;
    if (side->waiter_bytes + need > side->waiter_max) {
        uint32_t max = side->waiter_max? side->waiter_max * 2: 32;
        while (max < side->waiter_bytes + need)
            max *= 2;
        byte *waiters = (byte *) realloc (side->waiters, max);
        if (!waiters)
            return -1;
        side->waiters = waiters;
        side->waiter_max = max;
    }
    byte *at = side->waiters + side->waiter_bytes;
    *at++ = (byte) size;
    memcpy (at, routing_id, size);
    at += size;
    *at++ = (byte) key_size;
    if (key_size)
        memcpy (at, key, key_size);
    side->waiter_bytes += (uint32_t) need;
    side->waiter_count++;
    return 0;
}

void
zjq_jobentry_clear_waiters (zjq_jobentry_t *entry)
{
    assert (entry);
    if (entry->side)
        s_side_clear_waiters (entry->side);
}

uint32_t
zjq_jobentry_waiter_count (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->waiter_count: 0;
}

const byte *
zjq_jobentry_waiter (const zjq_jobentry_t *entry, uint32_t index, size_t *size_p,
                     char *key, size_t key_max)
{
    assert (entry);
    assert (size_p);
    assert (key && key_max);
    assert (index < zjq_jobentry_waiter_count (entry));
    const byte *at = entry->side->waiters;
    while (index--)
        at += 2 + at [0] + at [1 + at [0]];
    *size_p = at [0];
    size_t key_size = at [1 + at [0]];
    if (key_size >= key_max)
        key_size = key_max - 1;
    memcpy (key, at + 2 + at [0], key_size);
    key [key_size] = 0;
    return at + 1;
}


//  --------------------------------------------------------------------------
//  Reading a job

int
zjq_jobentry_attempt (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->flags & ZJQ_JOBENTRY_WIDE? entry->side->attempt: entry->attempt;
}

int
zjq_jobentry_max_attempts (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->flags & ZJQ_JOBENTRY_WIDE? entry->side->max_attempts: entry->max_attempts;
}

int64_t
zjq_jobentry_started_ms (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->started_ms: 0;
}

int64_t
zjq_jobentry_finished_ms (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->finished_ms: 0;
}

int64_t
zjq_jobentry_expires_ms (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->expires_ms: 0;
}

double
zjq_jobentry_progress (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->progress: -1;
}

const zjq_history_t *
zjq_jobentry_history (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->history: NULL;
}

const char *
zjq_jobentry_queue_name (const zjq_jobentry_t *entry)
{
    assert (entry);
    return zjq_queue_name (entry->queue);
}

int64_t
zjq_jobentry_job_timeout_ms (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->job_timeout_ms == ZJQ_DURATION_SIDE? entry->side->job_timeout_ms
                                                     : entry->job_timeout_ms;
}

int64_t
zjq_jobentry_result_ttl_ms (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->result_ttl_ms == ZJQ_DURATION_SIDE? entry->side->result_ttl_ms
                                                    : entry->result_ttl_ms;
}

const char *
zjq_jobentry_owner (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->owner? entry->owner->text: "";
}

const char *
zjq_jobentry_key (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->key: NULL;
}

const char *
zjq_jobentry_error (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->error: NULL;
}

zjq_jobbytes_t
zjq_jobentry_result (const zjq_jobentry_t *entry)
{
    assert (entry);
    zjq_jobbytes_t bytes = { NULL, 0, NULL };
    if (entry->flags & ZJQ_JOBENTRY_RESULT) {
        bytes.data = entry->payload;
        bytes.size = entry->payload_size;
    }
    else
    if (entry->side && entry->side->result) {
        bytes.frame = entry->side->result;
        bytes.data = zframe_data (bytes.frame);
        bytes.size = zframe_size (bytes.frame);
    }
    return bytes;
}

zjq_jobbytes_t
zjq_jobentry_payload (const zjq_jobentry_t *entry)
{
    assert (entry);
    zjq_jobbytes_t bytes = { NULL, 0, NULL };
    if (entry->flags & ZJQ_JOBENTRY_FRAME) {
        bytes.frame = s_entry_frame (entry);
        bytes.data = zframe_data (bytes.frame);
        bytes.size = zframe_size (bytes.frame);
    }
    else
    if (!(entry->flags & ZJQ_JOBENTRY_NOPAY)) {
        bytes.data = entry->payload;
        bytes.size = entry->payload_size;
    }
    return bytes;
}

void
zjq_jobentry_record (const zjq_jobentry_t *entry, zjq_job_t *job)
{
    assert (entry);
    assert (job);
    const zjq_jobside_t *side = entry->side;
    memset (job, 0, sizeof (*job));
    zjq_jobid_format (job->id, entry->generation, entry->sequence);
    job->sequence = entry->sequence;
    job->order = entry->order;
    job->queue = zjq_jobentry_queue_name (entry);
    snprintf (job->owner, sizeof (job->owner), "%s", zjq_jobentry_owner (entry));
    job->priority = entry->priority;
    job->max_attempts = zjq_jobentry_max_attempts (entry);
    job->attempt = zjq_jobentry_attempt (entry);
    job->state = (zjq_state_t) entry->state;
    job->job_timeout_ms = zjq_jobentry_job_timeout_ms (entry);
    job->result_ttl_ms = zjq_jobentry_result_ttl_ms (entry);
    job->created_ms = entry->created_ms;
    zjq_jobbytes_t payload = zjq_jobentry_payload (entry);
    job->payload = (byte *) payload.data;
    job->payload_size = payload.size;
    //  A job without a result has none (data NULL), not an empty one
    zjq_jobbytes_t result = zjq_jobentry_result (entry);
    job->result = (byte *) result.data;
    job->result_size = result.size;
    job->progress = -1;
    if (side) {
        job->key = side->key;
        job->started_ms = side->started_ms;
        job->finished_ms = side->finished_ms;
        job->expires_ms = side->expires_ms;
        job->progress = side->progress;
        job->progress_message = side->progress_message;
        job->error = side->error;
        job->history = side->history;
    }
}


//  --------------------------------------------------------------------------
//  The worker and progress of a running job

zjq_peer_t *
zjq_jobentry_peer (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->peer: NULL;
}

uint32_t
zjq_jobentry_peer_slot (const zjq_jobentry_t *entry)
{
    assert (entry);
    return entry->side? entry->side->peer_slot: UINT32_MAX;
}

void
zjq_jobentry_set_peer (zjq_jobentry_t *entry, zjq_peer_t *peer, uint32_t slot)
{
    assert (entry);
    assert (entry->state == ZJQ_STATE_RUNNING);
    entry->side->peer = peer;
    entry->side->peer_slot = slot;
}

int
zjq_jobentry_set_progress (zjq_jobentry_t *entry, double progress, const char *message)
{
    assert (entry);
    assert (entry->state == ZJQ_STATE_RUNNING);
    zjq_jobside_t *side = entry->side;
    side->progress = progress;
    if (message) {
        char *copy = strdup (message);
        if (!copy)
            return -1;
        free (side->progress_message);
        side->progress_message = copy;
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  Attempt histories and dead letters

void
zjq_jobtable_set_dead_letter_ttl (zjq_jobtable_t *self, int64_t ttl_ms)
{
    assert (self);
    self->dead_ttl_ms = ttl_ms > 0? ttl_ms: 0;
}

int
zjq_jobtable_add_attempt (zjq_jobtable_t *self, zjq_jobentry_t *entry,
                          const zjq_attempt_t *attempt)
{
    assert (self);
    assert (entry && attempt);
    assert (!zjq_jobentry_ended (entry));
    zjq_jobside_t *side = s_side_try (entry);
    if (side && !side->history)
        side->history = zjq_history_new (zjq_jobentry_max_attempts (entry));
    if (!side || !side->history || zjq_history_add (side->history, attempt) != 0) {
        zjq_log_error ("out_of_memory", "what=attempt_history job=%s attempt=%d",
                       zjq_jobentry_id (entry).text, attempt->attempt);
        return -1;
    }
    if (self->journal) {
        zjq_job_t record;
        zjq_jobentry_record (entry, &record);
        zjq_journal_append_attempt (self->journal, &record);
    }
    return 0;
}

int
zjq_jobtable_retry (zjq_jobtable_t *self, zjq_jobentry_t *entry, const char **message_p)
{
    assert (self);
    assert (entry && message_p);
    if (entry->state != ZJQ_STATE_FAILED) {
        *message_p = "only a failed job can be retried";
        return ZJQ_ESTATE;
    }
    zjq_jobside_t *side = entry->side;
    if ((entry->flags & ZJQ_JOBENTRY_NOPAY) || !zjq_jobtable_is_dead (self, entry)) {
        *message_p = "its payload was not kept (it failed before this broker version)";
        return ZJQ_ESTATE;
    }
    zjq_history_t *history = side->history;
    int attempt = zjq_jobentry_attempt (entry);
    if ((int64_t) attempt + history->budget > ZJQ_JOB_ATTEMPTS_MAX) {
        *message_p = "it has used the most attempts a job may make";
        return ZJQ_ESTATE;
    }
    if (s_set_attempts (entry, attempt, attempt + history->budget) == -1) {
        *message_p = "broker out of memory";
        return ZJQ_ENOMEM;
    }
    s_dead_unlink (self, entry);
    s_clear_deadline (self, entry);
    //  A failed job rarely has a result; a queued one has none
    if (side->result_index != ZJQ_JOBENTRY_NONE)
        zjq_heap_remove (self->results, side->result_index);
    self->stats.result_bytes -= zjq_jobentry_result (entry).size;
    zframe_destroy (&side->result);
    history->retries++;
    entry->state = ZJQ_STATE_QUEUED;
    side->finished_ms = side->expires_ms = 0;
    self->stats.ended--;
    self->stats.queued++;
    self->stats.queued_bytes += zjq_jobentry_payload (entry).size;
    if (self->journal)
        s_journal (self, entry, S_JOURNAL_JOB);
    return 0;
}

zjq_jobentry_t *
zjq_jobtable_dead_first (zjq_jobtable_t *self)
{
    assert (self);
    return self->dead.oldest? (zjq_jobentry_t *) self->dead.oldest->owner: NULL;
}

zjq_jobentry_t *
zjq_jobtable_dead_next (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    assert (self);
    assert (entry && zjq_jobtable_is_dead (self, entry));
    zjq_history_t *newer = entry->side->history->newer;
    return newer? (zjq_jobentry_t *) newer->owner: NULL;
}

bool
zjq_jobtable_is_dead (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    assert (self);
    assert (entry);
    return zjq_deadlist_contains (&self->dead, entry->side? entry->side->history: NULL);
}

const zjq_deadlist_t *
zjq_jobtable_dead_letters (zjq_jobtable_t *self)
{
    assert (self);
    return &self->dead;
}

size_t
zjq_jobtable_trim_dead (zjq_jobtable_t *self, uint64_t max_count, uint64_t max_bytes)
{
    assert (self);
    size_t dropped = 0;
    while (self->dead.oldest && (self->dead.count > max_count || self->dead.bytes > max_bytes)) {
        zjq_jobentry_t *entry = (zjq_jobentry_t *) self->dead.oldest->owner;
        zjq_jobtable_remove (self, &entry);
        dropped++;
    }
    return dropped;
}


//  --------------------------------------------------------------------------
//  Self test

static zjq_jobentry_t *
s_test_insert (zjq_jobtable_t *self, zjq_queue_t *queue, const char *key,
               int64_t ttl_ms, size_t payload_size)
{
    zjq_job_t spec = { .key = (char *) key, .priority = 0, .max_attempts = 3,
                       .job_timeout_ms = 1000, .result_ttl_ms = ttl_ms };
    char data [64] = { 0 };
    assert (payload_size <= sizeof (data));
    zframe_t *payload = zframe_new (data, payload_size);
    zjq_jobentry_t *entry = zjq_jobtable_insert (self, &spec, queue, &payload);
    assert (entry);
    assert (payload == NULL);
    return entry;
}

//  The id index: growth, lookups, removals in any order, shrinking
static void
s_test_index (zjq_queue_t *queue)
{
    zjq_jobtable_t *table = zjq_jobtable_new (1795000000000ULL);
    assert (table);
    enum { COUNT = 50000 };
    zjq_jobentry_t **entries = (zjq_jobentry_t **) calloc (COUNT, sizeof (zjq_jobentry_t *));
    assert (entries);
    for (size_t index = 0; index < COUNT; index++)
        entries [index] = s_test_insert (table, queue, NULL, 1000, index % 3);
    assert (table->by_id.count == COUNT);
    assert (((size_t) 1 << table->by_id.bits) >= COUNT * 4 / 3);
    //  Restored jobs of an earlier generation share the index
    zjq_job_t record = { .sequence = COUNT, .order = 0, .max_attempts = 1,
                         .state = ZJQ_STATE_QUEUED, .job_timeout_ms = 5, .result_ttl_ms = 5 };
    zjq_jobid_format (record.id, 1794000000000ULL, COUNT);
    zjq_jobentry_t *old = zjq_jobtable_restore (table, &record, queue, 0);
    assert (old && old->generation == 1794000000000ULL);
    assert (zjq_jobtable_lookup (table, record.id) == old);
    for (size_t index = 0; index < COUNT; index++)
        assert (zjq_jobtable_lookup (table, zjq_jobentry_id (entries [index]).text)
                == entries [index]);
    //  Remove two thirds in a scattered order: the rest stay findable
    for (size_t step = 0; step < COUNT; step++) {
        size_t index = (step * 7919) % COUNT;
        if (index % 3 != 0)
            zjq_jobtable_remove (table, &entries [index]);
    }
    for (size_t index = 0; index < COUNT; index++) {
        if (!entries [index])
            continue;
        assert (zjq_jobtable_lookup (table, zjq_jobentry_id (entries [index]).text)
                == entries [index]);
    }
    assert (zjq_jobtable_lookup (table, record.id) == old);
    //  Empty again: the index is back to its smallest size
    for (size_t index = 0; index < COUNT; index++)
        zjq_jobtable_remove (table, &entries [index]);
    zjq_jobtable_remove (table, &old);
    assert (table->by_id.count == 0 && table->by_id.bits == ZJQ_INDEX_MIN_BITS);
    assert (zjq_jobtable_stats (table)->jobs == 0);
    assert (zjq_jobtable_stats (table)->queued_bytes == 0);
    free (entries);
    zjq_jobtable_destroy (&table);
}

//  Payloads inline or as frames; the side block only when needed; long
//  durations; interned owners; the record snapshot
static void
s_test_entries (zjq_queue_t *queue, bool verbose)
{
    zjq_jobtable_t *table = zjq_jobtable_new (1795000000000ULL);
    assert (table);
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (table);
    zjq_job_t spec = { .priority = -7, .max_attempts = 1000, .job_timeout_ms = 60000,
                       .result_ttl_ms = 3600000 };
    byte *data = (byte *) malloc (ZJQ_JOBENTRY_INLINE_MAX + 1);
    assert (data);
    for (size_t index = 0; index <= ZJQ_JOBENTRY_INLINE_MAX; index++)
        data [index] = (byte) index;

    //  A plain queued job: one allocation, no side block, payload inline
    zframe_t *frame = zframe_new (data, ZJQ_JOBENTRY_INLINE_MAX);
    zjq_jobentry_t *small = zjq_jobtable_insert (table, &spec, queue, &frame);
    assert (small && !frame);
    assert (!small->side && !small->owner);
    assert (zjq_jobentry_payload (small).frame == NULL);
    assert (zjq_jobentry_payload (small).size == ZJQ_JOBENTRY_INLINE_MAX);
    assert (memcmp (zjq_jobentry_payload (small).data, data, ZJQ_JOBENTRY_INLINE_MAX) == 0);
    assert (zjq_jobentry_priority (small) == -7 && zjq_jobentry_max_attempts (small) == 1000);
    assert (zjq_jobentry_job_timeout_ms (small) == 60000);
    assert (zjq_jobentry_result_ttl_ms (small) == 3600000);
    assert (streq (zjq_jobentry_owner (small), "") && !zjq_jobentry_key (small));
    assert (!zjq_jobentry_error (small) && !zjq_jobentry_result (small).data);
    assert (zjq_jobentry_result (small).size == 0 && !zjq_jobentry_result (small).frame);
    assert (!zjq_jobentry_peer (small) && zjq_jobentry_waiter_count (small) == 0);
    assert (streq (zjq_jobentry_queue_name (small), zjq_queue_name (queue)));

    //  A larger payload stays in its frame: the same frame, not a copy
    frame = zframe_new (data, ZJQ_JOBENTRY_INLINE_MAX + 1);
    zframe_t *kept = frame;
    zjq_jobentry_t *large = zjq_jobtable_insert (table, &spec, queue, &frame);
    assert (large && !frame && !large->side);
    assert (zjq_jobentry_payload (large).frame == kept);
    assert (zjq_jobentry_payload (large).size == ZJQ_JOBENTRY_INLINE_MAX + 1);
    assert (zjq_jobentry_payload (large).data == zframe_data (kept));
    assert (stats->queued_bytes == 2 * ZJQ_JOBENTRY_INLINE_MAX + 1);

    //  Copying inserts: inline, as a new frame, empty
    zjq_jobentry_t *copied = zjq_jobtable_insert_copy (table, &spec, queue, data, 5);
    assert (copied && !zjq_jobentry_payload (copied).frame);
    assert (zjq_jobentry_payload (copied).size == 5);
    assert (memcmp (zjq_jobentry_payload (copied).data, data, 5) == 0);
    zjq_jobentry_t *copied_large = zjq_jobtable_insert_copy (table, &spec, queue, data,
                                                             ZJQ_JOBENTRY_INLINE_MAX + 1);
    assert (copied_large && zjq_jobentry_payload (copied_large).frame);
    assert (memcmp (zjq_jobentry_payload (copied_large).data, data,
                    ZJQ_JOBENTRY_INLINE_MAX + 1) == 0);
    zjq_jobentry_t *empty = zjq_jobtable_insert_copy (table, &spec, queue, NULL, 0);
    assert (empty && zjq_jobentry_payload (empty).size == 0);
    assert (stats->queued_bytes == 3 * ZJQ_JOBENTRY_INLINE_MAX + 2 + 5);

    //  A job that ends has no payload any more (a frame is freed)
    zjq_jobtable_finish (table, large, ZJQ_STATE_CANCELLED, "cancelled", NULL, 0);
    assert (zjq_jobentry_payload (large).frame == NULL);
    assert (zjq_jobentry_payload (large).data == NULL);
    assert (zjq_jobentry_payload (large).size == 0);
    zjq_jobtable_finish (table, small, ZJQ_STATE_CANCELLED, NULL, NULL, 0);
    assert (zjq_jobentry_payload (small).data == NULL);
    assert (stats->queued_bytes == ZJQ_JOBENTRY_INLINE_MAX + 1 + 5);

    //  Durations that do not fit 32 bits are kept exactly in the side block
    zjq_job_t long_spec = spec;
    long_spec.job_timeout_ms = 10LL * 366 * 24 * 3600 * 1000;
    long_spec.result_ttl_ms = (int64_t) UINT32_MAX;
    zjq_jobentry_t *slow = zjq_jobtable_insert_copy (table, &long_spec, queue, "x", 1);
    assert (slow && slow->side);
    assert (zjq_jobentry_job_timeout_ms (slow) == long_spec.job_timeout_ms);
    assert (zjq_jobentry_result_ttl_ms (slow) == (int64_t) UINT32_MAX);
    long_spec.result_ttl_ms = (int64_t) UINT32_MAX - 1;
    long_spec.job_timeout_ms = 1;
    zjq_jobentry_t *fits = zjq_jobtable_insert_copy (table, &long_spec, queue, "x", 1);
    assert (fits && !fits->side);
    assert (zjq_jobentry_result_ttl_ms (fits) == (int64_t) UINT32_MAX - 1);

    //  Owners are interned: one copy per key, freed with its last job
    zjq_job_t owned_spec = spec;
    strcpy (owned_spec.owner, "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7");
    zjq_jobentry_t *owned1 = zjq_jobtable_insert_copy (table, &owned_spec, queue, "a", 1);
    zjq_jobentry_t *owned2 = zjq_jobtable_insert_copy (table, &owned_spec, queue, "b", 1);
    assert (owned1 && owned2 && owned1->owner && owned1->owner == owned2->owner);
    assert (!owned1->side);
    assert (streq (zjq_jobentry_owner (owned2), owned_spec.owner));
    assert (owned1->owner->refs == 2 && zhashx_size (table->owners) == 1);
    zjq_jobtable_remove (table, &owned1);
    assert (streq (zjq_jobentry_owner (owned2), owned_spec.owner));
    zjq_jobtable_remove (table, &owned2);
    assert (zhashx_size (table->owners) == 0);

    //  The side block comes with the first attempt; peer and progress
    assert (!copied->side);
    zjq_jobtable_start (table, copied, 0);
    assert (copied->side && zjq_jobentry_peer (copied) == NULL);
    assert (zjq_jobentry_peer_slot (copied) == UINT32_MAX);
    int peer;
    zjq_jobentry_set_peer (copied, (zjq_peer_t *) &peer, 3);
    assert (zjq_jobentry_peer (copied) == (zjq_peer_t *) &peer);
    assert (zjq_jobentry_peer_slot (copied) == 3);
    assert (zjq_jobentry_set_progress (copied, 0.5, "half") == 0);
    assert (zjq_jobentry_set_progress (copied, 0.75, NULL) == 0);

    //  The record snapshot has every field
    zjq_job_t record;
    zjq_jobentry_record (copied, &record);
    assert (streq (record.id, zjq_jobentry_id (copied).text));
    assert (record.sequence == copied->sequence && record.order == copied->order);
    assert (streq (record.queue, zjq_queue_name (queue)) && streq (record.owner, ""));
    assert (record.priority == -7 && record.max_attempts == 1000 && record.attempt == 1);
    assert (record.state == ZJQ_STATE_RUNNING && record.started_ms > 0);
    assert (record.job_timeout_ms == 60000 && record.result_ttl_ms == 3600000);
    assert (record.created_ms == copied->created_ms && record.finished_ms == 0);
    assert (record.progress == 0.75 && streq (record.progress_message, "half"));
    assert (record.payload_size == 5 && memcmp (record.payload, data, 5) == 0);
    assert (!record.key && !record.error && !record.result);

    //  Requeue drops the peer; the attempt's error stays
    zjq_jobtable_requeue (table, copied, "lost");
    assert (zjq_jobentry_peer (copied) == NULL);
    assert (streq (zjq_jobentry_error (copied), "lost"));

    //  A result that fits where the payload was is kept there; a larger one
    //  stays in its frame; a frame payload leaves room for 8 bytes
    zjq_jobentry_t *echo = zjq_jobtable_insert_copy (table, &spec, queue, data, 100);
    zjq_jobentry_t *grows = zjq_jobtable_insert_copy (table, &spec, queue, data, 100);
    zjq_jobentry_t *big = zjq_jobtable_insert_copy (table, &spec, queue, data,
                                                    ZJQ_JOBENTRY_INLINE_MAX + 1);
    zjq_jobentry_t *none = zjq_jobtable_insert_copy (table, &spec, queue, data, 100);
    zjq_jobentry_t *blank = zjq_jobtable_insert_copy (table, &spec, queue, data, 0);
    uint64_t result_bytes = stats->result_bytes;
    zframe_t *echo_result = zframe_new (data + 1, 100);
    zjq_jobtable_finish (table, echo, ZJQ_STATE_SUCCEEDED, NULL, &echo_result, 0);
    assert (!echo_result && !zjq_jobentry_result (echo).frame);
    assert (zjq_jobentry_result (echo).size == 100);
    assert (memcmp (zjq_jobentry_result (echo).data, data + 1, 100) == 0);
    assert (!zjq_jobentry_payload (echo).data && zjq_jobentry_payload (echo).size == 0);
    zframe_t *grows_result = zframe_new (data, 101);
    zframe_t *grows_frame = grows_result;
    zjq_jobtable_finish (table, grows, ZJQ_STATE_SUCCEEDED, NULL, &grows_result, 0);
    assert (!grows_result && zjq_jobentry_result (grows).frame == grows_frame);
    assert (zjq_jobentry_result (grows).size == 101);
    assert (zjq_jobentry_result (grows).data == zframe_data (grows_frame));
    zframe_t *big_result = zframe_new ("12345678", 8);
    zjq_jobtable_finish (table, big, ZJQ_STATE_SUCCEEDED, NULL, &big_result, 0);
    assert (!zjq_jobentry_result (big).frame && zjq_jobentry_result (big).size == 8);
    assert (memcmp (zjq_jobentry_result (big).data, "12345678", 8) == 0);
    zjq_jobtable_finish (table, none, ZJQ_STATE_FAILED, "no", NULL, 0);
    assert (!zjq_jobentry_result (none).data && zjq_jobentry_result (none).size == 0);
    zjq_jobentry_record (none, &record);
    assert (!record.result && record.result_size == 0);
    zframe_t *blank_result = zframe_new_empty ();
    zjq_jobtable_finish (table, blank, ZJQ_STATE_SUCCEEDED, NULL, &blank_result, 0);
    zjq_jobentry_record (blank, &record);
    assert (record.result && record.result_size == 0);  //  an empty result, not none
    assert (stats->result_bytes == result_bytes + 100 + 101 + 8);

    //  Ended jobs come back from the journal with their results, small ones
    //  inline
    zjq_job_t ended = { .sequence = 3, .order = 3, .max_attempts = 1, .attempt = 1,
                        .state = ZJQ_STATE_SUCCEEDED, .job_timeout_ms = 5,
                        .result_ttl_ms = 60000, .finished_ms = zjq_wall_ms (),
                        .expires_ms = zjq_wall_ms () + 60000 };
    zjq_jobid_format (ended.id, 1790000000000ULL, 3);
    ended.result = (byte *) strdup ("small");
    ended.result_size = 5;
    zjq_jobentry_t *restored_small = zjq_jobtable_restore (table, &ended, queue, 0);
    assert (restored_small && !ended.result);
    assert (!zjq_jobentry_result (restored_small).frame);
    assert (zjq_jobentry_result (restored_small).size == 5);
    assert (memcmp (zjq_jobentry_result (restored_small).data, "small", 5) == 0);
    ended.sequence = 4;
    zjq_jobid_format (ended.id, 1790000000000ULL, 4);
    ended.result = (byte *) malloc (ZJQ_JOBENTRY_INLINE_MAX + 1);
    memcpy (ended.result, data, ZJQ_JOBENTRY_INLINE_MAX + 1);
    ended.result_size = ZJQ_JOBENTRY_INLINE_MAX + 1;
    zjq_jobentry_t *restored_big = zjq_jobtable_restore (table, &ended, queue, 0);
    assert (restored_big && zjq_jobentry_result (restored_big).frame);
    assert (memcmp (zjq_jobentry_result (restored_big).data, data,
                    ZJQ_JOBENTRY_INLINE_MAX + 1) == 0);
    assert (stats->result_bytes == result_bytes + 100 + 101 + 8 + 5
                                 + ZJQ_JOBENTRY_INLINE_MAX + 1);
    //  Eviction drops inline and frame results alike
    assert (zjq_jobtable_trim_results (table, 0) == 5);
    assert (stats->result_bytes == 0);

    //  Restoring checks that the record fits the entry
    int level = atomic_load (&zjq_log_threshold);
    if (!verbose)
        zjq_log_set_level ((zjq_log_level_t) (ZJQ_LOG_ERROR + 1));
    zjq_job_t bad = { .sequence = 7, .max_attempts = ZJQ_JOB_ATTEMPTS_MAX + 1,
                      .state = ZJQ_STATE_QUEUED };
    zjq_jobid_format (bad.id, 1790000000000ULL, 7);
    bad.key = strdup ("k");
    bad.payload = (byte *) strdup ("payload");
    bad.payload_size = 7;
    assert (zjq_jobtable_restore (table, &bad, queue, 0) == NULL);
    assert (!bad.key && !bad.payload);          //  freed
    zjq_jobid_format (bad.id, 1790000000000ULL, 8);
    bad.max_attempts = 3;
    assert (zjq_jobtable_restore (table, &bad, queue, 0) == NULL);   //  id and sequence differ
    zjq_log_set_level ((zjq_log_level_t) level);

    free (data);
    zjq_jobtable_destroy (&table);
}

//  What a queued job costs in heap bytes, beyond its payload: the entry, its
//  id index slot and its queue heap slot (the broker's budget is 150 bytes)
static void
s_test_memory (bool verbose)
{
#if defined (__SANITIZE_ADDRESS__)
    //  The sanitizer's allocator has its own overheads
    (void) verbose;
#else
    enum { COUNT = 100000, SIZE = 100 };
    zjq_queue_t *queue = zjq_queue_new ("mem");
    zjq_jobtable_t *table = zjq_jobtable_new (1795000000000ULL);
    assert (queue && table);
    zjq_job_t spec = { .max_attempts = 3, .job_timeout_ms = 1000, .result_ttl_ms = 1000 };
    byte payload [SIZE] = { 0 };
    struct mallinfo2 before = mallinfo2 ();
    for (size_t index = 0; index < COUNT; index++) {
        zjq_jobentry_t *entry = zjq_jobtable_insert_copy (table, &spec, queue, payload, SIZE);
        assert (entry && zjq_queue_push (queue, entry) == 0);
    }
    struct mallinfo2 after = mallinfo2 ();
    //  Allocated bytes (small chunks and mmapped ones), whatever the
    //  current capacity of the index and the heap
    double per_job = ((double) (after.uordblks + after.hblkhd)
                    - (double) (before.uordblks + before.hblkhd)) / COUNT - SIZE;
    if (verbose)
        printf ("(%.1f bytes a queued job beyond its payload) ", per_job);
    assert (per_job > 0 && per_job <= 150);
    zjq_queue_destroy (&queue);
    zjq_jobtable_destroy (&table);
#endif
}

void
zjq_jobtable_test (bool verbose)
{
    const uint64_t generation = 1795000000000ULL;
    zjq_queue_t *queue_q = zjq_queue_new ("q");
    zjq_queue_t *queue_other = zjq_queue_new ("other");
    zjq_queue_t *queue_bulk = zjq_queue_new ("bulk");
    zjq_queue_t *queue_scan = zjq_queue_new ("scan");
    assert (queue_q && queue_other && queue_bulk && queue_scan);
    zjq_jobtable_t *table = zjq_jobtable_new (generation);
    assert (table);
    assert (zjq_jobtable_generation (table) == generation);
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (table);
    assert (zjq_jobtable_next_deadline (table) == INT64_MAX);
    assert (zjq_jobtable_pop_due (table, INT64_MAX) == NULL);

    //  Insert: ids and order from 1, counts, lookups
    zjq_jobentry_t *first = s_test_insert (table, queue_q, NULL, 5000, 10);
    zjq_jobentry_t *second = s_test_insert (table, queue_q, "k1", 5000, 20);
    char id [ZJQ_JOBID_MAX];
    zjq_jobid_format (id, generation, 1);
    assert (streq (zjq_jobentry_id (first).text, id));
    assert (first->sequence == 1 && second->sequence == 2);
    assert (first->order < second->order);
    assert (zjq_jobentry_state (first) == ZJQ_STATE_QUEUED && zjq_jobentry_attempt (first) == 0);
    zjq_job_t record;
    zjq_jobentry_record (first, &record);
    assert (record.created_ms > 0 && record.progress < 0);
    assert (!zjq_jobentry_in_queue (first) && !first->side);
    assert (stats->jobs == 2 && stats->queued == 2 && stats->queued_bytes == 30);
    assert (zjq_jobtable_lookup (table, id) == first);
    assert (zjq_jobtable_lookup (table, "nope-1") == NULL);
    //  One spelling per id: a leading zero is another id
    char padded [ZJQ_JOBID_MAX + 1] = "0";
    strcat (padded, id);
    assert (zjq_jobtable_lookup (table, padded) == NULL);

    //  Idempotency keys are scoped per queue
    assert (zjq_jobtable_lookup_key (table, "q", "k1") == second);
    assert (streq (zjq_jobentry_key (second), "k1"));
    assert (zjq_jobtable_lookup_key (table, "other", "k1") == NULL);
    assert (zjq_jobtable_lookup_key (table, "q", "k2") == NULL);
    zjq_jobentry_t *keyed = s_test_insert (table, queue_other, "k1", 5000, 0);
    assert (zjq_jobtable_lookup_key (table, "other", "k1") == keyed);
    assert (zjq_jobtable_lookup_key (table, "q", "k1") == second);

    //  find: found, bad id, expired, unknown
    zjq_jobentry_t *found = NULL;
    const char *message = NULL;
    assert (zjq_jobtable_find (table, id, &found, &message) == 0 && found == first);
    assert (zjq_jobtable_find (table, "not an id", &found, &message) == ZJQ_EBADID);
    assert (found == NULL && message);
    assert (zjq_jobtable_find (table, NULL, &found, &message) == ZJQ_EBADID);
    zjq_jobid_format (id, generation, 1000);
    assert (zjq_jobtable_find (table, id, &found, &message) == ZJQ_ENOTFOUND);
    zjq_jobid_format (id, generation - 1, 1);
    assert (zjq_jobtable_find (table, id, &found, &message) == ZJQ_ENOTFOUND);
    assert (strstr (message, "restart"));

    //  Start: running, attempt 1, a deadline
    zjq_jobtable_start (table, first, 100);
    assert (zjq_jobentry_state (first) == ZJQ_STATE_RUNNING && zjq_jobentry_attempt (first) == 1);
    zjq_jobentry_record (first, &record);
    assert (record.started_ms > 0);
    assert (stats->queued == 2 && stats->running == 1);
    assert (zjq_jobtable_next_deadline (table) == 1100);
    assert (zjq_jobtable_pop_due (table, 1099) == NULL);

    //  Requeue: back to queued with the reason, out of the deadline heap
    zjq_jobtable_requeue (table, first, "boom (attempt 1 of 3)");
    assert (zjq_jobentry_state (first) == ZJQ_STATE_QUEUED && zjq_jobentry_attempt (first) == 1);
    assert (streq (zjq_jobentry_error (first), "boom (attempt 1 of 3)"));
    assert (first->side->deadline_index == ZJQ_JOBENTRY_NONE);
    assert (zjq_jobtable_next_deadline (table) == INT64_MAX);
    assert (stats->queued == 3 && stats->running == 0);

    //  Unstart: a handed-back attempt does not count
    zjq_jobtable_start (table, first, 100);
    assert (zjq_jobentry_attempt (first) == 2);
    zjq_jobtable_unstart (table, first);
    assert (zjq_jobentry_state (first) == ZJQ_STATE_QUEUED && zjq_jobentry_attempt (first) == 1);
    assert (streq (zjq_jobentry_error (first), "boom (attempt 1 of 3)"));

    //  Timeout: start again, the deadline comes due and is popped
    zjq_jobtable_start (table, first, 200);
    assert (zjq_jobentry_attempt (first) == 2);
    assert (zjq_jobtable_pop_due (table, 1200) == first);
    assert (first->side->deadline_index == ZJQ_JOBENTRY_NONE);
    assert (zjq_jobtable_pop_due (table, 1200) == NULL);

    //  Finish with a result: payload freed, result counted, expiry set
    zframe_t *result = zframe_new ("0123456789", 10);
    zjq_jobtable_finish (table, first, ZJQ_STATE_SUCCEEDED, NULL, &result, 300);
    assert (result == NULL);
    assert (zjq_jobentry_state (first) == ZJQ_STATE_SUCCEEDED && zjq_jobentry_ended (first));
    zjq_jobentry_record (first, &record);
    assert (record.payload == NULL && record.finished_ms > 0);
    assert (record.expires_ms == record.finished_ms + 5000);
    assert (zjq_jobentry_result (first).size == 10 && !zjq_jobentry_result (first).frame);
    assert (memcmp (zjq_jobentry_result (first).data, "0123456789", 10) == 0);
    assert (record.result_size == 10 && memcmp (record.result, "0123456789", 10) == 0);
    assert (stats->running == 0 && stats->ended == 1);
    assert (stats->queued_bytes == 20 && stats->result_bytes == 10);
    assert (zjq_jobtable_next_deadline (table) == 5300);

    //  A queued job can end directly (cancel)
    zjq_jobtable_finish (table, keyed, ZJQ_STATE_CANCELLED, "cancelled by client", NULL, 400);
    assert (streq (zjq_jobentry_error (keyed), "cancelled by client"));
    assert (stats->queued == 1 && stats->ended == 2);
    assert (zjq_jobtable_next_deadline (table) == 5300);

    //  Expiry in deadline order; removal frees the key and counts expired
    assert (zjq_jobtable_pop_due (table, 5300) == first);
    zjq_jobtable_remove (table, &first);
    assert (first == NULL);
    assert (stats->expired == 1 && stats->result_bytes == 0 && stats->jobs == 2);
    zjq_jobid_format (id, generation, 1);
    assert (zjq_jobtable_find (table, id, &found, &message) == ZJQ_EEXPIRED);
    zjq_jobentry_t *due = zjq_jobtable_pop_due (table, 5400);
    assert (due == keyed);
    zjq_jobtable_remove (table, &due);
    assert (zjq_jobtable_lookup_key (table, "other", "k1") == NULL);
    assert (stats->jobs == 1 && stats->ended == 0 && stats->expired == 2);

    //  Result bound: the earliest-expiring results are dropped first
    zjq_jobentry_t *a = s_test_insert (table, queue_q, NULL, 3000, 1);
    zjq_jobentry_t *b = s_test_insert (table, queue_q, NULL, 1000, 1);
    zjq_jobentry_t *c = s_test_insert (table, queue_q, NULL, 2000, 1);
    zjq_jobentry_t *entries [] = { a, b, c };
    for (size_t index = 0; index < 3; index++) {
        zjq_jobtable_start (table, entries [index], 0);
        zframe_t *bytes = zframe_new ("abcdefghij", 10);
        zjq_jobtable_finish (table, entries [index], ZJQ_STATE_SUCCEEDED, NULL, &bytes, 0);
    }
    char id_a [ZJQ_JOBID_MAX], id_b [ZJQ_JOBID_MAX], id_c [ZJQ_JOBID_MAX];
    strcpy (id_a, zjq_jobentry_id (a).text);
    strcpy (id_b, zjq_jobentry_id (b).text);
    strcpy (id_c, zjq_jobentry_id (c).text);
    assert (stats->result_bytes == 30);
    assert (zjq_jobtable_trim_results (table, 30) == 0);
    assert (zjq_jobtable_trim_results (table, 25) == 1);
    assert (zjq_jobtable_lookup (table, id_b) == NULL);
    assert (zjq_jobtable_find (table, id_b, &found, &message) == ZJQ_EEXPIRED);
    assert (zjq_jobtable_trim_results (table, 10) == 1);
    assert (zjq_jobtable_lookup (table, id_c) == NULL);
    assert (zjq_jobtable_lookup (table, id_a) == a);
    assert (stats->result_bytes == 10);
    //  The deadline heap no longer holds the dropped jobs
    assert (zjq_jobtable_next_deadline (table) == 3000);

    //  Waiters: no duplicates, cleared on demand
    assert (zjq_jobentry_add_waiter (second, "c1", 2, NULL) == 0);
    assert (zjq_jobentry_add_waiter (second, "c1", 2, "other") == 1);
    assert (zjq_jobentry_add_waiter (second, "c2", 2, "key-of-c2") == 0);
    assert (zjq_jobentry_add_waiter (second, "c3", 2, "") == 0);
    assert (zjq_jobentry_waiter_count (second) == 3);
    size_t waiter_size = 0;
    char waiter_key [ZJQ_CERT_KEY_TEXT];
    const byte *waiter = zjq_jobentry_waiter (second, 1, &waiter_size, waiter_key,
                                              sizeof (waiter_key));
    assert (waiter_size == 2 && memcmp (waiter, "c2", 2) == 0);
    assert (streq (waiter_key, "key-of-c2"));
    waiter = zjq_jobentry_waiter (second, 2, &waiter_size, waiter_key, sizeof (waiter_key));
    assert (waiter_size == 2 && memcmp (waiter, "c3", 2) == 0 && *waiter_key == 0);
    waiter = zjq_jobentry_waiter (second, 0, &waiter_size, waiter_key, sizeof (waiter_key));
    assert (waiter_size == 2 && memcmp (waiter, "c1", 2) == 0 && *waiter_key == 0);
    assert (zjq_jobentry_add_waiter (second, "", 0, NULL) == -1);
    zjq_jobentry_clear_waiters (second);
    assert (zjq_jobentry_waiter_count (second) == 0);
    assert (zjq_jobentry_add_waiter (second, "c2", 2, NULL) == 0);

    //  Many jobs: ids stay unique and the heap keeps deadline order
    for (int index = 0; index < 10000; index++) {
        zjq_jobentry_t *entry = s_test_insert (table, queue_bulk, NULL, 1000, 0);
        zjq_jobtable_start (table, entry, (index * 7919) % 10007);
    }
    assert (stats->running == 10000);
    int64_t previous = INT64_MIN;
    size_t popped = 0;
    zjq_jobentry_t *entry;
    while ((entry = zjq_jobtable_pop_due (table, 2000000))) {
        assert (entry->side->deadline >= previous);
        previous = entry->side->deadline;
        if (zjq_jobentry_state (entry) == ZJQ_STATE_RUNNING)
            zjq_jobtable_finish (table, entry, ZJQ_STATE_FAILED, "timeout", NULL, 2000000);
        else
            zjq_jobtable_remove (table, &entry);
        popped++;
    }
    assert (popped == 10000 + 1);           //  the timeouts and a's expiry
    assert (stats->running == 0 && stats->ended == 10000 && stats->jobs == 10001);
    while ((entry = zjq_jobtable_pop_due (table, INT64_MAX)))
        zjq_jobtable_remove (table, &entry);
    assert (stats->jobs == 1 && stats->queued == 1);   //  'second' still queued
    assert (stats->ended == 0 && stats->expired == 5 + 10000);

    //  A scan sees the jobs there when it starts, oldest first (restored
    //  jobs of an earlier generation by their order), and skips the ones
    //  removed meanwhile; later ones are not its business
    zjq_job_t restored = { .sequence = 9, .order = 1, .max_attempts = 1,
                           .state = ZJQ_STATE_QUEUED, .job_timeout_ms = 5, .result_ttl_ms = 5 };
    zjq_jobid_format (restored.id, generation - 10, 9);
    zjq_jobentry_t *oldest = zjq_jobtable_restore (table, &restored, queue_scan, 0);
    assert (oldest);
    zjq_jobentry_t *scan1 = s_test_insert (table, queue_scan, NULL, 1000, 0);
    zjq_jobentry_t *scan2 = s_test_insert (table, queue_scan, NULL, 1000, 0);
    zjq_jobentry_t *scan3 = s_test_insert (table, queue_scan, NULL, 1000, 0);
    assert (zjq_jobtable_scan_start (table) == 0);
    assert (zjq_jobtable_scan_next (table) == oldest);
    assert (zjq_jobtable_scan_next (table) == second);
    s_test_insert (table, queue_scan, NULL, 1000, 0);
    zjq_jobtable_remove (table, &scan2);
    assert (zjq_jobtable_scan_next (table) == scan1);
    assert (zjq_jobtable_scan_next (table) == scan3);
    assert (zjq_jobtable_scan_next (table) == NULL);
    assert (zjq_jobtable_scan_next (table) == NULL);
    assert (table->scan == NULL);           //  given back at the end
    //  A scan stopped early gives its memory back too
    assert (zjq_jobtable_scan_start (table) == 0);
    assert (zjq_jobtable_scan_next (table) == oldest);
    zjq_jobtable_scan_stop (table);
    assert (table->scan == NULL && zjq_jobtable_scan_next (table) == NULL);

    //  Sorting by order with a wide spread (several radix passes)
    s_scan_item_t items [1000];
    for (size_t index = 0; index < 1000; index++)
        items [index] = (s_scan_item_t) { (index * 7919 % 1000) * 0x10000000001ULL + 3, NULL };
    s_sort_by_order (items, 1000);
    for (size_t index = 1; index < 1000; index++)
        assert (items [index - 1].order < items [index].order);

    //  Generations: the current one first, then the ones added
    uint64_t gen, last;
    zjq_jobtable_add_generation (table, generation - 5, 7);
    assert (zjq_jobtable_generation_at (table, 0, &gen, &last) && gen == generation);
    assert (zjq_jobtable_generation_at (table, 1, &gen, &last) && gen == generation - 5);
    assert (last == 7 && !zjq_jobtable_generation_at (table, 2, &gen, &last));
    zjq_jobid_format (id, generation - 5, 7);
    assert (zjq_jobtable_find (table, id, &found, &message) == ZJQ_EEXPIRED);
    zjq_jobid_format (id, generation - 5, 8);
    assert (zjq_jobtable_find (table, id, &found, &message) == ZJQ_ENOTFOUND);

    //  Dead letters: a failed job keeps its payload and its history, stays
    //  the dead-letter TTL, and a retry gives it a fresh attempt budget
    zjq_jobtable_set_dead_letter_ttl (table, 100000);
    zjq_jobentry_t *dead = s_test_insert (table, queue_q, NULL, 1000, 5);
    zjq_jobtable_start (table, dead, 0);
    zjq_attempt_t attempt = { .attempt = 1, .exit_code = 3, .error = "exit status 3",
                              .duration_ms = 7 };
    assert (zjq_jobtable_add_attempt (table, dead, &attempt) == 0);
    uint64_t queued_bytes = stats->queued_bytes;
    zjq_jobtable_finish (table, dead, ZJQ_STATE_FAILED, "exit status 3 (attempt 1 of 3)",
                         NULL, 0);
    assert (zjq_jobentry_payload (dead).size == 5 && !zjq_jobentry_payload (dead).frame);
    assert (stats->queued_bytes == queued_bytes - 5);
    zjq_jobentry_record (dead, &record);
    assert (record.payload && record.payload_size == 5 && record.history);
    assert (record.history->count == 1 && record.history->attempts [0].exit_code == 3);
    assert (zjq_jobtable_is_dead (table, dead) && zjq_jobtable_dead_first (table) == dead);
    assert (zjq_jobtable_dead_next (table, dead) == NULL);
    assert (record.expires_ms == record.finished_ms + 100000);
    const zjq_deadlist_t *letters = zjq_jobtable_dead_letters (table);
    assert (letters->count == 1 && letters->bytes == zjq_jobentry_history (dead)->bytes + 5);
    const char *why = NULL;
    assert (zjq_jobtable_retry (table, second, &why) == ZJQ_ESTATE && why);
    uint64_t queued_before = stats->queued;
    assert (zjq_jobtable_retry (table, dead, &why) == 0);
    assert (zjq_jobentry_state (dead) == ZJQ_STATE_QUEUED);
    assert (zjq_jobentry_max_attempts (dead) == 4 && zjq_jobentry_attempt (dead) == 1);
    zjq_jobentry_record (dead, &record);
    assert (record.finished_ms == 0 && dead->side->deadline_index == ZJQ_JOBENTRY_NONE);
    assert (letters->count == 0 && letters->bytes == 0 && stats->queued == queued_before + 1);
    assert (stats->queued_bytes == queued_bytes);
    assert (zjq_jobentry_history (dead)->retries == 1);
    assert (zjq_jobentry_history (dead)->count == 1);
    //  Failed again, and a newer one: trimming drops the oldest failure
    zjq_jobtable_start (table, dead, 0);
    assert (zjq_jobentry_attempt (dead) == 2);
    zjq_jobtable_finish (table, dead, ZJQ_STATE_FAILED, "again", NULL, 0);
    zjq_jobentry_t *dead2 = s_test_insert (table, queue_q, NULL, 1000, 1);
    zjq_jobtable_finish (table, dead2, ZJQ_STATE_FAILED, "failed while queued", NULL, 0);
    assert (zjq_jobentry_history (dead2) && zjq_jobentry_history (dead2)->count == 0);
    assert (letters->count == 2 && zjq_jobtable_dead_next (table, dead) == dead2);
    assert (zjq_jobtable_trim_dead (table, 1, UINT64_MAX) == 1);
    assert (zjq_jobtable_dead_first (table) == dead2 && letters->count == 1);
    assert (zjq_jobtable_trim_dead (table, 1, 0) == 1 && letters->count == 0);

    //  A large payload stays in its frame through the failure and the
    //  retry; attempt counts past 16 bits move to the side block
    zjq_job_t many = { .max_attempts = 1000, .job_timeout_ms = 1000, .result_ttl_ms = 1000 };
    byte big [ZJQ_JOBENTRY_INLINE_MAX + 1] = { 7 };
    zjq_jobentry_t *busy = zjq_jobtable_insert_copy (table, &many, queue_q, big, sizeof (big));
    assert (busy);
    zframe_t *big_frame = zjq_jobentry_payload (busy).frame;
    for (int round = 0; round < 70; round++) {
        while (zjq_jobentry_attempt (busy) < zjq_jobentry_max_attempts (busy)) {
            zjq_jobtable_start (table, busy, 0);
            if (zjq_jobentry_attempt (busy) < zjq_jobentry_max_attempts (busy))
                zjq_jobtable_requeue (table, busy, "again");
        }
        zjq_jobtable_finish (table, busy, ZJQ_STATE_FAILED, "no more", NULL, 0);
        assert (zjq_jobentry_payload (busy).frame == big_frame);
        assert (zjq_jobtable_retry (table, busy, &why) == 0);
    }
    assert (busy->flags & ZJQ_JOBENTRY_WIDE);
    assert (zjq_jobentry_attempt (busy) == 70000 && zjq_jobentry_max_attempts (busy) == 71000);
    zjq_jobtable_start (table, busy, 0);
    zjq_jobtable_unstart (table, busy);
    zjq_jobentry_record (busy, &record);
    assert (record.attempt == 70000 && record.max_attempts == 71000);
    zjq_jobtable_remove (table, &busy);

    //  Destroy frees whatever is left (second with its waiter)
    zjq_jobtable_destroy (&table);
    zjq_jobtable_destroy (&table);
    assert (table == NULL);

    s_test_index (queue_bulk);
    s_test_entries (queue_q, verbose);
    s_test_memory (verbose);
    zjq_queue_destroy (&queue_q);
    zjq_queue_destroy (&queue_other);
    zjq_queue_destroy (&queue_bulk);
    zjq_queue_destroy (&queue_scan);
    if (verbose)
        printf ("(jobtable ok) ");
}
