#!/usr/bin/env bash
# Load the suite's images from Docker into the cluster's containerd (namespace k8s.io), so
# pods start with imagePullPolicy IfNotPresent/Never and nothing is pulled. An image whose
# Docker ID is already loaded is skipped (containerd's store outlives the cluster).
#   e2e/pods/load-images.sh [IMAGE...]     # default: every image in images.env
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/cluster.env"
source "$HERE/images.env"
IMAGES=("$@")
[[ ${#IMAGES[@]} -gt 0 ]] || IMAGES=("$PAUSE_IMAGE" "$COREDNS_IMAGE" "$NATS_IMAGE" "$POSTGRES_IMAGE" "$CURL_IMAGE" \
  "$OPERATOR_IMAGE" "$WORKER_IMAGE" "$GATEWAY_IMAGE" "$EXAMPLES_IMAGE" "$APP_IMAGE")
mkdir -p "$VARLIB/loaded"
for img in "${IMAGES[@]}"; do
  id=$(docker image inspect -f '{{.Id}}' "$img")
  stamp=$VARLIB/loaded/$(echo "$img" | tr '/:' '__')
  if [[ $(cat "$stamp" 2>/dev/null) == "$id" ]] && ctr -a "$CONTAINERD_SOCK" -n k8s.io images check "name==docker.io/$( [[ $img == */* ]] || echo library/)$img" 2>/dev/null | grep -q complete; then
    continue
  fi
  printf '[load-images %s] %s\n' "$(date +%H:%M:%S)" "$img" >&2
  docker save "$img" | ctr -a "$CONTAINERD_SOCK" -n k8s.io images import - >/dev/null
  echo "$id" > "$stamp"
done
