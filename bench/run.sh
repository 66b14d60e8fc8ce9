#!/bin/bash
#  run.sh: the zjq benchmark suite (issue 6). Starts everything it needs on
#  127.0.0.1 (zjq-relay and its echo workers, zjq-broker, zjq-worker), runs
#  every measurement with zjq-bench, prints ONE table, and stops what it
#  started (by PID). See bench/README.md for what each number means.
#
#  usage: bench/run.sh [--smoke] [--build DIR] [--concurrency C] [--prefetch P] [--keep]
#                      [--defaults-only]
#    --smoke          small N, every figure still produced; checks that the
#                     table is complete (ctest: bench_smoke). No speed asserted.
#    --build DIR      where zjq-broker, zjq-worker, zjq, zjq-bench, zjq-relay are
#                     (default: build/ next to bench/)
#    --concurrency C  echo zjq-workers run handler threads (C of them) instead
#                     of --inline (the default: handlers on the connection
#                     thread, the setting for jobs of microseconds)
#    --prefetch P     prefetch of each echo zjq-worker (default 512)
#    --keep           keep the scratch directory (logs, raw results)
#    --defaults-only  only the relay with 2 echo workers and zjq with two
#                     default workers (no tuning flags) at windows 1, 200
#                     and 1000: the issue-14 rows and their ratios, quickly
#
#  Exit status: 0 if every measurement produced its figures, 1 if not, 2 on
#  a usage error.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$HERE/../build
SMOKE=0
CONCURRENCY=0               # 0: --inline
PREFETCH=512
KEEP=0
DEFAULTS_ONLY=0
PYTHON=/usr/bin/python3
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) SMOKE=1 ;;
        --build) BUILD=${2:?--build needs a directory}; shift ;;
        --concurrency) CONCURRENCY=${2:?--concurrency needs a number}; shift ;;
        --prefetch) PREFETCH=${2:?--prefetch needs a number}; shift ;;
        --keep) KEEP=1 ;;
        --defaults-only) DEFAULTS_ONLY=1 ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^#  \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
BUILD=$(cd "$BUILD" && pwd)
for bin in zjq-broker zjq-worker zjq zjq-bench zjq-relay; do
    [ -x "$BUILD/$bin" ] || { echo "run.sh: $BUILD/$bin not found (build first)" >&2; exit 2; }
done

#  Sizes of the runs. Full: what the table is for; smoke: seconds, not minutes.
if [ $SMOKE = 1 ]; then
    JOBS_W1=200            # window-1 runs (zjq and relay)
    JOBS_PIPE=3000         # window-1000 zjq runs
    JOBS_RELAY_PIPE=5000   # window-1000 relay runs (the relay is much faster)
    WARMUP=100
    LAT_SECONDS=0.5        # per offered rate
    LAT_MAX_JOBS=3000
    MEM_JOBS=5000
    SHA_MS=2               # target duration of one sha256 job
    SHA_JOBS=10            # per worker
    TIMEOUT=120            # bound on every single zjq-bench run, seconds
    DRAIN_TIMEOUT=120
else
    JOBS_W1=10000
    JOBS_PIPE=200000
    JOBS_RELAY_PIPE=1000000
    WARMUP=2000
    LAT_SECONDS=5
    LAT_MAX_JOBS=500000
    MEM_JOBS=1000000
    SHA_MS=20
    SHA_JOBS=100
    TIMEOUT=600
    DRAIN_TIMEOUT=900
fi
SIZE=64                    # null-job payload
MEM_SIZE=100               # memory-test payload
MEM_TTL_MS=1000            # memory-test results expire quickly, so "drained" means empty
WINDOW=1000

#  How the echo workers run their handler (null jobs and the memory drain)
if [ "$CONCURRENCY" = 0 ]; then
    ECHO_ARGS="--inline --prefetch $PREFETCH"
else
    ECHO_ARGS="--concurrency $CONCURRENCY --prefetch $PREFETCH"
fi

TMP=$(mktemp -d /tmp/zjq-bench.XXXXXX)
RESULTS=$TMP/results
: > "$RESULTS"

#  --- process management: everything started here is stopped here, by PID
# shellcheck source=bench/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh"

