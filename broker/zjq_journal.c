/*  zjq_journal.c: the broker's append-only journal. See zjq_journal.h.

    On-disk format of DIR/journal.zjq (all integers little-endian):

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

    Threads: the broker's loop owns everything here except s_shared_t, which
    it shares with the sync thread under the mutex. The sync thread only
    calls fdatasync, and at the end of a compaction renames the new file;
    it never writes or closes a descriptor.                                  */

#include "zjq_journal.h"
#include "zjq_log.h"
#include "zjq_jobtable.h"
#include "zjq_queue.h"
#include "zjq_jobid.h"
#include "zjq_util.h"
#include <msgpack.h>
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ZJQ_JOURNAL_FORMAT      2           //  2: adds ATTEMPT and QUEUE records
#define ZJQ_JOURNAL_MAGIC       "ZJQJRNL\n"
#define ZJQ_JOURNAL_HEADER      16
#define ZJQ_JOURNAL_FILE        "journal.zjq"
#define ZJQ_JOURNAL_COMPACT     "journal.zjq.compact"
#define ZJQ_JOURNAL_LOCK        "lock"
#define ZJQ_RECORD_HEADER       8           //  length + crc
#define ZJQ_COMPACT_JOBS        4096        //  jobs rewritten per loop turn
#define ZJQ_COMPACT_BYTES       (4 << 20)   //  bytes rewritten per loop turn
#define ZJQ_RETRY_MS            1000        //  retry of an unhealthy journal
#define ZJQ_BUFFER_KEEP         (16 << 20)  //  larger idle buffers are freed

enum {
    ZJQ_RECORD_JOB = 1,
    ZJQ_RECORD_STATE = 2,
    ZJQ_RECORD_REMOVE = 3,
    ZJQ_RECORD_GENERATION = 4,
    ZJQ_RECORD_ATTEMPT = 5,
    ZJQ_RECORD_QUEUE = 6
};

//  What s_append encodes: a job record of a type, or a queue's paused flag
typedef struct {
    int type;
    const zjq_job_t *job;       //  JOB, STATE, REMOVE, ATTEMPT (its last attempt)
    const char *queue;          //  QUEUE
    bool paused;                //  QUEUE
} s_record_t;

//  A growable byte buffer that msgpack writes into
typedef struct {
    byte *data;
    size_t size;                //  bytes in use
    size_t max;                 //  bytes allocated
    bool oom;                   //  an append ran out of memory
} s_buf_t;

//  One journal file and the bytes not yet written to it
typedef struct {
    int fd;                     //  or -1
    uint64_t offset;            //  bytes in the file: where the buffer goes
    s_buf_t buf;                //  appended, not written
    uint64_t buffered_lsn;      //  LSN of the last record in buf (or written)
    uint64_t written_lsn;       //  LSN of the last record written
} s_file_t;

//  State shared with the sync thread, under the mutex
typedef struct {
    int sync_fd;                //  file to fdatasync, -1 when unhealthy
    uint64_t target;            //  LSN written to sync_fd
    uint64_t synced;            //  LSN known durable
    int sync_error;             //  errno of a failed fdatasync, until taken
    bool switch_request;        //  rename the compaction file over the journal
    int switch_fd;              //  its descriptor
    uint64_t switch_lsn;        //  LSN it holds
    bool switch_done;           //  the request was handled, until taken
    bool switched;              //  ... and the file was renamed
    int switch_error;           //  errno if it failed
    bool stop;                  //  the thread must end
} s_shared_t;

//  A job read back from the journal
typedef struct {
    zjq_job_t job;
    char *queue;                //  queue name (job.queue is NULL until restored)
} s_rjob_t;

struct _zjq_journal_t {
    //  Settings
    char *dir;                  //  the directory
    char *path;                 //  DIR/journal.zjq
    char *compact_path;         //  DIR/journal.zjq.compact
    zjq_fsync_policy_t policy;
    int64_t interval_ms;
    uint64_t compact_size;
    uint64_t live_jobs;         //  jobs in the table when the last rewrite began
    bool salvage;
    zjq_journal_write_fn *write_fn;
    zjq_journal_sync_fn *sync_fn;
    //  Files
    int lock_fd;                //  holds the flock
    int dir_fd;                 //  for fsync after a rename
    int event_fd;               //  the sync thread's news
    s_file_t main;              //  journal.zjq
    s_file_t compact;           //  journal.zjq.compact while compacting
    //  Log sequence
    uint64_t lsn;               //  of the last record appended
    uint64_t durable;           //  up to here the policy's promise holds
    //  Health
    bool failed;                //  the journal cannot be written
    int error;                  //  errno of the failure
    char last_error [160];      //  last error seen, for STATS
    int64_t retry_at;           //  monotonic ms of the next recovery attempt
    unsigned retries;           //  recovery attempts since the failure
    //  Compaction
    bool compacting;            //  compact is being written
    bool snapshot_done;         //  every live job is in compact's buffer
    bool switch_requested;      //  the sync thread was asked to rename it
    bool compact_broken;        //  a write to it failed after the request
    int compact_error;          //  ... with this errno
    int64_t compact_retry_at;   //  monotonic ms before which none starts
    zjq_jobtable_t *table;      //  the table being journaled (not owned)
    //  Replay
    zhashx_t *replayed;         //  id -> s_rjob_t
    zhashx_t *paused;           //  names of the paused queues (replayed, then kept)
    uint64_t *generations;      //  (generation, last sequence) pairs seen
    size_t generation_count;
    //  Sync thread
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    s_shared_t shared;
    zjq_journal_stats_t stats;
};


//  --------------------------------------------------------------------------
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

static int
s_buf_append (s_buf_t *buf, const void *data, size_t size)
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
    return s_buf_append ((s_buf_t *) data, bytes, size);
}

//  Free a large buffer once it is empty, so one burst does not pin memory
static void
s_buf_trim (s_buf_t *buf)
{
    if (buf->size == 0 && buf->max > ZJQ_BUFFER_KEEP) {
        free (buf->data);
        buf->data = NULL;
        buf->max = 0;
    }
}

static void
s_buf_free (s_buf_t *buf)
{
    free (buf->data);
    memset (buf, 0, sizeof (*buf));
}

static void
s_pack_key (msgpack_packer *packer, const char *key)
{
    size_t len = strlen (key);
    msgpack_pack_str (packer, len);
    msgpack_pack_str_body (packer, key, len);
}

static void
s_pack_str (msgpack_packer *packer, const char *key, const char *value)
{
    s_pack_key (packer, key);
    s_pack_key (packer, value);
}

static void
s_pack_int (msgpack_packer *packer, const char *key, int64_t value)
{
    s_pack_key (packer, key);
    msgpack_pack_int64 (packer, value);
}

static void
s_pack_bin (msgpack_packer *packer, const char *key, const void *data, size_t size)
{
    s_pack_key (packer, key);
    msgpack_pack_bin (packer, size);
    msgpack_pack_bin_body (packer, data, size);
}

//  One attempt of a history, as a map
static void
s_pack_attempt (msgpack_packer *packer, const zjq_attempt_t *attempt)
{
    size_t count = 5 + (attempt->exit_code >= 0) + (attempt->signal > 0) + (attempt->worker != NULL);
    msgpack_pack_map (packer, count);
    s_pack_int (packer, "n", attempt->attempt);
    s_pack_str (packer, "err", attempt->error? attempt->error: "");
    s_pack_int (packer, "sa", attempt->started_ms);
    s_pack_int (packer, "fi", attempt->ended_ms);
    s_pack_int (packer, "dur", attempt->duration_ms);
    if (attempt->exit_code >= 0)
        s_pack_int (packer, "ec", attempt->exit_code);
    if (attempt->signal > 0)
        s_pack_int (packer, "sig", attempt->signal);
    if (attempt->worker)
        s_pack_str (packer, "w", attempt->worker);
}

static void
s_pack_history (msgpack_packer *packer, const zjq_history_t *history)
{
    s_pack_key (packer, "h");
    msgpack_pack_map (packer, 4);
    s_pack_int (packer, "b", history->budget);
    s_pack_int (packer, "r", history->retries);
    s_pack_int (packer, "d", history->dropped);
    s_pack_key (packer, "a");
    msgpack_pack_array (packer, history->count);
    for (uint32_t index = 0; index < history->count; index++)
        s_pack_attempt (packer, &history->attempts [index]);
}

//  Frame the body that follows start in buf: length and CRC
static void
s_record_seal (s_buf_t *buf, size_t start)
{
    byte *record = buf->data + start;
    uint32_t length = (uint32_t) (buf->size - start - ZJQ_RECORD_HEADER);
    s_put32 (record, length);
    s_put32 (record + 4, zjq_crc32c (0, record + ZJQ_RECORD_HEADER, length));
}

//  Start a record of a type in buf; returns its start, for s_record_seal
static size_t
s_record_open (s_buf_t *buf, msgpack_packer *packer, int type)
{
    size_t start = buf->size;
    byte head [ZJQ_RECORD_HEADER + 1] = { 0 };
    head [ZJQ_RECORD_HEADER] = (byte) type;
    s_buf_append (buf, head, sizeof (head));
    msgpack_packer_init (packer, buf, s_buf_write);
    return start;
}

