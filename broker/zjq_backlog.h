/*  zjq_backlog.h: the bytes the broker has sent to each client connection
    and the client has not read yet (its outbound backlog).

    libzmq counts a pipe in messages, not bytes, and says nothing of what a
    peer has read, so the broker counts at the application level. For each
    client connection (ROUTER routing id) the backlog keeps the bytes sent
    to it since it appeared (fields and payload of every message) and the
    bytes it has acknowledged: the broker stamps each message to a client
    that acknowledges with its running count (`out`), and the client sends
    back the highest stamp it has read (`ack`). Sent minus acknowledged is
    what may still sit in libzmq's queues, the client's kernel buffers or
    its inbox: its backlog. Messages libzmq dropped are skipped by the next
    stamp the client reads. A client that never sends `ack` never lowers
    its count: everything it was sent stays counted.

    zjq_backlog_fits says whether more bytes may go to a connection: within
    the per-connection allowance and the broker-wide total; or, so that a
    result larger than the allowance can still be read, to a connection
    with at most ZJQ_BACKLOG_SLACK (or half the allowance) unread, the
    total still permitting.

    Connections are forgotten when a send to them fails (the connection is
    gone: zjq_backlog_forget), and the broker probes connections idle for a
    while (zjq_backlog_idle) so that gone ones are found.                */

#ifndef ZJQ_BACKLOG_H_INCLUDED
#define ZJQ_BACKLOG_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

#define ZJQ_BACKLOG_SLACK   (64 * 1024)     //  unread bytes under which one big message may go

typedef struct _zjq_backlog_t zjq_backlog_t;

//  One connection's figures (zjq_backlog_top).
typedef struct {
    char key [2 * 256 + 1];     //  routing id in hex
    uint64_t bytes;             //  sent and not acknowledged
    bool acks;                  //  it acknowledges (announced the capability)
} zjq_backlog_info_t;

//  Create a backlog with a per-connection allowance and a broker-wide total
//  (bytes, > 0). Returns NULL if out of memory.
zjq_backlog_t *
    zjq_backlog_new (uint64_t peer_max, uint64_t total_max);

//  Destroy it; idempotent; nulls the pointer.
void
    zjq_backlog_destroy (zjq_backlog_t **self_p);

//  Count bytes sent now (at now, monotonic ms) to a connection, created if
//  new. Returns the connection's running count including them (the stamp
//  for `out`), or 0 if out of memory (then nothing is counted); *acks_p
//  says whether the connection acknowledges (zjq_backlog_acks).
uint64_t
    zjq_backlog_sent (zjq_backlog_t *self, const byte *routing_id, size_t size,
                      uint64_t bytes, int64_t now, bool *acks_p);

//  A message came from a connection at now; with has_ack, it carried `ack`
//  (the highest stamp it has read): the connection acknowledges from now on,
//  and its backlog drops to what was sent after that stamp. An ack past the
//  count (a stamp of an earlier connection) counts as everything read.
//  Creates the connection if new (out of memory: nothing happens).
void
    zjq_backlog_seen (zjq_backlog_t *self, const byte *routing_id, size_t size,
                      bool has_ack, uint64_t ack, int64_t now);

//  True if the connection acknowledges (has sent `ack`).
bool
    zjq_backlog_acks (zjq_backlog_t *self, const byte *routing_id, size_t size);

//  May bytes more go to the connection now? True if its backlog plus bytes
//  stays within the allowance and the total within the broker-wide limit;
//  or if its backlog is at most ZJQ_BACKLOG_SLACK (or half the allowance,
//  if less) and the total plus bytes stays within the limit (one big
//  message at a time). Without total, the broker-wide limit is not
//  checked (replies an operator needs while clients hold the total).
bool
    zjq_backlog_fits (zjq_backlog_t *self, const byte *routing_id, size_t size,
                      uint64_t bytes, bool total);

//  Forget a connection (it is gone): its backlog leaves the total.
//  Nothing if unknown.
void
    zjq_backlog_forget (zjq_backlog_t *self, const byte *routing_id, size_t size);

//  Connections that have sent nothing since before now - idle_ms and were
//  not passed to probe in that time either: each is passed to probe (its
//  routing id), which may not change the backlog.
typedef void (zjq_backlog_probe_fn) (void *arg, const byte *routing_id, size_t size);
void
    zjq_backlog_idle (zjq_backlog_t *self, int64_t now, int64_t idle_ms,
                      zjq_backlog_probe_fn *probe, void *arg);

//  Bytes sent and not acknowledged, all connections.
uint64_t
    zjq_backlog_total (zjq_backlog_t *self);
//  Connections known.
size_t
    zjq_backlog_size (zjq_backlog_t *self);
//  Up to max connections with the largest backlogs, largest first, into
//  top. Returns how many.
size_t
    zjq_backlog_top (zjq_backlog_t *self, zjq_backlog_info_t *top, size_t max);

//  Self test
void
    zjq_backlog_test (bool verbose);

#endif
