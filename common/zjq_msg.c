/*  zjq_msg.c: the zjq message class. See zjq_msg.h and docs/protocol.md.

    Building: fields are packed as they are put (zjq_fields.h), into a
    msgpack buffer that starts with a map32 header whose count is patched
    in at send time, so nothing is packed twice; the buffer is copied into
    the frame sent and kept for the next message. Decoding: the fields
    frame stays alive as a zmq_msg_t and the decoded msgpack objects point
    into it; strings are copied (with a NUL) into the message's zone only
    when a getter asks for them. Payloads of 8 KiB and more are received
    without copying their bytes; shared payloads are sent without copying
    them. Messages are recycled through a per-thread pool (see below).     */

#include "zjq_msg_private.h"
#include "zjq_fields.h"
#include "zjq_wire.h"
#include "zjq_error.h"
#include <assert.h>
#include <string.h>
#include <pthread.h>

#define ZJQ_POOL_MAX       16     //  spare messages kept per thread
#define ZJQ_BUFFER_KEEP    (64 * 1024)  //  larger packing buffers are not kept
#define ZJQ_ZONE_CHUNK     2048   //  first chunk of the decoding zone

//  --------------------------------------------------------------------------
//  Constructor and destructor
//
//  Destroyed messages go back to a small per-thread pool with their packing
//  buffer and decoding zone, so a busy thread (the broker's loop) does not
//  allocate for the message object, the packed fields or the decoded
//  objects. A thread's pool is freed when the thread exits.

typedef struct {
    zjq_msg_t *head;            //  spare messages, reset
    size_t count;
} s_pool_t;

static __thread s_pool_t *s_pool;
static pthread_key_t s_pool_key;
static pthread_once_t s_pool_once = PTHREAD_ONCE_INIT;

static void
s_msg_free (zjq_msg_t *self)
{
    zframe_destroy (&self->payload);
    msgpack_sbuffer_destroy (&self->buffer);
    msgpack_zone_destroy (&self->zone);
    zmq_msg_close (&self->fields_part);
    if (self->has_batch_part)
        zmq_msg_close (&self->batch_part);
    free (self);
}

static void
s_pool_free (void *arg)
{
    s_pool_t *pool = (s_pool_t *) arg;
    while (pool->head) {
        zjq_msg_t *self = pool->head;
        pool->head = self->next_free;
        s_msg_free (self);
    }
    free (pool);
    s_pool = NULL;
}

static void
s_pool_key_create (void)
{
    pthread_key_create (&s_pool_key, s_pool_free);
}

zjq_msg_t *
zjq_msg_alloc (void)
{
    if (s_pool && s_pool->head) {
        zjq_msg_t *self = s_pool->head;
        s_pool->head = self->next_free;
        s_pool->count--;
        self->next_free = NULL;
        return self;
    }
    zjq_msg_t *self = (zjq_msg_t *) calloc (1, sizeof (zjq_msg_t));
    if (!self)
        return NULL;
    msgpack_sbuffer_init (&self->buffer);
    zmq_msg_init (&self->fields_part);
    if (!msgpack_zone_init (&self->zone, ZJQ_ZONE_CHUNK)) {
        free (self);
        return NULL;
    }
    return self;
}

