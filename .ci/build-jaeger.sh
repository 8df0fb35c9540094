#!/usr/bin/env bash
# Builds the Jaeger v2 all-in-one (an OpenTelemetry Collector distribution with Jaeger's
# storage and query API) that tests/monitoring/test_traces.py sends spans to, from the Go
# module proxy at the version pinned in tests/monitoring/jaeger/go.mod, once: the binary is
# cached as ~/.cache/ferryman-otel/bin/jaeger-<version>. Prints the binary's path.
# Cold (empty module and build caches), on this 2-core machine: 48 s of downloads, then
# 9 min 27 s of building under a load average of 7-12 (6 min 40 s of CPU); cached: 0 s.
set -euo pipefail
cd "$(dirname "$0")/../tests/monitoring/jaeger"
version=$(awk '$1 == "github.com/jaegertracing/jaeger" { print $2 }' go.mod)
out="${FERRYMAN_OTEL_CACHE:-$HOME/.cache/ferryman-otel}/bin/jaeger-$version"
if [ ! -x "$out" ]; then
  export PATH="$PATH:/usr/local/go/bin"  # where the Go toolchain is installed here
  command -v go >/dev/null || { echo "go not found: Go is needed to build Jaeger" >&2; exit 1; }
  mkdir -p "$(dirname "$out")"
  echo "building Jaeger $version (once; cached in $out)" >&2
  nice -n 19 go build -o "$out.tmp" github.com/jaegertracing/jaeger/cmd/jaeger
  mv "$out.tmp" "$out"
fi
echo "$out"
