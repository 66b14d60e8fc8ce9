/*  zjq_stats.c: per-queue statistics. See zjq_stats.h.                    */

#include "zjq_stats.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

//  1 ms .. 30 min: job queues see both sub-millisecond echoes and hour-long
//  batch jobs; Prometheus gets the same bounds in seconds.
static const int64_t s_bounds_ms [ZJQ_STATS_BUCKETS - 1] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    120000, 300000, 600000, 1800000
};

const int64_t *
zjq_stats_bounds_ms (void)
{
    return s_bounds_ms;
}

//  The bucket of a duration: at most ZJQ_STATS_BUCKETS steps
static size_t
s_bucket (int64_t ms)
{
    size_t index = 0;
    while (index < ZJQ_STATS_BUCKETS - 1 && ms > s_bounds_ms [index])
        index++;
    return index;
}


//  --------------------------------------------------------------------------
//  Rate ring

//  Move the ring forward to now's second, clearing the seconds skipped
static void
s_ring_advance (zjq_stats_ring_t *self, int64_t now)
{
    int64_t second = now / 1000;
    if (second <= self->second)
        return;                 //  same second (or a clock that did not move)
    int64_t steps = second - self->second;
    if (steps >= ZJQ_STATS_RING_SLOTS)
        memset (self->count, 0, sizeof (self->count));
    else
        for (int64_t step = 1; step <= steps; step++)
            self->count [(self->second + step) % ZJQ_STATS_RING_SLOTS] = 0;
    self->second = second;
}

void
zjq_stats_ring_add (zjq_stats_ring_t *self, int64_t now, uint32_t n)
{
    assert (self);
    s_ring_advance (self, now);
    self->count [self->second % ZJQ_STATS_RING_SLOTS] += n;
}

uint64_t
zjq_stats_ring_sum (zjq_stats_ring_t *self, int64_t now)
{
    assert (self);
    s_ring_advance (self, now);
    uint64_t sum = 0;
    for (size_t index = 0; index < ZJQ_STATS_RING_SLOTS; index++)
        sum += self->count [index];
    return sum;
}


//  --------------------------------------------------------------------------
//  Histograms

void
zjq_stats_histogram_add (zjq_stats_histogram_t *self, int64_t ms)
{
    assert (self);
    if (ms < 0)
        ms = 0;
    self->buckets [s_bucket (ms)]++;
    self->count++;
    self->sum_ms += (uint64_t) ms;
}

static void
s_recent_advance (zjq_stats_recent_t *self, int64_t now)
{
    int64_t slot = now / ZJQ_STATS_RECENT_MS;
    if (slot <= self->slot)
        return;
    int64_t steps = slot - self->slot;
    for (int64_t step = 1; step <= steps && step <= ZJQ_STATS_RECENT_SLOTS; step++) {
        size_t index = (size_t) ((self->slot + step) % ZJQ_STATS_RECENT_SLOTS);
        memset (self->buckets [index], 0, sizeof (self->buckets [index]));
        self->count [index] = 0;
        self->sum_ms [index] = 0;
    }
    self->slot = slot;
}

void
zjq_stats_recent_add (zjq_stats_recent_t *self, int64_t now, int64_t ms)
{
    assert (self);
    if (ms < 0)
        ms = 0;
    s_recent_advance (self, now);
    size_t index = (size_t) (self->slot % ZJQ_STATS_RECENT_SLOTS);
    self->buckets [index][s_bucket (ms)]++;
    self->count [index]++;
    self->sum_ms [index] += (uint64_t) ms;
}

