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
        zjq_proto.h    this header: all of the above, and the helpers that
                       check or read what a message carries (queue names,
                       msgpack values) and the socket monitor
    BATCH messages (several in one) are in zjq_batch.h.                  */

#ifndef ZJQ_PROTO_H_INCLUDED
#define ZJQ_PROTO_H_INCLUDED

#include "zjq_wire.h"
#include "zjq_msg.h"
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

//  --- Reading msgpack values outside a message (STATS maps)
//  The value for a string key in a msgpack map, or NULL if absent or if
//  map is NULL or not a map.
const msgpack_object *
    zjq_mp_map_get (const msgpack_object *map, const char *key);
//  A msgpack string copied into buf (size bytes, cut to fit), control
//  bytes as '?', or "-" if object is NULL or not a string. Returns buf.
const char *
    zjq_mp_text (const msgpack_object *object, char *buf, size_t size);
//  A msgpack number (integer or float; a boolean as 0/1) as a double.
//  Returns false (value unchanged) if object is NULL or not one.
bool
    zjq_mp_number (const msgpack_object *object, double *value);

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
