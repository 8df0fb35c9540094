#!/usr/bin/env bash
# A one-node Kubernetes cluster on this host, with real pods and no image registry:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler   (build-tools.sh, build-node.sh)
#   kubelet + kube-proxy (iptables)                                 (build-node.sh)
#   containerd + runc (Debian's), its own instance, socket and state
#   CNI: Debian's bridge + host-local plugins on a bridge this script creates; pods reach
#   only each other, the services and this host (forwarding off the bridge is dropped)
#   CoreDNS as a pod behind the kube-dns Service; two hostPath PersistentVolumes
# The API server listens on the bridge's address only (pods reach it through the
# `kubernetes` Service). Everything it starts is recorded in STATE_DIR for cluster-down.sh.
#
#   e2e/pods/cluster-up.sh STATE_DIR      # then: export KUBECONFIG=STATE_DIR/kubeconfig
#   e2e/pods/cluster-down.sh STATE_DIR
set -euo pipefail
STATE=${1:?usage: cluster-up.sh STATE_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/cluster.env"
source "$HERE/images.env"
BIN=${FERRYMAN_E2E_BIN:-${FERRYMAN_E2E_CACHE:-$HOME/.cache/ferryman-e2e}/bin}
for tool in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  [[ -x $BIN/$tool ]] || { echo "cluster-up: $BIN/$tool is missing (build-tools.sh, build-node.sh)" >&2; exit 1; }
done
for tool in containerd containerd-shim-runc-v2 runc ctr iptables ip openssl; do
  command -v $tool >/dev/null || { echo "cluster-up: $tool is missing (apt-get install containerd runc iptables iproute2 openssl)" >&2; exit 1; }
done
[[ -x $CNI_BIN/bridge && -x $CNI_BIN/host-local ]] || { echo "cluster-up: CNI plugins missing in $CNI_BIN (apt-get install containernetworking-plugins)" >&2; exit 1; }
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  echo "cluster-up: $BRIDGE exists: another cluster is up on this host (cluster-down.sh its state dir)" >&2; exit 1
fi
mkdir -p "$STATE"/{pki,logs,cni,kubelet-pki} "$VARLIB" "$RUN"
STATE=$(cd "$STATE" && pwd)
echo "$STATE" > "$RUN/state-dir"
ls /run/netns 2>/dev/null | sort > "$STATE/netns-before" || true
log() { printf '[cluster-up %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fail() { log "$*"; "$HERE/cluster-down.sh" "$STATE" >&2 || true; exit 1; }
start() {  # NAME CMD...: run in the background, pid in STATE/NAME.pid
  local name=$1; shift
  "$@" > "$STATE/logs/$name.log" 2>&1 &
  echo $! > "$STATE/$name.pid"
}
free_port() { python3 -c 'import socket,sys; s=socket.socket(); s.bind((sys.argv[1],0)); print(s.getsockname()[1]); s.close()' "${1:-127.0.0.1}"; }
wait_for() {  # SECONDS DESCRIPTION CMD...
  local n=$(( $1 * 4 )) what=$2; shift 2
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  fail "timed out waiting for $what"
}

# ---- network: the bridge (its address is the node's), forwarding only within it
ip link add "$BRIDGE" type bridge
ip addr add "$NODE_IP/${POD_SUBNET#*/}" dev "$BRIDGE"
ip link set "$BRIDGE" up
echo 1 > /proc/sys/net/ipv4/ip_forward
echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || log "br_netfilter sysctl not available"
iptables -w -I FORWARD 1 -i "$BRIDGE" ! -o "$BRIDGE" -j DROP
iptables -w -I FORWARD 1 -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
iptables -w -I FORWARD 1 -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
touch "$STATE/forward-rules"

# ---- certificates: one CA; the API server's serving certificate names every address it is reached by
P=$STATE/pki
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$P/ca.key" -out "$P/ca.crt" -days 2 -subj /CN=ferryman-e2e-ca 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout "$P/apiserver.key" -out "$P/apiserver.csr" -subj /CN=kube-apiserver 2>/dev/null
printf 'subjectAltName=IP:%s,IP:%s,IP:127.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost\n' \
  "$NODE_IP" "$API_SERVICE_IP" > "$P/san.ext"
openssl x509 -req -in "$P/apiserver.csr" -CA "$P/ca.crt" -CAkey "$P/ca.key" -CAcreateserial -days 2 \
  -extfile "$P/san.ext" -out "$P/apiserver.crt" 2>/dev/null
openssl genrsa -out "$P/sa.key" 2048 2>/dev/null
openssl rsa -in "$P/sa.key" -pubout -out "$P/sa.pub" 2>/dev/null
ADMIN_TOKEN=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
echo "$ADMIN_TOKEN,e2e-admin,e2e-admin,system:masters" > "$P/tokens.csv"

# ---- control plane
ETCD_CLIENT=$(free_port); ETCD_PEER=$(free_port); API_PORT=$(free_port "$NODE_IP")
start etcd "$BIN/etcd" --name e2e --data-dir "$STATE/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
  --initial-cluster "e2e=http://127.0.0.1:$ETCD_PEER" --listen-metrics-urls ""
wait_for 30 etcd curl -fsS "http://127.0.0.1:$ETCD_CLIENT/health"
start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_CLIENT" \
  --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
  --service-cluster-ip-range="$SERVICE_SUBNET" \
  --authorization-mode=RBAC --token-auth-file="$P/tokens.csv" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --allow-privileged=true --enable-priority-and-fairness=false \
  --kubelet-preferred-address-types=InternalIP
cat > "$STATE/kubeconfig" <<KCFG
apiVersion: v1
kind: Config
clusters:
  - name: e2e
    cluster: {server: "https://$NODE_IP:$API_PORT", certificate-authority-data: "$(base64 -w0 "$P/ca.crt")"}
users:
  - name: e2e-admin
    user: {token: "$ADMIN_TOKEN"}
contexts:
  - name: e2e
    context: {cluster: e2e, user: e2e-admin, namespace: default}
current-context: e2e
KCFG
export KUBECONFIG=$STATE/kubeconfig
K() { "$BIN/kubectl" "$@"; }
wait_for 90 kube-apiserver K get --raw /readyz
start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$STATE/kubeconfig" --leader-elect=false \
  --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" --use-service-account-credentials=false \
  --bind-address=127.0.0.1 --secure-port="$(free_port)" --cluster-cidr="$POD_SUBNET" \
  --node-monitor-grace-period=40s
start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$STATE/kubeconfig" --leader-elect=false \
  --bind-address=127.0.0.1 --secure-port="$(free_port)"

# ---- containerd (its own instance) with the bridge network
cat > "$STATE/cni/10-ferryman-e2e.conflist" <<CNI
{"cniVersion": "1.0.0", "name": "ferryman-e2e", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$STATE/cni-ipam",
            "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$NODE_IP"}]], "routes": [{"dst": "0.0.0.0/0"}]}}
]}
CNI
cat > "$STATE/containerd.toml" <<TOML
version = 2
root = "$VARLIB/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$VARLIB/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/$PAUSE_IMAGE"
  enable_selinux = false
  # no CAP_SYS_RESOURCE on these machines: oom_score_adj may not go below containerd's own
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$STATE/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
TOML
start containerd containerd --config "$STATE/containerd.toml"
wait_for 30 containerd ctr -a "$CONTAINERD_SOCK" version

