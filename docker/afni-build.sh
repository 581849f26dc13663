#!/usr/bin/env bash
# afni-build.sh -- the Dockerfile's AFNI builder stage: compile the AFNI command-line programs
# afni-group runs (and the helpers they call) from AFNI's source, pinned by commit, on the same
# base image as the runtime stage, and install them flat into PREFIX.
#
# Usage (inside the builder stage, as root):  bash afni-build.sh SOURCE COMMIT PREFIX
#   SOURCE  github   fetch COMMIT from $AFNI_REPO (default https://github.com/afni/afni.git)
#                    and check that git resolved exactly that commit (the default)
#           context  use afni-src.tar next to this script, made with
#                    `git archive COMMIT` (its embedded commit id is checked)
#           prefix   skip compiling: copy an install made the same way (afni-prefix/bin/ or
#                    afni-prefix/ next to this script, e.g. shared/tools/build-afni.sh's)
#   COMMIT  full 40-hex commit of github.com/afni/afni
#   PREFIX  install folder (flat: programs, R and Python helpers, afnipy/)
#
# The recipe is AFNI's classic Makefile with the linux_ubuntu_24_64 profile and a static
# libmri.a (MRI_SHARED off), so the programs link no X library and no libmri.so; only the
# programs listed below are built (a few minutes, not the hour of `make itall`).
# This script holds no AFNI code: it only drives AFNI's own build and copies its outputs.
set -euo pipefail

SOURCE=${1:?usage: afni-build.sh github|context|prefix COMMIT PREFIX}
COMMIT=${2:?usage: afni-build.sh github|context|prefix COMMIT PREFIX}
PREFIX=${3:?usage: afni-build.sh github|context|prefix COMMIT PREFIX}
AFNI_REPO=${AFNI_REPO:-https://github.com/afni/afni.git}
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=${WORK:-/tmp/afni-build}
JOBS=${JOBS:-$(nproc)}
T0=$(date +%s)

log() { echo "[afni-build +$(($(date +%s) - T0))s] $*"; }
die() {
    echo "[afni-build] ERROR: $*" >&2
    exit 1
}

# Plain C programs of src/ (one .c each plus libmri.a). First line: what the afni engine's
# script runs; then what 3dMEMA's R code (AFNIio.R) and AFNI's scripts call; then small
# helpers useful to inspect results inside the image.
C_PROGS="3dClustSim 3dmask_tool p2dsetstat
 3dinfo 3dcalc 3dbucket 3drefit 3dcopy 3dTcat 3dAttribute 3dNotes 3dnewid 3dAFNItoNIFTI nifti_tool
 3dFWHMx 3dclust 3dttest++ 3dTstat 3dUndump 3dmerge 3dROIstats 3dmaskave 3dBrickStat 3dresample
 1dcat 3dmaskdump 3dhistog 3dTcorrelate 3dANOVA 3dttest"
# Scripts copied as they are: "path under src:mode"
SCRIPTS="scripts_for_r/3dMEMA:755 R_scripts/3dMEMA.R:644 R_scripts/AFNIio.R:644
 R_scripts/lib_dataTable.R:644 scripts_install/@global_parse:755
 scripts_install/@GetAfniOrient:755 python_scripts/scripts/1d_tool.py:755
 python_scripts/scripts/gen_group_command.py:755
 python_scripts/scripts/afni_python_wrapper.py:755"
# Build dependencies: compiler, GSL (3dClusterize), expat + zlib (libmri), X headers only
# (afni.h includes Motif, coxplot.h includes Xdbe.h; nothing links X), tcsh (ptaylor's
# @MakeLocalMake), R headers for R_io.so (r-base-core ships them), git (commit checks).
BUILD_PKGS="gcc make libc6-dev libgsl-dev libexpat1-dev zlib1g-dev libmotif-dev libxt-dev
 libxext-dev tcsh r-base-core git ca-certificates binutils"

apt_install() {
    log "apt-get install $*"
    apt-get update -qq
    # shellcheck disable=SC2068  # word splitting of the package list is intended
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $@ > /dev/null
}

# get_source DEST: the pinned commit's tree in DEST
get_source() {
    local dest=$1 got
    mkdir -p "$dest"
    case $SOURCE in
        github)
            log "git fetch $COMMIT from $AFNI_REPO"
            git init -q "$WORK/git"
            git -C "$WORK/git" fetch -q --depth 1 "$AFNI_REPO" "$COMMIT"
            got=$(git -C "$WORK/git" rev-parse 'FETCH_HEAD^{commit}')
            [ "$got" = "$COMMIT" ] || die "fetched commit $got, expected $COMMIT"
            git -C "$WORK/git" archive FETCH_HEAD | tar -x -C "$dest"
            rm -rf "$WORK/git"
            ;;
        context)
            [ -s "$HERE/afni-src.tar" ] || die "AFNI_SOURCE=context needs docker/afni-src.tar"
            got=$(git get-tar-commit-id < "$HERE/afni-src.tar") || true
            [ "$got" = "$COMMIT" ] || die "afni-src.tar is commit '$got', expected $COMMIT"
            tar -x -C "$dest" -f "$HERE/afni-src.tar"
            ;;
        *) die "unknown AFNI_SOURCE '$SOURCE' (github, context or prefix)" ;;
    esac
    [ -f "$dest/src/AFNI_version_base.txt" ] || die "no src/AFNI_version_base.txt: not AFNI's tree"
    log "source: $(cat "$dest/src/AFNI_version_base.txt"), commit $COMMIT"
}