cleanup () {
    stop_all
    if [ $KEEP = 1 ]; then
        echo "run.sh: logs and raw results in $TMP" >&2
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM


#  stop PID: SIGTERM, wait for it to exit (a zjq-worker drains first)
stop () {
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    local rest=""
    for pid in $PIDS; do
        [ "$pid" = "$1" ] || rest="$rest $pid"
    done
    PIDS=$rest
}

#  wait_file FILE: until it exists and is not empty (10 s)
wait_file () {
    local tries=0
    until [ -s "$1" ]; do
        tries=$((tries + 1))
        [ $tries -lt 200 ] || { echo "run.sh: $1 did not appear" >&2; exit 1; }
        sleep 0.05
    done
}

note () { echo "run.sh: $*" >&2; }

#  bench NAME ARGS...: one zjq-bench run; its last line goes to the results
bench () {
    local name=$1; shift
    note "$name"
    if timeout $((TIMEOUT + 30)) "$BUILD/zjq-bench" --timeout "$TIMEOUT" "$@" \
            > "$TMP/$name.out" 2> "$TMP/$name.err"; then
        echo "$name $(tail -n 1 "$TMP/$name.out")" >> "$RESULTS"
    else
        note "$name failed:"
        cat "$TMP/$name.out" "$TMP/$name.err" >&2
        echo "$name failed=1 $(tail -n 1 "$TMP/$name.out" 2>/dev/null)" >> "$RESULTS"
    fi
}

#  field NAME KEY: a value from a recorded result line
field () {
    awk -v name="$1" -v key="$2" '$1 == name {
        for (i = 2; i <= NF; i++) { split ($i, kv, "="); if (kv[1] == key) print kv[2] } }' \
        "$RESULTS" | tail -n 1
}

meta () { echo "meta $*" >> "$RESULTS"; }

#  stats_field EP EXPR: evaluate a python expression on the broker's stats
stats_field () {
    "$BUILD/zjq" --broker "$1" --request-timeout 5 stats --json 2>/dev/null \
        | $PYTHON -c "import json, sys; s = json.load(sys.stdin); print($2)" 2>/dev/null || true
}

#  wait_until EP EXPR SECONDS: until the python expression on stats is True
wait_until () {
    local deadline=$(( $(date +%s) + $3 ))
    until [ "$(stats_field "$1" "$2")" = "True" ]; do
        [ "$(date +%s)" -lt $deadline ] || { note "timed out waiting for: $2"; return 1; }
        sleep 0.2
    done
}

