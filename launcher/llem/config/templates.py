"""Commented config templates written by ``llem config new``."""

EXPERIMENT = """\
# llem experiment. Every key is optional; `llem config show FILE` prints the resolved
# values and where each came from. Unknown keys are errors (backend options not covered
# here go under `extra:`).
name: my-experiment
model: builtin:tiny-llama        # a local path, an HF-cache id, or builtin:NAME
backend: pytorch                 # pytorch | vllm | tensorrt
# preset: quick-test             # quick-test | benchmark | throughput

pytorch:
  dtype: auto                    # auto = bfloat16 on GPU, float32 on CPU
  attn_implementation: auto      # auto | eager | sdpa | flash_attention_2
  cache_implementation: dynamic  # dynamic | static (static + compile is fastest)
  compile: false

decoding:
  strategy: greedy               # greedy | sampling | beam
  max_new_tokens: 32
  ignore_eos: true               # fixed output length: comparable runs

workload:
  dataset: builtin:prompts       # or a .txt / .jsonl file
  num_prompts: 16
  batch_size: 4
  batching: static               # static | sorted | dynamic (needs token_budget)

measurement:
  energy_backend: auto           # auto | zeus | nvml | codecarbon | rapl | none
  baseline_seconds: 10           # idle power before the run; 0 disables
  min_window_seconds: 1          # repeat the workload until the window is this long

runtime:
  runtime: auto                  # auto (docker if a daemon answers) | docker | local
  gpus: []                       # [0] or ["GPU-uuid"]; empty = first GPU
"""

STUDY = """\
# llem study: a base experiment, a sweep grid over dotted paths, and how to repeat it.
name: my-study
model: builtin:tiny-llama
backend: pytorch
decoding:
  max_new_tokens: 32
workload:
  num_prompts: 16

sweep:                           # the grid: every combination is one experiment
  workload.batch_size: [1, 4, 16]
  decoding.max_new_tokens: [16, 32, 64]

study:
  cycles: 5                      # >= 5 for meaningful confidence intervals
  # target_ci:                   # add cycles until each configuration's 95% CI is narrow:
  #   metric: energy_per_token   #   a metric of `llem results show`
  #   rel_half_width: 0.05       #   (high - low) / 2 / mean <= 5%
  #   max_cycles: 20             #   most cycles per configuration, planned ones included
  order: interleaved             # grouped | interleaved | shuffled
  seed: 0
  cooldown_seconds: 0
"""
