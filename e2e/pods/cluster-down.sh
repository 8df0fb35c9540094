#!/usr/bin/env bash
# Stop what cluster-up.sh started, by the pids it recorded, and undo its host changes: the
# pods' containers (and their runc shims), kube-proxy's and our iptables rules, the bridge,
# the pods' network namespaces and volume mounts. Safe to run twice or after a failed start.
#   e2e/pods/cluster-down.sh STATE_DIR
set -uo pipefail
STATE=${1:?usage: cluster-down.sh STATE_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/cluster.env"
BIN=${FERRYMAN_E2E_BIN:-${FERRYMAN_E2E_CACHE:-$HOME/.cache/ferryman-e2e}/bin}
[[ -d $STATE ]] || exit 0
STATE=$(cd "$STATE" && pwd)
log() { printf '[cluster-down %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
stop() {  # NAME: SIGTERM, then SIGKILL after 15 s
  local f=$STATE/$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$f"
}
CTR=(ctr -a "$CONTAINERD_SOCK" -n k8s.io)

# Pods first, through the kubelet, so their sandboxes are torn down by CNI.
if [[ -f $STATE/kubelet.pid ]] && kill -0 "$(cat "$STATE/kubelet.pid")" 2>/dev/null; then
  export KUBECONFIG=$STATE/kubeconfig
  K() { timeout 30 "$BIN/kubectl" "$@" >/dev/null 2>&1; }
  K delete deploy,sts,rs,ds,job --all -A --wait=false
  K delete pods --all -A --grace-period=1 --wait=false
  for _ in $(seq 60); do
    [[ -z $("${CTR[@]}" tasks ls -q 2>/dev/null) ]] && break; sleep 0.5
  done
fi
stop kubelet
stop kube-proxy
# What is still running in our containerd: its tasks' pids are its shims' children.
if "${CTR[@]}" version >/dev/null 2>&1; then
  for t in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  sleep 1
  for t in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks rm -f "$t" >/dev/null 2>&1; done
  for c in $("${CTR[@]}" containers ls -q 2>/dev/null); do "${CTR[@]}" containers rm "$c" >/dev/null 2>&1; done
fi
stop containerd
# runc shims of our containerd (their command line names its socket) outlive it.
for p in /proc/[0-9]*; do
  if tr '\0' ' ' 2>/dev/null < "$p/cmdline" | grep -q "containerd-shim.*-address $CONTAINERD_SOCK"; then
    kill -9 "${p#/proc/}" 2>/dev/null
  fi
done
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd

# Host changes.
[[ -f $STATE/kube-proxy.yaml ]] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1
if [[ -f $STATE/forward-rules ]]; then
  iptables -w -D FORWARD -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null
  iptables -w -D FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null
  iptables -w -D FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j DROP 2>/dev/null
  rm -f "$STATE/forward-rules"
fi
if [[ -f $STATE/netns-before ]]; then
  for ns in $(ls /run/netns 2>/dev/null | grep '^cni-' | sort | comm -13 "$STATE/netns-before" -); do
    ip netns delete "$ns" 2>/dev/null
  done
fi
ip link del "$BRIDGE" 2>/dev/null
# The kubelet's volume mounts (deepest first), then its directory.
if [[ -d $VARLIB/kubelet ]]; then
  findmnt -rn -o TARGET | grep "^$VARLIB/kubelet" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
  rm -rf "${VARLIB:?}/kubelet"
fi
# containerd's own mounts (rootfs of killed containers, sandbox shm).
findmnt -rn -o TARGET | grep -E "^($RUN|$VARLIB/containerd)" | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done
rm -rf "$RUN/containerd" "$RUN/state-dir"
log "stopped"
