/*  zjq_handlers.c: zjq-worker's built-in handlers and the exec handler.

    Every function here runs on a worker handler thread; the handler object
    is read-only while the worker runs.                                    */

#define _GNU_SOURCE                 //  pipe2, close_range, asprintf, sigabbrev_np
#include "zjq_handlers.h"
#include "zjq_log.h"
#include "zjq_util.h"

#include <czmq.h>
#include <sodium.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define s_SLEEP_MAX_MS       86400000
#define s_SHA256_MAX_ROUNDS  1000000000
#define s_SHA256_CHECK_EVERY 4096           //  rounds between cancel checks
#define s_SHA256_PROGRESS    (1 << 20)      //  rounds between progress reports
#define s_EXEC_POLL_MS       100            //  exec loop tick
#define s_EXEC_LINGER_MS     1000           //  read after the command exited
#define s_EXEC_CHUNK         65536
#define s_EXEC_PROGRESS_FD   3              //  the child reports progress lines here
#define s_EXEC_PROGRESS_LINE 512            //  longer progress lines are cut

typedef enum { s_ECHO, s_SLEEP, s_SHA256, s_EXEC } s_kind_t;

struct _zjq_handlers_t {
    s_kind_t kind;              //  which handler
    char *command;              //  shell command for exec
    size_t max_result;          //  stdout bound for exec
    bool verbose;               //  log job start and end
};

static const char *s_kind_names [] = { "echo", "sleep", "sha256", "exec" };


//  --------------------------------------------------------------------------
//  Built-in handlers

static int
s_echo (zjq_handlers_t *self, zjq_task_t *task)
{
    //  Too big: the worker reports "result of N bytes exceeds the limit of M"
    return zjq_task_set_result (task, zjq_task_payload (task), zjq_task_payload_size (task))
           == 0 ? 0 : -1;
}

//  Copy a small payload into buf as a string without surrounding
//  whitespace. Returns -1 if it does not fit.
static int
s_payload_text (zjq_task_t *task, char *buf, size_t size)
{
    const char *data = (const char *) zjq_task_payload (task);
    size_t len = zjq_task_payload_size (task);
    while (len > 0 && isspace ((unsigned char) data [len - 1]))
        len--;
    while (len > 0 && isspace ((unsigned char) *data)) {
        data++;
        len--;
    }
    if (len >= size || memchr (data, 0, len))
        return -1;
    memcpy (buf, data, len);
    buf [len] = 0;
    return 0;
}

static int
s_sleep (zjq_handlers_t *self, zjq_task_t *task)
{
    char text [32];
    int64_t ms = 0;
    if (s_payload_text (task, text, sizeof text) != 0
    ||  zjq_parse_int (text, 0, s_SLEEP_MAX_MS, &ms) != 0)
        return zjq_task_fail (task, "sleep: the payload must be a whole number of milliseconds "
                              "from 0 to %d", s_SLEEP_MAX_MS);
    if (zjq_task_wait_cancelled (task, (int) ms))
        return -1;
    return zjq_task_set_result (task, text, strlen (text)) == 0 ? 0 : -1;
}

static int
s_sha256 (zjq_handlers_t *self, zjq_task_t *task)
{
    const uint8_t *payload = (const uint8_t *) zjq_task_payload (task);
    size_t size = zjq_task_payload_size (task);
    const uint8_t *colon = (const uint8_t *) memchr (payload, ':', size < 12 ? size : 12);
    char number [12];
    int64_t rounds = 0;
    size_t digits = colon ? (size_t) (colon - payload) : 0;
    bool valid = colon && digits > 0;
    for (size_t i = 0; valid && i < digits; i++)
        valid = isdigit (payload [i]);
    if (valid) {
        memcpy (number, payload, digits);
        number [digits] = 0;
        valid = zjq_parse_int (number, 1, s_SHA256_MAX_ROUNDS, &rounds) == 0;
    }
    if (!valid)
        return zjq_task_fail (task, "sha256: the payload must be N:DATA with N a whole number "
                              "of rounds from 1 to %d", s_SHA256_MAX_ROUNDS);

    uint8_t digest [2][crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest [0], colon + 1, size - digits - 1);
    int current = 0;
    for (int64_t round = 1; round < rounds; round++) {
        if (round % s_SHA256_CHECK_EVERY == 0) {
            if (zjq_task_cancelled (task))
                return -1;
            if (round % s_SHA256_PROGRESS == 0)
                zjq_task_progress (task, (double) round / (double) rounds, NULL);
        }
        crypto_hash_sha256 (digest [1 - current], digest [current], crypto_hash_sha256_BYTES);
        current = 1 - current;
    }
    char hex [crypto_hash_sha256_BYTES * 2 + 1];
    sodium_bin2hex (hex, sizeof hex, digest [current], crypto_hash_sha256_BYTES);
    return zjq_task_set_result (task, hex, strlen (hex)) == 0 ? 0 : -1;
}