//  Reset a message to its just-allocated state and keep it for reuse, or
//  free it if the pool is full (or cannot be made).
static void
s_msg_recycle (zjq_msg_t *self)
{
    if (!s_pool) {
        pthread_once (&s_pool_once, s_pool_key_create);
        s_pool = (s_pool_t *) calloc (1, sizeof (s_pool_t));
        if (s_pool)
            pthread_setspecific (s_pool_key, s_pool);
    }
    if (!s_pool || s_pool->count >= ZJQ_POOL_MAX) {
        s_msg_free (self);
        return;
    }
    zframe_destroy (&self->payload);
    self->payload_shared = NULL;
    self->payload_borrowed = false;
    if (self->has_batch_part) {
        zmq_msg_close (&self->batch_part);
        self->has_batch_part = false;
    }
    self->has_routing_id = false;
    self->routing_id_size = 0;
    self->user_id [0] = 0;
    if (self->buffer.alloc > ZJQ_BUFFER_KEEP) {
        msgpack_sbuffer_destroy (&self->buffer);
        msgpack_sbuffer_init (&self->buffer);
    }
    self->buffer.size = 0;
    self->put_count = 0;
    if (self->map)
        memset (self->strings, 0, self->map->size * sizeof (char *));
    self->map = NULL;
    self->decoded = false;
    msgpack_zone_clear (&self->zone);
    zmq_msg_close (&self->fields_part);
    zmq_msg_init (&self->fields_part);
    self->role = self->command = self->version = 0;
    self->error_code = 0;
    self->error [0] = 0;
    self->next_free = s_pool->head;
    s_pool->head = self;
    s_pool->count++;
}

zjq_msg_t *
zjq_msg_new (int role, int command)
{
    zjq_msg_t *self = zjq_msg_alloc ();
    if (!self)
        return NULL;
    self->role = role;
    self->command = command;
    self->version = ZJQ_PROTO_VERSION;
    zjq_fields_begin (&self->buffer);       //  the count is patched in when sent
    return self;
}

void
zjq_msg_destroy (zjq_msg_t **self_p)
{
    assert (self_p);
    zjq_msg_t *self = *self_p;
    if (!self)
        return;
    s_msg_recycle (self);
    *self_p = NULL;
}

int
zjq_msg_role (zjq_msg_t *self)
{
    assert (self);
    return self->role;
}

int
zjq_msg_command (zjq_msg_t *self)
{
    assert (self);
    return self->command;
}

int
zjq_msg_version (zjq_msg_t *self)
{
    assert (self);
    return self->version;
}

const byte *
zjq_msg_routing_id (zjq_msg_t *self, size_t *size_p)
{
    assert (self);
    assert (size_p);
    *size_p = self->routing_id_size;
    return self->has_routing_id? self->routing_id: NULL;
}

const char *
zjq_msg_user_id (zjq_msg_t *self)
{
    assert (self);
    return *self->user_id? self->user_id: NULL;
}

void
zjq_msg_set_routing_id (zjq_msg_t *self, const void *data, size_t size)
{
    assert (self);
    assert (data || size == 0);
    if (size > ZJQ_ROUTING_ID_MAX)
        size = ZJQ_ROUTING_ID_MAX;      //  libzmq never makes one this long
    if (size)
        memcpy (self->routing_id, data, size);
    self->routing_id_size = size;
    self->has_routing_id = true;
}


//  --------------------------------------------------------------------------
//  Building fields (packed by zjq_fields.h as they are put)

void
zjq_msg_put_strn (zjq_msg_t *self, const char *key, const char *value, size_t len)
{
    assert (self);
    self->put_count++;
    zjq_fields_put_strn (&self->buffer, key, value, len);
}

void
zjq_msg_put_str (zjq_msg_t *self, const char *key, const char *value)
{
    assert (value);
    zjq_msg_put_strn (self, key, value, strlen (value));
}

void
zjq_msg_put_int (zjq_msg_t *self, const char *key, int64_t value)
{
    assert (self);
    self->put_count++;
    zjq_fields_put_int (&self->buffer, key, value);
}

void
zjq_msg_put_bool (zjq_msg_t *self, const char *key, bool value)
{
    assert (self);
    self->put_count++;
    zjq_fields_put_bool (&self->buffer, key, value);
}

void
zjq_msg_put_double (zjq_msg_t *self, const char *key, double value)
{
    assert (self);
    self->put_count++;
    zjq_fields_put_double (&self->buffer, key, value);
}

void
zjq_msg_put_strlist (zjq_msg_t *self, const char *key, const char **values, size_t count)
{
    assert (self);
    self->put_count++;
    zjq_fields_put_strlist (&self->buffer, key, values, count);
}

void
zjq_msg_put_packed (zjq_msg_t *self, const char *key, const void *data, size_t size)
{
    assert (self);
    self->put_count++;
    zjq_fields_put_packed (&self->buffer, key, data, size);
}

