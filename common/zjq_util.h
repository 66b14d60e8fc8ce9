/*  zjq_util.h: small helpers shared by the broker, worker and CLI.         */

#ifndef ZJQ_UTIL_H_INCLUDED
#define ZJQ_UTIL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  Milliseconds on a monotonic clock (for deadlines).
int64_t
    zjq_mono_ms (void);
//  The same clock in microseconds.
int64_t
    zjq_mono_us (void);
//  Milliseconds since the Unix epoch (for timestamps people read).
int64_t
    zjq_wall_ms (void);

//  Parse a byte size: a whole number with an optional suffix k, m, g
//  (powers of 1024; case-insensitive; "16M", "512k", "1000"). Returns 0, or
//  -1 if the text is not a size or overflows.
int
    zjq_parse_size (const char *text, uint64_t *bytes);
//  Parse a duration in seconds, fractions allowed ("30", "0.25"), or with a
//  unit suffix ms, s, m, h, d ("250ms", "5m"). Returns 0 and milliseconds, or
//  -1 if the text is not a non-negative duration.
int
    zjq_parse_duration (const char *text, int64_t *ms);
//  Parse a whole number in [min, max]. Returns 0, or -1.
int
    zjq_parse_int (const char *text, int64_t min, int64_t max, int64_t *value);

//  Block the given signals in the calling thread (call it before any thread
//  is started, so all threads inherit the mask) and return a non-blocking
//  signalfd that becomes readable when one arrives, or -1 on error. Children
//  started with exec must unblock them again (zjq_signals_unblock_all).
int
    zjq_signalfd_open (const int *signals, size_t count);
//  Read one pending signal from the fd: returns its number, or 0 if none.
int
    zjq_signalfd_read (int fd);
//  Unblock every signal in the calling thread (for a child after fork).
void
    zjq_signals_unblock_all (void);

//  Write a printf-style message into error (error_size bytes; either may
//  be NULL/0 to discard it) and return -1, so a function can end with
//  `return zjq_set_error (error, size, "bad %s", what);`.
int
    zjq_set_error (char *error, size_t error_size, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

//  This host's name as workers report it (static buffer, never NULL):
//  $ZJQ_WORKER_HOST if set and not empty (at most 255 bytes kept; lets a
//  container or a network namespace name its machine), else gethostname().
const char *
    zjq_hostname (void);

void
    zjq_util_test (bool verbose);

#endif
