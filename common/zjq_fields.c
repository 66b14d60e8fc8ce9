/*  zjq_fields.c: the fields frame codec. See zjq_fields.h.

    The decoder reads as msgpack-c's unpacker would (the self-test compares
    the two on every type), in one pass: s_decode_value reads scalars and
    strings itself and leaves containers and extensions, once checked by
    s_msgpack_skip, to msgpack-c.                                          */

#include "zjq_fields.h"
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>



//  --------------------------------------------------------------------------
//  Decoding

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

//  The integers 0xcc..0xd3 (uint8..64, int8..64), width bytes at data:
//  as msgpack-c, a signed encoding of a value >= 0 is a positive integer.
static void
s_decode_int (unsigned char byte, const unsigned char *data, size_t width, msgpack_object *object)
{
    uint64_t bits = s_read_be (data, width);
    if (byte <= 0xcf) {
        object->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        object->via.u64 = bits;
        return;
    }
    int64_t value = width == 1? (int8_t) bits: width == 2? (int16_t) bits
                  : width == 4? (int32_t) bits: (int64_t) bits;
    if (value < 0) {
        object->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        object->via.i64 = value;
    }
    else {
        object->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        object->via.u64 = (uint64_t) value;
    }
}

//  float32 (0xca, 4 bytes) or float64 (0xcb, 8 bytes) at data
static void
s_decode_float (unsigned char byte, const unsigned char *data, msgpack_object *object)
{
    if (byte == 0xca) {
        uint32_t bits = (uint32_t) s_read_be (data, 4);
        float value;
        memcpy (&value, &bits, sizeof (value));
        object->type = MSGPACK_OBJECT_FLOAT32;
        object->via.f64 = value;
    }
    else {
        uint64_t bits = s_read_be (data, 8);
        double value;
        memcpy (&value, &bits, sizeof (value));
        object->type = MSGPACK_OBJECT_FLOAT64;
        object->via.f64 = value;
    }
}

//  str8/16/32 (0xd9..0xdb) or bin8/16/32 (0xc4..0xc6) whose length field
//  starts at data [*at]: the object points at its bytes. False if cut short.
static bool
s_decode_bytes (unsigned char byte, const unsigned char *data, size_t size, size_t *at,
                msgpack_object *object)
{
    bool is_str = byte >= 0xd9;
    size_t width = (size_t) 1 << (byte - (is_str? 0xd9: 0xc4));
    if (width > size - *at)
        return false;
    uint64_t length = s_read_be (data + *at, width);
    *at += width;
    if (length > size - *at)
        return false;
    object->type = is_str? MSGPACK_OBJECT_STR: MSGPACK_OBJECT_BIN;
    object->via.str.size = (uint32_t) length;
    object->via.str.ptr = (const char *) data + *at;
    *at += (size_t) length;
    return true;
}

//  An array, a map or an extension starting at data [pos]: rare in the
//  fields (READY's queues, STATS_REPLY's stats), so left to msgpack-c once
//  checked, its objects in zone. Returns the offset past it, or SIZE_MAX.
__attribute__ ((noinline)) static size_t
s_decode_container (msgpack_zone *zone, const unsigned char *data, size_t size, size_t pos,
                    msgpack_object *object)
{
    size_t end = s_msgpack_skip (data, size, pos);
    if (end == SIZE_MAX)
        return SIZE_MAX;
    size_t offset = 0;
    if (msgpack_unpack ((const char *) data + pos, end - pos, &offset, zone, object)
            != MSGPACK_UNPACK_SUCCESS || offset != end - pos)
        return SIZE_MAX;
    return end;
}

