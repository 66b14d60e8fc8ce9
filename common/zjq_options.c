/*  zjq_options.c: option tables for the command line, config files and
    help. See zjq_options.h.                                               */

#include "zjq_options.h"
#include "zjq_util.h"
#include <czmq.h>            //  streq
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define s_DURATION_HINT "(seconds, or 250ms, 5m, 1h)"

static void *
s_field (const zjq_option_t *option, void *settings)
{
    return (char *) settings + option->offset;
}

//  The largest value a number field holds (signed, except SIZE fields)
static int64_t
s_type_max (const zjq_option_t *option)
{
    if (option->size >= 8)
        return INT64_MAX;
    int64_t max = ((int64_t) 1 << (option->size * 8 - 1)) - 1;
    return option->kind == ZJQ_OPT_SIZE? max * 2 + 1: max;
}

static int64_t
s_max (const zjq_option_t *option)
{
    return option->max? option->max: s_type_max (option);
}

static bool
s_bounded (const zjq_option_t *option)
{
    return option->max != 0 && option->max < s_type_max (option);
}

static void
s_store_number (const zjq_option_t *option, void *settings, int64_t value)
{
    void *field = s_field (option, settings);
    switch (option->size) {
        case 1: { int8_t v = (int8_t) value; memcpy (field, &v, 1); break; }
        case 2: { int16_t v = (int16_t) value; memcpy (field, &v, 2); break; }
        case 4: { int32_t v = (int32_t) value; memcpy (field, &v, 4); break; }
        default: memcpy (field, &value, 8); break;
    }
}

//  A size as the shortest exact text: 4096 -> "4k", 2147483648 -> "2G"
static void
s_format_size (int64_t bytes, char *buf, size_t size)
{
    if (bytes && bytes % (1LL << 30) == 0)
        snprintf (buf, size, "%" PRId64 "G", bytes >> 30);
    else
    if (bytes && bytes % (1LL << 20) == 0)
        snprintf (buf, size, "%" PRId64 "M", bytes >> 20);
    else
    if (bytes && bytes % (1LL << 10) == 0)
        snprintf (buf, size, "%" PRId64 "k", bytes >> 10);
    else
        snprintf (buf, size, "%" PRId64, bytes);
}

static void
s_format_ms (int64_t ms, char *buf, size_t size)
{
    if (ms % 1000 == 0)
        snprintf (buf, size, "%" PRId64 "s", ms / 1000);
    else
        snprintf (buf, size, "%" PRId64 "ms", ms);
}

//  What an empty TEXT or LIST value lacks: "file name", "endpoint"
static const char *
s_noun (const zjq_option_t *option, char *buf, size_t size)
{
    if (option->accepts)
        return option->accepts;
    const char *metavar = option->metavar? option->metavar: "value";
    if (streq (metavar, "FILE"))
        return "file name";
    if (streq (metavar, "DIR"))
        return "directory name";
    size_t len = 0;
    for (; metavar [len] && len + 1 < size; len++)
        buf [len] = (char) tolower ((unsigned char) metavar [len]);
    buf [len] = 0;
    return buf;
}

static void
s_accepts_size (const zjq_option_t *option, char *buf, size_t size)
{
    char min [32], max [32];
    s_format_size (option->min, min, sizeof (min));
    s_format_size (s_max (option), max, sizeof (max));
    const char *example = option->def? option->def: "16M";
    if (!s_bounded (option))
        if (option->min)
            snprintf (buf, size, "a size of at least %s", min);
        else
            snprintf (buf, size, "a size (e.g. %s)", example);
    else
    if (option->min)
        snprintf (buf, size, "a size from %s to %s", min, max);
    else
        snprintf (buf, size, "a size up to %s (e.g. %s)", max, example);
}

static void
s_accepts_enum (const zjq_option_t *option, char *buf, size_t size)
{
    size_t count = 0, used = 0;
    while (option->names [count])
        count++;
    buf [0] = 0;
    for (size_t index = 0; index < count && used < size; index++) {
        const char *joint = index == 0? "": index + 1 == count? " or ": ", ";
        int len = snprintf (buf + used, size - used, "%s%s", joint, option->names [index]);
        used += len > 0? (size_t) len: 0;
    }
}