void
zjq_stats_recent_summary (zjq_stats_recent_t *self, int64_t now,
                          uint64_t *count_p, double *mean_p, double *p99_p)
{
    assert (self);
    s_recent_advance (self, now);
    uint64_t buckets [ZJQ_STATS_BUCKETS] = { 0 };
    uint64_t count = 0, sum = 0;
    for (size_t slot = 0; slot < ZJQ_STATS_RECENT_SLOTS; slot++) {
        for (size_t index = 0; index < ZJQ_STATS_BUCKETS; index++)
            buckets [index] += self->buckets [slot][index];
        count += self->count [slot];
        sum += self->sum_ms [slot];
    }
    double mean = 0, p99 = 0;
    if (count) {
        mean = (double) sum / (double) count;
        //  The rank of the 99th percentile, and the bucket that holds it
        double rank = 0.99 * (double) count;
        uint64_t below = 0;
        size_t index = 0;
        while (index < ZJQ_STATS_BUCKETS - 1 && (double) (below + buckets [index]) < rank)
            below += buckets [index++];
        if (index == ZJQ_STATS_BUCKETS - 1)
            p99 = (double) s_bounds_ms [ZJQ_STATS_BUCKETS - 2];
        else {
            double lower = index? (double) s_bounds_ms [index - 1]: 0;
            double upper = (double) s_bounds_ms [index];
            p99 = lower + (upper - lower) * (rank - (double) below) / (double) buckets [index];
        }
    }
    if (count_p)
        *count_p = count;
    if (mean_p)
        *mean_p = mean;
    if (p99_p)
        *p99_p = p99;
}


//  --------------------------------------------------------------------------
//  Hooks

void
zjq_stats_submitted (zjq_stats_queue_t *self, int64_t now)
{
    assert (self);
    self->submitted++;
    zjq_stats_ring_add (&self->submits, now, 1);
}

void
zjq_stats_started (zjq_stats_queue_t *self, int64_t wait_ms)
{
    assert (self);
    if (wait_ms >= 0)
        zjq_stats_histogram_add (&self->wait, wait_ms);
}

void
zjq_stats_ended (zjq_stats_queue_t *self, int64_t now, int64_t run_ms, bool requeued)
{
    assert (self);
    if (run_ms >= 0) {
        zjq_stats_histogram_add (&self->run, run_ms);
        zjq_stats_recent_add (&self->run_recent, now, run_ms);
    }
    if (requeued)
        self->requeued++;
    else
        zjq_stats_ring_add (&self->ends, now, 1);
}


uint64_t
zjq_stats_rss_bytes (void)
{
    FILE *file = fopen ("/proc/self/statm", "r");
    if (!file)
        return 0;
    unsigned long long size = 0, resident = 0;
    int fields = fscanf (file, "%llu %llu", &size, &resident);
    fclose (file);
    long page = sysconf (_SC_PAGESIZE);
    return fields == 2 && page > 0? (uint64_t) resident * (uint64_t) page: 0;
}


//  --------------------------------------------------------------------------
//  Counting msgpack maps

void
zjq_stats_pack_str (msgpack_packer *packer, const char *text)
{
    size_t len = strlen (text);
    msgpack_pack_str (packer, len);
    msgpack_pack_str_body (packer, text, len);
}

void
zjq_stats_map_init (zjq_stats_map_t *self)
{
    assert (self);
    msgpack_sbuffer_init (&self->buffer);
    msgpack_packer_init (&self->packer, &self->buffer, msgpack_sbuffer_write);
    self->count = 0;
}

msgpack_packer *
zjq_stats_map_key (zjq_stats_map_t *self, const char *key)
{
    assert (self);
    zjq_stats_pack_str (&self->packer, key);
    self->count++;
    return &self->packer;
}

void
zjq_stats_map_uint (zjq_stats_map_t *self, const char *key, uint64_t value)
{
    msgpack_pack_uint64 (zjq_stats_map_key (self, key), value);
}

void
zjq_stats_map_int (zjq_stats_map_t *self, const char *key, int64_t value)
{
    msgpack_pack_int64 (zjq_stats_map_key (self, key), value);
}

void
zjq_stats_map_double (zjq_stats_map_t *self, const char *key, double value)
{
    msgpack_pack_double (zjq_stats_map_key (self, key), value);
}

void
zjq_stats_map_bool (zjq_stats_map_t *self, const char *key, bool value)
{
    msgpack_packer *packer = zjq_stats_map_key (self, key);
    if (value)
        msgpack_pack_true (packer);
    else
        msgpack_pack_false (packer);
}

void
zjq_stats_map_str (zjq_stats_map_t *self, const char *key, const char *value)
{
    zjq_stats_pack_str (zjq_stats_map_key (self, key), value);
}

