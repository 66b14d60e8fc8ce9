/*  fuzz_msg.c: libFuzzer harness for the message codec (zjq_msg_decode,
    zjq_proto's command table) and the broker's request parsers.

    Input: byte 0 the header size (low 4 bits), byte 1 flags (bit 0: a
    payload frame follows), bytes 2-3 the fields size (big-endian); then
    the header, the fields, and the rest as the payload. A message that
    decodes is read field by field, parsed as the request its command is,
    and must encode and decode again to the same command.                 */

#include "zjq_msg.h"
#include "zjq_proto.h"
#include "zjq_request.h"
#include <assert.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
s_read_fields (zjq_msg_t *msg)
{
    size_t cursor = 0;
    zjq_msg_field_t field;
    int64_t number;
    bool flag;
    double real;
    while (zjq_msg_next_field (msg, &cursor, &field)) {
        (void) zjq_msg_field_str (msg, &field);
        (void) zjq_msg_field_int (&field, &number);
        (void) zjq_msg_field_bool (&field, &flag);
        (void) zjq_msg_field_double (&field, &real);
    }
    (void) zjq_msg_get_str (msg, "queue");
    (void) zjq_msg_get_int (msg, "req", &number);
}

static void
s_parse_request (zjq_msg_t *msg)
{
    switch (zjq_msg_command (msg)) {
        case ZJQ_CMD_SUBMIT: {
            zjq_submit_req_t req;
            memset (&req, 0, sizeof (req));
            zjq_submit_parse (msg, &req);
            break;
        }
        case ZJQ_CMD_READY: {
            zjq_ready_req_t req;
            zjq_ready_parse (msg, &req);
            break;
        }
        case ZJQ_CMD_WORK_RESULT: {
            zjq_work_result_req_t req;
            zjq_work_result_parse (msg, &req);
            break;
        }
        case ZJQ_CMD_PROGRESS: {
            zjq_progress_req_t req;
            zjq_progress_parse (msg, &req);
            break;
        }
        default: {
            zjq_job_req_t req;
            zjq_job_req_parse (msg, &req);
            break;
        }
    }
}

//  A message built from a decoded one's fields encodes, and decodes back to
//  the same command and fields
static void
s_round_trip (zjq_msg_t *msg)
{
    zjq_msg_t *copy = zjq_msg_new (zjq_msg_role (msg), zjq_msg_command (msg));
    assert (copy);
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    size_t cursor = 0, copied = 0;
    zjq_msg_field_t field;
    while (zjq_msg_next_field (msg, &cursor, &field)) {
        char key [256];
        if (field.key_size >= sizeof (key) || memchr (field.key, 0, field.key_size))
            continue;
        memcpy (key, field.key, field.key_size);
        key [field.key_size] = 0;
        msgpack_sbuffer_clear (&buffer);
        msgpack_pack_object (&packer, *field.value);
        zjq_msg_put_packed (copy, key, buffer.data, buffer.size);
        copied++;
    }
    msgpack_sbuffer_destroy (&buffer);
    zchunk_t *header = NULL, *fields = NULL;
    assert (zjq_msg_encode (copy, &header, &fields) == 0);
    zframe_t *payload = zjq_msg_payload (msg)? zframe_dup (zjq_msg_payload (msg)): NULL;
    zjq_msg_t *again = NULL;
    zjq_recv_t rc = zjq_msg_decode (zchunk_data (header), zchunk_size (header),
                                    zchunk_data (fields), zchunk_size (fields), &payload, &again);
    zframe_destroy (&payload);
    assert (again);
    if (copied == zjq_msg_field_count (msg)) {
        assert (rc == ZJQ_RECV_OK);
        assert (zjq_msg_command (again) == zjq_msg_command (msg));
        assert (zjq_msg_field_count (again) == copied);
    }
    zjq_msg_destroy (&again);
    zjq_msg_destroy (&copy);
    zchunk_destroy (&header);
    zchunk_destroy (&fields);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t header_size = data [0] & 0x0F;
    bool has_payload = data [1] & 1;
    size_t fields_size = ((size_t) data [2] << 8) | data [3];
    data += 4;
    size -= 4;
    if (header_size > size)
        header_size = size;
    if (fields_size > size - header_size)
        fields_size = size - header_size;
    const uint8_t *header = data;
    const uint8_t *fields = data + header_size;
    const uint8_t *rest = fields + fields_size;
    size_t rest_size = size - header_size - fields_size;
    zframe_t *payload = has_payload? zframe_new (rest, rest_size): NULL;
    zjq_msg_t *msg = NULL;
    zjq_recv_t rc = zjq_msg_decode (header, header_size, fields, fields_size, &payload, &msg);
    zframe_destroy (&payload);
    assert (msg);
    if (rc == ZJQ_RECV_OK) {
        s_read_fields (msg);
        s_parse_request (msg);
        (void) zjq_proto_command_name (zjq_msg_command (msg));
        s_round_trip (msg);
    }
    else
        assert (zjq_msg_error (msg) && zjq_msg_error_code (msg) < 0);
    zjq_msg_destroy (&msg);
    return 0;
}
