/*  main.c: zjq-broker. Parses the settings, sets up signals and logging,
    runs the broker until SIGINT or SIGTERM (SIGHUP reloads the CURVE
    allow-lists). See zjq-broker --help.         */

#include "zjq_broker.h"
#include "zjq_broker_config.h"
#include "zjq_util.h"
#include "zjq_log.h"
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
    //  Keys are read once, here: a bad one is a usage error (exit 2)
    zjq_auth_t *auth = NULL;
    if (config->curve_secret) {
        char error [1024];
        auth = zjq_auth_new (config->curve_secret, config->curve_clients,
                             config->curve_workers, config->curve_admins, error, sizeof (error));
        if (!auth) {
            fprintf (stderr, "zjq-broker: %s\n", error);
            zjq_broker_config_destroy (&config);
            return 2;
        }
    }
    //  Block SIGINT/SIGTERM/SIGHUP before libzmq starts its threads, and
    //  keep czmq from installing handlers of its own: signals arrive on a
    //  signalfd that the broker polls.
    const int signals [] = { SIGINT, SIGTERM, SIGHUP };
    int signal_fd = zjq_signalfd_open (signals, 3);
    if (signal_fd == -1) {
        fprintf (stderr, "zjq-broker: cannot open a signalfd\n");
        zjq_auth_destroy (&auth);
        zjq_broker_config_destroy (&config);
        return 1;
    }
    zsys_handler_set (NULL);
    zjq_log_set_format ((zjq_log_format_t) config->log_format);
    zjq_log_set_level (config->verbose? ZJQ_LOG_DEBUG: ZJQ_LOG_INFO);
    zjq_log_capture_zsys ("zjq-broker");

    zjq_broker_t *broker = zjq_broker_new (config, auth? &auth: NULL);
    zjq_broker_config_destroy (&config);
    int rc = broker? zjq_broker_run (broker, signal_fd): -1;
    zjq_broker_destroy (&broker);
    close (signal_fd);
    return rc == 0? 0: 1;
}
