#!/usr/bin/env bash
# The real vLLM config classes for the mapping tests (issue: "if vllm can be pip-installed on
# the CPU CI machine, the introspection tests run against the real classes there").
#
# vLLM pins its own torch and CUDA kernels, so it gets a venv of its own, never llem's:
# CPU torch 2.13.0 + vllm==$VLLM_VERSION with --no-deps + the light imports it needs
# (.ci/vllm-cpu-requirements.txt). Writes the interpreter's path to $STATE/vllm-python;
# .ci/run exports it as LLEM_VLLM_PYTHON. Idempotent; ~2 min and ~1.5 GB the first time.
set -euo pipefail
cd "$(dirname "$0")/.."
# the one vLLM version (images/matrix.yaml engines:), unless overridden
VLLM_VERSION=${VLLM_VERSION:-$(sed -n 's/^  vllm: "\(.*\)"$/\1/p' images/matrix.yaml)}
STATE=${LLEM_IT_STATE:-/tmp/llem-it}
VENV=${LLEM_VLLM_VENV:-$PWD/.ci-cache/venv-vllm}
mkdir -p "$STATE"
rm -f "$STATE/vllm-python"
if ! "$VENV/bin/python" -c "import vllm, sys; sys.exit(vllm.__version__ != '$VLLM_VERSION')" \
    >/dev/null 2>&1; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  # (pip lists every vLLM requirement left out on purpose; those lines are dropped)
  "$VENV/bin/pip" install -q --disable-pip-version-check torch==2.13.0 2>&1 \
    | grep -v "WARNING: Location" || true
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "vllm==$VLLM_VERSION" 2>&1 \
    | grep -v "WARNING: Location" || true
  "$VENV/bin/pip" install -q --disable-pip-version-check -r .ci/vllm-cpu-requirements.txt \
    2>&1 | grep -v "^vllm .* requires \|dependency conflicts\|WARNING: Location" || true
fi
"$VENV/bin/python" -c "import vllm, vllm.config; vllm.EngineArgs; vllm.SamplingParams; \
vllm.config.SpeculativeConfig; print('vllm', vllm.__version__, 'config classes import')"
echo "$VENV/bin/python" > "$STATE/vllm-python"
