/*  zjq_credit.c: how many jobs a worker asks the broker for (see
    zjq_credit.h): slots plus a fixed prefetch, or a prefetch sized from
    the measured service time, round trip and payload size.                 */

#include "zjq_credit.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define s_RTT_GUESS_US      1000        //  before the first pong
#define s_RTT_FLOOR_US      20          //  no round trip is faster
#define s_LONG_FACTOR       4           //  S > 4 R: no prefetch
#define s_FRESH_PER_SLOT    64          //  prefetch per slot before any job ended
#define s_RAISE_EVERY_US    5000        //  rises announced at most this often
#define s_AGE_FLOOR_US      10000       //  a running job is long past max (4 R, this)

struct _zjq_credit_t {
    int slots;                  //  handler slots: jobs run at once
    int prefetch;               //  fixed prefetch, or ZJQ_CREDIT_ADAPTIVE
    double service_us;          //  EWMA of handler run times; 0: none ended yet
    double rtt_us;              //  EWMA of round trips; 0: none measured
    double bytes;               //  EWMA of payload sizes
    int64_t running_age_us;     //  age of the oldest running job, 0 if none
    int told;                   //  credit the broker was last told
    int64_t told_at;            //  when (monotonic us)
};

zjq_credit_t *
zjq_credit_new (int slots, int prefetch)
{
    assert (slots >= 1);
    assert (prefetch >= ZJQ_CREDIT_ADAPTIVE && prefetch <= ZJQ_CREDIT_PREFETCH_MAX);
    zjq_credit_t *self = (zjq_credit_t *) calloc (1, sizeof (zjq_credit_t));
    if (!self)
        return NULL;
    self->slots = slots;
    self->prefetch = prefetch;
    return self;
}