void
zjq_stats_map_end (zjq_stats_map_t *self, msgpack_packer *into)
{
    assert (self);
    assert (into);
    msgpack_pack_map (into, self->count);
    if (self->buffer.size)
        into->callback (into->data, self->buffer.data, self->buffer.size);
    msgpack_sbuffer_destroy (&self->buffer);
}

static void
s_histogram_pack (zjq_stats_histogram_t *histogram, zjq_stats_map_t *map, const char *key)
{
    zjq_stats_map_t child;
    zjq_stats_map_init (&child);
    msgpack_packer *packer = zjq_stats_map_key (&child, "buckets");
    msgpack_pack_array (packer, ZJQ_STATS_BUCKETS);
    for (size_t index = 0; index < ZJQ_STATS_BUCKETS; index++)
        msgpack_pack_uint64 (packer, histogram->buckets [index]);
    zjq_stats_map_uint (&child, "count", histogram->count);
    zjq_stats_map_uint (&child, "sum", histogram->sum_ms);
    zjq_stats_map_end (&child, zjq_stats_map_key (map, key));
}

void
zjq_stats_queue_pack (zjq_stats_queue_t *self, zjq_stats_map_t *map, int64_t now,
                      bool histograms)
{
    assert (self);
    assert (map);
    uint64_t submits = zjq_stats_ring_sum (&self->submits, now);
    uint64_t ends = zjq_stats_ring_sum (&self->ends, now);
    uint64_t runs;
    double mean, p99;
    zjq_stats_recent_summary (&self->run_recent, now, &runs, &mean, &p99);
    zjq_stats_map_uint (map, "submitted", self->submitted);
    zjq_stats_map_uint (map, "requeued", self->requeued);
    zjq_stats_map_uint (map, "submitted_1m", submits);
    zjq_stats_map_uint (map, "completed_1m", ends);
    zjq_stats_map_double (map, "submitted_per_s", (double) submits / ZJQ_STATS_RING_SLOTS);
    zjq_stats_map_double (map, "completed_per_s", (double) ends / ZJQ_STATS_RING_SLOTS);
    zjq_stats_map_uint (map, "run_count_1m", runs);
    zjq_stats_map_double (map, "run_ms_mean", mean);
    zjq_stats_map_double (map, "run_ms_p99", p99);
    if (histograms) {
        s_histogram_pack (&self->wait, map, "wait_ms");
        s_histogram_pack (&self->run, map, "run_ms");
    }
}


//  --------------------------------------------------------------------------
//  Self test

