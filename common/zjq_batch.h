/*  zjq_batch.h: several zjq messages in one ZeroMQ message (BATCH).

    Every ZeroMQ message costs its sender and its receiver a fixed amount of
    work (a pipe write, a wake-up, a poll, a syscall now and then), however
    small it is. Under load a zjq peer usually has many messages for the
    same peer at once: a client submitting a burst, the broker accepting it
    and dispatching jobs, a worker returning results. A BATCH carries them in
    one message (docs/protocol.md, "Batches"):

        frame 0  header   'Z' 'J' 'Q' VERSION ROLE 0x60
        frame 1  fields   { "count": N }
        frame 2  records  N times: command (1 byte), fields size (4 bytes,
                          big-endian), fields, and for commands that carry a
                          payload: payload size (4 bytes), payload

    Each record decodes to the message it would have been on its own, with
    the batch's role, routing id and User-Id, and is checked the same way.

    zjq_outbox_t queues outgoing messages per destination during one turn of
    a loop and sends them at the turn's end: a destination with one message
    gets it as it is (no cost, no delay for a lone request), one with more
    gets a BATCH. Messages with a payload over ZJQ_BATCH_PAYLOAD_MAX go on
    their own, after what was queued for the same destination, so a large
    payload is never copied. zjq_inbox_t reads messages from a socket and
    hands out the messages of a BATCH one by one, so callers see only
    ordinary messages.

    zjq_batch_t is the encoder both use (and the client, which keeps its own
    encoded requests).                                                      */

#ifndef ZJQ_BATCH_H_INCLUDED
#define ZJQ_BATCH_H_INCLUDED

#include "zjq_proto.h"

#define ZJQ_BATCH_MAX_COUNT     4096                //  messages in one BATCH
#define ZJQ_BATCH_MAX_BYTES     (4 * 1024 * 1024)   //  bound on the records frame
#define ZJQ_BATCH_PAYLOAD_MAX   8192                //  larger payloads are not batched
#define ZJQ_BATCH_FLUSH_BYTES   (16 * 1024)         //  senders flush a batch this big:
                                                    //  the receiver starts on it while
                                                    //  the rest is built (bench/README)

typedef struct _zjq_batch_t zjq_batch_t;
typedef struct _zjq_outbox_t zjq_outbox_t;
typedef struct _zjq_inbox_t zjq_inbox_t;

//  --- Encoder

//  Create an empty batch of messages sent by role. NULL if out of memory.
zjq_batch_t *
    zjq_batch_new (int role);

//  Destroy a batch; idempotent; nulls the pointer.
void
    zjq_batch_destroy (zjq_batch_t **self_p);

//  Append one message given as its command, packed fields and payload
//  (payload ignored for commands that carry none). Returns 0, or -1 if out
//  of memory (the batch is unchanged).
int
    zjq_batch_append (zjq_batch_t *self, int command, const void *fields, size_t fields_size,
                      const void *payload, size_t payload_size);

//  Append a message being built (it is not taken). Returns 0 or -1.
int
    zjq_batch_append_msg (zjq_batch_t *self, zjq_msg_t *msg);

//  Messages in the batch, and the size of its records.
size_t
    zjq_batch_count (zjq_batch_t *self);
size_t
    zjq_batch_size (zjq_batch_t *self);

//  Send the batch as one BATCH message (routing_id first if not NULL, for a
//  ROUTER), without copying its records. The batch is empty afterwards if
//  it was sent. Returns 0, or -1 with errno (EAGAIN when dontwait and the
//  socket would block); then the batch is unchanged.
int
    zjq_batch_send (zjq_batch_t *self, void *socket, const void *routing_id, size_t routing_id_size,
                    bool dontwait);

//  Empty the batch.
void
    zjq_batch_reset (zjq_batch_t *self);

//  --- Outbox

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

//  --- Inbox

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
    zjq_batch_test (bool verbose);

#endif