const char *
zjq_options_accepts (const zjq_option_t *option, char *buf, size_t size)
{
    assert (option && buf && size);
    if (option->accepts) {
        snprintf (buf, size, "%s", option->accepts);
        return buf;
    }
    int64_t min = option->min, max = s_max (option);
    char low [32], high [32];
    switch (option->kind) {
        case ZJQ_OPT_FLAG:
            snprintf (buf, size, "true or false");
            break;
        case ZJQ_OPT_INT:
            if (s_bounded (option))
                snprintf (buf, size, "a number from %" PRId64 " to %" PRId64, min, max);
            else
            if (min == 1)
                snprintf (buf, size, "a positive number");
            else
                snprintf (buf, size, "a number >= %" PRId64, min);
            break;
        case ZJQ_OPT_SIZE:
            s_accepts_size (option, buf, size);
            break;
        case ZJQ_OPT_DURATION:
            s_format_ms (min, low, sizeof (low));
            s_format_ms (max, high, sizeof (high));
            if (s_bounded (option))
                snprintf (buf, size, "a duration from %s to %s " s_DURATION_HINT, low, high);
            else
                snprintf (buf, size, "a %sduration " s_DURATION_HINT, min > 0? "positive ": "");
            break;
        case ZJQ_OPT_MS:
            if (s_bounded (option))
                snprintf (buf, size, "a number of ms from %" PRId64 " to %" PRId64, min, max);
            else
                snprintf (buf, size, "a number of ms >= %" PRId64, min);
            break;
        case ZJQ_OPT_ENUM:
            s_accepts_enum (option, buf, size);
            break;
        default:
            snprintf (buf, size, "a valid %s", s_noun (option, low, sizeof (low)));
            break;
    }
    return buf;
}

//  The row's message for a bad value. Returns -1.
static int
s_value_error (const zjq_option_t *option, const char *value, char *error, size_t error_size)
{
    if (option->error) {
        //  The template's first %s is the value (not a printf format)
        const char *mark = strstr (option->error, "%s");
        if (mark)
            return zjq_set_error (error, error_size, "%.*s%s%s", (int) (mark - option->error),
                                  option->error, value? value: "", mark + 2);
        return zjq_set_error (error, error_size, "%s", option->error);
    }
    char accepts [256];
    return zjq_set_error (error, error_size, "%s: '%s' is not %s", option->name,
                          value? value: "", zjq_options_accepts (option, accepts,
                                                                  sizeof (accepts)));
}

static int
s_parse_bool (const char *value, bool *flag)
{
    if (!strcasecmp (value, "true") || !strcasecmp (value, "yes")
    ||  !strcasecmp (value, "on") || streq (value, "1"))
        *flag = true;
    else
    if (!strcasecmp (value, "false") || !strcasecmp (value, "no")
    ||  !strcasecmp (value, "off") || streq (value, "0"))
        *flag = false;
    else
        return -1;
    return 0;
}

//  A number kind's value, checked against the range. Returns 0 or -1.
static int
s_parse_number (const zjq_option_t *option, const char *value, int64_t *number)
{
    int64_t min = option->min, max = s_max (option);
    uint64_t bytes;
    switch (option->kind) {
        case ZJQ_OPT_INT:
            return zjq_parse_int (value, min, max, number);
        case ZJQ_OPT_SIZE:
            if (zjq_parse_size (value, &bytes) || bytes > (uint64_t) max
            ||  bytes < (uint64_t) min)
                return -1;
            *number = (int64_t) bytes;
            return 0;
        case ZJQ_OPT_MS:
            if (zjq_parse_int (value, min, max, number) == 0)
                return 0;
            //  Not a plain number of ms: a duration with a unit
            return strspn (value, "0123456789") == strlen (value)
                || zjq_parse_duration (value, number) || *number < min || *number > max? -1: 0;
        default:
            return zjq_parse_duration (value, number) || *number < min || *number > max? -1: 0;
    }
}

static int
s_set_text (const zjq_option_t *option, void *settings, const char *value,
            char *error, size_t error_size)
{
    char noun [64];
    size_t len = strlen (value);
    bool longest = option->kind != ZJQ_OPT_LIST && s_bounded (option);   //  LIST: max counts
    if ((int64_t) len < option->min || (longest && (int64_t) len > option->max)) {
        if (option->error)
            return s_value_error (option, value, error, error_size);
        if (!*value)
            return zjq_set_error (error, error_size, "%s: empty %s", option->name,
                                  s_noun (option, noun, sizeof (noun)));
        return zjq_set_error (error, error_size, "%s: '%s' is not %" PRId64 " to %" PRId64
                              " bytes", option->name, value, option->min, s_max (option));
    }
    if (option->kind == ZJQ_OPT_ARG) {
        *(const char **) s_field (option, settings) = value;
        return 0;
    }
    char *copy = strdup (value);
    if (!copy)
        return zjq_set_error (error, error_size, "out of memory");
    if (option->kind == ZJQ_OPT_TEXT) {
        char **field = (char **) s_field (option, settings);
        free (*field);
        *field = copy;
        return 0;
    }
    //  LIST
    char ***list = (char ***) s_field (option, settings);
    size_t *count = (size_t *) ((char *) settings + option->count_offset);
    if (option->max && *count >= (size_t) option->max) {
        free (copy);
        if (option->error)
            return s_value_error (option, value, error, error_size);
        return zjq_set_error (error, error_size, "%s: more than %" PRId64 " values",
                              option->name, option->max);
    }
    char **grown = (char **) realloc (*list, (*count + 1) * sizeof (char *));
    if (!grown) {
        free (copy);
        return zjq_set_error (error, error_size, "out of memory");
    }
    grown [(*count)++] = copy;
    *list = grown;
    return 0;
}

