#!/usr/bin/env bash
# Decode speed when other processes share the cores: `stave bench` idle and next to N busy
# processes (shell loops, one core each), under three OpenMP wait policies:
#   libgomp   libgomp's own default (GOMP_SPINCOUNT=300000: spin ~0.1-1 ms before sleeping)
#   stave     what stave and staved run with unless told otherwise (GOMP_SPINCOUNT=1000)
#   passive   OMP_WAIT_POLICY=passive (sleep at once)
# and --threads auto (0) against a fixed count. Prints one line per case and the speed as a
# fraction of the same policy's idle speed. Run it alone on the machine.
#
#   bench/shared_cores.sh [build/bin/stave] [bench flags...]
#   bench/shared_cores.sh build/bin/stave --model ../shared/models/stories260K/stories260K.bin \
#       --tokenizer ../shared/models/stories260K/tok512.bin --gen-tokens 300
set -euo pipefail
STAVE=${1:-build/bin/stave}
shift || true
ARGS=("$@")
[ ${#ARGS[@]} -eq 0 ] && ARGS=(--gen-tokens 16 --prompt-tokens 32)  # the 110M shape (random weights)
NEIGHBOURS=${NEIGHBOURS:-"0 1 2"}
THREADS=${THREADS:-"2 0"}
REPS=${REPS:-2}

decode() {  # neighbours threads env...
  local n=$1 threads=$2 pids=()
  shift 2
  for _ in $(seq 1 "$n"); do (while :; do :; done) & pids+=($!); done
  sleep 0.3
  local json
  json=$(env "$@" "$STAVE" bench "${ARGS[@]}" --runs 3 --threads "$threads" --json 2>/dev/null || echo '{}')
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" && wait "${pids[@]}" 2>/dev/null || true
  python3 -c 'import json,sys; print("%.1f" % json.loads(sys.argv[1]).get("decode_tokens_per_s", 0))' "$json"
}

declare -A sum
for rep in $(seq 1 "$REPS"); do
  for n in $NEIGHBOURS; do
    for t in $THREADS; do
      for policy in libgomp stave passive; do
        case $policy in
          libgomp) env=(GOMP_SPINCOUNT=300000) ;;
          stave) env=(GOMP_SPINCOUNT=1000) ;;
          passive) env=(OMP_WAIT_POLICY=passive) ;;
        esac
        v=$(decode "$n" "$t" "${env[@]}")
        echo "rep=$rep neighbours=$n threads=$t policy=$policy decode_tok_s=$v" >&2
        sum[$n,$t,$policy]=$(python3 -c "print(${sum[$n,$t,$policy]:-0} + $v)")
      done
    done
  done
done
printf '%-10s %-8s %-8s %14s %12s\n' neighbours threads policy decode_tok_s vs_idle
for n in $NEIGHBOURS; do
  for t in $THREADS; do
    for policy in libgomp stave passive; do
      mean=$(python3 -c "print('%.1f' % (${sum[$n,$t,$policy]} / $REPS))")
      idle=$(python3 -c "print(${sum[${NEIGHBOURS%% *},$t,$policy]} / $REPS)")
      printf '%-10s %-8s %-8s %14s %12s\n' "$n" "$([ "$t" = 0 ] && echo auto || echo "$t")" "$policy" "$mean" \
        "$(python3 -c "print('%.2f' % ($mean / $idle if $idle > 0 else 0))")"
    done
  done
done
