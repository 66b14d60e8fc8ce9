/*  zjq_proto.c: helpers of the zjq protocol above the message class:
    queue names, the socket monitor; and the
    self-test that takes every command of the table through the codec.
    See zjq_proto.h.                                                      */

#include "zjq_proto.h"
#include "zjq_error.h"
#include <assert.h>
#include <string.h>

bool
zjq_proto_queue_name_validn (const char *name, size_t len)
{
    if (!name || len < 1 || len > ZJQ_QUEUE_NAME_MAX)
        return false;
    for (size_t index = 0; index < len; index++) {
        char ch = name [index];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
           || ch == '_' || ch == '.' || ch == ':' || ch == '-'))
            return false;
    }
    return true;
}

bool
zjq_proto_queue_name_valid (const char *name)
{
    return name && zjq_proto_queue_name_validn (name, strlen (name));
}



//  --------------------------------------------------------------------------
//  Socket monitor

bool
zjq_monitor_recv (void *monitor, int *event, uint32_t *value)
{
    assert (monitor && event && value);
    zmq_msg_t part;
    zmq_msg_init (&part);
    if (zmq_msg_recv (&part, monitor, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&part);
        return false;
    }
    //  Frame 1: uint16 event, uint32 value; frame 2: the endpoint
    uint16_t number = 0;
    uint32_t data = 0;
    if (zmq_msg_size (&part) >= 6) {
        memcpy (&number, zmq_msg_data (&part), sizeof (number));
        memcpy (&data, (char *) zmq_msg_data (&part) + 2, sizeof (data));
    }
    bool more = zmq_msg_more (&part);
    zmq_msg_close (&part);
    for (int count = 0; more && count < 8; count++) {
        zmq_msg_init (&part);
        more = zmq_msg_recv (&part, monitor, ZMQ_DONTWAIT) != -1 && zmq_msg_more (&part);
        zmq_msg_close (&part);
    }
    *event = number;
    *value = data;
    return true;
}


//  --------------------------------------------------------------------------
//  Self test

//  Whether a decoded value has the type the table gives its field
static bool
s_test_type_ok (zjq_msg_t *msg, const zjq_msg_field_t *field, zjq_field_type_t type)
{
    int64_t number;
    bool flag;
    double real;
    switch (type) {
        case ZJQ_FIELD_INT:    return zjq_msg_field_int (field, &number);
        case ZJQ_FIELD_STR:    return zjq_msg_field_str (msg, field) != NULL;
        case ZJQ_FIELD_BOOL:   return zjq_msg_field_bool (field, &flag);
        case ZJQ_FIELD_NUMBER: return zjq_msg_field_double (field, &real);
        case ZJQ_FIELD_ARRAY:  return field->value->type == MSGPACK_OBJECT_ARRAY;
        case ZJQ_FIELD_MAP:    return field->value->type == MSGPACK_OBJECT_MAP;
    }
    return false;
}

//  A message of the command from role carrying every field of its row
static zjq_msg_t *
s_test_build (const zjq_command_t *command, int role)
{
    zjq_msg_t *msg = zjq_msg_new (role, command->code);
    const char *list [] = { "a" };
    const char empty_map [] = { (char) 0x80 };
    for (size_t index = 0; index < command->field_count; index++) {
        const zjq_field_t *field = &command->fields [index];
        switch (field->type) {
            case ZJQ_FIELD_INT:    zjq_msg_put_int (msg, field->name, 1); break;
            case ZJQ_FIELD_STR:    zjq_msg_put_str (msg, field->name, "a"); break;
            case ZJQ_FIELD_BOOL:   zjq_msg_put_bool (msg, field->name, true); break;
            case ZJQ_FIELD_NUMBER: zjq_msg_put_double (msg, field->name, 0.5); break;
            case ZJQ_FIELD_ARRAY:  zjq_msg_put_strlist (msg, field->name, list, 1); break;
            case ZJQ_FIELD_MAP:    zjq_msg_put_packed (msg, field->name, empty_map, 1); break;
        }
    }
    return msg;
}

