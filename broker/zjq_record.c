/*  zjq_record.c: the journal's record codec. See zjq_record.h.

    On-disk format of a journal file (all integers little-endian):

        header  16 bytes: "ZJQJRNL\n", u32 format version, u32 CRC-32C of the
              first 12 bytes
      record  u32 length (of type + body) | u32 CRC-32C (of type + body) |
              u8 type | body, a msgpack map with short string keys:

      JOB (1)         a whole job: v (ZJQ_JOB_RECORD_VERSION), id, seq, ord,
                      q (queue), pri, max, att, st (zjq_state_t), jto, ttl,
                      cr, sa, fi, ex (the zjq_job_t times), optional key, own
                      (owner key, v2+), err,
                      pay (bin, unless succeeded or cancelled: v3+ keeps a
                      failed job's payload), res (bin, a stored result),
                      h (v3+, the attempt history: a map of b (budget), r
                      (retries), d (attempts dropped), a (array of ATTEMPT
                      maps, oldest first))
      STATE (2)       a change of a job: v, id, st, att, sa, fi, ex, optional
                      err, res (bin, for a success)
      REMOVE (3)      id: the outcome expired or was evicted
      GENERATION (4)  gen (the broker generation that follows), hist: an
                      array of [generation, last sequence issued] pairs
      ATTEMPT (5)     format 2+: a failed attempt of a job: v, id, a (a map
                      of n (attempt), err, sa, fi, dur, optional ec (exit
                      status), sig (signal), w (worker id)); appended to the
                      job's history
      QUEUE (6)       format 2+: q (queue name), p (bool: paused). A rewrite
                      writes one per paused queue after GENERATION.

    Replay applies records in order. STATE, ATTEMPT and REMOVE for an id
    with no JOB record before them are ignored: that only happens at the start of a
    rewritten file, where a later JOB record carries the job's whole state.

    ZJQ_JOURNAL_FORMAT is the framing and the meaning of the record types.
    Bump it for an incompatible change (a new framing, a record type whose
    meaning changes), and keep a reader for the old format or refuse it with
    a clear message: a broker refuses a journal of a newer format. Adding a
    key to a body is compatible (readers ignore unknown keys); a change to
    what a job field means bumps ZJQ_JOB_RECORD_VERSION (zjq_job.h) instead,
    which travels as "v" in every JOB and STATE record, and the reader
    upgrades older records as it decodes them.

    History: format 1 had record types 1-4; format 2 adds ATTEMPT and QUEUE
    (an older broker refuses a format-2 journal: it would not know them).
    A format-1 journal is read as it is, and the rewrite at start makes it
    format 2. Job record version 3 adds h and keeps a failed job's payload;
    a failed job from an older record has no history (the job table gives
    it an empty one) and, if its payload is gone, cannot be retried.

    The file journal (zjq_journal.c) and its compaction write with these
    encoders, its replay (zjq_journal_replay.c) reads with these decoders;
    nothing else knows the bytes.                                           */

#include "zjq_record.h"
#include "zjq_mp.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ZJQ_BUFFER_KEEP         (16 << 20)  //  larger idle buffers are freed

//  CRC-32C, slicing by 8 (polynomial 0x82F63B78, reflected)

static uint32_t s_crc_table [8][256];
static pthread_once_t s_crc_once = PTHREAD_ONCE_INIT;

static void
s_crc_init (void)
{
    for (uint32_t index = 0; index < 256; index++) {
        uint32_t crc = index;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0x82F63B78 & (0U - (crc & 1)));
        s_crc_table [0][index] = crc;
    }
    for (uint32_t index = 0; index < 256; index++)
        for (int slice = 1; slice < 8; slice++)
            s_crc_table [slice][index] = (s_crc_table [slice - 1][index] >> 8)
                                       ^ s_crc_table [0][s_crc_table [slice - 1][index] & 0xFF];
}

uint32_t
zjq_crc32c (uint32_t crc, const void *data, size_t size)
{
    pthread_once (&s_crc_once, s_crc_init);
    const byte *bytes = (const byte *) data;
    crc = ~crc;
    while (size >= 8) {
        uint32_t low = crc ^ ((uint32_t) bytes [0] | (uint32_t) bytes [1] << 8
                            | (uint32_t) bytes [2] << 16 | (uint32_t) bytes [3] << 24);
        crc = s_crc_table [7][low & 0xFF] ^ s_crc_table [6][(low >> 8) & 0xFF]
            ^ s_crc_table [5][(low >> 16) & 0xFF] ^ s_crc_table [4][low >> 24]
            ^ s_crc_table [3][bytes [4]] ^ s_crc_table [2][bytes [5]]
            ^ s_crc_table [1][bytes [6]] ^ s_crc_table [0][bytes [7]];
        bytes += 8;
        size -= 8;
    }
    while (size--)
        crc = (crc >> 8) ^ s_crc_table [0][(crc ^ *bytes++) & 0xFF];
    return ~crc;
}