rss_kb () { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

#  start_broker NAME: sets BROKER_PID and BROKER_EP
start_broker () {
    start "$1" "$BUILD/zjq-broker" --bind 'tcp://127.0.0.1:*' --endpoint-file "$TMP/$1.ep"
    BROKER_PID=$PID
    wait_file "$TMP/$1.ep"
    BROKER_EP=$(head -n 1 "$TMP/$1.ep")
}

meta "cores=$(nproc) cpu=$(awk -F': ' '/model name/ { gsub (/ /, "_", $2); print $2; exit }' \
      /proc/cpuinfo) load_start=$(cut -d' ' -f1 /proc/loadavg) smoke=$SMOKE" \
     "size=$SIZE window=$WINDOW echo_worker=${ECHO_ARGS// /_} jobs_w1=$JOBS_W1" \
     "jobs_pipe=$JOBS_PIPE jobs_relay_pipe=$JOBS_RELAY_PIPE mem_jobs=$MEM_JOBS mem_size=$MEM_SIZE" \
     "libzmq=$(pkg-config --modversion libzmq 2>/dev/null || echo unknown)"

#  --- 1. the yardstick: zjq-relay with 1 and 2 echo workers
start relay "$BUILD/zjq-relay" --frontend 'tcp://127.0.0.1:*' --backend 'tcp://127.0.0.1:*' \
    --endpoint-file "$TMP/relay.ep"
RELAY_PID=$PID
wait_file "$TMP/relay.ep"
RELAY_FRONT=$(sed -n 1p "$TMP/relay.ep")
RELAY_BACK=$(sed -n 2p "$TMP/relay.ep")
start echo1 "$BUILD/zjq-relay" --echo "$RELAY_BACK"
ECHO1=$PID
sleep 0.3                   # a DEALER connects in the background
if [ $DEFAULTS_ONLY = 0 ]; then
    bench relay_1w_w1 --relay --broker "$RELAY_FRONT" --jobs $JOBS_W1 --window 1 --size $SIZE \
        --warmup $WARMUP --broker-pid $RELAY_PID
    bench relay_1w_w1000 --relay --broker "$RELAY_FRONT" --jobs $JOBS_RELAY_PIPE --window $WINDOW \
        --size $SIZE --warmup $WARMUP --broker-pid $RELAY_PID
fi
start echo2 "$BUILD/zjq-relay" --echo "$RELAY_BACK"
ECHO2=$PID
sleep 0.3
bench relay_2w_w1 --relay --broker "$RELAY_FRONT" --jobs $JOBS_W1 --window 1 --size $SIZE \
    --warmup $WARMUP --broker-pid $RELAY_PID
bench relay_2w_w1000 --relay --broker "$RELAY_FRONT" --jobs $JOBS_RELAY_PIPE --window $WINDOW \
    --size $SIZE --warmup $WARMUP --broker-pid $RELAY_PID
bench relay_2w_w200 --relay --broker "$RELAY_FRONT" --jobs $JOBS_RELAY_PIPE --window 200 \
    --size $SIZE --warmup $WARMUP --broker-pid $RELAY_PID
stop $ECHO2; stop $ECHO1; stop $RELAY_PID

#  --- 1b. zjq as shipped: two workers started with no tuning flags (the
#  README's command line), windows 1, 200 and 1000 (issue 14's rows)
start_broker dbroker
start dworker1 "$BUILD/zjq-worker" --broker "$BROKER_EP" --queue echo --builtin echo
DWORKER1=$PID
start dworker2 "$BUILD/zjq-worker" --broker "$BROKER_EP" --queue echo --builtin echo
DWORKER2=$PID
wait_until "$BROKER_EP" "s['broker']['workers'] == 2" 30
for window in 1 200 $WINDOW; do
    jobs=$JOBS_PIPE; [ $window = 1 ] && jobs=$JOBS_W1
    bench zjq_def_2w_w$window --broker "$BROKER_EP" --queue echo --jobs $jobs --window $window \
        --size $SIZE --warmup $WARMUP --broker-pid $BROKER_PID
done
stop $DWORKER2; stop $DWORKER1; stop $BROKER_PID

if [ $DEFAULTS_ONLY = 0 ]; then
#  --- 2. zjq null jobs: throughput, broker CPU per job, then latency
start_broker broker
WORKER1=""; WORKER2=""
start worker1 "$BUILD/zjq-worker" --broker "$BROKER_EP" --queue echo --builtin echo \
    $ECHO_ARGS
WORKER1=$PID
wait_until "$BROKER_EP" "s['broker']['workers'] == 1" 30
for window in 1 $WINDOW; do
    jobs=$JOBS_PIPE; [ $window = 1 ] && jobs=$JOBS_W1
    bench zjq_1w_w$window --broker "$BROKER_EP" --queue echo --jobs $jobs --window $window \
        --size $SIZE --warmup $WARMUP --broker-pid $BROKER_PID
done
start worker2 "$BUILD/zjq-worker" --broker "$BROKER_EP" --queue echo --builtin echo \
    $ECHO_ARGS
WORKER2=$PID
wait_until "$BROKER_EP" "s['broker']['workers'] == 2" 30
for window in 1 $WINDOW; do
    jobs=$JOBS_PIPE; [ $window = 1 ] && jobs=$JOBS_W1
    bench zjq_2w_w$window --broker "$BROKER_EP" --queue echo --jobs $jobs --window $window \
        --size $SIZE --warmup $WARMUP --broker-pid $BROKER_PID
done

#  Latency at 10%, 50%, 80% of the measured maximum, with the worker count
#  that reached it (open loop, from the intended send time)
MAX1=$(field zjq_1w_w$WINDOW jobs_per_s); MAX2=$(field zjq_2w_w$WINDOW jobs_per_s)
MAX1=${MAX1:-0}; MAX2=${MAX2:-0}
if awk "BEGIN { exit !($MAX1 > $MAX2) }"; then
    MAX=$MAX1; LAT_WORKERS=1
    stop "$WORKER2"; WORKER2=""
    wait_until "$BROKER_EP" "s['broker']['workers'] == 1" 30
else
    MAX=$MAX2; LAT_WORKERS=2
fi
meta "lat_max=$MAX lat_workers=$LAT_WORKERS"
for pct in 10 50 80; do
    rate=$(awk "BEGIN { r = $MAX * $pct / 100; if (r < 1) r = 1; printf \"%.0f\", r }")
    jobs=$(awk "BEGIN { n = $rate * $LAT_SECONDS; if (n > $LAT_MAX_JOBS) n = $LAT_MAX_JOBS;
                        if (n < 100) n = 100; printf \"%d\", n }")
    bench zjq_lat_$pct --broker "$BROKER_EP" --queue echo --jobs "$jobs" --rate "$rate" \
        --window 1000000 --size $SIZE --warmup $WARMUP --broker-pid $BROKER_PID
done
[ -z "$WORKER2" ] || stop "$WORKER2"
stop "$WORKER1"

#  --- 3. CPU-bound scaling: sha256 jobs of SHA_MS ms, 1 then 2 workers
"$BUILD/zjq-bench" --calibrate-sha256 $SHA_MS > "$TMP/calibrate.out"
ROUNDS=$(sed -n 's/^rounds=\([0-9]*\).*/\1/p' "$TMP/calibrate.out" | tail -n 1)
ROUNDS=${ROUNDS:-1}
meta "sha256_ms=$SHA_MS sha256_rounds=$ROUNDS"
start sha1 "$BUILD/zjq-worker" --broker "$BROKER_EP" --queue sha256 --builtin sha256 --concurrency 1
SHA1=$PID
wait_until "$BROKER_EP" "s['broker']['workers'] == 1" 30
bench sha256_1w --broker "$BROKER_EP" --queue sha256 --jobs $SHA_JOBS --window 8 \
    --sha256-rounds "$ROUNDS" --warmup 2 --size $SIZE
start sha2 "$BUILD/zjq-worker" --broker "$BROKER_EP" --queue sha256 --builtin sha256 --concurrency 1
SHA2=$PID
wait_until "$BROKER_EP" "s['broker']['workers'] == 2" 30
bench sha256_2w --broker "$BROKER_EP" --queue sha256 --jobs $((SHA_JOBS * 2)) --window 8 \
    --sha256-rounds "$ROUNDS" --warmup 2 --size $SIZE
stop $SHA2; stop $SHA1
stop $BROKER_PID

#  --- 4. memory per queued job: a fresh broker, no worker, MEM_JOBS jobs
start_broker membroker
meta "mem_rss_idle_kb=$(rss_kb $BROKER_PID)"
bench mem_submit --broker "$BROKER_EP" --queue mem --jobs $MEM_JOBS --window $WINDOW \
    --size $MEM_SIZE --submit-only --warmup 0 --result-ttl $MEM_TTL_MS --broker-pid $BROKER_PID
meta "mem_rss_full_kb=$(rss_kb $BROKER_PID)"
#  Drain: two echo workers take every job; the results expire after MEM_TTL_MS
start drain1 "$BUILD/zjq-worker" --broker "$BROKER_EP" --queue mem --builtin echo \
    $ECHO_ARGS
DRAIN1=$PID
start drain2 "$BUILD/zjq-worker" --broker "$BROKER_EP" --queue mem --builtin echo \
    $ECHO_ARGS
DRAIN2=$PID
DRAIN_START=$(date +%s.%N)
if wait_until "$BROKER_EP" "s['broker']['queued'] == 0 and s['broker']['running'] == 0" \
        $DRAIN_TIMEOUT \
   && wait_until "$BROKER_EP" "s['broker']['results'] == 0 and s['broker']['jobs'] == 0" 60; then
    meta "mem_drain_seconds=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $DRAIN_START }")"
    sleep 1                 # let the broker finish its turn
    meta "mem_rss_drained_kb=$(rss_kb $BROKER_PID)"
fi
stop $DRAIN2; stop $DRAIN1
meta "mem_rss_after_workers_kb=$(rss_kb $BROKER_PID)"
stop $BROKER_PID
fi   # DEFAULTS_ONLY

meta "load_end=$(cut -d' ' -f1 /proc/loadavg)"
args=""
[ $SMOKE = 1 ] && args="--smoke"
[ $DEFAULTS_ONLY = 1 ] && args="$args --defaults-only"
STATUS=0
# shellcheck disable=SC2086
$PYTHON "$HERE/table.py" $args "$RESULTS" || STATUS=1
#  A sanitizer build (-DZJQ_SANITIZE=ON) reports into the logs of the
#  processes stopped above: any report fails the run
if grep -lE 'ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:' \
        "$TMP"/*.log "$TMP"/*.err > "$TMP/sanitizer" 2>/dev/null; then
    echo "sanitizer reports in: $(tr '\n' ' ' < "$TMP/sanitizer")"
    STATUS=1
fi
exit $STATUS
