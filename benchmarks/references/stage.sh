#!/usr/bin/env bash
# Stage packages on the GPU machine, which has no package index: each call carries up to
# ~60 MB, so the Python environments the validation needs travel as xz tarballs (made by
# tools/gpu-wheels.sh + tools/gpu-pack.sh from pinned PyPI wheels), some split in parts
# over consecutive calls into /tmp/stage, which survives between calls that follow each
# other closely.
#   stage.sh put DIR...           copy the carried files into /tmp/stage
#   stage.sh unpack NAME TARGET   join NAME.tar.xz(.part-*), check its sha256 against
#                                 benchmarks/references/packs.sha256, extract into TARGET
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stage=/tmp/stage
mkdir -p "$stage"
case "${1:-}" in
  put)
    shift
    for d in "$@"; do cp -f "$d"/* "$stage"/; done
    ls -la "$stage" ;;
  unpack)
    name=$2 target=$3
    if [ ! -f "$stage/$name.tar.xz" ]; then cat "$stage/$name".tar.xz.part-* > "$stage/$name.tar.xz"; fi
    want=$(awk -v n="$name.tar.xz" '$2 == n {print $1}' "$here/packs.sha256")
    got=$(sha256sum "$stage/$name.tar.xz" | cut -d' ' -f1)
    if [ "$want" != "$got" ]; then echo "stage: $name.tar.xz sha256 $got, expected $want" >&2; exit 1; fi
    mkdir -p "$target"
    xz -dc "$stage/$name.tar.xz" | tar -x -C "$target"
    echo "stage: $name -> $target ($(du -sh "$target" | cut -f1))" ;;
  *) echo "usage: stage.sh put DIR... | unpack NAME TARGET" >&2; exit 2 ;;
esac
