#!/usr/bin/env bash
# `make image`: the production image (deploy/Dockerfile) built with podman on this machine. No registry
# image can be pulled here, so the base is a Debian bookworm root filesystem made by debootstrap from
# Debian's packages (python3 3.11 and its venv module), imported once as localhost/bookworm-python:12.
#
#   deploy/image.sh [TAG]     (default localhost/bio-assets:0.1.0; needs root, podman, runc, debootstrap)
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/bio-assets:0.1.0}
base=localhost/bookworm-python:12
podman=(podman --runtime runc --cgroup-manager cgroupfs)
for tool in podman runc debootstrap; do
    command -v "$tool" >/dev/null || { echo "image: $tool is missing: apt-get install -y podman runc buildah debootstrap" >&2; exit 2; }
done
work=$(mktemp -d /tmp/bio-assets-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
started=$SECONDS
if ! "${podman[@]}" image exists "$base"; then
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$work/rootfs" \
        http://deb.debian.org/debian
    printf '%s\n' 'deb http://deb.debian.org/debian bookworm main' \
        'deb http://deb.debian.org/debian bookworm-updates main' \
        'deb http://deb.debian.org/debian-security bookworm-security main' > "$work/rootfs/etc/apt/sources.list"
    chroot "$work/rootfs" /bin/sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -y upgrade \
        && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /var/log/apt/*'
    tar --numeric-owner -C "$work/rootfs" -c . | "${podman[@]}" import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$base"
    rm -rf "$work/rootfs"
    echo "base image $base: $((SECONDS - started)) s"
fi
# The build context is what deploy/Dockerfile.dockerignore lets through, copied, so nothing else is sent.
mkdir -p "$work/context/deploy"
cp pyproject.toml "$work/context/" && cp deploy/requirements-production.lock "$work/context/deploy/"
tar --exclude=__pycache__ --exclude='*.pyc' -cf - bio_assets resources jobs | tar -C "$work/context" -xf -
# --format docker keeps the HEALTHCHECK (the OCI format drops it); the host's CA bundle is bind-mounted
# for the build only (a TLS-intercepting proxy needs it; elsewhere it is the same bundle the base has).
"${podman[@]}" build --network host --format docker --layers --build-arg BASE_IMAGE="$base" \
    -v /etc/ssl/certs/ca-certificates.crt:/run/build-ca.crt:ro --build-arg PIP_CERT=/run/build-ca.crt \
    -f deploy/Dockerfile -t "$tag" "$work/context"
"${podman[@]}" images "$tag"
echo "image $tag built in $((SECONDS - started)) s"