void
zjq_credit_destroy (zjq_credit_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

bool
zjq_credit_adaptive (zjq_credit_t *self)
{
    assert (self);
    return self->prefetch == ZJQ_CREDIT_ADAPTIVE;
}

int
zjq_credit_slots (zjq_credit_t *self)
{
    assert (self);
    return self->slots;
}

int64_t
zjq_credit_rtt_us (zjq_credit_t *self)
{
    assert (self);
    return self->rtt_us > 0 ? (int64_t) self->rtt_us : s_RTT_GUESS_US;
}

int64_t
zjq_credit_long_us (zjq_credit_t *self)
{
    assert (self);
    int64_t value = s_LONG_FACTOR * zjq_credit_rtt_us (self);
    return value > s_AGE_FLOOR_US ? value : s_AGE_FLOOR_US;
}

//  The adaptive prefetch (see zjq_credit.h)
static int
s_adaptive_prefetch (zjq_credit_t *self)
{
    double rtt = (double) zjq_credit_rtt_us (self);
    double service = self->service_us;
    //  A job running for long is long: a preempted short job (a loaded
    //  machine) is not, hence the floor
    if (self->running_age_us > zjq_credit_long_us (self))
        service = (double) self->running_age_us;
    double prefetch;
    if (service <= 0)
        prefetch = (double) self->slots * s_FRESH_PER_SLOT;
    else
    if (service > s_LONG_FACTOR * rtt)
        prefetch = 0;
    else
        prefetch = ceil (2.0 * self->slots * rtt / service);
    if (prefetch > ZJQ_CREDIT_PREFETCH_MAX)
        prefetch = ZJQ_CREDIT_PREFETCH_MAX;
    //  Bounded in bytes too: a job of at least 1 byte counts
    double per_job = self->bytes < 1 ? 1 : self->bytes;
    if (prefetch * per_job > ZJQ_CREDIT_PREFETCH_BYTES)
        prefetch = floor (ZJQ_CREDIT_PREFETCH_BYTES / per_job);
    return (int) prefetch;
}

int
zjq_credit_capacity (zjq_credit_t *self)
{
    assert (self);
    int prefetch = self->prefetch == ZJQ_CREDIT_ADAPTIVE ? s_adaptive_prefetch (self)
                                                          : self->prefetch;
    return self->slots + prefetch;
}

void
zjq_credit_job_arrived (zjq_credit_t *self, size_t bytes)
{
    assert (self);
    self->bytes = self->bytes == 0 ? (double) bytes : self->bytes * 0.875 + (double) bytes * 0.125;
}

void
zjq_credit_job_done (zjq_credit_t *self, int64_t service_us)
{
    assert (self);
    double value = service_us < 1 ? 1 : (double) service_us;
    self->service_us = self->service_us == 0 ? value : self->service_us * 0.75 + value * 0.25;
}

void
zjq_credit_rtt (zjq_credit_t *self, int64_t rtt_us)
{
    assert (self);
    double value = rtt_us < s_RTT_FLOOR_US ? s_RTT_FLOOR_US : (double) rtt_us;
    self->rtt_us = self->rtt_us == 0 ? value : self->rtt_us * 0.75 + value * 0.25;
}

void
zjq_credit_running_age (zjq_credit_t *self, int64_t age_us)
{
    assert (self);
    self->running_age_us = age_us > 0 ? age_us : 0;
}

void
zjq_credit_announced (zjq_credit_t *self, int capacity, int64_t now_us)
{
    assert (self);
    self->told = capacity;
    self->told_at = now_us;
}

int
zjq_credit_told (zjq_credit_t *self)
{
    assert (self);
    return self->told;
}

int
zjq_credit_update (zjq_credit_t *self, int64_t now_us)
{
    assert (self);
    int want = zjq_credit_capacity (self);
    int told = self->told;
    if (want == told || told == 0)
        return 0;
    bool to_slots = want == self->slots;            //  no prefetch: at once
    bool from_slots = told == self->slots;
    bool big_drop = want * 4 < told * 3;
    bool big_rise = want * 4 > told * 5 || from_slots;
    if (to_slots || big_drop
    ||  (big_rise && want > told && now_us - self->told_at >= s_RAISE_EVERY_US)) {
        zjq_credit_announced (self, want, now_us);
        return want;
    }
    return 0;
}


//  --------------------------------------------------------------------------
//  Self-test

void
zjq_credit_test (bool verbose)
{
    //  Fixed prefetch: slots + prefetch, whatever is measured
    zjq_credit_t *credit = zjq_credit_new (4, 0);
    assert (credit && !zjq_credit_adaptive (credit));
    assert (zjq_credit_capacity (credit) == 4 && zjq_credit_slots (credit) == 4);
    zjq_credit_job_done (credit, 1);
    zjq_credit_rtt (credit, 1000000);
    assert (zjq_credit_capacity (credit) == 4);
    zjq_credit_destroy (&credit);
    assert (credit == NULL);
    zjq_credit_destroy (&credit);       //  idempotent
    credit = zjq_credit_new (1, 256);
    assert (zjq_credit_capacity (credit) == 257);
    zjq_credit_destroy (&credit);
    credit = zjq_credit_new (1000, 1000);
    assert (zjq_credit_capacity (credit) == 2000);
    zjq_credit_destroy (&credit);

    //  Adaptive, fresh: optimistic, 64 per slot, at most 1000
    credit = zjq_credit_new (1, ZJQ_CREDIT_ADAPTIVE);
    assert (zjq_credit_adaptive (credit));
    assert (zjq_credit_capacity (credit) == 1 + 64);
    assert (zjq_credit_rtt_us (credit) == 1000);
    zjq_credit_announced (credit, 65, 0);
    assert (zjq_credit_told (credit) == 65);
    assert (zjq_credit_update (credit, 1) == 0);        //  unchanged

    //  A first job runs long (its age beyond max (4 R, 10 ms)): no prefetch,
    //  told at once
    zjq_credit_rtt (credit, 300);
    assert (zjq_credit_long_us (credit) == 10000);
    zjq_credit_running_age (credit, 5000);          //  not long yet
    assert (zjq_credit_capacity (credit) == 1 + 64);
    zjq_credit_running_age (credit, 12000);
    assert (zjq_credit_capacity (credit) == 1);
    assert (zjq_credit_update (credit, 2) == 1 && zjq_credit_told (credit) == 1);
    assert (zjq_credit_update (credit, 3) == 0);

    //  It ends (1 s): still no prefetch
    zjq_credit_running_age (credit, 0);
    zjq_credit_job_done (credit, 1000000);
    assert (zjq_credit_capacity (credit) == 1);

    //  The mix turns to jobs of microseconds: the average falls, the
    //  prefetch grows to ceil (2 x R / S), rises at most every 5 ms
    for (int job = 0; job < 100; job++)
        zjq_credit_job_done (credit, 2);
    int want = zjq_credit_capacity (credit);
    assert (want >= 1 + 299 && want <= 1 + 301);
    assert (zjq_credit_update (credit, 4000) == 0);     //  5 ms after the last
    assert (zjq_credit_update (credit, 6000) == want);  //  from no prefetch: a rise
    for (int job = 0; job < 100; job++)
        zjq_credit_job_done (credit, 1);
    want = zjq_credit_capacity (credit);
    assert (want >= 1 + 599 && want <= 1 + 601);
    assert (zjq_credit_update (credit, 8000) == 0);     //  too soon after the last
    assert (zjq_credit_update (credit, 11001) == want);

    //  Bounded at 1000 jobs and at 4 MiB of payload
    zjq_credit_rtt (credit, 100000);
    zjq_credit_rtt (credit, 100000);
    assert (zjq_credit_capacity (credit) == 1 + 1000);
    for (int job = 0; job < 100; job++)
        zjq_credit_job_arrived (credit, 1 << 20);
    assert (zjq_credit_capacity (credit) == 1 + 4);
    for (int job = 0; job < 100; job++)
        zjq_credit_job_arrived (credit, 16 << 20);
    assert (zjq_credit_capacity (credit) == 1);
    zjq_credit_destroy (&credit);

    //  Slots scale the prefetch
    credit = zjq_credit_new (8, ZJQ_CREDIT_ADAPTIVE);
    assert (zjq_credit_capacity (credit) == 8 + 512);
    zjq_credit_rtt (credit, 200);
    zjq_credit_job_done (credit, 100);
    assert (zjq_credit_capacity (credit) == 8 + 32);
    zjq_credit_job_done (credit, 100000);   //  EWMA: 25075 us > 4 R
    assert (zjq_credit_capacity (credit) == 8);
    zjq_credit_destroy (&credit);
    if (verbose)
        printf ("credit: fixed and adaptive prefetch\n");
}
