#!/bin/bash
#  peers.sh: zjq beside other job queues on the same definitions (issue 14),
#  with the raw libzmq relay as the yardstick. Prints one table.
#
#  usage: bench/peers.sh [--smoke] [--build DIR] [--rows LIST] [--no-install] [--keep]
#    --smoke       small counts (about a minute); every figure still produced
#    --build DIR   where zjq-broker, zjq-worker, zjq-bench, zjq-relay are
#                  (default: build/ next to bench/)
#    --rows LIST   only these rows (comma-separated: zjq,relay,gearman,
#                  beanstalk,celery,mp; default all)
#    --no-install  do not apt-get install missing peers (their rows say so)
#    --keep        keep the scratch directory (logs, raw results)
#
#  Rows: zjq with default flags (zjq-broker; two `zjq-worker --queue echo
#  --builtin echo`), the raw relay (zjq-relay, two --echo workers),
#  gearmand -t 1 and beanstalkd (C clients and workers on their raw
#  protocols: bench/peer_raw.c), Celery with Redis (two `celery worker -P
#  solo`) and multiprocessing.Pool(2) (bench/peer_py.py), all from Debian
#  packages (installed here if missing), all on 127.0.0.1.
#  Definitions, the same for every row: two separately started echo
#  workers (the Pool starts its own two); 64-byte payloads checked byte for
#  byte; a job counts when its result is back at the client; jobs/s at
#  window 1 and window 200 (closed loop); window-1 p50/p99 from W1 round
#  trips; each figure the median of three client runs. Memory: a fresh
#  server, no workers, MEM 100-byte jobs queued; (RSS after - RSS before)
#  / jobs of the server process (Redis for Celery; the pool's process, its
#  workers stopped, for the Pool), payload included.
#  Every process it starts is stopped by PID; every run is bounded by its
#  job count and a timeout.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$HERE/../build
SMOKE=0
KEEP=0
INSTALL=1
WANT=",zjq,relay,gearman,beanstalk,celery,mp,"
PY=/usr/bin/python3
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) SMOKE=1 ;;
        --build) BUILD=${2:?--build needs a directory}; shift ;;
        --rows) WANT=",${2:?--rows needs a list},"; shift ;;
        --no-install) INSTALL=0 ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,30p' "$0" | sed 's/^#  \{0,1\}//'; exit 0 ;;
        *) echo "peers.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
BUILD=$(cd "$BUILD" && pwd)
for bin in zjq-broker zjq-worker zjq-bench zjq-relay; do
    [ -x "$BUILD/$bin" ] || { echo "peers.sh: $BUILD/$bin not found (build first)" >&2; exit 2; }
done
if [ $SMOKE = 1 ]; then
    W1=200; MEM=5000; MEM_CELERY=500; TIMEOUT=120
    declare -A PIPE=([zjq]=3000 [relay]=5000 [gearman]=3000 [beanstalk]=3000 [celery]=300 [mp]=1000)
else
    W1=2000; MEM=200000; MEM_CELERY=10000; TIMEOUT=300
    declare -A PIPE=([zjq]=30000 [relay]=200000 [gearman]=30000 [beanstalk]=30000 [celery]=2000
                     [mp]=20000)
fi
W1_CELERY=$W1
[ $SMOKE = 1 ] || W1_CELERY=1000

#  --- the peers, from Debian packages
PACKAGES="gearman-job-server beanstalkd redis-server python3-celery python3-redis"
missing=""
for package in $PACKAGES; do
    dpkg -s "$package" > /dev/null 2>&1 || missing="$missing $package"
done
if [ -n "$missing" ] && [ $INSTALL = 1 ]; then
    echo "peers.sh: installing$missing" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >&2 \
        || echo "peers.sh: apt-get install failed; those rows are skipped" >&2
fi
have () { command -v "$1" > /dev/null 2>&1; }

