/*  zjq_replay.c: folding journal records into the live jobs. See
    zjq_replay.h.                                                           */

#define _GNU_SOURCE                     //  memmem (self-test)
#include "zjq_replay.h"
#include "zjq_record.h"
#include "zjq_jobtable.h"
#include "zjq_log.h"
#include "zjq_jobid.h"
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <stdlib.h>
#include <string.h>

//  A job read back from the journal
typedef struct {
    zjq_job_t job;
    char *queue;                //  queue name (job.queue is NULL until restored)
} s_rjob_t;

struct _zjq_replay_t {
    zhashx_t *jobs;             //  id -> s_rjob_t
    zhashx_t *paused;           //  names of the paused queues
    uint64_t *generations;      //  (generation, last sequence) pairs seen
    size_t generation_count;
};

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

static void
s_jobs_purge (zjq_replay_t *self)
{
    for (s_rjob_t *rjob = (s_rjob_t *) zhashx_first (self->jobs); rjob;
         rjob = (s_rjob_t *) zhashx_next (self->jobs))
        s_rjob_free (&rjob);
    zhashx_purge (self->jobs);
}

zjq_replay_t *
zjq_replay_new (void)
{
    zjq_replay_t *self = (zjq_replay_t *) calloc (1, sizeof (zjq_replay_t));
    if (!self)
        return NULL;
    self->jobs = zhashx_new ();
    self->paused = zhashx_new ();
    if (!self->jobs || !self->paused) {
        zjq_replay_destroy (&self);
        return NULL;
    }
    //  The keys are the records' own ids
    zhashx_set_key_duplicator (self->jobs, NULL);
    zhashx_set_key_destructor (self->jobs, NULL);
    return self;
}

void
zjq_replay_destroy (zjq_replay_t **self_p)
{
    assert (self_p);
    zjq_replay_t *self = *self_p;
    if (!self)
        return;
    if (self->jobs)
        s_jobs_purge (self);
    zhashx_destroy (&self->jobs);
    zhashx_destroy (&self->paused);
    free (self->generations);
    free (self);
    *self_p = NULL;
}

