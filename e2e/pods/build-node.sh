#!/usr/bin/env bash
# Build the node side of the real-pods suite from Go modules, into the same cache as the
# control-plane tools (e2e/control-plane/build-tools.sh builds those):
#   kubelet, kube-proxy, kube-scheduler   k8s.io/kubernetes (same version and wrapper as the API server)
#   coredns                               github.com/coredns/coredns, only the plugins cluster DNS needs
#   pause                                 e2e/pods/pause (a few lines of Go: sleeps, reaps, exits on TERM)
# Later runs find each binary and its version stamp and skip it. Prints the bin directory.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
KUBE_VERSION=${KUBE_VERSION:-1.34.4}
COREDNS_VERSION=${COREDNS_VERSION:-1.14.7}
CACHE=${FERRYMAN_E2E_CACHE:-$HOME/.cache/ferryman-e2e}
BIN=$CACHE/bin
mkdir -p "$BIN"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
log() { printf '[build-node %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
retry() { local i; for i in 1 2; do "$@" && return 0; log "retrying ($i): $*"; sleep $((5 * i)); done; "$@"; }
have() { [[ -x "$BIN/$1" && "$(cat "$BIN/.$1.version" 2>/dev/null)" == "$2" ]]; }
stamp() { echo "$2" > "$BIN/.$1.version"; }
# Go builds only use idle CPU: the machines running this are shared.
gobuild() { nice -n 19 ionice -c3 go build "$@"; }

PAUSE_SUM=$(sha256sum "$HERE/pause/main.go" | cut -c1-12)
if ! have pause "$PAUSE_SUM"; then
  log "building pause"
  (cd "$HERE/pause" && GOFLAGS= gobuild -trimpath -ldflags "-s -w" -o "$BIN/pause" .)
  stamp pause "$PAUSE_SUM"
fi

KUBE_BINS=(kubelet kube-proxy kube-scheduler)
need_kube=0
for b in "${KUBE_BINS[@]}"; do have "$b" "$KUBE_VERSION" || need_kube=1; done
if [[ $need_kube == 1 ]]; then
  log "building ${KUBE_BINS[*]} v$KUBE_VERSION (long on 2 cores)"
  mkdir -p "$WORK/kube" && cd "$WORK/kube"
  go mod init local/kubebuild >/dev/null 2>&1
  STAGING_V="v0.${KUBE_VERSION#1.}"
  KMOD=$(retry go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  grep -oE 'k8s\.io/[A-Za-z0-9._-]+ => \./staging/src/k8s\.io/[A-Za-z0-9._-]+' "$KMOD" \
    | awk -v v="$STAGING_V" '{print "replace " $1 " => " $1 " " v}' >> go.mod
  retry go get $(for b in "${KUBE_BINS[@]}"; do echo "k8s.io/kubernetes/cmd/$b@v${KUBE_VERSION}"; done)
  MAJOR=${KUBE_VERSION%%.*}; MINOR=$(echo "$KUBE_VERSION" | cut -d. -f2)
  LDF="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDF="$LDF -X $p.gitVersion=v${KUBE_VERSION} -X $p.gitMajor=${MAJOR} -X $p.gitMinor=${MINOR}"
    LDF="$LDF -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for b in "${KUBE_BINS[@]}"; do
    have "$b" "$KUBE_VERSION" && continue
    log "  go build $b"
    gobuild -trimpath -tags selinux,notest -ldflags "$LDF" -o "$BIN/$b" "k8s.io/kubernetes/cmd/$b"
    stamp "$b" "$KUBE_VERSION"
  done
fi

# CoreDNS with the plugins a cluster's DNS uses (its full build links every cloud SDK).
if ! have coredns "$COREDNS_VERSION"; then
  log "building coredns v$COREDNS_VERSION"
  mkdir -p "$WORK/coredns" && cd "$WORK/coredns"
  go mod init local/corednsbuild >/dev/null 2>&1
  cat > main.go <<'GO'
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
)

// The order plugins run in (a subset of CoreDNS's plugin.cfg, in its order).
func init() {
	dnsserver.Directives = []string{"errors", "log", "health", "ready", "cache", "loadbalance", "kubernetes"}
}

func main() { coremain.Run() }
GO
  retry go get "github.com/coredns/coredns@v${COREDNS_VERSION}"
  retry go mod tidy
  gobuild -trimpath -ldflags "-s -w" -o "$BIN/coredns" .
  stamp coredns "$COREDNS_VERSION"
fi
log "node binaries ready in $BIN"
echo "$BIN"