int
zjq_options_set (const zjq_option_t *option, void *settings, const char *value,
                 char *error, size_t error_size)
{
    assert (option && settings && error && error_size);
    error [0] = 0;
    if (option->parse) {
        if (option->parse (option, settings, value, error, error_size) == 0) {
            if (option->kind == ZJQ_OPT_CUSTOM)
                return 0;
        }
        else
            return error [0]? -1: s_value_error (option, value, error, error_size);
    }
    if (option->kind == ZJQ_OPT_FLAG) {
        bool flag = true;
        if (value && s_parse_bool (value, &flag))
            return s_value_error (option, value, error, error_size);
        *(bool *) s_field (option, settings) = flag;
        return 0;
    }
    assert (value);
    if (option->kind == ZJQ_OPT_ENUM) {
        for (int index = 0; option->names [index]; index++)
            if (streq (option->names [index], value)) {
                s_store_number (option, settings, index);
                return 0;
            }
        return s_value_error (option, value, error, error_size);
    }
    if (option->kind == ZJQ_OPT_TEXT || option->kind == ZJQ_OPT_ARG
    ||  option->kind == ZJQ_OPT_LIST)
        return s_set_text (option, settings, value, error, error_size);
    int64_t number;
    if (s_parse_number (option, value, &number))
        return s_value_error (option, value, error, error_size);
    s_store_number (option, settings, number);
    return 0;
}

const zjq_option_t *
zjq_options_find (const zjq_option_t *table, const char *name, size_t len)
{
    assert (table && name);
    for (const zjq_option_t *option = table; option->name; option++)
        if (strlen (option->name) == len && memcmp (option->name, name, len) == 0)
            return option;
    return NULL;
}

int
zjq_options_set_by_name (const zjq_option_t *table, void *settings, const char *name,
                         const char *value, char *error, size_t error_size)
{
    assert (name && value);
    const zjq_option_t *option = zjq_options_find (table, name, strlen (name));
    if (!option || (option->flags & ZJQ_OPTION_CLI_ONLY) || option->kind == ZJQ_OPT_ARG)
        return zjq_set_error (error, error_size, "unknown option '%s'", name);
    return zjq_options_set (option, settings, value, error, error_size);
}

zjq_options_status_t
zjq_options_next (const zjq_option_t *table, unsigned mask, int argc, char **argv,
                  int *arg_p, const zjq_option_t **option_p, const char **value_p)
{
    assert (table && arg_p && option_p && value_p);
    *option_p = NULL;
    *value_p = NULL;
    if (++*arg_p >= argc)
        return ZJQ_OPTIONS_END;
    const char *arg = argv [*arg_p];
    if (arg [0] != '-' || !arg [1])
        return ZJQ_OPTIONS_POSITIONAL;
    if (streq (arg, "--"))
        return ZJQ_OPTIONS_DASHDASH;
    const zjq_option_t *option = NULL;
    const char *inline_value = NULL;
    if (arg [1] == '-') {
        const char *equals = strchr (arg + 2, '=');
        size_t len = equals? (size_t) (equals - arg - 2): strlen (arg + 2);
        option = zjq_options_find (table, arg + 2, len);
        inline_value = equals? equals + 1: NULL;
    }
    else {
        for (const zjq_option_t *row = table; row->name && !option; row++)
            if (row->short_name && row->short_name == arg [1])
                option = row;
        inline_value = option && arg [2]? arg + 2: NULL;
        if (option && inline_value && option->kind == ZJQ_OPT_FLAG)
            option = NULL;              //  "-vh": no bundling
    }
    if (!option || (mask && !(option->mask & mask)))
        return ZJQ_OPTIONS_UNKNOWN;
    *option_p = option;
    if (option->kind == ZJQ_OPT_FLAG)
        return inline_value? ZJQ_OPTIONS_NO_VALUE: ZJQ_OPTIONS_OPTION;
    if (inline_value)
        *value_p = inline_value;
    else
    if (*arg_p + 1 < argc)
        *value_p = argv [++*arg_p];
    else
        return ZJQ_OPTIONS_NEEDS_VALUE;
    return ZJQ_OPTIONS_OPTION;
}

int
zjq_options_status_error (zjq_options_status_t status, const char *arg,
                          const zjq_option_t *option, char *error, size_t error_size)
{
    assert (error);
    const char *name = option? option->name: "";
    switch (status) {
        case ZJQ_OPTIONS_UNKNOWN: {
            const char *equals = arg? strchr (arg, '='): NULL;
            int len = arg? (int) (equals? (size_t) (equals - arg): strlen (arg)): 0;
            return zjq_set_error (error, error_size, "unknown option '%.*s'", len, arg? arg: "");
        }
        case ZJQ_OPTIONS_NEEDS_VALUE:
            return zjq_set_error (error, error_size, "option '--%s' needs a value", name);
        case ZJQ_OPTIONS_NO_VALUE:
            return zjq_set_error (error, error_size, "option '--%s' takes no value", name);
        default:
            return zjq_set_error (error, error_size, "unexpected argument '%s'", arg? arg: "");
    }
}

