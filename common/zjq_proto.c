/*  zjq_proto.c: the zjq wire protocol codec. See zjq_proto.h and
    docs/protocol.md.

    Building: fields are packed as they are put, into a msgpack buffer that
    starts with a map32 header whose count is patched in at send time, so
    nothing is packed twice; the buffer is copied into the frame sent and
    kept for the next message. Decoding: the fields frame stays alive as a
    zmq_msg_t and the unpacked msgpack objects point into it; strings are
    copied (with a NUL) into the message's zone only when a getter asks for
    them. Payloads of 8 KiB and more are received without copying their
    bytes; shared payloads are sent without copying them.
    Messages are recycled through a per-thread pool (see below).                                       */

#include "zjq_proto.h"
#include "zjq_error.h"
#include <assert.h>
#include <string.h>
#include <pthread.h>

#define ZJQ_ROUTING_ID_MAX 256    //  libzmq routing ids are 1..255 bytes
#define ZJQ_POOL_MAX       16     //  spare messages kept per thread
#define ZJQ_BUFFER_KEEP    (64 * 1024)  //  larger packing buffers are not kept
#define ZJQ_ZONE_CHUNK     2048   //  first chunk of the decoding zone
//  Received payloads smaller than this are copied into a frame of their own:
//  libzmq receives them zero-copy into a shared 8 KiB batch buffer, which a
//  payload kept for long (a queued job) would pin whole. Larger messages
//  get an allocation of their own from libzmq, and are kept without a copy.
#define ZJQ_PAYLOAD_COPY_MAX 8192

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
    msgpack_packer packer;      //  packs into buffer
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

#define ZJQ_MAP32_HEADER 5

static const struct {
    int command;
    const char *name;
    const char *senders;        //  roles that may send it
    bool payload;
} s_commands [] = {
    { ZJQ_CMD_SUBMIT,      "SUBMIT",      "C",  true },
    { ZJQ_CMD_STATUS,      "STATUS",      "C",  false },
    { ZJQ_CMD_RESULT,      "RESULT",      "C",  false },
    { ZJQ_CMD_CANCEL,      "CANCEL",      "C",  false },
    { ZJQ_CMD_STATS,       "STATS",       "C",  false },
    { ZJQ_CMD_PING,        "PING",        "C",  false },
    { ZJQ_CMD_RELOAD,      "RELOAD",      "C",  false },
    { ZJQ_CMD_READY,       "READY",       "W",  false },
    { ZJQ_CMD_HEARTBEAT,   "HEARTBEAT",   "WB", false },
    { ZJQ_CMD_WORK_RESULT, "WORK_RESULT", "W",  true },
    { ZJQ_CMD_PROGRESS,    "PROGRESS",    "W",  false },
    { ZJQ_CMD_DISCONNECT,  "DISCONNECT",  "WB", false },
    { ZJQ_CMD_ACCEPTED,    "ACCEPTED",    "B",  false },
    { ZJQ_CMD_REJECTED,    "REJECTED",    "B",  false },
    { ZJQ_CMD_JOB_STATUS,  "JOB_STATUS",  "B",  false },
    { ZJQ_CMD_JOB_RESULT,  "JOB_RESULT",  "B",  true },
    { ZJQ_CMD_DONE,        "DONE",        "B",  true },
    { ZJQ_CMD_STATS_REPLY, "STATS_REPLY", "B",  false },
    { ZJQ_CMD_PONG,        "PONG",        "B",  false },
    { ZJQ_CMD_RELOADED,    "RELOADED",    "B",  false },
    { ZJQ_CMD_ERROR,       "ERROR",       "B",  false },
    { ZJQ_CMD_JOB,         "JOB",         "B",  true },
    { ZJQ_CMD_JOB_CANCEL,  "JOB_CANCEL",  "B",  false },
    { ZJQ_CMD_PAUSE,       "PAUSE",       "C",  false },
    { ZJQ_CMD_RESUME,      "RESUME",      "C",  false },
    { ZJQ_CMD_DRAIN,       "DRAIN",       "C",  false },
    { ZJQ_CMD_DEAD_LETTERS, "DEAD_LETTERS", "C", false },
    { ZJQ_CMD_RETRY,       "RETRY",       "C",  false },
    { ZJQ_CMD_QUEUE_STATE, "QUEUE_STATE", "B",  false },
    { ZJQ_CMD_DRAIN_STATE, "DRAIN_STATE", "B",  false },
    { ZJQ_CMD_DEAD_LETTER_LIST, "DEAD_LETTER_LIST", "B", false },
    { ZJQ_CMD_RETRIED,     "RETRIED",     "B",  false },
    { ZJQ_CMD_PROGRESS_UPDATE, "PROGRESS_UPDATE", "B", false },
    { ZJQ_CMD_BATCH,       "BATCH",       "CWB", true },
};
#define ZJQ_COMMAND_COUNT (sizeof (s_commands) / sizeof (s_commands [0]))