//  --------------------------------------------------------------------------
//  Buffers and record encoding

static void
s_put32 (byte *where, uint32_t value)
{
    where [0] = (byte) value;
    where [1] = (byte) (value >> 8);
    where [2] = (byte) (value >> 16);
    where [3] = (byte) (value >> 24);
}

static uint32_t
s_get32 (const byte *where)
{
    return (uint32_t) where [0] | (uint32_t) where [1] << 8
         | (uint32_t) where [2] << 16 | (uint32_t) where [3] << 24;
}

int
zjq_recbuf_append (zjq_recbuf_t *buf, const void *data, size_t size)
{
    if (buf->size + size > buf->max) {
        size_t max = buf->max? buf->max: 65536;
        while (max < buf->size + size)
            max *= 2;
        byte *grown = (byte *) realloc (buf->data, max);
        if (!grown) {
            buf->oom = true;
            return -1;
        }
        buf->data = grown;
        buf->max = max;
    }
    memcpy (buf->data + buf->size, data, size);
    buf->size += size;
    return 0;
}

static int
s_buf_write (void *data, const char *bytes, size_t size)
{
    return zjq_recbuf_append ((zjq_recbuf_t *) data, bytes, size);
}

//  Free a large buffer once it is empty, so one burst does not pin memory
void
zjq_recbuf_trim (zjq_recbuf_t *buf)
{
    if (buf->size == 0 && buf->max > ZJQ_BUFFER_KEEP) {
        free (buf->data);
        buf->data = NULL;
        buf->max = 0;
    }
}

void
zjq_recbuf_free (zjq_recbuf_t *buf)
{
    free (buf->data);
    memset (buf, 0, sizeof (*buf));
}

static void
s_pack_history (msgpack_packer *packer, const zjq_history_t *history)
{
    zjq_mp_pack_str (packer, "h");
    msgpack_pack_map (packer, 4);
    zjq_mp_entry_int (packer, "b", history->budget);
    zjq_mp_entry_int (packer, "r", history->retries);
    zjq_mp_entry_int (packer, "d", history->dropped);
    zjq_mp_pack_str (packer, "a");
    zjq_history_pack_attempts (packer, history, &zjq_history_journal_keys);
}

//  Frame the body that follows start in buf: length and CRC
static void
s_record_seal (zjq_recbuf_t *buf, size_t start)
{
    byte *record = buf->data + start;
    uint32_t length = (uint32_t) (buf->size - start - ZJQ_RECORD_HEADER);
    s_put32 (record, length);
    s_put32 (record + 4, zjq_crc32c (0, record + ZJQ_RECORD_HEADER, length));
}

//  Start a record of a type in buf; returns its start, for s_record_seal
static size_t
s_record_open (zjq_recbuf_t *buf, msgpack_packer *packer, int type)
{
    size_t start = buf->size;
    byte head [ZJQ_RECORD_HEADER + 1] = { 0 };
    head [ZJQ_RECORD_HEADER] = (byte) type;
    zjq_recbuf_append (buf, head, sizeof (head));
    msgpack_packer_init (packer, buf, s_buf_write);
    return start;
}

