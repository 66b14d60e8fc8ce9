/*  zjq_jobtable_test.c: the job table's self-test (zjq_jobtable_test), kept
    beside the table's files because it looks inside the table (its index).  */

#include "zjq_jobtable_private.h"
#include "zjq_queue.h"
#include "zjq_log.h"
#include "zjq_util.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <stddef.h>
#include <string.h>
#include <malloc.h>

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
    assert (zjq_hashtab_size (&table->by_id) == COUNT);
    assert (((size_t) 1 << table->by_id.bits) >= COUNT * 8 / 7);     //  at most 7/8 full
    //  Restored jobs of an earlier generation share the index
    zjq_job_t record = { .sequence = COUNT, .order = 0, .max_attempts = 1,
                         .state = ZJQ_STATE_QUEUED, .job_timeout_ms = 5, .result_ttl_ms = 5 };
    zjq_jobid_format (record.id, 1794000000000ULL, COUNT);
    zjq_jobentry_t *old = zjq_jobtable_restore (table, &record, queue, 0);
    assert (old && old->generation == 1794000000000ULL);
    assert (zjq_jobtable_lookup (table, record.id) == old);
    //  Entries hold generations, sequences and orders of 48 bits: a record
    //  past that is dropped (logged), a table of such a generation refused
    zjq_job_t wide = { .sequence = 1, .order = ZJQ_JOBENTRY_48_MAX + 1, .max_attempts = 1,
                       .state = ZJQ_STATE_QUEUED, .job_timeout_ms = 5, .result_ttl_ms = 5 };
    zjq_jobid_format (wide.id, 1794000000000ULL, 1);
    assert (zjq_jobtable_restore (table, &wide, queue, 0) == NULL);
    wide.order = 1;
    zjq_jobid_format (wide.id, ZJQ_JOBENTRY_48_MAX + 1, 1);
    assert (zjq_jobtable_restore (table, &wide, queue, 0) == NULL);
    assert (zjq_jobtable_new (ZJQ_JOBENTRY_48_MAX + 1) == NULL);
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
    assert (zjq_hashtab_size (&table->by_id) == 0 && table->by_id.bits == ZJQ_INDEX_MIN_BITS);
    assert (zjq_jobtable_stats (table)->jobs == 0);
    assert (zjq_jobtable_stats (table)->queued_bytes == 0);
    free (entries);
    zjq_jobtable_destroy (&table);
}

//  What each submitter has queued or running (its share): a key through
//  start, requeue, finish, retry and removal; a plaintext connection
static void
s_test_shares (zjq_jobtable_t *table, zjq_queue_t *queue, const zjq_job_t *owned_spec)
{
    const char *key = owned_spec->owner;
    uint64_t jobs, bytes;
    zjq_jobentry_t *one = zjq_jobtable_insert_copy (table, owned_spec, queue, "abc", 3);
    zjq_jobentry_t *two = zjq_jobtable_insert_copy (table, owned_spec, queue, "de", 2);
    zjq_jobtable_usage (table, key, false, &jobs, &bytes);
    assert (jobs == 2 && bytes == 5);
    zjq_jobtable_start (table, one, 0);
    zjq_jobtable_requeue (table, one, "again");
    zjq_jobtable_usage (table, key, false, &jobs, &bytes);
    assert (jobs == 2 && bytes == 5);
    zjq_jobtable_finish (table, one, ZJQ_STATE_FAILED, "no", NULL, 0);
    zjq_jobtable_usage (table, key, false, &jobs, &bytes);
    assert (jobs == 1 && bytes == 2);
    const char *why = NULL;
    assert (zjq_jobtable_retry (table, one, &why) == 0);
    zjq_jobtable_usage (table, key, false, &jobs, &bytes);
    assert (jobs == 2 && bytes == 5);
    zjq_jobtable_finish (table, one, ZJQ_STATE_CANCELLED, "cancelled", NULL, 0);
    zjq_jobtable_remove (table, &two);
    zjq_jobtable_usage (table, key, false, &jobs, &bytes);
    assert (jobs == 0 && bytes == 0);
    zjq_jobtable_remove (table, &one);
    //  A connection counts only what it was given; its owner stays ""
    zjq_job_t plain = *owned_spec;
    plain.owner [0] = 0;
    zjq_jobentry_t *mine = zjq_jobtable_insert_copy (table, &plain, queue, "xyz", 3);
    zjq_jobentry_t *theirs = zjq_jobtable_insert_copy (table, &plain, queue, "q", 1);
    assert (zjq_jobtable_set_connection (table, mine, "00deadbeef") == 0);
    assert (streq (zjq_jobentry_owner (mine), ""));
    zjq_job_t record;
    zjq_jobentry_record (mine, &record);
    assert (streq (record.owner, ""));
    zjq_jobtable_usage (table, "00deadbeef", true, &jobs, &bytes);
    assert (jobs == 1 && bytes == 3);
    zjq_jobtable_usage (table, "00deadbeef", false, &jobs, &bytes);
    assert (jobs == 0 && bytes == 0);
    assert (zjq_jobtable_stats (table)->queued_bytes >= 4);
    zjq_jobtable_finish (table, mine, ZJQ_STATE_SUCCEEDED, NULL, NULL, 0);
    zjq_jobtable_usage (table, "00deadbeef", true, &jobs, &bytes);
    assert (jobs == 0 && bytes == 0);
    zjq_jobtable_remove (table, &mine);
    zjq_jobtable_remove (table, &theirs);
    assert (zhashx_size (table->owners) == 0);
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

    //  Durations that are not a whole count below 16384 of ms, s, min or h
    //  are kept exactly in the side block (zjq_jobentry.c)
    zjq_job_t long_spec = spec;
    long_spec.job_timeout_ms = 10LL * 366 * 24 * 3600 * 1000;
    long_spec.result_ttl_ms = (int64_t) UINT32_MAX;
    zjq_jobentry_t *slow = zjq_jobtable_insert_copy (table, &long_spec, queue, "x", 1);
    assert (slow && slow->side);
    assert (zjq_jobentry_job_timeout_ms (slow) == long_spec.job_timeout_ms);
    assert (zjq_jobentry_result_ttl_ms (slow) == (int64_t) UINT32_MAX);
    long_spec.result_ttl_ms = 16382LL * 3600 * 1000;    //  16383 h is the side mark
    long_spec.job_timeout_ms = 1;
    zjq_jobentry_t *fits = zjq_jobtable_insert_copy (table, &long_spec, queue, "x", 1);
    assert (fits && !fits->side);
    assert (zjq_jobentry_result_ttl_ms (fits) == 16382LL * 3600 * 1000);
    assert (zjq_jobentry_job_timeout_ms (fits) == 1);

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
    s_test_shares (table, queue, &owned_spec);

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
    zjq_jobtable_sort_by_order (items, 1000);
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
