/*  zjq_cert.c: read CURVE certificates in czmq's ZPL format. See zjq_cert.h.

    ZPL (rfc.zeromq.org/spec/4) as zcert_save writes it: '#' comments, a
    section name at the start of a line, and `name = value` lines indented
    under it, the value bare or in single or double quotes. Only the two
    levels zcert uses are read; deeper nesting is ignored.                  */

#include "zjq_util.h"
#include "zjq_cert.h"
#include <zmq.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ZJQ_CERT_FILE_MAX   65536   //  larger files are not certificates
#define ZJQ_CERT_META_MAX   64      //  metadata entries kept

struct _zjq_cert_t {
    char public_key [ZJQ_CERT_KEY_TEXT];    //  Z85
    char secret_key [ZJQ_CERT_KEY_TEXT];    //  Z85, or "" if none
    char *meta_names [ZJQ_CERT_META_MAX];   //  metadata, meta_count entries
    char *meta_values [ZJQ_CERT_META_MAX];
    size_t meta_count;
};

bool
zjq_cert_key_valid (const char *text)
{
    if (!text || strlen (text) != 40)
        return false;
    uint8_t binary [32];
    return zmq_z85_decode (binary, text) != NULL;
}

//  Read a whole small file into a NUL-terminated buffer, and its mode.
//  Returns 0, or -1 with error set.
static int
s_read_file (const char *path, int *mode_p, char **text_p, char *error, size_t error_size)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return zjq_set_error (error, error_size, "%s: %s", path, strerror (errno));
    struct stat info;
    if (fstat (fd, &info) == -1 || !S_ISREG (info.st_mode) || info.st_size > ZJQ_CERT_FILE_MAX) {
        close (fd);
        return zjq_set_error (error, error_size, "%s: not a certificate file", path);
    }
    *mode_p = (int) (info.st_mode & 07777);
    char *text = (char *) malloc ((size_t) info.st_size + 1);
    if (!text) {
        close (fd);
        return zjq_set_error (error, error_size, "%s: out of memory", path);
    }
    size_t size = 0;
    while (size < (size_t) info.st_size) {
        ssize_t got = read (fd, text + size, (size_t) info.st_size - size);
        if (got == -1 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        size += (size_t) got;
    }
    close (fd);
    text [size] = 0;
    *text_p = text;
    return 0;
}

//  The value of a `name = value` line, in place: unquoted, or up to a
//  comment and trimmed. NULL if the quotes do not close.
static char *
s_value (char *text)
{
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text == '"' || *text == '\'') {
        char *end = strchr (text + 1, *text);
        if (!end)
            return NULL;
        *end = 0;
        return text + 1;
    }
    char *hash = strchr (text, '#');
    if (hash)
        *hash = 0;
    size_t len = strlen (text);
    while (len && isspace ((unsigned char) text [len - 1]))
        text [--len] = 0;
    return text;
}

//  Parse ZPL text into self. Returns 0, or -1 with error set.
static int
s_parse (zjq_cert_t *self, char *text, const char *path, char *error, size_t error_size)
{
    char section [32] = "";
    int line_nbr = 0;
    for (char *line = text, *next; line; line = next) {
        next = strchr (line, '\n');
        if (next)
            *next++ = 0;
        line_nbr++;
        size_t len = strlen (line);
        if (len && line [len - 1] == '\r')
            line [--len] = 0;
        size_t indent = strspn (line, " \t");
        if (!line [indent] || line [indent] == '#')
            continue;
        if (indent == 0) {
            //  A section name (a top-level `name = value` is not used)
            snprintf (section, sizeof (section), "%.*s", (int) strcspn (line, " \t=#"), line);
            continue;
        }
        if (indent > 4)
            continue;           //  deeper levels: not used by zcert
        char *name = line + indent;
        char *equals = strchr (name, '=');
        if (!equals)
            continue;           //  a subsection: nothing zcert writes
        char *name_end = equals;
        while (name_end > name && isspace ((unsigned char) name_end [-1]))
            name_end--;
        *name_end = 0;
        char *value = s_value (equals + 1);
        if (!value)
            return zjq_set_error (error, error_size, "%s:%d: unterminated quote", path, line_nbr);
        if (strcmp (section, "curve") == 0) {
            char *target = strcmp (name, "public-key") == 0? self->public_key:
                           strcmp (name, "secret-key") == 0? self->secret_key: NULL;
            if (target) {
                if (!zjq_cert_key_valid (value))
                    return zjq_set_error (error, error_size, "%s:%d: %s is not a 40-character Z85 key",
                                   path, line_nbr, name);
                memcpy (target, value, ZJQ_CERT_KEY_TEXT);
            }
        }
        else
        if (strcmp (section, "metadata") == 0 && self->meta_count < ZJQ_CERT_META_MAX) {
            self->meta_names [self->meta_count] = strdup (name);
            self->meta_values [self->meta_count] = strdup (value);
            if (!self->meta_names [self->meta_count] || !self->meta_values [self->meta_count]) {
                free (self->meta_names [self->meta_count]);
                free (self->meta_values [self->meta_count]);
                return zjq_set_error (error, error_size, "%s: out of memory", path);
            }
            self->meta_count++;
        }
    }
    if (!*self->public_key)
        return zjq_set_error (error, error_size, "%s: no curve public-key: not a CURVE certificate "
                       "(make one with 'zjq keygen NAME')", path);
    return 0;
}

