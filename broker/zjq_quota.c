/*  zjq_quota.c: per-client shares of the broker's admission. See
    zjq_quota.h.                                                            */

#include "zjq_quota.h"
#include "zjq_error.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _zjq_quota_t {
    uint64_t max_jobs;          //  jobs queued + running per client; 0: no limit
    uint64_t max_bytes;         //  their payload bytes; 0: no limit
    uint64_t rejected;          //  submits refused with EQUOTA
};

zjq_quota_t *
zjq_quota_new (uint64_t max_jobs, uint64_t max_bytes)
{
    zjq_quota_t *self = (zjq_quota_t *) calloc (1, sizeof (zjq_quota_t));
    if (!self)
        return NULL;
    self->max_jobs = max_jobs;
    self->max_bytes = max_bytes;
    return self;
}

void
zjq_quota_destroy (zjq_quota_t **self_p)
{
    assert (self_p);
    free (*self_p);
    *self_p = NULL;
}

bool
zjq_quota_enabled (const zjq_quota_t *self)
{
    assert (self);
    return self->max_jobs || self->max_bytes;
}

int
zjq_quota_admit (zjq_quota_t *self, uint64_t jobs, uint64_t bytes, uint64_t size,
                 char *message, size_t message_size)
{
    assert (self && message && message_size);
    *message = 0;
    if (self->max_jobs && jobs >= self->max_jobs)
        snprintf (message, message_size, "this client has %llu jobs queued or running, its "
                  "share (max-jobs-per-client %llu)", (unsigned long long) jobs,
                  (unsigned long long) self->max_jobs);
    else
    if (self->max_bytes && (bytes + size > self->max_bytes || size > self->max_bytes))
        snprintf (message, message_size, "this client's queued and running jobs hold %llu "
                  "payload bytes; %llu more would pass its share (max-queued-bytes-per-client "
                  "%llu)", (unsigned long long) bytes, (unsigned long long) size,
                  (unsigned long long) self->max_bytes);
    else
        return 0;
    self->rejected++;
    return ZJQ_EQUOTA;
}

uint64_t
zjq_quota_rejected (const zjq_quota_t *self)
{
    assert (self);
    return self->rejected;
}

void
zjq_quota_test (bool verbose)
{
    char message [256];
    zjq_quota_t *self = zjq_quota_new (0, 0);
    assert (self && !zjq_quota_enabled (self));
    assert (zjq_quota_admit (self, UINT64_MAX - 1, UINT64_MAX / 2, UINT64_MAX / 2,
                             message, sizeof (message)) == 0);
    zjq_quota_destroy (&self);
    zjq_quota_destroy (&self);
    assert (self == NULL);

    self = zjq_quota_new (2, 100);
    assert (self && zjq_quota_enabled (self));
    assert (zjq_quota_admit (self, 0, 0, 100, message, sizeof (message)) == 0);
    assert (zjq_quota_admit (self, 1, 60, 40, message, sizeof (message)) == 0);
    assert (zjq_quota_admit (self, 1, 60, 41, message, sizeof (message)) == ZJQ_EQUOTA);
    assert (strstr (message, "max-queued-bytes-per-client 100"));
    assert (zjq_quota_admit (self, 2, 0, 0, message, sizeof (message)) == ZJQ_EQUOTA);
    assert (strstr (message, "max-jobs-per-client 2"));
    //  No wrap-around: a huge size is refused however little is held
    assert (zjq_quota_admit (self, 0, 50, UINT64_MAX - 10, message, sizeof (message))
            == ZJQ_EQUOTA);
    assert (zjq_quota_rejected (self) == 3);
    //  A short buffer is still terminated
    assert (zjq_quota_admit (self, 5, 0, 0, message, 8) == ZJQ_EQUOTA);
    assert (strlen (message) == 7);
    zjq_quota_destroy (&self);

    self = zjq_quota_new (0, 10);
    assert (zjq_quota_admit (self, 1000000, 0, 10, message, sizeof (message)) == 0);
    zjq_quota_destroy (&self);
    if (verbose)
        printf ("(quota ok) ");
}