//  A JOB record (whole) or a STATE record (the fields that change)
void
zjq_record_encode_job (zjq_recbuf_t *buf, const zjq_job_t *job, bool whole)
{
    msgpack_packer packer;
    size_t start = s_record_open (buf, &packer, whole? ZJQ_RECORD_JOB: ZJQ_RECORD_STATE);
    //  Only queued, running and failed jobs hold a payload
    bool payload = whole && job->payload;
    bool result = job->result && (whole || job->state == ZJQ_STATE_SUCCEEDED);
    bool history = whole && job->history;
    size_t count = whole? 15: 7;
    count += (whole && job->key) + (whole && *job->owner) + (job->error != NULL) + payload + result
           + history;
    msgpack_pack_map (&packer, count);
    zjq_mp_entry_int (&packer, "v", ZJQ_JOB_RECORD_VERSION);
    zjq_mp_entry_str (&packer, "id", job->id);
    if (whole) {
        zjq_mp_entry_int (&packer, "seq", (int64_t) job->sequence);
        zjq_mp_entry_int (&packer, "ord", (int64_t) job->order);
        zjq_mp_entry_str (&packer, "q", job->queue);
        zjq_mp_entry_int (&packer, "pri", job->priority);
        zjq_mp_entry_int (&packer, "max", job->max_attempts);
        zjq_mp_entry_int (&packer, "jto", job->job_timeout_ms);
        zjq_mp_entry_int (&packer, "ttl", job->result_ttl_ms);
        zjq_mp_entry_int (&packer, "cr", job->created_ms);
        if (job->key)
            zjq_mp_entry_str (&packer, "key", job->key);
        if (*job->owner)
            zjq_mp_entry_str (&packer, "own", job->owner);
        if (payload)
            zjq_mp_entry_bin (&packer, "pay", job->payload, job->payload_size);
        if (history)
            s_pack_history (&packer, job->history);
    }
    zjq_mp_entry_int (&packer, "st", job->state);
    zjq_mp_entry_int (&packer, "att", job->attempt);
    zjq_mp_entry_int (&packer, "sa", job->started_ms);
    zjq_mp_entry_int (&packer, "fi", job->finished_ms);
    zjq_mp_entry_int (&packer, "ex", job->expires_ms);
    if (job->error)
        zjq_mp_entry_str (&packer, "err", job->error);
    if (result)
        zjq_mp_entry_bin (&packer, "res", job->result, job->result_size);
    if (!buf->oom)
        s_record_seal (buf, start);
}

//  The last attempt of a job's history
void
zjq_record_encode_attempt (zjq_recbuf_t *buf, const zjq_job_t *job)
{
    const zjq_attempt_t *attempt = job->history? zjq_history_last (job->history): NULL;
    assert (attempt);
    msgpack_packer packer;
    size_t start = s_record_open (buf, &packer, ZJQ_RECORD_ATTEMPT);
    msgpack_pack_map (&packer, 3);
    zjq_mp_entry_int (&packer, "v", ZJQ_JOB_RECORD_VERSION);
    zjq_mp_entry_str (&packer, "id", job->id);
    zjq_mp_pack_str (&packer, "a");
    zjq_history_pack_attempt (&packer, attempt, &zjq_history_journal_keys);
    if (!buf->oom)
        s_record_seal (buf, start);
}

void
zjq_record_encode_queue (zjq_recbuf_t *buf, const char *queue, bool paused)
{
    msgpack_packer packer;
    size_t start = s_record_open (buf, &packer, ZJQ_RECORD_QUEUE);
    msgpack_pack_map (&packer, 2);
    zjq_mp_entry_str (&packer, "q", queue);
    zjq_mp_entry_bool (&packer, "p", paused);
    if (!buf->oom)
        s_record_seal (buf, start);
}

void
zjq_record_encode_remove (zjq_recbuf_t *buf, const zjq_job_t *job)
{
    msgpack_packer packer;
    size_t start = s_record_open (buf, &packer, ZJQ_RECORD_REMOVE);
    msgpack_pack_map (&packer, 1);
    zjq_mp_entry_str (&packer, "id", job->id);
    if (!buf->oom)
        s_record_seal (buf, start);
}

//  The generation that follows (pairs [0]) and every one known
void
zjq_record_encode_generation (zjq_recbuf_t *buf, const uint64_t *pairs, size_t count)
{
    assert (count >= 1);
    msgpack_packer packer;
    size_t start = s_record_open (buf, &packer, ZJQ_RECORD_GENERATION);
    msgpack_pack_map (&packer, 2);
    zjq_mp_entry_int (&packer, "gen", (int64_t) pairs [0]);
    zjq_mp_pack_str (&packer, "hist");
    msgpack_pack_array (&packer, count);
    for (size_t index = 0; index < count; index++) {
        msgpack_pack_array (&packer, 2);
        msgpack_pack_uint64 (&packer, pairs [2 * index]);
        msgpack_pack_uint64 (&packer, pairs [2 * index + 1]);
    }
    if (!buf->oom)
        s_record_seal (buf, start);
}

void
zjq_record_encode_header (zjq_recbuf_t *buf)
{
    byte header [ZJQ_JOURNAL_HEADER];
    memcpy (header, ZJQ_JOURNAL_MAGIC, 8);
    s_put32 (header + 8, ZJQ_JOURNAL_FORMAT);
    s_put32 (header + 12, zjq_crc32c (0, header, 12));
    zjq_recbuf_append (buf, header, sizeof (header));
}



//  --------------------------------------------------------------------------
//  Reading: framing and bodies

