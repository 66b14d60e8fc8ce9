/*  zjq_util.c: clocks, option parsing, signals. See zjq_util.h.           */

#include "zjq_util.h"
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

int64_t
zjq_mono_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int64_t
zjq_mono_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

int64_t
zjq_wall_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

int
zjq_parse_size (const char *text, uint64_t *bytes)
{
    if (!text || !isdigit ((unsigned char) *text))
        return -1;
    errno = 0;
    char *end;
    unsigned long long value = strtoull (text, &end, 10);
    if (errno)
        return -1;
    uint64_t scale = 1;
    if (*end) {
        switch (tolower ((unsigned char) *end)) {
            case 'k': scale = 1ULL << 10; break;
            case 'm': scale = 1ULL << 20; break;
            case 'g': scale = 1ULL << 30; break;
            default:  return -1;
        }
        end++;
        if (tolower ((unsigned char) *end) == 'b' || tolower ((unsigned char) *end) == 'i') {
            //  accept "16MB", "16MiB"
            if (tolower ((unsigned char) *end) == 'i')
                end++;
            if (tolower ((unsigned char) *end) == 'b')
                end++;
        }
        if (*end)
            return -1;
    }
    if (value > UINT64_MAX / scale)
        return -1;
    *bytes = (uint64_t) value * scale;
    return 0;
}

int
zjq_parse_duration (const char *text, int64_t *ms)
{
    if (!text || !(isdigit ((unsigned char) *text) || *text == '.'))
        return -1;
    errno = 0;
    char *end;
    double value = strtod (text, &end);
    if (errno || end == text || !isfinite (value) || value < 0)
        return -1;
    double scale = 1000;        //  seconds by default
    if (*end) {
        if (strcmp (end, "ms") == 0)
            scale = 1;
        else if (strcmp (end, "s") == 0)
            scale = 1000;
        else if (strcmp (end, "m") == 0)
            scale = 60 * 1000;
        else if (strcmp (end, "h") == 0)
            scale = 3600 * 1000;
        else if (strcmp (end, "d") == 0)
            scale = 24 * 3600 * 1000;
        else
            return -1;
    }
    double result = value * scale;
    if (result > 9.0e15)
        return -1;
    *ms = (int64_t) llround (result);
    return 0;
}

int
zjq_parse_int (const char *text, int64_t min, int64_t max, int64_t *value)
{
    if (!text || !*text)
        return -1;
    errno = 0;
    char *end;
    long long result = strtoll (text, &end, 10);
    if (errno || *end || result < min || result > max)
        return -1;
    *value = result;
    return 0;
}

int
zjq_signalfd_open (const int *signals, size_t count)
{
    sigset_t mask;
    sigemptyset (&mask);
    for (size_t index = 0; index < count; index++)
        sigaddset (&mask, signals [index]);
    if (pthread_sigmask (SIG_BLOCK, &mask, NULL) != 0)
        return -1;
    return signalfd (-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
}

int
zjq_signalfd_read (int fd)
{
    struct signalfd_siginfo info;
    ssize_t rc = read (fd, &info, sizeof (info));
    if (rc != (ssize_t) sizeof (info))
        return 0;
    return (int) info.ssi_signo;
}

void
zjq_signals_unblock_all (void)
{
    sigset_t mask;
    sigemptyset (&mask);
    pthread_sigmask (SIG_SETMASK, &mask, NULL);
}

int
zjq_set_error (char *error, size_t error_size, const char *format, ...)
{
    if (error && error_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (error, error_size, format, args);
        va_end (args);
    }
    return -1;
}

const char *
zjq_hostname (void)
{
    static char name [256];
    if (!name [0]) {
        const char *given = getenv ("ZJQ_WORKER_HOST");
        if (given && *given)
            snprintf (name, sizeof (name), "%s", given);
        else
        if (gethostname (name, sizeof (name) - 1) != 0 || !name [0])
            snprintf (name, sizeof (name), "localhost");
        name [sizeof (name) - 1] = 0;
    }
    return name;
}

void
zjq_util_test (bool verbose)
{
    uint64_t bytes = 0;
    assert (zjq_parse_size ("1000", &bytes) == 0 && bytes == 1000);
    assert (zjq_parse_size ("16M", &bytes) == 0 && bytes == 16 << 20);
    assert (zjq_parse_size ("512k", &bytes) == 0 && bytes == 512 << 10);
    assert (zjq_parse_size ("1G", &bytes) == 0 && bytes == 1ULL << 30);
    assert (zjq_parse_size ("2MiB", &bytes) == 0 && bytes == 2 << 20);
    assert (zjq_parse_size ("1MB", &bytes) == 0 && bytes == 1 << 20);
    assert (zjq_parse_size ("", &bytes) == -1);
    assert (zjq_parse_size ("-1", &bytes) == -1);
    assert (zjq_parse_size ("12q", &bytes) == -1);
    assert (zjq_parse_size ("99999999999999999999", &bytes) == -1);
    assert (zjq_parse_size ("99999999999G", &bytes) == -1);

    int64_t ms = 0;
    assert (zjq_parse_duration ("30", &ms) == 0 && ms == 30000);
    assert (zjq_parse_duration ("0.25", &ms) == 0 && ms == 250);
    assert (zjq_parse_duration ("250ms", &ms) == 0 && ms == 250);
    assert (zjq_parse_duration ("5m", &ms) == 0 && ms == 300000);
    assert (zjq_parse_duration ("1h", &ms) == 0 && ms == 3600000);
    assert (zjq_parse_duration ("7d", &ms) == 0 && ms == 7 * 86400000LL);
    assert (zjq_parse_duration ("0", &ms) == 0 && ms == 0);
    assert (zjq_parse_duration ("-1", &ms) == -1);
    assert (zjq_parse_duration ("abc", &ms) == -1);
    assert (zjq_parse_duration ("5x", &ms) == -1);
    assert (zjq_parse_duration ("nan", &ms) == -1);

    int64_t value = 0;
    assert (zjq_parse_int ("42", 0, 100, &value) == 0 && value == 42);
    assert (zjq_parse_int ("-5", -10, 10, &value) == 0 && value == -5);
    assert (zjq_parse_int ("101", 0, 100, &value) == -1);
    assert (zjq_parse_int ("4x", 0, 100, &value) == -1);
    assert (zjq_parse_int ("", 0, 100, &value) == -1);

    int64_t before = zjq_mono_ms ();
    assert (zjq_mono_ms () >= before);
    assert (zjq_mono_us () / 1000 >= before);
    assert (zjq_wall_ms () > 1600000000000LL);
    assert (strlen (zjq_hostname ()) > 0);

    int signals [] = { SIGUSR1 };
    int fd = zjq_signalfd_open (signals, 1);
    assert (fd >= 0);
    assert (zjq_signalfd_read (fd) == 0);
    kill (getpid (), SIGUSR1);
    assert (zjq_signalfd_read (fd) == SIGUSR1);
    close (fd);
    zjq_signals_unblock_all ();
    if (verbose)
        printf ("(util ok) ");
}
