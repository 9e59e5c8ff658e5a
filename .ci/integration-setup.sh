#!/usr/bin/env bash
# Bring up the real components the Docker integration tests need, on a fresh Debian 12
# machine, as root, with no Docker Hub access. Idempotent: a second call only checks.
#
#   dockerd                      (Debian docker.io; no bridge network: tests use none/host)
#   127.0.0.1:5000  registry     (Debian docker-registry, no auth)
#   127.0.0.1:5001  registry     (htpasswd auth; user/password generated, kept in $STATE)
#   llem-test-base:bookworm      (debootstrap minbase + python3, imported; rootfs cached)
#   127.0.0.1:5000/llenergymeasure/pytorch:<version>-cpu
#                                (images/pytorch.Dockerfile on that base, built from a
#                                 wheelhouse made here, --network none; pushed to both)
#
# Writes $STATE/env (sourced by tests via LLEM_IT_ENV) with the registry addresses, the
# test image ref and the auth registry's credentials (mode 600).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${LLEM_CI_CACHE:-$ROOT/.ci-cache}
STATE=${LLEM_IT_STATE:-/tmp/llem-it}
PY=${PYTHON:-python3}
mkdir -p "$CACHE" "$STATE"
chmod 700 "$STATE"
T0=$(date +%s)
log() { echo "[integration-setup +$(( $(date +%s) - T0 ))s] $*"; }

VERSION=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/pyproject.toml" | head -1)
IMAGE_REPO=llenergymeasure/pytorch
IMAGE_TAG="$VERSION-cpu"

# --- 1. packages -------------------------------------------------------------------
need=()
for p in docker.io docker-registry debootstrap apache2-utils curl; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
  log "apt-get install ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# --- 2. dockerd ----------------------------------------------------------------------
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  # No default bridge: experiment containers run with network none; nothing else needed.
  nohup dockerd --bridge=none --iptables=false --ip-masq=false --ip-forward=false \
    >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see $STATE/dockerd.log" >&2; exit 1; }
fi
log "dockerd up: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"

# --- 3. registries -------------------------------------------------------------------
start_registry() {  # name port [auth]
  # Both registries serve ONE storage directory (distribution is stateless over its storage),
  # so an image pushed once is pullable anonymously from :5000 and only with a login from :5001.
  local name=$1 port=$2 auth=${3:-}
  local conf="$STATE/registry-$name.yml"
  if curl -s -o /dev/null "http://127.0.0.1:$port/v2/"; then return; fi
  mkdir -p "$STATE/registry-storage"
  {
    echo "version: 0.1"
    echo "log: {level: warn}"
    echo "storage:"
    echo "  filesystem: {rootdirectory: $STATE/registry-storage}"
    echo "  delete: {enabled: true}"
    echo "http: {addr: 127.0.0.1:$port}"
    if [[ -n $auth ]]; then
      echo "auth:"
      echo "  htpasswd: {realm: llem-test, path: $STATE/htpasswd}"
    fi
  } >"$conf"
  nohup docker-registry serve "$conf" >"$STATE/registry-$name.log" 2>&1 &
  echo $! >"$STATE/registry-$name.pid"
  for _ in $(seq 30); do curl -s -o /dev/null "http://127.0.0.1:$port/v2/" && return; sleep 0.5; done
  echo "registry $name on :$port did not start; see $STATE/registry-$name.log" >&2
  exit 1
}
if [[ ! -s $STATE/auth.env ]]; then
  user="llem-$(openssl rand -hex 3)"
  pass=$(openssl rand -hex 16)
  htpasswd -Bbc "$STATE/htpasswd" "$user" "$pass" 2>/dev/null
  umask 077
  printf 'LLEM_IT_REGISTRY_USER=%s\nLLEM_IT_REGISTRY_PASSWORD=%s\n' "$user" "$pass" >"$STATE/auth.env"
fi
# shellcheck disable=SC1091
source "$STATE/auth.env"
# Every setup pushes a new build under the same tag; on a reused machine the old ones pile
# up (13 GB seen). Collected while no registry serves the storage (an empty one has
# nothing to collect and the collector says so: ignored).
if ! curl -s -o /dev/null "http://127.0.0.1:5000/v2/" \
   && ! curl -s -o /dev/null "http://127.0.0.1:5001/v2/" && [[ -d $STATE/registry-storage ]]; then
  printf 'version: 0.1\nstorage:\n  filesystem: {rootdirectory: %s}\n' \
    "$STATE/registry-storage" >"$STATE/registry-gc.yml"
  docker-registry garbage-collect --delete-untagged "$STATE/registry-gc.yml" \
    >"$STATE/registry-gc.log" 2>&1 || true
fi
start_registry open 5000
start_registry auth 5001 auth
log "registries up on 127.0.0.1:5000 (open) and 127.0.0.1:5001 (htpasswd)"