//  --------------------------------------------------------------------------
//  Payload

void
zjq_msg_set_payload (zjq_msg_t *self, zframe_t **frame_p)
{
    assert (self);
    assert (frame_p);
    zframe_destroy (&self->payload);
    self->payload_shared = NULL;
    self->payload_borrowed = false;
    self->payload = *frame_p;
    *frame_p = NULL;
}

void
zjq_msg_set_payload_mem (zjq_msg_t *self, const void *data, size_t size)
{
    assert (self);
    zframe_t *frame = zframe_new (data, size);
    zjq_msg_set_payload (self, &frame);
}

void
zjq_msg_set_payload_shared (zjq_msg_t *self, zframe_t *frame)
{
    assert (self);
    assert (frame);
    zframe_destroy (&self->payload);
    self->payload_borrowed = false;
    self->payload_shared = frame;
}

void
zjq_msg_set_payload_borrowed (zjq_msg_t *self, const void *data, size_t size)
{
    assert (self);
    assert (data || size == 0);
    zframe_destroy (&self->payload);
    self->payload_shared = NULL;
    self->payload_bytes = (const byte *) data;
    self->payload_size = size;
    self->payload_borrowed = true;
}

int
zjq_msg_own_payload (zjq_msg_t *self)
{
    assert (self);
    if (self->payload_borrowed) {
        zjq_msg_payload_materialize (self);
        return self->payload? 0: -1;
    }
    if (!self->payload_shared)
        return 0;
    self->payload = zframe_dup (self->payload_shared);
    self->payload_shared = NULL;
    return self->payload? 0: -1;
}

//  A message that came in a batch has its payload bytes in the batch's
//  records: copy them into a frame of its own when the frame is asked for.
void
zjq_msg_payload_materialize (zjq_msg_t *self)
{
    if (!self->payload_borrowed)
        return;
    self->payload_borrowed = false;
    self->payload = zframe_new (
        self->payload_bytes, self->payload_size);
}

zframe_t *
zjq_msg_payload (zjq_msg_t *self)
{
    assert (self);
    zjq_msg_payload_materialize (self);
    return self->payload? self->payload: self->payload_shared;
}

const void *
zjq_msg_payload_data (zjq_msg_t *self, size_t *size_p)
{
    assert (self);
    assert (size_p);
    if (self->payload_borrowed) {
        *size_p = self->payload_size;
        return self->payload_bytes;
    }
    zframe_t *frame = self->payload? self->payload: self->payload_shared;
    *size_p = frame? zframe_size (frame): 0;
    return frame? zframe_data (frame): NULL;
}

size_t
zjq_msg_size (zjq_msg_t *self)
{
    size_t payload;
    zjq_msg_payload_data (self, &payload);
    return payload + (self->decoded? self->fields_size: self->buffer.size);
}

zframe_t *
zjq_msg_take_payload (zjq_msg_t *self)
{
    assert (self);
    zjq_msg_payload_materialize (self);
    if (self->payload_shared)
        zjq_msg_own_payload (self);
    zframe_t *frame = self->payload;
    self->payload = NULL;
    return frame;
}


const char *
zjq_msg_error (zjq_msg_t *self)
{
    assert (self);
    return self->error_code? self->error: NULL;
}

int
zjq_msg_error_code (zjq_msg_t *self)
{
    assert (self);
    return self->error_code;
}

//  --------------------------------------------------------------------------
//  Reading fields of a received message

static int
s_find (zjq_msg_t *self, const char *key)
{
    assert (self);
    assert (key);
    if (!self->decoded)
        return -1;
    size_t len = strlen (key);
    for (uint32_t index = 0; index < self->map->size; index++) {
        const msgpack_object_str *name = &self->map->ptr [index].key.via.str;
        if (name->size == len && memcmp (name->ptr, key, len) == 0)
            return (int) index;
    }
    return -1;
}

const msgpack_object *
zjq_msg_get (zjq_msg_t *self, const char *key)
{
    int index = s_find (self, key);
    return index < 0? NULL: &self->map->ptr [index].val;
}

