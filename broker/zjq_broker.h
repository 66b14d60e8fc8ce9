/*  zjq_broker.h: the zjq broker.

    One ROUTER socket serves clients and workers (docs/protocol.md). The
    broker runs a single event loop that never blocks: it polls the socket
    and a signal fd with a timeout taken from its data (the earliest job
    deadline or worker heartbeat), drains every message that is waiting,
    and hands each one to a small handler per command.                      */

#ifndef ZJQ_BROKER_H_INCLUDED
#define ZJQ_BROKER_H_INCLUDED

#include "zjq_broker_config.h"
#include "zjq_auth.h"

typedef struct _zjq_broker_t zjq_broker_t;

//  Create a broker with the given settings (copied): binds every endpoint
//  and writes the endpoint file if one is set. With *auth_p (keys loaded
//  by zjq_auth_new; the broker takes it and nulls the pointer, also on
//  error) it serves CURVE only; with auth_p NULL, plaintext. Call
//  zsys_handler_set (NULL) and block the signals you want to receive
//  (zjq_signalfd_open) before this, since it creates the first socket.
//  Returns NULL after logging why if an endpoint cannot be bound or the
//  file cannot be written.
zjq_broker_t *
    zjq_broker_new (const zjq_broker_config_t *config, zjq_auth_t **auth_p);

//  Destroy the broker, its jobs and its socket; idempotent; nulls the
//  pointer. Sends nothing: zjq_broker_run says goodbye to workers.
void
    zjq_broker_destroy (zjq_broker_t **self_p);

//  Serve until SIGINT or SIGTERM arrives on signal_fd (from
//  zjq_signalfd_open; -1 for none), then send DISCONNECT to every worker
//  and return 0; SIGHUP on it reloads the CURVE allow-lists. Returns -1 if
//  polling fails.
int
    zjq_broker_run (zjq_broker_t *self, int signal_fd);

#endif