//  Command code -> index in s_commands + 1 (0: unknown), in step with it
static const unsigned char s_command_slot [256] = {
    [ZJQ_CMD_SUBMIT] = 1, [ZJQ_CMD_STATUS] = 2, [ZJQ_CMD_RESULT] = 3, [ZJQ_CMD_CANCEL] = 4,
    [ZJQ_CMD_STATS] = 5, [ZJQ_CMD_PING] = 6, [ZJQ_CMD_RELOAD] = 7, [ZJQ_CMD_READY] = 8,
    [ZJQ_CMD_HEARTBEAT] = 9, [ZJQ_CMD_WORK_RESULT] = 10, [ZJQ_CMD_PROGRESS] = 11,
    [ZJQ_CMD_DISCONNECT] = 12, [ZJQ_CMD_ACCEPTED] = 13, [ZJQ_CMD_REJECTED] = 14,
    [ZJQ_CMD_JOB_STATUS] = 15, [ZJQ_CMD_JOB_RESULT] = 16, [ZJQ_CMD_DONE] = 17,
    [ZJQ_CMD_STATS_REPLY] = 18, [ZJQ_CMD_PONG] = 19, [ZJQ_CMD_RELOADED] = 20,
    [ZJQ_CMD_ERROR] = 21, [ZJQ_CMD_JOB] = 22, [ZJQ_CMD_JOB_CANCEL] = 23,
    [ZJQ_CMD_PAUSE] = 24, [ZJQ_CMD_RESUME] = 25, [ZJQ_CMD_DRAIN] = 26,
    [ZJQ_CMD_DEAD_LETTERS] = 27, [ZJQ_CMD_RETRY] = 28, [ZJQ_CMD_QUEUE_STATE] = 29,
    [ZJQ_CMD_DRAIN_STATE] = 30, [ZJQ_CMD_DEAD_LETTER_LIST] = 31, [ZJQ_CMD_RETRIED] = 32,
    [ZJQ_CMD_PROGRESS_UPDATE] = 33, [ZJQ_CMD_BATCH] = 34
};

static int
s_command_index (int command)
{
    if (command < 0 || command > 255 || !s_command_slot [command])
        return -1;
    return s_command_slot [command] - 1;
}

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

const char *
zjq_proto_command_name (int command)
{
    int index = s_command_index (command);
    return index < 0? NULL: s_commands [index].name;
}

bool
zjq_proto_command_has_payload (int command)
{
    int index = s_command_index (command);
    return index >= 0 && s_commands [index].payload;
}


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

static zjq_msg_t *
s_msg_alloc (void)
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
    msgpack_packer_init (&self->packer, &self->buffer, msgpack_sbuffer_write);
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
    zjq_msg_t *self = s_msg_alloc ();
    if (!self)
        return NULL;
    self->role = role;
    self->command = command;
    self->version = ZJQ_PROTO_VERSION;
    //  map32 header; the count is patched in by s_fields_finish
    static const char map32 [ZJQ_MAP32_HEADER] = { (char) 0xdf, 0, 0, 0, 0 };
    msgpack_sbuffer_write (&self->buffer, map32, sizeof (map32));
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
//  Building fields

//  Make room for size more bytes in the packing buffer and return where
//  they go. Out of memory is fatal here as it is in msgpack-c's sbuffer.
static unsigned char *
s_reserve (zjq_msg_t *self, size_t size)
{
    msgpack_sbuffer *buffer = &self->buffer;
    if (buffer->alloc - buffer->size < size) {
        size_t alloc = buffer->alloc? buffer->alloc * 2: 256;
        while (alloc < buffer->size + size)
            alloc *= 2;
        char *data = (char *) realloc (buffer->data, alloc);
        assert (data);
        buffer->data = data;
        buffer->alloc = alloc;
    }
    return (unsigned char *) buffer->data + buffer->size;
}

static void
s_put_be (unsigned char *at, uint64_t value, size_t width)
{
    for (size_t index = width; index-- > 0; value >>= 8)
        at [index] = (unsigned char) value;
}

//  Pack a str header and body (room reserved by the caller: len + 5)
static unsigned char *
s_pack_str (unsigned char *at, const char *text, size_t len)
{
    if (len < 32)
        *at++ = (unsigned char) (0xa0 | len);
    else
    if (len < 256) {
        *at++ = 0xd9;
        *at++ = (unsigned char) len;
    }
    else
    if (len < 65536) {
        *at++ = 0xda;
        s_put_be (at, len, 2);
        at += 2;
    }
    else {
        *at++ = 0xdb;
        s_put_be (at, len, 4);
        at += 4;
    }
    memcpy (at, text, len);
    return at + len;
}

//  Pack the key, reserving room for it and extra more bytes; returns where
//  the value goes
static unsigned char *
s_put_key (zjq_msg_t *self, const char *key, size_t extra)
{
    assert (self);
    assert (key);
    size_t len = strlen (key);
    unsigned char *at = s_reserve (self, len + 5 + extra);
    unsigned char *end = s_pack_str (at, key, len);
    self->buffer.size += (size_t) (end - at);
    self->put_count++;
    return end;
}

void
zjq_msg_put_strn (zjq_msg_t *self, const char *key, const char *value, size_t len)
{
    unsigned char *at = s_put_key (self, key, len + 5);
    unsigned char *end = s_pack_str (at, value, len);
    self->buffer.size += (size_t) (end - at);
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
    unsigned char *at = s_put_key (self, key, 9);
    size_t used;
    if (value >= 0 && value < 128) {
        at [0] = (unsigned char) value;
        used = 1;
    }
    else
    if (value < 0 && value >= -32) {
        at [0] = (unsigned char) (int8_t) value;
        used = 1;
    }
    else
    if (value > 0) {
        //  uint8..uint64, as msgpack-c packs a positive int64
        size_t width = value < 256? 1: value < 65536? 2: value <= UINT32_MAX? 4: 8;
        at [0] = (unsigned char) (0xcc + (width == 1? 0: width == 2? 1: width == 4? 2: 3));
        s_put_be (at + 1, (uint64_t) value, width);
        used = 1 + width;
    }
    else {
        size_t width = value >= -128? 1: value >= -32768? 2: value >= INT32_MIN? 4: 8;
        at [0] = (unsigned char) (0xd0 + (width == 1? 0: width == 2? 1: width == 4? 2: 3));
        s_put_be (at + 1, (uint64_t) value, width);
        used = 1 + width;
    }
    self->buffer.size += used;
}

