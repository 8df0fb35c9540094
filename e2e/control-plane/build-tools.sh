#!/usr/bin/env bash
# Build the e2e tools from their Go modules with this machine's Go, into a cache outside the
# repository. Later runs find the binaries (and their version stamp) and skip the build.
#
#   e2e/control-plane/build-tools.sh            # prints the bin directory on its last line
#
# Tools: etcd, kube-apiserver, kube-controller-manager, kubectl (same version as the API
# server), helm, kubeconform, helm-unittest (installed as a helm plugin under the cache).
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.34.4}       # staging modules are then v0.34.4
ETCD_VERSION=${ETCD_VERSION:-3.6.16}
HELM_VERSION=${HELM_VERSION:-3.22.0}       # helm v3: helm-unittest is a v3 plugin
KUBECONFORM_VERSION=${KUBECONFORM_VERSION:-0.7.0}
HELM_UNITTEST_VERSION=${HELM_UNITTEST_VERSION:-1.0.3}

CACHE=${FERRYMAN_E2E_CACHE:-$HOME/.cache/ferryman-e2e}
BIN=$CACHE/bin
mkdir -p "$BIN" "$CACHE/logs"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
command -v go >/dev/null || { echo "build-tools: Go is required (go not on PATH)" >&2; exit 1; }

log() { printf '[build-tools %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# Network steps (the Go module proxy) get three tries.
retry() { local i; for i in 1 2; do "$@" && return 0; log "retrying ($i): $*"; sleep $((5 * i)); done; "$@"; }

# have NAME VERSION: true when $BIN/NAME exists and was built at VERSION
have() { [[ -x "$BIN/$1" && "$(cat "$BIN/.$1.version" 2>/dev/null)" == "$2" ]]; }
stamp() { echo "$2" > "$BIN/.$1.version"; }

# ---- etcd: `go install go.etcd.io/etcd/server/v3@v…` is refused (its go.mod has replace
#      directives), so build its main package from a small wrapper module.
if ! have etcd "$ETCD_VERSION"; then
  log "building etcd v$ETCD_VERSION"
  mkdir -p "$WORK/etcd" && cd "$WORK/etcd"
  go mod init local/etcdbuild >/dev/null 2>&1
  printf 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n' > main.go
  retry go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}"
  retry go mod tidy
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd" .
  stamp etcd "$ETCD_VERSION"
fi

# ---- helm, kubeconform: plain module installs.
# helm's default Kubernetes version (for `helm template`/`lint` without a cluster) is set
# at link time, as helm's Makefile does; otherwise it is 1.20 and kubeVersion checks fail.
KUBE_MINOR=$(echo "$KUBE_VERSION" | cut -d. -f2)
HELM_STAMP="$HELM_VERSION+k8s1.$KUBE_MINOR"
if ! have helm "$HELM_STAMP"; then
  log "building helm v$HELM_VERSION"
  HLDF="-s -w -X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION}"
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    HLDF="$HLDF -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$KUBE_MINOR"
  done
  retry env GOBIN="$BIN" go install -trimpath -ldflags "$HLDF" "helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}"
  stamp helm "$HELM_STAMP"
fi
if ! have kubeconform "$KUBECONFORM_VERSION"; then
  log "building kubeconform v$KUBECONFORM_VERSION"
  retry env GOBIN="$BIN" go install -trimpath -ldflags "-s -w" \
    "github.com/yannh/kubeconform/cmd/kubeconform@v${KUBECONFORM_VERSION}"
  stamp kubeconform "$KUBECONFORM_VERSION"
fi

