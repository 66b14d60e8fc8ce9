#!/bin/bash
#  durable.sh: what the journal's fsync policies cost, side by side in one
#  run (issue 14). Two echo workers with default flags
#  (`zjq-worker --queue echo --builtin echo`), 64-byte payloads, zjq-bench
#  on libzjq's client API; a job counts when its result is back.
#
#  usage: bench/durable.sh [--smoke] [--build DIR] [--dir DIR] [--keep]
#    --smoke      small N (seconds); every figure still produced
#    --build DIR  where zjq-broker, zjq-worker and zjq-bench are (default:
#                 build/ next to bench/)
#    --dir DIR    where the journals go: the disk to measure (default: a new
#                 directory under /var/tmp)
#    --keep       keep the scratch directory (logs, raw results)
#
#  For each configuration (no journal, then --journal with the default
#  policy, always, interval, never) against a fresh broker: window 1 (p50,
#  p99 from W1 round trips) and window 200 (jobs/s), each the median of
#  three client runs. First, the disk's own fdatasync time: a loop of 4 KiB
#  appends, each followed by fdatasync, in the journal directory (median).
#  Prints one table; the last column compares window-1 p50 with the bound
#  "p50 without a journal + 1.5 x fdatasync". Every process it starts is
#  stopped by PID; every run is bounded by its job count and --timeout.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$HERE/../build
SMOKE=0
KEEP=0
DIR=""
PYTHON=/usr/bin/python3
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) SMOKE=1 ;;
        --build) BUILD=${2:?--build needs a directory}; shift ;;
        --dir) DIR=${2:?--dir needs a directory}; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^#  \{0,1\}//'; exit 0 ;;
        *) echo "durable.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
BUILD=$(cd "$BUILD" && pwd)
for bin in zjq-broker zjq-worker zjq-bench; do
    [ -x "$BUILD/$bin" ] || { echo "durable.sh: $BUILD/$bin not found (build first)" >&2; exit 2; }
done
if [ $SMOKE = 1 ]; then
    W1=200; PIPE=2000; SYNCS=50; TIMEOUT=120
else
    W1=2000; PIPE=40000; SYNCS=500; TIMEOUT=300
fi
TMP=$(mktemp -d /tmp/zjq-durable.XXXXXX)
[ -n "$DIR" ] || DIR=$(mktemp -d /var/tmp/zjq-durable.XXXXXX)
mkdir -p "$DIR"
# shellcheck source=bench/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh"

cleanup () {
    stop_all
    if [ $KEEP = 1 ]; then
        echo "durable.sh: logs in $TMP, journals in $DIR" >&2
    else
        rm -rf "$TMP" "$DIR"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM



#  The disk's own fdatasync time, microseconds (median of SYNCS)
fsync_us () {
    $PYTHON - "$DIR/fsync.probe" "$SYNCS" <<'PY'
import os, statistics, sys, time
path, count = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
block = b"x" * 4096
times = []
for i in range(count):
    os.write(fd, block)
    t0 = time.perf_counter()
    os.fdatasync(fd)
    times.append((time.perf_counter() - t0) * 1e6)
os.close(fd)
os.unlink(path)
print("%.0f" % statistics.median(times))
PY
}

#  start_broker NAME ARGS...: a fresh broker with two default echo workers
start_broker () {
    local name=$1; shift
    rm -rf "$DIR/$name" "$TMP/ep"
    start "$name-broker" "$BUILD/zjq-broker" --bind 'tcp://127.0.0.1:*' \
        --endpoint-file "$TMP/ep" "$@"
    local tries=0
    until [ -s "$TMP/ep" ]; do
        tries=$((tries + 1))
        [ $tries -lt 200 ] || { echo "durable.sh: broker $name did not start" >&2; exit 1; }
        sleep 0.05
    done
    EP=$(head -1 "$TMP/ep")
    start "$name-w1" "$BUILD/zjq-worker" --broker "$EP" --queue echo --builtin echo
    start "$name-w2" "$BUILD/zjq-worker" --broker "$EP" --queue echo --builtin echo
}

#  field KEY LINE
field () { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

#  median3 KEY NAME JOBS WINDOW: median of KEY over three client runs
median3 () {
    local key=$1 name=$2 jobs=$3 window=$4 values="" i line
    for i in 1 2 3; do
        line=$("$BUILD/zjq-bench" --broker "$EP" --queue echo --jobs "$jobs" --window "$window" \
               --warmup 200 --timeout "$TIMEOUT" | tail -1)
        echo "$name w$window run$i: $line" >> "$TMP/results"
        [ "$(field complete "$line")" = 1 ] || { echo "durable.sh: $name run failed: $line" >&2; exit 1; }
        values="$values $(field "$key" "$line") $(field p99_us "$line")"
    done
    #  KEY values at odd positions, p99 at even: the run with the median KEY
    echo $values | $PYTHON -c '
import sys
v = [float(x) for x in sys.stdin.read().split()]
pairs = sorted(zip(v[0::2], v[1::2]))
print("%.0f %.0f" % pairs[1])'
}

SYNC_US=$(fsync_us)
echo "durable.sh: fdatasync here takes ${SYNC_US} us (median of $SYNCS)" >&2
printf '| configuration | window-1 p50 µs | window-1 p99 µs | window 200 jobs/s | p50 bound µs |\n'
printf '|---|---:|---:|---:|---:|\n'
BASE_P50=""
for config in none default always interval never; do
    case $config in
        none)    start_broker $config ;;
        default) start_broker $config --journal "$DIR/$config" ;;
        *)       start_broker $config --journal "$DIR/$config" --fsync $config ;;
    esac
    read -r P50 P99 <<< "$(median3 p50_us $config $W1 1)"
    read -r RATE _ <<< "$(median3 jobs_per_s $config $PIPE 200)"
    stop_all
    if [ $config = none ]; then
        BASE_P50=$P50
        BOUND="(base)"
    else
        BOUND=$($PYTHON -c "b=$BASE_P50+1.5*$SYNC_US; print('%.0f %s' % (b, 'ok' if $P50 <= b else 'OVER'))")
    fi
    case $config in
        none) label="no journal" ;;
        default) label="--journal (default policy)" ;;
        *) label="--journal --fsync $config" ;;
    esac
    printf '| %s | %s | %s | %s | %s |\n' "$label" "$P50" "$P99" "$RATE" "$BOUND"
done
printf '\nfdatasync of a 4 KiB append here: %s µs (median of %s); %s cores, load %s\n' \
    "$SYNC_US" "$SYNCS" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
