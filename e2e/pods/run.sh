#!/usr/bin/env bash
# The end-to-end suite with real pods (`make e2e-kind`): a one-node cluster on this host
# (cluster-up.sh), every image built here (images.sh), the chart installed with helm, and
# the scenarios in e2e/pods/tests run against pods.
#
#   e2e/pods/run.sh [pytest args]          KEEP=1 keeps the cluster (and dockerd) running
#
# Needs root (the kubelet, containerd, a bridge and iptables rules), Go, and Debian's
# docker.io, debootstrap, containerd, runc and containernetworking-plugins, which it installs
# when missing. It starts dockerd when none runs, and stops what it started.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
CACHE=${FERRYMAN_E2E_CACHE:-$HOME/.cache/ferryman-e2e}
STATE=${FERRYMAN_E2E_STATE:-$(mktemp -d /tmp/ferryman-pods.XXXXXX)}
log() { printf '[e2e-pods %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
t0=$(date +%s)
[[ $(id -u) == 0 ]] || { log "needs root (kubelet, containerd, bridge, iptables)"; exit 1; }

# ---- Debian packages (quick when present)
PKGS=(docker.io debootstrap containerd runc containernetworking-plugins iptables)
missing=()
for p in "${PKGS[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done
if [[ ${#missing[@]} -gt 0 ]]; then
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && nice -n 19 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- dockerd: ours only if none is running
STARTED_DOCKERD=
cleanup() {
  local rc=$?
  if [[ -z ${KEEP:-} ]]; then
    "$HERE/cluster-down.sh" "$STATE" || true
    if [[ -n $STARTED_DOCKERD ]]; then
      kill "$STARTED_DOCKERD" 2>/dev/null
      for _ in $(seq 60); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.5; done
    fi
  else
    log "KEEP=1: cluster left running; source $STATE/env; stop with: e2e/pods/cluster-down.sh $STATE"
  fi
  log "done in $(( $(date +%s) - t0 ))s (rc=$rc)"
}
trap cleanup EXIT
if ! docker info >/dev/null 2>&1; then
  log "starting dockerd"
  mkdir -p "$STATE/logs"
  nice -n 19 ionice -c3 dockerd > "$STATE/logs/dockerd.log" 2>&1 &   # its builds use idle CPU only
  STARTED_DOCKERD=$!
  for _ in $(seq 120); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  docker info >/dev/null 2>&1 || { log "dockerd did not start:"; tail -20 "$STATE/logs/dockerd.log" >&2; exit 1; }
fi

# ---- binaries (cached), images (cached layers), cluster
BIN=$("$ROOT/e2e/control-plane/build-tools.sh" | tail -1)
"$HERE/build-node.sh" >/dev/null
export FERRYMAN_E2E_BIN=$BIN
log "binaries ready ($(( $(date +%s) - t0 ))s)"
"$HERE/images.sh"
log "images ready ($(( $(date +%s) - t0 ))s)"
"$HERE/cluster-up.sh" "$STATE"
log "cluster ready ($(( $(date +%s) - t0 ))s)"
source "$STATE/env"
export FERRYMAN_E2E_STATE=$STATE
"$PYTHON" -m pytest -c "$HERE/pytest.ini" --rootdir "$HERE" "$HERE/tests" "$@"
