#!/bin/sh
# zjq-entrypoint: the container's entry point (deploy/Dockerfile). Maps ZJQ_*
# environment variables to the options of zjq-broker and zjq-worker, so a
# compose file or `docker run -e` configures everything; deploy/README.md has
# the table. Arguments after the role are passed on unchanged (they win over
# the environment where the program allows it).
#
#   zjq-entrypoint broker [ZJQ-BROKER OPTIONS]     (default)
#   zjq-entrypoint worker [ZJQ-WORKER OPTIONS]
#   zjq-entrypoint demo                            submit ZJQ_DEMO_JOBS sha256 jobs with `zjq batch`
#   zjq-entrypoint healthcheck                     exit 0 if healthy (the image's HEALTHCHECK)
#   zjq-entrypoint zjq|zjq-broker|zjq-worker|sh ...  run that command as it is
#
# An unset or empty variable adds no option, so the program's own default applies.
set -eu

role=${1:-broker}
[ $# -gt 0 ] && shift

#  Append "--option value" to the argument list if the variable is non-empty.
opt () {
    if [ -n "${2:-}" ]; then
        set_args="$set_args $1 $(quote "$2")"
    fi
}

#  Append "--option" if the variable is a true value (1, true, yes, on).
flag () {
    case "${2:-}" in
        1|true|TRUE|True|yes|YES|on|ON) set_args="$set_args $1" ;;
        ''|0|false|FALSE|False|no|NO|off|OFF) ;;
        *) echo "zjq-entrypoint: $3 must be true or false, not '$2'" >&2; exit 2 ;;
    esac
}

#  Single-quote a value for eval.
quote () {
    printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

#  The executable that is PID 1's child (tini's) or PID 1: what this container runs.
running_role () {
    for comm in /proc/[0-9]*/comm; do
        case "$(cat "$comm" 2>/dev/null)" in
            zjq-broker) echo broker; return ;;
            zjq-worker) echo worker; return ;;
        esac
    done
    echo unknown
}

set_args=""
case "$role" in
broker)
    # Inside the container the broker listens on every interface of the
    # container's own network; publish it on the host with care (the compose
    # file publishes 127.0.0.1 only). Several endpoints: space-separated.
    for endpoint in ${ZJQ_BIND:-tcp://0.0.0.0:5555}; do
        opt --bind "$endpoint"
    done
    opt --config "${ZJQ_CONFIG:-}"
    opt --journal "${ZJQ_JOURNAL:-}"
    opt --fsync "${ZJQ_FSYNC:-}"
    opt --fsync-interval "${ZJQ_FSYNC_INTERVAL:-}"
    opt --journal-compact-size "${ZJQ_JOURNAL_COMPACT_SIZE:-}"
    flag --journal-salvage "${ZJQ_JOURNAL_SALVAGE:-}" ZJQ_JOURNAL_SALVAGE
    opt --max-payload "${ZJQ_MAX_PAYLOAD:-}"
    opt --max-jobs "${ZJQ_MAX_JOBS:-}"
    opt --max-queues "${ZJQ_MAX_QUEUES:-}"
    opt --max-queued-bytes "${ZJQ_MAX_QUEUED_BYTES:-}"
    opt --max-result-bytes "${ZJQ_MAX_RESULT_BYTES:-}"
    opt --result-ttl "${ZJQ_RESULT_TTL:-}"
    opt --job-timeout "${ZJQ_JOB_TIMEOUT:-}"
    opt --max-attempts "${ZJQ_MAX_ATTEMPTS:-}"
    opt --curve-secret "${ZJQ_CURVE_SECRET:-}"
    opt --curve-clients "${ZJQ_CURVE_CLIENTS:-}"
    opt --curve-workers "${ZJQ_CURVE_WORKERS:-}"
    opt --curve-admins "${ZJQ_CURVE_ADMINS:-}"
    opt --metrics "${ZJQ_METRICS:-}"
    opt --log-format "${ZJQ_LOG_FORMAT:-}"
    flag --verbose "${ZJQ_VERBOSE:-}" ZJQ_VERBOSE
    eval "set -- $set_args \"\$@\""
    exec zjq-broker "$@"
    ;;
worker)
    # ZJQ_BROKER is read by zjq-worker itself. Queues: comma- or space-separated.
    for queue in $(printf '%s' "${ZJQ_QUEUES:-}" | tr ',' ' '); do
        opt --queue "$queue"
    done
    if [ -z "${ZJQ_QUEUES:-}" ] && ! printf ' %s' "$@" | grep -qE ' (-q|--queue)'; then
        echo "zjq-entrypoint: set ZJQ_QUEUES (e.g. ZJQ_QUEUES=hash) or pass --queue" >&2
        exit 2
    fi
    if [ -n "${ZJQ_EXEC:-}" ]; then
        opt --exec "$ZJQ_EXEC"
    else
        opt --builtin "${ZJQ_HANDLER:-}"
    fi
    opt --concurrency "${ZJQ_CONCURRENCY:-}"
    opt --heartbeat "${ZJQ_HEARTBEAT:-}"
    opt --grace "${ZJQ_GRACE:-}"
    opt --max-result "${ZJQ_MAX_RESULT:-}"
    opt --curve-secret "${ZJQ_CURVE_SECRET:-}"
    opt --broker-key "${ZJQ_BROKER_KEY:-}"
    opt --log-format "${ZJQ_LOG_FORMAT:-}"
    flag --verbose "${ZJQ_VERBOSE:-}" ZJQ_VERBOSE
    # The host name in `zjq stats`: the container's host name (its short id),
    # or "NAME:<container>" when ZJQ_WORKER_HOST=NAME names the machine.
    if [ -n "${ZJQ_WORKER_HOST:-}" ]; then
        ZJQ_WORKER_HOST="$ZJQ_WORKER_HOST:$(cat /proc/sys/kernel/hostname)"
        export ZJQ_WORKER_HOST
    fi
    eval "set -- $set_args \"\$@\""
    exec zjq-worker "$@"
    ;;
