/*  zjq_batch.h: several zjq messages in one ZeroMQ message (BATCH), for
    callers: docs/protocol.md, "Batches". Three rooms:
        zjq_batch_codec.h  the records frame: the zjq_batch_t encoder and the
                           record reader, the batch limits
        zjq_outbox.h       zjq_outbox_t: messages queued per destination
                           during a loop's turn, sent (batched) at its end
        zjq_inbox.h        zjq_inbox_t: messages read from a socket, a
                           BATCH handed out as its messages                */

#ifndef ZJQ_BATCH_H_INCLUDED
#define ZJQ_BATCH_H_INCLUDED

#include "zjq_proto.h"
#include "zjq_batch_codec.h"
#include "zjq_outbox.h"
#include "zjq_inbox.h"

#endif
