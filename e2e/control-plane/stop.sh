#!/usr/bin/env bash
# Stop what start.sh started in STATE_DIR (by the pids it recorded), newest first.
set -uo pipefail
STATE=${1:?usage: stop.sh STATE_DIR}
for name in kube-controller-manager kube-apiserver etcd; do
  pidfile=$STATE/$name.pid
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
done
