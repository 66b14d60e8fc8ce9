#!/usr/bin/env bash
# scripts/fuzz.sh: build the libFuzzer harnesses (tests/fuzz) with clang,
# ASan and UBSan in ./build-fuzz, and run each for a bounded time from its
# committed corpus.
#
#   bash scripts/fuzz.sh                     # each harness 60 s
#   ZJQ_FUZZ_SECONDS=600 bash scripts/fuzz.sh msg
#
# Inputs it finds go to build-fuzz/corpus-NAME (the committed corpus is only
# read). A crash stops it with a non-zero status and the input in
# build-fuzz/crash-*: fix the bug, then commit the input as
# tests/fuzz/corpus/NAME/crash-WHAT, which fuzz_replay_NAME replays in every
# regular build from then on.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

zjq_install_packages "${ZJQ_BUILD_PACKAGES[@]}" "${ZJQ_FUZZ_PACKAGES[@]}"

BUILD="${ZJQ_FUZZ_BUILD:-$ROOT/build-fuzz}"
SECONDS_EACH="${ZJQ_FUZZ_SECONDS:-60}"
HARNESSES=("$@")
[ ${#HARNESSES[@]} -gt 0 ] || HARNESSES=(msg batch)

echo "==> configuring $BUILD (clang, ZJQ_FUZZ)"
CC=clang cmake -S "$ROOT" -B "$BUILD" -DZJQ_FUZZ=ON -DZJQ_WERROR=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=()
for name in "${HARNESSES[@]}"; do targets+=("fuzz_$name"); done
cmake --build "$BUILD" -j "$(nproc)" --target "${targets[@]}"

export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
status=0
for name in "${HARNESSES[@]}"; do
    corpus="$BUILD/corpus-$name"
    mkdir -p "$corpus"
    echo "==> fuzz_$name for ${SECONDS_EACH}s"
    if ! "$BUILD/tests/fuzz/fuzz_$name" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$BUILD/crash-$name-" \
            "$corpus" "$ROOT/tests/fuzz/corpus/$name" 2>"$BUILD/fuzz_$name.log"; then
        tail -60 "$BUILD/fuzz_$name.log"
        echo "==> fuzz_$name FAILED: input in $BUILD/crash-$name-*"
        status=1
    else
        grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$BUILD/fuzz_$name.log" \
            | sed "s/^/    /"
    fi
done
exit "$status"
