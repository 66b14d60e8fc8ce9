/*  zjq_options.h: option tables for the command line, config files and
    --help (and man pages), in the manner of nginx's ngx_command_t and
    redis's static_configs[].

    A program describes its options once, as a table of rows: name, kind,
    the field of its settings struct, range, metavar, help, default. The
    same table then parses `--name value` / `--name=value` / `-x`, reads
    `name = value` config files (# comments, file:line errors), and prints
    the help. Error texts name the option and what it accepts:
    "max-jobs: 'x' is not a positive number" (the command line adds "--").

        typedef struct { int64_t jobs; int64_t ttl_ms; int format; char *journal;
                         bool verbose; } settings_t;
        static const char *s_formats [] = { "text", "json", NULL };
        static const zjq_option_t s_table [] = {
            { "max-jobs", 0, ZJQ_OPT_INT, ZJQ_OPTION_FIELD (settings_t, jobs), 1, INT64_MAX,
              .metavar = "N", .help = "queued + running jobs at once", .def = "2000000" },
            { "result-ttl", 0, ZJQ_OPT_DURATION, ZJQ_OPTION_FIELD (settings_t, ttl_ms), 1, 0,
              .metavar = "SECONDS", .help = "how long outcomes are kept", .def = "3600" },
            { "log-format", 0, ZJQ_OPT_ENUM, ZJQ_OPTION_FIELD (settings_t, format),
              .metavar = "FORMAT", .names = s_formats, .help = "text or json" },
            { "journal", 0, ZJQ_OPT_TEXT, ZJQ_OPTION_FIELD (settings_t, journal), 1, 0,
              .metavar = "DIR", .help = "keep a journal in DIR" },
            { "verbose", 'v', ZJQ_OPT_FLAG, ZJQ_OPTION_FIELD (settings_t, verbose),
              .help = "log every message" },
            { .name = NULL }
        };
        //  argv:  while ((rc = zjq_options_next (s_table, 0, argc, argv, &arg,
        //                                       &option, &value)) != ZJQ_OPTIONS_END) ...
        //             zjq_options_set (option, &settings, value, error, sizeof (error));
        //  file:  zjq_options_load (s_table, &settings, path, error, sizeof (error));
        //  help:  zjq_options_help (s_table, 0, stdout, 24, 0);
        //  exit:  zjq_options_free (s_table, &settings);

    Kinds and their fields (the field's size is taken from the struct, so
    int, int64_t and uint64_t fields all work; min is the lower bound, max
    the upper one, max 0 means none but the field type's):
      FLAG      bool; takes no value on the command line (sets true); in a file
                true/yes/on/1 or false/no/off/0
      INT       whole number in [min, max]
      SIZE      bytes, with k, M, G suffixes (16M, 512k), in [min, max]
      DURATION  milliseconds from seconds (30, 0.5) or a unit (250ms, 5m, 1h, 7d)
      MS        milliseconds: a plain number is ms, a unit works too (5ms, 0.01s)
      ENUM      int: the index of the value in names (a NULL-ended list)
      TEXT      char *, an owned copy (the old one freed); length in [min, max]
      ARG       const char *, the argv string itself (command line only)
      LIST      char ** plus a size_t count at count_offset (repeatable:
                --bind); each an owned copy; max is the most entries (0: any)
      CUSTOM    parse callback does it all
    A row with parse set and another kind runs the callback first, as a
    check that stores nothing (e.g. a queue name's characters); the kind
    then stores the value. Durations and MS ranges are in milliseconds.   */

#ifndef ZJQ_OPTIONS_H_INCLUDED
#define ZJQ_OPTIONS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    ZJQ_OPT_FLAG,
    ZJQ_OPT_INT,
    ZJQ_OPT_SIZE,
    ZJQ_OPT_DURATION,
    ZJQ_OPT_MS,
    ZJQ_OPT_ENUM,
    ZJQ_OPT_TEXT,
    ZJQ_OPT_ARG,
    ZJQ_OPT_LIST,
    ZJQ_OPT_CUSTOM
} zjq_option_kind_t;

//  Row flags
#define ZJQ_OPTION_CLI_ONLY  1u     //  not in config files (config, help, version)
#define ZJQ_OPTION_HIDDEN    2u     //  not in --help or man pages

typedef struct _zjq_option_t zjq_option_t;

//  Parse value (NULL for a flag on the command line) into settings.
//  Returns 0, or -1; on -1 an empty error gets the row's standard message
//  ("NAME: 'VALUE' is not ACCEPTS"), otherwise error is used as written.
typedef int (zjq_option_parse_fn) (const zjq_option_t *option, void *settings,
                                   const char *value, char *error, size_t error_size);

