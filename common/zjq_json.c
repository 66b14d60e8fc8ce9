/*  zjq_json.c: a JSON writer for msgpack values. See zjq_json.h.          */

#include "zjq_json.h"
#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Make room for extra more bytes (plus NUL). Returns 0 or -1.
static int
s_reserve (char **buf, size_t *len, size_t extra)
{
    //  Capacity is kept implicitly: the next power of two >= len + 1
    size_t needed = *len + extra + 1;
    size_t capacity = 64;
    while (capacity < *len + 1)
        capacity *= 2;
    if (*buf && needed <= capacity)
        return 0;
    while (capacity < needed)
        capacity *= 2;
    char *grown = (char *) realloc (*buf, capacity);
    if (!grown)
        return -1;
    if (!*buf)
        grown [0] = 0;
    *buf = grown;
    return 0;
}

int
zjq_json_append (char **buf, size_t *len, const char *format, ...)
{
    assert (buf && len && format);
    va_list args;
    va_start (args, format);
    va_list copy;
    va_copy (copy, args);
    int size = vsnprintf (NULL, 0, format, copy);
    va_end (copy);
    if (size < 0 || s_reserve (buf, len, (size_t) size) == -1) {
        va_end (args);
        return -1;
    }
    vsnprintf (*buf + *len, (size_t) size + 1, format, args);
    va_end (args);
    *len += (size_t) size;
    return 0;
}

int
zjq_json_append_string (char **buf, size_t *len, const char *text, size_t text_len)
{
    //  Worst case: every byte becomes \u00XX
    if (s_reserve (buf, len, text_len * 6 + 2) == -1)
        return -1;
    char *out = *buf + *len;
    *out++ = '"';
    for (size_t index = 0; index < text_len; index++) {
        unsigned char byte = (unsigned char) text [index];
        switch (byte) {
            case '"':  *out++ = '\\'; *out++ = '"'; break;
            case '\\': *out++ = '\\'; *out++ = '\\'; break;
            case '\n': *out++ = '\\'; *out++ = 'n'; break;
            case '\r': *out++ = '\\'; *out++ = 'r'; break;
            case '\t': *out++ = '\\'; *out++ = 't'; break;
            default:
                if (byte < 0x20 || byte == 0x7f)
                    out += sprintf (out, "\\u%04x", byte);
                else
                    *out++ = (char) byte;   //  UTF-8 passes through
        }
    }
    *out++ = '"';
    *out = 0;
    *len = (size_t) (out - *buf);
    return 0;
}

int
zjq_json_append_msgpack (char **buf, size_t *len, const msgpack_object *obj)
{
    assert (obj);
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL:
            return zjq_json_append (buf, len, "null");
        case MSGPACK_OBJECT_BOOLEAN:
            return zjq_json_append (buf, len, obj->via.boolean? "true": "false");
        case MSGPACK_OBJECT_POSITIVE_INTEGER:
            return zjq_json_append (buf, len, "%" PRIu64, obj->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER:
            return zjq_json_append (buf, len, "%" PRId64, obj->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:
            if (!isfinite (obj->via.f64))
                return zjq_json_append (buf, len, "null");
            return zjq_json_append (buf, len, "%.17g", obj->via.f64);
        case MSGPACK_OBJECT_STR:
            return zjq_json_append_string (buf, len, obj->via.str.ptr, obj->via.str.size);
        case MSGPACK_OBJECT_BIN:
            return zjq_json_append_string (buf, len, obj->via.bin.ptr, obj->via.bin.size);
        case MSGPACK_OBJECT_ARRAY:
            if (zjq_json_append (buf, len, "[") == -1)
                return -1;
            for (uint32_t index = 0; index < obj->via.array.size; index++)
                if ((index && zjq_json_append (buf, len, ",") == -1)
                ||  zjq_json_append_msgpack (buf, len, &obj->via.array.ptr [index]) == -1)
                    return -1;
            return zjq_json_append (buf, len, "]");
        case MSGPACK_OBJECT_MAP:
            if (zjq_json_append (buf, len, "{") == -1)
                return -1;
            for (uint32_t index = 0; index < obj->via.map.size; index++) {
                const msgpack_object *key = &obj->via.map.ptr [index].key;
                if (index && zjq_json_append (buf, len, ",") == -1)
                    return -1;
                //  JSON keys must be strings: other keys are written as text
                int rc;
                if (key->type == MSGPACK_OBJECT_STR)
                    rc = zjq_json_append_string (buf, len, key->via.str.ptr, key->via.str.size);
                else {
                    char *text = zjq_json_from_msgpack (key);
                    rc = text? zjq_json_append_string (buf, len, text, strlen (text)): -1;
                    free (text);
                }
                if (rc == -1
                ||  zjq_json_append (buf, len, ":") == -1
                ||  zjq_json_append_msgpack (buf, len, &obj->via.map.ptr [index].val) == -1)
                    return -1;
            }
            return zjq_json_append (buf, len, "}");
        default:
            return zjq_json_append (buf, len, "null");    //  ext types
    }
}

char *
zjq_json_from_msgpack (const msgpack_object *obj)
{
    char *buf = NULL;
    size_t len = 0;
    if (zjq_json_append_msgpack (&buf, &len, obj) == -1) {
        free (buf);
        return NULL;
    }
    return buf;
}

void
zjq_json_test (bool verbose)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 6);
    msgpack_pack_str_with_body (&pk, "s", 1);
    msgpack_pack_str_with_body (&pk, "a\"b\\c\n\x01", 7);
    msgpack_pack_str_with_body (&pk, "n", 1);
    msgpack_pack_int64 (&pk, -5);
    msgpack_pack_str_with_body (&pk, "u", 1);
    msgpack_pack_uint64 (&pk, 18446744073709551615ULL);
    msgpack_pack_str_with_body (&pk, "list", 4);
    msgpack_pack_array (&pk, 3);
    msgpack_pack_true (&pk);
    msgpack_pack_nil (&pk);
    msgpack_pack_double (&pk, 0.5);
    msgpack_pack_str_with_body (&pk, "empty", 5);
    msgpack_pack_map (&pk, 0);
    msgpack_pack_int (&pk, 7);          //  non-string key
    msgpack_pack_false (&pk);

    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    int rc = msgpack_unpack_next (&unpacked, sbuf.data, sbuf.size, &offset);
    assert (rc == MSGPACK_UNPACK_SUCCESS);
    char *json = zjq_json_from_msgpack (&unpacked.data);
    assert (json);
    const char *expected = "{\"s\":\"a\\\"b\\\\c\\n\\u0001\",\"n\":-5,\"u\":18446744073709551615,"
                           "\"list\":[true,null,0.5],\"empty\":{},\"7\":false}";
    if (strcmp (json, expected) != 0) {
        fprintf (stderr, "json: got %s\n", json);
        assert (false);
    }
    free (json);
    //  Appending grows past the initial capacity
    char *buf = NULL;
    size_t len = 0;
    for (int index = 0; index < 1000; index++)
        assert (zjq_json_append (&buf, &len, "%d,", index) == 0);
    assert (len == strlen (buf));
    free (buf);
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&sbuf);
    if (verbose)
        printf ("(json ok) ");
}