//  --------------------------------------------------------------------------
//  exec: one child process per job

//  The output of a child, collected by s_exec_io.
typedef struct {
    char *out;                  //  stdout so far
    size_t out_size;            //  bytes in out
    size_t out_max;             //  allocated
    bool too_big;               //  stdout passed the limit
    bool no_memory;             //  could not grow out
    char err [ZJQ_EXEC_STDERR_TAIL];    //  last bytes of stderr
    size_t err_size;            //  bytes in err
    bool err_cut;               //  earlier stderr was dropped
    char line [s_EXEC_PROGRESS_LINE + 1];   //  progress line being read
    size_t line_size;           //  bytes in line (the rest of a longer one is dropped)
} s_output_t;

//  Build the child's environment: ours, with the ZJQ_* job variables set.
//  Returns a NULL-terminated array the caller frees with s_env_destroy, or
//  NULL on out of memory. Done before fork: the child must not allocate.
static char **
s_env_new (zjq_task_t *task, char **extra)
{
    size_t count = 0;
    while (environ && environ [count])
        count++;
    char **env = (char **) calloc (count + 5, sizeof (char *));
    if (!env)
        return NULL;
    if (asprintf (&extra [0], "ZJQ_JOB_ID=%s", zjq_task_id (task)) < 0)
        extra [0] = NULL;
    if (asprintf (&extra [1], "ZJQ_QUEUE=%s", zjq_task_queue (task)) < 0)
        extra [1] = NULL;
    if (asprintf (&extra [2], "ZJQ_ATTEMPT=%d", zjq_task_attempt (task)) < 0)
        extra [2] = NULL;
    if (asprintf (&extra [3], "ZJQ_PROGRESS_FD=%d", s_EXEC_PROGRESS_FD) < 0)
        extra [3] = NULL;
    if (!extra [0] || !extra [1] || !extra [2] || !extra [3]) {
        free (env);
        return NULL;
    }
    size_t used = 0;
    for (size_t i = 0; i < count; i++)
        if (strncmp (environ [i], "ZJQ_JOB_ID=", 11) != 0
        &&  strncmp (environ [i], "ZJQ_QUEUE=", 10) != 0
        &&  strncmp (environ [i], "ZJQ_ATTEMPT=", 12) != 0
        &&  strncmp (environ [i], "ZJQ_PROGRESS_FD=", 16) != 0)
            env [used++] = environ [i];
    for (int i = 0; i < 4; i++)
        env [used++] = extra [i];
    return env;
}

//  In the child, between fork and exec: only async-signal-safe calls.
static void
s_exec_child (const char *command, int stdin_fd, int stdout_fd, int stderr_fd,
              int progress_fd, char **env)
{
    setpgid (0, 0);
    zjq_signals_unblock_all ();
    struct sigaction action;
    memset (&action, 0, sizeof action);
    action.sa_handler = SIG_DFL;
    sigaction (SIGPIPE, &action, NULL);     //  the worker ignores it
    if (dup2 (stdin_fd, 0) < 0 || dup2 (stdout_fd, 1) < 0 || dup2 (stderr_fd, 2) < 0)
        _exit (127);
    //  The progress pipe on fd 3 (dup2 onto itself keeps close-on-exec)
    if (progress_fd == s_EXEC_PROGRESS_FD)
        fcntl (progress_fd, F_SETFD, 0);
    else
    if (dup2 (progress_fd, s_EXEC_PROGRESS_FD) < 0)
        _exit (127);
    if (close_range (s_EXEC_PROGRESS_FD + 1, ~0U, 0) != 0)
        for (int fd = s_EXEC_PROGRESS_FD + 1; fd < 4096; fd++)
            close (fd);
    char *argv [] = { (char *) "sh", (char *) "-c", (char *) command, NULL };
    execve ("/bin/sh", argv, env);
    _exit (127);
}