zjq_cert_t *
zjq_cert_load (const char *path, bool need_secret, char *error, size_t error_size)
{
    assert (path);
    char *text = NULL;
    int mode = 0;
    if (s_read_file (path, &mode, &text, error, error_size))
        return NULL;
    zjq_cert_t *self = (zjq_cert_t *) calloc (1, sizeof (zjq_cert_t));
    if (!self) {
        free (text);
        zjq_set_error (error, error_size, "%s: out of memory", path);
        return NULL;
    }
    size_t size = strlen (text);
    int rc = s_parse (self, text, path, error, error_size);
    explicit_bzero (text, size);    //  it held the secret key
    free (text);
    if (rc == 0 && need_secret && !*self->secret_key)
        rc = zjq_set_error (error, error_size, "%s: no curve secret-key: give the secret certificate "
                     "(NAME.key_secret), not the public one", path);
    else
    if (rc == 0 && need_secret && (mode & 077))
        rc = zjq_set_error (error, error_size, "%s: secret key file is accessible by others "
                     "(mode %04o); run chmod 600 on it", path, (unsigned) mode);
    if (rc)
        zjq_cert_destroy (&self);
    return self;
}

void
zjq_cert_destroy (zjq_cert_t **self_p)
{
    assert (self_p);
    zjq_cert_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->meta_count; index++) {
        free (self->meta_names [index]);
        free (self->meta_values [index]);
    }
    explicit_bzero (self->secret_key, sizeof (self->secret_key));
    free (self);
    *self_p = NULL;
}

const char *
zjq_cert_public_key (zjq_cert_t *self)
{
    assert (self);
    return self->public_key;
}

const char *
zjq_cert_secret_key (zjq_cert_t *self)
{
    assert (self);
    return *self->secret_key? self->secret_key: NULL;
}

const char *
zjq_cert_meta (zjq_cert_t *self, const char *name)
{
    assert (self);
    assert (name);
    for (size_t index = 0; index < self->meta_count; index++)
        if (strcmp (self->meta_names [index], name) == 0)
            return self->meta_values [index];
    return NULL;
}


//  --------------------------------------------------------------------------
//  Self test

static void
s_write (const char *path, const char *text, int mode)
{
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
    chmod (path, (mode_t) mode);
}

void
zjq_cert_test (bool verbose)
{
    char public_key [41], secret_key [41];
    assert (zmq_curve_keypair (public_key, secret_key) == 0);
    char dir [] = "/tmp/zjq-cert-test-XXXXXX";
    assert (mkdtemp (dir));
    char path [256], secret_path [256], text [1024], error [256];
    snprintf (path, sizeof (path), "%s/alice.key", dir);
    snprintf (secret_path, sizeof (secret_path), "%s/alice.key_secret", dir);
    snprintf (text, sizeof (text),
              "#   ****  Generated by CZMQ  ****\n#   comment\n\nmetadata\n"
              "    queues = \"img,pdf\"   # trailing\n    name = 'alice'\ncurve\n"
              "    public-key = \"%s\"\n", public_key);
    s_write (path, text, 0644);
    snprintf (text, sizeof (text), "metadata\ncurve\r\n    public-key = \"%s\"\r\n"
              "    secret-key = \"%s\"\r\n", public_key, secret_key);
    s_write (secret_path, text, 0600);

    zjq_cert_t *cert = zjq_cert_load (path, false, error, sizeof (error));
    assert (cert);
    assert (strcmp (zjq_cert_public_key (cert), public_key) == 0);
    assert (zjq_cert_secret_key (cert) == NULL);
    assert (strcmp (zjq_cert_meta (cert, "queues"), "img,pdf") == 0);
    assert (strcmp (zjq_cert_meta (cert, "name"), "alice") == 0);
    assert (zjq_cert_meta (cert, "other") == NULL);
    zjq_cert_destroy (&cert);
    zjq_cert_destroy (&cert);
    assert (cert == NULL);

    //  A public file where a secret one is needed
    assert (zjq_cert_load (path, true, error, sizeof (error)) == NULL);
    assert (strstr (error, "no curve secret-key"));
    cert = zjq_cert_load (secret_path, true, error, sizeof (error));
    assert (cert);
    assert (strcmp (zjq_cert_secret_key (cert), secret_key) == 0);
    zjq_cert_destroy (&cert);
    //  Readable by others
    chmod (secret_path, 0644);
    assert (zjq_cert_load (secret_path, true, error, sizeof (error)) == NULL);
    assert (strstr (error, "chmod 600") && !strstr (error, secret_key));
    //  Missing, bad key, not a certificate
    snprintf (path, sizeof (path), "%s/missing", dir);
    assert (zjq_cert_load (path, false, error, sizeof (error)) == NULL);
    snprintf (path, sizeof (path), "%s/bad.key", dir);
    s_write (path, "curve\n    public-key = \"tooshort\"\n", 0644);
    assert (zjq_cert_load (path, false, error, sizeof (error)) == NULL);
    assert (strstr (error, "Z85"));
    s_write (path, "hello world\n", 0644);
    assert (zjq_cert_load (path, false, error, sizeof (error)) == NULL);
    assert (strstr (error, "not a CURVE certificate"));
    s_write (path, "curve\n    public-key = \"unterminated\n", 0644);
    assert (zjq_cert_load (path, false, error, sizeof (error)) == NULL);
    assert (!zjq_cert_key_valid ("") && !zjq_cert_key_valid (NULL));
    assert (zjq_cert_key_valid (public_key));

    unlink (path);
    snprintf (path, sizeof (path), "%s/alice.key", dir);
    unlink (path);
    unlink (secret_path);
    rmdir (dir);
    if (verbose)
        printf ("(certs ok) ");
}