void
zjq_msg_put_bool (zjq_msg_t *self, const char *key, bool value)
{
    unsigned char *at = s_put_key (self, key, 1);
    *at = value? 0xc3: 0xc2;
    self->buffer.size++;
}

void
zjq_msg_put_double (zjq_msg_t *self, const char *key, double value)
{
    s_put_key (self, key, 0);
    msgpack_pack_double (&self->packer, value);
}

void
zjq_msg_put_strlist (zjq_msg_t *self, const char *key, const char **values, size_t count)
{
    s_put_key (self, key, 0);
    msgpack_pack_array (&self->packer, count);
    for (size_t index = 0; index < count; index++) {
        size_t len = strlen (values [index]);
        msgpack_pack_str (&self->packer, len);
        msgpack_pack_str_body (&self->packer, values [index], len);
    }
}

void
zjq_msg_put_packed (zjq_msg_t *self, const char *key, const void *data, size_t size)
{
    s_put_key (self, key, 0);
    msgpack_sbuffer_write (&self->buffer, (const char *) data, size);
}

//  Patch the field count into the map32 header
static void
s_fields_finish (zjq_msg_t *self)
{
    if (self->buffer.size < ZJQ_MAP32_HEADER) {
        //  A received message being re-sent has no builder buffer: give it
        //  an empty map.
        static const char map32 [ZJQ_MAP32_HEADER] = { (char) 0xdf, 0, 0, 0, 0 };
        msgpack_sbuffer_write (&self->buffer, map32, sizeof (map32));
    }
    unsigned char *data = (unsigned char *) self->buffer.data;
    data [1] = (unsigned char) (self->put_count >> 24);
    data [2] = (unsigned char) (self->put_count >> 16);
    data [3] = (unsigned char) (self->put_count >> 8);
    data [4] = (unsigned char) (self->put_count);
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

static void s_payload_materialize (zjq_msg_t *self);

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
        s_payload_materialize (self);
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
static void
s_payload_materialize (zjq_msg_t *self)
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
    s_payload_materialize (self);
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

zframe_t *
zjq_msg_take_payload (zjq_msg_t *self)
{
    assert (self);
    s_payload_materialize (self);
    if (self->payload_shared)
        zjq_msg_own_payload (self);
    zframe_t *frame = self->payload;
    self->payload = NULL;
    return frame;
}


//  --------------------------------------------------------------------------
//  Sending

int
zjq_msg_send (zjq_msg_t **self_p, void *socket, bool dontwait)
{
    assert (self_p);
    zjq_msg_t *self = *self_p;
    assert (self);
    void *handle = zsock_resolve (socket);
    assert (handle);
    int flags = dontwait? ZMQ_DONTWAIT: 0;
    bool has_payload = zjq_proto_command_has_payload (self->command);
    assert (self->command != ZJQ_CMD_BATCH);    //  zjq_batch_send builds those
    s_payload_materialize (self);
    int rc = 0;

    if (self->has_routing_id) {
        //  A routing id is at most 33 bytes in practice: libzmq stores it
        //  in the message itself, without allocating
        rc = zmq_send (handle, self->routing_id, self->routing_id_size, flags | ZMQ_SNDMORE);
        if (rc == -1) {
            int saved = errno;
            zjq_msg_destroy (self_p);
            errno = saved;
            return -1;
        }
    }
    //  After the first part is accepted, libzmq accepts the rest of the
    //  message: the remaining sends cannot block or fail for lack of room.
    unsigned char header [ZJQ_HEADER_SIZE] = {
        'Z', 'J', 'Q', ZJQ_PROTO_VERSION, (unsigned char) self->role, (unsigned char) self->command
    };
    rc = zmq_send (handle, header, sizeof (header), flags | ZMQ_SNDMORE);
    if (rc == -1) {
        int saved = errno;
        zjq_msg_destroy (self_p);
        errno = saved;
        return -1;
    }
    //  The fields are copied, so the packing buffer stays with the message
    //  for reuse (and is not freed by libzmq's I/O thread)
    s_fields_finish (self);
    rc = zmq_send (handle, self->buffer.data, self->buffer.size,
                   flags | (has_payload? ZMQ_SNDMORE: 0));
    if (rc != -1 && has_payload) {
        if (self->payload_shared) {
            //  A reference to the same bytes (libzmq counts them), no copy
            zframe_t *shared = self->payload_shared;
            rc = zframe_send (&shared, socket, ZFRAME_REUSE | (dontwait? ZFRAME_DONTWAIT: 0));
        }
        else {
            zframe_t *payload = self->payload? self->payload: zframe_new_empty ();
            self->payload = NULL;
            rc = zframe_send (&payload, socket, dontwait? ZFRAME_DONTWAIT: 0);
            zframe_destroy (&payload);
        }
    }
    int saved = errno;
    zjq_msg_destroy (self_p);
    errno = saved;
    return rc == -1? -1: 0;
}


//  --------------------------------------------------------------------------
//  Decoding

static zjq_recv_t
s_malformed (zjq_msg_t *self, int code, const char *reason)
{
    self->error_code = code;
    snprintf (self->error, sizeof (self->error), "%s", reason);
    return ZJQ_RECV_MALFORMED;
}

//  Find the end of the msgpack value at data [pos], without allocating:
//  returns the offset just past it, or SIZE_MAX if the bytes up to size do
//  not hold one well-formed value. msgpack-c sizes its zone from the counts
//  a container claims, so a few hostile bytes claiming 2^32 entries would
//  make it allocate gigabytes: every claimed element must fit in the bytes
//  that remain (each takes at least one), which bounds the unpacker's work
//  by the frame size.
static size_t
s_msgpack_skip (const unsigned char *data, size_t size, size_t pos)
{
    uint64_t pending = 1;               //  values still to read
    while (pending) {
        if (pos >= size)
            return SIZE_MAX;
        pending--;
        unsigned char byte = data [pos++];
        uint64_t skip = 0;              //  bytes of body to skip
        uint64_t items = 0;             //  values the container adds
        size_t width = 0;               //  size of a length field
        if (byte <= 0x7f || byte >= 0xe0 || byte == 0xc0 || byte == 0xc2 || byte == 0xc3)
            ;
        else
        if (byte >= 0x80 && byte <= 0x8f)
            items = 2 * (uint64_t) (byte & 0x0f);
        else
        if (byte >= 0x90 && byte <= 0x9f)
            items = byte & 0x0f;
        else
        if (byte >= 0xa0 && byte <= 0xbf)
            skip = byte & 0x1f;
        else
        switch (byte) {
            case 0xc4: case 0xd9: width = 1; break;         //  bin8, str8
            case 0xc5: case 0xda: width = 2; break;         //  bin16, str16
            case 0xc6: case 0xdb: width = 4; break;         //  bin32, str32
            case 0xc7: width = 1; skip = 1; break;          //  ext8 (+ type)
            case 0xc8: width = 2; skip = 1; break;
            case 0xc9: width = 4; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;                     //  fixext 1..16
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xde: width = 2; break;         //  array16, map16
            case 0xdd: case 0xdf: width = 4; break;         //  array32, map32
            default: return SIZE_MAX;                       //  0xc1
        }
        if (width) {
            if (size - pos < width)
                return SIZE_MAX;
            uint64_t length = 0;
            for (size_t index = 0; index < width; index++)
                length = (length << 8) | data [pos++];
            if (byte == 0xdc || byte == 0xdd)
                items = length;
            else
            if (byte == 0xde || byte == 0xdf)
                items = 2 * length;
            else
                skip += length;
        }
        if (skip > size - pos)
            return SIZE_MAX;
        pos += (size_t) skip;
        pending += items;
        if (pending > size - pos)
            return SIZE_MAX;            //  claims more values than bytes left
    }
    return pos;
}

//  Big-endian unsigned integer of width bytes
static uint64_t
s_read_be (const unsigned char *data, size_t width)
{
    uint64_t value = 0;
    for (size_t index = 0; index < width; index++)
        value = (value << 8) | data [index];
    return value;
}

//  Decode the msgpack value at data [*pos] into object, as msgpack-c would,
//  and move *pos past it. Scalars and strings (which point into data) are
//  read here directly; a container or an extension is checked and handed
//  to msgpack-c, whose objects live in the message's zone. Returns false if
//  the value is not well-formed.
static bool
s_decode_value (zjq_msg_t *self, const unsigned char *data, size_t size, size_t *pos,
                msgpack_object *object)
{
    size_t at = *pos;
    if (at >= size)
        return false;
    unsigned char byte = data [at++];
    size_t left = size - at;
    size_t width = 0;           //  of an integer, a float or a length
    if (byte <= 0x7f) {
        object->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        object->via.u64 = byte;
    }
    else
    if (byte >= 0xe0) {
        object->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        object->via.i64 = (int8_t) byte;
    }
    else
    if (byte >= 0xa0 && byte <= 0xbf) {
        object->type = MSGPACK_OBJECT_STR;
        object->via.str.size = byte & 0x1f;
        if (object->via.str.size > left)
            return false;
        object->via.str.ptr = (const char *) data + at;
        at += object->via.str.size;
    }
    else
    switch (byte) {
        case 0xc0:
            object->type = MSGPACK_OBJECT_NIL;
            break;
        case 0xc2: case 0xc3:
            object->type = MSGPACK_OBJECT_BOOLEAN;
            object->via.boolean = byte == 0xc3;
            break;
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
            width = (size_t) 1 << (byte - 0xcc);
            if (width > left)
                return false;
            object->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            object->via.u64 = s_read_be (data + at, width);
            at += width;
            break;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
            width = (size_t) 1 << (byte - 0xd0);
            if (width > left)
                return false;
            uint64_t bits = s_read_be (data + at, width);
            at += width;
            int64_t value = width == 1? (int8_t) bits: width == 2? (int16_t) bits
                          : width == 4? (int32_t) bits: (int64_t) bits;
            //  As msgpack-c: a signed encoding of a value >= 0 is positive
            if (value < 0) {
                object->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
                object->via.i64 = value;
            }
            else {
                object->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                object->via.u64 = (uint64_t) value;
            }
            break;
        }
        case 0xca: {
            if (left < 4)
                return false;
            uint32_t bits = (uint32_t) s_read_be (data + at, 4);
            float value;
            memcpy (&value, &bits, sizeof (value));
            object->type = MSGPACK_OBJECT_FLOAT32;
            object->via.f64 = value;
            at += 4;
            break;
        }
        case 0xcb: {
            if (left < 8)
                return false;
            uint64_t bits = s_read_be (data + at, 8);
            double value;
            memcpy (&value, &bits, sizeof (value));
            object->type = MSGPACK_OBJECT_FLOAT64;
            object->via.f64 = value;
            at += 8;
            break;
        }
        case 0xd9: case 0xda: case 0xdb:        //  str8, str16, str32
        case 0xc4: case 0xc5: case 0xc6: {      //  bin8, bin16, bin32
            bool is_str = byte >= 0xd9;
            width = (size_t) 1 << (byte - (is_str? 0xd9: 0xc4));
            if (width > left)
                return false;
            uint64_t length = s_read_be (data + at, width);
            at += width;
            if (length > size - at)
                return false;
            object->type = is_str? MSGPACK_OBJECT_STR: MSGPACK_OBJECT_BIN;
            object->via.str.size = (uint32_t) length;
            object->via.str.ptr = (const char *) data + at;
            at += (size_t) length;
            break;
        }
        default: {
            //  Arrays, maps, extensions: rare in the fields (READY's queues,
            //  STATS_REPLY's stats), left to msgpack-c once checked
            size_t end = s_msgpack_skip (data, size, *pos);
            if (end == SIZE_MAX)
                return false;
            size_t offset = 0;
            if (msgpack_unpack ((const char *) data + *pos, end - *pos, &offset, &self->zone, object)
                    != MSGPACK_UNPACK_SUCCESS || offset != end - *pos)
                return false;
            at = end;
        }
    }
    *pos = at;
    return true;
}

