/*  zjq_log.c: structured logs. See zjq_log.h.                              */

#define _GNU_SOURCE             //  fopencookie
#include "zjq_log.h"
#include <czmq.h>
//  The self-test below relies on assert: keep it in release builds too
#undef NDEBUG
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define ZJQ_LOG_LINE_MAX  8192      //  longer lines are cut
#define ZJQ_LOG_VALUE_MAX 4096      //  one formatted value

atomic_int zjq_log_threshold = ZJQ_LOG_INFO;
static atomic_int s_format = ZJQ_LOG_TEXT;
static atomic_int s_fd = 2;

static const char *s_level_names [] = { "debug", "info", "warning", "error" };

int
zjq_log_format_parse (const char *text, zjq_log_format_t *format)
{
    if (text && strcmp (text, "text") == 0)
        *format = ZJQ_LOG_TEXT;
    else
    if (text && strcmp (text, "json") == 0)
        *format = ZJQ_LOG_JSON;
    else
        return -1;
    return 0;
}

void
zjq_log_set_format (zjq_log_format_t format)
{
    atomic_store (&s_format, (int) format);
}

void
zjq_log_set_level (zjq_log_level_t level)
{
    atomic_store (&zjq_log_threshold, (int) level);
}

void
zjq_log_set_fd (int fd)
{
    atomic_store (&s_fd, fd);
}


//  --------------------------------------------------------------------------
//  Building a line

typedef struct {
    char *data;
    size_t size;                //  bytes available, the NUL included
    size_t len;
    bool cut;                   //  something did not fit
} s_line_t;

static void
s_put (s_line_t *line, const char *text, size_t len)
{
    //  Keep room for "...\n" and the NUL
    size_t room = line->size > line->len + 5? line->size - line->len - 5: 0;
    if (len > room) {
        len = room;
        line->cut = true;
    }
    memcpy (line->data + line->len, text, len);
    line->len += len;
    line->data [line->len] = 0;
}

static void
s_puts (s_line_t *line, const char *text)
{
    s_put (line, text, strlen (text));
}

static bool
s_needs_quotes (const char *value, size_t len)
{
    if (len == 0)
        return true;
    for (size_t index = 0; index < len; index++) {
        unsigned char c = (unsigned char) value [index];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return true;
    }
    return false;
}

//  A value as a quoted string, escaped for text (logfmt) or JSON alike:
//  \" \\ \n \r \t, other control bytes as \u00XX
static void
s_put_quoted (s_line_t *line, const char *value, size_t len)
{
    s_put (line, "\"", 1);
    for (size_t index = 0; index < len; index++) {
        unsigned char c = (unsigned char) value [index];
        char escape [8];
        if (c == '"' || c == '\\') {
            escape [0] = '\\';
            escape [1] = (char) c;
            s_put (line, escape, 2);
        }
        else
        if (c == '\n')
            s_put (line, "\\n", 2);
        else
        if (c == '\r')
            s_put (line, "\\r", 2);
        else
        if (c == '\t')
            s_put (line, "\\t", 2);
        else
        if (c < 0x20 || c == 0x7f) {
            snprintf (escape, sizeof (escape), "\\u%04x", c);
            s_put (line, escape, 6);
        }
        else
            s_put (line, (const char *) &value [index], 1);
    }
    s_put (line, "\"", 1);
}

//  One field; numeric values go bare into JSON
static void
s_put_field (s_line_t *line, bool json, const char *key, size_t key_len,
             const char *value, size_t len, bool numeric)
{
    if (json) {
        s_put (line, ",", 1);
        s_put_quoted (line, key, key_len);
        s_put (line, ":", 1);
        if (numeric)
            s_put (line, value, len);
        else
            s_put_quoted (line, value, len);
    }
    else {
        s_put (line, " ", 1);
        s_put (line, key, key_len);
        s_put (line, "=", 1);
        if (s_needs_quotes (value, len))
            s_put_quoted (line, value, len);
        else
            s_put (line, value, len);
    }
}