//  A well-framed record at offset: length within the file, CRC right,
//  known type. Returns its total size, or 0 with *why set.
size_t
zjq_record_at (const byte *data, size_t size, size_t offset, const char **why)
{
    if (size - offset < ZJQ_RECORD_HEADER + 1) {
        *why = "incomplete record header";
        return 0;
    }
    uint32_t length = s_get32 (data + offset);
    if (length < 1 || length > size - offset - ZJQ_RECORD_HEADER) {
        *why = length < 1? "bad record length": "record runs past the end of the file";
        return 0;
    }
    const byte *record = data + offset + ZJQ_RECORD_HEADER;
    if (zjq_crc32c (0, record, length) != s_get32 (data + offset + 4)) {
        *why = "checksum mismatch";
        return 0;
    }
    if (record [0] < ZJQ_RECORD_JOB || record [0] > ZJQ_RECORD_QUEUE) {
        *why = "unknown record type";
        return 0;
    }
    return ZJQ_RECORD_HEADER + length;
}

//  The offset of the next well-framed record after a bad one, or size
size_t
zjq_record_next_good (const byte *data, size_t size, size_t offset)
{
    const char *why;
    for (size_t next = offset + 1; next + ZJQ_RECORD_HEADER < size; next++)
        if (zjq_record_at (data, size, next, &why))
            return next;
    return size;
}

//  Requeue or fail the jobs that were running; drop expired outcomes.

static bool
s_obj_int (const msgpack_object *object, int64_t *value)
{
    if (object->type == MSGPACK_OBJECT_POSITIVE_INTEGER && object->via.u64 <= INT64_MAX)
        *value = (int64_t) object->via.u64;
    else
    if (object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *value = object->via.i64;
    else
        return false;
    return true;
}

static char *
s_obj_strdup (const msgpack_object *object)
{
    if (object->type != MSGPACK_OBJECT_STR || memchr (object->via.str.ptr, 0, object->via.str.size))
        return NULL;
    return strndup (object->via.str.ptr, object->via.str.size);
}

static bool
s_obj_is (const msgpack_object *key, const char *name)
{
    size_t len = strlen (name);
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == len
        && memcmp (key->via.str.ptr, name, len) == 0;
}

//  The "id" of a body, copied into id (ZJQ_JOBID_MAX); false if none
static bool
s_body_id (const msgpack_object *body, char *id)
{
    for (uint32_t index = 0; index < body->via.map.size; index++) {
        const msgpack_object_kv *kv = &body->via.map.ptr [index];
        if (s_obj_is (&kv->key, "id")) {
            if (kv->val.type != MSGPACK_OBJECT_STR || kv->val.via.str.size >= ZJQ_JOBID_MAX)
                return false;
            memcpy (id, kv->val.via.str.ptr, kv->val.via.str.size);
            id [kv->val.via.str.size] = 0;
            return zjq_jobid_parse (id, NULL, NULL) == 0;
        }
    }
    return false;
}

static void
s_set_text (char **field, const msgpack_object *value, const char **problem)
{
    char *text = s_obj_strdup (value);
    if (!text) {
        *problem = "bad text field";
        return;
    }
    free (*field);
    *field = text;
}

//  A copy of the bytes (malloc'd, so the record owns them; never NULL when
//  present, even if empty)
static void
s_set_bytes (byte **field, size_t *size, const msgpack_object *value, const char **problem)
{
    if (value->type != MSGPACK_OBJECT_BIN) {
        *problem = "bad bytes field";
        return;
    }
    free (*field);
    *size = value->via.bin.size;
    *field = (byte *) malloc (*size? *size: 1);
    if (!*field)
        *problem = "out of memory";
    else
        memcpy (*field, value->via.bin.ptr, *size);
}

//  Drop a record's payload (the job ended)
static void
s_drop_payload (zjq_job_t *job)
{
    free (job->payload);
    job->payload = NULL;
    job->payload_size = 0;
}

//  An attempt map into attempt (strings point into the map). Returns NULL,
//  or what is wrong.
static const char *
s_decode_attempt (const msgpack_object *map, zjq_attempt_t *attempt, char *error, char *worker)
{
    memset (attempt, 0, sizeof (*attempt));
    attempt->exit_code = -1;
    attempt->duration_ms = -1;
    if (map->type != MSGPACK_OBJECT_MAP)
        return "bad attempt";
    for (uint32_t index = 0; index < map->via.map.size; index++) {
        const msgpack_object *key = &map->via.map.ptr [index].key;
        const msgpack_object *value = &map->via.map.ptr [index].val;
        int64_t number = 0;
        bool is_int = s_obj_int (value, &number);
        if (s_obj_is (key, "err") || s_obj_is (key, "w")) {
            char *text = s_obj_is (key, "err")? error: worker;
            if (value->type != MSGPACK_OBJECT_STR || value->via.str.size > ZJQ_HISTORY_TEXT_MAX
            ||  memchr (value->via.str.ptr, 0, value->via.str.size))
                return "bad attempt text";
            memcpy (text, value->via.str.ptr, value->via.str.size);
            text [value->via.str.size] = 0;
            if (text == error)
                attempt->error = error;
            else
                attempt->worker = worker;
        }
        else
        if (key->type == MSGPACK_OBJECT_STR && !is_int)
            return "bad attempt field";
        else
        if (s_obj_is (key, "n"))   attempt->attempt = (int) number;
        else if (s_obj_is (key, "sa"))  attempt->started_ms = number;
        else if (s_obj_is (key, "fi"))  attempt->ended_ms = number;
        else if (s_obj_is (key, "dur")) attempt->duration_ms = number;
        else if (s_obj_is (key, "ec"))  attempt->exit_code = (int) number;
        else if (s_obj_is (key, "sig")) attempt->signal = (int) number;
    }
    return NULL;
}

//  Append an attempt map to a job's history (made if it has none)
static const char *
s_add_attempt (zjq_job_t *job, const msgpack_object *map)
{
    char error [ZJQ_HISTORY_TEXT_MAX + 1], worker [ZJQ_HISTORY_TEXT_MAX + 1];
    zjq_attempt_t attempt;
    const char *problem = s_decode_attempt (map, &attempt, error, worker);
    if (problem)
        return problem;
    if (!job->history)
        job->history = zjq_history_new (job->max_attempts);
    if (!job->history || zjq_history_add (job->history, &attempt) != 0)
        return "out of memory";
    return NULL;
}

//  An "h" map: the whole history of a job, replacing what it had
static const char *
s_decode_history (const msgpack_object *map, zjq_job_t *job)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return "bad history";
    zjq_history_destroy (&job->history);
    job->history = zjq_history_new (job->max_attempts);
    if (!job->history)
        return "out of memory";
    for (uint32_t index = 0; index < map->via.map.size; index++) {
        const msgpack_object *key = &map->via.map.ptr [index].key;
        const msgpack_object *value = &map->via.map.ptr [index].val;
        int64_t number = 0;
        if (s_obj_is (key, "a")) {
            if (value->type != MSGPACK_OBJECT_ARRAY)
                return "bad history attempts";
            for (uint32_t item = 0; item < value->via.array.size; item++) {
                const char *problem = s_add_attempt (job, &value->via.array.ptr [item]);
                if (problem)
                    return problem;
            }
        }
        else
        if (key->type == MSGPACK_OBJECT_STR && !s_obj_int (value, &number))
            return "bad history field";
        else
        if (s_obj_is (key, "b"))   job->history->budget = (int) number;
        else if (s_obj_is (key, "r")) job->history->retries = (uint32_t) number;
        else if (s_obj_is (key, "d")) job->history->dropped += (uint32_t) number;
    }
    return NULL;
}

