/*  zjq_msg_private.h: the inside of zjq_msg_t, shared by the two files of
    the message class: zjq_msg.c (the object, its pool, building, payload,
    reading fields) and zjq_msg_io.c (sending, receiving, decoding). Not
    for other classes.                                                    */

#ifndef ZJQ_MSG_PRIVATE_H_INCLUDED
#define ZJQ_MSG_PRIVATE_H_INCLUDED

#include "zjq_msg.h"
#include "zjq_fields.h"

#define ZJQ_ROUTING_ID_MAX 256    //  libzmq routing ids are 1..255 bytes

struct _zjq_msg_t {
    int role;                   //  ZJQ_ROLE_*
    int command;                //  ZJQ_CMD_*
    int version;                //  header version (received messages)
    bool has_routing_id;        //  routing_id below is valid
    size_t routing_id_size;     //  bytes in routing_id
    byte routing_id [ZJQ_ROUTING_ID_MAX];   //  ROUTER peer
    zframe_t *payload;          //  payload frame (owned), or NULL
    zframe_t *payload_shared;   //  payload frame (borrowed), or NULL
    const byte *payload_bytes;  //  borrowed payload bytes (a batched message's,
    size_t payload_size;        //    in fields_part, or the caller's), until a
    bool payload_borrowed;      //    frame is asked for (then payload holds a copy)
    char user_id [ZJQ_USER_ID_MAX + 1];     //  "User-Id" on receipt, or ""
    //  Building
    msgpack_sbuffer buffer;     //  map32 header + packed fields; kept when pooled
    uint32_t put_count;         //  fields put so far
    //  Decoding
    bool decoded;               //  fields below are valid
    zmq_msg_t fields_part;      //  the received fields frame, or (a message
    size_t fields_offset;       //    from a batch) a reference to the batch's
    size_t fields_size;         //    records: the fields are at this offset
    zmq_msg_t batch_part;       //  a received BATCH: its records frame
    bool has_batch_part;        //  batch_part holds one
    msgpack_zone zone;          //  decoded objects and string copies; cleared, not freed
    msgpack_object root;        //  the decoded fields value
    msgpack_object_map *map;    //  the fields map
    msgpack_object_kv fields [ZJQ_MAX_FIELDS];  //  its entries
    char *strings [ZJQ_MAX_FIELDS];     //  NUL-terminated copies in zone, per field, lazily
    //  Errors of a malformed message
    int error_code;             //  ZJQ_EPROTO, ZJQ_EVERSION, ZJQ_ECOMMAND
    char error [160];           //  what was wrong
    zjq_msg_t *next_free;       //  in a thread's pool
};

//  A message from the calling thread's pool, or a new one, in its
//  just-allocated state (no header, no fields). NULL if out of memory.
zjq_msg_t *
    zjq_msg_alloc (void);

//  Patch the number of fields put into the packed fields' map header (a
//  received message being re-sent has no builder buffer: it gets an empty
//  map).
static inline void
    zjq_msg_fields_finish (zjq_msg_t *self)
{
    zjq_fields_finish (&self->buffer, self->put_count);
}

//  Give a borrowed payload a frame of its own (a copy), if it has one.
void
    zjq_msg_payload_materialize (zjq_msg_t *self);

#endif
