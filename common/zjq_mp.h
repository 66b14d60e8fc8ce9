/*  zjq_mp.h: small msgpack helpers shared by the broker, the journal, the
    stats view and the CLI.

    Packing: a string or bin value, and map entries (a string key and its
    value), written straight into a msgpack_packer. They are inline: the
    journal appends and the replies pack with them on their hot paths, and
    each is the two or three msgpack calls it replaces, byte for byte.
    Reading: a map's value by key, a string as printable text, a number as
    a double; all take NULL and wrong types quietly (STATS maps and journal
    records come from outside).

        msgpack_pack_map (packer, 3);
        zjq_mp_entry_str (packer, "id", job->id);
        zjq_mp_entry_int (packer, "attempts", job->attempt);
        zjq_mp_entry_bin (packer, "p", job->payload, job->payload_size);
        ...
        char text [64];
        zjq_mp_text (zjq_mp_map_get (map, "error"), text, sizeof (text));   */

#ifndef ZJQ_MP_H_INCLUDED
#define ZJQ_MP_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

//  --- Packing values and map entries

//  A string value of len bytes (not necessarily terminated).
static inline void
zjq_mp_pack_strn (msgpack_packer *packer, const char *text, size_t len)
{
    msgpack_pack_str (packer, len);
    msgpack_pack_str_body (packer, text, len);
}

//  A string value (text must not be NULL).
static inline void
zjq_mp_pack_str (msgpack_packer *packer, const char *text)
{
    zjq_mp_pack_strn (packer, text, strlen (text));
}

//  A bin value of size bytes.
static inline void
zjq_mp_pack_bin (msgpack_packer *packer, const void *data, size_t size)
{
    msgpack_pack_bin (packer, size);
    msgpack_pack_bin_body (packer, data, size);
}

//  A map entry: key, then an integer (smallest encoding).
static inline void
zjq_mp_entry_int (msgpack_packer *packer, const char *key, int64_t value)
{
    zjq_mp_pack_str (packer, key);
    msgpack_pack_int64 (packer, value);
}

//  A map entry: key, then an unsigned integer.
static inline void
zjq_mp_entry_uint (msgpack_packer *packer, const char *key, uint64_t value)
{
    zjq_mp_pack_str (packer, key);
    msgpack_pack_uint64 (packer, value);
}

//  A map entry: key, then a string (value must not be NULL).
static inline void
zjq_mp_entry_str (msgpack_packer *packer, const char *key, const char *value)
{
    zjq_mp_pack_str (packer, key);
    zjq_mp_pack_str (packer, value);
}

//  A map entry: key, then a bin of size bytes.
static inline void
zjq_mp_entry_bin (msgpack_packer *packer, const char *key, const void *data, size_t size)
{
    zjq_mp_pack_str (packer, key);
    zjq_mp_pack_bin (packer, data, size);
}

//  A map entry: key, then true or false.
static inline void
zjq_mp_entry_bool (msgpack_packer *packer, const char *key, bool value)
{
    zjq_mp_pack_str (packer, key);
    if (value)
        msgpack_pack_true (packer);
    else
        msgpack_pack_false (packer);
}

//  --- Reading msgpack values outside a message (STATS maps)

//  The value for a string key in a msgpack map, or NULL if absent or if
//  map is NULL or not a map.
const msgpack_object *
    zjq_mp_map_get (const msgpack_object *map, const char *key);

//  A msgpack string copied into buf (size bytes, cut to fit), control
//  bytes as '?', or "-" if object is NULL or not a string. Returns buf.
const char *
    zjq_mp_text (const msgpack_object *object, char *buf, size_t size);

//  A msgpack number (integer or float; a boolean as 0/1) as a double.
//  Returns false (value unchanged) if object is NULL or not one.
bool
    zjq_mp_number (const msgpack_object *object, double *value);

//  Self-test.
void
    zjq_mp_test (bool verbose);

#endif
