/*  zjq_fields.h: the codec of a message's fields frame (frame 1: a msgpack
    map with string keys), without the message around it.

    Decoding is one pass over the bytes with no allocation for scalars and
    strings: the objects point into the frame, as msgpack-c's would. Only a
    nested container or an extension (READY's queues, STATS_REPLY's stats)
    is handed to msgpack-c, whose objects then live in the caller's zone,
    and only after a check that every element a container claims fits in
    the bytes left, so a few hostile bytes cannot make msgpack-c allocate
    gigabytes.

    Encoding appends a key and its value to a msgpack_sbuffer that the
    caller started with zjq_fields_begin and ends with zjq_fields_finish
    (a map32 header whose count is patched in, so nothing is packed twice).
    Integers and strings are packed as msgpack-c packs them.

    zjq_msg.h uses both; nothing here knows about messages or sockets.    */

#ifndef ZJQ_FIELDS_H_INCLUDED
#define ZJQ_FIELDS_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  --- Decoding

//  Decode a fields frame: size bytes at data holding one msgpack map of at
//  most max_entries entries with string keys, and nothing after it. The
//  entries go into entries [] (in wire order); containers and extensions
//  are unpacked into zone. Returns the number of entries, or -1 with
//  *error_p set to why (a static string: "fields frame is not one msgpack
//  value", "too many fields", ...). Never allocates for scalars or strings.
int
    zjq_fields_decode (const void *data, size_t size, msgpack_zone *zone,
                       msgpack_object_kv *entries, size_t max_entries, const char **error_p);

//  --- Encoding

//  Start a fields map in an empty buffer: a map32 header whose count
//  zjq_fields_finish patches in. (Inline: every message built does it.)
static inline void
    zjq_fields_begin (msgpack_sbuffer *buffer)
{
    static const char map32 [5] = { (char) 0xdf, 0, 0, 0, 0 };
    msgpack_sbuffer_write (buffer, map32, sizeof (map32));
}

//  Patch the number of entries appended into the map header (as often as
//  wanted). A buffer that was never begun gets an empty map first.
static inline void
    zjq_fields_finish (msgpack_sbuffer *buffer, uint32_t count)
{
    if (buffer->size < 5)
        zjq_fields_begin (buffer);
    unsigned char *data = (unsigned char *) buffer->data;
    data [1] = (unsigned char) (count >> 24);
    data [2] = (unsigned char) (count >> 16);
    data [3] = (unsigned char) (count >> 8);
    data [4] = (unsigned char) count;
}

//  Append one entry: the key (NUL-terminated) and a value. Strings are
//  copied. Out of memory is fatal, as it is in msgpack-c's sbuffer.
void
    zjq_fields_put_strn (msgpack_sbuffer *buffer, const char *key, const char *value, size_t len);
void
    zjq_fields_put_int (msgpack_sbuffer *buffer, const char *key, int64_t value);
void
    zjq_fields_put_bool (msgpack_sbuffer *buffer, const char *key, bool value);
void
    zjq_fields_put_double (msgpack_sbuffer *buffer, const char *key, double value);
void
    zjq_fields_put_strlist (msgpack_sbuffer *buffer, const char *key, const char **values,
                            size_t count);
//  A value that is already msgpack-encoded (a nested map, say), copied.
void
    zjq_fields_put_packed (msgpack_sbuffer *buffer, const char *key, const void *data, size_t size);

//  Self test
void
    zjq_fields_test (bool verbose);

#endif
