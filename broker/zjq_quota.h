/*  zjq_quota.h: per-client shares of the broker's admission.

    A client may have at most max_jobs jobs, holding at most max_bytes
    payload bytes, admitted and not yet ended (queued or running: a job
    counts from its ACCEPTED until it succeeds, fails for good, is
    cancelled or removed; a requeued attempt still counts, a retried dead
    letter counts again). Who "a client" is, is the broker's: its CURVE key,
    or in plaintext its connection (routing id). What each has is counted
    by the job table (zjq_jobtable_usage); this class holds the limits and
    decides, so that one client cannot take the whole of --max-jobs or
    --max-queued-bytes from the others. 0 means no share.                 */

#ifndef ZJQ_QUOTA_H_INCLUDED
#define ZJQ_QUOTA_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _zjq_quota_t zjq_quota_t;

//  Create the shares: max_jobs jobs and max_bytes payload bytes per client
//  (0: no limit of that kind). Returns NULL if out of memory.
zjq_quota_t *
    zjq_quota_new (uint64_t max_jobs, uint64_t max_bytes);

//  Destroy; idempotent; nulls the pointer.
void
    zjq_quota_destroy (zjq_quota_t **self_p);

//  True if either share is set (else the broker need not name clients).
bool
    zjq_quota_enabled (const zjq_quota_t *self);

//  May a client that has jobs jobs of bytes payload bytes queued or running
//  add one of size bytes? Returns 0, or ZJQ_EQUOTA (counted) with why it
//  may not in message (message_size bytes, always terminated).
int
    zjq_quota_admit (zjq_quota_t *self, uint64_t jobs, uint64_t bytes, uint64_t size,
                     char *message, size_t message_size);

//  Submits refused with ZJQ_EQUOTA so far.
uint64_t
    zjq_quota_rejected (const zjq_quota_t *self);

//  Self test
void
    zjq_quota_test (bool verbose);

#endif
