/*  zjq_jobtable.c: every job the broker holds. See zjq_jobtable.h.

    Indexes: a zhashx from id to entry (the key points into the entry's own
    record, so nothing is copied), and a zhashx from "queue/key" to entry for
    idempotency keys ('/' cannot appear in a queue name, so the pair is
    unambiguous). Heaps: one deadline heap (running jobs by timeout, ended
    jobs by expiry) and one result heap (ended jobs holding result bytes, by
    expiry) for eviction under the result memory bound.                      */

#include "zjq_jobtable.h"
#include "zjq_log.h"
#include "zjq_util.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <string.h>

struct _zjq_jobtable_t {
    uint64_t generation;        //  broker start time, Unix ms
    uint64_t next_sequence;     //  sequence of the next id, from 1
    uint64_t next_order;        //  submission order of the next job
    zhashx_t *by_id;            //  id -> entry (owns nothing; we free entries)
    zhashx_t *by_key;           //  "queue/key" -> entry
    zjq_heap_t *deadlines;      //  running (timeout) and ended (expiry) jobs
    zjq_heap_t *results;        //  ended jobs with result bytes, by expiry
    zjq_jobtable_stats_t stats; //  counters
    zjq_journal_t *journal;     //  where changes are appended, or NULL
    zjq_jobentry_t *oldest;     //  insertion-order list of every entry
    zjq_jobentry_t *newest;
    zjq_jobentry_t *scan_next;  //  next entry of a scan, or NULL
    uint64_t scan_limit;        //  a scan stops at entries of this order or later
    uint64_t *generations;      //  earlier generations: (generation, last sequence)
    size_t generation_count;    //  pairs in generations
    zjq_deadlist_t dead;        //  failed jobs (dead letters), oldest failure first
    int64_t dead_ttl_ms;        //  a failed job is kept at least this long
};


//  --------------------------------------------------------------------------
//  Hashing and heap callbacks

//  FNV-1a: ids differ in their last characters, which this spreads well.
static size_t
s_hash (const void *key)
{
    const unsigned char *text = (const unsigned char *) key;
    uint64_t hash = 14695981039346656037ULL;
    while (*text) {
        hash ^= *text++;
        hash *= 1099511628211ULL;
    }
    return (size_t) hash;
}

static int
s_compare (const void *a, const void *b)
{
    return strcmp ((const char *) a, (const char *) b);
}

static bool
s_deadline_before (const void *a, const void *b)
{
    const zjq_jobentry_t *first = (const zjq_jobentry_t *) a;
    const zjq_jobentry_t *second = (const zjq_jobentry_t *) b;
    if (first->deadline != second->deadline)
        return first->deadline < second->deadline;
    return first->job.order < second->job.order;
}

static void
s_deadline_index (void *item, size_t index)
{
    ((zjq_jobentry_t *) item)->deadline_index = index;
}