//  Apply a JOB or STATE body to a job (and its queue name). Returns NULL,
//  or what is wrong.
static const char *
s_decode_job (const msgpack_object *body, zjq_job_t *job, char **queue_p)
{
    const char *problem = NULL;
    const msgpack_object *h_value = NULL;
    for (uint32_t index = 0; index < body->via.map.size && !problem; index++) {
        const msgpack_object *key = &body->via.map.ptr [index].key;
        const msgpack_object *value = &body->via.map.ptr [index].val;
        int64_t number = 0;
        bool is_int = s_obj_int (value, &number);
        if (s_obj_is (key, "v")) {
            if (!is_int || number < 1)
                problem = "bad record version";
            else
            if (number > ZJQ_JOB_RECORD_VERSION)
                problem = "job record version newer than this broker understands";
            //  Version 1 had no owner (no CURVE): its jobs have none, which
            //  is what an absent "own" gives
        }
        else
        if (s_obj_is (key, "q")) {
            free (*queue_p);
            *queue_p = s_obj_strdup (value);
            if (!*queue_p)
                problem = "bad queue";
        }
        else
        if (s_obj_is (key, "key"))
            s_set_text (&job->key, value, &problem);
        else
        if (s_obj_is (key, "own")) {
            if (value->type != MSGPACK_OBJECT_STR || value->via.str.size >= sizeof (job->owner))
                problem = "bad owner";
            else {
                memcpy (job->owner, value->via.str.ptr, value->via.str.size);
                job->owner [value->via.str.size] = 0;
            }
        }
        else
        if (s_obj_is (key, "err"))
            s_set_text (&job->error, value, &problem);
        else
        if (s_obj_is (key, "pay"))
            s_set_bytes (&job->payload, &job->payload_size, value, &problem);
        else
        if (s_obj_is (key, "res"))
            s_set_bytes (&job->result, &job->result_size, value, &problem);
        else
        if (s_obj_is (key, "h"))
            h_value = value;    //  once max is known
        else
        if (s_obj_is (key, "id"))
            ;                   //  the caller has it
        else {
            //  The rest are integers
            if (key->type == MSGPACK_OBJECT_STR && !is_int) {
                problem = "bad integer field";
                break;
            }
            if (s_obj_is (key, "seq"))      job->sequence = (uint64_t) number;
            else if (s_obj_is (key, "ord")) job->order = (uint64_t) number;
            else if (s_obj_is (key, "pri")) job->priority = (int) number;
            else if (s_obj_is (key, "max")) job->max_attempts = (int) number;
            else if (s_obj_is (key, "att")) job->attempt = (int) number;
            else if (s_obj_is (key, "st"))  job->state = (zjq_state_t) number;
            else if (s_obj_is (key, "jto")) job->job_timeout_ms = number;
            else if (s_obj_is (key, "ttl")) job->result_ttl_ms = number;
            else if (s_obj_is (key, "cr"))  job->created_ms = number;
            else if (s_obj_is (key, "sa"))  job->started_ms = number;
            else if (s_obj_is (key, "fi"))  job->finished_ms = number;
            else if (s_obj_is (key, "ex"))  job->expires_ms = number;
            //  Unknown keys are ignored: a newer writer may add some
        }
    }
    if (!problem && h_value)
        problem = s_decode_history (h_value, job);
    if (!problem && (job->state < ZJQ_STATE_QUEUED || job->state > ZJQ_STATE_CANCELLED))
        problem = "bad job state";
    //  A failed job keeps its payload (v3+: a dead letter can be retried)
    if (!problem && zjq_job_ended (job) && job->state != ZJQ_STATE_FAILED)
        s_drop_payload (job);
    return problem;
}

