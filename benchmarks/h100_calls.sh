#!/usr/bin/env bash
# The device calls that made benchmarks/results/h100-* (one call each, in this order, each
# started within the GPU machine's 30 s idle window so /tmp/stage survives between them:
# the vLLM environment travels in three carried parts, .whl/c1 .. .whl/c3, made by
# tools/gpu-wheels.sh + tools/gpu-pack.sh). Outputs go under $OUT. Session 4 ran, per
# machine: parity, fast, efficiency, vllm-study (four carries then); parity (c1);
# efficiency (c1), fast (c2), vllm-both (c3) -- benchmarks/results/h100-session4/README.md.
#   bash benchmarks/h100_calls.sh STEP
# Session 5, machine A: parity (SETTINGS=default,inproc-bare), fast, vllm-counter; machine B:
# efficiency.
# Session 6: parity-interleave, vllm-counter2 (session 5's call 8 was the rerun step).
# Session 7: BATCHES=32,128 parity-interleave, then batches 1,8 of it inline (README there).
# Session 8: parity-peer (batches 1,8), then BATCHES=32,128 parity-peer.
# Session 10: parity-peer (batches 1,8; segments spread 8-34% again), then parity-tight
#   (batches 1,8), then BATCHES=8,32 parity-tight with the diagnostic SETTINGS (cut at its limit).
# Session 11: sampler-cost (b8 parity-tight in the rest), sampler-split (b32 parity-tight in
#   the rest; a noisy machine); no machine could be started after that.
# Session 12: TOTAL=570 SIDES=none,process-full,process ROUNDS=16 PARITY_BATCHES=8
#   PARITY_ROUNDS=16 sampler-split; LIMIT=430 ROUNDS=14 BATCHES=8
#   SETTINGS=default,default-noclock,inproc-bare,inproc-own EXTRA_ARGS=--bare-llem-env
#   parity-tight (noisy); LIMIT=395 ROUNDS=12 BATCHES=128,32 parity-tight (noisy).
# Session 13: LIMIT=570 ROUNDS=12 BATCHES=8 SETTINGS=default,inproc-own
#   EXTRA_ARGS="--bare-llem-env --processes 3" parity-tight (noisy); LIMIT=540 ROUNDS=12
#   BATCHES=128,32 EXTRA_ARGS="--processes 2" parity-tight (noisy); then a 60 s busy loop on
#   core 4 (README there): the core's own speed swung ~2x, so parity-tight now probes its
#   cores first (cpu_steadiness.py, STEADY seconds, 0: off) and skips an unsteady machine.
# Session 14: LIMIT=570 ROUNDS=12 BATCHES=8,1 EXTRA_ARGS="--processes 3" parity-steady (then a
#   retry loop; every probe unsteady), cpu_steadiness --cores, then parity-steady with WAIT
#   (the form below; unsteady 120-150 s twice); on a fresh machine LIMIT=480 WAIT=90 ROUNDS=12
#   BATCHES=8 EXTRA_ARGS="--processes 3" parity-steady (steady at start, slowed mid-run):
#   README in h100-session14/.
# Session 15: LIMIT=440 WAIT=60 ROUNDS=12 BATCHES=8,1 EXTRA_ARGS="--processes 3" parity-steady
#   (unsteady, not run; the next call's machine was taken back): README in h100-session15/.
# Session 17: parity-steady twice as above (its probe passed, gpu_validation's own probe
#   seconds later did not: skipped); then, probes recorded but not gating, LIMIT=575
#   ROUNDS=12 BATCHES=8,1 EXTRA_ARGS="--processes 3 --steady-max-cv 100" parity-tight;
#   LIMIT=565 ROUNDS=10 BATCHES=32,128 EXTRA_ARGS="--processes 2 --steady-max-cv 100"
#   parity-tight; LIMIT=375 ROUNDS=8 BATCHES=8 SETTINGS=default,inproc-own
#   EXTRA_ARGS="--bare-llem-env --processes 2 --steady-max-cv 100" parity-tight (noisy).
# Session 18: the session-17 "next" diagnostic twice (LIMIT=570 WAIT=90|60 ROUNDS=12 BATCHES=8
#   SETTINGS=default,inproc-own EXTRA_ARGS="--bare-llem-env --processes 3" parity-steady;
#   noisy), LIMIT=560 WAIT=40 ROUNDS=12 BATCHES=8,1 EXTRA_ARGS="--processes 3" parity-steady
#   (unsteady, not run), LIMIT=540 window-cost (batch 8), LIMIT=205 ROUNDS=14 BATCHES=1
#   window-cost (cut while counting ops): README in h100-session18/.
# Session 19 (four starts found no machine first): LIMIT=570 WAIT=60 ROUNDS=12 BATCHES=8,1
#   EXTRA_ARGS="--processes 3" parity-steady (one launching core: judgeable, b8 0.963), LIMIT=420
#   ROUNDS=16 BATCHES=8 window-cost (own model = llem's model), LIMIT=385 WAIT=30 ROUNDS=8
#   BATCHES=8 SETTINGS=default,inproc-own EXTRA_ARGS="--processes 2" parity-steady (noisy):
#   README in h100-session19/.
# Session 20 (nine starts found no machine first): LIMIT=560 ROUNDS=10 process-state (a slow,
#   unsteady machine; 'ran' not reached), LIMIT=470 WAIT=30 ROUNDS=8 BATCHES=32,128
#   EXTRA_ARGS="--processes 2" parity-steady (gate passed, CV 18% seconds later; b128 cut):
#   README in h100-session20/.
# Session 21: no call ran. Twelve calls, 17:47-19:29 UTC: nine failed starts, one refusal,
#   one machine taken back mid-call with nothing returned, and the last refused for too
#   little budget left (1542 s of 1800 spent on them).
# Session 22 (one failed start first): LIMIT=500 ROUNDS=10 EXTRA_ARGS="--stages
#   imported,probed,ran" process-state (a half-speed, unsteady machine: 'probed' and 'ran'
#   not reached), LIMIT=565 WAIT=60 ROUNDS=10 BATCHES=32,128 EXTRA_ARGS="--processes 2"
#   parity-steady (unsteady after 5 rounds; b128 cut): README in h100-session22/.
# Session 23 (seven starts found no machine or were refused first): LIMIT=500 ROUNDS=8
#   EXTRA_ARGS="--stages ran" process-state (ran 1.034 [0.953, 1.054], fresh 1.075: noisy),
#   LIMIT=565 WAIT=60 ROUNDS=10 BATCHES=32,128 EXTRA_ARGS="--processes 2" parity-steady
#   (b32 1.039 [0.929, 1.346]; b128 cut after 3 rounds): README in h100-session23/.
# Next: the same two calls again on a steadier machine (whether a process that finished a
#   llem run runs the bare loop's own code 3-4% slower; then 'probed' or 'imported' only if
#   'ran' falls below 'fresh'); batches 1 and 8 with LIMIT=570 WAIT=60 ROUNDS=12
#   BATCHES=8,1 EXTRA_ARGS="--processes 3" parity-steady.
#   STEP: parity | parity-interleave | parity-peer | parity-tight | parity-steady | window-cost | process-state | sampler-cost | sampler-split | efficiency | fast | vllm-parity | vllm-study | vllm-both
#         | vllm-counter | vllm-counter2 | rerun | parity-probe
set -uo pipefail
cd "$(dirname "$0")/.."
stage=benchmarks/references/stage.sh
export PYTHONPATH=$PWD/launcher:$PWD/entrypoints:$PWD/schemas:/tmp/site
export LLEM_BASELINE_CACHE=/tmp/llem-baseline-cache
# parity-tight holds every side's launching thread on this core (LAUNCH_CORE, empty: off,
# each launcher on either of cores 4-5); parity-steady's gate probes the same core
launch_core=${LAUNCH_CORE-4}
nvidia-smi --query-gpu=name,driver_version,power.limit,clocks.max.sm --format=csv > "$OUT/gpu.txt" 2>&1
val() {  # gpu_validation.py into /tmp/val, then the report and a tarball under $OUT
  timeout "$1" python3 benchmarks/gpu_validation.py --out /tmp/val "${@:2}" > "$OUT/log.txt" 2>&1
  echo "exit $?" >> "$OUT/log.txt"
  cp /tmp/val/gpu_validation.md /tmp/val/gpu_validation.json "$OUT/" 2>/dev/null
  tar -C /tmp -czf "$OUT/val.tgz" val; rm -rf /tmp/val
  cat "$OUT/gpu_validation.md" 2>/dev/null || tail -40 "$OUT/log.txt"
}
vllm_parity() {  # LIMIT POISSON_AFTER: llem's vLLM harness vs a bare LLM.generate loop
  PYTHONPATH=$PYTHONPATH:/tmp/vsite val "$1" --vllm --vllm-eager --vllm-bare-path \
    /tmp/site:/tmp/vsite --rounds 2 --seconds 3 --vllm-poisson-after "$2"
}
vllm_study() {  # LIMIT OUT_DIR: llem run --backend vllm under the counter log
  PYTHONPATH=$PYTHONPATH:/tmp/vsite LIMIT=$1 bash benchmarks/external_study.sh \
    examples/gpu-vllm-study.yaml "$2"
}
sampler_then_parity() {  # NAME SIDES ROUNDS PARITY_BATCHES PARITY_ROUNDS: sampler_cost.py
  # (pinned like the parity steps) into $OUT/NAME.json, then parity-tight at PARITY_BATCHES
  # (none: skipped) in what is left of ${TOTAL:-575} s
  local t0=$SECONDS
  taskset -c 4-5 timeout 300 python3 benchmarks/sampler_cost.py --rounds "$3" \
    --batch "${BATCH:-8}" --sides "$2" > "$OUT/$1.json" 2> "$OUT/$1.log"
  cat "$OUT/$1.json"
  if [ -n "$4" ]; then
    LIMIT=$((${TOTAL:-575} - (SECONDS - t0))) ROUNDS=$5 BATCHES=$4 bash "$0" parity-tight
  fi
}
case $1 in
  parity)  # issue 12: llem default vs the bare loop (both pinned to the same cores), the peer
    bash $stage put .whl/c1 >/dev/null && bash $stage unpack site-llem /tmp/site && bash $stage unpack tf4 /tmp/tf4
    val 560 --parity --peer --batches "${BATCHES:-1,8,32,128}" --rounds "${ROUNDS:-2}" --seconds "${SECONDS_SEG:-3}" \
      --llem-settings "${SETTINGS:-default}" --llem-cpus 4-5 --bare-cpus 4-5 ;;
  efficiency)  # issue 12: the 2 x 3 study under the independent counter log (first call of
    # the third machine: carries c1 again)
    bash $stage put .whl/c1 >/dev/null && bash $stage unpack site-llem /tmp/site
    LIMIT=${LIMIT:-520} bash benchmarks/external_study.sh examples/gpu-efficiency-study.yaml "$OUT" ;;
  vllm-parity)  # issue 13: the alternating vLLM comparison (carries the last vLLM part)
    bash $stage put .whl/c3 >/dev/null && bash $stage unpack site-vllm /tmp/vsite
    vllm_parity 540 330 ;;
  vllm-study)  # issue 13: the CLI study (after vllm-parity, /tmp/vsite still there)
    vllm_study "${LIMIT:-540}" "$OUT" ;;
  vllm-both)  # the two above in one call: parity first, then the CLI study in what is left
    t0=$SECONDS
    bash $stage put .whl/c3 >/dev/null && bash $stage unpack site-vllm /tmp/vsite
    vllm_parity 400 240
    mkdir -p "$OUT/study"
    vllm_study $((575 - (SECONDS - t0))) "$OUT/study"
    tar -C "$OUT" -czf "$OUT/study.tar.gz" study && rm -rf "$OUT/study" ;;  # <= 8 files back
  vllm-counter)  # issue 13: Poisson traffic, then the offline batches, each a CLI study under
    # the independent counter log (one tarball: <= 8 files come back)
    t0=$SECONDS
    bash $stage put .whl/c3 >/dev/null && bash $stage unpack site-vllm /tmp/vsite
    mkdir -p /tmp/vc/poisson /tmp/vc/offline
    PYTHONPATH=$PYTHONPATH:/tmp/vsite LIMIT=300 bash benchmarks/external_study.sh \
      examples/gpu-vllm-poisson.yaml /tmp/vc/poisson
    vllm_study $((580 - (SECONDS - t0))) /tmp/vc/offline
    tar -C /tmp -czf "$OUT/vllm-counter.tgz" vc ;;
  parity-interleave)  # issue 12: llem, the bare loop and the bare loop on transformers 4.57
    # alternating, optimum-benchmark run midway through each batch's rounds (same minutes)
    bash $stage put .whl/c1 >/dev/null && bash $stage unpack site-llem /tmp/site && bash $stage unpack tf4 /tmp/tf4
    val 570 --parity --peer-interleave --bare-tf4 --batches "${BATCHES:-1,8,32,128}" \
      --rounds "${ROUNDS:-4}" --seconds "${SECONDS_SEG:-2}" --llem-cpus 4-5 --bare-cpus 4-5 ;;
  parity-peer)  # issue 12 (session 8): optimum-benchmark a side of every round (its worker,
    # references/ob_worker.py) and PEER_RUNS pinned one-shot runs per batch; every process
    # of the comparison pinned to cores 4-5; carries .whl/c0 (the two small packs of .whl/c1)
    bash $stage put .whl/c0 >/dev/null && bash $stage unpack site-llem /tmp/site && bash $stage unpack tf4 /tmp/tf4
    val $(( ${LIMIT:-575} - SECONDS )) --parity --peer-interleave --peer-worker --peer-runs "${PEER_RUNS:-2}" \
      --batches "${BATCHES:-1,8}" --rounds "${ROUNDS:-6}" --seconds "${SECONDS_SEG:-2}" \
      --llem-cpus 4-5 --bare-cpus 4-5 --peer-cpus 4-5 ${EXTRA_ARGS:-} ;;
  parity-tight)  # issue 12 (session 10): parity-peer with one generate call per segment and
    # llem's measured window alone after each batch's first full run (--llem-window-only),
    # so a round of bare, optimum-benchmark and llem spans seconds; no one-shot peer runs
    # Every side's launching thread on core 4 during its segments (LAUNCH_CORE, empty: off;
    # session 18 and before: off, each launcher on either of cores 4-5)
    bash $stage put .whl/c0 >/dev/null && bash $stage unpack site-llem /tmp/site && bash $stage unpack tf4 /tmp/tf4
    val $(( ${LIMIT:-575} - SECONDS )) --parity --peer-interleave --peer-worker --peer-runs "${PEER_RUNS:-0}" \
      --llem-window-only --llem-settings "${SETTINGS:-default}" --batches "${BATCHES:-1,8}" --rounds "${ROUNDS:-20}" --seconds "${SECONDS_SEG:-0.1}" \
      --llem-cpus 4-5 --bare-cpus 4-5 --peer-cpus 4-5 --steady-check "${STEADY:-10}" \
      ${launch_core:+--launch-core $launch_core} ${EXTRA_ARGS:-} ;;
  parity-steady)  # parity-tight once a 10 s probe of its launch core (cpu_steadiness.py) finds
    # it steady, probing again for up to WAIT s (150); every probe into $OUT/waits.jsonl.
    # An unsteady machine ends the call there, its device time saved for a later one. That
    # probe is the gate: gpu_validation's own probes, seconds later, are recorded only
    # (session 17: a passing probe was followed by a failing one twice, skipping both calls)
    while :; do
      python3 benchmarks/cpu_steadiness.py --cpus "${launch_core:-4-5}" --seconds 10 >> "$OUT/waits.jsonl" && break
      [ "$SECONDS" -lt "${WAIT:-150}" ] || { echo "unsteady for ${SECONDS} s: not run"; cat "$OUT/waits.jsonl"; exit 3; }
    done
    LIMIT=$(( ${LIMIT:-575} - SECONDS )) EXTRA_ARGS="${EXTRA_ARGS:-} --steady-max-cv 100" \
      bash "$0" parity-tight ;;
  sampler-cost)  # no sampler / sampler thread / sampler process around one generate call,
    # paired round by round, pinned like the parity steps; then parity-tight at batch 8 in
    # what is left of the call (PARITY=0 skips it)
    sampler_then_parity sampler-cost none,thread,process "${ROUNDS:-40}" \
      "$([ "${PARITY:-1}" = 1 ] && echo 8)" 16 ;;
  sampler-split)  # where the sampler's ~0.7% goes (session 11): llem's sampler process, a
    # bare NVML loop of the same eight calls on the same cores and on other cores, and of the
    # power call alone on other cores; then parity-tight at PARITY_BATCHES in what is left
    sampler_then_parity sampler-split \
      "${SIDES:-none,process,reader:all@same,reader:all@8-9,reader:instant@8-9}" \
      "${ROUNDS:-20}" "${PARITY_BATCHES-32}" "${PARITY_ROUNDS:-14}" ;;
  vllm-counter2)  # issue 13: Poisson again (after the double-wait fix), then offline batch 1
    # and 8, each a CLI study under the independent counter log
    t0=$SECONDS
    bash $stage put .whl/c3 >/dev/null && bash $stage unpack site-vllm /tmp/vsite
    mkdir -p /tmp/vc/poisson /tmp/vc/small
    PYTHONPATH=$PYTHONPATH:/tmp/vsite LIMIT=270 bash benchmarks/external_study.sh \
      examples/gpu-vllm-poisson.yaml /tmp/vc/poisson
    PYTHONPATH=$PYTHONPATH:/tmp/vsite LIMIT=$((580 - (SECONDS - t0))) bash \
      benchmarks/external_study.sh examples/gpu-vllm-small-batches.yaml /tmp/vc/small
    tar -C /tmp -czf "$OUT/vllm-counter.tgz" vc ;;
  rerun)  # issue 14: one experiment, then llem rerun of its result with --compare
    bash $stage put .whl/c1 >/dev/null && bash $stage unpack site-llem /tmp/site
    python3 -m llem.cli run examples/gpu-rerun.yaml --runtime local --results-dir /tmp/rr \
      > "$OUT/run.txt" 2>&1; echo "exit $?" >> "$OUT/run.txt"
    res=$(ls /tmp/rr/h100-rerun-*/e000-*/cycle-0/result.json | head -1)
    python3 -m llem.cli rerun "$res" --runtime local --compare --results-dir /tmp/rr \
      > "$OUT/rerun.txt" 2>&1; echo "exit $?" >> "$OUT/rerun.txt"
    tar -C /tmp -czf "$OUT/rr.tgz" rr; tail -30 "$OUT/rerun.txt" ;;
  parity-probe)  # issue 12: the fixed-order experiment (benchmarks/parity_probe.py)
    bash $stage put .whl/c1 >/dev/null && bash $stage unpack site-llem /tmp/site
    timeout 500 python3 benchmarks/parity_probe.py --out /tmp/pp --batches "${BATCHES:-32,128}" \
      --rounds "${ROUNDS:-2}" > "$OUT/probe-log.txt" 2>&1; echo "exit $?" >> "$OUT/probe-log.txt"
    tar -C /tmp -czf "$OUT/pp.tgz" pp; tail -20 "$OUT/probe-log.txt" ;;
  window-cost)  # issue 12 (session 18): llem's generate and measured window against the
    # bare call on llem's model in one process on the GPU, one generate call a side, mirrored
    # rounds, with op/kernel/launch counts per decode step, and (OWN_MODEL, empty: off;
    # session 18: off) the bare call on the reference's own model; pinned to cores 4-5 like
    # the parity steps, a probe of those cores before and after
    bash $stage put .whl/c0 >/dev/null && bash $stage unpack site-llem /tmp/site
    python3 benchmarks/cpu_steadiness.py --cpus 4-5 --seconds 10 > "$OUT/steady-before.json"
    taskset -c 4-5 timeout $(( ${LIMIT:-560} - SECONDS - 15 )) python3 benchmarks/window_cost_cpu.py \
      --device cuda --batches "${BATCHES:-8,1}" --rounds "${ROUNDS:-30}" --count-ops ${OWN_MODEL---own-model} \
      > "$OUT/window-cost.jsonl" 2> "$OUT/window-cost.log"; echo "exit $?" >> "$OUT/window-cost.log"
    python3 benchmarks/cpu_steadiness.py --cpus 4-5 --seconds 10 > "$OUT/steady-after.json"
    cat "$OUT/steady-before.json" "$OUT/steady-after.json"; tail -3 "$OUT/window-cost.log"
    python3 -c "import json,sys