//  One printf conversion spec, parsed
typedef struct {
    char text [32];             //  the spec alone ("%-*.3lld"), for snprintf
    char length [3];            //  its length modifier: "", "hh", "l", "z", ...
    char conversion;            //  'd', 's', ...; 0 if cut short or too long
    int star [2];               //  the '*' width and precision taken from args
    int stars;                  //  how many
} s_spec_t;

//  Parse the conversion spec at *format_p (just past the '%'), taking the
//  arguments of its '*'s from args. Advances *format_p past it.
static void
s_parse_spec (const char **format_p, va_list *args, s_spec_t *spec)
{
    const char *start = *format_p - 1;          //  the '%'
    const char *at = *format_p;
    spec->stars = 0;
    while (*at && strchr ("-+ #0", *at))
        at++;
    for (int part = 0; part < 2; part++) {      //  width, then precision
        if (part == 1) {
            if (*at != '.')
                break;
            at++;
        }
        if (*at == '*') {
            spec->star [spec->stars++] = va_arg (*args, int);
            at++;
        }
        else
            while (isdigit ((unsigned char) *at))
                at++;
    }
    memset (spec->length, 0, sizeof (spec->length));
    if ((at [0] == 'h' && at [1] == 'h') || (at [0] == 'l' && at [1] == 'l')) {
        memcpy (spec->length, at, 2);
        at += 2;
    }
    else
    if (*at && strchr ("hlzjtL", *at))
        spec->length [0] = *at++;
    spec->conversion = *at? *at++: 0;
    *format_p = at;
    size_t spec_len = (size_t) (at - start);
    if (spec_len >= sizeof (spec->text))
        spec->conversion = 0;   //  the compiler's format check prevents this
    else {
        memcpy (spec->text, start, spec_len);
        spec->text [spec_len] = 0;
    }
}

//  snprintf one value with the spec and its '*' arguments
#define S_FORMAT(spec, out, room, arg) \
    ((spec)->stars == 2? snprintf (out, room, (spec)->text, (spec)->star [0], (spec)->star [1], arg): \
     (spec)->stars == 1? snprintf (out, room, (spec)->text, (spec)->star [0], arg): \
     snprintf (out, room, (spec)->text, arg))

//  An integer conversion (d i u x X o), its argument's type from the
//  length modifier. Returns what snprintf returns.
static int
s_format_integer (const s_spec_t *spec, va_list *args, char *out, size_t room)
{
    bool is_signed = spec->conversion == 'd' || spec->conversion == 'i';
    const char *length = spec->length;
    if (streq (length, "ll"))
        return is_signed? S_FORMAT (spec, out, room, va_arg (*args, long long))
                        : S_FORMAT (spec, out, room, va_arg (*args, unsigned long long));
    if (streq (length, "l"))
        return is_signed? S_FORMAT (spec, out, room, va_arg (*args, long))
                        : S_FORMAT (spec, out, room, va_arg (*args, unsigned long));
    if (streq (length, "z") || streq (length, "t"))
        return is_signed? S_FORMAT (spec, out, room, va_arg (*args, ssize_t))
                        : S_FORMAT (spec, out, room, va_arg (*args, size_t));
    if (streq (length, "j"))
        return is_signed? S_FORMAT (spec, out, room, va_arg (*args, intmax_t))
                        : S_FORMAT (spec, out, room, va_arg (*args, uintmax_t));
    return is_signed? S_FORMAT (spec, out, room, va_arg (*args, int))
                    : S_FORMAT (spec, out, room, va_arg (*args, unsigned int));
}