build() {
    local src=$1
    cd "$src"
    cp Makefile.linux_ubuntu_24_64 Makefile
    sed -i 's/^MRI_SHARED *=/# &/' Makefile
    if grep -q '^MRI_SHARED' Makefile; then die "could not switch off MRI_SHARED"; fi
    log "make (serial parts: version header, niml, eispack, f2c)"
    # these targets build and move several objects per recipe: not parallel-safe
    make -j1 AFNI_version.h niml.h niml_b64.o eis_bakvec.o libf2c.a > "$WORK/make-serial.log" 2>&1 \
        || { tail -n 40 "$WORK/make-serial.log"; die "make (serial) failed"; }
    log "make libmri.a"
    make -j"$JOBS" libmri.a > "$WORK/make-libmri.log" 2>&1 \
        || { tail -n 40 "$WORK/make-libmri.log"; die "make libmri.a failed"; }
    log "make programs"
    # shellcheck disable=SC2086
    make -j"$JOBS" $C_PROGS > "$WORK/make-progs.log" 2>&1 \
        || { tail -n 40 "$WORK/make-progs.log"; die "make programs failed"; }
    log "make 3dClusterize (ptaylor/)"
    (cd ptaylor && tcsh -f ./@MakeLocalMake > "$WORK/ptaylor-makefile.log" 2>&1)
    make -C ptaylor -j"$JOBS" 3dClusterize > "$WORK/make-ptaylor.log" 2>&1 \
        || { tail -n 40 "$WORK/make-ptaylor.log"; die "make 3dClusterize failed"; }
    log "make R_io.so"
    make -j1 R_io.so > "$WORK/make-rio.log" 2>&1 \
        || { tail -n 40 "$WORK/make-rio.log"; die "make R_io.so failed"; }
}

install_built() {
    local src=$1 p s
    mkdir -p "$PREFIX"
    for p in $C_PROGS ptaylor/3dClusterize; do install -m 755 "$src/$p" "$PREFIX/"; done
    install -m 755 "$src/R_io.so" "$PREFIX/"
    install -m 644 "$src/AFNI_version.txt" "$PREFIX/"
    for s in $SCRIPTS; do install -m "${s#*:}" "$src/${s%:*}" "$PREFIX/"; done
    cp -r "$src/python_scripts/afnipy" "$PREFIX/afnipy"
    # symbols are not needed at run time: about half the size
    for p in $C_PROGS 3dClusterize; do strip --strip-unneeded "$PREFIX/$p"; done
}

install_prefix() {
    local from=$HERE/afni-prefix
    [ -d "$from/bin" ] && from=$from/bin
    [ -x "$from/3dClustSim" ] || die "AFNI_SOURCE=prefix needs docker/afni-prefix/[bin/] with the programs"
    mkdir -p "$PREFIX"
    cp -a "$from/." "$PREFIX/"
    find "$PREFIX" -name __pycache__ -prune -exec rm -rf {} +
}

main() {
    mkdir -p "$WORK"
    [[ $COMMIT =~ ^[0-9a-f]{40}$ ]] || die "COMMIT must be a full 40-hex commit, not '$COMMIT'"
    if [ "$SOURCE" = prefix ]; then
        install_prefix
        log "installed the given prefix into $PREFIX"
    else
        # shellcheck disable=SC2086
        apt_install $BUILD_PKGS
        get_source "$WORK/afni"
        build "$WORK/afni/src"
        install_built "$WORK/afni/src"
        log "built and installed into $PREFIX"
    fi
    # provenance: the commit asked for and how it was obtained (a given prefix is not checked)
    echo "$COMMIT" > "$PREFIX/AFNI_commit.txt"
    echo "$SOURCE" > "$PREFIX/AFNI_source.txt"
    rm -rf "$WORK"
}

main