int
zjq_record_header_check (const byte *data, size_t size, uint32_t *format_p)
{
    assert (data || size == 0);
    *format_p = 0;
    if (size < ZJQ_JOURNAL_HEADER)
        return memcmp (data, ZJQ_JOURNAL_MAGIC, size < 8? size: 8) == 0? 1: -1;
    if (memcmp (data, ZJQ_JOURNAL_MAGIC, 8) != 0)
        return -1;
    if (zjq_crc32c (0, data, 12) != s_get32 (data + 12))
        return -2;
    *format_p = s_get32 (data + 8);
    return *format_p > ZJQ_JOURNAL_FORMAT? -3: 0;
}

const char *
zjq_record_open (zjq_record_t *self, int type, const byte *data, size_t size)
{
    assert (self);
    self->type = type;
    self->body = NULL;
    msgpack_unpacked_init (&self->unpacked);
    size_t offset = 0;
    if (msgpack_unpack_next (&self->unpacked, (const char *) data, size, &offset)
            != MSGPACK_UNPACK_SUCCESS
    ||  offset != size || self->unpacked.data.type != MSGPACK_OBJECT_MAP)
        return "undecodable body";
    self->body = &self->unpacked.data;
    return NULL;
}

void
zjq_record_close (zjq_record_t *self)
{
    assert (self);
    msgpack_unpacked_destroy (&self->unpacked);
    self->body = NULL;
}

bool
zjq_record_id (const zjq_record_t *self, char *id)
{
    assert (self && self->body);
    return s_body_id (self->body, id);
}

const char *
zjq_record_queue (const zjq_record_t *self, char **queue_p, bool *paused_p)
{
    assert (self && self->body && self->type == ZJQ_RECORD_QUEUE);
    const msgpack_object *body = self->body;
    const msgpack_object *name = NULL;
    *paused_p = false;
    for (uint32_t index = 0; index < body->via.map.size; index++) {
        const msgpack_object_kv *kv = &body->via.map.ptr [index];
        if (s_obj_is (&kv->key, "q") && kv->val.type == MSGPACK_OBJECT_STR)
            name = &kv->val;
        else
        if (s_obj_is (&kv->key, "p") && kv->val.type == MSGPACK_OBJECT_BOOLEAN)
            *paused_p = kv->val.via.boolean;
    }
    *queue_p = name? s_obj_strdup (name): NULL;
    return *queue_p? NULL: "queue record without a queue name";
}