//  A JOB record (whole) or a STATE record (the fields that change)
static void
s_encode_job (s_buf_t *buf, const zjq_job_t *job, bool whole)
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
    s_pack_int (&packer, "v", ZJQ_JOB_RECORD_VERSION);
    s_pack_str (&packer, "id", job->id);
    if (whole) {
        s_pack_int (&packer, "seq", (int64_t) job->sequence);
        s_pack_int (&packer, "ord", (int64_t) job->order);
        s_pack_str (&packer, "q", job->queue);
        s_pack_int (&packer, "pri", job->priority);
        s_pack_int (&packer, "max", job->max_attempts);
        s_pack_int (&packer, "jto", job->job_timeout_ms);
        s_pack_int (&packer, "ttl", job->result_ttl_ms);
        s_pack_int (&packer, "cr", job->created_ms);
        if (job->key)
            s_pack_str (&packer, "key", job->key);
        if (*job->owner)
            s_pack_str (&packer, "own", job->owner);
        if (payload)
            s_pack_bin (&packer, "pay", job->payload, job->payload_size);
        if (history)
            s_pack_history (&packer, job->history);
    }
    s_pack_int (&packer, "st", job->state);
    s_pack_int (&packer, "att", job->attempt);
    s_pack_int (&packer, "sa", job->started_ms);
    s_pack_int (&packer, "fi", job->finished_ms);
    s_pack_int (&packer, "ex", job->expires_ms);
    if (job->error)
        s_pack_str (&packer, "err", job->error);
    if (result)
        s_pack_bin (&packer, "res", job->result, job->result_size);
    if (!buf->oom)
        s_record_seal (buf, start);
}

//  The last attempt of a job's history
static void
s_encode_attempt (s_buf_t *buf, const zjq_job_t *job)
{
    const zjq_attempt_t *attempt = job->history? zjq_history_last (job->history): NULL;
    assert (attempt);
    msgpack_packer packer;
    size_t start = s_record_open (buf, &packer, ZJQ_RECORD_ATTEMPT);
    msgpack_pack_map (&packer, 3);
    s_pack_int (&packer, "v", ZJQ_JOB_RECORD_VERSION);
    s_pack_str (&packer, "id", job->id);
    s_pack_key (&packer, "a");
    s_pack_attempt (&packer, attempt);
    if (!buf->oom)
        s_record_seal (buf, start);
}

static void
s_encode_queue (s_buf_t *buf, const char *queue, bool paused)
{
    msgpack_packer packer;
    size_t start = s_record_open (buf, &packer, ZJQ_RECORD_QUEUE);
    msgpack_pack_map (&packer, 2);
    s_pack_str (&packer, "q", queue);
    s_pack_key (&packer, "p");
    if (paused)
        msgpack_pack_true (&packer);
    else
        msgpack_pack_false (&packer);
    if (!buf->oom)
        s_record_seal (buf, start);
}

//  A QUEUE record for every paused queue (the start of a rewrite)
static void
s_encode_paused (s_buf_t *buf, zhashx_t *paused)
{
    for (void *item = zhashx_first (paused); item; item = zhashx_next (paused))
        s_encode_queue (buf, (const char *) zhashx_cursor (paused), true);
}

static void
s_encode_remove (s_buf_t *buf, const zjq_job_t *job)
{
    msgpack_packer packer;
    size_t start = s_record_open (buf, &packer, ZJQ_RECORD_REMOVE);
    msgpack_pack_map (&packer, 1);
    s_pack_str (&packer, "id", job->id);
    if (!buf->oom)
        s_record_seal (buf, start);
}

//  The generation that follows and every one the table knows
static void
s_encode_generation (s_buf_t *buf, zjq_jobtable_t *table)
{
    msgpack_packer packer;
    size_t start = s_record_open (buf, &packer, ZJQ_RECORD_GENERATION);
    uint64_t generation, last;
    size_t count = 0;
    while (zjq_jobtable_generation_at (table, count, &generation, &last))
        count++;
    zjq_jobtable_generation_at (table, 0, &generation, &last);
    msgpack_pack_map (&packer, 2);
    s_pack_int (&packer, "gen", (int64_t) generation);
    s_pack_key (&packer, "hist");
    msgpack_pack_array (&packer, count);
    for (size_t index = 0; index < count; index++) {
        zjq_jobtable_generation_at (table, index, &generation, &last);
        msgpack_pack_array (&packer, 2);
        msgpack_pack_uint64 (&packer, generation);
        msgpack_pack_uint64 (&packer, last);
    }
    if (!buf->oom)
        s_record_seal (buf, start);
}

static void
s_encode_header (s_buf_t *buf)
{
    byte header [ZJQ_JOURNAL_HEADER];
    memcpy (header, ZJQ_JOURNAL_MAGIC, 8);
    s_put32 (header + 8, ZJQ_JOURNAL_FORMAT);
    s_put32 (header + 12, zjq_crc32c (0, header, 12));
    s_buf_append (buf, header, sizeof (header));
}


//  --------------------------------------------------------------------------
//  Files, failure and the sync thread's side of things

static ssize_t
s_pwrite (int fd, const void *data, size_t size, off_t offset)
{
    return pwrite (fd, data, size, offset);
}

static int
s_fdatasync (int fd)
{
    return fdatasync (fd);
}

static void
s_file_reset (s_file_t *file)
{
    s_buf_free (&file->buf);
    memset (file, 0, sizeof (*file));
    file->fd = -1;
}

//  Write a file's buffer at its offset. Returns 0, or an errno (the buffer
//  is kept; what was written of it is garbage past the file's offset).
static int
s_file_write (zjq_journal_t *self, s_file_t *file)
{
    size_t done = 0;
    while (done < file->buf.size) {
        ssize_t rc = self->write_fn (file->fd, file->buf.data + done, file->buf.size - done,
                                     (off_t) (file->offset + done));
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return rc < 0 && errno? errno: EIO;
        done += (size_t) rc;
    }
    file->offset += file->buf.size;
    file->buf.size = 0;
    file->written_lsn = file->buffered_lsn;
    s_buf_trim (&file->buf);
    return 0;
}

static void
s_notify (zjq_journal_t *self)
{
    uint64_t one = 1;
    if (write (self->event_fd, &one, sizeof (one)) == -1 && errno != EAGAIN)
        zjq_log_error ("journal_error", "what=%s error=%s", "cannot signal the broker loop",
                       strerror (errno));
}

static void
s_set_error (zjq_journal_t *self, const char *what, int error)
{
    snprintf (self->last_error, sizeof (self->last_error), "%s: %s", what, strerror (error));
}

//  The journal cannot be written: stop writing journal.zjq (it is replaced
//  by the next successful rewrite) and drop its unwritten records; the
//  table in memory still has their effect.
static void
s_fail (zjq_journal_t *self, const char *what, int error)
{
    s_set_error (self, what, error);
    if (!self->failed)
        zjq_log_error ("journal_failed", "path=%s call=%s error=%s retry_ms=%d msg=%s", self->path,
                       what, strerror (error), ZJQ_RETRY_MS,
                       "new jobs are rejected until the journal can be written again");
    self->failed = true;
    self->error = error;
    self->retries = 0;
    self->retry_at = zjq_mono_ms () + ZJQ_RETRY_MS;
    self->main.buf.size = 0;
    s_buf_trim (&self->main.buf);
    pthread_mutex_lock (&self->mutex);
    self->shared.sync_fd = -1;
    pthread_mutex_unlock (&self->mutex);
}

//  Give up on the compaction file (not renamed); error is why, 0 for none
static void
s_compact_abort (zjq_journal_t *self, const char *what, int error)
{
    if (error) {
        s_set_error (self, what, error);
        if (!self->failed || self->retries++ == 0)
            zjq_log_warning ("journal_rewrite_abandoned", "path=%s call=%s error=%s", self->path,
                             what, strerror (error));
    }
    if (self->compact.fd >= 0) {
        close (self->compact.fd);
        unlink (self->compact_path);
    }
    if (self->table)
        zjq_jobtable_scan_stop (self->table);
    s_file_reset (&self->compact);
    self->compact_error = error;
    self->compacting = false;
    self->snapshot_done = false;
    self->switch_requested = false;
    self->compact_broken = false;
    self->compact_retry_at = zjq_mono_ms () + ZJQ_RETRY_MS;
    if (self->failed)
        self->retry_at = self->compact_retry_at;
}

//  The compaction file was renamed over the journal: it is the journal now
static void
s_compact_adopt (zjq_journal_t *self, uint64_t lsn)
{
    if (self->main.fd >= 0)
        close (self->main.fd);
    s_buf_free (&self->main.buf);
    self->main = self->compact;
    memset (&self->compact, 0, sizeof (self->compact));
    self->compact.fd = -1;
    self->compacting = false;
    self->snapshot_done = false;
    self->switch_requested = false;
    self->stats.compactions++;
    if (self->compact_broken) {
        //  Records after the rename did not reach it: rewrite again
        self->compact_broken = false;
        s_fail (self, "write", self->compact_error);
        return;
    }
    if (lsn > self->durable)
        self->durable = lsn;
    if (self->failed) {
        zjq_log_info ("journal_writable", "path=%s retries=%u msg=%s", self->path, self->retries,
                      "written again; accepting new jobs");
        self->failed = false;
        self->error = 0;
    }
}

