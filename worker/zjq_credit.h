/*  zjq_credit.h: how many jobs a worker asks the broker for (its credit).

    The worker announces its credit as READY's "capacity" and, when it
    changes, in CREDIT (docs/protocol.md): the broker keeps at most that
    many of its jobs dispatched to it at once. The credit is the handler
    slots (the concurrency; 1 with inline handlers) plus the prefetch, the
    jobs that wait in the worker so that a slot that frees up starts its
    next job without a round trip to the broker.

    A fixed prefetch (--prefetch N, zjq_worker_set_prefetch) is used as
    given. By default the prefetch is adaptive, from what the worker
    measures: S, the handlers' service time (an average of the last jobs,
    raised at once to the age of the oldest job still running once that
    exceeds max (4 R, 10 ms)), R, the
    round trip to the broker (HEARTBEAT ping/pong), and B, the mean payload
    of the jobs it got:

        S > 4 R             prefetch 0: a job never waits behind a long
                            job while another worker could start it
        otherwise           prefetch = ceil (2 x slots x R / S): the jobs
                            the slots finish in two round trips, at least
                            1 and at most 1000
        and always          prefetch x B <= 4 MiB (credit bounded in bytes)

    A fresh worker (no job finished yet) starts optimistic, prefetch
    min (1000, 64 x slots), so that a burst of short jobs pipelines at once;
    its first long job shows itself within max (4 R, 10 ms) (its age), the prefetch
    drops to 0 and the worker hands back the jobs it holds beyond its
    slots (zjq_worker_jobs.c), so no job is hoarded behind it. Before the
    first pong, R is taken as 1 ms.

    Changes are announced with hysteresis: a drop to prefetch 0 or by more
    than a quarter goes out at once, a rise by more than a quarter at most
    every 5 ms.                                                             */

#ifndef ZJQ_CREDIT_H_INCLUDED
#define ZJQ_CREDIT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZJQ_CREDIT_PREFETCH_MAX     1000        //  jobs
#define ZJQ_CREDIT_PREFETCH_BYTES   (4 << 20)   //  payload bytes prefetched, at most
#define ZJQ_CREDIT_ADAPTIVE         (-1)        //  zjq_credit_new: measure

typedef struct _zjq_credit_t zjq_credit_t;

//  A credit policy for a worker with slots handler slots (1..1000) and
//  prefetch extra jobs (0..1000), or ZJQ_CREDIT_ADAPTIVE (see above).
//  Returns NULL on out of memory.
zjq_credit_t *
    zjq_credit_new (int slots, int prefetch);

//  Destroy the policy; idempotent; nulls the pointer.
void
    zjq_credit_destroy (zjq_credit_t **self_p);

//  True if the prefetch is adaptive (not fixed).
bool
    zjq_credit_adaptive (zjq_credit_t *self);

//  The credit the policy wants now (slots + prefetch), at least 1.
int
    zjq_credit_capacity (zjq_credit_t *self);

//  The handler slots: the credit never goes below them.
int
    zjq_credit_slots (zjq_credit_t *self);

//  Measurements. A job of payload bytes arrived; a job's handler ran for
//  service_us microseconds; a round trip to the broker took rtt_us; the
//  oldest job running now started age_us ago (0: none runs).
void
    zjq_credit_job_arrived (zjq_credit_t *self, size_t bytes);
void
    zjq_credit_job_done (zjq_credit_t *self, int64_t service_us);
void
    zjq_credit_rtt (zjq_credit_t *self, int64_t rtt_us);
void
    zjq_credit_running_age (zjq_credit_t *self, int64_t age_us);

//  The round trip used, in microseconds (measured, or the 1 ms guess).
int64_t
    zjq_credit_rtt_us (zjq_credit_t *self);

//  How long a running job must have run to count as long: max (4 R, 10 ms).
int64_t
    zjq_credit_long_us (zjq_credit_t *self);

//  The broker was told capacity (READY on a new connection) at now_us.
void
    zjq_credit_announced (zjq_credit_t *self, int capacity, int64_t now_us);

//  If the credit changed enough to announce at now_us (see above), returns
//  the new value and records it as announced; else 0.
int
    zjq_credit_update (zjq_credit_t *self, int64_t now_us);

//  The credit the broker was last told.
int
    zjq_credit_told (zjq_credit_t *self);

//  Self-test.
void
    zjq_credit_test (bool verbose);

#endif
