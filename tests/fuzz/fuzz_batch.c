/*  fuzz_batch.c: libFuzzer harness for the batch decoder: a BATCH message
    whose records are the input, read message by message through the inbox
    (zjq_inbox_recv over an inproc PAIR, as a peer reads its socket), each
    record decoded as a message of its own (zjq_batch_record_read,
    zjq_msg_decode_batched).

    Input: byte 0 the role ('C' if even, 'W' if odd), bytes 1-2 the count
    the BATCH announces (big-endian); the rest is the records frame.      */

#include "zjq_msg.h"
#include "zjq_inbox.h"
#include "zjq_proto.h"
#include <assert.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static zsock_t *s_writer;
static zsock_t *s_reader;
static zjq_inbox_t *s_inbox;

static void
s_setup (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    s_reader = zsock_new_pair ("@inproc://zjq-fuzz-batch");
    s_writer = zsock_new_pair (">inproc://zjq-fuzz-batch");
    assert (s_reader && s_writer);
    s_inbox = zjq_inbox_new (zsock_resolve (s_reader), false);
    assert (s_inbox);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    if (!s_inbox)
        s_setup ();
    uint8_t header [ZJQ_HEADER_SIZE] = { 'Z', 'J', 'Q', ZJQ_PROTO_VERSION,
                                         (data [0] & 1)? ZJQ_ROLE_WORKER: ZJQ_ROLE_CLIENT,
                                         ZJQ_CMD_BATCH };
    unsigned count = ((unsigned) data [1] << 8) | data [2];
    //  {"count": count} in msgpack
    uint8_t fields [] = { 0x81, 0xA5, 'c', 'o', 'u', 'n', 't', 0xCD,
                          (uint8_t) (count >> 8), (uint8_t) count };
    void *writer = zsock_resolve (s_writer);
    int rc = zmq_send (writer, header, sizeof (header), ZMQ_SNDMORE);
    rc |= zmq_send (writer, fields, sizeof (fields), ZMQ_SNDMORE) < 0;
    rc |= zmq_send (writer, data + 3, size - 3, 0) < 0;
    assert (rc >= 0);
    //  Every record comes out as a message, good or malformed, then nothing
    size_t messages = 0;
    for (int idle = 0; idle < 1000; ) {
        zjq_msg_t *msg = NULL;
        zjq_recv_t got = zjq_inbox_recv (s_inbox, &msg);
        if (got == ZJQ_RECV_INTERRUPTED) {
            assert (!msg);
            if (messages && !zjq_inbox_pending (s_inbox))
                break;
            idle++;
            continue;
        }
        assert (msg);
        messages++;
        if (got == ZJQ_RECV_OK) {
            (void) zjq_msg_get_str (msg, "queue");
            size_t payload_size = 0;
            (void) zjq_msg_payload_data (msg, &payload_size);
            (void) zjq_proto_command_name (zjq_msg_command (msg));
        }
        else
            assert (zjq_msg_error (msg));
        zjq_msg_destroy (&msg);
        assert (messages <= (count? count: 1));
    }
    assert (messages >= 1 && !zjq_inbox_pending (s_inbox));
    return 0;
}
