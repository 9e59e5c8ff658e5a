#!/usr/bin/env bash
# A study through `llem run --runtime local` on the GPU machine, under an NVML counter log
# kept by another process (benchmarks/external_check.py: every llem window against it), then
# `llem results show` (which prints the time in measured windows over the study's wall).
#   PYTHONPATH=launcher:entrypoints:schemas:SITE bash benchmarks/external_study.sh STUDY.yaml OUT_DIR
# LIMIT (seconds, default 540) bounds the study; what it wrote by then is still packed.
# Issue 12: examples/gpu-efficiency-study.yaml; issue 13: examples/gpu-vllm-study.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
yaml=$1 out=$2 res=/tmp/llem-study-$$
rm -rf "$res" && mkdir -p "$out" "$res"
export LLEM_BASELINE_CACHE=${LLEM_BASELINE_CACHE:-/tmp/llem-baseline-cache}
t0=$(date +%s.%N)
timeout -s INT "${LIMIT:-540}" python3 benchmarks/external_check.py --results "$res" --out "$out/external_check.json" -- \
  python3 -m llem.cli run "$yaml" --runtime local --results-dir "$res" \
  > "$out/study_log.txt" 2>&1 || echo "exit $?" >> "$out/study_log.txt"
pkill -f "llem_harness $res" 2>/dev/null || true  # a harness left by the deadline
echo "llem run wall (this script's clock): $(python3 -c "import time; print(round(time.time() - $t0, 1))") s" \
  >> "$out/study_log.txt"
name=$(python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['name'])" "$yaml")
study=$(basename "$(ls -d "$res/$name"*/ | head -1)")
COLUMNS=110 python3 -m llem.cli results show "$study" --results-dir "$res" > "$out/results-show.txt" 2>&1 || true
COLUMNS=110 python3 -m llem.cli results show "$study" --results-dir "$res" -m energy_per_token \
  -m tokens_per_s -m ttft_p50 -m itl_p50 >> "$out/results-show.txt" 2>&1 || true
tar -C "$res" -czf "$out/study.tgz" . && rm -rf "$res"
tail -5 "$out/study_log.txt"; cat "$out/results-show.txt"