//  The sync thread: fdatasync per the policy, and renames on request
static void *
s_sync_thread (void *arg)
{
    zjq_journal_t *self = (zjq_journal_t *) arg;
    s_shared_t *shared = &self->shared;
    int64_t last_sync = 0;
    pthread_mutex_lock (&self->mutex);
    while (!shared->stop) {
        if (shared->switch_request) {
            int fd = shared->switch_fd;
            uint64_t lsn = shared->switch_lsn;
            shared->switch_request = false;
            pthread_mutex_unlock (&self->mutex);
            int error = 0;
            bool renamed = false;
            if (self->sync_fn (fd) == -1)
                error = errno? errno: EIO;
            else
            if (rename (self->compact_path, self->path) == -1)
                error = errno;
            else {
                renamed = true;
                if (self->sync_fn (self->dir_fd) == -1)
                    error = errno? errno: EIO;
            }
            last_sync = zjq_mono_ms ();
            pthread_mutex_lock (&self->mutex);
            shared->switch_done = true;
            shared->switched = renamed;
            shared->switch_error = error;
            if (renamed) {
                shared->sync_fd = error? -1: fd;
                if (!error && lsn > shared->synced)
                    shared->synced = lsn;
            }
            s_notify (self);
            continue;
        }
        if (self->policy != ZJQ_FSYNC_NEVER && shared->sync_fd >= 0
        &&  shared->target > shared->synced) {
            int64_t now = zjq_mono_ms ();
            if (self->policy == ZJQ_FSYNC_INTERVAL && now < last_sync + self->interval_ms) {
                struct timespec until;
                clock_gettime (CLOCK_MONOTONIC, &until);
                int64_t wait_ns = (last_sync + self->interval_ms - now) * 1000000LL;
                until.tv_sec += wait_ns / 1000000000LL;
                until.tv_nsec += wait_ns % 1000000000LL;
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait (&self->cond, &self->mutex, &until);
                continue;
            }
            int fd = shared->sync_fd;
            uint64_t target = shared->target;
            pthread_mutex_unlock (&self->mutex);
            int error = self->sync_fn (fd) == -1? (errno? errno: EIO): 0;
            last_sync = zjq_mono_ms ();
            pthread_mutex_lock (&self->mutex);
            if (error)
                shared->sync_error = error;
            else
            if (fd == shared->sync_fd && target > shared->synced)
                shared->synced = target;
            s_notify (self);
            continue;
        }
        pthread_cond_wait (&self->cond, &self->mutex);
    }
    pthread_mutex_unlock (&self->mutex);
    return NULL;
}


//  --------------------------------------------------------------------------
//  Constructor and destructor

static char *
s_join (const char *dir, const char *name)
{
    size_t size = strlen (dir) + 1 + strlen (name) + 1;
    char *path = (char *) malloc (size);
    if (path)
        snprintf (path, size, "%s/%s", dir, name);
    return path;
}

static void s_rjob_free (s_rjob_t **rjob_p);

static void
s_replayed_free (zjq_journal_t *self)
{
    if (!self->replayed)
        return;
    for (s_rjob_t *rjob = (s_rjob_t *) zhashx_first (self->replayed); rjob;
         rjob = (s_rjob_t *) zhashx_next (self->replayed)) {
        s_rjob_free (&rjob);
    }
    zhashx_destroy (&self->replayed);
}