struct _zjq_option_t {
    const char *name;           //  long name without "--"; NULL ends a table
    char short_name;            //  'v' for -v, or 0
    zjq_option_kind_t kind;
    size_t offset;              //  of the field in the settings struct
    size_t size;                //  of the field (numbers: 1, 2, 4 or 8 bytes)
    int64_t min;                //  lowest number, or shortest TEXT
    int64_t max;                //  highest / longest, 0: unbounded; LIST: most entries
    const char *metavar;        //  "BYTES" in help; NULL for a flag
    const char *help;           //  help text; '\n' starts a continuation line
    const char *def;            //  the default as text (help, man), or NULL
    const char *accepts;        //  "a positive number" for errors, or NULL: from
                                //  kind and range; TEXT: what is empty ("file name")
    const char *error;          //  whole message with one optional %s for the
                                //  value, instead of the standard one, or NULL
    const char *const *names;   //  ENUM: the values, NULL-ended
    size_t count_offset;        //  LIST: offset of its size_t count
    zjq_option_parse_fn *parse; //  CUSTOM: the parser; others: a check after
    unsigned mask;              //  a program's own bits (the CLI's per command)
    unsigned flags;             //  ZJQ_OPTION_*
};

//  offset and size of a settings field, for a row
#define ZJQ_OPTION_FIELD(type, field) offsetof (type, field), sizeof (((type *) 0)->field)

//  What zjq_options_next found.
typedef enum {
    ZJQ_OPTIONS_OPTION = 0,     //  *option_p and *value_p (NULL for a flag) set
    ZJQ_OPTIONS_END,            //  no arguments left
    ZJQ_OPTIONS_POSITIONAL,     //  argv [*arg_p] is not an option ("x", "-")
    ZJQ_OPTIONS_DASHDASH,       //  argv [*arg_p] is "--": the caller decides
    ZJQ_OPTIONS_UNKNOWN,        //  no such option (or not in mask)
    ZJQ_OPTIONS_NEEDS_VALUE,    //  *option_p needs a value and none is left
    ZJQ_OPTIONS_NO_VALUE        //  *option_p is a flag given --name=value
} zjq_options_status_t;

//  The row named name (len bytes, not necessarily terminated), or NULL.
const zjq_option_t *
    zjq_options_find (const zjq_option_t *table, const char *name, size_t len);

//  Step through argv: call with *arg_p = 0 before the first call; each
//  call moves *arg_p to the argument it looked at (past a value it took)
//  and says what it is. Accepts --name value, --name=value, -x value, -xVALUE,
//  and --name or -x for flags (no bundling: -vh is unknown). Rows
//  whose mask shares no bit with mask are unknown (mask 0: every row).
//  On UNKNOWN, NEEDS_VALUE and NO_VALUE, argv [*arg_p] is the culprit.
zjq_options_status_t
    zjq_options_next (const zjq_option_t *table, unsigned mask, int argc, char **argv,
                      int *arg_p, const zjq_option_t **option_p, const char **value_p);

//  A standard message for a status of zjq_options_next ("unknown option
//  '--x'", "option '--x' needs a value", ...) into error. Returns -1.
int
    zjq_options_status_error (zjq_options_status_t status, const char *arg,
                              const zjq_option_t *option, char *error, size_t error_size);

//  Store a value (NULL: a flag given on the command line) in its field of
//  settings. Returns 0, or -1 with a message naming the option in error
//  (the field unchanged, except what a CUSTOM parser did).
int
    zjq_options_set (const zjq_option_t *option, void *settings, const char *value,
                     char *error, size_t error_size);

//  Set by name, as a config file line does (CLI_ONLY and ARG rows are
//  unknown here). Returns 0, or -1 with "unknown option 'x'" or the
//  value's error.
int
    zjq_options_set_by_name (const zjq_option_t *table, void *settings, const char *name,
                             const char *value, char *error, size_t error_size);

//  Read a config file of `name = value` lines: blank lines and # comments
//  (at the start or after white space) skipped, "value" quotes stripped.
//  Returns 0, or -1 with "path:line: what" (or why the file could not be
//  read) in error; the lines before the bad one stay applied.
int
    zjq_options_load (const zjq_option_t *table, void *settings, const char *path,
                      char *error, size_t error_size);

//  Free what TEXT and LIST rows own in settings and clear those fields.
void
    zjq_options_free (const zjq_option_t *table, void *settings);

//  Free and clear one TEXT or LIST field (e.g. before the command line's
//  first --bind replaces the file's).
void
    zjq_options_clear (const zjq_option_t *option, void *settings);

//  What a row accepts, as its error message says it ("a number from 1 to
//  1000"), into buf. Returns buf.
const char *
    zjq_options_accepts (const zjq_option_t *option, char *buf, size_t size);

//  Help flags
#define ZJQ_OPTIONS_HELP_DEFAULTS 1u    //  append " (default DEF)" to rows with def
#define ZJQ_OPTIONS_HELP_SHORT_COLUMN 2u    //  indent rows without a short name as
                                        //  if they had one: "      --name"

//  Print the rows in mask (0: all) as help lines: "  -v, --name METAVAR"
//  padded to width columns, then the help; a left side wider than width
//  puts the help on the next line; continuation lines are indented.
void
    zjq_options_help (const zjq_option_t *table, unsigned mask, FILE *out, int width,
                      unsigned flags);

//  Print the rows in mask as man page (roff) .TP entries with metavar,
//  help and default.
void
    zjq_options_man (const zjq_option_t *table, unsigned mask, FILE *out);

//  Self-test.
void
    zjq_options_test (bool verbose);

#endif