//  One printf conversion at *format_p (just past the '%'): takes its
//  arguments from args, appends its text to value (size bytes, at *len_p)
//  and says whether it is numeric. Advances *format_p past it.
static void
s_convert (const char **format_p, va_list *args, char *value, size_t size, size_t *len_p,
           bool *numeric)
{
    s_spec_t spec;
    s_parse_spec (format_p, args, &spec);
    *numeric = false;
    if (!spec.conversion)
        return;
    char *out = value + *len_p;
    size_t room = size - *len_p;
    int written = 0;
    switch (spec.conversion) {
        case 'd': case 'i': case 'u': case 'x': case 'X': case 'o':
            written = s_format_integer (&spec, args, out, room);
            *numeric = spec.conversion == 'd' || spec.conversion == 'i' || spec.conversion == 'u';
            break;
        case 'f': case 'F': case 'g': case 'G': case 'e': case 'E':
            if (streq (spec.length, "L")) {
                long double number = va_arg (*args, long double);
                written = S_FORMAT (&spec, out, room, number);
                *numeric = isfinite (number);
            }
            else {
                double number = va_arg (*args, double);
                written = S_FORMAT (&spec, out, room, number);
                *numeric = isfinite (number);
            }
            break;
        case 'c':
            written = S_FORMAT (&spec, out, room, va_arg (*args, int));
            break;
        case 's': {
            const char *text = va_arg (*args, const char *);
            written = S_FORMAT (&spec, out, room, text? text: "(null)");
            break;
        }
        case 'p':
            written = S_FORMAT (&spec, out, room, va_arg (*args, void *));
            break;
        default:
            break;
    }
    if (written > 0)
        *len_p += (size_t) written < room? (size_t) written: room - 1;
}
#undef S_FORMAT

