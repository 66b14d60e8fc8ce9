/*  zjq_journal.c: the file journal: open, lock, append buffer, flush, the
    sync thread, failure and retry. See zjq_journal.h; the record bytes are
    zjq_record.c's, rewrites zjq_journal_compact.c's, reading the file back
    zjq_journal_replay.c's.                                                  */

#include "zjq_journal_private.h"
#include "zjq_jobtable.h"
#include "zjq_queue.h"
#include "zjq_log.h"
#include "zjq_util.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  What s_append encodes: a job record of a type, or a queue's paused flag
typedef struct {
    int type;
    const zjq_job_t *job;       //  JOB, STATE, REMOVE, ATTEMPT (its last attempt)
    const char *queue;          //  QUEUE
    bool paused;                //  QUEUE
} s_record_t;


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

void
zjq_journal_file_reset (zjq_jfile_t *file)
{
    zjq_recbuf_free (&file->buf);
    memset (file, 0, sizeof (*file));
    file->fd = -1;
}

//  Write a file's buffer at its offset. Returns 0, or an errno (the buffer
//  is kept; what was written of it is garbage past the file's offset).
int
zjq_journal_file_write (zjq_journal_t *self, zjq_jfile_t *file)
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
    zjq_recbuf_trim (&file->buf);
    return 0;
}

static void
zjq_journal_notify (zjq_journal_t *self)
{
    uint64_t one = 1;
    if (write (self->event_fd, &one, sizeof (one)) == -1 && errno != EAGAIN)
        zjq_log_error ("journal_error", "what=%s error=%s", "cannot signal the broker loop",
                       strerror (errno));
}

void
zjq_journal_set_error (zjq_journal_t *self, const char *what, int error)
{
    snprintf (self->last_error, sizeof (self->last_error), "%s: %s", what, strerror (error));
}

//  The journal cannot be written: stop writing journal.zjq (it is replaced
//  by the next successful rewrite) and drop its unwritten records; the
//  table in memory still has their effect.
void
zjq_journal_fail (zjq_journal_t *self, const char *what, int error)
{
    zjq_journal_set_error (self, what, error);
    if (!self->failed)
        zjq_log_error ("journal_failed", "path=%s call=%s error=%s retry_ms=%d msg=%s", self->path,
                       what, strerror (error), ZJQ_RETRY_MS,
                       "new jobs are rejected until the journal can be written again");
    self->failed = true;
    self->error = error;
    self->retries = 0;
    self->retry_at = zjq_mono_ms () + ZJQ_RETRY_MS;
    self->main.buf.size = 0;
    zjq_recbuf_trim (&self->main.buf);
    pthread_mutex_lock (&self->mutex);
    self->shared.sync_fd = -1;
    pthread_mutex_unlock (&self->mutex);
}

