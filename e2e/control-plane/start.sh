#!/usr/bin/env bash
# Start a real Kubernetes control plane on loopback: etcd, kube-apiserver (RBAC on, token
# auth, ServiceAccount tokens) and kube-controller-manager (Deployments get ReplicaSets,
# ownerReferences are garbage-collected, namespaces are emptied on delete). No kubelet: pods
# stay Pending. Free ports are picked; all state lives in STATE_DIR.
#
#   e2e/control-plane/start.sh STATE_DIR      # then: source STATE_DIR/env
#   e2e/control-plane/stop.sh STATE_DIR
set -euo pipefail
STATE=${1:?usage: start.sh STATE_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${FERRYMAN_E2E_BIN:-${FERRYMAN_E2E_CACHE:-$HOME/.cache/ferryman-e2e}/bin}
for tool in etcd kube-apiserver kube-controller-manager kubectl; do
  [[ -x $BIN/$tool ]] || { echo "start.sh: $BIN/$tool is missing; run e2e/control-plane/build-tools.sh" >&2; exit 1; }
done
mkdir -p "$STATE/certs" "$STATE/logs"
STATE=$(cd "$STATE" && pwd)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
ETCD_CLIENT=$(free_port); ETCD_PEER=$(free_port); API_PORT=$(free_port); KCM_PORT=$(free_port)

"$BIN/etcd" --name e2e --data-dir "$STATE/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER" --listen-metrics-urls "" \
  > "$STATE/logs/etcd.log" 2>&1 &
echo $! > "$STATE/etcd.pid"

openssl genrsa -out "$STATE/sa.key" 2048 2>/dev/null
openssl rsa -in "$STATE/sa.key" -pubout -out "$STATE/sa.pub" 2>/dev/null
ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
echo "$ADMIN_TOKEN,e2e-admin,e2e-admin,system:masters" > "$STATE/tokens.csv"

for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$ETCD_CLIENT/health" >/dev/null 2>&1 && break; sleep 0.1
done

"$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_CLIENT" \
  --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" \
  --cert-dir="$STATE/certs" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --authorization-mode=RBAC --token-auth-file="$STATE/tokens.csv" \
  --service-account-issuer="https://127.0.0.1:$API_PORT" \
  --service-account-key-file="$STATE/sa.pub" --service-account-signing-key-file="$STATE/sa.key" \
  --disable-admission-plugins=ServiceAccount --allow-privileged=true \
  --enable-priority-and-fairness=false \
  > "$STATE/logs/kube-apiserver.log" 2>&1 &
echo $! > "$STATE/kube-apiserver.pid"

cat > "$STATE/kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster: {server: "https://127.0.0.1:$API_PORT", insecure-skip-tls-verify: true}
users:
  - name: e2e-admin
    user: {token: "$ADMIN_TOKEN"}
contexts:
  - name: e2e
    context: {cluster: e2e, user: e2e-admin, namespace: default}
current-context: e2e
KCFG

ready=0
for _ in $(seq 240); do
  if "$BIN/kubectl" --kubeconfig "$STATE/kubeconfig" get --raw /readyz >/dev/null 2>&1; then ready=1; break; fi
  if ! kill -0 "$(cat "$STATE/kube-apiserver.pid")" 2>/dev/null; then break; fi
  sleep 0.25
done
if [[ $ready != 1 ]]; then
  echo "start.sh: kube-apiserver did not become ready; last log lines:" >&2
  tail -20 "$STATE/logs/kube-apiserver.log" >&2
  "$HERE/stop.sh" "$STATE"
  exit 1
fi

"$BIN/kube-controller-manager" --kubeconfig="$STATE/kubeconfig" --leader-elect=false \
  --controllers=garbagecollector,namespace,serviceaccount,deployment,replicaset \
  --service-account-private-key-file="$STATE/sa.key" --use-service-account-credentials=false \
  --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
  > "$STATE/logs/kube-controller-manager.log" 2>&1 &
echo $! > "$STATE/kube-controller-manager.pid"

cat > "$STATE/env" <<ENV
export KUBECONFIG=$STATE/kubeconfig
export PATH=$BIN:\$PATH
ENV
echo "control plane up: https://127.0.0.1:$API_PORT (source $STATE/env)"
