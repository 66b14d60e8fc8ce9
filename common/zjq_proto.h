/*  zjq_proto.h: the zjq wire protocol (version 1), for its users: include
    this one header to speak it. docs/protocol.md is the normative
    description; keep both in step.

    The protocol lives in four rooms, lowest first:
        zjq_wire.h     frame layout, roles, limits, command codes, and the
                       command table (name, senders, fields, payload per
                       command: zjq_proto_command)
        zjq_fields.h   the codec of the fields frame (msgpack)
        zjq_msg.h      the message class zjq_msg_t: build, send, receive,
                       decode, read fields (also in one pass)
        zjq_proto.h    this header: all of the above, the check of queue
                       names, the socket monitor, and (zjq_mp.h) the
                       msgpack readers and packing helpers
    BATCH messages (several in one) are in zjq_batch.h.                  */

#ifndef ZJQ_PROTO_H_INCLUDED
#define ZJQ_PROTO_H_INCLUDED

#include "zjq_wire.h"
#include "zjq_msg.h"
#include "zjq_mp.h"
#include <czmq.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

//  True if name is a valid queue name (NULL is not).
bool
    zjq_proto_queue_name_valid (const char *name);
//  The same for len bytes that need not be NUL-terminated.
bool
    zjq_proto_queue_name_validn (const char *name, size_t len);

//  Reading msgpack values outside a message (STATS maps): zjq_mp_map_get,
//  zjq_mp_text, zjq_mp_number are in zjq_mp.h (included above).

//  Read one event from a socket monitor (the PAIR connected to the
//  endpoint given to zmq_socket_monitor), without blocking: the
//  ZMQ_EVENT_* and its value. Returns false if none was waiting.
bool
    zjq_monitor_recv (void *monitor, int *event, uint32_t *value);

//  Self test: every command of the table through the message class, as
//  each role may and may not send it; queue names.
void
    zjq_proto_test (bool verbose);

#endif
