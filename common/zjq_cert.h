/*  zjq_cert.h: read a CURVE certificate written by czmq's zcert_save.

    `zjq keygen NAME` (zcert_save) writes NAME.key, the public certificate,
    and NAME.key_secret, the secret one (mode 0600). Both are ZPL text:

        metadata
            queues = "img,pdf"
        curve
            public-key = "<40 characters of Z85>"
            secret-key = "<40 characters of Z85>"      (secret file only)

    This reader is used by the client and worker libraries as well as the
    broker. It calls nothing in czmq's zsys (whose first log line would
    install signal handlers inside the host application), and checks what
    it reads: both keys must be valid Z85, and a secret file must not be
    readable or writable by anyone but its owner.                          */

#ifndef ZJQ_CERT_H_INCLUDED
#define ZJQ_CERT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#define ZJQ_CERT_KEY_TEXT 41        //  Z85 key (40 characters) + NUL

typedef struct _zjq_cert_t zjq_cert_t;

//  Load a certificate file. With need_secret, the file must hold a secret
//  key and have no group or other permission bits (0600 or 0400). Returns
//  the certificate, or NULL with "PATH: what is wrong" in error (never
//  mentioning key material).
zjq_cert_t *
    zjq_cert_load (const char *path, bool need_secret, char *error, size_t error_size);

//  Destroy a certificate (wiping its secret key); idempotent; nulls the
//  pointer.
void
    zjq_cert_destroy (zjq_cert_t **self_p);

//  The public key in Z85 (40 characters).
const char *
    zjq_cert_public_key (zjq_cert_t *self);

//  The secret key in Z85, or NULL if the file held none.
const char *
    zjq_cert_secret_key (zjq_cert_t *self);

//  A metadata value ("queues"), or NULL if absent.
const char *
    zjq_cert_meta (zjq_cert_t *self, const char *name);

//  True if text is a 40-character Z85 key.
bool
    zjq_cert_key_valid (const char *text);

//  Self test
void
    zjq_cert_test (bool verbose);

#endif