//  Append to the stderr tail, keeping the last ZJQ_EXEC_STDERR_TAIL bytes.
static void
s_output_err (s_output_t *output, const char *data, size_t size)
{
    if (size >= sizeof output->err) {
        output->err_cut = output->err_cut || output->err_size > 0 || size > sizeof output->err;
        memcpy (output->err, data + size - sizeof output->err, sizeof output->err);
        output->err_size = sizeof output->err;
        return;
    }
    if (output->err_size + size > sizeof output->err) {
        size_t drop = output->err_size + size - sizeof output->err;
        memmove (output->err, output->err + drop, output->err_size - drop);
        output->err_size -= drop;
        output->err_cut = true;
    }
    memcpy (output->err + output->err_size, data, size);
    output->err_size += size;
}

//  Read what is available on stdout into output. Returns 0, or -1 at EOF
//  or on error.
static int
s_read_stdout (zjq_handlers_t *self, int fd, s_output_t *output)
{
    for (int count = 0; count < 64; count++) {
        if (output->too_big || output->no_memory) {
            char scratch [s_EXEC_CHUNK];            //  drain, so the child can end
            ssize_t rc = read (fd, scratch, sizeof scratch);
            if (rc > 0)
                continue;
            return rc == 0 || (errno != EAGAIN && errno != EINTR) ? -1 : 0;
        }
        if (output->out_size == output->out_max) {
            //  Grow up to max_result + 1, so one byte more shows it is too big
            size_t limit = self->max_result < SIZE_MAX - 1 ? self->max_result + 1 : SIZE_MAX;
            size_t grown = output->out_max ? output->out_max * 2 : s_EXEC_CHUNK;
            if (grown > limit || grown < output->out_max)
                grown = limit;
            char *out = (char *) realloc (output->out, grown ? grown : 1);
            if (!out) {
                output->no_memory = true;
                continue;
            }
            output->out = out;
            output->out_max = grown;
        }
        ssize_t rc = read (fd, output->out + output->out_size, output->out_max - output->out_size);
        if (rc > 0) {
            output->out_size += (size_t) rc;
            if (output->out_size > self->max_result)
                output->too_big = true;
            continue;
        }
        return rc == 0 || (errno != EAGAIN && errno != EINTR) ? -1 : 0;
    }
    return 0;
}

//  One progress line from the command: "FRACTION [MESSAGE]" with FRACTION
//  a number from 0 to 1, or "PERCENT% [MESSAGE]" from 0 to 100. Anything
//  else is ignored.
static void
s_progress_line (zjq_task_t *task, char *line)
{
    char *end;
    double value = strtod (line, &end);
    if (end == line || !isfinite (value))
        return;
    if (*end == '%') {
        value /= 100;
        end++;
    }
    if (*end && !isspace ((unsigned char) *end))
        return;
    if (value < 0 || value > 1)
        return;
    while (isspace ((unsigned char) *end))
        end++;
    size_t len = strlen (end);
    while (len > 0 && isspace ((unsigned char) end [len - 1]))
        end [--len] = 0;
    zjq_task_progress (task, value, *end ? end : NULL);
}

//  Read what the command wrote on its progress pipe and report every whole
//  line; at EOF a last line without a newline counts too. Returns 0, or -1
//  at EOF or on error.
static int
s_read_progress (zjq_task_t *task, int fd, s_output_t *output)
{
    char buffer [4096];
    ssize_t size = read (fd, buffer, sizeof buffer);
    bool eof = size == 0 || (size < 0 && errno != EAGAIN && errno != EINTR);
    for (ssize_t i = 0; i < size; i++) {
        if (buffer [i] == '\n') {
            output->line [output->line_size] = 0;
            s_progress_line (task, output->line);
            output->line_size = 0;
        }
        else
        if (output->line_size < s_EXEC_PROGRESS_LINE && buffer [i])
            output->line [output->line_size++] = buffer [i];
    }
    if (eof && output->line_size) {
        output->line [output->line_size] = 0;
        s_progress_line (task, output->line);
        output->line_size = 0;
    }
    return eof ? -1 : 0;
}

