/*  zjq_inbox.h: incoming zjq messages, with the messages of a BATCH handed
    out one by one, so callers see only ordinary messages. A BATCH's records
    stay in the frame they came in (zjq_batch_codec.h); each message read
    from it refers to that frame, and gets the batch's role, routing id and
    User-Id.                                                               */

#ifndef ZJQ_INBOX_H_INCLUDED
#define ZJQ_INBOX_H_INCLUDED

#include "zjq_msg.h"

typedef struct _zjq_inbox_t zjq_inbox_t;

//  Create an inbox reading a socket (from_router: messages start with a
//  routing id). NULL if out of memory.
zjq_inbox_t *
    zjq_inbox_new (void *socket, bool from_router);

//  Destroy an inbox, dropping the rest of a batch being read; idempotent.
void
    zjq_inbox_destroy (zjq_inbox_t **self_p);

//  Like zjq_msg_recv (socket, from_router, true, msg_p), but a BATCH comes
//  out as its messages, one per call, before the socket is read again. A
//  record that cannot be decoded comes out as a malformed message, and the
//  rest of that batch is dropped (its framing can no longer be trusted).
zjq_recv_t
    zjq_inbox_recv (zjq_inbox_t *self, zjq_msg_t **msg_p);

//  True if messages of a batch are waiting (a poll on the socket would not
//  show them).
bool
    zjq_inbox_pending (zjq_inbox_t *self);

//  Self test
void
    zjq_inbox_test (bool verbose);

#endif
