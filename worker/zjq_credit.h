/*  zjq_credit.h: how many jobs a worker asks the broker for (its credit).

    The worker announces its credit as READY's "capacity": the broker keeps
    at most that many of its jobs dispatched to it at once. The credit is
    the handler slots (the concurrency; 1 with inline handlers) plus the
    prefetch, the jobs that wait in the worker so that a slot that frees up
    starts its next job without a round trip to the broker.

    This class is the seam for adaptive credit (issue 14): a policy that
    sizes the prefetch from the measured service time and round trip
    replaces the body of zjq_credit_capacity (and gains whatever it needs
    to measure) without touching the connection, the pool or the job
    bookkeeping. Today's policy is fixed: slots + prefetch, where a
    prefetch of -1 means "equal to the slots".                             */

#ifndef ZJQ_CREDIT_H_INCLUDED
#define ZJQ_CREDIT_H_INCLUDED

#include <stdbool.h>

typedef struct _zjq_credit_t zjq_credit_t;

//  A credit policy for a worker with slots handler slots (1..1000) and
//  prefetch extra jobs (0..1000, or -1: equal to slots). Returns NULL on
//  out of memory.
zjq_credit_t *
    zjq_credit_new (int slots, int prefetch);

//  Destroy the policy; idempotent; nulls the pointer.
void
    zjq_credit_destroy (zjq_credit_t **self_p);

//  The credit to announce to the broker (READY's capacity), at least 1.
int
    zjq_credit_capacity (zjq_credit_t *self);

//  Self-test.
void
    zjq_credit_test (bool verbose);

#endif
