/*  main.c: zjq-broker. Parses the settings, sets up signals and logging,
    runs the broker until SIGINT or SIGTERM. See zjq-broker --help.         */

#include "zjq_broker.h"
#include "zjq_broker_config.h"
#include "zjq_util.h"
#include <czmq.h>
#include <signal.h>
#include <unistd.h>

int
main (int argc, char *argv [])
{
    zjq_broker_config_t *config = zjq_broker_config_new ();
    if (!config) {
        fprintf (stderr, "zjq-broker: out of memory\n");
        return 1;
    }
    zjq_config_result_t result = zjq_broker_config_parse (config, argc, argv);
    if (result != ZJQ_CONFIG_RUN) {
        zjq_broker_config_destroy (&config);
        return result == ZJQ_CONFIG_EXIT? 0: 2;
    }
    //  Block SIGINT/SIGTERM before libzmq starts its threads, and keep czmq
    //  from installing handlers of its own: signals arrive on a signalfd
    //  that the broker polls.
    const int signals [] = { SIGINT, SIGTERM };
    int signal_fd = zjq_signalfd_open (signals, 2);
    if (signal_fd == -1) {
        fprintf (stderr, "zjq-broker: cannot open a signalfd\n");
        zjq_broker_config_destroy (&config);
        return 1;
    }
    zsys_handler_set (NULL);
    zsys_set_logident ("zjq-broker");
    zsys_set_logstream (stderr);

    zjq_broker_t *broker = zjq_broker_new (config);
    zjq_broker_config_destroy (&config);
    int rc = broker? zjq_broker_run (broker, signal_fd): -1;
    zjq_broker_destroy (&broker);
    close (signal_fd);
    return rc == 0? 0: 1;
}