bool
zjq_msg_has (zjq_msg_t *self, const char *key)
{
    return s_find (self, key) >= 0;
}

const msgpack_object *
zjq_msg_fields (zjq_msg_t *self)
{
    assert (self);
    return self->decoded? &self->root: NULL;
}

size_t
zjq_msg_field_count (zjq_msg_t *self)
{
    assert (self);
    return self->decoded? self->map->size: self->put_count;
}

//  The value of field index as a NUL-terminated string copied into the
//  zone once, or NULL if it is not a string or holds a NUL byte
static inline const char *
s_string_at (zjq_msg_t *self, size_t index)
{
    const msgpack_object *value = &self->map->ptr [index].val;
    if (value->type != MSGPACK_OBJECT_STR)
        return NULL;
    if (memchr (value->via.str.ptr, 0, value->via.str.size))
        return NULL;
    if (!self->strings [index]) {
        char *copy = (char *) msgpack_zone_malloc (&self->zone, value->via.str.size + 1);
        if (!copy)
            return NULL;
        memcpy (copy, value->via.str.ptr, value->via.str.size);
        copy [value->via.str.size] = 0;
        self->strings [index] = copy;
    }
    return self->strings [index];
}

//  A msgpack integer that fits an int64_t
static bool
s_value_int (const msgpack_object *object, int64_t *value)
{
    if (!object)
        return false;
    if (object->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (object->via.u64 > (uint64_t) INT64_MAX)
            return false;
        *value = (int64_t) object->via.u64;
        return true;
    }
    if (object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *value = object->via.i64;
        return true;
    }
    return false;
}

