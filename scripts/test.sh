#!/usr/bin/env bash
# Installs what is missing, builds sked and runs every test:
#   1. g++ build with -Wall -Wextra -Werror, all tests; clang-format and clang-tidy checks;
#   2. clang build with AddressSanitizer + UndefinedBehaviorSanitizer, all tests,
#      plus the cron parser and config fuzzers for a bounded time;
#   3. clang build with ThreadSanitizer, the concurrent tests (engine, clock, store, shell).
# Starts a PostgreSQL server on loopback (scripts/postgres.sh) for the store's
# conformance suite on PostgreSQL, the fleet test and the database-restart test.
# Idempotent; build trees live in build/ and are reused (ccache makes rebuilds cheap).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh --browser

echo "== PostgreSQL on loopback (store conformance, fleet and fault tests)"
SKED_TEST_PG_URL="$(./scripts/postgres.sh)"
export SKED_TEST_PG_URL

jobs=$(nproc)
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-2G}"
# Relative paths in the cache key: a fresh clone elsewhere (as CI makes) still hits.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}"
fuzz_seconds="${SKED_FUZZ_SECONDS:-30}"

echo "== g++: build (-Werror)"
cmake -S . -B build/gcc -G Ninja -DCMAKE_CXX_COMPILER=g++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSKED_WERROR=ON -DSKED_SANITIZE=OFF -DSKED_FUZZ=OFF -DSKED_BENCH=ON >/dev/null
cmake --build build/gcc -j "$jobs"

echo "== lint: clang-format and clang-tidy"
./scripts/lint.sh

echo "== clang: build (ASan + UBSan, -Werror, fuzzers)"
cmake -S . -B build/asan -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
  -DSKED_WERROR=ON -DSKED_SANITIZE=ON -DSKED_FUZZ=ON -DSKED_BENCH=OFF >/dev/null
cmake --build build/asan -j "$jobs"

echo "== clang: build (ThreadSanitizer) of the tests"
cmake -S . -B build/tsan -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSKED_WERROR=ON -DSKED_TSAN=ON -DSKED_BENCH=OFF >/dev/null
cmake --build build/tsan -j "$jobs" --target sked_concurrency_tests

echo "== fuzz: cron parser for ${fuzz_seconds}s"
mkdir -p build/fuzz-corpus
cp tests/fuzz/corpus/* build/fuzz-corpus/ 2>/dev/null || true
build/asan/cron_fuzzer -max_total_time="$fuzz_seconds" -seed=1 -print_final_stats=0 \
  -timeout=10 build/fuzz-corpus 2>&1 | grep -E "^Done|ERROR|SUMMARY|crash-"
echo "== fuzz: config loading for $((fuzz_seconds / 2))s"
mkdir -p build/config-fuzz-corpus
cp tests/fuzz/config_corpus/* build/config-fuzz-corpus/
build/asan/config_fuzzer -max_total_time="$((fuzz_seconds / 2))" -seed=1 -print_final_stats=0 \
  -timeout=10 -max_len=4096 build/config-fuzz-corpus 2>&1 | grep -E "^Done|ERROR|SUMMARY|crash-"

echo "== benchmark smoke run (correctness of the program, not its figures)"
build/gcc/sked_cron_bench --benchmark_min_time=0.001 >/dev/null 2>&1
build/gcc/sked_timer_bench --waits 5 --interval-ms 10 --threads 2 >/dev/null
rm -f build/smoke-engine-bench.db*
build/gcc/sked_engine_bench --jobs 20 --seconds 4 --db build/smoke-engine-bench.db |
  grep -E "^runs: [1-9][0-9]* succeeded, 0 skipped, 0 other" ||
  { echo "sked_engine_bench: its runs did not all succeed"; exit 1; }
bench/serve_history_bench.sh build/gcc/sked 2000 8 >build/smoke-serve-history.log
if ! grep -qE "^tick fires [1-9][0-9]* ran [1-9]" build/smoke-serve-history.log ||
    ! grep -qE "^old runs deleted [1-9]" build/smoke-serve-history.log; then
  cat build/smoke-serve-history.log
  echo "serve_history_bench.sh: no fire ran or nothing was pruned"
  exit 1
fi

echo "== g++: tests"
if ! ctest --test-dir build/gcc -j "$jobs" --output-on-failure --timeout 300 \
    >build/gcc-ctest.log 2>&1; then
  cat build/gcc-ctest.log
  exit 1
fi
grep -E "tests passed|tests failed" build/gcc-ctest.log

echo "== g++: PostgreSQL restart while a fleet runs (alone: it restarts the server)"
SKED_TEST_PG_RESTART="$PWD/scripts/postgres.sh restart" build/gcc/sked_tests \
  --gtest_filter='FleetTest.SurvivesAPostgresRestart' >build/gcc-fault.log 2>&1 ||
  { grep -v '^{' build/gcc-fault.log; exit 1; }
grep -E "^\[  (PASSED|FAILED)" build/gcc-fault.log

echo "== g++: /readyz while PostgreSQL stops and comes back (alone: it stops the server)"
/usr/bin/python3 tests/api_e2e_test.py --sked build/gcc/sked --pg-url "$SKED_TEST_PG_URL" \
  --pg-ctl "$PWD/scripts/postgres.sh" PostgresReadinessTest >build/gcc-readiness.log 2>&1 ||
  { cat build/gcc-readiness.log; exit 1; }
tail -n 1 build/gcc-readiness.log

echo "== clang TSan: engine, clock, store, checkpointer and driver tests"
if ! TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 build/tsan/sked_concurrency_tests \
    --gtest_filter='EngineTest*:SimulatedClock*:*StoreConformance*:*ShellDriver*:WalCheckpointer*' \
    >build/tsan-tests.log 2>&1; then
  cat build/tsan-tests.log
  exit 1
fi
grep -E "^\[  (PASSED|FAILED)" build/tsan-tests.log

echo "== clang ASan/UBSan: tests"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
ctest --test-dir build/asan -j "$jobs" --output-on-failure --timeout 600
