/*  zjq_jobtable.c: every job the broker holds. See zjq_jobtable.h.

    Memory. A queued job costs one allocation: the compact entry with its
    payload inline (up to ZJQ_JOBENTRY_INLINE_MAX bytes), one slot in the id
    index and one in its queue's heap. Everything else is in the side block,
    allocated the first time a job needs it (a key, a long duration, a
    waiter, the first attempt, an attempt history) and freed with the
    entry. Owner keys are
    interned: entries of one submitter share one refcounted copy.

    Indexes. The id index is the common open-addressing table (zjq_hashtab.h:
    linear probing, deletion by backward shift, no tombstones, its lookup
    inline with our match) of entry pointers keyed by
    (generation, sequence), the two numbers of the id; it grows at 3/4 load
    and shrinks below 1/8, so memory comes back after a drain. Idempotency
    keys are in a zhashx from "queue/key" to entry ('/' cannot appear in a
    queue name, so the pair is unambiguous). Heaps: one deadline heap
    (running jobs by timeout, ended jobs by expiry) and one result heap
    (ended jobs holding result bytes, by expiry) for eviction under the
    result memory bound.

    Changes. Every change is announced through the change hook (the store
    appends it); the table never calls the store. Scans (compaction) are in
    zjq_jobtable_scan.c, dead letters in zjq_jobtable_dead.c, the entries
    and their side blocks in zjq_jobentry.c.                                */

#include "zjq_jobtable_private.h"
#include "zjq_queue.h"
#include "zjq_log.h"
#include "zjq_util.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <inttypes.h>
#include <stddef.h>
#include <string.h>


//  --------------------------------------------------------------------------
//  The id index (zjq_hashtab.h), keyed by (generation, sequence)

//  Fibonacci hashing: consecutive sequences land far apart
static inline uint64_t
s_id_hash (uint64_t generation, uint64_t sequence)
{
    return (sequence ^ (generation * 0xC2B2AE3D27D4EB4FULL)) * 0x9E3779B97F4A7C15ULL;
}

static uint64_t
s_entry_hash (const void *item)
{
    const zjq_jobentry_t *entry = (const zjq_jobentry_t *) item;
    return s_id_hash (entry->generation, entry->sequence);
}

//  The key of a lookup
typedef struct {
    uint64_t generation;
    uint64_t sequence;
} s_id_key_t;

static inline bool
s_id_match (const void *item, const void *key)
{
    const zjq_jobentry_t *entry = (const zjq_jobentry_t *) item;
    const s_id_key_t *id = (const s_id_key_t *) key;
    return entry->sequence == id->sequence && entry->generation == id->generation;
}

static inline zjq_jobentry_t *
s_index_find (zjq_jobtable_t *self, uint64_t generation, uint64_t sequence)
{
    s_id_key_t key = { generation, sequence };
    return (zjq_jobentry_t *) zjq_hashtab_lookup (&self->by_id, s_id_hash (generation, sequence),
                                                  s_id_match, &key);
}

static inline int
s_index_insert (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    return zjq_hashtab_insert (&self->by_id, s_entry_hash (entry), entry);
}

static inline void
s_index_remove (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    bool removed = zjq_hashtab_remove (&self->by_id, s_entry_hash (entry), entry);
    assert (removed);
    (void) removed;
}


//  --------------------------------------------------------------------------
//  Owners and freeing entries

