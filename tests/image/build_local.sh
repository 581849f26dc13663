#!/usr/bin/env bash
# build_local.sh TAG -- build the project's image offline with podman from local inputs.
#
# The Dockerfile's defaults fetch the base image from a registry and AFNI's source from GitHub.
# On a machine without either, this script feeds local stand-ins in through the Dockerfile's
# build args, from a temporary copy of the build context (the worktree is not written to):
#
#   BASE_IMAGE   local base image (default localhost/debian:bookworm, made with debootstrap +
#                podman import, see docs/containers.md); the builder and runtime stages use it
#   AFNI_GITDIR  git directory of github.com/afni/afni (a bare clone or `fetch` mirror): the
#                pinned commit is exported with `git archive` and compiled in the builder stage
#                (AFNI_SOURCE=context; several minutes)
#   AFNI_PREFIX  an AFNI install already built from the same commit for the same base
#                (e.g. /opt/afni-oracle from shared/tools/build-afni.sh): copied, not compiled
#                (AFNI_SOURCE=prefix; fast, for iterating). Wins when both are set.
#   AFNI_COMMIT  commit to build (default: the Dockerfile's AFNI_COMMIT)
#   BUILD_CA_CERT  CA bundle pip inside the build must trust (an HTTPS proxy); mounted with a
#                pip.conf naming it (default /etc/ssl/certs/ca-certificates.crt if it exists)
#   PODMAN       container engine command (default podman); CONTAINERS_CONF is honoured
#
# Prints the build time and the image size; exit status is podman build's.
set -euo pipefail

TAG=${1:?usage: tests/image/build_local.sh TAG   (env BASE_IMAGE, AFNI_GITDIR and/or AFNI_PREFIX)}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PODMAN=${PODMAN:-podman}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian:bookworm}
DEFAULT_COMMIT=$(sed -n 's/^ARG AFNI_COMMIT=\([0-9a-f]\{40\}\)$/\1/p' "$ROOT/Dockerfile")
AFNI_COMMIT=${AFNI_COMMIT:-$DEFAULT_COMMIT}
BUILD_CA_CERT=${BUILD_CA_CERT:-/etc/ssl/certs/ca-certificates.crt}

die() {
    echo "build_local.sh: $*" >&2
    exit 64
}

command -v "$PODMAN" > /dev/null || die "$PODMAN not found: install podman (docs/containers.md)"
"$PODMAN" image exists "$BASE_IMAGE" \
    || die "base image $BASE_IMAGE not found: make it with debootstrap + podman import (docs/containers.md)"
[[ $AFNI_COMMIT =~ ^[0-9a-f]{40}$ ]] || die "AFNI_COMMIT must be a full 40-hex commit: '$AFNI_COMMIT'"

CTX=$(mktemp -d "${TMPDIR:-/var/tmp}/afni-group-ctx.XXXXXX")
trap 'rm -rf "$CTX"' EXIT
# the build context: exactly what .dockerignore lets through, from the working tree
cp "$ROOT/Dockerfile" "$ROOT/.dockerignore" "$ROOT/pyproject.toml" "$ROOT/README.md" "$CTX/"
cp -r "$ROOT/src" "$ROOT/docker" "$CTX/"
find "$CTX/src" \( -name __pycache__ -o -name '*.egg-info' \) -prune -exec rm -rf {} +

if [ -n "${AFNI_PREFIX:-}" ]; then
    [ -x "$AFNI_PREFIX/bin/3dClustSim" ] || [ -x "$AFNI_PREFIX/3dClustSim" ] \
        || die "AFNI_PREFIX=$AFNI_PREFIX holds no 3dClustSim (bin/ or top level)"
    SOURCE=prefix
    cp -a "$AFNI_PREFIX" "$CTX/docker/afni-prefix"
    echo "AFNI: prebuilt install $AFNI_PREFIX (not compiled; its commit is not checked)"
elif [ -n "${AFNI_GITDIR:-}" ]; then
    got=$(git --git-dir="$AFNI_GITDIR" rev-parse -q --verify "$AFNI_COMMIT^{commit}") \
        || die "commit $AFNI_COMMIT not in AFNI_GITDIR=$AFNI_GITDIR"
    [ "$got" = "$AFNI_COMMIT" ] || die "AFNI_GITDIR resolves $AFNI_COMMIT to $got"
    SOURCE=context
    git --git-dir="$AFNI_GITDIR" archive --format=tar "$AFNI_COMMIT" > "$CTX/docker/afni-src.tar"
    echo "AFNI: source of commit $AFNI_COMMIT from $AFNI_GITDIR (compiled in the builder stage)"
else
    die "set AFNI_GITDIR (AFNI's git directory) and/or AFNI_PREFIX (a built AFNI install)"
fi

mounts=()
if [ -s "$BUILD_CA_CERT" ]; then
    printf '[global]\ncert = /host-ca.crt\n' > "$CTX/pip.conf"
    mounts=(-v "$BUILD_CA_CERT:/host-ca.crt:ro" -v "$CTX/pip.conf:/etc/pip.conf:ro")
fi

echo "building $TAG from $ROOT (base $BASE_IMAGE, AFNI_SOURCE=$SOURCE)"
t0=$(date +%s)
# --format docker keeps SHELL (pipefail); --pull=never: every FROM is local
"$PODMAN" build --pull=never --format docker "${mounts[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg AFNI_SOURCE="$SOURCE" \
    --build-arg AFNI_COMMIT="$AFNI_COMMIT" \
    -t "$TAG" "$CTX"
t1=$(date +%s)
size=$("$PODMAN" image inspect --format '{{.Size}}' "$TAG")
echo "built $TAG in $((t1 - t0)) s; image size $((size / 1000000)) MB (AFNI_SOURCE=$SOURCE, base $BASE_IMAGE)"
