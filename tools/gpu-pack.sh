#!/usr/bin/env bash
# Pack the wheel folders of tools/gpu-wheels.sh into the xz tarballs the GPU machine
# unpacks (benchmarks/references/stage.sh): installed here for CPython 3.12 / manylinux
# x86_64 with --target, so the GPU machine needs no pip, then xz'd and split into parts.
# vLLM's FlashAttention-2 (Ampere) and MoE kernels are left out: vLLM imports both
# optionally, the H100 runs FlashAttention 3, and they are 160 of its 290 MB.
#   tools/gpu-pack.sh          all three packs and the carries .whl/c0 .. .whl/c3
#   tools/gpu-pack.sh small    site-llem and tf4 only, into .whl/c0 (the parity steps'
#                              carry; needs only `tools/gpu-wheels.sh llem ob`)
set -euo pipefail
cd "$(dirname "$0")/.."
out=.whl/packs; work=$(mktemp -d); mkdir -p "$out"
plat=(); for p in manylinux_2_28_x86_64 manylinux2014_x86_64 manylinux_2_17_x86_64 manylinux_2_24_x86_64 \
  manylinux_2_26_x86_64 manylinux_2_27_x86_64 manylinux_2_31_x86_64 manylinux_2_34_x86_64 \
  manylinux_2_35_x86_64 manylinux1_x86_64 any; do plat+=(--platform "$p"); done
install() {  # install TARGET WHEEL...
  local t=$1; shift
  python3 -m pip install -q --no-deps --no-compile --only-binary=:all: --python-version 3.12 \
    --implementation cp --abi cp312 --abi abi3 --abi none "${plat[@]}" --target "$t" "$@"
}
names=(site-llem tf4 site-vllm); [ "${1:-}" = small ] && names=(site-llem tf4)
install "$work/site-llem" .whl/llem/*.whl
install "$work/tf4" .whl/ob/*.whl
if [ "${#names[@]}" = 3 ]; then
  install "$work/site-vllm" .whl/vllm-deps/*.whl .whl/vllm-wheel/vllm-0.26.0-*.whl
  rm -f "$work/site-vllm/vllm/vllm_flash_attn/_vllm_fa2_C.abi3.so" \
        "$work/site-vllm/vllm/_moe_C_stable_libtorch.abi3.so"
fi
sums=benchmarks/references/packs.sha256  # what stage.sh checks: a pack not rebuilt keeps its line
for name in "${names[@]}"; do
  tar -C "$work/$name" -cf - . | xz -6 -T0 > "$out/$name.tar.xz"
  line=$(cd "$out" && sha256sum "$name.tar.xz")
  { grep -v "  $name.tar.xz\$" "$sums" || true; echo "$line"; } > "$sums.new" && mv "$sums.new" "$sums"
done
rm -rf "$work"
rm -rf .whl/c0 && mkdir -p .whl/c0 && cp "$out/site-llem.tar.xz" "$out/tf4.tar.xz" .whl/c0/
[ "${#names[@]}" = 3 ] || { du -sh .whl/c0; exit 0; }
# three carry folders (a call carries 64 MiB with the working tree, ~2 MB): the two small
# packs with the first 46 MB of site-vllm, then 58 MB, then the rest (~58 MB); stage.sh put
# each on the GPU machine in order, in calls no more than 30 s apart
rm -rf .whl/c1 .whl/c2 .whl/c3 .whl/c4 "$out"/site-vllm.tar.xz.part-*
mkdir -p .whl/c1 .whl/c2 .whl/c3
cp "$out/site-llem.tar.xz" "$out/tf4.tar.xz" .whl/c1/
# dd, not tail | head: head closing the pipe early kills tail with SIGPIPE, which pipefail
# turns into this script's failure before part c is written
part() {  # part SKIP COUNT DEST (COUNT 0: to the end)
  dd if="$out/site-vllm.tar.xz" of="$3" bs=1M iflag=skip_bytes,count_bytes skip="$1" \
    $( [ "$2" -gt 0 ] && echo count="$2" ) status=none
}
part 0 46000000 .whl/c1/site-vllm.tar.xz.part-a
part 46000000 58000000 .whl/c2/site-vllm.tar.xz.part-b
part 104000000 0 .whl/c3/site-vllm.tar.xz.part-c
du -sh .whl/c1 .whl/c2 .whl/c3
