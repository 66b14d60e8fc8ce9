/*  zjq_journal_test.c: the file journal's self-test (zjq_journal_test):
    appends, durability, replay, compaction, torn and corrupt files, and
    full-disk and sync failures by fault injection. Kept beside the
    journal's files (it runs them all: file, compaction, replay).           */

#include "zjq_journal_private.h"
#include "zjq_jobtable.h"
#include "zjq_queue.h"
#include "zjq_log.h"
#include "zjq_util.h"
//  The self-test relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
