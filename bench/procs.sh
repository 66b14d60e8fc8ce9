# bench/procs.sh: process bookkeeping shared by the bench scripts (sourced).
# Everything a script starts is stopped by it, by PID, and nothing else.
# The sourcing script sets TMP (where the logs go) before calling start.

PIDS=""

#  start NAME COMMAND...: run in the background, log to $TMP/NAME.log; sets PID
start () {
    local name=$1; shift
    "$@" > "$TMP/$name.log" 2>&1 &
    PID=$!
    PIDS="$PID $PIDS"
}

#  stop_all: SIGTERM to everything started, SIGKILL after 10 s
stop_all () {
    local pid tries
    for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
    for pid in $PIDS; do
        tries=0
        while kill -0 "$pid" 2>/dev/null && [ $tries -lt 100 ]; do sleep 0.1; tries=$((tries + 1)); done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=""
}