# ---- helm-unittest: built from its Go module, installed as a helm plugin in the cache
#      (HELM_PLUGINS=$CACHE/helm-plugins; `helm plugin install` would fetch from GitHub).
if ! have untt "$HELM_UNITTEST_VERSION"; then
  log "building helm-unittest v$HELM_UNITTEST_VERSION"
  # Its go.mod has replace directives, so `go install …@v` is refused: build it from a
  # wrapper module, as for etcd.
  mkdir -p "$WORK/untt" && cd "$WORK/untt"
  go mod init local/unttbuild >/dev/null 2>&1
  UMOD=$(retry go mod download -json "github.com/helm-unittest/helm-unittest@v${HELM_UNITTEST_VERSION}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  grep -E '^replace ' "$UMOD" >> go.mod || true   # its own replaces (a yaml-jsonpath fork)
  if { retry go get "github.com/helm-unittest/helm-unittest/cmd/helm-unittest@v${HELM_UNITTEST_VERSION}" &&
       go build -trimpath -ldflags "-s -w" -o "$BIN/untt" \
         github.com/helm-unittest/helm-unittest/cmd/helm-unittest; } \
      > "$CACHE/logs/helm-unittest.log" 2>&1; then
    stamp untt "$HELM_UNITTEST_VERSION"
  else
    log "helm-unittest did not build (see $CACHE/logs/helm-unittest.log); chart unit tests will be skipped"
  fi
fi
if have untt "$HELM_UNITTEST_VERSION"; then
  P=$CACHE/helm-plugins/unittest
  mkdir -p "$P/untt"
  cp "$BIN/untt" "$P/untt/untt"
  cat > "$P/plugin.yaml" <<PLUGIN
name: "unittest"
version: "${HELM_UNITTEST_VERSION}"
usage: "unittest for helm charts"
description: "Unit test for helm chart in YAML with ease to keep your chart functional and robust."
ignoreFlags: false
command: "\$HELM_PLUGIN_DIR/untt/untt"
PLUGIN
fi

# ---- kube-apiserver, kube-controller-manager, kubectl: k8s.io/kubernetes requires every
#      staging module at v0.0.0 and replaces it with ./staging/...; a consumer module must
#      replace each of them with the published v0.<minor>.<patch>.
KUBE_BINS=(kube-apiserver kube-controller-manager kubectl)
need_kube=0
for b in "${KUBE_BINS[@]}"; do have "$b" "$KUBE_VERSION" || need_kube=1; done
if [[ $need_kube == 1 ]]; then
  log "building kube-apiserver, kube-controller-manager, kubectl v$KUBE_VERSION (long on 2 cores)"
  mkdir -p "$WORK/kube" && cd "$WORK/kube"
  go mod init local/kubebuild >/dev/null 2>&1
  STAGING_V="v0.${KUBE_VERSION#1.}"
  KMOD=$(retry go mod download -json "k8s.io/kubernetes@v${KUBE_VERSION}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  grep -oE 'k8s\.io/[A-Za-z0-9._-]+ => \./staging/src/k8s\.io/[A-Za-z0-9._-]+' "$KMOD" \
    | awk -v v="$STAGING_V" '{print "replace " $1 " => " $1 " " v}' >> go.mod
  retry go get "k8s.io/kubernetes/cmd/kube-apiserver@v${KUBE_VERSION}" \
         "k8s.io/kubernetes/cmd/kube-controller-manager@v${KUBE_VERSION}" \
         "k8s.io/kubernetes/cmd/kubectl@v${KUBE_VERSION}"
  MAJOR=${KUBE_VERSION%%.*}; MINOR=$(echo "$KUBE_VERSION" | cut -d. -f2)
  LDF="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do  # as hack/lib/version.sh does
    LDF="$LDF -X $p.gitVersion=v${KUBE_VERSION} -X $p.gitMajor=${MAJOR} -X $p.gitMinor=${MINOR}"
    LDF="$LDF -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  for b in "${KUBE_BINS[@]}"; do
    log "  go build $b"
    go build -trimpath -tags selinux,notest -ldflags "$LDF" -o "$BIN/$b" "k8s.io/kubernetes/cmd/$b"
    stamp "$b" "$KUBE_VERSION"
  done
fi

log "tools ready in $BIN"
echo "$BIN"
