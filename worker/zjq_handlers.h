/*  zjq_handlers.h: the handlers zjq-worker can serve a queue with.

    zjq_handlers_t is the one handler chosen on the command line: a built-in
    (echo, sleep, sha256) or an external command (exec). Register it with
        zjq_worker_handle (worker, queue, zjq_handlers_run, handlers);
    for every queue. It is thread-safe: handler threads share it read-only.

    echo    the result is the payload.
    sleep   the payload is a decimal number of milliseconds (0..86400000);
            sleeps, waking at once on cancellation; the result is the
            number as given.
    sha256  the payload is "N:DATA" (N 1..1000000000): round 1 hashes DATA,
            each further round the previous 32-byte digest; the result is
            the last digest in lowercase hex (64 characters).
    exec    runs `/bin/sh -c COMMAND` per job in its own process group, with
            the payload on stdin and ZJQ_JOB_ID, ZJQ_QUEUE, ZJQ_ATTEMPT in
            its environment; stdout is the result, exit status 0 success.
            The exit status (or signal) goes with the result (attempt
            history). Progress: lines "FRACTION [MESSAGE]" (0..1) or
            "PERCENT% [MESSAGE]" written to file descriptor 3
            ($ZJQ_PROGRESS_FD) are reported as the job's progress; other
            lines there are ignored.
            The process needs SIGPIPE ignored (zjq-worker's main does it), so
            a child that exits without reading all its input fails only the
            job.                                                            */

#ifndef ZJQ_HANDLERS_H_INCLUDED
#define ZJQ_HANDLERS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "zjq_worker.h"

typedef struct _zjq_handlers_t zjq_handlers_t;

//  Bytes of a failing command's stderr kept for the error message
#define ZJQ_EXEC_STDERR_TAIL 2048

//  Create a built-in handler by name ("echo", "sleep", "sha256"). Returns
//  NULL for an unknown name or on out of memory.
zjq_handlers_t *
    zjq_handlers_new_builtin (const char *name);

//  Create a handler that runs a shell command per job. max_result bounds
//  the bytes read from its stdout (past it the child is killed and the
//  attempt fails). Returns NULL for an empty command or on out of memory.
zjq_handlers_t *
    zjq_handlers_new_exec (const char *command, size_t max_result);

//  Destroy the handler; idempotent; nulls the pointer.
void
    zjq_handlers_destroy (zjq_handlers_t **self_p);

//  Log the start and end of every job (zsys_info).
void
    zjq_handlers_set_verbose (zjq_handlers_t *self, bool verbose);

//  The handler name for logs ("echo", ..., "exec").
const char *
    zjq_handlers_name (zjq_handlers_t *self);

//  The zjq_handler_fn to register; arg is the zjq_handlers_t.
int
    zjq_handlers_run (zjq_task_t *task, void *arg);

#endif