static void
s_result_index (void *item, size_t index)
{
    ((zjq_jobentry_t *) item)->result_index = index;
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


//  --------------------------------------------------------------------------
//  Constructor and destructor

static void
s_entry_free (zjq_jobentry_t **entry_p)
{
    zjq_jobentry_t *entry = *entry_p;
    if (!entry)
        return;
    zjq_jobentry_clear_waiters (entry);
    free (entry->waiters);
    free (entry->job.key);
    free (entry->job.error);
    free (entry->job.progress_message);
    if (entry->job.history)
        entry->job.history->owner = NULL;   //  the table is going: no list to fix
    zjq_history_destroy (&entry->job.history);
    zframe_destroy (&entry->job.payload);
    zframe_destroy (&entry->job.result);
    free (entry);
    *entry_p = NULL;
}

zjq_jobtable_t *
zjq_jobtable_new (uint64_t generation)
{
    zjq_jobtable_t *self = (zjq_jobtable_t *) calloc (1, sizeof (zjq_jobtable_t));
    if (!self)
        return NULL;
    self->generation = generation;
    self->next_sequence = 1;
    self->next_order = 1;
    self->by_id = zhashx_new ();
    self->by_key = zhashx_new ();
    self->deadlines = zjq_heap_new (s_deadline_before, s_deadline_index);
    self->results = zjq_heap_new (s_deadline_before, s_result_index);
    if (!self->by_id || !self->by_key || !self->deadlines || !self->results) {
        zjq_jobtable_destroy (&self);
        return NULL;
    }
    //  Id keys live in the entries themselves
    zhashx_set_key_duplicator (self->by_id, NULL);
    zhashx_set_key_destructor (self->by_id, NULL);
    zhashx_set_key_hasher (self->by_id, s_hash);
    zhashx_set_key_comparator (self->by_id, s_compare);
    zhashx_set_key_hasher (self->by_key, s_hash);
    return self;
}

void
zjq_jobtable_destroy (zjq_jobtable_t **self_p)
{
    assert (self_p);
    zjq_jobtable_t *self = *self_p;
    if (!self)
        return;
    if (self->by_id) {
        zjq_jobentry_t *entry = (zjq_jobentry_t *) zhashx_first (self->by_id);
        while (entry) {
            s_entry_free (&entry);
            entry = (zjq_jobentry_t *) zhashx_next (self->by_id);
        }
    }
    zhashx_destroy (&self->by_id);
    zhashx_destroy (&self->by_key);
    zjq_heap_destroy (&self->deadlines);
    zjq_heap_destroy (&self->results);
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
//  Insertion order (for scans)

static void
s_link (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    entry->older = self->newest;
    entry->newer = NULL;
    if (self->newest)
        self->newest->newer = entry;
    else
        self->oldest = entry;
    self->newest = entry;
}

static void
s_unlink (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    zjq_jobentry_t *older = (zjq_jobentry_t *) entry->older;
    zjq_jobentry_t *newer = (zjq_jobentry_t *) entry->newer;
    if (self->scan_next == entry)
        self->scan_next = newer;
    if (older)
        older->newer = newer;
    else
        self->oldest = newer;
    if (newer)
        newer->older = older;
    else
        self->newest = older;
    entry->older = entry->newer = NULL;
}

void
zjq_jobtable_scan_start (zjq_jobtable_t *self)
{
    assert (self);
    self->scan_next = self->oldest;
    self->scan_limit = self->next_order;
}

zjq_jobentry_t *
zjq_jobtable_scan_next (zjq_jobtable_t *self)
{
    assert (self);
    zjq_jobentry_t *entry = self->scan_next;
    if (!entry || entry->job.order >= self->scan_limit) {
        self->scan_next = NULL;
        return NULL;
    }
    self->scan_next = (zjq_jobentry_t *) entry->newer;
    return entry;
}


//  --------------------------------------------------------------------------
//  Insert and look up

zjq_jobentry_t *
zjq_jobtable_insert (zjq_jobtable_t *self, const zjq_job_t *spec,
                     zjq_queue_t *queue, zframe_t **payload_p)
{
    assert (self);
    assert (spec && spec->queue);
    assert (payload_p && *payload_p);
    zjq_jobentry_t *entry = (zjq_jobentry_t *) calloc (1, sizeof (zjq_jobentry_t));
    if (!entry)
        return NULL;
    zjq_job_t *job = &entry->job;
    job->sequence = self->next_sequence;
    zjq_jobid_format (job->id, self->generation, job->sequence);
    job->order = self->next_order;
    job->queue = spec->queue;
    job->priority = spec->priority;
    job->max_attempts = spec->max_attempts;
    job->job_timeout_ms = spec->job_timeout_ms;
    job->result_ttl_ms = spec->result_ttl_ms;
    memcpy (job->owner, spec->owner, sizeof (job->owner));
    job->state = ZJQ_STATE_QUEUED;
    job->created_ms = zjq_wall_ms ();
    job->progress = -1;
    entry->queue = queue;
    entry->queue_index = ZJQ_HEAP_NONE;
    entry->deadline_index = ZJQ_HEAP_NONE;
    entry->result_index = ZJQ_HEAP_NONE;

    if (zhashx_insert (self->by_id, job->id, entry) != 0) {
        free (entry);
        return NULL;
    }
    if (spec->key) {
        job->key = strdup (spec->key);
        char buf [512];
        char *text = job->key? s_key_text (buf, sizeof (buf), job->queue, job->key): NULL;
        int rc = text? zhashx_insert (self->by_key, text, entry): -1;
        if (text && text != buf)
            free (text);
        if (rc != 0) {
            //  Out of memory (a duplicate key is the caller's error)
            zhashx_delete (self->by_id, job->id);
            free (job->key);
            free (entry);
            return NULL;
        }
    }
    job->payload = *payload_p;
    *payload_p = NULL;
    self->next_sequence++;
    self->next_order++;
    self->stats.jobs++;
    self->stats.queued++;
    self->stats.inserted++;
    self->stats.queued_bytes += zframe_size (job->payload);
    s_link (self, entry);
    if (self->journal)
        zjq_journal_append_job (self->journal, job);
    return entry;
}

zjq_jobentry_t *
zjq_jobtable_lookup (zjq_jobtable_t *self, const char *id)
{
    assert (self);
    assert (id);
    return (zjq_jobentry_t *) zhashx_lookup (self->by_id, id);
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
    entry->deadline = deadline;
    if (entry->deadline_index != ZJQ_HEAP_NONE)
        zjq_heap_update (self->deadlines, entry->deadline_index);
    else
    if (zjq_heap_push (self->deadlines, entry) != 0)
        //  Out of memory: the job just never times out or expires by itself
        zjq_log_error ("out_of_memory", "what=job_deadline job=%s", entry->job.id);
}

static void
s_clear_deadline (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    if (entry->deadline_index != ZJQ_HEAP_NONE)
        zjq_heap_remove (self->deadlines, entry->deadline_index);
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

//  How long a failed job is kept: the longer of its result TTL and the
//  dead-letter TTL
static int64_t
s_dead_ttl (zjq_jobtable_t *self, const zjq_job_t *job)
{
    return job->result_ttl_ms > self->dead_ttl_ms? job->result_ttl_ms: self->dead_ttl_ms;
}

static size_t
s_payload_size (const zjq_job_t *job)
{
    return job->payload? zframe_size (job->payload): 0;
}

//  Put a failed job on the dead-letter list (it gets an empty history if it
//  never had a failed attempt)
static void
s_dead_link (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    zjq_job_t *job = &entry->job;
    if (!job->history)
        job->history = zjq_history_new (job->max_attempts);
    if (!job->history) {
        zjq_log_error ("out_of_memory", "what=dead_letter job=%s msg=%s", job->id,
                       "it cannot be retried");
        zframe_destroy (&job->payload);
        return;
    }
    job->history->failed_ms = job->finished_ms;
    zjq_deadlist_insert (&self->dead, job->history, entry, s_payload_size (job));
}

//  Take a job off the dead-letter list if it is on it
static void
s_dead_unlink (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    zjq_job_t *job = &entry->job;
    if (zjq_deadlist_contains (&self->dead, job->history))
        zjq_deadlist_remove (&self->dead, job->history, s_payload_size (job));
}

void
zjq_jobtable_start (zjq_jobtable_t *self, zjq_jobentry_t *entry, int64_t now)
{
    assert (self);
    assert (entry);
    assert (entry->job.state == ZJQ_STATE_QUEUED);
    assert (entry->queue_index == ZJQ_HEAP_NONE);
    zjq_job_t *job = &entry->job;
    job->state = ZJQ_STATE_RUNNING;
    job->attempt++;
    job->started_ms = zjq_wall_ms ();
    job->progress = -1;
    s_set_string (&job->progress_message, NULL);
    s_set_deadline (self, entry, s_after (now, job->job_timeout_ms));
    self->stats.queued--;
    self->stats.running++;
    if (self->journal)
        zjq_journal_append_state (self->journal, job);
}

//  A running job goes back to queued (journaled once the caller's changes
//  to the record are made: see the two callers)
static void
s_back_to_queued (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    assert (entry->job.state == ZJQ_STATE_RUNNING);
    s_clear_deadline (self, entry);
    entry->job.state = ZJQ_STATE_QUEUED;
    entry->peer = NULL;
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
        s_set_string (&entry->job.error, error);
    if (self->journal)
        zjq_journal_append_state (self->journal, &entry->job);
}

void
zjq_jobtable_unstart (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    assert (self);
    assert (entry);
    assert (entry->job.attempt > 0);
    s_back_to_queued (self, entry);
    entry->job.attempt--;
    if (entry->job.attempt == 0)
        entry->job.started_ms = 0;
    if (self->journal)
        zjq_journal_append_state (self->journal, &entry->job);
}

void
zjq_jobtable_finish (zjq_jobtable_t *self, zjq_jobentry_t *entry, zjq_state_t state,
                     const char *error, zframe_t **result_p, int64_t now)
{
    assert (self);
    assert (entry);
    assert (state == ZJQ_STATE_SUCCEEDED || state == ZJQ_STATE_FAILED
         || state == ZJQ_STATE_CANCELLED);
    assert (entry->queue_index == ZJQ_HEAP_NONE);
    zjq_job_t *job = &entry->job;
    if (job->state == ZJQ_STATE_RUNNING)
        self->stats.running--;
    else {
        assert (job->state == ZJQ_STATE_QUEUED);
        self->stats.queued--;
    }
    self->stats.ended++;
    job->state = state;
    job->finished_ms = zjq_wall_ms ();
    //  A dead letter keeps its payload, for a retry, and stays longer
    bool dead = state == ZJQ_STATE_FAILED;
    int64_t ttl_ms = dead? s_dead_ttl (self, job): job->result_ttl_ms;
    job->expires_ms = job->finished_ms + ttl_ms;
    if (error)
        s_set_string (&job->error, error);
    self->stats.queued_bytes -= zframe_size (job->payload);
    if (!dead)
        zframe_destroy (&job->payload);
    if (result_p && *result_p) {
        zframe_destroy (&job->result);
        job->result = *result_p;
        *result_p = NULL;
    }
    entry->peer = NULL;
    s_set_deadline (self, entry, s_after (now, ttl_ms));
    if (dead)
        s_dead_link (self, entry);
    size_t result_size = job->result? zframe_size (job->result): 0;
    if (result_size > 0) {
        self->stats.result_bytes += result_size;
        if (zjq_heap_push (self->results, entry) != 0)
            zjq_log_error ("out_of_memory", "what=job_result job=%s", job->id);
    }
    if (self->journal)
        zjq_journal_append_state (self->journal, job);
}

void
zjq_jobtable_remove (zjq_jobtable_t *self, zjq_jobentry_t **entry_p)
{
    assert (self);
    assert (entry_p);
    zjq_jobentry_t *entry = *entry_p;
    if (!entry)
        return;
    assert (entry->queue_index == ZJQ_HEAP_NONE);
    zjq_job_t *job = &entry->job;
    s_clear_deadline (self, entry);
    if (entry->result_index != ZJQ_HEAP_NONE)
        zjq_heap_remove (self->results, entry->result_index);
    if (job->key) {
        char buf [512];
        char *text = s_key_text (buf, sizeof (buf), job->queue, job->key);
        //  The key entry must point at this job (never at a newer one)
        if (text && zhashx_lookup (self->by_key, text) == entry)
            zhashx_delete (self->by_key, text);
        if (text && text != buf)
            free (text);
    }
    if (self->journal)
        zjq_journal_append_remove (self->journal, job);
    s_dead_unlink (self, entry);
    s_unlink (self, entry);
    zhashx_delete (self->by_id, job->id);
    if (zjq_job_ended (job)) {
        self->stats.ended--;
        self->stats.result_bytes -= job->result? zframe_size (job->result): 0;
        self->stats.expired++;
    }
    else {
        if (job->state == ZJQ_STATE_RUNNING)
            self->stats.running--;
        else
            self->stats.queued--;
        self->stats.queued_bytes -= zframe_size (job->payload);
    }
    self->stats.jobs--;
    s_entry_free (entry_p);
}


//  --------------------------------------------------------------------------
//  The journal

void
zjq_jobtable_set_journal (zjq_jobtable_t *self, zjq_journal_t *journal)
{
    assert (self);
    self->journal = journal;
}

zjq_jobentry_t *
zjq_jobtable_restore (zjq_jobtable_t *self, zjq_job_t *job, zjq_queue_t *queue, int64_t now)
{
    assert (self);
    assert (job && job->queue);
    assert (job->state == ZJQ_STATE_QUEUED || zjq_job_ended (job));
    zjq_jobentry_t *entry = (zjq_jobentry_t *) calloc (1, sizeof (zjq_jobentry_t));
    if (entry) {
        entry->job = *job;
        entry->queue = queue;
        entry->queue_index = ZJQ_HEAP_NONE;
        entry->deadline_index = ZJQ_HEAP_NONE;
        entry->result_index = ZJQ_HEAP_NONE;
    }
    //  The fields are the entry's now (or freed below)
    job->key = job->error = job->progress_message = NULL;
    job->payload = job->result = NULL;
    job->history = NULL;
    if (!entry)
        return NULL;
    zjq_job_t *record = &entry->job;
    if (zhashx_insert (self->by_id, record->id, entry) != 0) {
        zjq_log_error ("journal_job_dropped", "job=%s reason=%s", record->id, "restored twice");
        s_entry_free (&entry);
        return NULL;
    }
    if (record->key) {
        char buf [512];
        char *text = s_key_text (buf, sizeof (buf), record->queue, record->key);
        int rc = text? zhashx_insert (self->by_key, text, entry): -1;
        if (text && text != buf)
            free (text);
        if (rc != 0) {
            zjq_log_error ("journal_job_dropped", "job=%s reason=%s", record->id,
                       "its idempotency key is taken");
            zhashx_delete (self->by_id, record->id);
            s_entry_free (&entry);
            return NULL;
        }
    }
    if (record->order >= self->next_order)
        self->next_order = record->order + 1;
    self->stats.jobs++;
    self->stats.inserted++;
    if (record->state == ZJQ_STATE_QUEUED) {
        self->stats.queued++;
        self->stats.queued_bytes += record->payload? zframe_size (record->payload): 0;
    }
    else {
        self->stats.ended++;
        if (record->state == ZJQ_STATE_FAILED)
            //  The dead-letter TTL in force now decides
            record->expires_ms = record->finished_ms + s_dead_ttl (self, record);
        else
            zframe_destroy (&record->payload);
        int64_t left = record->expires_ms - zjq_wall_ms ();
        s_set_deadline (self, entry, s_after (now, left > 0? left: 0));
        size_t result_size = record->result? zframe_size (record->result): 0;
        if (result_size > 0) {
            self->stats.result_bytes += result_size;
            if (zjq_heap_push (self->results, entry) != 0)
                zjq_log_error ("out_of_memory", "what=job_result job=%s", record->id);
        }
        if (record->state == ZJQ_STATE_FAILED)
            s_dead_link (self, entry);
    }
    s_link (self, entry);
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
    zjq_jobentry_t *entry = (zjq_jobentry_t *) zjq_heap_top (self->deadlines);
    return entry? entry->deadline: INT64_MAX;
}

zjq_jobentry_t *
zjq_jobtable_pop_due (zjq_jobtable_t *self, int64_t now)
{
    assert (self);
    zjq_jobentry_t *entry = (zjq_jobentry_t *) zjq_heap_top (self->deadlines);
    if (!entry || entry->deadline > now)
        return NULL;
    return (zjq_jobentry_t *) zjq_heap_pop (self->deadlines);
}

size_t
zjq_jobtable_trim_results (zjq_jobtable_t *self, uint64_t max_bytes)
{
    assert (self);
    size_t dropped = 0;
    while (self->stats.result_bytes > max_bytes) {
        zjq_jobentry_t *entry = (zjq_jobentry_t *) zjq_heap_top (self->results);
        if (!entry)
            break;              //  only if a push failed for lack of memory
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
    zjq_job_t *job = &entry->job;
    assert (!zjq_job_ended (job));
    if (!job->history)
        job->history = zjq_history_new (job->max_attempts);
    if (!job->history || zjq_history_add (job->history, attempt) != 0) {
        zjq_log_error ("out_of_memory", "what=attempt_history job=%s attempt=%d", job->id,
                       attempt->attempt);
        return -1;
    }
    if (self->journal)
        zjq_journal_append_attempt (self->journal, job);
    return 0;
}

int
zjq_jobtable_retry (zjq_jobtable_t *self, zjq_jobentry_t *entry, const char **message_p)
{
    assert (self);
    assert (entry && message_p);
    zjq_job_t *job = &entry->job;
    if (job->state != ZJQ_STATE_FAILED) {
        *message_p = "only a failed job can be retried";
        return ZJQ_ESTATE;
    }
    if (!job->payload || !zjq_deadlist_contains (&self->dead, job->history)) {
        *message_p = "its payload was not kept (it failed before this broker version)";
        return ZJQ_ESTATE;
    }
    zjq_history_t *history = job->history;
    if ((int64_t) job->attempt + history->budget > ZJQ_JOB_ATTEMPTS_MAX) {
        *message_p = "it has used the most attempts a job may make";
        return ZJQ_ESTATE;
    }
    s_dead_unlink (self, entry);
    s_clear_deadline (self, entry);
    history->retries++;
    job->max_attempts = job->attempt + history->budget;
    job->state = ZJQ_STATE_QUEUED;
    job->finished_ms = job->expires_ms = 0;
    self->stats.ended--;
    self->stats.queued++;
    self->stats.queued_bytes += zframe_size (job->payload);
    if (self->journal)
        zjq_journal_append_job (self->journal, job);
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
    assert (entry && zjq_deadlist_contains (&self->dead, entry->job.history));
    zjq_history_t *newer = entry->job.history->newer;
    return newer? (zjq_jobentry_t *) newer->owner: NULL;
}

bool
zjq_jobtable_is_dead (zjq_jobtable_t *self, zjq_jobentry_t *entry)
{
    assert (self);
    assert (entry);
    return zjq_deadlist_contains (&self->dead, entry->job.history);
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
//  Waiters

int
zjq_jobentry_add_waiter (zjq_jobentry_t *entry, const void *routing_id, size_t size)
{
    assert (entry);
    assert (routing_id);
    for (uint32_t index = 0; index < entry->waiter_count; index++)
        if (zframe_size (entry->waiters [index]) == size
        &&  memcmp (zframe_data (entry->waiters [index]), routing_id, size) == 0)
            return 1;
    if (entry->waiter_count == entry->waiter_max) {
        uint32_t max = entry->waiter_max? entry->waiter_max * 2: 2;
        zframe_t **waiters = (zframe_t **) realloc (entry->waiters, max * sizeof (zframe_t *));
        if (!waiters)
            return -1;
        entry->waiters = waiters;
        entry->waiter_max = max;
    }
    zframe_t *copy = zframe_new (routing_id, size);
    if (!copy)
        return -1;
    entry->waiters [entry->waiter_count++] = copy;
    return 0;
}

void
zjq_jobentry_clear_waiters (zjq_jobentry_t *entry)
{
    assert (entry);
    for (uint32_t index = 0; index < entry->waiter_count; index++)
        zframe_destroy (&entry->waiters [index]);
    entry->waiter_count = 0;
}


//  --------------------------------------------------------------------------
//  Self test

static zjq_jobentry_t *
s_test_insert (zjq_jobtable_t *self, const char *queue, const char *key,
               int64_t ttl_ms, size_t payload_size)
{
    zjq_job_t spec = { .queue = queue, .key = (char *) key, .priority = 0,
                       .max_attempts = 3, .job_timeout_ms = 1000, .result_ttl_ms = ttl_ms };
    char data [64] = { 0 };
    assert (payload_size <= sizeof (data));
    zframe_t *payload = zframe_new (data, payload_size);
    zjq_jobentry_t *entry = zjq_jobtable_insert (self, &spec, NULL, &payload);
    assert (entry);
    assert (payload == NULL);
    return entry;
}

void
zjq_jobtable_test (bool verbose)
{
    const uint64_t generation = 1795000000000ULL;
    zjq_jobtable_t *table = zjq_jobtable_new (generation);
    assert (table);
    assert (zjq_jobtable_generation (table) == generation);
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (table);
    assert (zjq_jobtable_next_deadline (table) == INT64_MAX);
    assert (zjq_jobtable_pop_due (table, INT64_MAX) == NULL);

    //  Insert: ids and order from 1, counts, lookups
    zjq_jobentry_t *first = s_test_insert (table, "q", NULL, 5000, 10);
    zjq_jobentry_t *second = s_test_insert (table, "q", "k1", 5000, 20);
    char id [ZJQ_JOBID_MAX];
    zjq_jobid_format (id, generation, 1);
    assert (streq (first->job.id, id));
    assert (first->job.sequence == 1 && second->job.sequence == 2);
    assert (first->job.order < second->job.order);
    assert (first->job.state == ZJQ_STATE_QUEUED && first->job.attempt == 0);
    assert (first->job.created_ms > 0 && first->job.progress < 0);
    assert (first->queue_index == ZJQ_HEAP_NONE && first->deadline_index == ZJQ_HEAP_NONE);
    assert (stats->jobs == 2 && stats->queued == 2 && stats->queued_bytes == 30);
    assert (zjq_jobtable_lookup (table, id) == first);
    assert (zjq_jobtable_lookup (table, "nope-1") == NULL);

    //  Idempotency keys are scoped per queue
    assert (zjq_jobtable_lookup_key (table, "q", "k1") == second);
    assert (zjq_jobtable_lookup_key (table, "other", "k1") == NULL);
    assert (zjq_jobtable_lookup_key (table, "q", "k2") == NULL);
    zjq_jobentry_t *keyed = s_test_insert (table, "other", "k1", 5000, 0);
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
    assert (first->job.state == ZJQ_STATE_RUNNING && first->job.attempt == 1);
    assert (first->job.started_ms > 0);
    assert (stats->queued == 2 && stats->running == 1);
    assert (zjq_jobtable_next_deadline (table) == 1100);
    assert (zjq_jobtable_pop_due (table, 1099) == NULL);

    //  Requeue: back to queued with the reason, out of the deadline heap
    zjq_jobtable_requeue (table, first, "boom (attempt 1 of 3)");
    assert (first->job.state == ZJQ_STATE_QUEUED && first->job.attempt == 1);
    assert (streq (first->job.error, "boom (attempt 1 of 3)"));
    assert (first->deadline_index == ZJQ_HEAP_NONE);
    assert (zjq_jobtable_next_deadline (table) == INT64_MAX);
    assert (stats->queued == 3 && stats->running == 0);

    //  Timeout: start again, the deadline comes due and is popped
    zjq_jobtable_start (table, first, 200);
    assert (first->job.attempt == 2);
    assert (zjq_jobtable_pop_due (table, 1200) == first);
    assert (first->deadline_index == ZJQ_HEAP_NONE);
    assert (zjq_jobtable_pop_due (table, 1200) == NULL);

    //  Finish with a result: payload freed, result counted, expiry set
    zframe_t *result = zframe_new ("0123456789", 10);
    zjq_jobtable_finish (table, first, ZJQ_STATE_SUCCEEDED, NULL, &result, 300);
    assert (result == NULL);
    assert (first->job.state == ZJQ_STATE_SUCCEEDED && zjq_job_ended (&first->job));
    assert (first->job.payload == NULL && first->job.finished_ms > 0);
    assert (first->job.expires_ms == first->job.finished_ms + 5000);
    assert (stats->running == 0 && stats->ended == 1);
    assert (stats->queued_bytes == 20 && stats->result_bytes == 10);
    assert (zjq_jobtable_next_deadline (table) == 5300);

    //  A queued job can end directly (cancel)
    zjq_jobtable_finish (table, keyed, ZJQ_STATE_CANCELLED, "cancelled by client", NULL, 400);
    assert (streq (keyed->job.error, "cancelled by client"));
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
    zjq_jobentry_t *a = s_test_insert (table, "q", NULL, 3000, 1);
    zjq_jobentry_t *b = s_test_insert (table, "q", NULL, 1000, 1);
    zjq_jobentry_t *c = s_test_insert (table, "q", NULL, 2000, 1);
    zjq_jobentry_t *entries [] = { a, b, c };
    for (size_t index = 0; index < 3; index++) {
        zjq_jobtable_start (table, entries [index], 0);
        zframe_t *bytes = zframe_new ("abcdefghij", 10);
        zjq_jobtable_finish (table, entries [index], ZJQ_STATE_SUCCEEDED, NULL, &bytes, 0);
    }
    char id_a [ZJQ_JOBID_MAX], id_b [ZJQ_JOBID_MAX], id_c [ZJQ_JOBID_MAX];
    strcpy (id_a, a->job.id);
    strcpy (id_b, b->job.id);
    strcpy (id_c, c->job.id);
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
    assert (zjq_jobentry_add_waiter (second, "c1", 2) == 0);
    assert (zjq_jobentry_add_waiter (second, "c1", 2) == 1);
    assert (zjq_jobentry_add_waiter (second, "c2", 2) == 0);
    assert (second->waiter_count == 2);
    zjq_jobentry_clear_waiters (second);
    assert (second->waiter_count == 0);
    assert (zjq_jobentry_add_waiter (second, "c2", 2) == 0);

    //  Many jobs: ids stay unique and the heap keeps deadline order
    for (int index = 0; index < 10000; index++) {
        zjq_jobentry_t *entry = s_test_insert (table, "bulk", NULL, 1000, 0);
        zjq_jobtable_start (table, entry, (index * 7919) % 10007);
    }
    assert (stats->running == 10000);
    int64_t previous = INT64_MIN;
    size_t popped = 0;
    zjq_jobentry_t *entry;
    while ((entry = zjq_jobtable_pop_due (table, 2000000))) {
        assert (entry->deadline >= previous);
        previous = entry->deadline;
        if (entry->job.state == ZJQ_STATE_RUNNING)
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

    //  A scan sees the jobs there when it starts, oldest first, and skips
    //  the ones removed meanwhile; later ones are not its business
    zjq_jobentry_t *scan1 = s_test_insert (table, "scan", NULL, 1000, 0);
    zjq_jobentry_t *scan2 = s_test_insert (table, "scan", NULL, 1000, 0);
    zjq_jobtable_scan_start (table);
    assert (zjq_jobtable_scan_next (table) == second);
    s_test_insert (table, "scan", NULL, 1000, 0);
    zjq_jobtable_remove (table, &scan2);
    assert (zjq_jobtable_scan_next (table) == scan1);
    assert (zjq_jobtable_scan_next (table) == NULL);
    assert (zjq_jobtable_scan_next (table) == NULL);

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
    zjq_jobentry_t *dead = s_test_insert (table, "dl", NULL, 1000, 5);
    zjq_jobtable_start (table, dead, 0);
    zjq_attempt_t attempt = { .attempt = 1, .exit_code = 3, .error = "exit status 3",
                              .duration_ms = 7 };
    assert (zjq_jobtable_add_attempt (table, dead, &attempt) == 0);
    zjq_jobtable_finish (table, dead, ZJQ_STATE_FAILED, "exit status 3 (attempt 1 of 3)",
                         NULL, 0);
    assert (dead->job.payload && zframe_size (dead->job.payload) == 5);
    assert (zjq_jobtable_is_dead (table, dead) && zjq_jobtable_dead_first (table) == dead);
    assert (zjq_jobtable_dead_next (table, dead) == NULL);
    assert (dead->job.expires_ms == dead->job.finished_ms + 100000);
    const zjq_deadlist_t *letters = zjq_jobtable_dead_letters (table);
    assert (letters->count == 1 && letters->bytes == dead->job.history->bytes + 5);
    const char *why = NULL;
    assert (zjq_jobtable_retry (table, second, &why) == ZJQ_ESTATE && why);
    uint64_t queued_before = stats->queued;
    assert (zjq_jobtable_retry (table, dead, &why) == 0);
    assert (dead->job.state == ZJQ_STATE_QUEUED && dead->job.max_attempts == 4);
    assert (dead->job.finished_ms == 0 && dead->deadline_index == ZJQ_HEAP_NONE);
    assert (letters->count == 0 && letters->bytes == 0 && stats->queued == queued_before + 1);
    assert (dead->job.history->retries == 1 && dead->job.history->count == 1);
    //  Failed again, and a newer one: trimming drops the oldest failure
    zjq_jobtable_start (table, dead, 0);
    assert (dead->job.attempt == 2);
    zjq_jobtable_finish (table, dead, ZJQ_STATE_FAILED, "again", NULL, 0);
    zjq_jobentry_t *dead2 = s_test_insert (table, "dl", NULL, 1000, 1);
    zjq_jobtable_finish (table, dead2, ZJQ_STATE_FAILED, "failed while queued", NULL, 0);
    assert (dead2->job.history && dead2->job.history->count == 0);
    assert (letters->count == 2 && zjq_jobtable_dead_next (table, dead) == dead2);
    assert (zjq_jobtable_trim_dead (table, 1, UINT64_MAX) == 1);
    assert (zjq_jobtable_dead_first (table) == dead2 && letters->count == 1);
    assert (zjq_jobtable_trim_dead (table, 1, 0) == 1 && letters->count == 0);

    //  Destroy frees whatever is left (second with its waiter)
    zjq_jobtable_destroy (&table);
    zjq_jobtable_destroy (&table);
    assert (table == NULL);
    if (verbose)
        printf ("(jobtable ok) ");
}