//  Trim leading and trailing white space in place
static char *
s_trim (char *text)
{
    while (isspace ((unsigned char) *text))
        text++;
    size_t len = strlen (text);
    while (len && isspace ((unsigned char) text [len - 1]))
        text [--len] = 0;
    return text;
}

//  One config line (comment cut, trimmed). Returns 0, or -1 with a reason.
static int
s_load_line (const zjq_option_t *table, void *settings, char *text, char *error,
             size_t error_size)
{
    char *equals = strchr (text, '=');
    if (!equals)
        return zjq_set_error (error, error_size, "expected 'option = value'");
    *equals = 0;
    char *name = s_trim (text);
    char *value = s_trim (equals + 1);
    size_t len = strlen (value);
    if (len >= 2 && value [0] == '"' && value [len - 1] == '"') {
        value [len - 1] = 0;
        value++;
    }
    if (!*name)
        return zjq_set_error (error, error_size, "missing option name");
    return zjq_options_set_by_name (table, settings, name, value, error, error_size);
}

int
zjq_options_load (const zjq_option_t *table, void *settings, const char *path,
                  char *error, size_t error_size)
{
    assert (table && settings && path && error);
    FILE *file = fopen (path, "r");
    if (!file)
        return zjq_set_error (error, error_size, "%s: %s", path, strerror (errno));
    char *line = NULL;
    size_t line_size = 0;
    int line_nbr = 0;
    int rc = 0;
    while (rc == 0 && getline (&line, &line_size, file) != -1) {
        line_nbr++;
        //  A '#' at the start or after white space starts a comment
        for (char *hash = strchr (line, '#'); hash; hash = strchr (hash + 1, '#'))
            if (hash == line || isspace ((unsigned char) hash [-1])) {
                *hash = 0;
                break;
            }
        char *text = s_trim (line);
        char reason [512];
        if (*text && s_load_line (table, settings, text, reason, sizeof (reason)))
            rc = zjq_set_error (error, error_size, "%s:%d: %s", path, line_nbr, reason);
    }
    if (rc == 0 && ferror (file))
        rc = zjq_set_error (error, error_size, "%s: read error", path);
    free (line);
    fclose (file);
    return rc;
}

void
zjq_options_clear (const zjq_option_t *option, void *settings)
{
    assert (option && settings);
    if (option->kind == ZJQ_OPT_TEXT) {
        char **field = (char **) s_field (option, settings);
        free (*field);
        *field = NULL;
    }
    else
    if (option->kind == ZJQ_OPT_LIST) {
        char ***list = (char ***) s_field (option, settings);
        size_t *count = (size_t *) ((char *) settings + option->count_offset);
        for (size_t index = 0; index < *count; index++)
            free ((*list) [index]);
        free (*list);
        *list = NULL;
        *count = 0;
    }
}

void
zjq_options_free (const zjq_option_t *table, void *settings)
{
    assert (table && settings);
    for (const zjq_option_t *option = table; option->name; option++)
        zjq_options_clear (option, settings);
}

static bool
s_shown (const zjq_option_t *option, unsigned mask)
{
    return !(option->flags & ZJQ_OPTION_HIDDEN) && (!mask || (option->mask & mask));
}

void
zjq_options_help (const zjq_option_t *table, unsigned mask, FILE *out, int width,
                  unsigned flags)
{
    assert (table && out);
    for (const zjq_option_t *option = table; option->name; option++) {
        if (!s_shown (option, mask))
            continue;
        char left [128];
        char short_text [8] = "";
        if (option->short_name)
            snprintf (short_text, sizeof (short_text), "-%c, ", option->short_name);
        else
        if (flags & ZJQ_OPTIONS_HELP_SHORT_COLUMN)
            snprintf (short_text, sizeof (short_text), "    ");
        int len = snprintf (left, sizeof (left), "%s--%s%s%s", short_text, option->name,
                            option->metavar? " ": "", option->metavar? option->metavar: "");
        const char *help = option->help? option->help: "";
        if (len > width)
            fprintf (out, "  %s%s%*s", left, *help? "\n": "", *help? width + 3: 0, "");
        else
            fprintf (out, "  %-*s%s", width, left, *help? " ": "");
        for (const char *line = help; *line;) {
            const char *end = strchr (line, '\n');
            size_t line_len = end? (size_t) (end - line): strlen (line);
            fprintf (out, "%.*s", (int) line_len, line);
            line += line_len;
            if (*line) {
                line++;
                fprintf (out, "\n%*s", width + 3, "");
            }
        }
        if ((flags & ZJQ_OPTIONS_HELP_DEFAULTS) && option->def)
            fprintf (out, " (default %s)", option->def);
        fprintf (out, "\n");
    }
}

