#!/usr/bin/env bash
# Re-create the wheel folders the GPU validation carries to the GPU machine (no package
# index there): Python 3.12, manylinux x86_64, exact pins. Usage: tools/gpu-wheels.sh [llem|ob|vllm]...
# Folders land under .whl/ (git-ignored); benchmarks/references/README.md says how they travel.
set -euo pipefail
cd "$(dirname "$0")/.."
PLAT=(--platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_31_x86_64
      --platform manylinux_2_34_x86_64 --platform manylinux_2_35_x86_64 --platform manylinux1_x86_64 --platform any)
dl() {  # dl DIR SPEC...
  local dir=$1; shift; mkdir -p "$dir"
  for spec in "$@"; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --abi cp312 --abi abi3 --abi none "${PLAT[@]}" -d "$dir" "$spec" 2>&1 | grep -v "^WARNING: Location" || true
  done
}
llem() {  # llem's own needs that the GPU machine lacks (~25 MB)
  dl .whl/llem pydantic==2.13.4 pydantic-core==2.46.4 annotated-types typing-inspection platformdirs pyyaml \
    zeus==0.16.0 tyro docstring-parser typeguard shtab python-dateutil \
    codecarbon==3.3.2 arrow pycountry questionary prompt_toolkit rapidfuzz wcwidth py-cpuinfo \
    calflops docker authlib joserfc prometheus_client
}
ob() {  # optimum-benchmark 0.6.0 and the transformers 4.57 stack it imports (installed apart)
  dl .whl/ob optimum-benchmark==0.6.0 "transformers==4.57.*" "huggingface-hub==0.36.*" "datasets==4.4.*" \
    "tokenizers==0.22.*" hydra-core omegaconf flatten-dict colorlog dill multiprocess xxhash
  if ! ls .whl/ob/antlr4_python3_runtime-4.9.3-*.whl >/dev/null 2>&1; then
    python3 -m pip wheel -q --no-deps antlr4-python3-runtime==4.9.3 -w .whl/ob
  fi
}
vllm() {  # vLLM 0.26.0 (torch 2.11 + CUDA 13) and its import-time needs; the wheel split in parts
  dl .whl/vllm-wheel vllm==0.26.0
  dl .whl/vllm-deps "openai<3" apache-tvm-ffi==0.1.10 xgrammar==0.2.1 fastapi==0.133.0 starlette \
    opentelemetry-api opentelemetry-sdk opentelemetry-semantic-conventions importlib-metadata zipp \
    orjson msgspec pyzmq partial-json-parser cbor2 pybase64 setproctitle ijson watchfiles python-json-logger \
    openai-harmony jsonschema referencing rpds-py jsonschema-specifications blake3 cachetools distro jiter \
    compressed-tensors==0.17.0 depyf==0.20.0 astor lark==1.2.2 gguf outlines_core==0.2.14 \
    lm-format-enforcer==0.11.3 interegular diskcache "llguidance==1.6.*" mistral_common pydantic-extra-types \
    flashinfer-python==0.6.14 cuda-tile nvidia-cudnn-frontend nvidia-cutlass-dsl==4.6.0 sniffio \
    prometheus-client prometheus-fastapi-instrumentator py-cpuinfo einops msgpack tiktoken cloudpickle \
    sentencepiece protobuf pillow
}
for what in "${@:-llem ob vllm}"; do for w in $what; do "$w"; done; done
du -sh .whl/* 2>/dev/null
