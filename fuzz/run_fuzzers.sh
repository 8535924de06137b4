#!/usr/bin/env bash
# Runs each libFuzzer binary built by `make fuzz` for a fixed time.
#   fuzz/run_fuzzers.sh BUILD_DIR SECONDS TARGET...
# Each target starts from tests/fuzz_corpus/<target>/ (seeds and regression inputs, never written
# to) and grows a working corpus in BUILD_DIR/fuzz-corpus/<target>/; crashes, leaks and timeouts
# land in BUILD_DIR/fuzz-artifacts/<target>/ and fail the run. Add a fixed crash's input to
# tests/fuzz_corpus/<target>/ as regress-<what>.<ext>, so the replay test keeps checking it.
set -uo pipefail
build=$1
seconds=$2
shift 2
src=$(cd "$(dirname "$0")/.." && pwd)
failed=()
for t in "$@"; do
  bin="$build/bin/stave_fuzz_$t"
  work="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t"
  mkdir -p "$work" "$artifacts"
  echo "=== fuzz $t for ${seconds}s (log: $build/fuzz-$t.log)"
  # -timeout: one input taking 30 s is a hang worth a report; -rss_limit_mb: a parser that
  # allocates gigabytes for a small input is a bug too.
  "$bin" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "$work" "$src/tests/fuzz_corpus/$t" >"$build/fuzz-$t.log" 2>&1
  rc=$?
  grep -E "^#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" \
    "$build/fuzz-$t.log" | tail -4
  if [ $rc -ne 0 ]; then
    echo "!!! $t: exit $rc; artifacts:"; ls "$artifacts"
    grep -m5 -E "ERROR|FUZZ_CHECK|runtime error" "$build/fuzz-$t.log"
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: findings in ${failed[*]}"
  exit 1
fi
echo "fuzz: no findings in $*"