//  Decode the msgpack value at data [*pos] into object, as msgpack-c would,
//  and move *pos past it. Scalars and strings (which point into data) are
//  read here directly; a container or an extension goes to msgpack-c.
//  Returns false if the value is not well-formed.
static bool
s_decode_value (msgpack_zone *zone, const unsigned char *data, size_t size, size_t *pos,
                msgpack_object *object)
{
    size_t at = *pos;
    if (at >= size)
        return false;
    unsigned char byte = data [at++];
    size_t left = size - at;
    size_t width;               //  of an integer or a float
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
        case 0xd0: case 0xd1: case 0xd2: case 0xd3:
            width = (size_t) 1 << ((byte - 0xcc) & 3);
            if (width > left)
                return false;
            s_decode_int (byte, data + at, width, object);
            at += width;
            break;
        case 0xca: case 0xcb:
            width = byte == 0xca? 4: 8;
            if (width > left)
                return false;
            s_decode_float (byte, data + at, object);
            at += width;
            break;
        case 0xd9: case 0xda: case 0xdb:        //  str8, str16, str32
        case 0xc4: case 0xc5: case 0xc6:        //  bin8, bin16, bin32
            if (!s_decode_bytes (byte, data, size, &at, object))
                return false;
            break;
        default:
            at = s_decode_container (zone, data, size, *pos, object);
            if (at == SIZE_MAX)
                return false;
    }
    *pos = at;
    return true;
}

//  The entry count of the map header at data [0] and where its entries
//  start, or false if data does not start with a map header.
static bool
s_map_header (const unsigned char *data, size_t size, uint64_t *count, size_t *pos)
{
    unsigned char byte = data [0];
    if (byte >= 0x80 && byte <= 0x8f) {
        *count = byte & 0x0f;
        *pos = 1;
        return true;
    }
    if ((byte == 0xde && size >= 3) || (byte == 0xdf && size >= 5)) {
        size_t width = byte == 0xde? 2: 4;
        *count = s_read_be (data + 1, width);
        *pos = 1 + width;
        return true;
    }
    return false;
}

int
zjq_fields_decode (const void *fields, size_t size, msgpack_zone *zone,
                   msgpack_object_kv *entries, size_t max_entries, const char **error_p)
{
    const unsigned char *data = (const unsigned char *) fields;
    static const char not_one_value [] = "fields frame is not one msgpack value";
    *error_p = not_one_value;
    if (size == 0)
        return -1;
    uint64_t count = 0;
    size_t pos = 0;
    bool is_map = s_map_header (data, size, &count, &pos);
    if (!is_map || count > max_entries) {
        //  Say whether it is one value at all
        if (s_msgpack_skip (data, size, 0) == size)
            *error_p = is_map? "too many fields": "fields frame is not a msgpack map";
        return -1;
    }
    bool keys_ok = true;
    for (uint32_t field = 0; field < count; field++) {
        msgpack_object_kv *entry = &entries [field];
        if (!s_decode_value (zone, data, size, &pos, &entry->key)
        ||  !s_decode_value (zone, data, size, &pos, &entry->val))
            return -1;
        if (entry->key.type != MSGPACK_OBJECT_STR)
            keys_ok = false;
    }
    if (pos != size)
        return -1;
    if (!keys_ok) {
        *error_p = "field key is not a string";
        return -1;
    }
    return (int) count;
}


//  --------------------------------------------------------------------------
//  Encoding