void
zjq_stats_test (bool verbose)
{
    //  Rings: a minute of one-second slots
    zjq_stats_ring_t ring;
    memset (&ring, 0, sizeof (ring));
    int64_t now = 1000000;
    zjq_stats_ring_add (&ring, now, 3);
    zjq_stats_ring_add (&ring, now + 999, 2);
    assert (zjq_stats_ring_sum (&ring, now + 999) == 5);
    zjq_stats_ring_add (&ring, now + 30000, 7);
    assert (zjq_stats_ring_sum (&ring, now + 30000) == 12);
    assert (zjq_stats_ring_sum (&ring, now + 59999) == 12);
    assert (zjq_stats_ring_sum (&ring, now + 60000) == 7);      //  the first second left
    assert (zjq_stats_ring_sum (&ring, now + 89999) == 7);
    assert (zjq_stats_ring_sum (&ring, now + 90000) == 0);
    zjq_stats_ring_add (&ring, now + 500000, 1);                //  a long pause
    assert (zjq_stats_ring_sum (&ring, now + 500000) == 1);
    zjq_stats_ring_add (&ring, now + 400000, 1);                //  clock went back: same slot
    assert (zjq_stats_ring_sum (&ring, now + 500000) == 2);

    //  Buckets: a duration goes to the first bound >= it
    assert (s_bucket (0) == 0 && s_bucket (1) == 0 && s_bucket (2) == 1);
    assert (s_bucket (1000) == 9 && s_bucket (1001) == 10);
    assert (s_bucket (1800000) == ZJQ_STATS_BUCKETS - 2);
    assert (s_bucket (INT64_MAX) == ZJQ_STATS_BUCKETS - 1);
    zjq_stats_histogram_t histogram;
    memset (&histogram, 0, sizeof (histogram));
    zjq_stats_histogram_add (&histogram, 7);
    zjq_stats_histogram_add (&histogram, -3);
    assert (histogram.count == 2 && histogram.sum_ms == 7);
    assert (histogram.buckets [0] == 1 && histogram.buckets [3] == 1);

    //  Recent: mean exact, p99 within its bucket, old slots forgotten
    zjq_stats_recent_t recent;
    memset (&recent, 0, sizeof (recent));
    uint64_t count;
    double mean, p99;
    zjq_stats_recent_summary (&recent, now, &count, &mean, &p99);
    assert (count == 0 && mean == 0 && p99 == 0);
    for (int index = 0; index < 99; index++)
        zjq_stats_recent_add (&recent, now, 20);
    zjq_stats_recent_add (&recent, now + 5000, 4000);
    zjq_stats_recent_summary (&recent, now + 5000, &count, &mean, &p99);
    assert (count == 100);
    assert (fabs (mean - (99 * 20 + 4000) / 100.0) < 1e-9);
    assert (p99 > 10 && p99 <= 25);                 //  rank 99 is in (10, 25]
    for (int index = 0; index < 10; index++)
        zjq_stats_recent_add (&recent, now + 20000, 4000);
    zjq_stats_recent_summary (&recent, now + 20000, &count, &mean, &p99);
    assert (count == 110 && p99 > 2500 && p99 <= 5000);
    zjq_stats_recent_summary (&recent, now + 70000, &count, &mean, &p99);
    assert (count == 10);                           //  the first slot left
    zjq_stats_recent_summary (&recent, now + 1000000, &count, &mean, &p99);
    assert (count == 0 && p99 == 0);
    zjq_stats_recent_add (&recent, now + 1000000, 99999999);
    zjq_stats_recent_summary (&recent, now + 1000000, &count, &mean, &p99);
    assert (count == 1 && p99 == 1800000);          //  in +Inf: the largest bound

    //  Hooks
    zjq_stats_queue_t queue;
    memset (&queue, 0, sizeof (queue));
    zjq_stats_submitted (&queue, now);
    zjq_stats_submitted (&queue, now);
    zjq_stats_started (&queue, 12);
    zjq_stats_started (&queue, -1);                 //  a retry: no wait recorded
    zjq_stats_ended (&queue, now, 30, true);
    zjq_stats_ended (&queue, now, 40, false);
    zjq_stats_ended (&queue, now, -1, false);       //  cancelled while queued
    assert (queue.submitted == 2 && queue.requeued == 1);
    assert (zjq_stats_ring_sum (&queue.submits, now) == 2);
    assert (zjq_stats_ring_sum (&queue.ends, now) == 2);
    assert (queue.wait.count == 1 && queue.wait.sum_ms == 12);
    assert (queue.run.count == 2 && queue.run.sum_ms == 70);

    //  Packing: the map counts its entries
    zjq_stats_map_t map;
    zjq_stats_map_init (&map);
    zjq_stats_queue_pack (&queue, &map, now, true);
    zjq_stats_map_bool (&map, "paused", false);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    zjq_stats_map_end (&map, &packer);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    assert (msgpack_unpack_next (&unpacked, buffer.data, buffer.size, &offset)
            == MSGPACK_UNPACK_SUCCESS && offset == buffer.size);
    msgpack_object *object = &unpacked.data;
    assert (object->type == MSGPACK_OBJECT_MAP && object->via.map.size == 12);
    msgpack_object *wait = &object->via.map.ptr [9].val;
    assert (wait->type == MSGPACK_OBJECT_MAP && wait->via.map.size == 3);
    assert (wait->via.map.ptr [0].val.via.array.size == ZJQ_STATS_BUCKETS);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
    assert (zjq_stats_rss_bytes () > 0);
    if (verbose)
        printf ("(stats ok) ");
}
