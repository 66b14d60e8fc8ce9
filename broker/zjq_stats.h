/*  zjq_stats.h: the broker's operational statistics per queue.

    What `zjq stats`, `zjq top` and /metrics show beyond the job table's
    counts: cumulative counters since the broker started, event rates over
    the last minute (a 60-slot ring of one-second slots), and durations:
    queue wait (submit -> first start) and run time (start -> end of each
    attempt) in histograms with fixed bounds, both cumulative (for
    Prometheus) and over the last minute (six 10-second slots, for the mean
    and the p99 that `zjq stats` shows).

    Everything is fixed-size: recording an event is O(1) and never
    allocates, so the broker can call these on every job. Times are
    milliseconds; `now` is the broker's monotonic clock. Nothing here is
    journaled: after a restart the counters start again from zero.        */

#ifndef ZJQ_STATS_H_INCLUDED
#define ZJQ_STATS_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZJQ_STATS_RING_SLOTS   60       //  one-second slots of a rate ring
#define ZJQ_STATS_RECENT_SLOTS 6        //  ten-second slots of a recent histogram
#define ZJQ_STATS_RECENT_MS    10000    //  length of one of those slots
#define ZJQ_STATS_BUCKETS      20       //  histogram buckets, the last is +Inf

//  Events per second over the last minute.
typedef struct {
    uint32_t count [ZJQ_STATS_RING_SLOTS];  //  events in each second
    int64_t second;                         //  the second (now / 1000) of the newest slot
} zjq_stats_ring_t;

//  A histogram of durations with the bounds of zjq_stats_bounds_ms ().
typedef struct {
    uint64_t buckets [ZJQ_STATS_BUCKETS];   //  observations per bucket (not cumulative)
    uint64_t count;                         //  observations
    uint64_t sum_ms;                        //  their sum
} zjq_stats_histogram_t;

//  The same over the last minute, in 10-second slots.
typedef struct {
    uint32_t buckets [ZJQ_STATS_RECENT_SLOTS][ZJQ_STATS_BUCKETS];
    uint32_t count [ZJQ_STATS_RECENT_SLOTS];
    uint64_t sum_ms [ZJQ_STATS_RECENT_SLOTS];
    int64_t slot;                           //  now / ZJQ_STATS_RECENT_MS of the newest slot
} zjq_stats_recent_t;

//  Everything a queue counts. Counters are since the broker started.
typedef struct {
    uint64_t submitted;         //  jobs accepted into the queue
    uint64_t requeued;          //  failed attempts that put their job back
    zjq_stats_ring_t submits;   //  submits over the last minute
    zjq_stats_ring_t ends;      //  jobs that ended (any final state), last minute
    zjq_stats_histogram_t wait;     //  submit -> first start
    zjq_stats_histogram_t run;      //  start -> end of an attempt
    zjq_stats_recent_t run_recent;  //  the same, last minute only
} zjq_stats_queue_t;

//  The upper bounds of the histogram buckets, ZJQ_STATS_BUCKETS - 1 of
//  them (the last bucket is +Inf), in ms, ascending.
const int64_t *
    zjq_stats_bounds_ms (void);

//  Count n events at now.
void
    zjq_stats_ring_add (zjq_stats_ring_t *self, int64_t now, uint32_t n);

//  Events over the last 60 seconds (the current second included).
uint64_t
    zjq_stats_ring_sum (zjq_stats_ring_t *self, int64_t now);

//  Record one duration (negative counts as 0).
void
    zjq_stats_histogram_add (zjq_stats_histogram_t *self, int64_t ms);

//  Record one duration at now in the last-minute histogram.
void
    zjq_stats_recent_add (zjq_stats_recent_t *self, int64_t now, int64_t ms);

//  Summary of the last minute: observations, mean and the 99th percentile
//  estimated from the buckets (linear within the bucket that holds it, the
//  largest finite bound if it is in +Inf). mean and p99 are 0 without
//  observations.
void
    zjq_stats_recent_summary (zjq_stats_recent_t *self, int64_t now,
                              uint64_t *count, double *mean_ms, double *p99_ms);

//  Hooks for the broker, one per job event; O(1), no allocation.
//  A job was accepted into the queue.
void
    zjq_stats_submitted (zjq_stats_queue_t *self, int64_t now);
//  An attempt started; wait_ms >= 0 for a first attempt (submit -> start),
//  or -1 for a retry (not a queue wait).
void
    zjq_stats_started (zjq_stats_queue_t *self, int64_t wait_ms);
//  A job ended (requeued false), or one of its attempts failed and put it
//  back in the queue (requeued true). run_ms is how long the attempt ran,
//  or < 0 if none was running (a queued job cancelled or failed).
void
    zjq_stats_ended (zjq_stats_queue_t *self, int64_t now, int64_t run_ms, bool requeued);

//  The resident set size of this process in bytes (/proc/self/statm), or
//  0 if it cannot be read.
uint64_t
    zjq_stats_rss_bytes (void);


//  --------------------------------------------------------------------------
//  A msgpack map that counts its own entries, so that adding a field to
//  STATS_REPLY is one line: init, add fields, end into the enclosing
//  packer (which writes the map header, the fields, and frees the map).

typedef struct {
    msgpack_sbuffer buffer;     //  the packed keys and values
    msgpack_packer packer;
    uint32_t count;             //  entries so far
} zjq_stats_map_t;

void
    zjq_stats_map_init (zjq_stats_map_t *self);
//  Pack a key, count the entry, and return the packer for its value (a
//  nested map: zjq_stats_map_end (&child, zjq_stats_map_key (self, key))).
msgpack_packer *
    zjq_stats_map_key (zjq_stats_map_t *self, const char *key);
void
    zjq_stats_map_uint (zjq_stats_map_t *self, const char *key, uint64_t value);
void
    zjq_stats_map_int (zjq_stats_map_t *self, const char *key, int64_t value);
void
    zjq_stats_map_double (zjq_stats_map_t *self, const char *key, double value);
void
    zjq_stats_map_bool (zjq_stats_map_t *self, const char *key, bool value);
void
    zjq_stats_map_str (zjq_stats_map_t *self, const char *key, const char *value);
//  Pack the map into another packer and free its buffer.
void
    zjq_stats_map_end (zjq_stats_map_t *self, msgpack_packer *into);
//  Pack a string (not a map entry).
void
    zjq_stats_pack_str (msgpack_packer *packer, const char *text);

//  Add a queue's statistics to its STATS map: submitted, requeued,
//  submitted_1m, completed_1m, submitted_per_s, completed_per_s,
//  run_count_1m, run_ms_mean, run_ms_p99; with histograms, also wait_ms and
//  run_ms: { buckets: [per bucket, the last +Inf], count, sum }.
void
    zjq_stats_queue_pack (zjq_stats_queue_t *self, zjq_stats_map_t *map, int64_t now,
                          bool histograms);

//  Self test
void
    zjq_stats_test (bool verbose);

#endif
