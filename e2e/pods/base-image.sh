#!/usr/bin/env bash
# The local base image of Ferryman's images: a Debian bookworm root filesystem made with
# `debootstrap --variant=minbase` from Debian's packages (python3, python3-venv and CA
# certificates added), imported into Docker. The root filesystem is cached as a tarball
# outside the repository, keyed by suite and package list, so later runs only `docker import`.
#
#   e2e/pods/base-image.sh      # prints the image name (ferryman-base:bookworm)
set -euo pipefail
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates
MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
IMAGE=${FERRYMAN_BASE_IMAGE:-ferryman-base:$SUITE}
CACHE=${FERRYMAN_E2E_CACHE:-$HOME/.cache/ferryman-e2e}/images
KEY=$(printf '%s %s v1' "$SUITE" "$PACKAGES" | sha256sum | cut -c1-12)
TARBALL=$CACHE/base-$SUITE-$KEY.tar
log() { printf '[base-image %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

if [[ $(docker image inspect -f '{{index .Config.Labels "ferryman.base.key"}}' "$IMAGE" 2>/dev/null) == "$KEY" ]]; then
  echo "$IMAGE"; exit 0
fi
mkdir -p "$CACHE"
if [[ ! -s $TARBALL ]]; then
  command -v debootstrap >/dev/null || { log "debootstrap is required (apt-get install debootstrap)"; exit 1; }
  ROOTFS=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$ROOTFS"' EXIT
  log "debootstrap --variant=minbase $SUITE from $MIRROR (a few minutes, once)"
  nice -n 19 ionice -c3 debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" \
    > "$CACHE/debootstrap.log" 2>&1 || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  # What an image needs no copy of: package lists, downloaded .debs, docs, man pages, locales.
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/log/*.log "$ROOTFS"/var/cache/debconf/*-old
  tar --numeric-owner -C "$ROOTFS" -cf "$TARBALL.tmp" . && mv "$TARBALL.tmp" "$TARBALL"
fi
docker import --change "LABEL ferryman.base.key=$KEY" --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' "$TARBALL" "$IMAGE" >/dev/null
log "imported $IMAGE from $TARBALL"
echo "$IMAGE"