# ---- images: loaded from Docker into containerd's k8s.io namespace (skipped when unchanged)
"$HERE/load-images.sh" || fail "loading images failed"

# ---- kubelet, kube-proxy
cat > "$STATE/resolv.conf" <<RES
# pods with dnsPolicy Default resolve nothing outside the cluster
nameserver $DNS_SERVICE_IP
RES
cat > "$STATE/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $(free_port "$NODE_IP")
healthzBindAddress: 127.0.0.1
healthzPort: $(free_port)
readOnlyPort: 0
authentication: {anonymous: {enabled: true}, webhook: {enabled: false}, x509: {}}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: cluster.local
resolvConf: $STATE/resolv.conf
# A shared machine: its disk and memory are not this node's to reclaim.
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
localStorageCapacityIsolation: false
protectKernelDefaults: false
makeIPTablesUtilChains: false
YAML
start kubelet "$BIN/kubelet" --config="$STATE/kubelet.yaml" --kubeconfig="$STATE/kubeconfig" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --root-dir="$VARLIB/kubelet" \
  --cert-dir="$STATE/kubelet-pki" --v=1
cat > "$STATE/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE/kubeconfig}
mode: iptables
clusterCIDR: $POD_SUBNET
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$(free_port)
metricsBindAddress: 127.0.0.1:$(free_port)
nodePortAddresses: ["$NODE_IP/32"]
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
start kube-proxy "$BIN/kube-proxy" --config="$STATE/kube-proxy.yaml"
wait_for 120 "node $NODE_NAME Ready" K wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s

# ---- cluster DNS, volumes
sed -e "s|@COREDNS_IMAGE@|$COREDNS_IMAGE|; s|@DNS_SERVICE_IP@|$DNS_SERVICE_IP|" "$HERE/manifests/coredns.yaml" | K apply -f - >/dev/null
for i in 1 2 3 4; do
  mkdir -p "$VARLIB/volumes/pv$i" && rm -rf "${VARLIB:?}/volumes/pv$i/"* && chmod 0777 "$VARLIB/volumes/pv$i"
  cat <<PV
apiVersion: v1
kind: PersistentVolume
metadata: {name: e2e-pv$i}
spec:
  capacity: {storage: 10Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  hostPath: {path: $VARLIB/volumes/pv$i, type: Directory}
---
PV
done | K apply -f - >/dev/null
K -n kube-system rollout status deploy/coredns --timeout=120s >/dev/null || fail "CoreDNS did not start"

cat > "$STATE/env" <<ENV
export KUBECONFIG=$STATE/kubeconfig
export PATH=$BIN:\$PATH
export FERRYMAN_E2E_NODE_IP=$NODE_IP
ENV
log "cluster up: https://$NODE_IP:$API_PORT, node $NODE_NAME Ready, DNS at $DNS_SERVICE_IP (source $STATE/env)"