static size_t
s_format_line (char *buf, size_t size, zjq_log_level_t level, const char *event,
               const char *format, va_list *args)
{
    assert (size > 64);
    bool json = atomic_load (&s_format) == ZJQ_LOG_JSON;
    s_line_t line = { .data = buf, .size = size };
    buf [0] = 0;

    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r (&now.tv_sec, &tm);
    char stamp [40];
    size_t stamp_len = strftime (stamp, sizeof (stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf (stamp + stamp_len, sizeof (stamp) - stamp_len, ".%03dZ",
              (int) (now.tv_nsec / 1000000));
    const char *level_name = s_level_names [(int) level & 3];
    if (json) {
        s_puts (&line, "{\"ts\":\"");
        s_puts (&line, stamp);
        s_puts (&line, "\",\"level\":\"");
        s_puts (&line, level_name);
        s_puts (&line, "\",\"event\":");
        s_put_quoted (&line, event, strlen (event));
    }
    else {
        s_puts (&line, stamp);
        s_puts (&line, " level=");
        s_puts (&line, level_name);
        s_puts (&line, " event=");
        s_puts (&line, event);
    }

    const char *at = format;
    while (*at) {
        if (*at == ' ') {
            at++;
            continue;
        }
        const char *key = at;
        while (*at && *at != '=' && *at != ' ')
            at++;
        size_t key_len = (size_t) (at - key);
        if (*at != '=') {
            //  A word without '=': keep it as a field with an empty value
            s_put_field (&line, json, key, key_len, "", 0, false);
            continue;
        }
        at++;
        char value [ZJQ_LOG_VALUE_MAX];
        size_t len = 0;
        int conversions = 0;
        bool literal = false, numeric = false;
        value [0] = 0;
        while (*at && *at != ' ') {
            if (at [0] == '%' && at [1] == '%') {
                if (len + 1 < sizeof (value))
                    value [len++] = '%';
                literal = true;
                at += 2;
            }
            else
            if (*at == '%') {
                at++;
                s_convert (&at, args, value, sizeof (value), &len, &numeric);
                conversions++;
            }
            else {
                if (len + 1 < sizeof (value))
                    value [len++] = *at;
                literal = true;
                at++;
            }
            value [len] = 0;
        }
        s_put_field (&line, json, key, key_len, value, len,
                     numeric && conversions == 1 && !literal && len > 0);
    }
    if (json)
        s_puts (&line, "}");
    if (line.cut) {
        //  s_put kept room for this
        memcpy (line.data + line.len, "...", 3);
        line.len += 3;
    }
    line.data [line.len++] = '\n';
    line.data [line.len] = 0;
    return line.len;
}

size_t
zjq_log_format_line (char *buf, size_t size, zjq_log_level_t level, const char *event,
                     const char *format, ...)
{
    va_list args;
    va_start (args, format);
    size_t len = s_format_line (buf, size, level, event, format, &args);
    va_end (args);
    return len;
}

static void
s_write (const char *data, size_t len)
{
    int fd = atomic_load (&s_fd);
    while (len) {
        ssize_t written = write (fd, data, len);
        if (written < 0 && errno == EINTR)
            continue;
        if (written <= 0)
            return;             //  nowhere to log to: drop it
        data += written;
        len -= (size_t) written;
    }
}

void
zjq_log_emitv (zjq_log_level_t level, const char *event, const char *format, va_list args)
{
    char buf [ZJQ_LOG_LINE_MAX];
    va_list copy;
    va_copy (copy, args);
    size_t len = s_format_line (buf, sizeof (buf), level, event, format, &copy);
    va_end (copy);
    s_write (buf, len);
}

void
zjq_log_emit (zjq_log_level_t level, const char *event, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    zjq_log_emitv (level, event, format, args);
    va_end (args);
}


//  --------------------------------------------------------------------------
//  czmq's log lines: "I: (ident) 26-11-22 06:09:51 text"

typedef struct {
    char line [ZJQ_LOG_VALUE_MAX];
    size_t len;
} s_capture_t;

//  Emit one captured line
static void
s_capture_line (char *text)
{
    zjq_log_level_t level = ZJQ_LOG_INFO;
    if (text [0] && text [1] == ':' && text [2] == ' ') {
        switch (text [0]) {
            case 'D': level = ZJQ_LOG_DEBUG; break;
            case 'W': level = ZJQ_LOG_WARNING; break;
            case 'E': case 'F': level = ZJQ_LOG_ERROR; break;
            default: break;
        }
        text += 3;
        if (*text == '(') {
            char *close = strstr (text, ") ");
            if (close)
                text = close + 2;
        }
        //  "yy-mm-dd hh:mm:ss "
        if (strlen (text) >= 18 && text [2] == '-' && text [5] == '-' && text [8] == ' '
        &&  text [11] == ':' && text [14] == ':' && text [17] == ' ')
            text += 18;
    }
    if (zjq_log_enabled (level))
        zjq_log_emit (level, "log", "msg=%s", text);
}

static ssize_t
s_capture_write (void *cookie, const char *data, size_t size)
{
    s_capture_t *capture = (s_capture_t *) cookie;
    for (size_t index = 0; index < size; index++) {
        char c = data [index];
        if (c == '\n' || capture->len == sizeof (capture->line) - 1) {
            capture->line [capture->len] = 0;
            s_capture_line (capture->line);
            capture->len = 0;
            if (c == '\n')
                continue;
        }
        capture->line [capture->len++] = c;
    }
    return (ssize_t) size;
}

void
zjq_log_capture_zsys (const char *ident)
{
    //  Kept for the life of the process: czmq may log until exit
    static s_capture_t capture;
    static FILE *stream = NULL;
    if (!stream) {
        cookie_io_functions_t functions = { .write = s_capture_write };
        stream = fopencookie (&capture, "w", functions);
        if (!stream)
            return;
        setvbuf (stream, NULL, _IOLBF, 0);
    }
    if (ident)
        zsys_set_logident (ident);
    zsys_set_logstream (stream);
}


//  --------------------------------------------------------------------------
//  Self test

void
zjq_log_test (bool verbose)
{
    char buf [ZJQ_LOG_LINE_MAX];
    zjq_log_format_t format;
    assert (zjq_log_format_parse ("json", &format) == 0 && format == ZJQ_LOG_JSON);
    assert (zjq_log_format_parse ("text", &format) == 0 && format == ZJQ_LOG_TEXT);
    assert (zjq_log_format_parse ("xml", &format) == -1);
    assert (zjq_log_format_parse (NULL, &format) == -1);

    //  Text: time, level, event, then the fields, quoted where needed
    zjq_log_set_format (ZJQ_LOG_TEXT);
    size_t len = zjq_log_format_line (buf, sizeof (buf), ZJQ_LOG_INFO, "worker_joined",
                                      "worker=%s host=%s pid=%lld queues=%s:%d empty=%s",
                                      "w1", "my host", 42LL, "echo", 3, "");
    assert (len == strlen (buf) && buf [len - 1] == '\n');
    assert (buf [4] == '-' && buf [10] == 'T' && buf [23] == 'Z' && buf [24] == ' ');
    assert (streq (buf + 24, " level=info event=worker_joined worker=w1 host=\"my host\" "
                             "pid=42 queues=echo:3 empty=\"\"\n"));
    zjq_log_format_line (buf, sizeof (buf), ZJQ_LOG_ERROR, "e", "msg=%s size=%zu pct=%d%%",
                         "say \"hi\"\n\tnow", (size_t) 7, 50);
    assert (streq (buf + 24, " level=error event=e msg=\"say \\\"hi\\\"\\n\\tnow\" size=7 "
                             "pct=50%\n"));
    zjq_log_format_line (buf, sizeof (buf), ZJQ_LOG_DEBUG, "e", "a=%.*s b=%5.1f c=%x",
                         3, "abcdef", 2.25, 255u);
    assert (streq (buf + 24, " level=debug event=e a=abc b=\"  2.2\" c=ff\n"));

    //  JSON: numbers bare, strings quoted, a valid object per line
    zjq_log_set_format (ZJQ_LOG_JSON);
    zjq_log_format_line (buf, sizeof (buf), ZJQ_LOG_WARNING, "job_failed",
                         "id=%s attempt=%d ms=%.1f why=%s queue=%s:%d nan=%f", "j-1", 2, 1.5,
                         "a \"b\"", "q", 1, NAN);
    assert (strncmp (buf, "{\"ts\":\"", 7) == 0);
    assert (strstr (buf, "\"level\":\"warning\",\"event\":\"job_failed\",\"id\":\"j-1\","
                         "\"attempt\":2,\"ms\":1.5,\"why\":\"a \\\"b\\\"\",\"queue\":\"q:1\","
                         "\"nan\":\"nan\"}\n"));

    //  Long values are cut, and the line still ends well
    char big [ZJQ_LOG_LINE_MAX * 2];
    memset (big, 'x', sizeof (big) - 1);
    big [sizeof (big) - 1] = 0;
    len = zjq_log_format_line (buf, sizeof (buf), ZJQ_LOG_INFO, "big", "a=%s b=%s", big, big);
    assert (len < sizeof (buf) && buf [len - 1] == '\n' && strstr (buf, "...\n"));
    zjq_log_set_format (ZJQ_LOG_TEXT);

    //  The level gate: arguments are not evaluated below the threshold
    int evaluated = 0;
    zjq_log_set_level (ZJQ_LOG_WARNING);
    int fds [2];
    assert (pipe (fds) == 0);
    zjq_log_set_fd (fds [1]);
    zjq_log_info ("skipped", "n=%d", ++evaluated);
    assert (evaluated == 0);
    zjq_log_warning ("kept", "n=%d", ++evaluated);
    assert (evaluated == 1);
    //  czmq's lines come through as event "log"
    zjq_log_capture_zsys (NULL);
    zsys_warning ("czmq says %s", "hello");
    zsys_info ("below the threshold");
    zjq_log_set_fd (2);
    zsys_set_logstream (stderr);
    close (fds [1]);
    char out [4096];
    ssize_t got = read (fds [0], out, sizeof (out) - 1);
    close (fds [0]);
    assert (got > 0);
    out [got] = 0;
    assert (strstr (out, " level=warning event=kept n=1\n"));
    assert (strstr (out, " level=warning event=log msg=\"czmq says hello\"\n"));
    assert (!strstr (out, "skipped") && !strstr (out, "below"));
    zjq_log_set_level (ZJQ_LOG_INFO);
    if (verbose)
        printf ("(log ok) ");
}