void
zjq_record_generations (const zjq_record_t *self, zjq_record_generation_fn *fn, void *arg)
{
    assert (self && self->body && self->type == ZJQ_RECORD_GENERATION);
    const msgpack_object *body = self->body;
    for (uint32_t index = 0; index < body->via.map.size; index++) {
        const msgpack_object_kv *kv = &body->via.map.ptr [index];
        int64_t number;
        if (s_obj_is (&kv->key, "gen") && s_obj_int (&kv->val, &number))
            fn (arg, (uint64_t) number, 0);
        else
        if (s_obj_is (&kv->key, "hist") && kv->val.type == MSGPACK_OBJECT_ARRAY)
            for (uint32_t item = 0; item < kv->val.via.array.size; item++) {
                const msgpack_object *pair = &kv->val.via.array.ptr [item];
                int64_t generation, last;
                if (pair->type == MSGPACK_OBJECT_ARRAY && pair->via.array.size == 2
                &&  s_obj_int (&pair->via.array.ptr [0], &generation)
                &&  s_obj_int (&pair->via.array.ptr [1], &last))
                    fn (arg, (uint64_t) generation, (uint64_t) last);
            }
    }
}

const char *
zjq_record_decode_job (const zjq_record_t *self, zjq_job_t *job, char **queue_p)
{
    assert (self && self->body);
    assert (self->type == ZJQ_RECORD_JOB || self->type == ZJQ_RECORD_STATE);
    assert (job && queue_p);
    return s_decode_job (self->body, job, queue_p);
}

const char *
zjq_record_decode_attempt (const zjq_record_t *self, zjq_job_t *job)
{
    assert (self && self->body && self->type == ZJQ_RECORD_ATTEMPT);
    const msgpack_object *body = self->body;
    const msgpack_object *attempt = NULL;
    for (uint32_t index = 0; index < body->via.map.size; index++)
        if (s_obj_is (&body->via.map.ptr [index].key, "a"))
            attempt = &body->via.map.ptr [index].val;
    if (!attempt)
        return "attempt record without an attempt";
    return job? s_add_attempt (job, attempt): NULL;
}


//  --------------------------------------------------------------------------
//  Self test

//  The body of the record at offset (type in *type_p), for a decoder
static const byte *
s_test_body (const zjq_recbuf_t *buf, size_t offset, int *type_p, size_t *size_p)
{
    const char *why = NULL;
    size_t length = zjq_record_at (buf->data, buf->size, offset, &why);
    assert (length && !why);
    *type_p = buf->data [offset + ZJQ_RECORD_HEADER];
    *size_p = length - ZJQ_RECORD_HEADER - 1;
    return buf->data + offset + ZJQ_RECORD_HEADER + 1;
}

static void
s_test_generation (void *arg, uint64_t generation, uint64_t last)
{
    uint64_t *sum = (uint64_t *) arg;
    *sum += generation * 10 + last;
}