//  Check a header: the message takes its version, role and command.
//  Returns the command's index in s_commands, or -1 (malformed).
static int
s_decode_header (zjq_msg_t *self, const void *header, size_t header_size)
{
    const unsigned char *bytes = (const unsigned char *) header;
    if (header_size != ZJQ_HEADER_SIZE || memcmp (bytes, "ZJQ", 3) != 0) {
        s_malformed (self, ZJQ_EPROTO, "first frame is not a ZJQ header");
        return -1;
    }
    self->version = bytes [3];
    self->role = bytes [4];
    self->command = bytes [5];
    if (self->version != ZJQ_PROTO_VERSION) {
        char reason [80];
        snprintf (reason, sizeof (reason), "protocol version %d is not supported (this is version %d)",
                  self->version, ZJQ_PROTO_VERSION);
        s_malformed (self, ZJQ_EVERSION, reason);
        return -1;
    }
    if (self->role != ZJQ_ROLE_CLIENT && self->role != ZJQ_ROLE_WORKER && self->role != ZJQ_ROLE_BROKER) {
        s_malformed (self, ZJQ_EPROTO, "unknown role in header");
        return -1;
    }
    int index = s_command_index (self->command);
    if (index < 0) {
        char reason [60];
        snprintf (reason, sizeof (reason), "unknown command 0x%02x", self->command);
        s_malformed (self, ZJQ_ECOMMAND, reason);
        return -1;
    }
    if (!strchr (s_commands [index].senders, self->role)) {
        char reason [80];
        snprintf (reason, sizeof (reason), "command %s may not be sent by role '%c'",
                  s_commands [index].name, self->role);
        s_malformed (self, ZJQ_ECOMMAND, reason);
        return -1;
    }
    return index;
}

