#!/usr/bin/env bash
# The device calls that made benchmarks/results/h100-* (one call each, in this order, each
# started within the GPU machine's 30 s idle window so /tmp/stage survives between them:
# the vLLM environment travels in three carried parts, .whl/c1 .. .whl/c3, made by
# tools/gpu-wheels.sh + tools/gpu-pack.sh). Outputs go under $OUT. Session 4's second
# machine ran: parity (carry .whl/c1), efficiency (.whl/c2), vllm-parity (.whl/c3),
# vllm-study, fast.
#   bash benchmarks/h100_calls.sh STEP   STEP: parity | efficiency | vllm-parity | vllm-study | fast
set -uo pipefail
cd "$(dirname "$0")/.."
stage=benchmarks/references/stage.sh
export PYTHONPATH=$PWD/launcher:$PWD/entrypoints:$PWD/schemas:/tmp/site
export LLEM_BASELINE_CACHE=/tmp/llem-baseline-cache
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
val() {  # gpu_validation.py into /tmp/val, then the report and a tarball under $OUT
  timeout "$1" python3 benchmarks/gpu_validation.py --out /tmp/val "${@:2}" > "$OUT/log.txt" 2>&1
  echo "exit $?" >> "$OUT/log.txt"
  cp /tmp/val/gpu_validation.md /tmp/val/gpu_validation.json "$OUT/" 2>/dev/null
  tar -C /tmp -czf "$OUT/val.tgz" val; rm -rf /tmp/val
  cat "$OUT/gpu_validation.md" 2>/dev/null || tail -40 "$OUT/log.txt"
}
case $1 in
  parity)  # issue 12: llem default vs the bare loop (both pinned to the same cores), the peer
    bash $stage put .whl/c1 >/dev/null && bash $stage unpack site-llem /tmp/site && bash $stage unpack tf4 /tmp/tf4
    val 560 --parity --peer --batches "${BATCHES:-1,8,32,128}" --rounds "${ROUNDS:-2}" --seconds 3 \
      --llem-settings "${SETTINGS:-default}" --llem-cpus 4-5 --bare-cpus 4-5 ;;
  efficiency)  # issue 12: the 2 x 3 study under the independent counter log (first call of
    # the third machine: carries c1 again)
    bash $stage put .whl/c1 >/dev/null && bash $stage unpack site-llem /tmp/site
    LIMIT=520 bash benchmarks/external_study.sh examples/gpu-efficiency-study.yaml "$OUT" ;;
  vllm-parity)  # issue 13: llem's vLLM harness vs a bare LLM.generate loop, alternating
    bash $stage put .whl/c3 >/dev/null && bash $stage unpack site-vllm /tmp/vsite
    PYTHONPATH=$PYTHONPATH:/tmp/vsite val 540 --vllm --vllm-eager --vllm-bare-path \
      /tmp/site:/tmp/vsite --rounds 2 --seconds 3 --vllm-poisson-after 330 ;;
  vllm-both)  # the two above in one call: parity first, then the CLI study in what is left
    t0=$SECONDS
    bash $stage put .whl/c3 >/dev/null && bash $stage unpack site-vllm /tmp/vsite
    PYTHONPATH=$PYTHONPATH:/tmp/vsite val 400 --vllm --vllm-eager --vllm-bare-path \
      /tmp/site:/tmp/vsite --rounds 2 --seconds 3 --vllm-poisson-after 240
    mkdir -p "$OUT/study"
    PYTHONPATH=$PYTHONPATH:/tmp/vsite LIMIT=$((575 - (SECONDS - t0))) bash benchmarks/external_study.sh \
      examples/gpu-vllm-study.yaml "$OUT/study"
    tar -C "$OUT" -czf "$OUT/study.tar.gz" study && rm -rf "$OUT/study" ;;  # <= 8 files back
  vllm-study)  # issue 13: llem run --backend vllm (offline 1/32/128) under the counter log
    PYTHONPATH=$PYTHONPATH:/tmp/vsite LIMIT=${LIMIT:-540} bash benchmarks/external_study.sh \
      examples/gpu-vllm-study.yaml "$OUT" ;;
  fast)  # issue 12: static cache + compile against the bare static-cache + compile loop
    bash $stage put .whl/c2 >/dev/null
    val 540 --fast --fast-batches "${BATCHES:-1,32}" --rounds 2 --seconds 3 ;;
  *) echo "unknown step $1" >&2; exit 2 ;;
esac