# --- 4. CPU test base image -----------------------------------------------------------
if ! docker image inspect llem-test-base:bookworm >/dev/null 2>&1; then
  tarball="$CACHE/bookworm-minbase-python3.tar"
  if [[ ! -s $tarball ]]; then
    log "debootstrap bookworm (cached afterwards in $tarball)"
    rootfs="$STATE/rootfs"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      bookworm "$rootfs" http://deb.debian.org/debian >"$STATE/debootstrap.log" 2>&1 \
      || { tail -20 "$STATE/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . >"$tarball.tmp" && mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
  fi
  log "docker import llem-test-base:bookworm"
  docker import -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["/bin/bash"]' "$tarball" llem-test-base:bookworm >/dev/null
fi

# --- 5. wheelhouse (host python 3.11 == bookworm python 3.11) ---------------------------
WH="$CACHE/wheelhouse"
mkdir -p "$WH"
FIND_LINKS=()
[[ -d /opt/wheels ]] && FIND_LINKS=(--find-links /opt/wheels)
deps_key=$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
if [[ ! -f $WH/.deps-$deps_key ]]; then
  log "pip wheel .[pytorch] torch==2.13.0 (CPU) -> $WH"
  "$PY" -m pip wheel -q "${FIND_LINKS[@]}" -w "$WH" "$ROOT[pytorch]" "torch==2.13.0" \
    >"$STATE/pip-wheel.log" 2>&1 || { tail -20 "$STATE/pip-wheel.log" >&2; exit 1; }
  rm -f "$WH"/.deps-*
  touch "$WH/.deps-$deps_key"
fi
# Our own wheel changes with every commit; rebuild it (seconds).
rm -f "$WH"/llenergymeasure-*.whl
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WH" "$ROOT" >"$STATE/pip-self.log" 2>&1 \
  || "$PY" -m pip wheel -q --no-deps -w "$WH" "$ROOT" >"$STATE/pip-self.log" 2>&1

# --- 6. test image ---------------------------------------------------------------------
ctx="$STATE/build-context"
rm -rf "$ctx" && mkdir -p "$ctx/wheelhouse"
cp "$ROOT/images/pytorch.Dockerfile" "$ctx/Dockerfile"
ln "$WH"/*.whl "$ctx/wheelhouse/" 2>/dev/null || cp "$WH"/*.whl "$ctx/wheelhouse/"
REV=$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)
LOCAL_REF="127.0.0.1:5000/$IMAGE_REPO:$IMAGE_TAG"
log "docker build $LOCAL_REF (network none)"
DOCKER_BUILDKIT=0 docker build -q --network none \
  --build-arg BASE_IMAGE=llem-test-base:bookworm \
  --build-arg LLEM_VERSION="$VERSION" --build-arg VCS_REF="$REV" --build-arg CUDA=cpu \
  -t "$LOCAL_REF" -t "llem-test/pytorch:ci" "$ctx" >"$STATE/docker-build.log" 2>&1 \
  || { tail -30 "$STATE/docker-build.log" >&2; exit 1; }
rm -rf "$ctx"
docker image prune -f >/dev/null  # the dangling install stage of the multi-stage build

log "push $LOCAL_REF (also served, with auth, by :5001)"
docker push -q "$LOCAL_REF" >/dev/null

# A small image of its own layers for the pull tests (progress bars need a real download,
# and pulling the 1.6 GB test image again would cost minutes).
SMALL_REF=127.0.0.1:5000/llem-test/small:1
if ! curl -sf -o /dev/null "http://127.0.0.1:5000/v2/llem-test/small/manifests/1"; then
  small="$STATE/small-context"
  rm -rf "$small" && mkdir -p "$small"
  printf 'FROM llem-test-base:bookworm\nRUN head -c 8000000 /dev/urandom > /blob1\nRUN head -c 8000000 /dev/urandom > /blob2\n' \
    >"$small/Dockerfile"
  DOCKER_BUILDKIT=0 docker build -q --network none -t "$SMALL_REF" "$small" >/dev/null
  docker push -q "$SMALL_REF" >/dev/null
  rm -rf "$small"
fi
docker rmi "$SMALL_REF" >/dev/null 2>&1 || true

umask 077
cat >"$STATE/env" <<ENV
LLEM_IT_OPEN_REGISTRY=127.0.0.1:5000
LLEM_IT_AUTH_REGISTRY=127.0.0.1:5001
LLEM_IT_IMAGE=$LOCAL_REF
LLEM_IT_VERSION=$VERSION
LLEM_IT_BASE_IMAGE=llem-test-base:bookworm
LLEM_IT_SMALL_IMAGE=llem-test/small:1
$(cat "$STATE/auth.env")
ENV
log "done in $(( $(date +%s) - T0 ))s; test env in $STATE/env"
