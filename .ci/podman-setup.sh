#!/usr/bin/env bash
# Podman for tests/integration/test_podman_study.py: install Debian's podman and copy the
# CPU test image that .ci/integration-setup.sh pushed to 127.0.0.1:5000 into podman's
# store, the way a cluster node would pull it. Idempotent.
#
# This sandbox has no systemd and refuses raising rlimits (no CAP_SYS_RESOURCE), so the
# tests run podman with `--runtime runc --cgroup-manager=cgroupfs` and lowered ulimits via
# LLEM_PODMAN_GLOBAL_ARGS / LLEM_PODMAN_RUN_ARGS (see docs/slurm.md).
set -euo pipefail
STATE=${LLEM_IT_STATE:-/tmp/llem-it}
[ -f "$STATE/env" ] || { echo "podman-setup: run .ci/integration-setup.sh first" >&2; exit 1; }
# shellcheck disable=SC1091
. "$STATE/env"
if ! command -v podman >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends podman >/dev/null
fi
G=(--runtime runc --cgroup-manager=cgroupfs)
# always pull: integration-setup rebuilds the image from the current tree on every run
podman "${G[@]}" pull --quiet --tls-verify=false "$LLEM_IT_IMAGE" >/dev/null
# the build this pull replaced, 1.7 GB each (43 GB of them seen on a reused machine)
podman "${G[@]}" image prune -f >/dev/null
podman "${G[@]}" run --rm --network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
  "$LLEM_IT_IMAGE" --help >/dev/null 2>&1 || true
echo "podman ready: $(podman --version), image $LLEM_IT_IMAGE"
