/*  zjq_batch_codec.h: the records of a BATCH message (several zjq messages
    in one ZeroMQ message; docs/protocol.md, "Batches"):

        frame 0  header   'Z' 'J' 'Q' VERSION ROLE 0x60
        frame 1  fields   { "count": N }
        frame 2  records  N times: command (1 byte), fields size (4 bytes,
                          big-endian), fields, and for commands that carry a
                          payload: payload size (4 bytes), payload

    zjq_batch_t encodes records and sends them as one BATCH (the outbox and
    the client, which keeps its own encoded requests, use it);
    zjq_batch_record_read reads one record back (the inbox uses it). Each
    record decodes to the message it would have been on its own, with the
    batch's role, routing id and User-Id, and is checked the same way
    (zjq_msg_decode_batched).                                              */

#ifndef ZJQ_BATCH_CODEC_H_INCLUDED
#define ZJQ_BATCH_CODEC_H_INCLUDED

#include "zjq_msg.h"

#define ZJQ_BATCH_MAX_COUNT     4096                //  messages in one BATCH
#define ZJQ_BATCH_MAX_BYTES     (4 * 1024 * 1024)   //  bound on the records frame
#define ZJQ_BATCH_PAYLOAD_MAX   8192                //  larger payloads are not batched
#define ZJQ_BATCH_FLUSH_BYTES   (16 * 1024)         //  senders flush a batch this big:
                                                    //  the receiver starts on it while
                                                    //  the rest is built (bench/README)

typedef struct _zjq_batch_t zjq_batch_t;

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

//  The contents of the records frame (owned by the batch; valid until it
//  changes), and *size_p its size.
const void *
    zjq_batch_data (zjq_batch_t *self, size_t *size_p);

//  --- Reading records

//  Where one record lies in a records frame
typedef struct {
    int command;                //  its command byte
    size_t fields_offset;       //  its fields: offset and size
    size_t fields_size;
    size_t payload_offset;      //  its payload (both 0 for a command
    size_t payload_size;        //    that carries none)
} zjq_batch_record_t;

//  Read the record at *offset_p of a records frame of size bytes. Returns
//  0 and moves *offset_p past the record, or -1 with *error_p set ("batch
//  record truncated", "a batch inside a batch"), *offset_p unchanged. An
//  unknown command is read as a record without payload (decoding it says
//  ECOMMAND).
int
    zjq_batch_record_read (const void *records, size_t size, size_t *offset_p,
                           zjq_batch_record_t *record, const char **error_p);

//  Self test
void
    zjq_batch_test (bool verbose);

#endif
