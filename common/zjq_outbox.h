/*  zjq_outbox.h: outgoing zjq messages gathered per destination during one
    turn of a loop and sent at the turn's end.

    Every ZeroMQ message costs its sender and its receiver a fixed amount of
    work (a pipe write, a wake-up, a poll, a syscall now and then), however
    small it is. Under load a zjq peer usually has many messages for the
    same peer at once: a client submitting a burst, the broker accepting it
    and dispatching jobs, a worker returning results. A destination with one
    message gets it as it is (no cost, no delay for a lone request), one
    with more gets a BATCH (zjq_batch_codec.h). Messages with a payload over
    ZJQ_BATCH_PAYLOAD_MAX go on their own, after what was queued for the
    same destination, so a large payload is never copied.                 */

#ifndef ZJQ_OUTBOX_H_INCLUDED
#define ZJQ_OUTBOX_H_INCLUDED

#include "zjq_msg.h"

typedef struct _zjq_outbox_t zjq_outbox_t;

//  Called when a send to a destination failed (with ZMQ_DONTWAIT): its
//  routing id (NULL on a socket without), the command sent (ZJQ_CMD_BATCH
//  if the messages lost had different commands) and errno. The messages
//  are dropped.
typedef void (zjq_outbox_fail_fn) (void *arg, const byte *routing_id, size_t routing_id_size,
                                   int command, int error);

//  Create an outbox for a socket (ROUTER: messages carry routing ids; any
//  other: one destination). on_fail may be NULL. NULL if out of memory.
zjq_outbox_t *
    zjq_outbox_new (void *socket, zjq_outbox_fail_fn *on_fail, void *arg);

//  Destroy an outbox, dropping what it has not sent; idempotent.
void
    zjq_outbox_destroy (zjq_outbox_t **self_p);

//  Queue a message for its destination (taken, and nulled). It is sent by
//  the next flush, or now if it cannot be batched or its destination's
//  batch is full. A shared payload (zjq_msg_set_payload_shared) is copied
//  unless it is sent now, so the caller's frame need not outlive the call.
void
    zjq_outbox_send (zjq_outbox_t *self, zjq_msg_t **msg_p);

//  Send everything queued, without blocking; what the socket refuses is
//  reported to on_fail and dropped.
void
    zjq_outbox_flush (zjq_outbox_t *self);

//  Messages queued and not sent yet.
size_t
    zjq_outbox_queued (zjq_outbox_t *self);

//  Self test
void
    zjq_outbox_test (bool verbose);

#endif
