/*  zjq_journal.c: the file journal: open, lock, append buffer, flush, the
    sync thread, failure and retry. See zjq_journal.h; the record bytes are
    zjq_record.c's, rewrites zjq_journal_compact.c's, reading the file back
    zjq_journal_replay.c's.                                                  */

#include "zjq_journal_private.h"
#include "zjq_jobtable.h"
#include "zjq_log.h"
#include "zjq_util.h"
//  Asserts catch API misuse: keep them in release builds too
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
    int64_t last_start = 0;         //  monotonic ms when the last sync began
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
            last_start = zjq_mono_ms ();
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
            //  Group commit: a sync starts as soon as the previous one is
            //  done, and covers everything written meanwhile. 'interval'
            //  only bounds how often: starts at least interval_ms apart.
            int64_t now = zjq_mono_ms ();
            if (self->policy == ZJQ_FSYNC_INTERVAL && now < last_start + self->interval_ms) {
                struct timespec until;
                clock_gettime (CLOCK_MONOTONIC, &until);
                int64_t wait_ns = (last_start + self->interval_ms - now) * 1000000LL;
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
            last_start = now;
            int error = self->sync_fn (fd) == -1? (errno? errno: EIO): 0;
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

//  The change hook (zjq_jobtable.h): the journal's only input. Each change
//  of the table is appended as one record of its type, encoded from the
//  entry's record (every pointer in it borrowed for the call).
static void
s_append_entry (void *arg, const zjq_jobentry_t *entry, int type)
{
    zjq_job_t record;
    zjq_jobentry_record (entry, &record);
    assert (type != ZJQ_RECORD_ATTEMPT || (record.history && record.history->count));
    s_append ((zjq_journal_t *) arg, &(s_record_t) { .type = type, .job = &record });
}

static void
s_hook_insert (void *arg, const zjq_jobentry_t *entry)
{
    s_append_entry (arg, entry, ZJQ_RECORD_JOB);
}

static void
s_hook_state (void *arg, const zjq_jobentry_t *entry)
{
    s_append_entry (arg, entry, ZJQ_RECORD_STATE);
}

//  A failed attempt: the last one in the job's history (which it must have)
static void
s_hook_attempt (void *arg, const zjq_jobentry_t *entry)
{
    s_append_entry (arg, entry, ZJQ_RECORD_ATTEMPT);
}

static void
s_hook_remove (void *arg, const zjq_jobentry_t *entry)
{
    s_append_entry (arg, entry, ZJQ_RECORD_REMOVE);
}

//  A queue was paused or resumed. A rewrite writes the table's paused
//  queues (zjq_jobtable_paused_queues).
static void
s_hook_queue (void *arg, const char *queue, bool paused)
{
    assert (queue);
    s_append ((zjq_journal_t *) arg, &(s_record_t) { .type = ZJQ_RECORD_QUEUE, .queue = queue,
                                                     .paused = paused });
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
