/*  zjq.h: the whole zjq public API (client and worker libraries).
    Link with -lzjq (pkg-config zjq) or find_package(zjq).                  */
#ifndef ZJQ_H_INCLUDED
#define ZJQ_H_INCLUDED
#include "zjq_error.h"
#include "zjq_client.h"
#include "zjq_worker.h"
#endif
