/*  zjq_jobid.c: job id format and parsing. See zjq_jobid.h.               */

#include "zjq_jobid.h"
#include <assert.h>
#include <stdio.h>
#include <string.h>

static const char s_digits [] = "0123456789abcdefghijklmnopqrstuvwxyz";

char *
zjq_base36 (char *buf, uint64_t value)
{
    char reversed [16];
    size_t count = 0;
    while (value > UINT32_MAX) {
        reversed [count++] = s_digits [value % 36];
        value /= 36;
    }
    //  The rest in 32 bits: a 64-bit division costs several times more
    uint32_t low = (uint32_t) value;
    do {
        reversed [count++] = s_digits [low % 36];
        low /= 36;
    } while (low);
    for (size_t index = 0; index < count; index++)
        buf [index] = reversed [count - 1 - index];
    buf [count] = 0;
    return buf;
}

void
zjq_jobid_format (char *buf, uint64_t generation, uint64_t sequence)
{
    assert (buf);
    //  Ids are formatted on the hot path and nearly all share a generation:
    //  keep its text (one per thread)
    static __thread uint64_t cached_generation;
    static __thread char cached_text [16];
    static __thread size_t cached_len;
    if (!cached_len || cached_generation != generation) {
        zjq_base36 (cached_text, generation);
        cached_len = strlen (cached_text);
        cached_generation = generation;
    }
    memcpy (buf, cached_text, cached_len);
    buf [cached_len] = '-';
    zjq_base36 (buf + cached_len + 1, sequence);
}

//  Parse len base-36 characters; -1 if empty, too long or not base 36
static int
s_parse36 (const char *text, size_t len, uint64_t *value)
{
    if (len == 0 || len > 12)       //  36^12 > 2^62: no overflow
        return -1;
    uint64_t result = 0;
    for (size_t index = 0; index < len; index++) {
        const char *digit = strchr (s_digits, text [index]);
        if (!digit || !*digit)
            return -1;
        result = result * 36 + (uint64_t) (digit - s_digits);
    }
    *value = result;
    return 0;
}

int
zjq_jobid_parse (const char *id, uint64_t *generation, uint64_t *sequence)
{
    if (!id)
        return -1;
    const char *dash = strchr (id, '-');
    if (!dash)
        return -1;
    uint64_t gen, seq;
    if (s_parse36 (id, (size_t) (dash - id), &gen) == -1
    ||  s_parse36 (dash + 1, strlen (dash + 1), &seq) == -1
    ||  seq == 0)
        return -1;
    if (generation)
        *generation = gen;
    if (sequence)
        *sequence = seq;
    return 0;
}

int
zjq_jobid_parse_exact (const char *id, uint64_t *generation, uint64_t *sequence)
{
    if (zjq_jobid_parse (id, generation, sequence) == -1)
        return -1;
    //  Canonical base 36 has no leading zero (and a sequence is never 0)
    const char *dash = strchr (id, '-');
    if ((id [0] == '0' && dash - id > 1) || dash [1] == '0')
        return -1;
    return 0;
}

zjq_jobid_text_t
zjq_jobid_text (uint64_t generation, uint64_t sequence)
{
    zjq_jobid_text_t id;
    zjq_jobid_format (id.text, generation, sequence);
    return id;
}

void
zjq_jobid_test (bool verbose)
{
    char id [ZJQ_JOBID_MAX];
    zjq_jobid_format (id, 1795000000000ULL, 1);
    uint64_t gen = 0, seq = 0;
    assert (zjq_jobid_parse (id, &gen, &seq) == 0);
    assert (gen == 1795000000000ULL && seq == 1);
    zjq_jobid_format (id, 1795000000000ULL, 36 * 36 - 1);
    assert (strlen (id) <= 12);
    assert (strcmp (strchr (id, '-'), "-zz") == 0);
    assert (zjq_jobid_parse (id, &gen, &seq) == 0 && seq == 36 * 36 - 1);
    //  Largest values still fit
    zjq_jobid_format (id, 4738381338321616895ULL, 4738381338321616895ULL);
    assert (strlen (id) < ZJQ_JOBID_MAX);
    assert (zjq_jobid_parse (id, &gen, &seq) == 0 && gen == 4738381338321616895ULL);
    //  Not ids
    const char *bad [] = { "", "-", "abc", "abc-", "-1", "ABC-1", "ab c-1", "a-b-c",
                           "abc-0", "0123456789abc-1", "abc-1\n", "ab\x01-1" };
    for (size_t index = 0; index < sizeof (bad) / sizeof (bad [0]); index++)
        assert (zjq_jobid_parse (bad [index], NULL, NULL) == -1);
    assert (zjq_jobid_parse (NULL, NULL, NULL) == -1);
    //  Exact: one spelling per id
    char buf [32];
    assert (zjq_jobid_parse_exact ("0-1", &gen, &seq) == 0 && gen == 0 && seq == 1);
    assert (zjq_jobid_parse_exact ("abc-1z", &gen, &seq) == 0 && seq == 71);
    assert (zjq_jobid_parse ("0abc-1", NULL, NULL) == 0);
    assert (zjq_jobid_parse_exact ("0abc-1", NULL, NULL) == -1);
    assert (zjq_jobid_parse_exact ("abc-01", NULL, NULL) == -1);
    assert (zjq_jobid_parse_exact ("abc-0", NULL, NULL) == -1);
    assert (zjq_jobid_parse_exact (NULL, NULL, NULL) == -1);
    assert (strcmp (zjq_jobid_text (1795000000000ULL, 36).text,
                    strcat (zjq_base36 (buf, 1795000000000ULL), "-10")) == 0);
    assert (strcmp (zjq_base36 (buf, 0), "0") == 0);
    assert (strcmp (zjq_base36 (buf, 35), "z") == 0);
    assert (strcmp (zjq_base36 (buf, 36), "10") == 0);
    if (verbose)
        printf ("(%s) ", id);
}
