/*  zjq_json.h: JSON output for msgpack values and C strings.

    zjq emits JSON (for --json and for the stats callback) but never parses
    it, so this is a writer only. Binary msgpack values are written as
    strings with \u escapes for bytes that are not printable ASCII.         */

#ifndef ZJQ_JSON_H_INCLUDED
#define ZJQ_JSON_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

//  Append a msgpack value as JSON to *buf (malloc'd, NUL-terminated; *buf
//  may start NULL; *len is its length). Returns 0, or -1 out of memory.
int
    zjq_json_append_msgpack (char **buf, size_t *len, const msgpack_object *obj);
//  Append a quoted, escaped JSON string for len bytes of text.
int
    zjq_json_append_string (char **buf, size_t *len, const char *text, size_t text_len);
//  Append raw text (printf format) to the buffer.
int
    zjq_json_append (char **buf, size_t *len, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
//  A new malloc'd JSON text for a msgpack value, or NULL if out of memory.
char *
    zjq_json_from_msgpack (const msgpack_object *obj);

void
    zjq_json_test (bool verbose);

#endif