void
zjq_record_test (bool verbose)
{
    //  CRC-32C check value
    assert (zjq_crc32c (0, "123456789", 9) == 0xE3069283);
    zjq_recbuf_t buf = { 0 };
    zjq_record_encode_header (&buf);
    uint32_t format;
    assert (zjq_record_header_check (buf.data, buf.size, &format) == 0);
    assert (format == ZJQ_JOURNAL_FORMAT);
    assert (zjq_record_header_check (buf.data, 5, &format) == 1);
    //  A whole job, its state, an attempt, a queue, generations, a removal
    zjq_history_t *history = zjq_history_new (3);
    zjq_attempt_t attempt = { .attempt = 1, .exit_code = 3, .duration_ms = 4, .error = "bad",
                              .worker = "w1" };
    assert (history && zjq_history_add (history, &attempt) == 0);
    zjq_job_t job = { .sequence = 7, .order = 9, .queue = "q", .key = "k", .priority = 5,
                      .max_attempts = 3, .attempt = 1, .state = ZJQ_STATE_QUEUED,
                      .job_timeout_ms = 1000, .result_ttl_ms = 2000, .created_ms = 11,
                      .progress = -1, .payload = (byte *) "pay", .payload_size = 3,
                      .history = history };
    zjq_jobid_format (job.id, 1795000000000ULL, 7);
    size_t offsets [6];
    offsets [0] = buf.size;
    zjq_record_encode_job (&buf, &job, true);
    job.state = ZJQ_STATE_SUCCEEDED;
    job.result = (byte *) "res";
    job.result_size = 3;
    job.error = "fine";
    offsets [1] = buf.size;
    zjq_record_encode_job (&buf, &job, false);
    offsets [2] = buf.size;
    zjq_record_encode_attempt (&buf, &job);
    offsets [3] = buf.size;
    zjq_record_encode_queue (&buf, "paused-q", true);
    uint64_t pairs [4] = { 5, 0, 3, 4 };
    offsets [4] = buf.size;
    zjq_record_encode_generation (&buf, pairs, 2);
    offsets [5] = buf.size;
    zjq_record_encode_remove (&buf, &job);
    assert (!buf.oom);
    //  Decoded back with the same codec
    zjq_job_t back = { .progress = -1 };
    char *queue = NULL;
    int type;
    size_t size;
    const byte *body = s_test_body (&buf, offsets [0], &type, &size);
    zjq_record_t record;
    assert (type == ZJQ_RECORD_JOB && !zjq_record_open (&record, type, body, size));
    char id [ZJQ_JOBID_MAX];
    assert (zjq_record_id (&record, id) && streq (id, job.id));
    assert (!zjq_record_decode_job (&record, &back, &queue));
    zjq_record_close (&record);
    assert (streq (queue, "q") && streq (back.key, "k") && back.priority == 5);
    assert (back.payload_size == 3 && memcmp (back.payload, "pay", 3) == 0);
    assert (back.history && back.history->count == 1 && back.history->attempts [0].exit_code == 3);
    body = s_test_body (&buf, offsets [1], &type, &size);
    assert (type == ZJQ_RECORD_STATE && !zjq_record_open (&record, type, body, size));
    assert (!zjq_record_decode_job (&record, &back, &queue));
    zjq_record_close (&record);
    assert (back.state == ZJQ_STATE_SUCCEEDED && streq (back.error, "fine"));
    assert (back.payload == NULL && back.result_size == 3);     //  a success drops it
    body = s_test_body (&buf, offsets [2], &type, &size);
    assert (type == ZJQ_RECORD_ATTEMPT && !zjq_record_open (&record, type, body, size));
    assert (!zjq_record_decode_attempt (&record, &back));
    zjq_record_close (&record);
    assert (back.history->count == 2 && streq (back.history->attempts [1].worker, "w1"));
    body = s_test_body (&buf, offsets [3], &type, &size);
    assert (type == ZJQ_RECORD_QUEUE && !zjq_record_open (&record, type, body, size));
    char *name;
    bool paused;
    assert (!zjq_record_queue (&record, &name, &paused) && streq (name, "paused-q") && paused);
    free (name);
    zjq_record_close (&record);
    body = s_test_body (&buf, offsets [4], &type, &size);
    assert (type == ZJQ_RECORD_GENERATION && !zjq_record_open (&record, type, body, size));
    uint64_t sum = 0;
    zjq_record_generations (&record, s_test_generation, &sum);
    assert (sum == 50 + 50 + 34);
    zjq_record_close (&record);
    body = s_test_body (&buf, offsets [5], &type, &size);
    assert (type == ZJQ_RECORD_REMOVE && !zjq_record_open (&record, type, body, size));
    assert (zjq_record_id (&record, id) && streq (id, job.id));
    zjq_record_close (&record);
    //  Any flipped bit of a record (its length, checksum, type or body):
    //  the frame is refused, and the next good one is the record after it,
    //  never one before (issue 13: a journal_corrupt line once read
    //  offset=72511 next_good=7323)
    const char *why = NULL;
    for (size_t at = offsets [1]; at < offsets [2]; at++)
        for (int bit = 0; bit < 8; bit++) {
            buf.data [at] ^= (byte) (1 << bit);
            assert (zjq_record_at (buf.data, buf.size, offsets [1], &why) == 0 && why);
            size_t next = zjq_record_next_good (buf.data, buf.size, offsets [1]);
            assert (next > offsets [1] && next == offsets [2]);
            buf.data [at] ^= (byte) (1 << bit);
        }
    //  A flipped byte: the frame is refused, the next good one found
    buf.data [offsets [1] + ZJQ_RECORD_HEADER + 3] ^= 1;
    assert (zjq_record_at (buf.data, buf.size, offsets [1], &why) == 0 && why);
    assert (zjq_record_next_good (buf.data, buf.size, offsets [1]) == offsets [2]);
    assert (zjq_record_open (&record, ZJQ_RECORD_JOB, (const byte *) "\x01", 1) != NULL);
    zjq_record_close (&record);
    free (queue);
    zjq_job_free_fields (&back);
    zjq_history_destroy (&history);
    zjq_recbuf_free (&buf);
    if (verbose)
        printf ("(record ok) ");
}
