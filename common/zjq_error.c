/*  zjq_error.c: error messages, state names and the version string.       */

#include "zjq_error.h"
#include <string.h>

const char *
zjq_strerror (int code)
{
    if (code == 0)
        return "success";
#define ZJQ_STRERROR_CASE(name, value, message) case value: return message;
    switch (code) {
        ZJQ_ERRNO_MAP (ZJQ_STRERROR_CASE)
    }
#undef ZJQ_STRERROR_CASE
    return "unknown error";
}

const char *
zjq_errname (int code)
{
#define ZJQ_ERRNAME_CASE(name, value, message) case value: return #name;
    switch (code) {
        ZJQ_ERRNO_MAP (ZJQ_ERRNAME_CASE)
    }
#undef ZJQ_ERRNAME_CASE
    return NULL;
}

static const char *s_state_names [] = {
    "unknown", "queued", "running", "succeeded", "failed", "cancelled"
};

const char *
zjq_state_name (int state)
{
    if (state < 0 || state > ZJQ_STATE_CANCELLED)
        return "unknown";
    return s_state_names [state];
}

int
zjq_state_from_name (const char *name)
{
    if (!name)
        return ZJQ_STATE_UNKNOWN;
    for (int state = ZJQ_STATE_QUEUED; state <= ZJQ_STATE_CANCELLED; state++)
        if (strcmp (name, s_state_names [state]) == 0)
            return state;
    return ZJQ_STATE_UNKNOWN;
}

const char *
zjq_version (void)
{
    return ZJQ_VERSION_STRING;
}