//  The interned copy of an owner key (or a connection's "~hex"), with a
//  reference taken; NULL for "" or if out of memory (*failed set)
static zjq_owner_t *
s_owner_take (zjq_jobtable_t *self, const char *text, bool *failed)
{
    if (!*text)
        return NULL;
    zjq_owner_t *owner = (zjq_owner_t *) zhashx_lookup (self->owners, text);
    if (!owner) {
        size_t size = strlen (text) + 1;
        owner = (zjq_owner_t *) calloc (1, sizeof (zjq_owner_t) + size);
        if (!owner) {
            *failed = true;
            return NULL;
        }
        memcpy (owner->text, text, size);
        owner->connection = *text == '~';
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

void
zjq_jobtable_count_active (zjq_jobtable_t *self, zjq_jobentry_t *entry, bool add)
{
    uint64_t size = zjq_jobentry_payload (entry).size;
    zjq_owner_t *owner = entry->owner;
    if (add) {
        self->stats.queued_bytes += size;
        if (owner) {
            owner->active++;
            owner->active_bytes += size;
        }
    }
    else {
        self->stats.queued_bytes -= size;
        if (owner) {
            assert (owner->active && owner->active_bytes >= size);
            owner->active--;
            owner->active_bytes -= size;
        }
    }
}

int
zjq_jobtable_set_connection (zjq_jobtable_t *self, zjq_jobentry_t *entry, const char *rid_hex)
{
    assert (self && entry && rid_hex);
    assert (!entry->owner && !zjq_jobentry_ended (entry));
    char text [ZJQ_SUBMITTER_MAX + 2];
    snprintf (text, sizeof (text), "~%s", rid_hex);
    bool failed = false;
    zjq_owner_t *owner = s_owner_take (self, text, &failed);
    if (!owner)
        return -1;
    zjq_jobtable_count_active (self, entry, false);
    entry->owner = owner;
    zjq_jobtable_count_active (self, entry, true);
    return 0;
}

void
zjq_jobtable_usage (zjq_jobtable_t *self, const char *submitter, bool connection,
                    uint64_t *jobs_p, uint64_t *bytes_p)
{
    assert (self && submitter && jobs_p && bytes_p);
    char text [ZJQ_SUBMITTER_MAX + 2];
    if (connection)
        snprintf (text, sizeof (text), "~%s", submitter);
    zjq_owner_t *owner = (zjq_owner_t *) zhashx_lookup (self->owners,
                                                         connection? text: submitter);
    *jobs_p = owner? owner->active: 0;
    *bytes_p = owner? owner->active_bytes: 0;
}

void
zjq_jobtable_entry_free (zjq_jobtable_t *self, zjq_jobentry_t **entry_p)
{
    zjq_jobentry_t *entry = *entry_p;
    if (!entry)
        return;
    zframe_t *frame = zjq_jobentry_frame (entry);
    zframe_destroy (&frame);
    s_owner_release (self, entry->owner);
    zjq_jobentry_side_free (&entry->side);
    free (entry);
    *entry_p = NULL;
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
    if (generation > ZJQ_JOBENTRY_48_MAX) {
        zjq_log_error ("job_table_error", "generation=%" PRIu64 " msg=%s", generation,
                       "a generation past 48 bits");
        free (self);
        return NULL;
    }
    self->generation = generation;
    self->next_sequence = 1;
    self->next_order = 1;
    self->by_key = zhashx_new ();
    self->owners = zhashx_new ();
    self->paused = zhashx_new ();
    self->deadlines = zjq_heap_new (s_deadline_before, s_deadline_index);
    self->results = zjq_heap_new (s_deadline_before, s_result_index);
    if (!self->by_key || !self->owners || !self->paused || !self->deadlines || !self->results
    ||  zjq_hashtab_init (&self->by_id, s_entry_hash, ZJQ_INDEX_MIN_BITS, 7, 1) == -1) {
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
    size_t cursor = 0;
    zjq_jobentry_t *entry;
    while ((entry = (zjq_jobentry_t *) zjq_hashtab_next (&self->by_id, &cursor)))
        zjq_jobtable_entry_free (self, &entry);
    zjq_hashtab_fini (&self->by_id);
    zhashx_destroy (&self->by_key);
    zhashx_destroy (&self->owners);
    zhashx_destroy (&self->paused);
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
//  Insert and look up

//  Insert with the payload as a frame (frame_p) or as bytes to copy
static zjq_jobentry_t *
s_insert (zjq_jobtable_t *self, const zjq_job_t *spec, zjq_queue_t *queue,
          zframe_t **frame_p, const void *data, size_t size)
{
    assert (self);
    assert (spec && queue);
    if (zjq_hashtab_size (&self->by_id) >= UINT32_MAX - 1)
        return NULL;            //  heap positions are 32 bits
    if (self->next_sequence > ZJQ_JOBENTRY_48_MAX || self->next_order > ZJQ_JOBENTRY_48_MAX)
        return NULL;            //  entries hold 48 bits (2.8e14 jobs: restart the broker)
    zjq_jobentry_t *entry = zjq_jobentry_new (size);
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
    ||  zjq_jobentry_set_duration (entry, &entry->job_timeout, spec->job_timeout_ms, true) == -1
    ||  zjq_jobentry_set_duration (entry, &entry->result_ttl, spec->result_ttl_ms, false) == -1)
        goto err;
    if (spec->key) {
        if (!zjq_jobentry_side_try (entry) || !(entry->side->key = strdup (spec->key)))
            goto err;
        if (s_key_insert (self, entry) != 0)
            goto err;           //  out of memory (a duplicate key is the caller's error)
    }
    if (s_index_insert (self, entry) != 0) {
        if (spec->key)
            s_key_delete (self, entry);
        goto err;
    }
    //  The payload, last: nothing can fail any more
    if (entry->flags & ZJQ_JOBENTRY_FRAME) {
        zframe_t *frame = frame_p? *frame_p: zframe_new (data, size);
        if (!frame) {
            s_index_remove (self, entry);
            if (spec->key)
                s_key_delete (self, entry);
            goto err;
        }
        zjq_jobentry_set_frame (entry, frame);
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
    zjq_jobtable_count_active (self, entry, true);
    if (self->hook.insert)
        self->hook.insert (self->hook_arg, entry);
    return entry;

err:
    zjq_jobtable_entry_free (self, &entry);
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
    return s_index_find (self, generation, sequence);
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
void
zjq_jobtable_set_deadline (zjq_jobtable_t *self, zjq_jobentry_t *entry, int64_t deadline)
{
    zjq_jobside_t *side = zjq_jobentry_side (entry);
    side->deadline = deadline;
    if (side->deadline_index != ZJQ_JOBENTRY_NONE)
        zjq_heap_update (self->deadlines, side->deadline_index);
    else
    if (zjq_heap_push (self->deadlines, side) != 0)
        //  Out of memory: the job just never times out or expires by itself
        zjq_log_error ("out_of_memory", "what=job_deadline job=%s", zjq_jobentry_id (entry).text);
}

void
zjq_jobtable_clear_deadline (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    if (entry->side && entry->side->deadline_index != ZJQ_JOBENTRY_NONE)
        zjq_heap_remove (self->deadlines, entry->side->deadline_index);
}

//  now + ms without overflow
int64_t
zjq_jobtable_after (int64_t now, int64_t ms)
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
    zjq_jobside_t *side = zjq_jobentry_side (entry);
    entry->state = ZJQ_STATE_RUNNING;
    if (entry->flags & ZJQ_JOBENTRY_WIDE)
        side->attempt++;
    else
        entry->attempt++;       //  a retry made the counts wide before they overflow
    side->started_ms = zjq_wall_ms ();
    side->progress = -1;
    s_set_string (&side->progress_message, NULL);
    zjq_jobtable_set_deadline (self, entry, zjq_jobtable_after (now, zjq_jobentry_job_timeout_ms (entry)));
    self->stats.queued--;
    self->stats.running++;
    if (self->hook.state)
        self->hook.state (self->hook_arg, entry);
}

//  A running job goes back to queued (announced once the caller's changes
//  to the record are made: see the two callers)
static void
s_back_to_queued (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    assert (entry->state == ZJQ_STATE_RUNNING);
    zjq_jobtable_clear_deadline (self, entry);
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
    if (self->hook.state)
        self->hook.state (self->hook_arg, entry);
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
    if (self->hook.state)
        self->hook.state (self->hook_arg, entry);
}
void
zjq_jobtable_track_result (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    size_t result_size = zjq_jobentry_result (entry).size;
    if (result_size > 0) {
        self->stats.result_bytes += result_size;
        if (zjq_heap_push (self->results, entry->side) != 0)
            zjq_log_error ("out_of_memory", "what=job_result job=%s", zjq_jobentry_id (entry).text);
    }
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
    zjq_jobside_t *side = zjq_jobentry_side (entry);
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
    int64_t ttl_ms = dead? zjq_jobtable_dead_ttl (self, entry): zjq_jobentry_result_ttl_ms (entry);
    side->finished_ms = zjq_wall_ms ();
    side->expires_ms = side->finished_ms + ttl_ms;
    if (error)
        s_set_string (&side->error, error);
    zjq_jobtable_count_active (self, entry, false);
    //  The payload goes; a result that fits takes its place
    size_t room = dead? 0: zjq_jobentry_drop_payload (entry);
    if (result_p && *result_p)
        zjq_jobentry_store_result (entry, room, result_p, zframe_data (*result_p),
                        zframe_size (*result_p));
    side->peer = NULL;
    side->peer_slot = UINT32_MAX;
    zjq_jobtable_set_deadline (self, entry, zjq_jobtable_after (now, ttl_ms));
    if (dead)
        zjq_jobtable_dead_link (self, entry);
    zjq_jobtable_track_result (self, entry);
    if (self->hook.state)
        self->hook.state (self->hook_arg, entry);
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
    zjq_jobtable_clear_deadline (self, entry);
    zjq_jobside_t *side = entry->side;
    if (side && side->result_index != ZJQ_JOBENTRY_NONE)
        zjq_heap_remove (self->results, side->result_index);
    if (side && side->key)
        s_key_delete (self, entry);
    zjq_jobtable_dead_unlink (self, entry);
    if (self->hook.remove)
        self->hook.remove (self->hook_arg, entry);
    if (self->scan)
        zjq_jobtable_scan_forget (self, entry);
    s_index_remove (self, entry);
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
        zjq_jobtable_count_active (self, entry, false);
    }
    self->stats.jobs--;
    zjq_jobtable_entry_free (self, entry_p);
}


//  --------------------------------------------------------------------------
//  The change hook, paused queues, restoring

void
zjq_jobtable_set_hook (zjq_jobtable_t *self, const zjq_jobtable_hook_t *hook, void *arg)
{
    assert (self);
    memset (&self->hook, 0, sizeof (self->hook));
    if (hook)
        self->hook = *hook;
    self->hook_arg = hook? arg: NULL;
}

int
zjq_jobtable_set_paused (zjq_jobtable_t *self, const char *queue, bool paused)
{
    assert (self);
    assert (queue);
    if (paused) {
        if (!zhashx_lookup (self->paused, queue)
        &&  zhashx_insert (self->paused, queue, self->paused) != 0)
            return -1;
    }
    else
        zhashx_delete (self->paused, queue);
    if (self->hook.queue)
        self->hook.queue (self->hook_arg, queue, paused);
    return 0;
}

size_t
zjq_jobtable_paused_queues (zjq_jobtable_t *self, zjq_jobtable_queue_fn *fn, void *arg)
{
    assert (self);
    assert (fn);
    size_t count = 0;
    for (void *item = zhashx_first (self->paused); item; item = zhashx_next (self->paused)) {
        fn (arg, (const char *) zhashx_cursor (self->paused));
        count++;
    }
    return count;
}

//  The record's fields in range for the entry? NULL, or what is not.
static const char *
s_restore_problem (const zjq_job_t *job, uint64_t *generation)
{
    uint64_t sequence;
    if (zjq_jobid_parse_exact (job->id, generation, &sequence) == -1
    ||  sequence != job->sequence)
        return "a bad id";
    if (*generation > ZJQ_JOBENTRY_48_MAX || job->order > ZJQ_JOBENTRY_48_MAX)
        return "an id or order out of range";
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
    if (failed || (side_needed && !zjq_jobentry_side_try (entry))
    ||  zjq_jobentry_set_attempts (entry, job->attempt, job->max_attempts) == -1
    ||  zjq_jobentry_set_duration (entry, &entry->job_timeout, job->job_timeout_ms, true) == -1
    ||  zjq_jobentry_set_duration (entry, &entry->result_ttl, job->result_ttl_ms, false) == -1)
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
        return job->result? zjq_jobentry_store_result (entry, room, NULL, job->result, job->result_size): 0;
    }
    size_t size = job->payload? job->payload_size: 0;
    if (entry->flags & ZJQ_JOBENTRY_FRAME) {
        zframe_t *frame = zframe_new (job->payload, size);
        if (!frame)
            return -1;
        zjq_jobentry_set_frame (entry, frame);
    }
    else
    if (size)
        memcpy (entry->payload, job->payload, size);
    //  A dead letter's result (if any) cannot take the payload's place
    return ended && job->result? zjq_jobentry_store_result (entry, 0, NULL, job->result, job->result_size): 0;
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
    zjq_jobentry_t *entry = problem? NULL: zjq_jobentry_new (size);
    if (entry) {
        entry->generation = generation;
        entry->queue = queue;
        if (s_restore_fields (self, entry, job) == -1) {
            zjq_jobtable_entry_free (self, &entry);
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
    if (s_index_find (self, entry->generation, entry->sequence)
    ||  s_index_insert (self, entry) != 0) {
        zjq_log_error ("journal_job_dropped", "job=%s reason=%s", job->id,
                       "restored twice or out of memory");
        zjq_jobtable_entry_free (self, &entry);
        return NULL;
    }
    if (entry->side && entry->side->key && s_key_insert (self, entry) != 0) {
        zjq_log_error ("journal_job_dropped", "job=%s reason=%s", job->id,
                       "its idempotency key is taken");
        s_index_remove (self, entry);
        zjq_jobtable_entry_free (self, &entry);
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
        zjq_jobtable_count_active (self, entry, true);
    }
    else {
        self->stats.ended++;
        zjq_jobside_t *side = entry->side;
        bool dead = entry->state == ZJQ_STATE_FAILED;
        if (dead)
            //  The dead-letter TTL in force now decides
            side->expires_ms = side->finished_ms + zjq_jobtable_dead_ttl (self, entry);
        int64_t left = side->expires_ms - zjq_wall_ms ();
        zjq_jobtable_set_deadline (self, entry, zjq_jobtable_after (now, left > 0? left: 0));
        zjq_jobtable_track_result (self, entry);
        if (dead)
            zjq_jobtable_dead_link (self, entry);
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
    if (self->hook.generation)
        self->hook.generation (self->hook_arg, generation, last_sequence);
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




const char *
zjq_jobentry_queue_name (const zjq_jobentry_t *entry)
{
    assert (entry);
    return zjq_queue_name (entry->queue);
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