//  One of the child's pipes is ready (which: 0 stdin, 1 stdout, 2 stderr,
//  3 progress): write the next chunk of the payload (*written so far) or
//  read what is there. A pipe that is done or broken is closed (-1).
static void
s_exec_io_ready (zjq_handlers_t *self, zjq_task_t *task, int which, int fds [4],
                 size_t *written, s_output_t *output)
{
    if (which == 0) {
        const char *payload = (const char *) zjq_task_payload (task);
        size_t payload_size = zjq_task_payload_size (task);
        ssize_t size = write (fds [0], payload + *written,
                              payload_size - *written < s_EXEC_CHUNK
                              ? payload_size - *written : s_EXEC_CHUNK);
        if (size > 0)
            *written += (size_t) size;
        if (*written == payload_size
        ||  (size < 0 && errno != EAGAIN && errno != EINTR)) {
            close (fds [0]);        //  EOF for the child (or it went away)
            fds [0] = -1;
        }
    }
    else
    if (which == 1) {
        if (s_read_stdout (self, fds [1], output) != 0) {
            close (fds [1]);
            fds [1] = -1;
        }
    }
    else
    if (which == 3) {
        if (s_read_progress (task, fds [3], output) != 0) {
            close (fds [3]);
            fds [3] = -1;
        }
    }
    else {
        char buffer [4096];
        ssize_t size = read (fds [2], buffer, sizeof buffer);
        if (size > 0)
            s_output_err (output, buffer, (size_t) size);
        else
        if (size == 0 || (errno != EAGAIN && errno != EINTR)) {
            close (fds [2]);
            fds [2] = -1;
        }
    }
}