demo)
    # A demo client: ZJQ_DEMO_JOBS sha256 jobs of ZJQ_DEMO_ROUNDS rounds on
    # queue ZJQ_DEMO_QUEUE, through `zjq batch`; prints the summary.
    jobs=${ZJQ_DEMO_JOBS:-200}
    rounds=${ZJQ_DEMO_ROUNDS:-20000}
    queue=${ZJQ_DEMO_QUEUE:-hash}
    i=0
    while [ "$i" -lt "$jobs" ]; do
        i=$((i + 1))
        echo "$rounds:demo-$i"
    done | zjq batch "$queue" --timeout "${ZJQ_DEMO_TIMEOUT:-300}" "$@" | tail -n 5
    exit 0
    ;;
healthcheck)
    # Healthy means: the broker answers a ping (from the broker's own
    # container, on ZJQ_HEALTHCHECK_BROKER, default tcp://127.0.0.1:5555;
    # from a worker's, on its ZJQ_BROKER). With CURVE the ping needs a key the
    # broker lets ping (a client or admin key, ZJQ_HEALTHCHECK_SECRET) and the
    # broker's public key (ZJQ_BROKER_KEY); without one, only the process is
    # checked.
    case "$(running_role)" in
        broker) endpoint=${ZJQ_HEALTHCHECK_BROKER:-tcp://127.0.0.1:5555} ;;
        worker) endpoint=${ZJQ_HEALTHCHECK_BROKER:-${ZJQ_BROKER:-tcp://127.0.0.1:5555}} ;;
        *) echo "healthcheck: neither zjq-broker nor zjq-worker is running" >&2; exit 1 ;;
    esac
    if [ -n "${ZJQ_CURVE_SECRET:-}" ] || [ -n "${ZJQ_BROKER_KEY:-}" ]; then
        if [ -z "${ZJQ_HEALTHCHECK_SECRET:-}" ]; then
            echo "healthcheck: CURVE on and no ZJQ_HEALTHCHECK_SECRET: process checked only"
            exit 0
        fi
        exec env ZJQ_CURVE_SECRET="$ZJQ_HEALTHCHECK_SECRET" \
            zjq --broker "$endpoint" --request-timeout "${ZJQ_HEALTHCHECK_TIMEOUT:-5}" ping
    fi
    exec env -u ZJQ_CURVE_SECRET -u ZJQ_BROKER_KEY \
        zjq --broker "$endpoint" --request-timeout "${ZJQ_HEALTHCHECK_TIMEOUT:-5}" ping
    ;;
help|-h|--help)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    ;;
*)
    exec "$role" "$@"
    ;;
esac
