/*  zjq_client_private.h: client library internals shared with the zjq CLI.

    Not installed and not part of the ABI: the CLI needs a few reply fields
    that the public callbacks do not carry (the `duplicate` flag, the
    broker's message with an error, PONG's instance and version, the raw
    stats map to print a table).                                           */

#ifndef ZJQ_CLIENT_PRIVATE_H_INCLUDED
#define ZJQ_CLIENT_PRIVATE_H_INCLUDED

#include "zjq_client.h"
#include "zjq_proto.h"

//  The broker message whose callback is running now, or NULL (outside a
//  callback, or when the callback was not caused by a reply: a timeout,
//  ZJQ_ECLOSED). Owned by the client; valid only during that callback.
zjq_msg_t *
    zjq_client_reply (zjq_client_t *self);

//  Replies dropped since the client was created: malformed messages, and
//  well-formed ones that do not fit the request they name.
uint64_t
    zjq_client_malformed (zjq_client_t *self);

//  Why the last CURVE handshake with the broker failed (static English
//  text), or NULL if none failed since the last one that succeeded.
const char *
    zjq_client_handshake_error (zjq_client_t *self);

#endif