TMP=$(mktemp -d /tmp/zjq-peers.XXXXXX)
# shellcheck source=bench/procs.sh
. "$(dirname "${BASH_SOURCE[0]}")/procs.sh"
cleanup () {
    stop_all
    if [ $KEEP = 1 ]; then echo "peers.sh: logs in $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM



free_port () { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb () { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
field () { echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

#  wait_port PORT: until something listens there (10 s)
wait_port () {
    local tries=0
    until $PY -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; do
        tries=$((tries + 1))
        [ $tries -lt 100 ] || { echo "peers.sh: nothing listens on port $1" >&2; return 1; }
        sleep 0.1
    done
}

#  --- one row: CLIENT is a command that takes JOBS WINDOW and prints the
#  zjq-bench keys; three runs at window 1, three at window 200
measure () {
    local name=$1 w1=$2 pipe=$3; shift 3
    local run line rates1="" p50s="" p99s="" rates200=""
    for run in 1 2 3; do
        line=$("$@" "$w1" 1 | tail -1) || true
        echo "$name w1 run$run: $line" >> "$TMP/results"
        [ "$(field complete "$line")" = 1 ] || { echo "peers.sh: $name window-1 run failed: $line" >&2; return 1; }
        rates1="$rates1 $(field jobs_per_s "$line")"
        p50s="$p50s $(field p50_us "$line")"
        p99s="$p99s $(field p99_us "$line")"
    done
    for run in 1 2 3; do
        line=$("$@" "$pipe" 200 | tail -1) || true
        echo "$name w200 run$run: $line" >> "$TMP/results"
        [ "$(field complete "$line")" = 1 ] || { echo "peers.sh: $name window-200 run failed: $line" >&2; return 1; }
        rates200="$rates200 $(field jobs_per_s "$line")"
    done
    ROW="$(median $rates1) $(median $rates200) $(median $p50s) $(median $p99s)"
}

median () { echo "$@" | $PY -c 'import sys, statistics; print("%.0f" % statistics.median(float(x) for x in sys.stdin.read().split()))'; }

declare -A ROWS MEMS
ORDER="zjq relay gearman beanstalk celery mp"

#  zjq, default flags
zjq_client () { "$BUILD/zjq-bench" --broker "$EP" --queue echo --jobs "$1" --window "$2" --warmup 200 --timeout "$TIMEOUT"; }
zjq_broker () {
    rm -f "$TMP/ep"
    start zjq-broker "$BUILD/zjq-broker" --bind 'tcp://127.0.0.1:*' --endpoint-file "$TMP/ep"
    BROKER=$PID
    local tries=0
    until [ -s "$TMP/ep" ]; do
        tries=$((tries + 1)); [ $tries -lt 200 ] || return 1; sleep 0.05
    done
    EP=$(head -1 "$TMP/ep")
}
row_zjq () {
    zjq_broker
    start zjq-w1 "$BUILD/zjq-worker" --broker "$EP" --queue echo --builtin echo
    start zjq-w2 "$BUILD/zjq-worker" --broker "$EP" --queue echo --builtin echo
    measure zjq $W1 ${PIPE[zjq]} zjq_client && ROWS[zjq]=$ROW
    stop_all
    zjq_broker
    local line
    line=$("$BUILD/zjq-bench" --broker "$EP" --queue mem --jobs $MEM --window 1000 --size 100 \
           --submit-only --warmup 0 --broker-pid "$BROKER" --timeout "$TIMEOUT" | tail -1)
    echo "zjq mem: $line" >> "$TMP/results"
    MEMS[zjq]=$(field broker_rss_delta_bytes_per_job "$line" | cut -d. -f1)
    stop_all
}

relay_client () { "$BUILD/zjq-bench" --relay --broker "$RELAY_EP" --jobs "$1" --window "$2" --warmup 200 --timeout "$TIMEOUT"; }
row_relay () {
    rm -f "$TMP/rep"
    start relay "$BUILD/zjq-relay" --frontend 'tcp://127.0.0.1:*' --backend 'tcp://127.0.0.1:*' \
        --endpoint-file "$TMP/rep"
    local tries=0
    until [ -s "$TMP/rep" ] && [ "$(wc -l < "$TMP/rep")" -ge 2 ]; do
        tries=$((tries + 1)); [ $tries -lt 200 ] || return 1; sleep 0.05
    done
    RELAY_EP=$(sed -n 1p "$TMP/rep")
    start relay-w1 "$BUILD/zjq-relay" --echo "$(sed -n 2p "$TMP/rep")"
    start relay-w2 "$BUILD/zjq-relay" --echo "$(sed -n 2p "$TMP/rep")"
    sleep 0.3
    measure relay $W1 ${PIPE[relay]} relay_client && ROWS[relay]=$ROW
    MEMS[relay]="—"
    stop_all
}

#  gearmand and beanstalkd: C clients on their raw protocols
cc -O2 -o "$TMP/peer_raw" "$HERE/peer_raw.c"
raw_client () { "$TMP/peer_raw" "$RAW" client 127.0.0.1 "$PORT" "$1" "$2" "$TIMEOUT"; }
raw_server () {
    PORT=$(free_port)
    if [ "$RAW" = gearman ]; then
        start gearmand gearmand -t 1 -L 127.0.0.1 -p "$PORT" -l "$TMP/gearmand.log" -P "$TMP/gearmand.pid"
    else
        start beanstalkd beanstalkd -l 127.0.0.1 -p "$PORT"
    fi
    SERVER=$PID
    wait_port "$PORT"
}
row_raw () {
    RAW=$1
    raw_server
    start "$RAW-w1" "$TMP/peer_raw" "$RAW" worker 127.0.0.1 "$PORT"
    start "$RAW-w2" "$TMP/peer_raw" "$RAW" worker 127.0.0.1 "$PORT"
    sleep 0.3
    measure "$RAW" $W1 ${PIPE[$RAW]} raw_client && ROWS[$RAW]=$ROW
    stop_all
    raw_server
    local before after
    before=$(rss_kb "$SERVER")
    timeout "$TIMEOUT" "$TMP/peer_raw" "$RAW" fill 127.0.0.1 "$PORT" $MEM >> "$TMP/results"
    after=$(rss_kb "$SERVER")
    MEMS[$RAW]=$(( (after - before) * 1024 / MEM ))
    stop_all
}

#  Celery with Redis
celery_client () { PEER_REDIS_PORT=$PORT $PY "$HERE/peer_py.py" celery client "$1" "$2"; }
redis_server () {
    PORT=$(free_port)
    start redis redis-server --port "$PORT" --bind 127.0.0.1 --save '' --appendonly no
    SERVER=$PID
    wait_port "$PORT"
}
row_celery () {
    redis_server
    local worker
    for worker in 1 2; do
        (cd "$HERE" && PEER_REDIS_PORT=$PORT exec $PY -m celery -A peer_py worker -P solo -c 1 \
            -n "w$worker@%h" --without-gossip --without-mingle --without-heartbeat \
            --loglevel=WARNING) > "$TMP/celery-w$worker.log" 2>&1 &
        PIDS="$! $PIDS"
    done
    sleep 5
    measure celery $W1_CELERY ${PIPE[celery]} celery_client && ROWS[celery]=$ROW
    stop_all
    redis_server
    local before after
    before=$(rss_kb "$SERVER")
    (cd "$HERE" && PEER_REDIS_PORT=$PORT timeout "$TIMEOUT" $PY peer_py.py celery fill $MEM_CELERY) >> "$TMP/results"
    after=$(rss_kb "$SERVER")
    MEMS[celery]=$(( (after - before) * 1024 / MEM_CELERY ))
    stop_all
}

mp_client () { $PY "$HERE/peer_py.py" mp client "$1" "$2"; }
row_mp () {
    measure mp $W1 ${PIPE[mp]} mp_client && ROWS[mp]=$ROW
    local line
    line=$(timeout "$TIMEOUT" $PY "$HERE/peer_py.py" mp fill $MEM | tail -1)
    echo "mp mem: $line" >> "$TMP/results"
    MEMS[mp]=$(( ($(field rss_after_kb "$line") - $(field rss_before_kb "$line")) * 1024 / MEM ))
}

wanted () { case $WANT in *,$1,*) return 0 ;; esac; return 1; }
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
if wanted zjq; then row_zjq || echo "peers.sh: zjq row failed" >&2; fi
stop_all
if wanted relay; then row_relay || echo "peers.sh: relay row failed" >&2; fi
stop_all
if wanted gearman && have gearmand; then row_raw gearman || echo "peers.sh: gearman row failed" >&2; fi
stop_all
if wanted beanstalk && have beanstalkd; then row_raw beanstalk || echo "peers.sh: beanstalk row failed" >&2; fi
stop_all
if wanted celery && have redis-server && $PY -c 'import celery, redis' 2>/dev/null; then
    row_celery || echo "peers.sh: celery row failed" >&2
fi
stop_all
if wanted mp; then row_mp || echo "peers.sh: mp row failed" >&2; fi

declare -A LABEL=([zjq]="zjq, default flags" [relay]="raw libzmq relay (zjq-relay)"
                  [gearman]="gearmand -t 1" [beanstalk]="beanstalkd"
                  [celery]="Celery + Redis (-P solo)" [mp]="multiprocessing.Pool(2)")
printf '| %s | jobs/s, window 1 | jobs/s, window 200 | p50 µs, window 1 | p99 µs, window 1 | RSS per queued 100 B job |\n' \
    "$(date -u +%Y-%m-%d), $(nproc) cores"
printf '|---|---:|---:|---:|---:|---:|\n'
status=0
for name in $ORDER; do
    wanted "$name" || continue
    if [ -z "${ROWS[$name]:-}" ]; then
        printf '| %s | not measured | | | | |\n' "${LABEL[$name]}"
        [ "$name" = zjq ] && status=1
        continue
    fi
    read -r rate1 rate200 p50 p99 <<< "${ROWS[$name]}"
    mem=${MEMS[$name]:-—}
    [ "$mem" = "—" ] || mem="$mem B"
    printf '| %s | %s | %s | %s | %s | %s |\n' "${LABEL[$name]}" "$rate1" "$rate200" "$p50" "$p99" "$mem"
done
printf '\n%s; %s; load %s at the start, %s at the end. Window 1: %s round trips (Celery %s); window 200: %s jobs (zjq), %s (relay), %s (gearmand, beanstalkd), %s (Celery), %s (Pool). Memory: %s jobs (Celery %s).\n' \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
    "$(uname -sr)" "$LOAD_START" "$(cut -d' ' -f1-3 /proc/loadavg)" "$W1" "$W1_CELERY" \
    "${PIPE[zjq]}" "${PIPE[relay]}" "${PIPE[gearman]}" "${PIPE[celery]}" "${PIPE[mp]}" "$MEM" "$MEM_CELERY"
exit $status