//  Feed the payload to the child and collect its stdout, stderr and
//  progress lines until stdout and stderr are closed, or until the command
//  exited and s_EXEC_LINGER_MS passed. fds: the parent's ends, stdin
//  (write), stdout, stderr, progress; closed on return.
static void
s_exec_io (zjq_handlers_t *self, zjq_task_t *task, pid_t pid, int fds [4], s_output_t *output)
{
    size_t written = 0;
    if (zjq_task_payload_size (task) == 0) {
        close (fds [0]);
        fds [0] = -1;
    }
    bool killed = false;
    int64_t exited_at = 0;
    while (fds [1] >= 0 || fds [2] >= 0) {
        struct pollfd items [4];
        int index [4];
        nfds_t count = 0;
        for (int i = 0; i < 4; i++)
            if (fds [i] >= 0) {
                items [count].fd = fds [i];
                items [count].events = i == 0 ? POLLOUT : POLLIN;
                items [count].revents = 0;
                index [count++] = i;
            }
        int rc = poll (items, count, s_EXEC_POLL_MS);
        if (rc < 0 && errno != EINTR)
            break;
        for (nfds_t i = 0; rc > 0 && i < count; i++)
            if (items [i].revents)
                s_exec_io_ready (self, task, index [i], fds, &written, output);
        if ((output->too_big || output->no_memory) && !killed) {
            kill (-pid, SIGKILL);           //  the leader is not reaped yet
            killed = true;
        }
        //  Has the command itself exited? (WNOWAIT: its pid stays reserved)
        if (!exited_at) {
            siginfo_t info;
            memset (&info, 0, sizeof info);
            if (waitid (P_PID, (id_t) pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0
            &&  info.si_pid == pid)
                exited_at = zjq_mono_ms ();
        }
        else
        if (zjq_mono_ms () - exited_at > s_EXEC_LINGER_MS)
            break;                          //  leftovers hold the pipes open
    }
    //  Progress lines written just before the end come before the result
    //  (bounded: something the command left behind may still write)
    for (int reads = 0; fds [3] >= 0 && reads < 64; reads++) {
        struct pollfd item = { .fd = fds [3], .events = POLLIN };
        if (poll (&item, 1, 0) <= 0 || s_read_progress (task, fds [3], output) != 0)
            break;
    }
    for (int i = 0; i < 4; i++)
        if (fds [i] >= 0) {
            close (fds [i]);
            fds [i] = -1;
        }
}

//  Make a close-on-exec pipe, so that a child forked by another handler
//  thread does not keep it open. The process keeps fds 0-2 open (zjq-worker's
//  main does), so pipe ends are >= 3 and dup2 onto 0-2 in the child is safe.
static int
s_pipe (int fds [2])
{
    return pipe2 (fds, O_CLOEXEC);
}

//  The stderr tail as text for an error message: no NUL bytes, no trailing
//  whitespace, "..." in front if earlier output was dropped.
static const char *
s_err_text (s_output_t *output, char *buf, size_t size)
{
    size_t len = output->err_size;
    while (len > 0 && isspace ((unsigned char) output->err [len - 1]))
        len--;
    size_t start = 0;
    while (start < len && isspace ((unsigned char) output->err [start]))
        start++;
    bool any = len > start;
    snprintf (buf, size, "%s%s", any ? ": " : "", any && output->err_cut ? "..." : "");
    size_t used = strlen (buf);
    for (size_t i = start; i < len && used + 1 < size; i++)
        buf [used++] = output->err [i] ? output->err [i] : '?';
    buf [used] = 0;
    return buf;
}

//  The attempt's outcome from how the command ended (wait status) and what
//  it wrote: 0 with the result set, or -1 with the error set.
static int
s_exec_outcome (zjq_handlers_t *self, zjq_task_t *task, int status, s_output_t *output)
{
    int rc;
    char tail [ZJQ_EXEC_STDERR_TAIL + 8];
    if (zjq_task_cancelled (task))
        rc = -1;                            //  reported as cancelled
    else
    if (output->too_big)
        rc = zjq_task_fail (task, "result too large: more than %zu bytes on stdout",
                            self->max_result);
    else
    if (output->no_memory)
        rc = zjq_task_fail (task, "exec: out of memory reading stdout");
    else
    if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
        rc = zjq_task_set_result (task, output->out ? output->out : "", output->out_size) == 0
             ? 0 : -1;
    else
    if (WIFEXITED (status))
        rc = zjq_task_fail (task, "exit status %d%s", WEXITSTATUS (status),
                            s_err_text (output, tail, sizeof tail));
    else
    if (WIFSIGNALED (status)) {
        const char *name = sigabbrev_np (WTERMSIG (status));
        rc = zjq_task_fail (task, "killed by signal %d (SIG%s)%s", WTERMSIG (status),
                            name ? name : "?", s_err_text (output, tail, sizeof tail));
    }
    else
        rc = zjq_task_fail (task, "exec: unexpected wait status %d", status);
    return rc;
}

static int
s_exec (zjq_handlers_t *self, zjq_task_t *task)
{
    int in [2] = { -1, -1 }, out [2] = { -1, -1 }, err [2] = { -1, -1 };
    int progress [2] = { -1, -1 };
    char *extra [4] = { NULL, NULL, NULL, NULL };
    char **env = NULL;
    int rc = -1;
    if (s_pipe (in) != 0 || s_pipe (out) != 0 || s_pipe (err) != 0 || s_pipe (progress) != 0) {
        rc = zjq_task_fail (task, "exec: cannot create pipes: %s", strerror (errno));
        goto cleanup;
    }
    env = s_env_new (task, extra);
    if (!env) {
        rc = zjq_task_fail (task, "exec: out of memory");
        goto cleanup;
    }
    pid_t pid = fork ();
    if (pid < 0) {
        rc = zjq_task_fail (task, "exec: cannot fork: %s", strerror (errno));
        goto cleanup;
    }
    if (pid == 0)
        s_exec_child (self->command, in [0], out [1], err [1], progress [1], env);

    //  Parent. Set the group here too, so a kill right after fork finds it.
    setpgid (pid, pid);
    zjq_task_set_child (task, pid);
    close (in [0]);
    close (out [1]);
    close (err [1]);
    close (progress [1]);
    in [0] = out [1] = err [1] = progress [1] = -1;
    int fds [4] = { in [1], out [0], err [0], progress [0] };
    in [1] = out [0] = err [0] = progress [0] = -1;
    for (int i = 0; i < 4; i++)
        fcntl (fds [i], F_SETFL, fcntl (fds [i], F_GETFL) | O_NONBLOCK);

    s_output_t output;
    memset (&output, 0, sizeof output);
    s_exec_io (self, task, pid, fds, &output);

    //  Wait for the command without reaping it, so that its pid (and group)
    //  cannot be reused while the worker may still kill it; unregister it,
    //  kill whatever it left in its group, then reap.
    siginfo_t info;
    while (waitid (P_PID, (id_t) pid, &info, WEXITED | WNOWAIT) != 0 && errno == EINTR)
        ;
    zjq_task_set_child (task, 0);
    kill (-pid, SIGKILL);
    int status = 0;
    while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
        ;
    zjq_task_set_exit (task, WIFEXITED (status) ? WEXITSTATUS (status) : -1,
                       WIFSIGNALED (status) ? WTERMSIG (status) : 0);

    rc = s_exec_outcome (self, task, status, &output);
    free (output.out);

cleanup:
    for (int i = 0; i < 2; i++) {
        if (in [i] >= 0)
            close (in [i]);
        if (out [i] >= 0)
            close (out [i]);
        if (err [i] >= 0)
            close (err [i]);
        if (progress [i] >= 0)
            close (progress [i]);
    }
    for (int i = 0; i < 4; i++)
        free (extra [i]);
    free (env);
    return rc;
}


//  --------------------------------------------------------------------------
//  Public API

zjq_handlers_t *
zjq_handlers_new_builtin (const char *name)
{
    s_kind_t kind;
    if (streq (name, "echo"))
        kind = s_ECHO;
    else
    if (streq (name, "sleep"))
        kind = s_SLEEP;
    else
    if (streq (name, "sha256"))
        kind = s_SHA256;
    else
        return NULL;
    if (kind == s_SHA256 && sodium_init () < 0)
        return NULL;
    zjq_handlers_t *self = (zjq_handlers_t *) calloc (1, sizeof (zjq_handlers_t));
    if (self)
        self->kind = kind;
    return self;
}

zjq_handlers_t *
zjq_handlers_new_exec (const char *command, size_t max_result)
{
    if (!command || !*command)
        return NULL;
    zjq_handlers_t *self = (zjq_handlers_t *) calloc (1, sizeof (zjq_handlers_t));
    if (!self)
        return NULL;
    self->kind = s_EXEC;
    self->max_result = max_result;
    self->command = strdup (command);
    if (!self->command) {
        free (self);
        return NULL;
    }
    return self;
}

void
zjq_handlers_destroy (zjq_handlers_t **self_p)
{
    assert (self_p);
    zjq_handlers_t *self = *self_p;
    if (self) {
        free (self->command);
        free (self);
        *self_p = NULL;
    }
}

void
zjq_handlers_set_verbose (zjq_handlers_t *self, bool verbose)
{
    assert (self);
    self->verbose = verbose;
}

const char *
zjq_handlers_name (zjq_handlers_t *self)
{
    assert (self);
    return s_kind_names [self->kind];
}

int
zjq_handlers_run (zjq_task_t *task, void *arg)
{
    zjq_handlers_t *self = (zjq_handlers_t *) arg;
    assert (self);
    int64_t started = zjq_mono_ms ();
    if (self->verbose)
        zjq_log_info ("job_started", "job=%s attempt=%d queue=%s bytes=%zu",
                      zjq_task_id (task), zjq_task_attempt (task), zjq_task_queue (task),
                      zjq_task_payload_size (task));
    int rc;
    switch (self->kind) {
        case s_ECHO:   rc = s_echo (self, task); break;
        case s_SLEEP:  rc = s_sleep (self, task); break;
        case s_SHA256: rc = s_sha256 (self, task); break;
        default:       rc = s_exec (self, task); break;
    }
    if (self->verbose)
        zjq_log_info ("job_finished", "job=%s attempt=%d outcome=%s ms=%d", zjq_task_id (task),
                      zjq_task_attempt (task),
                      zjq_task_cancelled (task) ? "cancelled" : rc == 0 ? "done" : "failed",
                      (int) (zjq_mono_ms () - started));
    return rc;
}