//  roff text: '-' as "\-", a leading '.' or '\'' guarded, '\n' kept
static void
s_man_text (FILE *out, const char *text)
{
    bool line_start = true;
    for (; *text; text++) {
        if (line_start && (*text == '.' || *text == '\''))
            fputs ("\\&", out);
        if (*text == '-')
            fputs ("\\-", out);
        else
        if (*text == '\\')
            fputs ("\\e", out);
        else
            fputc (*text, out);
        line_start = *text == '\n';
    }
}

void
zjq_options_man (const zjq_option_t *table, unsigned mask, FILE *out)
{
    assert (table && out);
    for (const zjq_option_t *option = table; option->name; option++) {
        if (!s_shown (option, mask))
            continue;
        fprintf (out, ".TP\n");
        if (option->short_name)
            fprintf (out, "\\fB\\-%c\\fR, ", option->short_name);
        fprintf (out, "\\fB\\-\\-");
        s_man_text (out, option->name);
        fprintf (out, "\\fR");
        if (option->metavar)
            fprintf (out, " \\fI%s\\fR", option->metavar);
        fprintf (out, "\n");
        s_man_text (out, option->help? option->help: "");
        fprintf (out, "\n");
        if (option->def) {
            fprintf (out, "Default: ");
            s_man_text (out, option->def);
            fprintf (out, ".\n");
        }
    }
}


//  --------------------------------------------------------------------------
//  Self-test

typedef struct {
    bool verbose;
    int attempts;
    int64_t jobs;
    uint64_t payload;
    uint64_t compact;
    int64_t ttl_ms;
    int64_t interval_ms;
    int format;
    char *journal;
    const char *broker;
    char **binds;
    size_t bind_count;
    char *metrics;
    int priority;
    char *key;
} s_test_settings_t;

static const char *s_test_formats [] = { "text", "json", NULL };

static int
s_test_metrics (const zjq_option_t *option, void *settings, const char *value,
                char *error, size_t error_size)
{
    if (!strchr (value, ':'))
        return zjq_set_error (error, error_size, "%s: '%s' has no port", option->name, value);
    s_test_settings_t *self = (s_test_settings_t *) settings;
    free (self->metrics);
    self->metrics = strdup (value);
    return self->metrics? 0: -1;
}

static int
s_test_no_slash (const zjq_option_t *option, void *settings, const char *value,
                 char *error, size_t error_size)
{
    (void) option, (void) settings, (void) error, (void) error_size;
    return strchr (value, '/')? -1: 0;
}

#define S_FIELD(field) ZJQ_OPTION_FIELD (s_test_settings_t, field)
static const zjq_option_t s_test_table [] = {
    { "bind", 0, ZJQ_OPT_LIST, S_FIELD (binds), 1, 3, .metavar = "ENDPOINT",
      .count_offset = offsetof (s_test_settings_t, bind_count),
      .help = "bind an endpoint (repeatable)", .mask = 1 },
    { "config", 0, ZJQ_OPT_ARG, S_FIELD (broker), .metavar = "FILE", .help = "read FILE",
      .flags = ZJQ_OPTION_CLI_ONLY, .mask = 1 },
    { "max-attempts", 0, ZJQ_OPT_INT, S_FIELD (attempts), 1, 1000, .metavar = "N",
      .help = "attempts per job", .def = "3", .mask = 1 },
    { "max-jobs", 0, ZJQ_OPT_INT, S_FIELD (jobs), 1, INT64_MAX, .metavar = "N",
      .help = "jobs at once", .def = "2000000", .mask = 1 },
    { "max-payload", 0, ZJQ_OPT_SIZE, S_FIELD (payload), 0, 1LL << 31, .metavar = "BYTES",
      .help = "largest payload", .def = "16M", .mask = 1 },
    { "journal-compact-size", 0, ZJQ_OPT_SIZE, S_FIELD (compact), 4096, 0,
      .metavar = "BYTES", .help = "rewrite the journal once it is\nthis big", .mask = 1 },
    { "result-ttl", 0, ZJQ_OPT_DURATION, S_FIELD (ttl_ms), 1, 0, .metavar = "SECONDS",
      .help = "how long outcomes are kept", .def = "3600", .mask = 1 },
    { "dead-letter-ttl", 0, ZJQ_OPT_DURATION, S_FIELD (ttl_ms), 1, 0, .metavar = "SECONDS",
      .accepts = "a positive duration (seconds, or 5m, 1h, 7d)", .mask = 1 },
    { "fsync-interval", 0, ZJQ_OPT_MS, S_FIELD (interval_ms), 1, 60000, .metavar = "MS",
      .help = "group commit interval", .mask = 1 },
    { "log-format", 0, ZJQ_OPT_ENUM, S_FIELD (format), .metavar = "FORMAT",
      .names = s_test_formats, .help = "text or json", .mask = 1 },
    { "journal", 0, ZJQ_OPT_TEXT, S_FIELD (journal), 1, 0, .metavar = "DIR",
      .help = "journal directory", .parse = s_test_no_slash, .mask = 1 },
    { "metrics", 0, ZJQ_OPT_CUSTOM, 0, 0, .metavar = "HOST:PORT", .parse = s_test_metrics,
      .help = "serve metrics", .mask = 1 },
    { "broker", 'b', ZJQ_OPT_ARG, S_FIELD (broker), .metavar = "ENDPOINT",
      .help = "broker endpoint", .mask = 2 },
    { "priority", 0, ZJQ_OPT_INT, S_FIELD (priority), -1000, 1000, .metavar = "N",
      .error = "--priority: '%s' is not a number in -1000..1000", .mask = 2 },
    { "key", 0, ZJQ_OPT_TEXT, S_FIELD (key), 1, 256, .metavar = "KEY",
      .error = "key must be 1 to 256 bytes", .mask = 2 },
    { "verbose", 'v', ZJQ_OPT_FLAG, S_FIELD (verbose), .help = "log every message",
      .mask = 3 },
    { "secret", 0, ZJQ_OPT_FLAG, S_FIELD (verbose), .flags = ZJQ_OPTION_HIDDEN, .mask = 1 },
    { .name = NULL }
};

