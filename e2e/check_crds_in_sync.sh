#!/usr/bin/env bash
# crds/ at the top level is canonical; the chart ships a copy. Fail (and say how to fix it)
# when they differ. The chart's crds/ may hold other files (kopf's peering CRDs).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
status=0
for src in "$ROOT"/crds/*.yaml; do
  copy=$ROOT/charts/ferryman/crds/$(basename "$src")
  if ! cmp -s "$src" "$copy"; then
    echo "charts/ferryman/crds/$(basename "$src") differs from crds/$(basename "$src")" >&2
    status=1
  fi
done
for copy in "$ROOT"/charts/ferryman/crds/ferryman.dev_*.yaml; do
  [[ -f $ROOT/crds/$(basename "$copy") ]] || { echo "charts/ferryman/crds/$(basename "$copy") has no source in crds/" >&2; status=1; }
done
if [[ $status != 0 ]]; then
  echo "fix: cp crds/*.yaml charts/ferryman/crds/" >&2
else
  echo "CRDs in sync"
fi
exit $status