zjq_journal_t *
zjq_journal_new (const zjq_journal_config_t *config)
{
    assert (config && config->dir);
    zjq_journal_t *self = (zjq_journal_t *) calloc (1, sizeof (zjq_journal_t));
    if (!self) {
        zjq_log_error ("out_of_memory", "what=%s", "journal");
        return NULL;
    }
    self->lock_fd = self->dir_fd = self->event_fd = -1;
    s_file_reset (&self->main);
    s_file_reset (&self->compact);
    pthread_mutex_init (&self->mutex, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init (&attr);
    pthread_condattr_setclock (&attr, CLOCK_MONOTONIC);
    pthread_cond_init (&self->cond, &attr);
    pthread_condattr_destroy (&attr);
    self->shared.sync_fd = -1;
    self->shared.switch_fd = -1;
    self->policy = config->policy;
    self->interval_ms = config->interval_ms > 0? config->interval_ms: 5;
    self->compact_size = config->compact_size;
    self->salvage = config->salvage;
    self->write_fn = s_pwrite;
    self->sync_fn = s_fdatasync;
    self->dir = strdup (config->dir);
    self->path = s_join (config->dir, ZJQ_JOURNAL_FILE);
    self->compact_path = s_join (config->dir, ZJQ_JOURNAL_COMPACT);
    char *lock_path = s_join (config->dir, ZJQ_JOURNAL_LOCK);
    self->replayed = zhashx_new ();
    self->paused = zhashx_new ();
    if (!self->dir || !self->path || !self->compact_path || !lock_path || !self->replayed
    ||  !self->paused) {
        zjq_log_error ("out_of_memory", "what=%s", "journal");
        goto err;
    }
    zhashx_set_key_duplicator (self->replayed, NULL);
    zhashx_set_key_destructor (self->replayed, NULL);
    if (mkdir (config->dir, 0755) == -1 && errno != EEXIST) {
        zjq_log_error ("journal_error", "dir=%s what=%s error=%s", config->dir,
                       "cannot create the directory", strerror (errno));
        goto err;
    }
    self->dir_fd = open (config->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dir_fd == -1) {
        zjq_log_error ("journal_error", "dir=%s what=%s error=%s", config->dir,
                       "cannot open the directory", strerror (errno));
        goto err;
    }
    self->lock_fd = open (lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->lock_fd == -1) {
        zjq_log_error ("journal_error", "path=%s what=%s error=%s", lock_path, "cannot open",
                       strerror (errno));
        goto err;
    }
    if (flock (self->lock_fd, LOCK_EX | LOCK_NB) == -1) {
        if (errno == EWOULDBLOCK)
            zjq_log_error ("journal_error", "dir=%s lock=%s what=%s", config->dir, lock_path,
                           "in use by another broker");
        else
            zjq_log_error ("journal_error", "path=%s what=%s error=%s", lock_path, "cannot lock",
                           strerror (errno));
        goto err;
    }
    //  A rewrite that did not finish: the journal itself is intact
    if (unlink (self->compact_path) == 0)
        zjq_log_info ("journal_cleanup", "path=%s msg=%s", self->compact_path,
                      "removed, left by an unfinished rewrite");
    self->main.fd = open (self->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (self->main.fd == -1) {
        zjq_log_error ("journal_error", "path=%s what=%s error=%s", self->path, "cannot open",
                       strerror (errno));
        goto err;
    }
    self->event_fd = eventfd (0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (self->event_fd == -1) {
        zjq_log_error ("journal_error", "what=%s error=%s", "cannot create an eventfd",
                       strerror (errno));
        goto err;
    }
    free (lock_path);
    return self;

err:
    free (lock_path);
    zjq_journal_destroy (&self);
    return NULL;
}

void
zjq_journal_destroy (zjq_journal_t **self_p)
{
    assert (self_p);
    zjq_journal_t *self = *self_p;
    if (!self)
        return;
    if (self->thread_started) {
        pthread_mutex_lock (&self->mutex);
        self->shared.stop = true;
        pthread_cond_signal (&self->cond);
        pthread_mutex_unlock (&self->mutex);
        pthread_join (self->thread, NULL);
        zjq_journal_process (self);
    }
    if (self->table)
        zjq_jobtable_set_journal (self->table, NULL);
    if (self->compacting)
        s_compact_abort (self, NULL, 0);
    if (self->main.fd >= 0 && !self->failed && self->thread_started) {
        int error = self->main.buf.size? s_file_write (self, &self->main): 0;
        if (error || self->sync_fn (self->main.fd) == -1)
            zjq_log_error ("journal_error", "path=%s what=%s error=%s", self->path,
                           "final write failed", strerror (error? error: errno));
    }
    if (self->main.fd >= 0)
        close (self->main.fd);
    s_file_reset (&self->main);
    s_file_reset (&self->compact);
    if (self->event_fd >= 0)
        close (self->event_fd);
    if (self->dir_fd >= 0)
        close (self->dir_fd);
    if (self->lock_fd >= 0)
        close (self->lock_fd);      //  releases the flock
    s_replayed_free (self);
    zhashx_destroy (&self->paused);
    free (self->generations);
    free (self->dir);
    free (self->path);
    free (self->compact_path);
    pthread_mutex_destroy (&self->mutex);
    pthread_cond_destroy (&self->cond);
    free (self);
    *self_p = NULL;
}


//  --------------------------------------------------------------------------
//  Replay

static void
s_note_generation (zjq_journal_t *self, uint64_t generation, uint64_t last)
{
    for (size_t index = 0; index < self->generation_count; index++)
        if (self->generations [2 * index] == generation) {
            if (last > self->generations [2 * index + 1])
                self->generations [2 * index + 1] = last;
            return;
        }
    uint64_t *pairs = (uint64_t *) realloc (self->generations,
                                            (self->generation_count + 1) * 2 * sizeof (uint64_t));
    if (!pairs)
        return;                 //  only costs an ENOTFOUND instead of EEXPIRED
    self->generations = pairs;
    pairs [2 * self->generation_count] = generation;
    pairs [2 * self->generation_count + 1] = last;
    self->generation_count++;
}

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

//  Apply a JOB or STATE body to a record. Returns NULL, or what is wrong.
static const char *
s_decode_job (const msgpack_object *body, s_rjob_t *rjob)
{
    const char *problem = NULL;
    zjq_job_t *job = &rjob->job;
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
            free (rjob->queue);
            rjob->queue = s_obj_strdup (value);
            if (!rjob->queue)
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

static void
s_rjob_free (s_rjob_t **rjob_p)
{
    s_rjob_t *rjob = *rjob_p;
    if (!rjob)
        return;
    free (rjob->queue);
    zjq_job_free_fields (&rjob->job);
    free (rjob);
    *rjob_p = NULL;
}

//  Apply one well-framed record. Returns NULL, or what is wrong with it
//  (*fatal set if no salvage can help: a newer version).
static const char *
s_apply (zjq_journal_t *self, int type, const byte *data, size_t size, bool *fatal)
{
    msgpack_unpacked unpacked;
    msgpack_unpacked_init (&unpacked);
    size_t offset = 0;
    const char *problem = NULL;
    if (msgpack_unpack_next (&unpacked, (const char *) data, size, &offset)
            != MSGPACK_UNPACK_SUCCESS
    ||  offset != size || unpacked.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy (&unpacked);
        return "undecodable body";
    }
    const msgpack_object *body = &unpacked.data;
    char id [ZJQ_JOBID_MAX];
    if (type == ZJQ_RECORD_QUEUE) {
        const msgpack_object *name = NULL;
        bool paused = false;
        for (uint32_t index = 0; index < body->via.map.size; index++) {
            const msgpack_object_kv *kv = &body->via.map.ptr [index];
            if (s_obj_is (&kv->key, "q") && kv->val.type == MSGPACK_OBJECT_STR)
                name = &kv->val;
            else
            if (s_obj_is (&kv->key, "p") && kv->val.type == MSGPACK_OBJECT_BOOLEAN)
                paused = kv->val.via.boolean;
        }
        char *text = name? s_obj_strdup (name): NULL;
        if (!text)
            problem = "queue record without a queue name";
        else
        if (paused)
            zhashx_update (self->paused, text, self->paused);
        else
            zhashx_delete (self->paused, text);
        free (text);
    }
    else
    if (type == ZJQ_RECORD_GENERATION) {
        for (uint32_t index = 0; index < body->via.map.size; index++) {
            const msgpack_object_kv *kv = &body->via.map.ptr [index];
            int64_t number;
            if (s_obj_is (&kv->key, "gen") && s_obj_int (&kv->val, &number))
                s_note_generation (self, (uint64_t) number, 0);
            else
            if (s_obj_is (&kv->key, "hist") && kv->val.type == MSGPACK_OBJECT_ARRAY)
                for (uint32_t item = 0; item < kv->val.via.array.size; item++) {
                    const msgpack_object *pair = &kv->val.via.array.ptr [item];
                    int64_t generation, last;
                    if (pair->type == MSGPACK_OBJECT_ARRAY && pair->via.array.size == 2
                    &&  s_obj_int (&pair->via.array.ptr [0], &generation)
                    &&  s_obj_int (&pair->via.array.ptr [1], &last))
                        s_note_generation (self, (uint64_t) generation, (uint64_t) last);
                }
        }
    }
    else
    if (!s_body_id (body, id))
        problem = "missing or bad job id";
    else
    if (type == ZJQ_RECORD_JOB) {
        s_rjob_t *rjob = (s_rjob_t *) calloc (1, sizeof (s_rjob_t));
        if (!rjob)
            problem = "out of memory";
        else {
            strcpy (rjob->job.id, id);
            problem = s_decode_job (body, rjob);
            if (!problem && !rjob->queue)
                problem = "job without a queue";
            uint64_t generation, sequence;
            zjq_jobid_parse (id, &generation, &sequence);
            if (!problem && sequence != rjob->job.sequence)
                problem = "job id and sequence disagree";
            if (problem)
                s_rjob_free (&rjob);
            else {
                s_note_generation (self, generation, sequence);
                s_rjob_t *old = (s_rjob_t *) zhashx_lookup (self->replayed, id);
                if (old) {
                    zhashx_delete (self->replayed, id);
                    s_rjob_free (&old);
                }
                zhashx_insert (self->replayed, rjob->job.id, rjob);
            }
        }
    }
    else
    if (type == ZJQ_RECORD_STATE) {
        s_rjob_t *rjob = (s_rjob_t *) zhashx_lookup (self->replayed, id);
        if (rjob)
            problem = s_decode_job (body, rjob);
    }
    else
    if (type == ZJQ_RECORD_ATTEMPT) {
        s_rjob_t *rjob = (s_rjob_t *) zhashx_lookup (self->replayed, id);
        const msgpack_object *attempt = NULL;
        for (uint32_t index = 0; index < body->via.map.size; index++)
            if (s_obj_is (&body->via.map.ptr [index].key, "a"))
                attempt = &body->via.map.ptr [index].val;
        if (!attempt)
            problem = "attempt record without an attempt";
        else
        if (rjob)
            problem = s_add_attempt (&rjob->job, attempt);
    }
    else {
        s_rjob_t *rjob = (s_rjob_t *) zhashx_lookup (self->replayed, id);
        if (rjob) {
            zhashx_delete (self->replayed, id);
            s_rjob_free (&rjob);
        }
    }
    if (problem && strstr (problem, "newer"))
        *fatal = true;
    msgpack_unpacked_destroy (&unpacked);
    return problem;
}

//  A well-framed record at offset: length within the file, CRC right,
//  known type. Returns its total size, or 0 with *why set.
static size_t
s_record_at (const byte *data, size_t size, size_t offset, const char **why)
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
static size_t
s_next_good (const byte *data, size_t size, size_t offset)
{
    const char *why;
    for (size_t next = offset + 1; next + ZJQ_RECORD_HEADER < size; next++)
        if (s_record_at (data, size, next, &why))
            return next;
    return size;
}

//  Requeue or fail the jobs that were running; drop expired outcomes.
//  Returns how many were running.
static size_t
s_replay_settle (zjq_journal_t *self, size_t *dropped)
{
    int64_t now = zjq_wall_ms ();
    size_t running = 0;
    zlistx_t *expired = zlistx_new ();
    assert (expired);
    for (s_rjob_t *rjob = (s_rjob_t *) zhashx_first (self->replayed); rjob;
         rjob = (s_rjob_t *) zhashx_next (self->replayed)) {
        zjq_job_t *job = &rjob->job;
        if (job->state == ZJQ_STATE_RUNNING) {
            running++;
            char error [128];
            snprintf (error, sizeof (error), "broker restarted during attempt %d of %d",
                      job->attempt, job->max_attempts);
            free (job->error);
            job->error = strdup (error);
            //  Its history gets the attempt; how long it ran is unknown
            zjq_attempt_t attempt = { .attempt = job->attempt, .exit_code = -1,
                                      .started_ms = job->started_ms, .ended_ms = now,
                                      .duration_ms = -1, .error = "broker restarted" };
            if (!job->history)
                job->history = zjq_history_new (job->max_attempts);
            if (!job->history || zjq_history_add (job->history, &attempt) != 0)
                zjq_log_error ("out_of_memory", "what=attempt_history job=%s", job->id);
            if (job->attempt < job->max_attempts)
                job->state = ZJQ_STATE_QUEUED;
            else {
                //  A dead letter: it keeps its payload (the table sets its expiry)
                job->state = ZJQ_STATE_FAILED;
                job->finished_ms = now;
                job->expires_ms = now + job->result_ttl_ms;
            }
        }
        if (zjq_job_ended (job) && job->expires_ms <= now)
            zlistx_add_end (expired, rjob);
    }
    *dropped = zlistx_size (expired);
    for (s_rjob_t *rjob = (s_rjob_t *) zlistx_first (expired); rjob;
         rjob = (s_rjob_t *) zlistx_next (expired)) {
        zhashx_delete (self->replayed, rjob->job.id);
        s_rjob_free (&rjob);
    }
    zlistx_destroy (&expired);
    return running;
}

int
zjq_journal_replay (zjq_journal_t *self)
{
    assert (self);
    struct stat info;
    if (fstat (self->main.fd, &info) == -1) {
        zjq_log_error ("journal_error", "path=%s what=%s error=%s", self->path, "cannot stat",
                       strerror (errno));
        return -1;
    }
    size_t size = (size_t) info.st_size;
    if (size == 0) {
        zjq_log_info ("journal_new", "path=%s", self->path);
        return 0;
    }
    byte *data = (byte *) mmap (NULL, size, PROT_READ, MAP_PRIVATE, self->main.fd, 0);
    if (data == MAP_FAILED) {
        zjq_log_error ("journal_error", "path=%s what=%s error=%s", self->path, "cannot read",
                       strerror (errno));
        return -1;
    }
    int rc = 0;
    size_t offset = ZJQ_JOURNAL_HEADER;
    size_t truncate_at = size;
    uint64_t records = 0, skipped = 0;
    if (size < ZJQ_JOURNAL_HEADER) {
        if (memcmp (data, ZJQ_JOURNAL_MAGIC, size < 8? size: 8) != 0) {
            zjq_log_error ("journal_corrupt", "path=%s what=%s", self->path,
                           "not a zjq journal (bad magic)");
            rc = -1;
        }
        else {
            zjq_log_warning ("journal_truncated", "bytes=%zu offset=0 what=%s", size, "torn header");
            truncate_at = 0;
        }
        offset = size;
    }
    else
    if (memcmp (data, ZJQ_JOURNAL_MAGIC, 8) != 0) {
        zjq_log_error ("journal_corrupt", "path=%s what=%s", self->path,
                           "not a zjq journal (bad magic)");
        rc = -1;
    }
    else
    if (zjq_crc32c (0, data, 12) != s_get32 (data + 12)) {
        zjq_log_error ("journal_corrupt", "path=%s what=%s", self->path,
                       "header checksum mismatch");
        rc = -1;
    }
    else
    if (s_get32 (data + 8) > ZJQ_JOURNAL_FORMAT) {
        zjq_log_error ("journal_format", "path=%s format=%u readable=%d msg=%s", self->path,
                       s_get32 (data + 8), ZJQ_JOURNAL_FORMAT,
                       "this broker reads that format or older only");
        rc = -1;
    }
    while (rc == 0 && offset < size) {
        const char *why = NULL;
        size_t length = s_record_at (data, size, offset, &why);
        bool fatal = false;
        if (length) {
            why = s_apply (self, data [offset + ZJQ_RECORD_HEADER],
                           data + offset + ZJQ_RECORD_HEADER + 1,
                           length - ZJQ_RECORD_HEADER - 1, &fatal);
            if (!why) {
                records++;
                offset += length;
                continue;
            }
        }
        if (fatal) {
            zjq_log_error ("journal_corrupt", "path=%s offset=%zu what=%s", self->path, offset, why);
            rc = -1;
            break;
        }
        size_t next = length? offset + length: s_next_good (data, size, offset);
        if (next >= size && !length) {
            //  Nothing good follows: a write cut short by a crash
            zjq_log_warning ("journal_truncated", "bytes=%zu offset=%zu what=%s reason=%s",
                             size - offset, offset, "torn record", why);
            truncate_at = offset;
            break;
        }
        if (!self->salvage) {
            zjq_log_error ("journal_corrupt", "path=%s offset=%zu what=%s next_good=%zu msg=%s",
                           self->path, offset, why, next, "corrupt record; not starting: run "
                           "with --journal-salvage to skip corrupt records and keep the rest");
            rc = -1;
            break;
        }
        zjq_log_warning ("journal_salvaged", "bytes=%zu offset=%zu what=%s", next - offset, offset,
                         why);
        skipped++;
        offset = next;
    }
    munmap (data, size);
    if (rc == 0 && truncate_at < size && ftruncate (self->main.fd, (off_t) truncate_at) == -1) {
        zjq_log_error ("journal_error", "path=%s what=%s error=%s", self->path,
                           "cannot truncate", strerror (errno));
        rc = -1;
    }
    if (rc == -1)
        return -1;
    size_t dropped = 0;
    size_t running = s_replay_settle (self, &dropped);
    self->stats.replayed = records;
    zjq_log_info ("journal_replayed", "path=%s records=%llu live=%zu requeued=%zu "
                  "outcomes_dropped=%zu skipped_corrupt=%s", self->path,
                  (unsigned long long) records, zhashx_size (self->replayed), running, dropped,
                  skipped? "true": "false");
    return 0;
}

uint64_t
zjq_journal_max_generation (zjq_journal_t *self)
{
    assert (self);
    uint64_t max = 0;
    for (size_t index = 0; index < self->generation_count; index++)
        if (self->generations [2 * index] > max)
            max = self->generations [2 * index];
    return max;
}

static int
s_by_order (const void *a, const void *b)
{
    const s_rjob_t *first = *(const s_rjob_t * const *) a;
    const s_rjob_t *second = *(const s_rjob_t * const *) b;
    return first->job.order < second->job.order? -1: first->job.order > second->job.order;
}

size_t
zjq_journal_restore (zjq_journal_t *self, zjq_jobtable_t *table, zjq_journal_restore_fn *fn,
                     void *arg)
{
    assert (self);
    assert (table && fn);
    size_t count = self->replayed? zhashx_size (self->replayed): 0;
    s_rjob_t **rjobs = count? (s_rjob_t **) malloc (count * sizeof (s_rjob_t *)): NULL;
    assert (!count || rjobs);   //  out of memory at startup
    size_t index = 0;
    if (count)
        for (s_rjob_t *rjob = (s_rjob_t *) zhashx_first (self->replayed); rjob;
             rjob = (s_rjob_t *) zhashx_next (self->replayed))
            rjobs [index++] = rjob;
    if (self->replayed)
        zhashx_purge (self->replayed);
    if (count)
        qsort (rjobs, count, sizeof (s_rjob_t *), s_by_order);
    for (index = 0; index < count; index++) {
        fn (arg, &rjobs [index]->job, rjobs [index]->queue);
        s_rjob_free (&rjobs [index]);
    }
    free (rjobs);
    for (index = 0; index < self->generation_count; index++)
        if (self->generations [2 * index] != zjq_jobtable_generation (table))
            zjq_jobtable_add_generation (table, self->generations [2 * index],
                                         self->generations [2 * index + 1]);
    return count;
}


//  --------------------------------------------------------------------------
//  Appending, flushing, syncing

static void
s_encode (s_buf_t *buf, const s_record_t *record)
{
    switch (record->type) {
        case ZJQ_RECORD_REMOVE:  s_encode_remove (buf, record->job); break;
        case ZJQ_RECORD_ATTEMPT: s_encode_attempt (buf, record->job); break;
        case ZJQ_RECORD_QUEUE:   s_encode_queue (buf, record->queue, record->paused); break;
        default: s_encode_job (buf, record->job, record->type == ZJQ_RECORD_JOB); break;
    }
}

static uint64_t
s_append (zjq_journal_t *self, const s_record_t *record)
{
    self->lsn++;
    self->stats.records++;
    bool to_main = !self->failed;
    bool to_compact = self->compacting && !self->compact_broken;
    if (!to_main && !to_compact)
        return self->lsn;
    s_buf_t *buf = to_main? &self->main.buf: &self->compact.buf;
    size_t start = buf->size;
    s_encode (buf, record);
    if (buf->oom) {
        buf->size = start;
        buf->oom = false;
        if (to_main)
            s_fail (self, "buffering a record", ENOMEM);
        else
            s_compact_abort (self, "buffering a record", ENOMEM);
        return self->lsn;
    }
    if (to_main) {
        self->main.buffered_lsn = self->lsn;
        if (to_compact
        &&  s_buf_append (&self->compact.buf, buf->data + start, buf->size - start) == -1)
            s_compact_abort (self, "buffering a record", ENOMEM);
    }
    if (self->compacting)
        self->compact.buffered_lsn = self->lsn;
    return self->lsn;
}

uint64_t
zjq_journal_append_job (zjq_journal_t *self, const zjq_job_t *job)
{
    assert (self && job);
    return s_append (self, &(s_record_t) { .type = ZJQ_RECORD_JOB, .job = job });
}

uint64_t
zjq_journal_append_state (zjq_journal_t *self, const zjq_job_t *job)
{
    assert (self && job);
    return s_append (self, &(s_record_t) { .type = ZJQ_RECORD_STATE, .job = job });
}

uint64_t
zjq_journal_append_remove (zjq_journal_t *self, const zjq_job_t *job)
{
    assert (self && job);
    return s_append (self, &(s_record_t) { .type = ZJQ_RECORD_REMOVE, .job = job });
}

uint64_t
zjq_journal_append_attempt (zjq_journal_t *self, const zjq_job_t *job)
{
    assert (self && job && job->history && job->history->count);
    return s_append (self, &(s_record_t) { .type = ZJQ_RECORD_ATTEMPT, .job = job });
}

uint64_t
zjq_journal_append_queue (zjq_journal_t *self, const char *queue, bool paused)
{
    assert (self && queue);
    if (paused)
        zhashx_update (self->paused, queue, self->paused);
    else
        zhashx_delete (self->paused, queue);
    return s_append (self, &(s_record_t) { .type = ZJQ_RECORD_QUEUE, .queue = queue,
                                           .paused = paused });
}

size_t
zjq_journal_paused_queues (zjq_journal_t *self, zjq_journal_queue_fn *fn, void *arg)
{
    assert (self && fn);
    size_t count = 0;
    for (void *item = zhashx_first (self->paused); item; item = zhashx_next (self->paused)) {
        fn (arg, (const char *) zhashx_cursor (self->paused));
        count++;
    }
    return count;
}

uint64_t
zjq_journal_lsn (zjq_journal_t *self)
{
    assert (self);
    return self->lsn;
}

uint64_t
zjq_journal_durable (zjq_journal_t *self)
{
    assert (self);
    return self->durable;
}

void
zjq_journal_flush (zjq_journal_t *self)
{
    assert (self);
    if (!self->failed && self->main.buf.size) {
        int error = s_file_write (self, &self->main);
        if (error)
            s_fail (self, "write", error);
    }
    if (self->compacting && !self->compact_broken && self->compact.buf.size) {
        int error = s_file_write (self, &self->compact);
        if (error && self->switch_requested) {
            //  The sync thread may be renaming it: settle that first
            self->compact_broken = true;
            self->compact_error = error;
        }
        else
        if (error)
            s_compact_abort (self, "write", error);
    }
    bool request = self->compacting && self->snapshot_done && !self->switch_requested
                && self->compact.buf.size == 0;
    if (request) {
        self->switch_requested = true;
        self->stats.live_bytes = self->compact.offset;
    }
    if (self->policy == ZJQ_FSYNC_NEVER && !self->failed && self->main.written_lsn > self->durable)
        self->durable = self->main.written_lsn;
    pthread_mutex_lock (&self->mutex);
    if (request) {
        self->shared.switch_request = true;
        self->shared.switch_fd = self->compact.fd;
        self->shared.switch_lsn = self->compact.written_lsn;
    }
    uint64_t target = self->switch_requested? self->compact.written_lsn: self->main.written_lsn;
    bool wake = request || (self->shared.sync_fd >= 0 && target > self->shared.target);
    if (target > self->shared.target)
        self->shared.target = target;
    if (wake)
        pthread_cond_signal (&self->cond);
    pthread_mutex_unlock (&self->mutex);
}

int
zjq_journal_fd (zjq_journal_t *self)
{
    assert (self);
    return self->event_fd;
}

void
zjq_journal_process (zjq_journal_t *self)
{
    assert (self);
    uint64_t count;
    if (read (self->event_fd, &count, sizeof (count)) == -1 && errno != EAGAIN)
        zjq_log_error ("journal_error", "what=%s error=%s", "cannot read the eventfd",
                       strerror (errno));
    pthread_mutex_lock (&self->mutex);
    uint64_t synced = self->shared.synced;
    int sync_error = self->shared.sync_error;
    bool switch_done = self->shared.switch_done;
    bool switched = self->shared.switched;
    int switch_error = self->shared.switch_error;
    uint64_t switch_lsn = self->shared.switch_lsn;
    self->shared.sync_error = 0;
    self->shared.switch_done = false;
    self->shared.switched = false;
    self->shared.switch_error = 0;
    pthread_mutex_unlock (&self->mutex);
    if (switch_done) {
        if (switched) {
            s_compact_adopt (self, switch_error? 0: switch_lsn);
            if (switch_error)
                s_fail (self, "fsync of the journal directory", switch_error);
        }
        else
            s_compact_abort (self, "fdatasync of the rewritten journal", switch_error);
    }
    if (sync_error)
        s_fail (self, "fdatasync", sync_error);
    if (!self->failed && synced > self->durable)
        self->durable = synced;
}

int64_t
zjq_journal_tick (zjq_journal_t *self, zjq_jobtable_t *table)
{
    assert (self);
    assert (table);
    int64_t now = zjq_mono_ms ();
    if (!self->compacting) {
        //  The file may grow to twice the live state it was last rewritten
        //  with, so a large live state is not rewritten over and over; once
        //  most of those jobs are gone, the trigger falls back to
        //  compact_size, so the file follows the live state down again
        uint64_t jobs = zjq_jobtable_stats (table)->jobs;
        uint64_t limit = self->compact_size;
        if (2 * self->stats.live_bytes > limit && 2 * jobs > self->live_jobs)
            limit = 2 * self->stats.live_bytes;
        bool due = self->failed? now >= self->retry_at
                 : self->main.offset > limit && now >= self->compact_retry_at;
        if (due) {
            if (!self->failed)
                zjq_log_info ("journal_rewrite", "path=%s bytes=%llu", self->path,
                              (unsigned long long) self->main.offset);
            self->table = table;
            self->live_jobs = jobs;
            //  Starts in the buffer; the first flush creates the file's content
            self->compact.fd = open (self->compact_path,
                                     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (self->compact.fd == -1)
                s_compact_abort (self, "open", errno);
            else {
                self->compacting = true;
                self->compact.offset = 0;
                self->compact.buffered_lsn = self->compact.written_lsn = self->lsn;
                s_encode_header (&self->compact.buf);
                s_encode_generation (&self->compact.buf, table);
                s_encode_paused (&self->compact.buf, self->paused);
                if (zjq_jobtable_scan_start (table) == -1)
                    s_compact_abort (self, "listing the jobs", ENOMEM);
            }
        }
    }
    if (self->compacting && !self->snapshot_done) {
        size_t jobs = 0;
        while (jobs < ZJQ_COMPACT_JOBS && self->compact.buf.size < ZJQ_COMPACT_BYTES) {
            zjq_jobentry_t *entry = zjq_jobtable_scan_next (table);
            if (!entry) {
                self->snapshot_done = true;
                break;
            }
            zjq_job_t record;
            zjq_jobentry_record (entry, &record);
            s_encode_job (&self->compact.buf, &record, true);
            jobs++;
        }
        if (self->compact.buf.oom) {
            s_compact_abort (self, "buffering the rewrite", ENOMEM);
            return ZJQ_RETRY_MS;
        }
        return 0;
    }
    if (self->failed && !self->compacting)
        return self->retry_at > now? self->retry_at - now: 0;
    return ZJQ_RETRY_MS;
}

int
zjq_journal_start (zjq_journal_t *self, zjq_jobtable_t *table)
{
    assert (self);
    assert (table);
    assert (!self->thread_started);
    self->table = table;
    zjq_jobtable_set_journal (table, self);
    struct stat info;
    if (fstat (self->main.fd, &info) == 0)
        self->main.offset = (uint64_t) info.st_size;
    //  Rewrite now: the file then holds this generation, the jobs as
    //  replay left them, and nothing torn or skipped
    self->failed = true;            //  so that the tick rewrites at once
    self->retry_at = 0;
    zjq_journal_tick (self, table);
    while (self->compacting && !self->snapshot_done) {
        zjq_journal_tick (self, table);
        zjq_journal_flush (self);
    }
    zjq_journal_flush (self);
    pthread_mutex_lock (&self->mutex);
    bool request = self->shared.switch_request;
    self->shared.switch_request = false;
    pthread_mutex_unlock (&self->mutex);
    int error = 0;
    if (!request)
        error = self->compact_error? self->compact_error: EIO;
    else
    if (self->sync_fn (self->compact.fd) == -1)
        error = errno? errno: EIO;
    else
    if (rename (self->compact_path, self->path) == -1)
        error = errno;
    else {
        self->failed = false;
        s_compact_adopt (self, self->lsn);
        self->stats.compactions = 0;
        if (self->sync_fn (self->dir_fd) == -1)
            s_fail (self, "fsync of the journal directory", errno);
    }
    if (error) {
        if (self->compacting)
            s_compact_abort (self, "rewrite", error);
        self->failed = false;
        s_fail (self, "rewrite at start", error);
    }
    pthread_mutex_lock (&self->mutex);
    self->shared.sync_fd = self->failed? -1: self->main.fd;
    self->shared.synced = self->shared.target = self->durable;
    pthread_mutex_unlock (&self->mutex);
    if (pthread_create (&self->thread, NULL, s_sync_thread, self) != 0) {
        zjq_log_error ("journal_error", "what=%s", "cannot start the sync thread");
        return -1;
    }
    self->thread_started = true;
    if (!self->failed)
        zjq_log_info ("journal_open", "path=%s live_bytes=%llu fsync=%s", self->path,
                  (unsigned long long) self->main.offset, zjq_journal_policy_name (self));
    return 0;
}

bool
zjq_journal_healthy (zjq_journal_t *self, const char **reason_p)
{
    assert (self);
    if (reason_p)
        *reason_p = self->failed? strerror (self->error): NULL;
    return !self->failed;
}

const char *
zjq_journal_last_error (zjq_journal_t *self)
{
    assert (self);
    return self->last_error;
}

const char *
zjq_journal_path (zjq_journal_t *self)
{
    assert (self);
    return self->path;
}

const char *
zjq_journal_policy_name (zjq_journal_t *self)
{
    assert (self);
    return self->policy == ZJQ_FSYNC_ALWAYS? "always":
           self->policy == ZJQ_FSYNC_INTERVAL? "interval": "never";
}

int
zjq_journal_policy_parse (const char *name, zjq_fsync_policy_t *policy)
{
    assert (name && policy);
    if (streq (name, "always"))
        *policy = ZJQ_FSYNC_ALWAYS;
    else
    if (streq (name, "interval"))
        *policy = ZJQ_FSYNC_INTERVAL;
    else
    if (streq (name, "never"))
        *policy = ZJQ_FSYNC_NEVER;
    else
        return -1;
    return 0;
}

const zjq_journal_stats_t *
zjq_journal_stats (zjq_journal_t *self)
{
    assert (self);
    self->stats.bytes = self->main.offset;
    return &self->stats;
}

int
zjq_journal_sync_now (zjq_journal_t *self)
{
    assert (self);
    zjq_journal_flush (self);
    if (self->failed)
        return -1;
    if (self->policy == ZJQ_FSYNC_NEVER) {
        if (self->sync_fn (self->main.fd) == -1)
            return -1;
        self->durable = self->lsn;
        return 0;
    }
    //  Wait for the sync thread, bounded
    int64_t deadline = zjq_mono_ms () + 10000;
    while (self->durable < self->main.written_lsn && !self->failed
       &&  zjq_mono_ms () < deadline) {
        zmq_pollitem_t item = { NULL, self->event_fd, ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 10);
        zjq_journal_process (self);
    }
    return self->durable >= self->main.written_lsn && !self->failed? 0: -1;
}

void
zjq_journal_set_write_fn (zjq_journal_t *self, zjq_journal_write_fn *fn)
{
    assert (self);
    self->write_fn = fn? fn: s_pwrite;
}

void
zjq_journal_set_sync_fn (zjq_journal_t *self, zjq_journal_sync_fn *fn)
{
    assert (self);
    self->sync_fn = fn? fn: s_fdatasync;
}


//  --------------------------------------------------------------------------
//  Self test

//  Fault injection: fail every write / sync while the flag is set
static int s_test_write_errno = 0;
static int s_test_sync_errno = 0;

static ssize_t
s_test_write (int fd, const void *data, size_t size, off_t offset)
{
    if (s_test_write_errno) {
        //  Like a disk that fills up mid-write: part of it, then the error
        if (size > 1 && pwrite (fd, data, size / 2, offset) > 0)
            return (ssize_t) (size / 2);
        errno = s_test_write_errno;
        return -1;
    }
    return pwrite (fd, data, size, offset);
}

static int
s_test_sync (int fd)
{
    if (s_test_sync_errno) {
        errno = s_test_sync_errno;
        return -1;
    }
    return fdatasync (fd);
}

//  Run the loop's journal duties until done () or ms pass
static void
s_test_run (zjq_journal_t *self, zjq_jobtable_t *table, int64_t ms, bool (*done) (zjq_journal_t *))
{
    int64_t deadline = zjq_mono_ms () + ms;
    while (!done (self) && zjq_mono_ms () < deadline) {
        zjq_journal_flush (self);
        zmq_pollitem_t item = { NULL, zjq_journal_fd (self), ZMQ_POLLIN, 0 };
        zmq_poll (&item, 1, 10);
        zjq_journal_process (self);
        zjq_journal_tick (self, table);
    }
}

static bool
s_test_durable (zjq_journal_t *self)
{
    return zjq_journal_durable (self) >= zjq_journal_lsn (self);
}

static bool
s_test_failed (zjq_journal_t *self)
{
    return !zjq_journal_healthy (self, NULL);
}

static bool
s_test_healthy (zjq_journal_t *self)
{
    return zjq_journal_healthy (self, NULL) && s_test_durable (self);
}

static zjq_queue_t *s_test_queue;  //  the test's queue "q"

static void
s_test_restore (void *arg, zjq_job_t *job, const char *queue_name)
{
    assert (streq (queue_name, "q"));
    job->queue = zjq_queue_name (s_test_queue);
    assert (zjq_jobtable_restore ((zjq_jobtable_t *) arg, job, s_test_queue, 0));
}

static void
s_test_paused (void *arg, const char *queue)
{
    assert (streq (queue, "q"));
}

static zjq_jobentry_t *
s_test_submit (zjq_jobtable_t *table, const char *payload, const char *key)
{
    zjq_job_t spec = { .key = (char *) key, .max_attempts = 3,
                       .job_timeout_ms = 60000, .result_ttl_ms = 3600000 };
    zframe_t *frame = zframe_new (payload, strlen (payload));
    zjq_jobentry_t *entry = zjq_jobtable_insert (table, &spec, s_test_queue, &frame);
    assert (entry);
    return entry;
}

//  Open, replay and restore the journal in dir into a new table
static zjq_journal_t *
s_test_open (const char *dir, bool salvage, zjq_jobtable_t **table_p, int *rc_p)
{
    zjq_journal_config_t config = { .dir = dir, .policy = ZJQ_FSYNC_ALWAYS,
                                    .compact_size = 1 << 20, .salvage = salvage };
    zjq_journal_t *self = zjq_journal_new (&config);
    assert (self);
    *rc_p = zjq_journal_replay (self);
    if (*rc_p == -1)
        return self;
    *table_p = zjq_jobtable_new (zjq_journal_max_generation (self) + 1);
    assert (*table_p);
    zjq_journal_restore (self, *table_p, s_test_restore, *table_p);
    assert (zjq_journal_start (self, *table_p) == 0);
    return self;
}

static void
s_test_close (zjq_journal_t **self_p, zjq_jobtable_t **table_p)
{
    zjq_journal_destroy (self_p);
    zjq_jobtable_destroy (table_p);
}

void
zjq_journal_test (bool verbose)
{
    //  CRC-32C check value
    assert (zjq_crc32c (0, "123456789", 9) == 0xE3069283);
    assert (zjq_crc32c (zjq_crc32c (0, "1234", 4), "56789", 5) == 0xE3069283);
    zjq_fsync_policy_t policy;
    assert (zjq_journal_policy_parse ("interval", &policy) == 0 && policy == ZJQ_FSYNC_INTERVAL);
    assert (zjq_journal_policy_parse ("sometimes", &policy) == -1);

    s_test_queue = zjq_queue_new ("q");
    assert (s_test_queue);
    char dir [] = "/tmp/zjq_journal_test.XXXXXX";
    assert (mkdtemp (dir));
    char path [256];
    snprintf (path, sizeof (path), "%s/%s", dir, ZJQ_JOURNAL_FILE);
    zsys_set_logstream (verbose? stderr: NULL);

    //  A new journal; a second one cannot share the directory
    zjq_jobtable_t *table = NULL;
    int rc;
    zjq_journal_t *journal = s_test_open (dir, false, &table, &rc);
    assert (rc == 0);
    zjq_journal_config_t config = { .dir = dir };
    assert (zjq_journal_new (&config) == NULL);
    uint64_t generation = zjq_jobtable_generation (table);
    zjq_journal_set_write_fn (journal, s_test_write);
    zjq_journal_set_sync_fn (journal, s_test_sync);

    //  Jobs in every state: succeeded, cancelled, running, queued (keyed)
    zjq_jobentry_t *done = s_test_submit (table, "one", NULL);
    zjq_jobentry_t *cancelled = s_test_submit (table, "two", NULL);
    zjq_jobentry_t *running = s_test_submit (table, "three", NULL);
    zjq_jobentry_t *queued = s_test_submit (table, "four", "key4");
    char done_id [ZJQ_JOBID_MAX], cancelled_id [ZJQ_JOBID_MAX];
    char running_id [ZJQ_JOBID_MAX], queued_id [ZJQ_JOBID_MAX];
    strcpy (done_id, zjq_jobentry_id (done).text);
    strcpy (cancelled_id, zjq_jobentry_id (cancelled).text);
    strcpy (running_id, zjq_jobentry_id (running).text);
    strcpy (queued_id, zjq_jobentry_id (queued).text);
    zjq_jobtable_start (table, done, 0);
    zframe_t *result = zframe_new ("result-one", 10);
    zjq_jobtable_finish (table, done, ZJQ_STATE_SUCCEEDED, NULL, &result, 0);
    zjq_jobtable_finish (table, cancelled, ZJQ_STATE_CANCELLED, "cancelled by client", NULL, 0);
    zjq_jobtable_start (table, running, 0);
    assert (zjq_journal_durable (journal) < zjq_journal_lsn (journal));
    s_test_run (journal, table, 5000, s_test_durable);
    assert (s_test_durable (journal));

    //  A write fails (disk full, half a record written): unhealthy, nothing
    //  new becomes durable; the retry rewrites the file and recovers
    s_test_write_errno = ENOSPC;
    zjq_jobentry_t *later = s_test_submit (table, "five", NULL);
    char later_id [ZJQ_JOBID_MAX];
    strcpy (later_id, zjq_jobentry_id (later).text);
    zjq_journal_flush (journal);
    const char *reason = NULL;
    assert (!zjq_journal_healthy (journal, &reason));
    assert (streq (reason, strerror (ENOSPC)));
    assert (strstr (zjq_journal_last_error (journal), "No space left"));
    uint64_t durable = zjq_journal_durable (journal);
    s_test_run (journal, table, 1500, s_test_healthy);
    assert (!zjq_journal_healthy (journal, NULL));
    assert (zjq_journal_durable (journal) == durable);
    s_test_write_errno = 0;
    s_test_run (journal, table, 5000, s_test_healthy);
    assert (s_test_healthy (journal));

    //  A sync fails: the same, until the sync works again
    s_test_sync_errno = EIO;
    zjq_jobentry_t *last = s_test_submit (table, "six", NULL);
    char last_id [ZJQ_JOBID_MAX];
    strcpy (last_id, zjq_jobentry_id (last).text);
    s_test_run (journal, table, 5000, s_test_failed);
    assert (!zjq_journal_healthy (journal, &reason));
    assert (streq (reason, strerror (EIO)));
    s_test_sync_errno = 0;
    s_test_run (journal, table, 5000, s_test_healthy);
    assert (s_test_healthy (journal));
    assert (zjq_journal_stats (journal)->compactions >= 2);
    s_test_close (&journal, &table);

    //  Replay: every state comes back; the running job is requeued with its
    //  attempt counted; the key still finds its job; old ids are expired
    journal = s_test_open (dir, false, &table, &rc);
    assert (rc == 0);
    assert (zjq_jobtable_generation (table) > generation);
    zjq_jobentry_t *entry = zjq_jobtable_lookup (table, done_id);
    assert (entry && zjq_jobentry_state (entry) == ZJQ_STATE_SUCCEEDED);
    assert (zjq_jobentry_result (entry).size == 10);
    assert (memcmp (zjq_jobentry_result (entry).data, "result-one", 10) == 0);
    entry = zjq_jobtable_lookup (table, cancelled_id);
    assert (entry && zjq_jobentry_state (entry) == ZJQ_STATE_CANCELLED);
    assert (streq (zjq_jobentry_error (entry), "cancelled by client"));
    entry = zjq_jobtable_lookup (table, running_id);
    assert (entry && zjq_jobentry_state (entry) == ZJQ_STATE_QUEUED);
    assert (zjq_jobentry_attempt (entry) == 1);
    assert (streq (zjq_jobentry_error (entry), "broker restarted during attempt 1 of 3"));
    assert (zjq_jobentry_payload (entry).size == 5);
    assert (memcmp (zjq_jobentry_payload (entry).data, "three", 5) == 0);
    assert (zjq_jobtable_lookup_key (table, "q", "key4") == zjq_jobtable_lookup (table, queued_id));
    assert (zjq_jobtable_lookup (table, later_id) && zjq_jobtable_lookup (table, last_id));
    const zjq_jobtable_stats_t *stats = zjq_jobtable_stats (table);
    assert (stats->jobs == 6 && stats->queued == 4 && stats->ended == 2);
    //  Expire the cancelled job: its id answers EEXPIRED after a restart
    entry = zjq_jobtable_lookup (table, cancelled_id);
    zjq_jobtable_remove (table, &entry);
    s_test_run (journal, table, 5000, s_test_durable);
    s_test_close (&journal, &table);
    journal = s_test_open (dir, false, &table, &rc);
    zjq_jobentry_t *found;
    const char *message;
    assert (zjq_jobtable_find (table, cancelled_id, &found, &message) == ZJQ_EEXPIRED);
    char unknown [ZJQ_JOBID_MAX];
    zjq_jobid_format (unknown, generation, 1000);
    assert (zjq_jobtable_find (table, unknown, &found, &message) == ZJQ_ENOTFOUND);
    assert (zjq_jobtable_stats (table)->jobs == 5);
    s_test_close (&journal, &table);

    //  A torn tail: half a record at the end is cut off, the rest kept
    struct stat info;
    int fd = open (path, O_WRONLY | O_APPEND);
    assert (fd >= 0);
    byte torn [20] = { 100, 0, 0, 0, 1, 2, 3, 4, ZJQ_RECORD_JOB, 0x85 };
    assert (write (fd, torn, sizeof (torn)) == (ssize_t) sizeof (torn));
    close (fd);
    journal = s_test_open (dir, false, &table, &rc);
    assert (rc == 0);
    assert (zjq_jobtable_stats (table)->jobs == 5);
    s_test_close (&journal, &table);
    assert (stat (path, &info) == 0);
    off_t good_size = info.st_size;

    //  A flipped byte in the middle: refused, unless salvaging
    fd = open (path, O_RDWR);
    assert (fd >= 0);
    //  The second record (after the header and GENERATION) is the first job
    byte head [ZJQ_JOURNAL_HEADER + ZJQ_RECORD_HEADER];
    assert (pread (fd, head, sizeof (head), 0) == (ssize_t) sizeof (head));
    off_t second = ZJQ_JOURNAL_HEADER + ZJQ_RECORD_HEADER + s_get32 (head + ZJQ_JOURNAL_HEADER);
    byte flip;
    assert (pread (fd, &flip, 1, second + 12) == 1);
    flip ^= 0x01;
    assert (pwrite (fd, &flip, 1, second + 12) == 1);
    close (fd);
    journal = s_test_open (dir, false, &table, &rc);
    assert (rc == -1);
    zjq_journal_destroy (&journal);
    assert (stat (path, &info) == 0 && info.st_size == good_size);     //  untouched
    journal = s_test_open (dir, true, &table, &rc);
    assert (rc == 0);
    assert (zjq_jobtable_stats (table)->jobs == 4);
    s_test_close (&journal, &table);
    //  The salvaged journal was rewritten clean
    journal = s_test_open (dir, false, &table, &rc);
    assert (rc == 0 && zjq_jobtable_stats (table)->jobs == 4);
    s_test_close (&journal, &table);

    //  Not a journal
    fd = open (path, O_WRONLY | O_TRUNC);
    assert (fd >= 0 && write (fd, "hello, world, this is text", 26) == 26);
    close (fd);
    journal = s_test_open (dir, true, &table, &rc);
    assert (rc == -1);
    zjq_journal_destroy (&journal);

    unlink (path);

    //  Attempt histories, dead letters and paused queues come back
    journal = s_test_open (dir, false, &table, &rc);
    assert (rc == 0 && zjq_jobtable_stats (table)->jobs == 0);
    zjq_jobtable_set_dead_letter_ttl (table, 3600000);
    zjq_jobentry_t *flaky = s_test_submit (table, "flaky", NULL);
    zjq_jobentry_t *dead = s_test_submit (table, "dead", NULL);
    //  A dead letter whose payload is too large to be inline keeps its frame
    char large [ZJQ_JOBENTRY_INLINE_MAX + 2];
    memset (large, 'L', sizeof (large) - 1);
    large [sizeof (large) - 1] = 0;
    zjq_jobentry_t *dead_large = s_test_submit (table, large, NULL);
    char flaky_id [ZJQ_JOBID_MAX], dead_id [ZJQ_JOBID_MAX], dead_large_id [ZJQ_JOBID_MAX];
    strcpy (flaky_id, zjq_jobentry_id (flaky).text);
    strcpy (dead_id, zjq_jobentry_id (dead).text);
    strcpy (dead_large_id, zjq_jobentry_id (dead_large).text);
    zjq_jobtable_finish (table, dead_large, ZJQ_STATE_FAILED, "failed while queued", NULL, 0);
    zjq_attempt_t attempt = { .attempt = 1, .exit_code = 3, .signal = 0, .started_ms = 5,
                              .ended_ms = 9, .duration_ms = 4, .error = "exit status 3",
                              .worker = "host/1/ab" };
    zjq_jobtable_start (table, flaky, 0);
    assert (zjq_jobtable_add_attempt (table, flaky, &attempt) == 0);
    zjq_jobtable_requeue (table, flaky, "exit status 3 (attempt 1 of 3)");
    zjq_jobtable_start (table, flaky, 0);       //  running at the restart
    zjq_jobtable_start (table, dead, 0);
    attempt.exit_code = -1;
    attempt.signal = 9;
    assert (zjq_jobtable_add_attempt (table, dead, &attempt) == 0);
    zjq_jobtable_finish (table, dead, ZJQ_STATE_FAILED, "killed", NULL, 0);
    zjq_journal_append_queue (journal, "q", true);
    zjq_journal_append_queue (journal, "gone", true);
    zjq_journal_append_queue (journal, "gone", false);
    s_test_run (journal, table, 5000, s_test_durable);
    s_test_close (&journal, &table);
    for (int round = 0; round < 2; round++) {
        //  Replayed from the log, then from the rewrite made at start
        journal = s_test_open (dir, false, &table, &rc);
        assert (rc == 0);
        zjq_jobentry_t *entry = zjq_jobtable_lookup (table, flaky_id);
        assert (entry && zjq_jobentry_state (entry) == ZJQ_STATE_QUEUED);
        const zjq_history_t *history = zjq_jobentry_history (entry);
        assert (history);
        assert (history->count == 2 && history->budget == 3);
        assert (history->attempts [0].exit_code == 3 && history->attempts [0].duration_ms == 4);
        assert (streq (history->attempts [0].worker, "host/1/ab"));
        assert (history->attempts [1].attempt == 2);
        assert (streq (history->attempts [1].error, "broker restarted"));
        entry = zjq_jobtable_lookup (table, dead_id);
        assert (entry && zjq_jobentry_state (entry) == ZJQ_STATE_FAILED);
        assert (zjq_jobentry_payload (entry).size == 4);
        assert (memcmp (zjq_jobentry_payload (entry).data, "dead", 4) == 0);
        history = zjq_jobentry_history (entry);
        assert (history->count == 1 && history->attempts [0].signal == 9);
        assert (history->attempts [0].exit_code == -1);
        assert (zjq_jobtable_is_dead (table, entry));
        entry = zjq_jobtable_lookup (table, dead_large_id);
        assert (entry && zjq_jobtable_is_dead (table, entry));
        assert (zjq_jobentry_payload (entry).frame);
        assert (zjq_jobentry_payload (entry).size == ZJQ_JOBENTRY_INLINE_MAX + 1);
        assert (memcmp (zjq_jobentry_payload (entry).data, large, ZJQ_JOBENTRY_INLINE_MAX + 1) == 0);
        assert (zjq_jobtable_dead_letters (table)->count == 2);
        size_t paused = zjq_journal_paused_queues (journal, s_test_paused, NULL);
        assert (paused == 1);
        s_test_close (&journal, &table);
    }

    unlink (path);
    snprintf (path, sizeof (path), "%s/%s", dir, ZJQ_JOURNAL_LOCK);
    unlink (path);
    rmdir (dir);
    zjq_queue_destroy (&s_test_queue);
    zsys_set_logstream (stderr);
    if (verbose)
        printf ("(journal ok) ");
}