//  Decode the fields, fields_size bytes at fields_offset in fields_part:
//  one msgpack map of at most ZJQ_MAX_FIELDS entries with string keys,
//  and nothing after it. The entries go into the message's own array.
static zjq_recv_t
s_decode_fields (zjq_msg_t *self)
{
    size_t size = self->fields_size;
    const unsigned char *data =
        (const unsigned char *) zmq_msg_data (&self->fields_part) + self->fields_offset;
    if (size > ZJQ_MAX_FIELDS_SIZE)
        return s_malformed (self, ZJQ_EPROTO, "fields frame larger than 64 KiB");
    if (size == 0)
        return s_malformed (self, ZJQ_EPROTO, "fields frame is not one msgpack value");
    size_t pos = 1;
    uint64_t count;
    unsigned char byte = data [0];
    if (byte >= 0x80 && byte <= 0x8f)
        count = byte & 0x0f;
    else
    if ((byte == 0xde && size >= 3) || (byte == 0xdf && size >= 5)) {
        size_t width = byte == 0xde? 2: 4;
        count = s_read_be (data + 1, width);
        pos += width;
    }
    else {
        //  Not a map: say whether it is one value at all
        if (s_msgpack_skip (data, size, 0) != size)
            return s_malformed (self, ZJQ_EPROTO, "fields frame is not one msgpack value");
        return s_malformed (self, ZJQ_EPROTO, "fields frame is not a msgpack map");
    }
    if (count > ZJQ_MAX_FIELDS) {
        if (s_msgpack_skip (data, size, 0) != size)
            return s_malformed (self, ZJQ_EPROTO, "fields frame is not one msgpack value");
        return s_malformed (self, ZJQ_EPROTO, "too many fields");
    }
    bool keys_ok = true;
    for (uint32_t field = 0; field < count; field++) {
        msgpack_object_kv *entry = &self->fields [field];
        if (!s_decode_value (self, data, size, &pos, &entry->key)
        ||  !s_decode_value (self, data, size, &pos, &entry->val))
            return s_malformed (self, ZJQ_EPROTO, "fields frame is not one msgpack value");
        if (entry->key.type != MSGPACK_OBJECT_STR)
            keys_ok = false;
    }
    if (pos != size)
        return s_malformed (self, ZJQ_EPROTO, "fields frame is not one msgpack value");
    if (!keys_ok)
        return s_malformed (self, ZJQ_EPROTO, "field key is not a string");
    self->root.type = MSGPACK_OBJECT_MAP;
    self->root.via.map.size = (uint32_t) count;
    self->root.via.map.ptr = self->fields;
    self->map = &self->root.via.map;
    self->decoded = true;       //  fields can be read, even if frames below are wrong
    return ZJQ_RECV_OK;
}

