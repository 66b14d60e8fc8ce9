#!/bin/sh
#  journal_bench.sh: submit throughput with the journal off and with each
#  fsync policy, same client and load, side by side.
#
#  usage: bench/journal_bench.sh [BUILD_DIR] [JOBS] [DIR]
#    BUILD_DIR  where zjq-broker, zjq-worker and zjq are (default: build)
#    JOBS       jobs per run (default 20000)
#    DIR        where the journals go; put it on the disk you want to measure
#               (default: a new directory under /var/tmp)
#
#  Two loads per configuration, each against a fresh broker on 127.0.0.1:
#    submit  a pipelined client (python3-zmq, 1000 in flight) submits JOBS
#            100-byte jobs and counts ACCEPTED replies; no worker
#    batch   `zjq batch` runs JOBS echo jobs through one zjq-worker
#            (concurrency 32) with --window 1000, until every result is back
set -eu
BUILD=${1:-build}
JOBS=${2:-20000}
DIR=${3:-$(mktemp -d /var/tmp/zjq-bench.XXXXXX)}
PYTHON=/usr/bin/python3
mkdir -p "$DIR"
BROKER_PID=""
WORKER_PID=""
cleanup () {
    [ -n "$WORKER_PID" ] && kill "$WORKER_PID" 2>/dev/null && wait "$WORKER_PID" 2>/dev/null || true
    [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null && wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""; WORKER_PID=""
}
trap cleanup EXIT INT TERM

now () { date +%s.%N; }

#  start_broker NAME [ARGS...]: sets ENDPOINT and BROKER_PID
start_broker () {
    name=$1; shift
    rm -rf "$DIR/$name" "$DIR/endpoint"
    "$BUILD/zjq-broker" --bind 'tcp://127.0.0.1:*' --endpoint-file "$DIR/endpoint" "$@" \
        > "$DIR/$name.log" 2>&1 &
    BROKER_PID=$!
    tries=0
    until [ -s "$DIR/endpoint" ]; do
        tries=$((tries + 1))
        [ $tries -lt 100 ] || { echo "broker did not start: see $DIR/$name.log" >&2; exit 1; }
        sleep 0.1
    done
    ENDPOINT=$(head -1 "$DIR/endpoint")
}

submit_load () {
    $PYTHON - "$1" "$JOBS" <<'PY'
import sys, time, zmq, msgpack
endpoint, jobs = sys.argv[1], int(sys.argv[2])
sock = zmq.Context().socket(zmq.DEALER)
sock.setsockopt(zmq.LINGER, 0)
sock.connect(endpoint)
head = b"ZJQ\x01C\x01"
sent = done = 0
start = time.monotonic()
while done < jobs:
    while sent < jobs and sent - done < 1000:
        sock.send_multipart([head, msgpack.packb({"req": sent, "queue": "bench"}), b"x" * 100])
        sent += 1
    if not sock.poll(30000):
        sys.exit("no reply from the broker")
    frames = sock.recv_multipart()
    if frames[0][5] != 0x41:
        sys.exit("not accepted: %r" % msgpack.unpackb(frames[1]))
    done += 1
print("%.0f" % (jobs / (time.monotonic() - start)))
PY
}

#  Start the echo worker here, in the script's own shell (not inside the
#  $(...) of the measurement), so cleanup knows its pid and stops it.
start_worker () {
    "$BUILD/zjq-worker" --broker "$ENDPOINT" --queue echo --builtin echo --concurrency 32 \
        > "$DIR/worker.log" 2>&1 &
    WORKER_PID=$!
}

batch_load () {
    seq 1 "$JOBS" > "$DIR/payloads"
    start=$(now)
    "$BUILD/zjq" --broker "$ENDPOINT" batch echo --file "$DIR/payloads" --window 1000 \
        --timeout 600 > /dev/null 2>&1
    end=$(now)
    echo "$start $end $JOBS" | awk '{ printf "%.0f\n", $3 / ($2 - $1) }'
}

printf "jobs per run: %s; journals in %s (%s)\n" "$JOBS" "$DIR" \
    "$(df -T "$DIR" | awk 'NR == 2 { print $2 " on " $1 }')"
printf "%-28s %14s %14s\n" "configuration" "submit/s" "batch/s"
for config in none never interval always; do
    case $config in
        none)     args="";                                  label="no journal (memory only)" ;;
        never)    args="--journal $DIR/j --fsync never";    label="--fsync never" ;;
        interval) args="--journal $DIR/j --fsync interval"; label="--fsync interval (5 ms)" ;;
        always)   args="--journal $DIR/j --fsync always";   label="--fsync always" ;;
    esac
    # shellcheck disable=SC2086
    start_broker "$config" $args
    submit=$(submit_load "$ENDPOINT")
    cleanup
    rm -rf "$DIR/j"
    # shellcheck disable=SC2086
    start_broker "$config" $args
    start_worker
    batch=$(batch_load)
    cleanup
    rm -rf "$DIR/j"
    printf "%-28s %14s %14s\n" "$label" "$submit" "$batch"
done