static void
s_note_generation (void *arg, uint64_t generation, uint64_t last)
{
    zjq_replay_t *self = (zjq_replay_t *) arg;
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

//  A QUEUE record: the queue is paused, or not
static const char *
s_apply_queue (zjq_replay_t *self, const zjq_record_t *record)
{
    char *name;
    bool paused;
    const char *problem = zjq_record_queue (record, &name, &paused);
    if (!problem) {
        if (paused)
            zhashx_update (self->paused, name, self->paused);
        else
            zhashx_delete (self->paused, name);
        free (name);
    }
    return problem;
}

//  A JOB record: the job as it is now, replacing what was known of it
static const char *
s_apply_job (zjq_replay_t *self, const zjq_record_t *record, const char *id)
{
    s_rjob_t *rjob = (s_rjob_t *) calloc (1, sizeof (s_rjob_t));
    if (!rjob)
        return "out of memory";
    strcpy (rjob->job.id, id);
    const char *problem = zjq_record_decode_job (record, &rjob->job, &rjob->queue);
    if (!problem && !rjob->queue)
        problem = "job without a queue";
    uint64_t generation, sequence;
    zjq_jobid_parse (id, &generation, &sequence);
    if (!problem && sequence != rjob->job.sequence)
        problem = "job id and sequence disagree";
    if (problem) {
        s_rjob_free (&rjob);
        return problem;
    }
    s_note_generation (self, generation, sequence);
    s_rjob_t *old = (s_rjob_t *) zhashx_lookup (self->jobs, id);
    if (old) {
        zhashx_delete (self->jobs, id);
        s_rjob_free (&old);
    }
    zhashx_insert (self->jobs, rjob->job.id, rjob);
    return NULL;
}

//  A STATE, ATTEMPT or REMOVE record of a job
static const char *
s_apply_change (zjq_replay_t *self, const zjq_record_t *record, const char *id)
{
    s_rjob_t *rjob = (s_rjob_t *) zhashx_lookup (self->jobs, id);
    if (record->type == ZJQ_RECORD_STATE)
        return rjob? zjq_record_decode_job (record, &rjob->job, &rjob->queue): NULL;
    if (record->type == ZJQ_RECORD_ATTEMPT)
        return zjq_record_decode_attempt (record, rjob? &rjob->job: NULL);
    if (rjob) {
        zhashx_delete (self->jobs, id);
        s_rjob_free (&rjob);
    }
    return NULL;
}

const char *
zjq_replay_apply (zjq_replay_t *self, int type, const byte *body, size_t size, bool *fatal)
{
    assert (self);
    assert (fatal);
    zjq_record_t record;
    const char *problem = zjq_record_open (&record, type, body, size);
    char id [ZJQ_JOBID_MAX];
    if (problem)
        ;
    else
    if (type == ZJQ_RECORD_QUEUE)
        problem = s_apply_queue (self, &record);
    else
    if (type == ZJQ_RECORD_GENERATION)
        zjq_record_generations (&record, s_note_generation, self);
    else
    if (!zjq_record_id (&record, id))
        problem = "missing or bad job id";
    else
    if (type == ZJQ_RECORD_JOB)
        problem = s_apply_job (self, &record, id);
    else
        problem = s_apply_change (self, &record, id);
    if (problem && strstr (problem, "newer"))
        *fatal = true;
    zjq_record_close (&record);
    return problem;
}

size_t
zjq_replay_settle (zjq_replay_t *self, int64_t now, size_t *dropped)
{
    assert (self);
    assert (dropped);
    size_t running = 0;
    zlistx_t *expired = zlistx_new ();
    assert (expired);
    for (s_rjob_t *rjob = (s_rjob_t *) zhashx_first (self->jobs); rjob;
         rjob = (s_rjob_t *) zhashx_next (self->jobs)) {
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
        zhashx_delete (self->jobs, rjob->job.id);
        s_rjob_free (&rjob);
    }
    zlistx_destroy (&expired);
    return running;
}

size_t
zjq_replay_size (zjq_replay_t *self)
{
    assert (self);
    return zhashx_size (self->jobs);
}

uint64_t
zjq_replay_max_generation (zjq_replay_t *self)
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
zjq_replay_restore (zjq_replay_t *self, zjq_jobtable_t *table, zjq_replay_restore_fn *fn,
                    void *arg)
{
    assert (self);
    assert (table && fn);
    size_t count = zhashx_size (self->jobs);
    s_rjob_t **rjobs = count? (s_rjob_t **) malloc (count * sizeof (s_rjob_t *)): NULL;
    assert (!count || rjobs);   //  out of memory at startup
    size_t index = 0;
    if (count)
        for (s_rjob_t *rjob = (s_rjob_t *) zhashx_first (self->jobs); rjob;
             rjob = (s_rjob_t *) zhashx_next (self->jobs))
            rjobs [index++] = rjob;
    zhashx_purge (self->jobs);
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
    for (void *item = zhashx_first (self->paused); item; item = zhashx_next (self->paused)) {
        const char *name = (const char *) zhashx_cursor (self->paused);
        if (zjq_jobtable_set_paused (table, name, true) != 0)
            zjq_log_error ("out_of_memory", "what=paused_queue queue=%s", name);
    }
    zhashx_purge (self->paused);
    return count;
}



//  --------------------------------------------------------------------------
//  Self test

static int s_test_restored = 0;

static void
s_test_restore (void *arg, zjq_job_t *job, const char *queue_name)
{
    (void) arg;
    assert (streq (queue_name, "q"));
    assert (job->sequence == (uint64_t) (s_test_restored? 3: 1));   //  submission order
    s_test_restored++;
    zjq_job_free_fields (job);
}

static void
s_test_restore_paused (void *arg, const char *queue)
{
    (void) arg;
    assert (streq (queue, "q"));
}

static void
s_test_apply (zjq_replay_t *self, const zjq_recbuf_t *buf, size_t from)
{
    while (from < buf->size) {
        const char *why = NULL;
        size_t length = zjq_record_at (buf->data, buf->size, from, &why);
        assert (length);
        bool fatal = false;
        assert (zjq_replay_apply (self, buf->data [from + ZJQ_RECORD_HEADER],
                                  buf->data + from + ZJQ_RECORD_HEADER + 1,
                                  length - ZJQ_RECORD_HEADER - 1, &fatal) == NULL);
        from += length;
    }
}

void
zjq_replay_test (bool verbose)
{
    zjq_replay_t *self = zjq_replay_new ();
    assert (self);
    zjq_recbuf_t buf = { 0 };
    const uint64_t generation = 1795000000000ULL;
    zjq_job_t job = { .queue = "q", .max_attempts = 2, .state = ZJQ_STATE_QUEUED,
                      .job_timeout_ms = 1000, .result_ttl_ms = 1000, .progress = -1 };
    //  Three jobs: one stays queued, one is removed, one was running on
    //  its last attempt (it fails); a STATE for an unknown job is ignored
    for (uint64_t sequence = 1; sequence <= 3; sequence++) {
        job.sequence = job.order = sequence;
        zjq_jobid_format (job.id, generation, sequence);
        zjq_record_encode_job (&buf, &job, true);
    }
    zjq_jobid_format (job.id, generation, 2);
    zjq_record_encode_remove (&buf, &job);
    job.sequence = 3;
    zjq_jobid_format (job.id, generation, 3);
    job.state = ZJQ_STATE_RUNNING;
    job.attempt = 2;
    zjq_record_encode_job (&buf, &job, false);
    zjq_jobid_format (job.id, generation, 99);
    zjq_record_encode_job (&buf, &job, false);
    zjq_record_encode_queue (&buf, "q", true);
    uint64_t pairs [2] = { generation + 1, 0 };
    zjq_record_encode_generation (&buf, pairs, 1);
    s_test_apply (self, &buf, 0);
    //  A record of a newer version is fatal
    zjq_recbuf_t newer = { 0 };
    job.sequence = 4;
    zjq_jobid_format (job.id, generation, 4);
    zjq_record_encode_job (&newer, &job, true);
    //  ("v" is the first key: 0xa1 'v' then the version as a fixint)
    byte *version = (byte *) memmem (newer.data, newer.size, "\xa1v", 2);
    assert (version);
    version [2] = ZJQ_JOB_RECORD_VERSION + 1;
    bool fatal = false;
    assert (zjq_replay_apply (self, ZJQ_RECORD_JOB, newer.data + ZJQ_RECORD_HEADER + 1,
                              newer.size - ZJQ_RECORD_HEADER - 1, &fatal) != NULL && fatal);
    zjq_recbuf_free (&newer);
    assert (zjq_replay_size (self) == 2);
    assert (zjq_replay_max_generation (self) == generation + 1);
    size_t dropped = 0;
    assert (zjq_replay_settle (self, 5000, &dropped) == 1 && dropped == 0);
    zjq_jobtable_t *table = zjq_jobtable_new (generation + 2);
    assert (table);
    assert (zjq_replay_restore (self, table, s_test_restore, NULL) == 2);
    assert (s_test_restored == 2 && zjq_replay_size (self) == 0);
    uint64_t gen, last;
    assert (zjq_jobtable_generation_at (table, 1, &gen, &last));
    assert (gen == generation || gen == generation + 1);
    assert (zjq_jobtable_paused_queues (table, s_test_restore_paused, NULL) == 1);
    zjq_jobtable_destroy (&table);
    zjq_recbuf_free (&buf);
    zjq_replay_destroy (&self);
    if (verbose)
        printf ("(replay ok) ");
}
