#!/usr/bin/env bash
# The e2e scenarios on a kind cluster with real pods (for machines with Docker; it cannot run
# on the project's own machines, which have no container runtime: there, e2e/run.sh runs them
# on a real control plane without a kubelet).
#
#   e2e/kind/run.sh            # create the cluster, run everything, delete the cluster
#   KEEP=1 e2e/kind/run.sh     # keep the cluster afterwards
#
# Needs: docker, kind, kubectl, helm, and a Python with ferryman[dev] installed (make install).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
CLUSTER=ferryman-e2e
NS=ferryman-system
TAG=e2e
PY=${PYTHON:-$ROOT/.venv/bin/python}
for tool in docker kind kubectl helm; do
  command -v $tool >/dev/null || { echo "kind/run.sh: $tool is required" >&2; exit 1; }
done

step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [[ ${KEEP:-0} == 1 ]] || kind delete cluster --name "$CLUSTER"
}
trap cleanup EXIT

step "cluster and images"
kind create cluster --config e2e/kind/cluster.yaml --wait 120s
docker build -f Dockerfile.operator -t ferryman-operator:$TAG .
docker build -f Dockerfile.worker -t ferryman-worker:$TAG .
docker build -f Dockerfile.worker --target examples -t ferryman-examples:$TAG .
for image in ferryman-operator ferryman-worker ferryman-examples; do
  kind load docker-image --name "$CLUSTER" $image:$TAG
done

step "helm install (bundled evaluation NATS and PostgreSQL)"
helm install ferryman charts/ferryman -n $NS --create-namespace --wait --timeout 5m \
  --set nats.bundled.enabled=true --set postgresql.bundled.enabled=true \
  --set operator.image.repository=ferryman-operator --set operator.image.tag=$TAG \
  --set gateway.image.repository=ferryman-worker --set gateway.image.tag=$TAG \
  --set operator.reconcileInterval=3 --set operator.scaleInterval=2
helm test ferryman -n $NS --timeout 3m

step "WorkerPools and DurableFunctions from examples/k8s"
for f in examples/k8s/*.yaml; do
  sed "s#ghcr.io/ferryman-dev/ferryman-examples:0.1.0#ferryman-examples:$TAG#" "$f" | kubectl -n $NS apply -f -
done
kubectl -n $NS wait dfn --all --for=condition=Ready --timeout=120s
kubectl -n $NS get workerpools,dfn
kubectl -n $NS rollout status deploy/scheduled-jobs-workers --timeout=180s

step "invalid resources are rejected with their message"
for f in e2e/invalid/*.yaml; do
  expect=$(head -1 "$f" | sed 's/^# expect: //')
  if out=$(kubectl -n $NS apply -f "$f" 2>&1); then fail "$f was accepted"; fi
  grep -qF -- "$expect" <<<"$out" || fail "$f: expected '$expect', got: $out"
done

step "an event runs a function to completion (real worker pods)"
kubectl -n $NS patch workerpool video-processing --type=merge -p '{"spec":{"autoscaling":{"min":1}}}'
kubectl -n $NS rollout status deploy/video-processing-workers --timeout=180s
kubectl -n $NS port-forward svc/ferryman-gateway 18288:8288 >/dev/null 2>&1 & PIDS+=($!)
kubectl -n $NS port-forward svc/ferryman-nats 14222:4222 >/dev/null 2>&1 & PIDS+=($!)
sleep 3
event=$(curl -fsS -X POST localhost:18288/e/kind -H 'Content-Type: application/json' \
  -d '{"name":"video.uploaded","data":{"videoId":"v-kind","url":"s3://videos/v-kind.mp4"}}' \
  | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["ids"][0])')
for _ in $(seq 60); do
  status=$(curl -fsS localhost:18288/v1/events/$event/runs | "$PY" -c \
    'import json,sys; r=json.load(sys.stdin)["data"]; print(r[0]["status"] if r else "NONE")')
  [[ $status == COMPLETED ]] && break; sleep 2
done
[[ $status == COMPLETED ]] || fail "run of event $event is $status"

step "replicas follow the backlog and go back down"
kubectl -n $NS patch workerpool video-processing --type=merge \
  -p '{"spec":{"autoscaling":{"min":0,"scaleDownDelay":"5s"},"replicas":null}}'
kubectl -n $NS scale deploy/video-processing-workers --replicas=0  # no worker eats the jobs
"$PY" e2e/kind/nats_backlog.py publish nats://127.0.0.1:14222 video-processing-process-video 35
for _ in $(seq 30); do
  r=$(kubectl -n $NS get deploy video-processing-workers -o jsonpath='{.spec.replicas}')
  [[ $r -ge 4 ]] && break; sleep 2
done
[[ $r -ge 4 ]] || fail "replicas $r for a backlog of 35"
kubectl -n $NS wait dfn video-processing-process-video --for=jsonpath='{.status.backlog}'=0 --timeout=180s
for _ in $(seq 60); do
  r=$(kubectl -n $NS get deploy video-processing-workers -o jsonpath='{.spec.replicas}')
  [[ $r == 0 ]] && break; sleep 2
done
[[ $r == 0 ]] || fail "replicas $r after the backlog drained"

step "a consumer deleted by hand comes back; deleting a function removes its consumers"
"$PY" - <<'PY'
import asyncio, nats, time
from ferryman_jetstream import WORK_STREAM, EVENTS_STREAM
async def main():
    nc = await nats.connect("nats://127.0.0.1:14222"); js = nc.jetstream()
    await js.delete_consumer(WORK_STREAM, "work-video-processing-process-video")
    for _ in range(30):
        try:
            await js.consumer_info(WORK_STREAM, "work-video-processing-process-video"); break
        except nats.js.errors.NotFoundError:
            await asyncio.sleep(1)
    else:
        raise SystemExit("the work consumer did not come back")
    await nc.close()
asyncio.run(main())
PY
kubectl -n $NS delete dfn scheduled-jobs-send-subscription-reminder --timeout=60s
"$PY" - <<'PY'
import asyncio, nats
from ferryman_jetstream import EVENTS_STREAM
async def main():
    nc = await nats.connect("nats://127.0.0.1:14222"); js = nc.jetstream()
    try:
        await js.consumer_info(EVENTS_STREAM, "trigger-scheduled-jobs-send-subscription-reminder")
        raise SystemExit("the trigger consumer is still there")
    except nats.js.errors.NotFoundError:
        pass
    await nc.close()
asyncio.run(main())
PY

step "helm upgrade, then uninstall leaves nothing behind"
helm upgrade ferryman charts/ferryman -n $NS --reuse-values --set gateway.replicas=2 --wait --timeout 5m
kubectl -n $NS delete dfn,workerpools --all --timeout=120s
helm uninstall ferryman -n $NS --wait
left=$(kubectl get all,cm,secret,sa,role,rolebinding,pvc -n $NS -l app.kubernetes.io/instance=ferryman -o name)
[[ -z $left ]] || fail "left behind: $left"
echo "kind e2e: all scenarios passed"