//  Make room for size more bytes in the buffer and return where they go.
//  Out of memory is fatal here as it is in msgpack-c's sbuffer.
static unsigned char *
s_reserve (msgpack_sbuffer *buffer, size_t size)
{
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
s_put_key (msgpack_sbuffer *buffer, const char *key, size_t extra)
{
    assert (buffer);
    assert (key);
    size_t len = strlen (key);
    unsigned char *at = s_reserve (buffer, len + 5 + extra);
    unsigned char *end = s_pack_str (at, key, len);
    buffer->size += (size_t) (end - at);
    return end;
}

void
zjq_fields_put_strn (msgpack_sbuffer *buffer, const char *key, const char *value, size_t len)
{
    unsigned char *at = s_put_key (buffer, key, len + 5);
    unsigned char *end = s_pack_str (at, value, len);
    buffer->size += (size_t) (end - at);
}

void
zjq_fields_put_int (msgpack_sbuffer *buffer, const char *key, int64_t value)
{
    unsigned char *at = s_put_key (buffer, key, 9);
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
    buffer->size += used;
}

void
zjq_fields_put_bool (msgpack_sbuffer *buffer, const char *key, bool value)
{
    unsigned char *at = s_put_key (buffer, key, 1);
    *at = value? 0xc3: 0xc2;
    buffer->size++;
}

void
zjq_fields_put_double (msgpack_sbuffer *buffer, const char *key, double value)
{
    s_put_key (buffer, key, 0);
    msgpack_packer packer;
    msgpack_packer_init (&packer, buffer, msgpack_sbuffer_write);
    msgpack_pack_double (&packer, value);
}

void
zjq_fields_put_strlist (msgpack_sbuffer *buffer, const char *key, const char **values, size_t count)
{
    s_put_key (buffer, key, 0);
    msgpack_packer packer;
    msgpack_packer_init (&packer, buffer, msgpack_sbuffer_write);
    msgpack_pack_array (&packer, count);
    for (size_t index = 0; index < count; index++) {
        size_t len = strlen (values [index]);
        msgpack_pack_str (&packer, len);
        msgpack_pack_str_body (&packer, values [index], len);
    }
}

void
zjq_fields_put_packed (msgpack_sbuffer *buffer, const char *key, const void *data, size_t size)
{
    s_put_key (buffer, key, 0);
    msgpack_sbuffer_write (buffer, (const char *) data, size);
}


//  --------------------------------------------------------------------------
//  Self test

//  Decode with a fresh zone; returns the count or -1
static int
s_test_decode (const void *data, size_t size, msgpack_zone *zone, msgpack_object_kv *entries)
{
    const char *error = NULL;
    msgpack_zone_clear (zone);
    int count = zjq_fields_decode (data, size, zone, entries, 64, &error);
    assert (count >= 0 || error);
    return count;
}

//  The value of key in decoded entries, or NULL
static const msgpack_object *
s_test_get (msgpack_object_kv *entries, int count, const char *key)
{
    for (int index = 0; index < count; index++)
        if (entries [index].key.via.str.size == strlen (key)
        &&  memcmp (entries [index].key.via.str.ptr, key, strlen (key)) == 0)
            return &entries [index].val;
    return NULL;
}

//  Pack one of four maps that together hold every msgpack type
static size_t
s_test_pack_round (msgpack_packer *pk, int round, const char *long_text, const int64_t *ints,
                   size_t int_count, const size_t *text_sizes)
{
    size_t count = round == 0? int_count: round == 1? 6: 10;
    msgpack_pack_map (pk, count);
    for (size_t index = 0; index < count; index++) {
        char key [16];
        snprintf (key, sizeof (key), "k%zu", index);
        msgpack_pack_str_with_body (pk, key, strlen (key));
        if (round == 0)
            msgpack_pack_int64 (pk, ints [index]);
        else
        if (round == 1 && index % 2)
            msgpack_pack_bin_with_body (pk, long_text, text_sizes [index]);
        else
        if (round == 1)
            msgpack_pack_str_with_body (pk, long_text, text_sizes [index]);
        else
        if (round == 2)
            switch (index) {
                case 0: msgpack_pack_nil (pk); break;
                case 1: msgpack_pack_true (pk); break;
                case 2: msgpack_pack_false (pk); break;
                case 3: msgpack_pack_float (pk, 0.5f); break;
                case 4: msgpack_pack_double (pk, -1e300); break;
                case 5: msgpack_pack_uint8 (pk, 200); break;
                case 6: msgpack_pack_int8 (pk, 5); break;          //  signed, >= 0
                case 7: msgpack_pack_int16 (pk, -300); break;
                case 8: msgpack_pack_array (pk, 2); msgpack_pack_int (pk, 1);
                        msgpack_pack_str_with_body (pk, "x", 1); break;
                default: msgpack_pack_ext_with_body (pk, "abc", 3, 7); break;
            }
        else {
            msgpack_pack_map (pk, 1);
            msgpack_pack_str_with_body (pk, "inner", 5);
            msgpack_pack_array (pk, (uint32_t) index);
            for (size_t item = 0; item < index; item++)
                msgpack_pack_uint32 (pk, (uint32_t) item);
        }
    }
    return count;
}

void
zjq_fields_test (bool verbose)
{
    msgpack_zone zone;
    assert (msgpack_zone_init (&zone, 2048));
    msgpack_object_kv entries [64];
    const char *error = NULL;

    //  Malformed frames, each with its reason
    const char empty_map [] = { (char) 0x80 };
    assert (s_test_decode (empty_map, 1, &zone, entries) == 0);
    assert (zjq_fields_decode (empty_map, 0, &zone, entries, 64, &error) == -1
         && strstr (error, "not one msgpack value"));
    const char not_a_map [] = { (char) 0x93, 1, 2, 3 };
    assert (zjq_fields_decode (not_a_map, sizeof (not_a_map), &zone, entries, 64, &error) == -1
         && strstr (error, "not a msgpack map"));
    const char truncated [] = { (char) 0x81, (char) 0xa3, 'r', 'e' };
    assert (s_test_decode (truncated, sizeof (truncated), &zone, entries) == -1);
    const char trailing [] = { (char) 0x80, 0x01 };
    assert (s_test_decode (trailing, sizeof (trailing), &zone, entries) == -1);
    const char int_key [] = { (char) 0x81, 0x01, 0x02 };
    assert (zjq_fields_decode (int_key, sizeof (int_key), &zone, entries, 64, &error) == -1
         && strstr (error, "key is not a string"));
    const char two [] = { (char) 0x82, (char) 0xa1, 'a', 1, (char) 0xa1, 'b', 2 };
    assert (zjq_fields_decode (two, sizeof (two), &zone, entries, 1, &error) == -1
         && strstr (error, "too many fields"));
    assert (s_test_decode (two, sizeof (two), &zone, entries) == 2);

    //  Containers claiming more entries than there are bytes are refused
    //  before msgpack-c would allocate for them
    const char huge_map [] = { (char) 0xdf, (char) 0xff, (char) 0xff, (char) 0xff, (char) 0xff };
    assert (s_test_decode (huge_map, sizeof (huge_map), &zone, entries) == -1);
    const char huge_str [] = { (char) 0x81, (char) 0xdb, (char) 0x7f, 0, 0, 0 };
    assert (s_test_decode (huge_str, sizeof (huge_str), &zone, entries) == -1);
    const char huge_array [] = { (char) 0x81, (char) 0xa1, 'a', (char) 0xdd, 0x7f, 0, 0, 0, 1 };
    assert (s_test_decode (huge_array, sizeof (huge_array), &zone, entries) == -1);
    const char nested_ok [] = { (char) 0x81, (char) 0xa1, 'a', (char) 0x91, (char) 0x91, (char) 0x80 };
    assert (s_test_decode (nested_ok, sizeof (nested_ok), &zone, entries) == 1);

    //  Fuzz: random bytes never crash the decoder
    unsigned int seed = 1;
    for (int round = 0; round < 20000; round++) {
        unsigned char junk [64];
        size_t size = rand_r (&seed) % sizeof (junk);
        for (size_t index = 0; index < size; index++)
            junk [index] = (unsigned char) rand_r (&seed);
        s_test_decode (junk, size, &zone, entries);
    }

    //  The decoder reads every msgpack type as msgpack-c does
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
    const size_t int_count = sizeof (ints) / sizeof (ints [0]);
    const size_t text_sizes [] = { 0, 31, 32, 255, 256, 60000 };
    for (int round = 0; round < 4; round++) {
        msgpack_sbuffer_clear (&packed);
        size_t count = s_test_pack_round (&pk, round, long_text, ints, int_count, text_sizes);
        msgpack_zone expected_zone;
        msgpack_zone_init (&expected_zone, 2048);
        msgpack_object expected;
        size_t offset = 0;
        assert (msgpack_unpack (packed.data, packed.size, &offset, &expected_zone, &expected)
                == MSGPACK_UNPACK_SUCCESS);
        int decoded = s_test_decode (packed.data, packed.size, &zone, entries);
        assert (decoded == (int) count);
        for (size_t index = 0; index < count; index++) {
            const msgpack_object *value = &entries [index].val;
            assert (msgpack_object_equal (entries [index].key, expected.via.map.ptr [index].key));
            assert (msgpack_object_equal (*value, expected.via.map.ptr [index].val));
            assert (value->type == expected.via.map.ptr [index].val.type);
        }
        //  Every strict prefix is malformed, never a crash
        for (size_t cut = 0; cut < packed.size; cut += 1 + cut / 8)
            assert (s_test_decode (packed.data, cut, &zone, entries) == -1);
        msgpack_zone_destroy (&expected_zone);
    }

    //  ... and reads back every int and string the encoder packs
    msgpack_sbuffer built;
    msgpack_sbuffer_init (&built);
    for (size_t index = 0; index < int_count; index++) {
        msgpack_sbuffer_clear (&built);
        zjq_fields_begin (&built);
        zjq_fields_put_int (&built, "n", ints [index]);
        zjq_fields_put_strn (&built, "s", long_text, text_sizes [index % 6]);
        zjq_fields_put_bool (&built, "b", index % 2);
        zjq_fields_finish (&built, 3);
        //  byte for byte what msgpack-c packs (in a map32)
        msgpack_sbuffer_clear (&packed);
        const char map32 [] = { (char) 0xdf, 0, 0, 0, 3 };
        msgpack_sbuffer_write (&packed, map32, sizeof (map32));
        msgpack_pack_str_with_body (&pk, "n", 1);
        msgpack_pack_int64 (&pk, ints [index]);
        msgpack_pack_str_with_body (&pk, "s", 1);
        msgpack_pack_str_with_body (&pk, long_text, text_sizes [index % 6]);
        msgpack_pack_str_with_body (&pk, "b", 1);
        if (index % 2) msgpack_pack_true (&pk); else msgpack_pack_false (&pk);
        assert (built.size == packed.size && memcmp (built.data, packed.data, built.size) == 0);
        int count = s_test_decode (built.data, built.size, &zone, entries);
        assert (count == 3);
        const msgpack_object *number = s_test_get (entries, count, "n");
        assert (number && (ints [index] < 0? number->via.i64 == ints [index]
                                           : number->via.u64 == (uint64_t) ints [index]));
        const msgpack_object *text = s_test_get (entries, count, "s");
        assert (text && text->type == MSGPACK_OBJECT_STR && text->via.str.size == text_sizes [index % 6]);
        const msgpack_object *flag = s_test_get (entries, count, "b");
        assert (flag && flag->type == MSGPACK_OBJECT_BOOLEAN && flag->via.boolean == (index % 2 == 1));
    }
    //  Doubles, string lists and packed values
    msgpack_sbuffer_clear (&built);
    zjq_fields_finish (&built, 0);              //  never begun: an empty map
    assert (s_test_decode (built.data, built.size, &zone, entries) == 0);
    const char *queues [] = { "a", "bb" };
    zjq_fields_put_double (&built, "d", 0.25);
    zjq_fields_put_strlist (&built, "q", queues, 2);
    zjq_fields_put_packed (&built, "p", nested_ok + 3, 3);
    zjq_fields_finish (&built, 3);
    assert (s_test_decode (built.data, built.size, &zone, entries) == 3);
    assert (entries [0].val.type == MSGPACK_OBJECT_FLOAT64 && entries [0].val.via.f64 == 0.25);
    assert (entries [1].val.type == MSGPACK_OBJECT_ARRAY && entries [1].val.via.array.size == 2);
    assert (entries [2].val.type == MSGPACK_OBJECT_ARRAY && entries [2].val.via.array.size == 1);
    msgpack_sbuffer_destroy (&built);
    free (long_text);
    msgpack_sbuffer_destroy (&packed);
    msgpack_zone_destroy (&zone);
    if (verbose)
        printf ("(fields codec ok) ");
}