//  Set name to value; expect rc, and the error if one is given
static void
s_test_set (s_test_settings_t *settings, const char *name, const char *value,
            const char *expect_error)
{
    char error [256];
    int rc = zjq_options_set_by_name (s_test_table, settings, name, value, error,
                                      sizeof (error));
    if (expect_error) {
        if (rc != -1 || strcmp (error, expect_error) != 0) {
            fprintf (stderr, "%s = %s: got '%s', wanted '%s'\n", name, value,
                     rc? error: "(ok)", expect_error);
            assert (false);
        }
    }
    else {
        if (rc != 0)
            fprintf (stderr, "%s = %s: %s\n", name, value, error);
        assert (rc == 0);
    }
}

static void
s_test_values (s_test_settings_t *settings)
{
    s_test_set (settings, "max-attempts", "7", NULL);
    assert (settings->attempts == 7);
    s_test_set (settings, "max-attempts", "0", "max-attempts: '0' is not a number from 1 to 1000");
    s_test_set (settings, "max-attempts", "1001", "max-attempts: '1001' is not a number from 1 to 1000");
    assert (settings->attempts == 7);
    s_test_set (settings, "max-jobs", "x", "max-jobs: 'x' is not a positive number");
    s_test_set (settings, "max-jobs", "5000000000", NULL);
    assert (settings->jobs == 5000000000LL);
    s_test_set (settings, "max-payload", "2G", NULL);
    assert (settings->payload == 1ULL << 31);
    s_test_set (settings, "max-payload", "3G", "max-payload: '3G' is not a size up to 2G (e.g. 16M)");
    s_test_set (settings, "max-payload", "16MB", NULL);
    assert (settings->payload == 16ULL << 20);
    s_test_set (settings, "journal-compact-size", "100", "journal-compact-size: '100' is not a size of at least 4k");
    s_test_set (settings, "journal-compact-size", "64m", NULL);
    assert (settings->compact == 64ULL << 20);
    s_test_set (settings, "result-ttl", "1.5", NULL);
    assert (settings->ttl_ms == 1500);
    s_test_set (settings, "result-ttl", "5m", NULL);
    assert (settings->ttl_ms == 300000);
    s_test_set (settings, "result-ttl", "0", "result-ttl: '0' is not a positive duration (seconds, or 250ms, 5m, 1h)");
    s_test_set (settings, "dead-letter-ttl", "-1", "dead-letter-ttl: '-1' is not a positive duration (seconds, or 5m, 1h, 7d)");
    s_test_set (settings, "fsync-interval", "5", NULL);
    assert (settings->interval_ms == 5);
    s_test_set (settings, "fsync-interval", "0.01s", NULL);
    assert (settings->interval_ms == 10);
    s_test_set (settings, "fsync-interval", "60001", "fsync-interval: '60001' is not a number of ms from 1 to 60000");
    s_test_set (settings, "fsync-interval", "2m", "fsync-interval: '2m' is not a number of ms from 1 to 60000");
    s_test_set (settings, "log-format", "json", NULL);
    assert (settings->format == 1);
    s_test_set (settings, "log-format", "xml", "log-format: 'xml' is not text or json");
    s_test_set (settings, "journal", "", "journal: empty directory name");
    s_test_set (settings, "journal", "a/b", "journal: 'a/b' is not a valid directory name");
    s_test_set (settings, "journal", "one", NULL);
    s_test_set (settings, "journal", "two", NULL);      //  the old copy is freed
    assert (streq (settings->journal, "two"));
    s_test_set (settings, "metrics", "nohost", "metrics: 'nohost' has no port");
    s_test_set (settings, "metrics", "127.0.0.1:0", NULL);
    assert (streq (settings->metrics, "127.0.0.1:0"));
    s_test_set (settings, "verbose", "yes", NULL);
    assert (settings->verbose);
    s_test_set (settings, "verbose", "OFF", NULL);
    assert (!settings->verbose);
    s_test_set (settings, "verbose", "maybe", "verbose: 'maybe' is not true or false");
    s_test_set (settings, "bind", "", "bind: empty endpoint");
    s_test_set (settings, "bind", "tcp://a:1", NULL);
    s_test_set (settings, "bind", "tcp://b:2", NULL);
    s_test_set (settings, "bind", "tcp://c:3", NULL);
    s_test_set (settings, "bind", "tcp://d:4", "bind: more than 3 values");
    assert (settings->bind_count == 3 && streq (settings->binds [2], "tcp://c:3"));
    s_test_set (settings, "priority", "-1000", NULL);
    assert (settings->priority == -1000);
    s_test_set (settings, "priority", "high", "--priority: 'high' is not a number in -1000..1000");
    s_test_set (settings, "key", "", "key must be 1 to 256 bytes");
    s_test_set (settings, "config", "x", "unknown option 'config'");    //  CLI only
    s_test_set (settings, "broker", "x", "unknown option 'broker'");    //  ARG: argv only
    s_test_set (settings, "nope", "x", "unknown option 'nope'");
    char accepts [128];
    assert (streq (zjq_options_accepts (zjq_options_find (s_test_table, "result-ttl", 10),
                                        accepts, sizeof (accepts)),
                   "a positive duration (seconds, or 250ms, 5m, 1h)"));
}

