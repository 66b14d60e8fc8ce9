/*  zjq_record.h: the journal's record codec.

    One file knows the bytes of a journal: the file header, the framing of
    a record (length, CRC-32C, type) and the msgpack body of each record
    type. The file journal appends with the encoders, its compaction writes
    a rewrite with the same encoders, and its replay reads with the
    decoders. The format is described at the top of zjq_record.c; record
    types and the format version are registered in docs/protocol.md.

    Depends on the job record (zjq_job.h) only: not on the table, the store
    or the file.                                                            */

#ifndef ZJQ_RECORD_H_INCLUDED
#define ZJQ_RECORD_H_INCLUDED

#include "zjq_job.h"
#include <msgpack.h>

#define ZJQ_JOURNAL_FORMAT      2           //  2: adds ATTEMPT and QUEUE records
#define ZJQ_JOURNAL_MAGIC       "ZJQJRNL\n"
#define ZJQ_JOURNAL_HEADER      16          //  bytes of the file header
#define ZJQ_RECORD_HEADER       8           //  length + crc

//  Record types (docs/protocol.md keeps the registry)
enum {
    ZJQ_RECORD_JOB = 1,                     //  a whole job
    ZJQ_RECORD_STATE = 2,                   //  a change of a job's state
    ZJQ_RECORD_REMOVE = 3,                  //  a job left the table
    ZJQ_RECORD_GENERATION = 4,              //  generations known
    ZJQ_RECORD_ATTEMPT = 5,                 //  format 2+: a failed attempt
    ZJQ_RECORD_QUEUE = 6                    //  format 2+: a queue paused or resumed
};

//  A growable byte buffer that the encoders append records to.
typedef struct {
    byte *data;
    size_t size;                //  bytes in use
    size_t max;                 //  bytes allocated
    bool oom;                   //  an append ran out of memory (sticky until cleared)
} zjq_recbuf_t;

//  Append bytes. Returns 0, or -1 if out of memory (oom set, unchanged).
int
    zjq_recbuf_append (zjq_recbuf_t *buf, const void *data, size_t size);

//  Free a large buffer once it is empty, so one burst does not pin memory.
void
    zjq_recbuf_trim (zjq_recbuf_t *buf);

//  Free the buffer and zero it.
void
    zjq_recbuf_free (zjq_recbuf_t *buf);

//  CRC-32C (Castagnoli) of data, continuing from crc (0 to start).
uint32_t
    zjq_crc32c (uint32_t crc, const void *data, size_t size);

//  --- Encoding. Each appends one framed record to buf; if memory runs out,
//  buf->oom is set and what was appended of it is garbage past the size the
//  caller saw before (the caller cuts it off).

//  The file header (magic, format).
void
    zjq_record_encode_header (zjq_recbuf_t *buf);
//  A JOB record (whole, with payload, result, history) or a STATE record
//  (the fields that change: state, attempt, times, error, a success's result).
void
    zjq_record_encode_job (zjq_recbuf_t *buf, const zjq_job_t *job, bool whole);
//  An ATTEMPT record: the last attempt of the job's history (it has one).
void
    zjq_record_encode_attempt (zjq_recbuf_t *buf, const zjq_job_t *job);
//  A REMOVE record.
void
    zjq_record_encode_remove (zjq_recbuf_t *buf, const zjq_job_t *job);
//  A QUEUE record.
void
    zjq_record_encode_queue (zjq_recbuf_t *buf, const char *queue, bool paused);
//  A GENERATION record: count (generation, last sequence) pairs, the first
//  being the generation that follows.
void
    zjq_record_encode_generation (zjq_recbuf_t *buf, const uint64_t *pairs, size_t count);

//  --- Reading a file

//  Check a file's header (size bytes at data). Returns 0 if good (format in
//  *format_p), 1 if the file is a torn header (shorter than one, the magic
//  so far right), -1 bad magic, -2 header checksum mismatch, -3 a newer
//  format than this broker reads (*format_p says which).
int
    zjq_record_header_check (const byte *data, size_t size, uint32_t *format_p);

//  A well-framed record at offset: length within the data, CRC right, known
//  type. Returns its total size, or 0 with *why set. Its type is the byte
//  at offset + ZJQ_RECORD_HEADER, its body follows.
size_t
    zjq_record_at (const byte *data, size_t size, size_t offset, const char **why);

//  The offset of the next well-framed record after a bad one, or size.
size_t
    zjq_record_next_good (const byte *data, size_t size, size_t offset);

//  --- Decoding a record's body

//  A decoded body (valid until zjq_record_close).
typedef struct {
    int type;                   //  ZJQ_RECORD_*
    msgpack_unpacked unpacked;
    const msgpack_object *body; //  the map, or NULL if undecodable
} zjq_record_t;

//  Decode a body of a type. Returns NULL, or what is wrong. Close it in
//  either case.
const char *
    zjq_record_open (zjq_record_t *self, int type, const byte *data, size_t size);
void
    zjq_record_close (zjq_record_t *self);

//  The record's job id, copied into id (ZJQ_JOBID_MAX); false if none or bad.
bool
    zjq_record_id (const zjq_record_t *self, char *id);

//  A QUEUE record: the queue name (malloc'd, the caller frees it) and flag.
//  Returns NULL, or what is wrong (then *queue_p is NULL).
const char *
    zjq_record_queue (const zjq_record_t *self, char **queue_p, bool *paused_p);

//  Given each generation of a GENERATION record: the one that follows with
//  last_sequence 0, then each pair.
typedef void (zjq_record_generation_fn) (void *arg, uint64_t generation,
                                         uint64_t last_sequence);
void
    zjq_record_generations (const zjq_record_t *self, zjq_record_generation_fn *fn, void *arg);

//  A JOB or STATE record: merge its fields into job (a record that owns its
//  fields; zjq_job_free_fields) and its queue name into *queue_p (malloc'd,
//  replaced). Upgrades older record versions. Returns NULL, or what is
//  wrong ("... newer ..." if the version is newer than this broker reads).
const char *
    zjq_record_decode_job (const zjq_record_t *self, zjq_job_t *job, char **queue_p);

//  An ATTEMPT record: append its attempt to job's history (made if none);
//  job may be NULL to only check it. Returns NULL, or what is wrong.
const char *
    zjq_record_decode_attempt (const zjq_record_t *self, zjq_job_t *job);

//  Self test
void
    zjq_record_test (bool verbose);

#endif
