/*  zjq_job.h: the job record.

    zjq_job_t is what a job *is*: the fields that the journal writes and
    replays. Everything the broker keeps *about* a job to find and schedule
    it (heap positions, the worker running it, clients waiting for it) is
    bookkeeping in the job table, never here, so that a record can be
    written out and read back without any pointer fix-ups beyond its strings
    and byte fields.

    The job table does not hold jobs in this form: it keeps a compact entry
    per job (zjq_jobentry_t, zjq_jobtable.h) and fills a zjq_job_t from it
    on demand (zjq_jobentry_record), for the journal and for replies. So a
    zjq_job_t is one of:
    - a snapshot of an entry: every pointer is borrowed from the entry and
      valid until the entry next changes;
    - a record read back from the journal: every pointer is owned by the
      record (malloc'd strings, payload and result bytes; see
      zjq_job_free_fields);
    - a submission spec for zjq_jobtable_insert (only the fields it names).

    ZJQ_JOB_RECORD_VERSION travels with every persisted record. Bump it when
    a field is added, removed or changes meaning, and teach the journal
    reader to upgrade records of the older version.                         */

#ifndef ZJQ_JOB_H_INCLUDED
#define ZJQ_JOB_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include "zjq_error.h"
#include "zjq_jobid.h"
#include "zjq_cert.h"
#include "zjq_history.h"

#define ZJQ_JOB_RECORD_VERSION 3       //  2: adds owner; 3: adds history, and a
                                        //  failed job keeps its payload

//  Attempts a job may make in all, across retries (`zjq retry`)
#define ZJQ_JOB_ATTEMPTS_MAX 1000000

typedef struct {
    char id [ZJQ_JOBID_MAX];    //  "<generation>-<sequence>", base 36
    uint64_t sequence;          //  the sequence part of the id
    uint64_t order;             //  submission order, broker-wide; kept on retry
    const char *queue;          //  queue name; interned, owned by the queue object
    char *key;                  //  idempotency key, or NULL
    char owner [ZJQ_CERT_KEY_TEXT];     //  submitter's CURVE public key (Z85), or ""
    int priority;               //  -1000..1000, higher runs first
    int max_attempts;           //  1..1000 (more after a retry: ZJQ_JOB_ATTEMPTS_MAX)
    int attempt;                //  current or last attempt, 0 before the first
    zjq_state_t state;          //  queued, running, or one of the three ends
    int64_t job_timeout_ms;     //  per attempt
    int64_t result_ttl_ms;      //  outcome is kept this long after the end
    int64_t created_ms;         //  wall clock, Unix ms
    int64_t started_ms;         //  start of the current or last attempt; 0 = never
    int64_t finished_ms;        //  0 until the job ends
    int64_t expires_ms;         //  when the outcome is dropped; 0 until the end
    double progress;            //  0..1 as reported by the worker; < 0 = none
    char *progress_message;     //  or NULL
    char *error;                //  final error, or the last failed attempt's reason
    byte *payload;              //  the submitted payload bytes; NULL once the job ends
                                //  (a failed job keeps it, for a retry)
    size_t payload_size;        //  bytes in payload
    byte *result;               //  the result of a succeeded job, or NULL (none)
    size_t result_size;         //  bytes in result
    zjq_history_t *history;     //  failed attempts, or NULL if none failed yet
} zjq_job_t;

//  True once the job has reached one of its final states.
static inline bool
zjq_job_ended (const zjq_job_t *job)
{
    return job->state == ZJQ_STATE_SUCCEEDED
        || job->state == ZJQ_STATE_FAILED
        || job->state == ZJQ_STATE_CANCELLED;
}

//  Free the fields that a record read back from the journal owns (key,
//  error, progress message, payload, result, history) and null them.
static inline void
zjq_job_free_fields (zjq_job_t *job)
{
    free (job->key);
    free (job->error);
    free (job->progress_message);
    free (job->payload);
    free (job->result);
    zjq_history_destroy (&job->history);
    job->key = job->error = job->progress_message = NULL;
    job->payload = job->result = NULL;
    job->payload_size = job->result_size = 0;
}

#endif