//  Decode the header and the fields part (taken over by the message).
static zjq_recv_t
s_decode (zjq_msg_t *self, const void *header, size_t header_size, zmq_msg_t *fields_part,
          zframe_t **payload_p, bool payload_expected_present, size_t extra_frames)
{
    int index = s_decode_header (self, header, header_size);
    if (index < 0)
        return ZJQ_RECV_MALFORMED;
    if (!fields_part)
        return s_malformed (self, ZJQ_EPROTO, "fields frame missing");
    zmq_msg_move (&self->fields_part, fields_part);
    self->fields_offset = 0;
    self->fields_size = zmq_msg_size (&self->fields_part);
    if (s_decode_fields (self) != ZJQ_RECV_OK)
        return ZJQ_RECV_MALFORMED;

    if (s_commands [index].payload) {
        if (!payload_expected_present)
            return s_malformed (self, ZJQ_EPROTO, "payload frame missing");
        if (payload_p) {
            self->payload = *payload_p;
            *payload_p = NULL;
        }
    }
    else
    if (payload_expected_present)
        return s_malformed (self, ZJQ_EPROTO, "unexpected extra frame");
    if (extra_frames)
        return s_malformed (self, ZJQ_EPROTO, "too many frames");
    return ZJQ_RECV_OK;
}

zjq_recv_t
zjq_msg_decode (const void *header, size_t header_size,
                const void *fields, size_t fields_size,
                zframe_t **payload_p, zjq_msg_t **msg_p)
{
    assert (msg_p);
    zjq_msg_t *self = s_msg_alloc ();
    assert (self);
    *msg_p = self;
    zmq_msg_t part;
    zmq_msg_t *part_p = NULL;
    if (fields) {
        zmq_msg_init_size (&part, fields_size);
        memcpy (zmq_msg_data (&part), fields, fields_size);
        part_p = &part;
    }
    zjq_recv_t rc = s_decode (self, header, header_size, part_p, payload_p,
                              payload_p && *payload_p, 0);
    if (part_p)
        zmq_msg_close (&part);
    return rc;
}

//  A new message from the same sender as a batch (routing id, User-Id)
static zjq_msg_t *
s_msg_from_batch (zjq_msg_t *batch)
{
    zjq_msg_t *self = s_msg_alloc ();
    assert (self);
    if (batch->has_routing_id)
        zjq_msg_set_routing_id (self, batch->routing_id, batch->routing_id_size);
    strcpy (self->user_id, batch->user_id);
    return self;
}

zjq_recv_t
zjq_msg_decode_batched (zjq_msg_t *batch, int command, size_t fields_offset, size_t fields_size,
                        size_t payload_offset, size_t payload_size, zjq_msg_t **msg_p)
{
    assert (batch && batch->has_batch_part);
    assert (msg_p);
    zjq_msg_t *self = s_msg_from_batch (batch);
    *msg_p = self;
    const byte header [ZJQ_HEADER_SIZE] = {
        'Z', 'J', 'Q', (byte) batch->version, (byte) batch->role, (byte) command
    };
    int index = s_decode_header (self, header, sizeof (header));
    if (index < 0)
        return ZJQ_RECV_MALFORMED;
    assert (command != ZJQ_CMD_BATCH);          //  the inbox checks
    //  A reference to the records (libzmq counts it; small frames are copied)
    zmq_msg_copy (&self->fields_part, &batch->batch_part);
    self->fields_offset = fields_offset;
    self->fields_size = fields_size;
    if (s_decode_fields (self) != ZJQ_RECV_OK)
        return ZJQ_RECV_MALFORMED;
    if (s_commands [index].payload) {
        self->payload_bytes = (const byte *) zmq_msg_data (&self->fields_part) + payload_offset;
        self->payload_size = payload_size;
        self->payload_borrowed = true;
    }
    return ZJQ_RECV_OK;
}

zjq_msg_t *
zjq_msg_batch_malformed (zjq_msg_t *batch, const char *reason)
{
    assert (batch);
    zjq_msg_t *self = s_msg_from_batch (batch);
    self->version = batch->version;
    self->role = batch->role;
    self->command = ZJQ_CMD_BATCH;
    s_malformed (self, ZJQ_EPROTO, reason);
    return self;
}

const void *
zjq_msg_batch_records (zjq_msg_t *self, size_t *size_p)
{
    assert (self);
    assert (size_p);
    *size_p = self->has_batch_part? zmq_msg_size (&self->batch_part): 0;
    return self->has_batch_part? zmq_msg_data (&self->batch_part): NULL;
}

const void *
zjq_msg_fields_data (zjq_msg_t *self, size_t *size_p)
{
    assert (self);
    assert (size_p);
    s_fields_finish (self);
    *size_p = self->buffer.size;
    return self->buffer.data;
}

//  Connection metadata travels with the frames that came from the peer
//  (not with the routing id a ROUTER makes up): keep "User-Id" if there is
//  one, unless it is longer than ours ever are.
static void
s_take_user_id (zjq_msg_t *self, zmq_msg_t *part)
{
    const char *user_id = zmq_msg_gets (part, "User-Id");
    if (user_id && strlen (user_id) <= ZJQ_USER_ID_MAX)
        strcpy (self->user_id, user_id);
}

