/*  zjq_log.h: structured logs, one line per event.

    Every line has a time, a level, an event name and key=value fields:

        2026-11-22T06:00:00.123Z level=info event=worker_joined worker=w1 host=h queues=echo

    or, in JSON format, one object per line with the same keys:

        {"ts":"2026-11-22T06:00:00.123Z","level":"info","event":"worker_joined","worker":"w1",...}

    A call names its fields in a printf format of space-separated key=value
    pairs, checked by the compiler like printf's:

        zjq_log_info ("worker_joined", "worker=%s host=%s pid=%lld", id, host, pid);

    Each value is formatted on its own and then quoted for the format in
    use (text: in double quotes when it holds a space, a quote, '=' or a
    control character; JSON: a string, or a bare number when the value is a
    single numeric conversion such as %d or %.1f). Literal text may appear
    in a value (`queue=%s:%d`), never a space: spaces come from arguments.

    The level test comes first and the arguments are not evaluated when the
    level is off, so a debug line on a hot path costs a load and a branch.
    Lines go to one file descriptor (stderr by default) with one write
    each, so lines from several threads never interleave.                   */

#ifndef ZJQ_LOG_H_INCLUDED
#define ZJQ_LOG_H_INCLUDED

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum {
    ZJQ_LOG_DEBUG = 0,
    ZJQ_LOG_INFO = 1,
    ZJQ_LOG_WARNING = 2,
    ZJQ_LOG_ERROR = 3
} zjq_log_level_t;

typedef enum {
    ZJQ_LOG_TEXT = 0,           //  time level=... event=... key=value
    ZJQ_LOG_JSON = 1            //  one JSON object per line
} zjq_log_format_t;

//  The lowest level written; read by the macros below. Set it with
//  zjq_log_set_level.
extern atomic_int zjq_log_threshold;

//  Parse "text" or "json". Returns 0, or -1 if it is neither.
int
    zjq_log_format_parse (const char *text, zjq_log_format_t *format);

//  Choose the format (default text). Call it before starting threads.
void
    zjq_log_set_format (zjq_log_format_t format);

//  Write events of this level and above (default info).
void
    zjq_log_set_level (zjq_log_level_t level);

//  Write lines to this file descriptor (default 2). Not closed.
void
    zjq_log_set_fd (int fd);

//  Route czmq's own log lines (zsys_info and friends, from czmq and from
//  code not converted) through this logger as event "log" with the text
//  in field msg, at the level their prefix letter says.
void
    zjq_log_capture_zsys (const char *ident);

//  Write one event: use the macros, which test the level first. The
//  format lists the fields as described above; it may be "" for none.
void
    zjq_log_emit (zjq_log_level_t level, const char *event, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  The same with a va_list.
void
    zjq_log_emitv (zjq_log_level_t level, const char *event, const char *format, va_list args);

//  Format one line into buf (size bytes, NUL-terminated, ending in a
//  newline, cut short if too long) without writing it; for tests. Returns
//  its length.
size_t
    zjq_log_format_line (char *buf, size_t size, zjq_log_level_t level, const char *event,
                         const char *format, ...)
    __attribute__ ((format (printf, 5, 6)));

#define zjq_log_enabled(level) \
    ((int) (level) >= atomic_load_explicit (&zjq_log_threshold, memory_order_relaxed))

#define zjq_log_at(level, event, ...) \
    do { if (zjq_log_enabled (level)) zjq_log_emit ((level), (event), __VA_ARGS__); } while (0)

#define zjq_log_debug(event, ...)   zjq_log_at (ZJQ_LOG_DEBUG, event, __VA_ARGS__)
#define zjq_log_info(event, ...)    zjq_log_at (ZJQ_LOG_INFO, event, __VA_ARGS__)
#define zjq_log_warning(event, ...) zjq_log_at (ZJQ_LOG_WARNING, event, __VA_ARGS__)
#define zjq_log_error(event, ...)   zjq_log_at (ZJQ_LOG_ERROR, event, __VA_ARGS__)

//  Self test
void
    zjq_log_test (bool verbose);

#endif
