/*  zjq_cli.h: the zjq command-line client's internals, shared by its files.

    Not installed. The CLI is split by concern:
        zjq_cli.c       the core: exit codes, the option and command tables,
                        parsing, help, connecting, the poll () loop, output
                        helpers (errors, JSON, times), main
        zjq_cli_jobs.c  job commands: submit, batch, status, cancel, result
        zjq_cli_ops.c   operations commands: stats, top, ping, reload,
                        keygen, failed, retry, pause/resume, drain
    The command files call the core through this header; the core knows
    them only by the zjq_cli_cmd_* functions in its command table.         */

#ifndef ZJQ_CLI_H_INCLUDED
#define ZJQ_CLI_H_INCLUDED

#include "zjq_client.h"
#include "zjq_client_private.h"
#include "zjq_proto.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define ZJQ_CLI_DEFAULT_BROKER   "tcp://127.0.0.1:5555"
#define ZJQ_CLI_MAX_PAYLOAD      (256u * 1024 * 1024)   //  read from stdin
#define ZJQ_CLI_MAX_POSITIONAL   4
#define ZJQ_CLI_DEFAULT_WINDOW   1000
#define ZJQ_CLI_QUEUE_HINT       "queue names are 1 to 128 of A-Z a-z 0-9 _ . : -"

//  Exit codes: XX (NAME, value, meaning). The only place they are defined.
#define ZJQ_CLI_EXIT_MAP(XX)                                                   \
    XX (OK,          0, "success")                                             \
    XX (FAILED,      1, "the job failed (batch: not every job succeeded)")     \
    XX (USAGE,       2, "usage error")                                         \
    XX (CANCELLED,   3, "the job was cancelled")                               \
    XX (NOTFOUND,    4, "job not found, expired, or not a job id")             \
    XX (TIMEDOUT,    5, "timed out waiting, or the job has not finished yet")  \
    XX (UNREACHABLE, 6, "broker unreachable")                                  \
    XX (REJECTED,    7, "rejected by the broker (queue full, too big, "        \
                        "invalid, unavailable, draining; access denied: key, " \
                        "role, queue or job not allowed)")                     \
    XX (OTHER,       8, "any other error")

typedef enum {
#define ZJQ_CLI_EXIT_ENUM(name, value, text) CLI_EXIT_##name = value,
    ZJQ_CLI_EXIT_MAP (ZJQ_CLI_EXIT_ENUM)
#undef ZJQ_CLI_EXIT_ENUM
} cli_exit_t;

//  Options, one bit each: the mask of their row in the table (zjq_cli.c)
typedef enum {
    OPT_BROKER          = 1 << 0,
    OPT_REQUEST_TIMEOUT = 1 << 1,
    OPT_HELP            = 1 << 2,
    OPT_VERSION         = 1 << 3,
    OPT_WAIT            = 1 << 4,
    OPT_TIMEOUT         = 1 << 5,
    OPT_PRIORITY        = 1 << 6,
    OPT_MAX_ATTEMPTS    = 1 << 7,
    OPT_JOB_TIMEOUT     = 1 << 8,
    OPT_RESULT_TTL      = 1 << 9,
    OPT_KEY             = 1 << 10,
    OPT_JSON            = 1 << 11,
    OPT_FILE            = 1 << 12,
    OPT_WINDOW          = 1 << 13,
    OPT_CURVE_SECRET    = 1 << 14,
    OPT_BROKER_KEY      = 1 << 15,
    OPT_QUEUES          = 1 << 16,
    OPT_PROGRESS        = 1 << 17,
    OPT_QUEUE           = 1 << 18,
    OPT_OFF             = 1 << 19,
    OPT_LIMIT           = 1 << 20
} option_bit_t;

#define OPT_GLOBAL (OPT_BROKER | OPT_REQUEST_TIMEOUT | OPT_CURVE_SECRET | OPT_BROKER_KEY \
                    | OPT_HELP | OPT_VERSION)

//  Commands (the table is in zjq_cli.c)
typedef struct _cli_t cli_t;
typedef int (command_fn) (cli_t *cli);

typedef struct {
    const char *name;
    command_fn *run;
    const char *args;           //  positional arguments, for usage
    int min_args, max_args;
    unsigned options;           //  besides the global ones
    const char *summary;        //  one line for the command list
    const char *description;    //  more, for `zjq help COMMAND`
} command_t;