static bool
s_value_bool (const msgpack_object *object, bool *value)
{
    if (!object || object->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    *value = object->via.boolean;
    return true;
}

//  A msgpack float or integer
static bool
s_value_double (const msgpack_object *object, double *value)
{
    if (!object)
        return false;
    switch (object->type) {
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            *value = object->via.f64;
            return true;
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            *value = (double) object->via.u64;
            return true;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            *value = (double) object->via.i64;
            return true;
        default:
            return false;
    }
}

const char *
zjq_msg_get_str (zjq_msg_t *self, const char *key)
{
    int index = s_find (self, key);
    return index < 0? NULL: s_string_at (self, (size_t) index);
}

bool
zjq_msg_get_int (zjq_msg_t *self, const char *key, int64_t *value)
{
    assert (value);
    return s_value_int (zjq_msg_get (self, key), value);
}

bool
zjq_msg_get_bool (zjq_msg_t *self, const char *key, bool *value)
{
    assert (value);
    return s_value_bool (zjq_msg_get (self, key), value);
}

bool
zjq_msg_get_double (zjq_msg_t *self, const char *key, double *value)
{
    assert (value);
    return s_value_double (zjq_msg_get (self, key), value);
}


//  --------------------------------------------------------------------------
//  Walking the fields once

bool
zjq_msg_next_field (zjq_msg_t *self, size_t *cursor, zjq_msg_field_t *field)
{
    assert (self);
    assert (cursor && field);
    if (!self->decoded || *cursor >= self->map->size)
        return false;
    const msgpack_object_kv *entry = &self->map->ptr [*cursor];
    field->key = entry->key.via.str.ptr;
    field->key_size = entry->key.via.str.size;
    field->value = &entry->val;
    field->index = (*cursor)++;
    return true;
}

bool
zjq_msg_field_is (const zjq_msg_field_t *field, const char *name)
{
    assert (field && name);
    return strlen (name) == field->key_size && memcmp (name, field->key, field->key_size) == 0;
}

const char *
zjq_msg_field_str (zjq_msg_t *self, const zjq_msg_field_t *field)
{
    assert (self && field);
    assert (self->decoded && field->index < self->map->size);
    return s_string_at (self, field->index);
}

bool
zjq_msg_field_int (const zjq_msg_field_t *field, int64_t *value)
{
    assert (field && value);
    return s_value_int (field->value, value);
}

bool
zjq_msg_field_bool (const zjq_msg_field_t *field, bool *value)
{
    assert (field && value);
    return s_value_bool (field->value, value);
}

bool
zjq_msg_field_double (const zjq_msg_field_t *field, double *value)
{
    assert (field && value);
    return s_value_double (field->value, value);
}


//  --------------------------------------------------------------------------
//  Self test

static zjq_recv_t
s_roundtrip (zjq_msg_t **msg_p)
{
    zchunk_t *header, *fields;
    int rc = zjq_msg_encode (*msg_p, &header, &fields);
    assert (rc == 0);
    zframe_t *payload = zjq_msg_take_payload (*msg_p);
    bool with_payload = zjq_proto_command_has_payload (zjq_msg_command (*msg_p));
    if (with_payload && !payload)
        payload = zframe_new_empty ();
    zjq_msg_destroy (msg_p);
    zjq_recv_t result = zjq_msg_decode (zchunk_data (header), zchunk_size (header),
                                        zchunk_data (fields), zchunk_size (fields),
                                        with_payload? &payload: NULL, msg_p);
    zframe_destroy (&payload);
    zchunk_destroy (&header);
    zchunk_destroy (&fields);
    return result;
}

static zjq_recv_t
s_decode_raw (const void *header, size_t header_size, const char *fields, size_t fields_size,
              bool with_payload, zjq_msg_t **msg_p)
{
    zframe_t *payload = with_payload? zframe_new ("x", 1): NULL;
    zjq_recv_t result = zjq_msg_decode (header, header_size, fields, fields_size,
                                        with_payload? &payload: NULL, msg_p);
    zframe_destroy (&payload);
    return result;
}

void
zjq_msg_test (bool verbose)
{
    //  Round trip of every field type and a payload
    zjq_msg_t *msg = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_SUBMIT);
    zjq_msg_put_int (msg, "req", 42);
    zjq_msg_put_str (msg, "queue", "hash");
    zjq_msg_put_int (msg, "priority", -7);
    zjq_msg_put_bool (msg, "notify", true);
    zjq_msg_put_double (msg, "progress", 0.25);
    const char *queues [] = { "a", "bb" };
    zjq_msg_put_strlist (msg, "queues", queues, 2);
    //  A nested map, packed by the caller
    msgpack_sbuffer nested;
    msgpack_sbuffer_init (&nested);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &nested, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 1);
    msgpack_pack_str_with_body (&packer, "n", 1);
    msgpack_pack_int (&packer, 5);
    zjq_msg_put_packed (msg, "stats", nested.data, nested.size);
    msgpack_sbuffer_destroy (&nested);
    zjq_msg_put_strn (msg, "nul", "a\0b", 3);
    zjq_msg_set_payload_mem (msg, "\0\1\2", 3);
    assert (zjq_msg_field_count (msg) == 8);

    assert (s_roundtrip (&msg) == ZJQ_RECV_OK);
    assert (zjq_msg_role (msg) == ZJQ_ROLE_CLIENT);
    assert (zjq_msg_command (msg) == ZJQ_CMD_SUBMIT);
    assert (zjq_msg_field_count (msg) == 8);
    int64_t number = 0;
    assert (zjq_msg_get_int (msg, "req", &number) && number == 42);
    assert (zjq_msg_get_int (msg, "priority", &number) && number == -7);
    assert (streq (zjq_msg_get_str (msg, "queue"), "hash"));
    assert (zjq_msg_get_str (msg, "queue") == zjq_msg_get_str (msg, "queue"));
    bool flag = false;
    assert (zjq_msg_get_bool (msg, "notify", &flag) && flag);
    double fraction = 0;
    assert (zjq_msg_get_double (msg, "progress", &fraction) && fraction == 0.25);
    assert (zjq_msg_get_double (msg, "req", &fraction) && fraction == 42);
    const msgpack_object *list = zjq_msg_get (msg, "queues");
    assert (list && list->type == MSGPACK_OBJECT_ARRAY && list->via.array.size == 2);
    const msgpack_object *stats = zjq_msg_get (msg, "stats");
    assert (stats && stats->type == MSGPACK_OBJECT_MAP && stats->via.map.size == 1);
    //  Wrong types and absent keys read as absent
    assert (zjq_msg_get_str (msg, "req") == NULL);
    assert (!zjq_msg_get_int (msg, "queue", &number));
    assert (!zjq_msg_get_bool (msg, "missing", &flag));
    assert (zjq_msg_get_str (msg, "nul") == NULL);      //  embedded NUL
    assert (zjq_msg_has (msg, "nul") && !zjq_msg_has (msg, "absent"));
    assert (zjq_msg_payload (msg) && zframe_size (zjq_msg_payload (msg)) == 3);
    assert (memcmp (zframe_data (zjq_msg_payload (msg)), "\0\1\2", 3) == 0);
    zjq_msg_destroy (&msg);
    zjq_msg_destroy (&msg);     //  idempotent

    //  A command without payload and without fields
    msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_HEARTBEAT);
    assert (s_roundtrip (&msg) == ZJQ_RECV_OK);
    assert (zjq_msg_field_count (msg) == 0 && zjq_msg_payload (msg) == NULL);
    zjq_msg_destroy (&msg);

    //  Malformed input is reported, never trusted
    const char empty_map [] = { (char) 0x80 };
    const unsigned char ping [] = { 'Z', 'J', 'Q', 1, 'C', ZJQ_CMD_PING };
    assert (s_decode_raw (ping, sizeof (ping), empty_map, 1, false, &msg) == ZJQ_RECV_OK);
    zjq_msg_destroy (&msg);

    assert (s_decode_raw ("ZJQ", 3, empty_map, 1, false, &msg) == ZJQ_RECV_MALFORMED);
    assert (zjq_msg_error_code (msg) == ZJQ_EPROTO && zjq_msg_error (msg));
    zjq_msg_destroy (&msg);

    const unsigned char bad_magic [] = { 'X', 'J', 'Q', 1, 'C', ZJQ_CMD_PING };
    assert (s_decode_raw (bad_magic, 6, empty_map, 1, false, &msg) == ZJQ_RECV_MALFORMED);
    zjq_msg_destroy (&msg);

    const unsigned char version2 [] = { 'Z', 'J', 'Q', 2, 'C', ZJQ_CMD_PING };
    assert (s_decode_raw (version2, 6, empty_map, 1, false, &msg) == ZJQ_RECV_MALFORMED);
    assert (zjq_msg_error_code (msg) == ZJQ_EVERSION);
    assert (zjq_msg_role (msg) == ZJQ_ROLE_CLIENT);
    zjq_msg_destroy (&msg);

    const unsigned char unknown [] = { 'Z', 'J', 'Q', 1, 'C', 0x7e };
    assert (s_decode_raw (unknown, 6, empty_map, 1, false, &msg) == ZJQ_RECV_MALFORMED);
    assert (zjq_msg_error_code (msg) == ZJQ_ECOMMAND);
    zjq_msg_destroy (&msg);

    const unsigned char wrong_role [] = { 'Z', 'J', 'Q', 1, 'C', ZJQ_CMD_READY };
    assert (s_decode_raw (wrong_role, 6, empty_map, 1, false, &msg) == ZJQ_RECV_MALFORMED);
    assert (zjq_msg_error_code (msg) == ZJQ_ECOMMAND);
    zjq_msg_destroy (&msg);

    assert (s_decode_raw (ping, 6, NULL, 0, false, &msg) == ZJQ_RECV_MALFORMED);
    zjq_msg_destroy (&msg);

    const char not_a_map [] = { (char) 0x93, 1, 2, 3 };
    assert (s_decode_raw (ping, 6, not_a_map, sizeof (not_a_map), false, &msg) == ZJQ_RECV_MALFORMED);
    zjq_msg_destroy (&msg);

    const char truncated [] = { (char) 0x81, (char) 0xa3, 'r', 'e' };
    assert (s_decode_raw (ping, 6, truncated, sizeof (truncated), false, &msg) == ZJQ_RECV_MALFORMED);
    zjq_msg_destroy (&msg);

    const char trailing [] = { (char) 0x80, 0x01 };
    assert (s_decode_raw (ping, 6, trailing, sizeof (trailing), false, &msg) == ZJQ_RECV_MALFORMED);
    zjq_msg_destroy (&msg);

    const char int_key [] = { (char) 0x81, 0x01, 0x02 };
    assert (s_decode_raw (ping, 6, int_key, sizeof (int_key), false, &msg) == ZJQ_RECV_MALFORMED);
    zjq_msg_destroy (&msg);

    const unsigned char submit [] = { 'Z', 'J', 'Q', 1, 'C', ZJQ_CMD_SUBMIT };
    assert (s_decode_raw (submit, 6, empty_map, 1, false, &msg) == ZJQ_RECV_MALFORMED);
    zjq_msg_destroy (&msg);
    assert (s_decode_raw (ping, 6, empty_map, 1, true, &msg) == ZJQ_RECV_MALFORMED);
    zjq_msg_destroy (&msg);

    //  (the fields decoder's own cases are in zjq_fields_test)
    const char huge_map [] = { (char) 0xdf, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff };
    assert (s_decode_raw (ping, 6, huge_map, sizeof (huge_map), false, &msg) == ZJQ_RECV_MALFORMED);
    assert (zjq_msg_error_code (msg) == ZJQ_EPROTO && strstr (zjq_msg_error (msg), "msgpack"));
    zjq_msg_destroy (&msg);
    char *big_fields = (char *) calloc (1, ZJQ_MAX_FIELDS_SIZE + 1);
    assert (big_fields);
    big_fields [0] = (char) 0x80;
    assert (s_decode_raw (ping, 6, big_fields, ZJQ_MAX_FIELDS_SIZE + 1, false, &msg) == ZJQ_RECV_MALFORMED);
    assert (strstr (zjq_msg_error (msg), "64 KiB"));
    zjq_msg_destroy (&msg);
    free (big_fields);

    //  Over real sockets: DEALER to ROUTER and back, with routing id
    zsock_t *router = zsock_new_router ("inproc://zjq-proto-test");
    zsock_t *dealer = zsock_new_dealer ("inproc://zjq-proto-test");
    assert (router && dealer);
    msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_WORK_RESULT);
    zjq_msg_put_str (msg, "id", "abc-1");
    zjq_msg_set_payload_mem (msg, "result", 6);
    assert (zjq_msg_send (&msg, dealer, false) == 0);
    assert (msg == NULL);
    assert (zjq_msg_recv (router, true, false, &msg) == ZJQ_RECV_OK);
    size_t rid_size = 0;
    const byte *rid = zjq_msg_routing_id (msg, &rid_size);
    assert (rid && rid_size == 5);
    assert (streq (zjq_msg_get_str (msg, "id"), "abc-1"));
    assert (zframe_streq (zjq_msg_payload (msg), "result"));
    zjq_msg_t *reply = zjq_msg_new (ZJQ_ROLE_BROKER, ZJQ_CMD_JOB_CANCEL);
    zjq_msg_set_routing_id (reply, rid, rid_size);
    zjq_msg_put_str (reply, "id", "abc-1");
    assert (zjq_msg_send (&reply, router, true) == 0);
    zjq_msg_destroy (&msg);
    assert (zjq_msg_recv (dealer, false, false, &msg) == ZJQ_RECV_OK);
    assert (zjq_msg_command (msg) == ZJQ_CMD_JOB_CANCEL);
    zjq_msg_destroy (&msg);
    //  A shared payload is sent without taking it; owning it copies it
    zframe_t *shared = zframe_new ("shared", 6);
    msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_WORK_RESULT);
    zjq_msg_set_payload_shared (msg, shared);
    assert (zjq_msg_payload (msg) == shared);
    assert (zjq_msg_send (&msg, dealer, false) == 0);
    assert (zframe_streq (shared, "shared"));
    msg = zjq_msg_new (ZJQ_ROLE_WORKER, ZJQ_CMD_WORK_RESULT);
    zjq_msg_set_payload_shared (msg, shared);
    assert (zjq_msg_own_payload (msg) == 0);
    zframe_destroy (&shared);
    assert (zjq_msg_send (&msg, dealer, false) == 0);
    for (int round = 0; round < 2; round++) {
        assert (zjq_msg_recv (router, true, false, &msg) == ZJQ_RECV_OK);
        assert (zframe_streq (zjq_msg_payload (msg), "shared"));
        zjq_msg_destroy (&msg);
    }
    //  A payload command sent without a payload gets an empty frame
    msg = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_SUBMIT);
    assert (zjq_msg_send (&msg, dealer, false) == 0);
    assert (zjq_msg_recv (router, true, false, &msg) == ZJQ_RECV_OK);
    assert (zjq_msg_payload (msg) && zframe_size (zjq_msg_payload (msg)) == 0);
    zjq_msg_destroy (&msg);
    //  Extra frames are drained and reported
    zstr_sendm (dealer, "ZJQ\001C\006");
    zstr_sendm (dealer, "\x80");
    zstr_sendm (dealer, "x");
    zstr_sendm (dealer, "y");
    zstr_send (dealer, "z");
    assert (zjq_msg_recv (router, true, false, &msg) == ZJQ_RECV_MALFORMED);
    assert (zjq_msg_routing_id (msg, &rid_size));
    zjq_msg_destroy (&msg);
    //  Nothing left over, nothing to read
    assert (zjq_msg_recv (router, true, true, &msg) == ZJQ_RECV_INTERRUPTED);
    assert (msg == NULL);
    zsock_destroy (&dealer);
    zsock_destroy (&router);

    //  One pass over the fields, read as the getters read them
    msg = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_SUBMIT);
    size_t cursor = 0;
    zjq_msg_field_t field;
    assert (!zjq_msg_next_field (msg, &cursor, &field));     //  being built
    zjq_msg_put_int (msg, "req", 9);
    zjq_msg_put_str (msg, "queue", "q1");
    zjq_msg_put_bool (msg, "notify", true);
    zjq_msg_put_double (msg, "progress", 0.5);
    zjq_msg_put_strn (msg, "key", "a\0b", 3);
    assert (s_roundtrip (&msg) == ZJQ_RECV_OK);
    size_t seen = 0;
    while (zjq_msg_next_field (msg, &cursor, &field)) {
        assert (field.index == seen++);
        int64_t number = 0;
        bool flag = false;
        double fraction = 0;
        if (zjq_msg_field_is (&field, "req"))
            assert (zjq_msg_field_int (&field, &number) && number == 9
                 && zjq_msg_field_double (&field, &fraction) && fraction == 9);
        else
        if (zjq_msg_field_is (&field, "queue")) {
            assert (streq (zjq_msg_field_str (msg, &field), "q1"));
            assert (zjq_msg_field_str (msg, &field) == zjq_msg_get_str (msg, "queue"));
            assert (!zjq_msg_field_int (&field, &number) && !zjq_msg_field_bool (&field, &flag));
        }
        else
        if (zjq_msg_field_is (&field, "notify"))
            assert (zjq_msg_field_bool (&field, &flag) && flag);
        else
        if (zjq_msg_field_is (&field, "progress"))
            assert (zjq_msg_field_double (&field, &fraction) && fraction == 0.5
                 && !zjq_msg_field_int (&field, &number));
        else {
            assert (zjq_msg_field_is (&field, "key") && !zjq_msg_field_is (&field, "ke"));
            assert (!zjq_msg_field_is (&field, "key2"));
            assert (zjq_msg_field_str (msg, &field) == NULL);   //  embedded NUL
            assert (field.value == zjq_msg_get (msg, "key"));
        }
    }
    assert (seen == 5 && !zjq_msg_next_field (msg, &cursor, &field));
    zjq_msg_destroy (&msg);
    if (verbose)
        printf ("(message ok) ");
}
