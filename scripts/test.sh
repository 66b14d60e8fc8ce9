#!/usr/bin/env bash
# scripts/test.sh: build zjq with warnings as errors and run every test.
#
#   bash scripts/test.sh                  # ./build
#   ZJQ_SANITIZE=1 bash scripts/test.sh   # ./build-asan, ASan + UBSan
#
# Installs missing build and test dependencies (apt-get) first. Exits
# non-zero on any failure. ZJQ_TEST_BUILD overrides the build directory;
# extra arguments go to ctest (e.g. -R test_jobs).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

zjq_install_packages "${ZJQ_BUILD_PACKAGES[@]}" "${ZJQ_TEST_PACKAGES[@]}"

CMAKE_ARGS=(-DZJQ_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [ "${ZJQ_SANITIZE:-0}" = "1" ]; then
    BUILD="${ZJQ_TEST_BUILD:-$ROOT/build-asan}"
    CMAKE_ARGS+=(-DZJQ_SANITIZE=ON)
    # Stop at the first error and say where; the tests also scan every log
    # for sanitizer reports.
    export ASAN_OPTIONS="${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1}"
    export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
    export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp:print_suppressions=0}"
    # (tests/CMakeLists.txt scales the tests' waits for sanitized binaries.)
    CTEST_TIMEOUT=1500
else
    BUILD="${ZJQ_TEST_BUILD:-$ROOT/build}"
    CMAKE_ARGS+=(-DZJQ_SANITIZE=OFF)
    CTEST_TIMEOUT=900
fi

echo "==> configuring $BUILD (${CMAKE_ARGS[*]})"
cmake -S "$ROOT" -B "$BUILD" "${CMAKE_ARGS[@]}"
echo "==> building"
cmake --build "$BUILD" -j "$(nproc)"
echo "==> testing"
cd "$BUILD"
ctest --output-on-failure --timeout "$CTEST_TIMEOUT" "$@"
