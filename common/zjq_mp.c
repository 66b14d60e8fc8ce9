/*  zjq_mp.c: msgpack helpers. See zjq_mp.h.                                */

#include "zjq_mp.h"
#include <assert.h>
#include <stdio.h>


//  --------------------------------------------------------------------------
//  Reading

const msgpack_object *
zjq_mp_map_get (const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t len = strlen (key);
    for (uint32_t index = 0; index < map->via.map.size; index++) {
        const msgpack_object *name = &map->via.map.ptr [index].key;
        if (name->type == MSGPACK_OBJECT_STR && name->via.str.size == len
        &&  memcmp (name->via.str.ptr, key, len) == 0)
            return &map->via.map.ptr [index].val;
    }
    return NULL;
}

const char *
zjq_mp_text (const msgpack_object *object, char *buf, size_t size)
{
    assert (buf && size);
    if (object && object->type == MSGPACK_OBJECT_STR) {
        size_t len = object->via.str.size < size - 1? object->via.str.size: size - 1;
        memcpy (buf, object->via.str.ptr, len);
        buf [len] = 0;
        for (size_t index = 0; index < len; index++)
            if ((unsigned char) buf [index] < 0x20 || buf [index] == 0x7f)
                buf [index] = '?';      //  keep a table on its lines
    }
    else
        snprintf (buf, size, "-");
    return buf;
}

bool
zjq_mp_number (const msgpack_object *object, double *value)
{
    if (!object)
        return false;
    switch (object->type) {
        case MSGPACK_OBJECT_POSITIVE_INTEGER: *value = (double) object->via.u64; return true;
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: *value = (double) object->via.i64; return true;
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64:          *value = object->via.f64; return true;
        case MSGPACK_OBJECT_BOOLEAN:          *value = object->via.boolean? 1: 0; return true;
        default:                              return false;
    }
}


//  --------------------------------------------------------------------------
//  Self-test

//  The helpers write the same bytes as the msgpack calls they replace
static void
s_test_bytes (void)
{
    msgpack_sbuffer ours, theirs;
    msgpack_sbuffer_init (&ours);
    msgpack_sbuffer_init (&theirs);
    msgpack_packer mine, ref;
    msgpack_packer_init (&mine, &ours, msgpack_sbuffer_write);
    msgpack_packer_init (&ref, &theirs, msgpack_sbuffer_write);
    char long_text [300];
    memset (long_text, 'x', sizeof (long_text) - 1);
    long_text [sizeof (long_text) - 1] = 0;
    msgpack_pack_map (&mine, 8);
    zjq_mp_entry_int (&mine, "n", -5);
    zjq_mp_entry_int (&mine, "big", INT64_MAX);
    zjq_mp_entry_uint (&mine, "u", UINT64_MAX);
    zjq_mp_entry_str (&mine, "err", "");
    zjq_mp_entry_str (&mine, "long", long_text);
    zjq_mp_entry_bin (&mine, "p", "\0\1\2", 3);
    zjq_mp_entry_bool (&mine, "t", true);
    zjq_mp_entry_bool (&mine, "f", false);
    zjq_mp_pack_strn (&mine, "abcdef", 3);
    msgpack_pack_map (&ref, 8);
    msgpack_pack_str_with_body (&ref, "n", 1);
    msgpack_pack_int64 (&ref, -5);
    msgpack_pack_str_with_body (&ref, "big", 3);
    msgpack_pack_int64 (&ref, INT64_MAX);
    msgpack_pack_str_with_body (&ref, "u", 1);
    msgpack_pack_uint64 (&ref, UINT64_MAX);
    msgpack_pack_str_with_body (&ref, "err", 3);
    msgpack_pack_str_with_body (&ref, "", 0);
    msgpack_pack_str_with_body (&ref, "long", 4);
    msgpack_pack_str_with_body (&ref, long_text, strlen (long_text));
    msgpack_pack_str_with_body (&ref, "p", 1);
    msgpack_pack_bin_with_body (&ref, "\0\1\2", 3);
    msgpack_pack_str_with_body (&ref, "t", 1);
    msgpack_pack_true (&ref);
    msgpack_pack_str_with_body (&ref, "f", 1);
    msgpack_pack_false (&ref);
    msgpack_pack_str_with_body (&ref, "abc", 3);
    assert (ours.size == theirs.size && memcmp (ours.data, theirs.data, ours.size) == 0);
    msgpack_sbuffer_destroy (&ours);
    msgpack_sbuffer_destroy (&theirs);
}

//  Reading back what the helpers packed
static void
s_test_read (void)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init (&buffer);
    msgpack_packer packer;
    msgpack_packer_init (&packer, &buffer, msgpack_sbuffer_write);
    msgpack_pack_map (&packer, 6);
    zjq_mp_entry_int (&packer, "neg", -7);
    zjq_mp_entry_uint (&packer, "pos", 42);
    zjq_mp_entry_str (&packer, "text", "line\none\x7f");
    zjq_mp_entry_bool (&packer, "yes", true);
    zjq_mp_entry_bin (&packer, "bin", "ab", 2);
    zjq_mp_pack_str (&packer, "float");
    msgpack_pack_double (&packer, 0.25);
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    assert (msgpack_unpack_next (&unpacked, buffer.data, buffer.size, NULL)
            == MSGPACK_UNPACK_SUCCESS);
    const msgpack_object *map = &unpacked.data;
    double number = 99;
    assert (zjq_mp_number (zjq_mp_map_get (map, "neg"), &number) && number == -7);
    assert (zjq_mp_number (zjq_mp_map_get (map, "pos"), &number) && number == 42);
    assert (zjq_mp_number (zjq_mp_map_get (map, "yes"), &number) && number == 1);
    assert (zjq_mp_number (zjq_mp_map_get (map, "float"), &number) && number == 0.25);
    number = 99;
    assert (!zjq_mp_number (zjq_mp_map_get (map, "text"), &number) && number == 99);
    assert (!zjq_mp_number (NULL, &number));
    assert (zjq_mp_map_get (map, "absent") == NULL);
    assert (zjq_mp_map_get (map, "ne") == NULL);        //  a prefix is not the key
    assert (zjq_mp_map_get (NULL, "neg") == NULL);
    assert (zjq_mp_map_get (zjq_mp_map_get (map, "neg"), "x") == NULL);  //  not a map
    char text [32];
    assert (!strcmp (zjq_mp_text (zjq_mp_map_get (map, "text"), text, sizeof (text)),
                   "line?one?"));
    assert (!strcmp (zjq_mp_text (zjq_mp_map_get (map, "text"), text, 5), "line"));
    assert (!strcmp (zjq_mp_text (zjq_mp_map_get (map, "bin"), text, sizeof (text)), "-"));
    assert (!strcmp (zjq_mp_text (NULL, text, sizeof (text)), "-"));
    msgpack_unpacked_destroy (&unpacked);
    msgpack_sbuffer_destroy (&buffer);
}

void
zjq_mp_test (bool verbose)
{
    (void) verbose;
    s_test_bytes ();
    s_test_read ();
}
