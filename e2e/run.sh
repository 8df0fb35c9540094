#!/usr/bin/env bash
# The end-to-end suite on a real control plane (etcd + kube-apiserver + kube-controller-manager
# on loopback), real helm, real NATS, the operator as a local process.
#
#   e2e/run.sh [pytest args]      e.g. e2e/run.sh -k scaling -x
#
# Tools are built once into ${FERRYMAN_E2E_CACHE:-~/.cache/ferryman-e2e} (first build: 7-12
# minutes on 2 cores; later runs skip it). Set FERRYMAN_E2E_STATE=DIR to keep logs and
# state of a run in DIR.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-$( [[ -x $ROOT/.venv/bin/python ]] && echo "$ROOT/.venv/bin/python" || command -v python3 )}

start=$(date +%s)
BIN=$("$ROOT/e2e/control-plane/build-tools.sh" | tail -1)
echo "e2e: tools ready in $BIN ($(( $(date +%s) - start ))s)"
export FERRYMAN_E2E_BIN=$BIN
export HELM_PLUGINS=${FERRYMAN_E2E_CACHE:-$HOME/.cache/ferryman-e2e}/helm-plugins

# Chart unit tests (helm-unittest), when the plugin could be built.
if "$BIN/helm" plugin list 2>/dev/null | grep -q '^unittest'; then
  "$BIN/helm" unittest --strict charts/ferryman
else
  echo "e2e: helm-unittest plugin not available; chart unit tests skipped"
fi

exec "$PYTHON" -m pytest -c "$ROOT/e2e/pytest.ini" --rootdir "$ROOT/e2e" "$ROOT/e2e/tests" "$@"