zjq_recv_t
zjq_msg_recv (void *socket, bool from_router, bool dontwait, zjq_msg_t **msg_p)
{
    assert (msg_p);
    *msg_p = NULL;
    void *handle = zsock_resolve (socket);
    assert (handle);

    zmq_msg_t first;
    zmq_msg_init (&first);
    if (zmq_msg_recv (&first, handle, dontwait? ZMQ_DONTWAIT: 0) == -1) {
        zmq_msg_close (&first);
        return ZJQ_RECV_INTERRUPTED;
    }
    zjq_msg_t *self = s_msg_alloc ();
    assert (self);
    *msg_p = self;

    //  Read the whole multipart message: routing id, header, fields, the
    //  payload; anything beyond is drained and counted. A large payload is
    //  received as a frame of its own, so its bytes are not copied.
    zmq_msg_t parts [2];        //  header, fields
    size_t count = 0;
    size_t extra = 0;
    zframe_t *payload = NULL;
    bool more = zmq_msg_more (&first);
    if (from_router) {
        zjq_msg_set_routing_id (self, zmq_msg_data (&first), zmq_msg_size (&first));
        zmq_msg_close (&first);
    }
    else {
        s_take_user_id (self, &first);
        zmq_msg_init (&parts [0]);
        zmq_msg_move (&parts [0], &first);
        zmq_msg_close (&first);
        count = 1;
    }
    while (more) {
        if (count == 2 && !payload && !extra && !self->has_batch_part
        &&  zmq_msg_size (&parts [0]) == ZJQ_HEADER_SIZE
        &&  ((const byte *) zmq_msg_data (&parts [0])) [5] == ZJQ_CMD_BATCH) {
            //  A batch's records stay in the frame they came in, and the
            //  messages read from them refer to it (zjq_inbox_recv)
            zmq_msg_init (&self->batch_part);
            if (zmq_msg_recv (&self->batch_part, handle, 0) == -1) {
                zmq_msg_close (&self->batch_part);
                break;          //  context terminated mid-message
            }
            self->has_batch_part = true;
            more = zmq_msg_more (&self->batch_part);
            continue;
        }
        if (count == 2 && !payload && !extra && !self->has_batch_part) {
            payload = zframe_recv (socket);     //  a zsock_t resolves faster
            if (!payload)
                break;          //  context terminated mid-message
            more = zframe_more (payload);
            if (zframe_size (payload) < ZJQ_PAYLOAD_COPY_MAX) {
                zframe_t *copy = zframe_new (zframe_data (payload), zframe_size (payload));
                assert (copy);
                zframe_destroy (&payload);
                payload = copy;
            }
            continue;
        }
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, handle, 0) == -1) {
            zmq_msg_close (&part);
            break;              //  context terminated mid-message
        }
        more = zmq_msg_more (&part);
        if (count == 0)
            s_take_user_id (self, &part);
        if (count < 2) {
            zmq_msg_init (&parts [count]);
            zmq_msg_move (&parts [count++], &part);
        }
        else
            extra++;
        zmq_msg_close (&part);
    }

    zjq_recv_t rc;
    if (count == 0)
        rc = s_malformed (self, ZJQ_EPROTO, "empty message");
    else
        rc = s_decode (self, zmq_msg_data (&parts [0]), zmq_msg_size (&parts [0]),
                       count >= 2? &parts [1]: NULL, &payload,
                       payload != NULL || self->has_batch_part, extra);
    zframe_destroy (&payload);
    for (size_t index = 0; index < count; index++)
        zmq_msg_close (&parts [index]);
    return rc;
}

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