//  The sync thread: fdatasync per the policy, and renames on request
void *
zjq_journal_sync_thread (void *arg)
{
    zjq_journal_t *self = (zjq_journal_t *) arg;
    zjq_jshared_t *shared = &self->shared;
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
            zjq_journal_notify (self);
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
            zjq_journal_notify (self);
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
    zjq_journal_file_reset (&self->main);
    zjq_journal_file_reset (&self->compact);
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
    self->replay = zjq_replay_new ();
    if (!self->dir || !self->path || !self->compact_path || !lock_path || !self->replay) {
        zjq_log_error ("out_of_memory", "what=%s", "journal");
        goto err;
    }
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
        zjq_jobtable_set_hook (self->table, NULL, NULL);
    if (self->compacting)
        zjq_journal_compact_abort (self, NULL, 0);
    if (self->main.fd >= 0 && !self->failed && self->thread_started) {
        int error = self->main.buf.size? zjq_journal_file_write (self, &self->main): 0;
        if (error || self->sync_fn (self->main.fd) == -1)
            zjq_log_error ("journal_error", "path=%s what=%s error=%s", self->path,
                           "final write failed", strerror (error? error: errno));
    }
    if (self->main.fd >= 0)
        close (self->main.fd);
    zjq_journal_file_reset (&self->main);
    zjq_journal_file_reset (&self->compact);
    if (self->event_fd >= 0)
        close (self->event_fd);
    if (self->dir_fd >= 0)
        close (self->dir_fd);
    if (self->lock_fd >= 0)
        close (self->lock_fd);      //  releases the flock
    zjq_replay_destroy (&self->replay);
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

//  --------------------------------------------------------------------------
//  Appending, flushing, syncing

static void
s_encode (zjq_recbuf_t *buf, const s_record_t *record)
{
    switch (record->type) {
        case ZJQ_RECORD_REMOVE:  zjq_record_encode_remove (buf, record->job); break;
        case ZJQ_RECORD_ATTEMPT: zjq_record_encode_attempt (buf, record->job); break;
        case ZJQ_RECORD_QUEUE:   zjq_record_encode_queue (buf, record->queue, record->paused); break;
        default: zjq_record_encode_job (buf, record->job, record->type == ZJQ_RECORD_JOB); break;
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
    zjq_recbuf_t *buf = to_main? &self->main.buf: &self->compact.buf;
    size_t start = buf->size;
    s_encode (buf, record);
    if (buf->oom) {
        buf->size = start;
        buf->oom = false;
        if (to_main)
            zjq_journal_fail (self, "buffering a record", ENOMEM);
        else
            zjq_journal_compact_abort (self, "buffering a record", ENOMEM);
        return self->lsn;
    }
    if (to_main) {
        self->main.buffered_lsn = self->lsn;
        if (to_compact
        &&  zjq_recbuf_append (&self->compact.buf, buf->data + start, buf->size - start) == -1)
            zjq_journal_compact_abort (self, "buffering a record", ENOMEM);
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
    return s_append (self, &(s_record_t) { .type = ZJQ_RECORD_QUEUE, .queue = queue,
                                           .paused = paused });
}

//  The change hook (zjq_jobtable.h): each change of the table, appended
static void
s_hook_insert (void *arg, const zjq_jobentry_t *entry)
{
    zjq_job_t record;
    zjq_jobentry_record (entry, &record);
    s_append ((zjq_journal_t *) arg, &(s_record_t) { .type = ZJQ_RECORD_JOB, .job = &record });
}

static void
s_hook_state (void *arg, const zjq_jobentry_t *entry)
{
    zjq_job_t record;
    zjq_jobentry_record (entry, &record);
    s_append ((zjq_journal_t *) arg, &(s_record_t) { .type = ZJQ_RECORD_STATE, .job = &record });
}

static void
s_hook_attempt (void *arg, const zjq_jobentry_t *entry)
{
    zjq_job_t record;
    zjq_jobentry_record (entry, &record);
    zjq_journal_append_attempt ((zjq_journal_t *) arg, &record);
}

static void
s_hook_remove (void *arg, const zjq_jobentry_t *entry)
{
    zjq_job_t record;
    zjq_jobentry_record (entry, &record);
    s_append ((zjq_journal_t *) arg, &(s_record_t) { .type = ZJQ_RECORD_REMOVE, .job = &record });
}

static void
s_hook_queue (void *arg, const char *queue, bool paused)
{
    zjq_journal_append_queue ((zjq_journal_t *) arg, queue, paused);
}

const zjq_jobtable_hook_t zjq_journal_hook = {
    .insert = s_hook_insert,
    .state = s_hook_state,
    .attempt = s_hook_attempt,
    .remove = s_hook_remove,
    .queue = s_hook_queue,
    //  Generations reach the file with every rewrite (its GENERATION record)
    .generation = NULL
};

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
        int error = zjq_journal_file_write (self, &self->main);
        if (error)
            zjq_journal_fail (self, "write", error);
    }
    if (self->compacting && !self->compact_broken && self->compact.buf.size) {
        int error = zjq_journal_file_write (self, &self->compact);
        if (error && self->switch_requested) {
            //  The sync thread may be renaming it: settle that first
            self->compact_broken = true;
            self->compact_error = error;
        }
        else
        if (error)
            zjq_journal_compact_abort (self, "write", error);
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
            zjq_journal_compact_adopt (self, switch_error? 0: switch_lsn);
            if (switch_error)
                zjq_journal_fail (self, "fsync of the journal directory", switch_error);
        }
        else
            zjq_journal_compact_abort (self, "fdatasync of the rewritten journal", switch_error);
    }
    if (sync_error)
        zjq_journal_fail (self, "fdatasync", sync_error);
    if (!self->failed && synced > self->durable)
        self->durable = synced;
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

static uint32_t
s_get32 (const byte *where)
{
    return (uint32_t) where [0] | (uint32_t) where [1] << 8
         | (uint32_t) where [2] << 16 | (uint32_t) where [3] << 24;
}

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
    (void) arg;
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
    zjq_jobtable_set_paused (table, "q", true);
    zjq_jobtable_set_paused (table, "gone", true);
    zjq_jobtable_set_paused (table, "gone", false);
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
        size_t paused = zjq_jobtable_paused_queues (table, s_test_paused, NULL);
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