static void
s_test_argv (s_test_settings_t *settings)
{
    char *argv [] = { "prog", "--max-jobs", "9", "--max-attempts=4", "-v", "pos", "-b",
                      "tcp://x:1", "-btcp://y:2", "--", "--verbose=1", "--zzz=1", "--result-ttl",
                      NULL };
    int argc = 13;
    const zjq_option_t *option;
    const char *value;
    char error [256];
    int arg = 0;
    assert (zjq_options_next (s_test_table, 0, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_OPTION);
    assert (streq (option->name, "max-jobs") && streq (value, "9") && arg == 2);
    assert (zjq_options_set (option, settings, value, error, sizeof (error)) == 0);
    assert (settings->jobs == 9);
    assert (zjq_options_next (s_test_table, 0, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_OPTION);
    assert (streq (option->name, "max-attempts") && streq (value, "4"));
    assert (zjq_options_next (s_test_table, 0, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_OPTION);
    assert (streq (option->name, "verbose") && value == NULL);
    settings->verbose = false;
    assert (zjq_options_set (option, settings, value, error, sizeof (error)) == 0);
    assert (settings->verbose);
    assert (zjq_options_next (s_test_table, 0, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_POSITIONAL);
    assert (streq (argv [arg], "pos"));
    //  -b is not in mask 1
    int saved = arg;
    assert (zjq_options_next (s_test_table, 1, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_UNKNOWN);
    arg = saved;
    assert (zjq_options_next (s_test_table, 2, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_OPTION);
    assert (zjq_options_set (option, settings, value, error, sizeof (error)) == 0);
    assert (streq (settings->broker, "tcp://x:1") && settings->broker == argv [7]);
    assert (zjq_options_next (s_test_table, 2, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_OPTION);
    assert (streq (value, "tcp://y:2"));
    assert (zjq_options_next (s_test_table, 0, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_DASHDASH);
    assert (zjq_options_next (s_test_table, 0, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_NO_VALUE);
    zjq_options_status_error (ZJQ_OPTIONS_NO_VALUE, argv [arg], option, error, sizeof (error));
    assert (streq (error, "option '--verbose' takes no value"));
    assert (zjq_options_next (s_test_table, 0, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_UNKNOWN);
    zjq_options_status_error (ZJQ_OPTIONS_UNKNOWN, argv [arg], option, error, sizeof (error));
    assert (streq (error, "unknown option '--zzz'"));
    assert (zjq_options_next (s_test_table, 0, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_NEEDS_VALUE);
    zjq_options_status_error (ZJQ_OPTIONS_NEEDS_VALUE, argv [arg], option, error, sizeof (error));
    assert (streq (error, "option '--result-ttl' needs a value"));
    assert (zjq_options_next (s_test_table, 0, argc, argv, &arg, &option, &value) == ZJQ_OPTIONS_END);
    zjq_options_status_error (ZJQ_OPTIONS_POSITIONAL, "pos", NULL, error, sizeof (error));
    assert (streq (error, "unexpected argument 'pos'"));
    char *bundled [] = { "prog", "-vb", NULL };
    arg = 0;
    assert (zjq_options_next (s_test_table, 0, 2, bundled, &arg, &option, &value) == ZJQ_OPTIONS_UNKNOWN);
}

//  Write text to a file, load it; expect rc and the error
static void
s_test_load (s_test_settings_t *settings, const char *text, const char *expect_error)
{
    char path [] = "/tmp/zjq_options_test.XXXXXX";
    int fd = mkstemp (path);
    assert (fd >= 0);
    FILE *file = fdopen (fd, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
    char error [512];
    int rc = zjq_options_load (s_test_table, settings, path, error, sizeof (error));
    if (expect_error) {
        char wanted [512];
        snprintf (wanted, sizeof (wanted), "%s:%s", path, expect_error);
        if (rc != -1 || !streq (error, wanted))
            fprintf (stderr, "load: got '%s', wanted '%s'\n", rc? error: "(ok)", wanted);
        assert (rc == -1 && streq (error, wanted));
    }
    else {
        if (rc)
            fprintf (stderr, "load: %s\n", error);
        assert (rc == 0);
    }
    unlink (path);
}

static void
s_test_files (s_test_settings_t *settings)
{
    zjq_options_clear (zjq_options_find (s_test_table, "bind", 4), settings);
    assert (settings->bind_count == 0 && settings->binds == NULL);
    s_test_load (settings, "# a comment\n\n  max-jobs = 42   # trailing\n"
                 "bind = tcp://127.0.0.1:1\nbind = \"tcp://127.0.0.1:2\"\n"
                 "verbose = true\nlog-format = text\njournal = dir#1\n", NULL);
    assert (settings->jobs == 42 && settings->bind_count == 2 && settings->verbose);
    assert (streq (settings->binds [1], "tcp://127.0.0.1:2"));
    assert (streq (settings->journal, "dir#1"));      //  '#' inside a word is kept
    assert (settings->format == 0);
    s_test_load (settings, "max-jobs = 1\nmax-jobs\n", "2: expected 'option = value'");
    s_test_load (settings, " = 5\n", "1: missing option name");
    s_test_load (settings, "help = 1\n", "1: unknown option 'help'");
    s_test_load (settings, "\n\nmax-attempts = 0\n",
                 "3: max-attempts: '0' is not a number from 1 to 1000");
    char error [256];
    assert (zjq_options_load (s_test_table, settings, "/nonexistent/zjq.conf", error,
                              sizeof (error)) == -1);
    assert (streq (error, "/nonexistent/zjq.conf: No such file or directory"));
}

static void
s_test_help (bool verbose)
{
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream (&text, &size);
    assert (out);
    zjq_options_help (s_test_table, 1, out, 24, ZJQ_OPTIONS_HELP_DEFAULTS);
    fclose (out);
    if (verbose)
        printf ("\n%s", text);
    assert (strstr (text, "  --bind ENDPOINT          bind an endpoint (repeatable)\n"));
    assert (strstr (text, "  --max-jobs N             jobs at once (default 2000000)\n"));
    assert (strstr (text, "  --journal-compact-size BYTES\n"
                          "                           rewrite the journal once it is\n"
                          "                           this big\n"));
    assert (strstr (text, "  -v, --verbose            log every message\n"));
    assert (!strstr (text, "--broker"));        //  not in mask 1
    assert (!strstr (text, "--secret"));        //  hidden
    free (text);
    //  A short-name column: rows without one line up with those that have it
    out = open_memstream (&text, &size);
    assert (out);
    zjq_options_help (s_test_table, 1, out, 24, ZJQ_OPTIONS_HELP_SHORT_COLUMN);
    fclose (out);
    assert (strstr (text, "      --bind ENDPOINT      bind an endpoint (repeatable)\n"));
    assert (strstr (text, "  -v, --verbose            log every message\n"));
    free (text);
    out = open_memstream (&text, &size);
    assert (out);
    zjq_options_man (s_test_table, 2, out);
    fclose (out);
    if (verbose)
        printf ("%s", text);
    assert (strstr (text, ".TP\n\\fB\\-b\\fR, \\fB\\-\\-broker\\fR \\fIENDPOINT\\fR\nbroker endpoint\n"));
    assert (!strstr (text, "max\\-jobs"));
    free (text);
}

void
zjq_options_test (bool verbose)
{
    s_test_settings_t settings = { .attempts = 3 };
    s_test_values (&settings);
    s_test_argv (&settings);
    s_test_files (&settings);
    s_test_help (verbose);
    zjq_options_free (s_test_table, &settings);
    assert (settings.journal == NULL && settings.binds == NULL && settings.bind_count == 0);
    assert (settings.metrics);          //  CUSTOM fields are the caller's
    free (settings.metrics);
}