int
zjq_msg_encode (zjq_msg_t *self, zchunk_t **header_p, zchunk_t **fields_p)
{
    assert (self);
    assert (header_p && fields_p);
    unsigned char header [ZJQ_HEADER_SIZE] = {
        'Z', 'J', 'Q', ZJQ_PROTO_VERSION, (unsigned char) self->role, (unsigned char) self->command
    };
    s_fields_finish (self);
    *header_p = zchunk_new (header, sizeof (header));
    *fields_p = zchunk_new (self->buffer.data, self->buffer.size);
    return (*header_p && *fields_p)? 0: -1;
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

const char *
zjq_msg_get_str (zjq_msg_t *self, const char *key)
{
    int index = s_find (self, key);
    if (index < 0)
        return NULL;
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

bool
zjq_msg_get_int (zjq_msg_t *self, const char *key, int64_t *value)
{
    assert (value);
    const msgpack_object *object = zjq_msg_get (self, key);
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

bool
zjq_msg_get_bool (zjq_msg_t *self, const char *key, bool *value)
{
    assert (value);
    const msgpack_object *object = zjq_msg_get (self, key);
    if (!object || object->type != MSGPACK_OBJECT_BOOLEAN)
        return false;
    *value = object->via.boolean;
    return true;
}

bool
zjq_msg_get_double (zjq_msg_t *self, const char *key, double *value)
{
    assert (value);
    const msgpack_object *object = zjq_msg_get (self, key);
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
zjq_proto_test (bool verbose)
{
    //  The command lookup table agrees with the command list
    for (size_t index = 0; index < ZJQ_COMMAND_COUNT; index++)
        assert (s_command_index (s_commands [index].command) == (int) index);
    for (int command = 0; command < 256; command++)
        assert (s_command_index (command) < 0
             || s_commands [s_command_index (command)].command == command);

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

    //  Containers claiming more entries than there are bytes are refused
    //  before msgpack-c would allocate for them
    const char huge_map [] = { (char) 0xdf, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff };
    assert (s_decode_raw (ping, 6, huge_map, sizeof (huge_map), false, &msg) == ZJQ_RECV_MALFORMED);
    zjq_msg_destroy (&msg);
    const char huge_str [] = { (char) 0x81, (char) 0xdb, (char) 0x7f, 0, 0, 0 };
    assert (s_decode_raw (ping, 6, huge_str, sizeof (huge_str), false, &msg) == ZJQ_RECV_MALFORMED);
    zjq_msg_destroy (&msg);
    const char nested_ok [] = { (char) 0x81, (char) 0xa1, 'a', (char) 0x91, (char) 0x91, (char) 0x80 };
    assert (s_decode_raw (ping, 6, nested_ok, sizeof (nested_ok), false, &msg) == ZJQ_RECV_OK);
    zjq_msg_destroy (&msg);

    //  Fuzz: random bytes never crash the decoder
    unsigned int seed = 1;
    for (int round = 0; round < 20000; round++) {
        unsigned char junk [64];
        size_t size = rand_r (&seed) % sizeof (junk);
        for (size_t index = 0; index < size; index++)
            junk [index] = (unsigned char) rand_r (&seed);
        zjq_msg_decode (ping, 6, junk, size, NULL, &msg);
        zjq_msg_get_str (msg, "req");
        zjq_msg_destroy (&msg);
    }

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

    //  The fields decoder reads every msgpack type as msgpack-c does
    msgpack_sbuffer packed;
    msgpack_sbuffer_init (&packed);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &packed, msgpack_sbuffer_write);
    char *long_text = (char *) malloc (70000);
    assert (long_text);
    memset (long_text, 'L', 70000);
    const int64_t ints [] = { 0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295LL, 4294967296LL,
                              INT64_MAX, -1, -32, -33, -128, -129, -32768, -32769,
                              -2147483648LL, -2147483649LL, INT64_MIN };
    size_t text_sizes [] = { 0, 31, 32, 255, 256, 60000 };
    for (int round = 0; round < 4; round++) {
        msgpack_sbuffer_clear (&packed);
        size_t count = round == 0? sizeof (ints) / sizeof (ints [0]): round == 1? 6: 10;
        msgpack_pack_map (&pk, count);
        for (size_t index = 0; index < count; index++) {
            char key [16];
            snprintf (key, sizeof (key), "k%zu", index);
            msgpack_pack_str_with_body (&pk, key, strlen (key));
            if (round == 0)
                msgpack_pack_int64 (&pk, ints [index]);
            else
            if (round == 1 && index % 2)
                msgpack_pack_bin_with_body (&pk, long_text, text_sizes [index]);
            else
            if (round == 1)
                msgpack_pack_str_with_body (&pk, long_text, text_sizes [index]);
            else
            if (round == 2)
                switch (index) {
                    case 0: msgpack_pack_nil (&pk); break;
                    case 1: msgpack_pack_true (&pk); break;
                    case 2: msgpack_pack_false (&pk); break;
                    case 3: msgpack_pack_float (&pk, 0.5f); break;
                    case 4: msgpack_pack_double (&pk, -1e300); break;
                    case 5: msgpack_pack_uint8 (&pk, 200); break;
                    case 6: msgpack_pack_int8 (&pk, 5); break;          //  signed, >= 0
                    case 7: msgpack_pack_int16 (&pk, -300); break;
                    case 8: msgpack_pack_array (&pk, 2); msgpack_pack_int (&pk, 1);
                            msgpack_pack_str_with_body (&pk, "x", 1); break;
                    default: msgpack_pack_ext_with_body (&pk, "abc", 3, 7); break;
                }
            else {
                msgpack_pack_map (&pk, 1);
                msgpack_pack_str_with_body (&pk, "inner", 5);
                msgpack_pack_array (&pk, (uint32_t) index);
                for (size_t item = 0; item < index; item++)
                    msgpack_pack_uint32 (&pk, (uint32_t) item);
            }
        }
        msgpack_zone zone;
        msgpack_zone_init (&zone, 2048);
        msgpack_object expected;
        size_t offset = 0;
        assert (msgpack_unpack (packed.data, packed.size, &offset, &zone, &expected)
                == MSGPACK_UNPACK_SUCCESS);
        const byte ping [ZJQ_HEADER_SIZE] = { 'Z', 'J', 'Q', 1, 'C', ZJQ_CMD_PING };
        assert (zjq_msg_decode (ping, sizeof (ping), packed.data, packed.size, NULL, &msg)
                == ZJQ_RECV_OK);
        assert (zjq_msg_field_count (msg) == count);
        for (size_t index = 0; index < count; index++) {
            char key [16];
            snprintf (key, sizeof (key), "k%zu", index);
            const msgpack_object *value = zjq_msg_get (msg, key);
            assert (value && msgpack_object_equal (*value, expected.via.map.ptr [index].val));
            assert (value->type == expected.via.map.ptr [index].val.type);
        }
        zjq_msg_destroy (&msg);
        //  Every strict prefix is malformed, never a crash
        for (size_t cut = 0; cut < packed.size; cut += 1 + cut / 8) {
            assert (zjq_msg_decode (ping, sizeof (ping), packed.data, cut, NULL, &msg)
                    == ZJQ_RECV_MALFORMED);
            zjq_msg_destroy (&msg);
        }
        msgpack_zone_destroy (&zone);
    }
    //  ... and reads back every int and string the builder packs
    for (size_t index = 0; index < sizeof (ints) / sizeof (ints [0]); index++) {
        msg = zjq_msg_new (ZJQ_ROLE_CLIENT, ZJQ_CMD_PING);
        zjq_msg_put_int (msg, "n", ints [index]);
        zjq_msg_put_strn (msg, "s", long_text, text_sizes [index % 6]);
        zjq_msg_put_bool (msg, "b", index % 2);
        assert (s_roundtrip (&msg) == ZJQ_RECV_OK);
        int64_t number = 0;
        bool flag = false;
        assert (zjq_msg_get_int (msg, "n", &number) && number == ints [index]);
        assert (zjq_msg_get_bool (msg, "b", &flag) && flag == (index % 2 == 1));
        const msgpack_object *text = zjq_msg_get (msg, "s");
        assert (text && text->type == MSGPACK_OBJECT_STR && text->via.str.size == text_sizes [index % 6]);
        zjq_msg_destroy (&msg);
    }
    free (long_text);
    msgpack_sbuffer_destroy (&packed);
    if (verbose)
        printf ("(codec ok) ");
}