//  The command line, parsed, and the connection
struct _cli_t {
    const command_t *command;
    unsigned given;             //  option bits seen
    const char *broker;
    const char *curve_secret;   //  --curve-secret or $ZJQ_CURVE_SECRET, or NULL
    const char *broker_key;     //  --broker-key or $ZJQ_BROKER_KEY, or NULL
    const char *queues;         //  keygen --queues
    int request_timeout_ms;
    int64_t timeout_ms;         //  --timeout
    int priority;
    int max_attempts;
    int64_t job_timeout_ms;
    int64_t result_ttl_ms;
    const char *key;
    const char *file;
    int window;
    const char *queue;          //  retry --queue
    int64_t limit;              //  failed --limit, 0: all
    bool help, version, wait, json, progress, off;  //  flags (commands test `given`)
    const char *args [ZJQ_CLI_MAX_POSITIONAL];
    int arg_count;
    zjq_client_t *client;
    char *broker_message;       //  `message` of the last error reply
};

//  One request in flight and its answer
typedef struct {
    cli_t *cli;
    bool done;
    int status;
} reply_t;

//  --------------------------------------------------------------------------
//  The core (zjq_cli.c)

//  The exit code for a zjq error code. from_call: the library refused the
//  call itself (bad arguments are a usage error), rather than the broker.
int
    zjq_cli_exit_code (int code, bool from_call);

//  Print "zjq: COMMAND: WHAT (see zjq COMMAND --help)" on stderr. Returns
//  CLI_EXIT_USAGE.
int
    zjq_cli_usage_error (const cli_t *cli, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  Print an error: zjq: WHAT: MESSAGE (NAME)[: broker message or why the
//  CURVE handshake failed]
void
    zjq_cli_error (cli_t *cli, const char *what, int code);

//  "MESSAGE (NAME)[: broker message]" for an error code, into buf
void
    zjq_cli_error_text (cli_t *cli, int code, char *buf, size_t size);

//  In a callback: keep the broker's message of an error reply for
//  zjq_cli_error.
void
    zjq_cli_keep_broker_message (cli_t *cli);

//  Make cli->client from the global options. Returns 0 or an exit code
//  (the reason printed).
int
    zjq_cli_connect (cli_t *cli);

//  Drive the client from a poll () loop on its fd and timeout until *done
//  or the deadline (mono ms, -1: none). Returns 0, ZJQ_ETIMEDOUT, or a
//  fatal client error.
int
    zjq_cli_run_until (cli_t *cli, const bool *done, int64_t deadline);

//  In a request's callback: it was answered with status; on an error, the
//  broker's message is kept. Returns true if status is 0.
bool
    zjq_cli_reply_answered (reply_t *reply, int status);

//  Issue one request (rc: what the call returned), wait for it, report a
//  failure, destroy the client. Returns the exit code.
int
    zjq_cli_one_request (cli_t *cli, reply_t *reply, int rc, const char *what);

//  "2024-05-01T12:00:00.123Z" for Unix ms, in buf
const char *
    zjq_cli_iso_time (int64_t ms, char *buf, size_t size);

//  Write bytes with tab, newline, carriage return, backslash and NUL
//  escaped, so a result fits on one tab-separated line.
void
    zjq_cli_write_escaped (FILE *out, const char *data, size_t size);

//  Append "key":"text" or "key":null to a JSON buffer
void
    zjq_cli_json_str (char **buf, size_t *len, const char *key, const char *text,
                      size_t text_len);

//  Append ,"key":ms or ,"key":null (ms 0) to a JSON buffer
void
    zjq_cli_json_ms (char **buf, size_t *len, const char *key, int64_t ms);

//  Print a JSON text and a newline and free it; out of memory (buf NULL)
//  is an error. Returns the exit code.
int
    zjq_cli_json_print (char *buf);

//  A number in a msgpack map as an integer; 0 if absent or not a number.
int64_t
    zjq_cli_mp_int (const msgpack_object *map, const char *key);


//  --------------------------------------------------------------------------
//  The commands: each returns the exit code

//  Job commands (zjq_cli_jobs.c)
int zjq_cli_cmd_submit (cli_t *cli);
int zjq_cli_cmd_batch (cli_t *cli);
int zjq_cli_cmd_status (cli_t *cli);
int zjq_cli_cmd_cancel (cli_t *cli);
int zjq_cli_cmd_result (cli_t *cli);

//  Operations commands (zjq_cli_ops.c)
int zjq_cli_cmd_stats (cli_t *cli);
int zjq_cli_cmd_top (cli_t *cli);
int zjq_cli_cmd_ping (cli_t *cli);
int zjq_cli_cmd_reload (cli_t *cli);
int zjq_cli_cmd_keygen (cli_t *cli);
int zjq_cli_cmd_failed (cli_t *cli);
int zjq_cli_cmd_retry (cli_t *cli);
int zjq_cli_cmd_pause (cli_t *cli);
int zjq_cli_cmd_drain (cli_t *cli);

#endif
