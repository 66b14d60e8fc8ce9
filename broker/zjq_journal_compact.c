/*  zjq_journal_compact.c: rewriting the file journal to the live state.

    When the file outgrows max(compact_size, 2 x the live bytes of the last
    rewrite), a new file is written next to it: the header, a GENERATION
    record, a QUEUE record per paused queue, then a JOB record per live job
    (a bounded number per loop turn, from a scan of the table in submission
    order), while every new record goes to both files. When it holds every
    live job it is synced and renamed over the journal (by the sync thread).
    The same rewrite, done at once, starts the journal, and retries an
    unhealthy one. The records are zjq_record.c's, the live state the
    table's (its scan, generations and paused queues).                     */

#include "zjq_journal_private.h"
#include "zjq_jobtable.h"
#include "zjq_log.h"
#include "zjq_util.h"
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  The generation that follows and every one the table knows
static void
s_encode_generation (zjq_recbuf_t *buf, zjq_jobtable_t *table)
{
    uint64_t generation, last;
    size_t count = 0;
    while (zjq_jobtable_generation_at (table, count, &generation, &last))
        count++;
    uint64_t *pairs = (uint64_t *) malloc (count * 2 * sizeof (uint64_t));
    if (!pairs) {
        buf->oom = true;
        return;
    }
    for (size_t index = 0; index < count; index++)
        zjq_jobtable_generation_at (table, index, &pairs [2 * index], &pairs [2 * index + 1]);
    zjq_record_encode_generation (buf, pairs, count);
    free (pairs);
}

//  A QUEUE record for a paused queue (the start of a rewrite)
static void
s_encode_paused (void *arg, const char *queue)
{
    zjq_record_encode_queue ((zjq_recbuf_t *) arg, queue, true);
}

//  Give up on the compaction file (not renamed); error is why, 0 for none
void
zjq_journal_compact_abort (zjq_journal_t *self, const char *what, int error)
{
    if (error) {
        zjq_journal_set_error (self, what, error);
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
    zjq_journal_file_reset (&self->compact);
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
void
zjq_journal_compact_adopt (zjq_journal_t *self, uint64_t lsn)
{
    if (self->main.fd >= 0)
        close (self->main.fd);
    zjq_recbuf_free (&self->main.buf);
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
        zjq_journal_fail (self, "write", self->compact_error);
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
                zjq_journal_compact_abort (self, "open", errno);
            else {
                self->compacting = true;
                self->compact.offset = 0;
                self->compact.buffered_lsn = self->compact.written_lsn = self->lsn;
                zjq_record_encode_header (&self->compact.buf);
                s_encode_generation (&self->compact.buf, table);
                zjq_jobtable_paused_queues (table, s_encode_paused, &self->compact.buf);
                if (zjq_jobtable_scan_start (table) == -1)
                    zjq_journal_compact_abort (self, "listing the jobs", ENOMEM);
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
            zjq_record_encode_job (&self->compact.buf, &record, true);
            jobs++;
        }
        if (self->compact.buf.oom) {
            zjq_journal_compact_abort (self, "buffering the rewrite", ENOMEM);
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
    zjq_jobtable_set_hook (table, &zjq_journal_hook, self);
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
        zjq_journal_compact_adopt (self, self->lsn);
        self->stats.compactions = 0;
        if (self->sync_fn (self->dir_fd) == -1)
            zjq_journal_fail (self, "fsync of the journal directory", errno);
    }
    if (error) {
        if (self->compacting)
            zjq_journal_compact_abort (self, "rewrite", error);
        self->failed = false;
        zjq_journal_fail (self, "rewrite at start", error);
    }
    pthread_mutex_lock (&self->mutex);
    self->shared.sync_fd = self->failed? -1: self->main.fd;
    self->shared.synced = self->shared.target = self->durable;
    pthread_mutex_unlock (&self->mutex);
    if (pthread_create (&self->thread, NULL, zjq_journal_sync_thread, self) != 0) {
        zjq_log_error ("journal_error", "what=%s", "cannot start the sync thread");
        return -1;
    }
    self->thread_started = true;
    if (!self->failed)
        zjq_log_info ("journal_open", "path=%s live_bytes=%llu fsync=%s", self->path,
                  (unsigned long long) self->main.offset, zjq_journal_policy_name (self));
    return 0;
}

