/*  zjq_jobid.h: job ids.

    A job id is "<generation>-<sequence>", both lowercase base 36, e.g.
    "mi9x2k3c-1f". The generation is the broker's start time in Unix
    milliseconds (kept strictly increasing across restarts), the sequence
    counts jobs from 1 within a generation. So ids are unique across
    restarts, short enough to type, and the broker can tell an id it issued
    and forgot (expired) from one it never issued.                         */

#ifndef ZJQ_JOBID_H_INCLUDED
#define ZJQ_JOBID_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZJQ_JOBID_MAX 32            //  buffer size that fits any id + NUL

//  Write the id for (generation, sequence) into buf (ZJQ_JOBID_MAX bytes).
void
    zjq_jobid_format (char *buf, uint64_t generation, uint64_t sequence);
//  Parse an id. Returns 0, or -1 if it is not a well-formed job id.
int
    zjq_jobid_parse (const char *id, uint64_t *generation, uint64_t *sequence);
//  Parse an id written exactly as zjq_jobid_format writes it (no leading
//  zeros), so that one job has one spelling. Returns 0, or -1.
int
    zjq_jobid_parse_exact (const char *id, uint64_t *generation, uint64_t *sequence);
//  An id as a value, for passing a formatted id along without a buffer:
//  zjq_jobid_text (generation, sequence).text lives until the end of the
//  full expression that calls it.
typedef struct {
    char text [ZJQ_JOBID_MAX];
} zjq_jobid_text_t;
zjq_jobid_text_t
    zjq_jobid_text (uint64_t generation, uint64_t sequence);
//  Base 36 of one number into buf (at least 14 bytes); returns buf.
char *
    zjq_base36 (char *buf, uint64_t value);

void
    zjq_jobid_test (bool verbose);

#endif
