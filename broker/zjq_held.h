/*  zjq_held.h: promises held until the store has made them durable.

    A promise to a client (ACCEPTED, DONE, JOB_RESULT, the JOB_STATUS of a
    cancel, ...) may depend on records the store has not made durable yet.
    The broker holds such a message with the position (LSN) the store had
    reached when it was made, and releases the held messages, oldest first,
    once the store reports a durable position at or past theirs: held
    promises keep their order. A ring that doubles as it fills.

    The ring knows nothing of the store or the broker: release takes the
    durable position and a callback that sends one message.                */

#ifndef ZJQ_HELD_H_INCLUDED
#define ZJQ_HELD_H_INCLUDED

#include "zjq_proto.h"

typedef struct _zjq_held_t zjq_held_t;

//  Sends (or otherwise takes) one released message; it must null *msg_p.
typedef void (zjq_held_send_fn) (void *arg, zjq_msg_t **msg_p);

//  Create an empty ring. Returns NULL if out of memory.
zjq_held_t *
    zjq_held_new (void);

//  Destroy the ring and drop the messages still held (never promised);
//  idempotent; nulls the pointer.
void
    zjq_held_destroy (zjq_held_t **self_p);

//  Hold a message until the store is durable up to lsn; takes it and nulls
//  *msg_p. A shared or borrowed payload is copied first (the job it came
//  from may be gone when it is sent). Returns 0, or -1 if out of memory:
//  then the message stays the caller's, unchanged but for its payload.
int
    zjq_held_push (zjq_held_t *self, zjq_msg_t **msg_p, uint64_t lsn);

//  Pass the held messages whose lsn is at most durable to send, oldest
//  first. With all, every message goes: the durable ones to send, the rest
//  are dropped (the store failed to make them durable).
void
    zjq_held_release (zjq_held_t *self, uint64_t durable, bool all,
                      zjq_held_send_fn *send, void *arg);

//  Messages held now.
size_t
    zjq_held_size (zjq_held_t *self);

//  Self test
void
    zjq_held_test (bool verbose);

#endif