for l in open(sys.argv[1]):
    d=json.loads(l); d.pop('times_s'); print(json.dumps(d))" "$OUT/window-cost.jsonl" ;;
  process-state)  # issue 12 (session 20): the bare loop's own code in processes that take on
    # llem stage by stage (imported, loaded, instruments, ran) against plain bare processes,
    # one generate call a segment, mirrored rounds, every launcher on the launch core
    bash $stage put .whl/c0 >/dev/null && bash $stage unpack site-llem /tmp/site
    timeout $(( ${LIMIT:-570} - SECONDS )) python3 benchmarks/process_state.py --out /tmp/ps \
      --batch "${BATCH:-8}" --rounds "${ROUNDS:-10}" --launch-core "${launch_core:-4}" \
      --deadline $(( ${LIMIT:-570} - SECONDS - 30 )) ${EXTRA_ARGS:-} > "$OUT/ps-log.txt" 2>&1
    echo "exit $?" >> "$OUT/ps-log.txt"
    cp /tmp/ps/process_state.json "$OUT/" 2>/dev/null; tar -C /tmp -czf "$OUT/ps.tgz" ps
    tail -12 "$OUT/ps-log.txt" ;;
  fast)  # issue 12: static cache + compile against the bare static-cache + compile loop
    bash $stage put .whl/c2 >/dev/null
    val 540 --fast --fast-batches "${BATCHES:-1,32}" --rounds 2 --seconds 3 ;;
  *) echo "unknown step $1" >&2; exit 2 ;;
esac
