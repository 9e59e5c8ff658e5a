#!/usr/bin/env bash
# Issue 15's check: `.ci/run` N times in a row (default 3), each on a fresh clone of HEAD,
# while another process (.ci/busy.py) keeps every core busy the whole time. Writes one line
# per run (commit, seconds, exit code, pytest's summary) to ${SUMMARY:-ci-under-load.txt}
# and each run's full log beside it; stops at the first failure. The runs share one build
# cache (LLEM_CI_CACHE: the debootstrap base, wheelhouse, vLLM venv), as a CI cache would.
#   tools/ci-under-load.sh [N]
set -uo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
n=${1:-3}
summary=${SUMMARY:-$repo/ci-under-load.txt}
logs=$(dirname "$summary")
commit=$(git -C "$repo" rev-parse --short HEAD)
export LLEM_CI_CACHE=${LLEM_CI_CACHE:-/tmp/llem-ci-cache}
export LLEM_VLLM_VENV=${LLEM_VLLM_VENV:-$LLEM_CI_CACHE/venv-vllm}
python3 "$repo/.ci/busy.py" --max-seconds $((n * 5400)) > /dev/null &
busy=$!
trap 'kill "$busy" 2>/dev/null; wait "$busy" 2>/dev/null' EXIT
echo "# .ci/run under load ($(nproc) cores busy: .ci/busy.py), commit $commit, $(date -u +%FT%TZ)" >> "$summary"
for i in $(seq 1 "$n"); do
  clone=$(mktemp -d /tmp/ci-load-XXXX)
  git clone -q "$repo" "$clone"
  commit=$(git -C "$clone" rev-parse --short HEAD)  # HEAD may have moved since run 1
  t0=$SECONDS
  (cd "$clone" && CI=true bash .ci/run) > "$logs/ci-under-load-$i.log" 2>&1
  rc=$?
  tests=$(grep -E "^[0-9]+ (passed|failed)|^=+ .*(passed|failed)" "$logs/ci-under-load-$i.log" | tr '\n' ' ')
  echo "run $i: commit $commit, $((SECONDS - t0)) s, exit $rc; $tests" >> "$summary"
  rm -rf "$clone"
  [ "$rc" -eq 0 ] || exit "$rc"
done
