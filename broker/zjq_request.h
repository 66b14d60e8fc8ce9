/*  zjq_request.h: requests to the broker, parsed once into typed structs.

    A handler parses its message in one pass over the fields map into a
    struct (a SUBMIT's queue, options and flags; a READY's worker facts; a
    WORK_RESULT's outcome; the job id of STATUS, RESULT and CANCEL), then
    admits it (limits, rights, keys) and accepts it. Parsing checks types
    and ranges only, and records the first problem in the order the broker
    has always reported them, with the exact text of its error reply; it
    knows nothing of the broker's state.

    Strings the broker keeps using are copied into the struct's buffers
    (NUL-terminated); a string holding a NUL byte counts as absent, as in
    zjq_msg_get_str. Values live as long as the struct and the message.    */

#ifndef ZJQ_REQUEST_H_INCLUDED
#define ZJQ_REQUEST_H_INCLUDED

#include "zjq_proto.h"
#include "zjq_jobid.h"

#define ZJQ_KEY_MAX         256     //  idempotency key bytes
#define ZJQ_TEXT_MAX        256     //  worker id, host, version, progress message
#define ZJQ_ERROR_MAX       1024    //  error text kept from a worker
#define ZJQ_WORKER_QUEUES   64      //  queues one worker may serve
#define ZJQ_DEAD_PAGE_MAX   10000   //  jobs in one DEAD_LETTER_LIST page at most

//  --- Single optional fields, for the requests that need no struct

//  True if the request carries an integer req.
bool
    zjq_request_has_req (zjq_msg_t *msg);
//  An optional integer field. Returns 0 if it is absent (value unchanged)
//  or an integer in [min, max]; -1 if it is present and not.
int
    zjq_request_opt_int (zjq_msg_t *msg, const char *key, int64_t min, int64_t max,
                         int64_t *value);
//  An optional boolean field; same contract as zjq_request_opt_int.
int
    zjq_request_opt_bool (zjq_msg_t *msg, const char *key, bool *value);
//  An optional string field of at most max_len bytes (NULL if absent).
//  Returns -1 if present and not such a string.
int
    zjq_request_opt_str (zjq_msg_t *msg, const char *key, size_t max_len, const char **value);

//  --- SUBMIT
typedef struct {
    bool has_req;               //  an integer req
    const char *queue;          //  the queue name, or NULL (queue_problem says why)
    const char *queue_problem;  //  REJECTED EINVAL text about the queue, or NULL
    const char *problem;        //  REJECTED EINVAL text about the first bad option, or NULL
    int64_t priority;           //  options: absent ones keep the caller's defaults
    int64_t max_attempts;
    int64_t job_timeout_ms;
    int64_t result_ttl_ms;
    const char *key;            //  idempotency key (1-256 bytes), or NULL
    bool notify;                //  send DONE
    bool progress;              //  push PROGRESS_UPDATE
    char queue_buf [ZJQ_QUEUE_NAME_MAX + 1];
    char key_buf [ZJQ_KEY_MAX + 1];
} zjq_submit_req_t;

//  Parse a SUBMIT in one pass. The caller sets the defaults of priority,
//  max_attempts, job_timeout_ms and result_ttl_ms first; the rest is set.
void
    zjq_submit_parse (zjq_msg_t *msg, zjq_submit_req_t *req);

//  --- STATUS, RESULT, CANCEL: a job by id
typedef struct {
    bool has_req;               //  an integer req
    const char *id;             //  the job id (a string), or NULL
    bool flags_bad;             //  'wait' or 'progress' is present and no boolean
    bool wait;                  //  RESULT: send DONE when it ends
    bool progress;              //  RESULT: push PROGRESS_UPDATE
    char id_buf [ZJQ_JOBID_MAX];
} zjq_job_req_t;

void
    zjq_job_req_parse (zjq_msg_t *msg, zjq_job_req_t *req);

//  --- READY
typedef struct {
    const char *problem;        //  the text after "READY: " of the ERROR EPROTO, or NULL
    const char *worker_id;      //  1-256 bytes
    const msgpack_object *queues;   //  an array of 1-64 values (names checked on admission)
    int64_t capacity;           //  1..10000
    int64_t heartbeat_ms;       //  100..60000
    int64_t pid;                //  >= 0, 0 if absent
    const char *host;           //  or NULL
    const char *version;        //  or NULL
    char worker_id_buf [ZJQ_TEXT_MAX + 1];
    char host_buf [ZJQ_TEXT_MAX + 1];
    char version_buf [ZJQ_TEXT_MAX + 1];
} zjq_ready_req_t;

void
    zjq_ready_parse (zjq_msg_t *msg, zjq_ready_req_t *req);

//  --- WORK_RESULT
typedef enum {
    ZJQ_WORK_OK,
    ZJQ_WORK_ERROR,
    ZJQ_WORK_CANCELLED,
    ZJQ_WORK_RETURNED           //  never started: handed back
} zjq_work_status_t;

typedef struct {
    const char *problem;        //  the ERROR EPROTO text, or NULL
    const char *id;             //  the job id
    int64_t attempt;            //  1..ZJQ_JOB_ATTEMPTS_MAX
    zjq_work_status_t status;
    const char *error;          //  the worker's error text (not NUL-terminated), or NULL
    size_t error_len;
    int64_t exit_code;          //  0..255, -1 if absent
    int64_t signal;             //  1..255, 0 if absent
    int64_t duration_ms;        //  >= 0, -1 if absent
    char id_buf [ZJQ_JOBID_MAX];
} zjq_work_result_req_t;

void
    zjq_work_result_parse (zjq_msg_t *msg, zjq_work_result_req_t *req);

//  --- PROGRESS
typedef struct {
    const char *problem;        //  the ERROR EPROTO text, or NULL
    const char *id;             //  the job id
    int64_t attempt;
    double progress;            //  0..1
    const char *message;        //  at most 256 bytes, or NULL
    char id_buf [ZJQ_JOBID_MAX];
    char message_buf [ZJQ_TEXT_MAX + 1];
} zjq_progress_req_t;

void
    zjq_progress_parse (zjq_msg_t *msg, zjq_progress_req_t *req);

//  Self test
void
    zjq_request_test (bool verbose);

#endif
