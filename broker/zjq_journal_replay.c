/*  zjq_journal_replay.c: reading the file journal back at start.

    The file is mapped and checked record by record (zjq_record.h); each
    good record goes to the fold (zjq_replay.h), which the broker then
    restores into its table. A torn record at the end (a crash mid-write)
    is cut off; a corrupt record followed by good ones fails the replay
    unless the journal was opened with salvage.                             */

#include "zjq_journal_private.h"
#include "zjq_log.h"
#include "zjq_util.h"
#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

//  Check the file header. Returns 0 if good, 1 if the file is a torn header
//  (to be cut to nothing), -1 after logging why it is not a journal we read.
static int
s_check_header (zjq_journal_t *self, const byte *data, size_t size)
{
    uint32_t format;
    int rc = zjq_record_header_check (data, size, &format);
    if (rc == 1)
        zjq_log_warning ("journal_truncated", "bytes=%zu offset=0 what=%s", size, "torn header");
    else
    if (rc == -1)
        zjq_log_error ("journal_corrupt", "path=%s what=%s", self->path,
                       "not a zjq journal (bad magic)");
    else
    if (rc == -2)
        zjq_log_error ("journal_corrupt", "path=%s what=%s", self->path,
                       "header checksum mismatch");
    else
    if (rc == -3)
        zjq_log_error ("journal_format", "path=%s format=%u readable=%d msg=%s", self->path,
                       format, ZJQ_JOURNAL_FORMAT, "this broker reads that format or older only");
    return rc < 0? -1: rc;
}

//  What a pass over the records found
typedef struct {
    uint64_t records;           //  good records applied
    uint64_t skipped;           //  corrupt ones skipped (salvage)
    size_t truncate_at;         //  where a torn tail starts, or the size
} s_pass_t;

//  Apply the records from offset on. Returns 0, or -1 after logging why.
static int
s_read_records (zjq_journal_t *self, const byte *data, size_t size, size_t offset,
                s_pass_t *pass)
{
    while (offset < size) {
        const char *why = NULL;
        size_t length = zjq_record_at (data, size, offset, &why);
        bool fatal = false;
        if (length) {
            why = zjq_replay_apply (self->replay, data [offset + ZJQ_RECORD_HEADER],
                                    data + offset + ZJQ_RECORD_HEADER + 1,
                                    length - ZJQ_RECORD_HEADER - 1, &fatal);
            if (!why) {
                pass->records++;
                offset += length;
                continue;
            }
        }
        if (fatal) {
            zjq_log_error ("journal_corrupt", "path=%s offset=%zu what=%s", self->path, offset, why);
            return -1;
        }
        size_t next = length? offset + length: zjq_record_next_good (data, size, offset);
        if (next >= size && !length) {
            //  Nothing good follows: a write cut short by a crash
            zjq_log_warning ("journal_truncated", "bytes=%zu offset=%zu what=%s reason=%s",
                             size - offset, offset, "torn record", why);
            pass->truncate_at = offset;
            return 0;
        }
        if (!self->salvage) {
            zjq_log_error ("journal_corrupt", "path=%s offset=%zu what=%s next_good=%zu msg=%s",
                           self->path, offset, why, next, "corrupt record; not starting: run "
                           "with --journal-salvage to skip corrupt records and keep the rest");
            return -1;
        }
        zjq_log_warning ("journal_salvaged", "bytes=%zu offset=%zu what=%s", next - offset, offset,
                         why);
        pass->skipped++;
        offset = next;
    }
    return 0;
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
    s_pass_t pass = { 0, 0, size };
    int rc = s_check_header (self, data, size);
    if (rc == 1) {
        pass.truncate_at = 0;
        rc = 0;
    }
    else
    if (rc == 0)
        rc = s_read_records (self, data, size, ZJQ_JOURNAL_HEADER, &pass);
    munmap (data, size);
    if (rc == 0 && pass.truncate_at < size
    &&  ftruncate (self->main.fd, (off_t) pass.truncate_at) == -1) {
        zjq_log_error ("journal_error", "path=%s what=%s error=%s", self->path,
                       "cannot truncate", strerror (errno));
        rc = -1;
    }
    if (rc == -1)
        return -1;
    size_t dropped = 0;
    size_t running = zjq_replay_settle (self->replay, zjq_wall_ms (), &dropped);
    self->stats.replayed = pass.records;
    zjq_log_info ("journal_replayed", "path=%s records=%llu live=%zu requeued=%zu "
                  "outcomes_dropped=%zu skipped_corrupt=%s", self->path,
                  (unsigned long long) pass.records, zjq_replay_size (self->replay), running,
                  dropped, pass.skipped? "true": "false");
    return 0;
}

uint64_t
zjq_journal_max_generation (zjq_journal_t *self)
{
    assert (self);
    return zjq_replay_max_generation (self->replay);
}

size_t
zjq_journal_restore (zjq_journal_t *self, zjq_jobtable_t *table, zjq_replay_restore_fn *fn,
                     void *arg)
{
    assert (self);
    assert (table && fn);
    return zjq_replay_restore (self->replay, table, fn, arg);
}