//  Encode and decode, with a payload frame or not
static zjq_recv_t
s_test_roundtrip (zjq_msg_t **msg_p, bool with_payload)
{
    zchunk_t *header, *fields;
    assert (zjq_msg_encode (*msg_p, &header, &fields) == 0);
    zjq_msg_destroy (msg_p);
    zframe_t *payload = with_payload? zframe_new ("p", 1): NULL;
    zjq_recv_t rc = zjq_msg_decode (zchunk_data (header), zchunk_size (header),
                                    zchunk_data (fields), zchunk_size (fields),
                                    with_payload? &payload: NULL, msg_p);
    zframe_destroy (&payload);
    zchunk_destroy (&header);
    zchunk_destroy (&fields);
    return rc;
}

//  Every command as every role sends it: accepted from its senders with
//  its fields readable as the table types them, refused from the others,
//  malformed without its payload frame or with one it does not carry
static void
s_test_commands (void)
{
    size_t count = 0;
    const zjq_command_t *commands = zjq_proto_commands (&count);
    const char roles [] = { ZJQ_ROLE_CLIENT, ZJQ_ROLE_WORKER, ZJQ_ROLE_BROKER };
    for (size_t index = 0; index < count; index++) {
        const zjq_command_t *command = &commands [index];
        for (size_t role = 0; role < sizeof (roles); role++) {
            zjq_msg_t *msg = s_test_build (command, roles [role]);
            zjq_recv_t rc = s_test_roundtrip (&msg, command->payload);
            if (!zjq_proto_command_sent_by (command, roles [role])) {
                assert (rc == ZJQ_RECV_MALFORMED && zjq_msg_error_code (msg) == ZJQ_ECOMMAND);
                zjq_msg_destroy (&msg);
                continue;
            }
            assert (rc == ZJQ_RECV_OK && zjq_msg_command (msg) == command->code);
            assert (zjq_msg_field_count (msg) == command->field_count);
            size_t cursor = 0;
            zjq_msg_field_t field;
            while (zjq_msg_next_field (msg, &cursor, &field)) {
                const zjq_field_t *known = zjq_proto_command_field (command, field.key, field.key_size);
                assert (known && s_test_type_ok (msg, &field, known->type));
            }
            zjq_msg_destroy (&msg);
            msg = s_test_build (command, roles [role]);
            assert (s_test_roundtrip (&msg, !command->payload) == ZJQ_RECV_MALFORMED);
            assert (zjq_msg_error_code (msg) == ZJQ_EPROTO);
            zjq_msg_destroy (&msg);
        }
    }
}

void
zjq_proto_test (bool verbose)
{
    s_test_commands ();

    //  Queue names: the character set, 1 to ZJQ_QUEUE_NAME_MAX bytes
    const struct { const char *name; size_t len; bool valid; } names [] = {
        { "a", 1, true }, { "Resize_v2.high:eu-west-1", 24, true }, { "", 0, false },
        { "has space", 9, false }, { "slash/name", 10, false }, { "caf\xc3\xa9", 5, false },
        { "ab/", 2, true }, { "a\0b", 3, false }
    };
    for (size_t index = 0; index < sizeof (names) / sizeof (names [0]); index++)
        assert (zjq_proto_queue_name_validn (names [index].name, names [index].len)
                == names [index].valid);
    assert (!zjq_proto_queue_name_valid (NULL) && !zjq_proto_queue_name_validn (NULL, 1));
    char longest [ZJQ_QUEUE_NAME_MAX + 2];
    memset (longest, 'q', sizeof (longest));
    assert (zjq_proto_queue_name_validn (longest, ZJQ_QUEUE_NAME_MAX));
    assert (!zjq_proto_queue_name_validn (longest, ZJQ_QUEUE_NAME_MAX + 1));

    if (verbose)
        printf ("(protocol ok) ");
}
