#!/usr/bin/env bash
# scripts/demo.sh: build zjq and run it for real on this machine.
#
#   sudo scripts/demo.sh      (or: bash scripts/demo.sh as root)
#
# Installs missing build dependencies (apt-get), builds into ./build, starts a
# broker on 127.0.0.1 (port 5555 if free, else any free port) and two
# sha256 workers as separate processes, pushes a batch of jobs through
# `zjq batch`, prints the results and a summary, checks some results
# independently, and stops everything it started. Exits non-zero on any
# failure.
#
# Environment: ZJQ_DEMO_JOBS (default 200), ZJQ_DEMO_ROUNDS (sha256 rounds
# per job, default 200000), ZJQ_DEMO_BUILD (build dir, default ./build).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

JOBS="${ZJQ_DEMO_JOBS:-200}"
ROUNDS="${ZJQ_DEMO_ROUNDS:-200000}"
BUILD="${ZJQ_DEMO_BUILD:-$ROOT/build}"
QUEUE=sha256

WORK="$(mktemp -d "${TMPDIR:-/tmp}/zjq-demo.XXXXXX")"
PIDS=()

cleanup () {
    local status=$?
    local pid
    # Workers first (SIGTERM drains; nothing is running by now), then the broker.
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        echo "demo FAILED (exit $status); logs:" >&2
        for log in "$WORK"/*.log; do
            [ -f "$log" ] || continue
            echo "----- $log" >&2
            tail -n 40 "$log" >&2
        done
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step () { echo "==> $*"; }
die () { echo "error: $*" >&2; exit 1; }

step "checking build dependencies"
zjq_install_packages "${ZJQ_BUILD_PACKAGES[@]}"

step "building into $BUILD"
cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$WORK/cmake.log" 2>&1 \
    || { cat "$WORK/cmake.log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD" -j "$(nproc)" --target zjq-broker zjq-worker zjq-cli >"$WORK/build.log" 2>&1 \
    || { tail -n 60 "$WORK/build.log" >&2; die "build failed"; }
BROKER_BIN="$BUILD/zjq-broker"
WORKER_BIN="$BUILD/zjq-worker"
ZJQ_BIN="$BUILD/zjq"

# Port 5555 if nothing listens there, else any free port.
if (exec 3<>/dev/tcp/127.0.0.1/5555) 2>/dev/null; then
    BIND="tcp://127.0.0.1:*"
else
    BIND="tcp://127.0.0.1:5555"
fi

step "starting zjq-broker on $BIND"
"$BROKER_BIN" --bind "$BIND" --endpoint-file "$WORK/endpoint" >"$WORK/broker.log" 2>&1 &
PIDS=("$!" "${PIDS[@]}")
BROKER_PID=$!
for _ in $(seq 1 200); do
    [ -s "$WORK/endpoint" ] && break
    kill -0 "$BROKER_PID" 2>/dev/null || die "zjq-broker exited at start"
    sleep 0.1
done
[ -s "$WORK/endpoint" ] || die "zjq-broker did not start listening"
ENDPOINT="$(grep -m1 '^tcp://' "$WORK/endpoint")"
export ZJQ_BROKER="$ENDPOINT"
echo "    broker pid $BROKER_PID listening on $ENDPOINT"

step "starting 2 workers (--builtin sha256, concurrency 1)"
for n in 1 2; do
    "$WORKER_BIN" --broker "$ENDPOINT" --queue "$QUEUE" --builtin sha256 --concurrency 1 \
        >"$WORK/worker$n.log" 2>&1 &
    PIDS=("$!" "${PIDS[@]}")
    echo "    worker $n pid $!"
done

stats_field () {   # stats_field PYTHON-EXPRESSION-ON-s
    "$ZJQ_BIN" stats --json | python3 -c "import json, sys; s = json.load(sys.stdin); print($1)"
}
for _ in $(seq 1 300); do
    registered="$(stats_field 'len(s["workers"])' 2>/dev/null || echo 0)"
    [ "$registered" -ge 2 ] && break
    sleep 0.1
done
[ "${registered:-0}" -ge 2 ] || die "workers did not register with the broker"

step "submitting $JOBS sha256 jobs ($ROUNDS rounds each) with zjq batch"
for i in $(seq 1 "$JOBS"); do
    echo "$ROUNDS:demo-$i"
done >"$WORK/input.txt"
start_ns="$(date +%s%N)"
set +e
"$ZJQ_BIN" batch "$QUEUE" --file "$WORK/input.txt" --window 64 --timeout 600 \
    >"$WORK/results.tsv" 2>"$WORK/batch.err"
batch_rc=$?
set -e
end_ns="$(date +%s%N)"

echo "    line  job id             state      result"
awk -F'\t' 'NR <= 10 { printf "    %-5s %-18s %-10s %s\n", $1, $2, $3, $4 }' "$WORK/results.tsv"
total_lines="$(wc -l <"$WORK/results.tsv")"
[ "$total_lines" -gt 10 ] && echo "    ... ($((total_lines - 10)) more)"
echo "    batch summary: $(cat "$WORK/batch.err")"

succeeded="$(awk -F'\t' '$3 == "succeeded"' "$WORK/results.tsv" | wc -l)"
failed=$((JOBS - succeeded))

step "verifying results independently (python3 hashlib)"
python3 - "$WORK/input.txt" "$WORK/results.tsv" <<'EOF'
import hashlib, random, sys
payloads = open(sys.argv[1]).read().splitlines()
rows = [line.split("\t", 3) for line in open(sys.argv[2]).read().splitlines()]
rows = [r for r in rows if len(r) == 4 and r[2] == "succeeded"]
if not rows:
    sys.exit("no succeeded jobs to verify")
for line_no, job_id, state, result in random.sample(rows, min(5, len(rows))):
    rounds, data = payloads[int(line_no) - 1].split(":", 1)
    digest = hashlib.sha256(data.encode()).digest()
    for _ in range(int(rounds) - 1):
        digest = hashlib.sha256(digest).digest()
    ok = digest.hex() == result
    print("    line %-4s %s %s" % (line_no, result[:16] + "...", "ok" if ok else "MISMATCH, expected " + digest.hex()))
    if not ok:
        sys.exit(1)
EOF

seconds="$(awk -v a="$start_ns" -v b="$end_ns" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')"
rate="$(awk -v n="$JOBS" -v s="$seconds" 'BEGIN { printf "%.1f", (s > 0 ? n / s : 0) }')"

step "summary"
echo "    jobs:       $JOBS"
echo "    succeeded:  $succeeded"
echo "    failed:     $failed"
echo "    seconds:    $seconds"
echo "    jobs/s:     $rate"
"$ZJQ_BIN" stats --json | python3 -c '
import json, sys
s = json.load(sys.stdin)
for w in sorted(s["workers"], key=lambda w: w["pid"]):
    print("    worker %s (pid %s): %s completed" % (w["id"], w["pid"], w["completed"]))
'

[ "$batch_rc" -eq 0 ] || die "zjq batch exited $batch_rc"
[ "$succeeded" -eq "$JOBS" ] || die "$failed of $JOBS jobs did not succeed"
step "demo OK"
