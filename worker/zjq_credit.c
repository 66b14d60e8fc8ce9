/*  zjq_credit.c: how many jobs a worker asks the broker for (see
    zjq_credit.h). Today's policy: handler slots plus a fixed prefetch.    */

#include "zjq_credit.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

struct _zjq_credit_t {
    int slots;                  //  handler slots: jobs run at once
    int prefetch;               //  jobs waiting beyond those, or -1: = slots
};

zjq_credit_t *
zjq_credit_new (int slots, int prefetch)
{
    assert (slots >= 1);
    assert (prefetch >= -1);
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

int
zjq_credit_capacity (zjq_credit_t *self)
{
    assert (self);
    return self->slots + (self->prefetch < 0 ? self->slots : self->prefetch);
}


//  --------------------------------------------------------------------------
//  Self-test

void
zjq_credit_test (bool verbose)
{
    //  Default prefetch: equal to the slots
    zjq_credit_t *credit = zjq_credit_new (1, -1);
    assert (credit);
    assert (zjq_credit_capacity (credit) == 2);
    zjq_credit_destroy (&credit);
    assert (credit == NULL);
    zjq_credit_destroy (&credit);       //  idempotent

    credit = zjq_credit_new (8, -1);
    assert (zjq_credit_capacity (credit) == 16);
    zjq_credit_destroy (&credit);

    //  No prefetch: only the slots
    credit = zjq_credit_new (4, 0);
    assert (zjq_credit_capacity (credit) == 4);
    zjq_credit_destroy (&credit);

    //  A large prefetch for tiny inline jobs (one slot)
    credit = zjq_credit_new (1, 256);
    assert (zjq_credit_capacity (credit) == 257);
    zjq_credit_destroy (&credit);

    //  The extremes the setters allow
    credit = zjq_credit_new (1000, 1000);
    assert (zjq_credit_capacity (credit) == 2000);
    zjq_credit_destroy (&credit);
    credit = zjq_credit_new (1000, -1);
    assert (zjq_credit_capacity (credit) == 2000);
    zjq_credit_destroy (&credit);
    if (verbose)
        printf ("credit: capacity = slots + prefetch\n");
}
