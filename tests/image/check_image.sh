#!/usr/bin/env bash
# check_image.sh TAG -- run a built afni-group image the way users do and check what it does.
#
# Prints one line per check ("PASS|FAIL|SKIP|INFO name: detail") and exits 0 only when no check
# fails. Every container runs with no network, a read-only root (--read-only --tmpfs /tmp), as
# uid 1000 (not root, not the image's user), with BIDS_DIR mounted read-only:
#   --version, --help, --bids-exec-spec (= bids_app_spec.json), AFNI inside (version, commit);
#   the demo dataset (afni-group-demo --grid 3mm, made inside the image) analysed by both engines:
#     exit 0, every expected output and report.html, nothing written outside /out and /tmp
#     (podman diff), BIDS_DIR unchanged;
#   engine parity: python -m afni_group.parity on the two output folders (one line per check,
#     written as parity.json);
#   Singularity.def's %test commands inside the image;
#   a missing BRIK: exit 66 and a one-line error naming the dataset, no results, each engine.
#
# Environment: PODMAN (default podman; CONTAINERS_CONF is honoured), CLUSTSIM_ITER (default
# 1000: 3dClustSim -iter for both runs), CHECK_DIR (where data and outputs go; default a new
# folder under /var/tmp, kept, printed at the end), NCPUS (default 2).
set -uo pipefail

TAG=${1:?usage: tests/image/check_image.sh TAG}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PODMAN=${PODMAN:-podman}
ITER=${CLUSTSIM_ITER:-1000}
NCPUS=${NCPUS:-2}
DIR=${CHECK_DIR:-$(mktemp -d /var/tmp/afni-group-check.XXXXXX)}
mkdir -p "$DIR"
NFAIL=0

# the demo's two sets (as the tutorial: a groups design of two contrasts)
SETS=(--set chx 'left_vs_right_chx#0_Coef' 'left_vs_right_chx#0_Tstat'
      --set keypress 'left_vs_right_press#0_Coef' 'left_vs_right_press#0_Tstat')
# what the demo run must write (the keypress effect is weak: no cluster, so no map for it)
EXPECTED_TOP="dataset_description.json inventory.tsv params.json group_analysis.sh report.html"
EXPECTED_ANALYSIS="mema_results.nii.gz mask.nii.gz 3dClustSim.cmd ClustSim.mask
 clust_bisided_report_chx.txt clust_bisided_report_keypress.txt
 clust_bisided_map_chx.nii.gz clust_bisided_EE_chx.nii.gz"
for nn in 1 2 3; do
    for sided in 1sided 2sided bisided; do
        EXPECTED_ANALYSIS="$EXPECTED_ANALYSIS ClustSim.NN${nn}_${sided}.1D ClustSim.NN${nn}_${sided}.niml"
    done
done

say() { echo "$1 $2: $3"; }
pass() { say PASS "$1" "$2"; }
fail() {
    say FAIL "$1" "$2"
    NFAIL=$((NFAIL + 1))
}
# ctr ARGS...: a container as users run it: no network, read-only root, /tmp in memory, uid 1000
ctr() { "$PODMAN" run --rm --network=none --read-only --tmpfs /tmp -u 1000:1000 "$@"; }
# a folder uid 1000 may write to
wdir() { mkdir -p "$1" && chmod 777 "$1"; }
tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }
oneline() { tr '\n' ' ' <<< "$1" | tr -s ' ' | cut -c1-"${2:-200}"; }

if ! command -v "$PODMAN" > /dev/null; then
    say SKIP image "$PODMAN not found"
    exit 0
fi
if ! "$PODMAN" image exists "$TAG"; then
    fail image "$TAG not found: build it first (tests/image/build_local.sh $TAG)"
    exit 1
fi
size=$("$PODMAN" image inspect --format '{{.Size}}' "$TAG")
say INFO image "$TAG, $((size / 1000000)) MB, checks in $DIR"

# ---- command line ----------------------------------------------------------------------------
version=$(ctr --entrypoint cat "$TAG" /version)
out=$(ctr "$TAG" --version 2>&1)
if [ "$out" = "afni-group $version" ]; then pass --version "$out (= /version)"
else fail --version "got '$(oneline "$out")', /version says '$version'"; fi

if out=$(ctr "$TAG" --help 2>&1) && grep -q "^usage: afni-group" <<< "$out"; then
    pass --help "usage text, exit 0"
else fail --help "$(oneline "$out")"; fi

ctr "$TAG" --bids-exec-spec > "$DIR/spec.json" 2> "$DIR/spec.err"
if python3 -c 'import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); sys.exit(a!=b)' \
    "$DIR/spec.json" "$ROOT/bids_app_spec.json" 2> /dev/null; then
    pass --bids-exec-spec "equal to bids_app_spec.json"
else fail --bids-exec-spec "differs from bids_app_spec.json (see $DIR/spec.json)"; fi

# shellcheck disable=SC2016  # expanded inside the container
inside='echo "$(head -1 /opt/afni/AFNI_version.txt) commit $(cat /opt/afni/AFNI_commit.txt)
 (source: $(cat /opt/afni/AFNI_source.txt)); $(Rscript --version 2>&1 | head -1)"'
if afni=$(ctr --entrypoint bash "$TAG" -c "$inside" 2>&1); then pass afni-inside "$(oneline "$afni" 300)"
else fail afni-inside "$(oneline "$afni")"; fi

# ---- the demo, both engines --------------------------------------------------------------------
wdir "$DIR/data"
if ! out=$(ctr -v "$DIR/data:/w" --entrypoint afni-group-demo "$TAG" /w/bids --grid 3mm 2>&1); then
    fail demo-data "afni-group-demo failed: $(oneline "$out")"
    echo "check_image: $NFAIL failure(s); outputs in $DIR"
    exit 1
fi
pass demo-data "afni-group-demo --grid 3mm inside the image: $(find "$DIR/data/bids" -type f | wc -l) files"
bids_sum=$(tree_sum "$DIR/data/bids")

declare -A SECONDS_OF
for engine in native afni; do
    out_dir=$DIR/out-$engine
    rm -rf "$out_dir" && wdir "$out_dir"
    name=afni-group-check-$engine-$$
    t0=$(date +%s)
    "$PODMAN" run --name "$name" --network=none --read-only --tmpfs /tmp -u 1000:1000 \
        -v "$DIR/data/bids:/data:ro" -v "$out_dir:/out" "$TAG" /data /out group \
        --engine "$engine" "${SETS[@]}" --seed 1 --clustsim-iter "$ITER" --n-cpus "$NCPUS" \
        > "$DIR/run-$engine.log" 2>&1
    rc=$?
    SECONDS_OF[$engine]=$(($(date +%s) - t0))
    # podman itself adds /etc/hosts, /etc/resolv.conf ... ("C /etc") and the mount points
    # /data and /out: anything else would be a write to the image
    written=$("$PODMAN" diff "$name" 2> /dev/null | grep -Ev '^(C /etc|A /data|A /out)$' | tr '\n' ' ')
    "$PODMAN" rm "$name" > /dev/null 2>&1
    missing=""
    for f in $EXPECTED_TOP; do [ -s "$out_dir/$f" ] || missing="$missing $f"; done
    for f in $EXPECTED_ANALYSIS; do
        [ -s "$out_dir/analysis-mema/$f" ] || missing="$missing analysis-mema/$f"
    done
    nfiles=$(find "$out_dir" -type f | wc -l)
    if [ "$rc" != 0 ]; then
        fail "run/$engine" "exit $rc after ${SECONDS_OF[$engine]} s: $(tail -n 1 "$DIR/run-$engine.log")"
    elif [ -n "$missing" ]; then
        fail "run/$engine" "exit 0 but missing:$missing"
    elif [ -n "$written" ]; then
        fail "run/$engine" "wrote outside /out and /tmp: $written"
    else
        pass "run/$engine" "exit 0 in ${SECONDS_OF[$engine]} s (read-only, uid 1000, --clustsim-iter $ITER), $nfiles files incl. report.html, nothing written outside /out and /tmp"
    fi
done
if [ "$(tree_sum "$DIR/data/bids")" = "$bids_sum" ]; then pass bids-unchanged "BIDS_DIR identical after both runs"
else fail bids-unchanged "BIDS_DIR changed"; fi

# ---- engine parity -----------------------------------------------------------------------------
if [ -s "$DIR/out-native/params.json" ] && [ -s "$DIR/out-afni/params.json" ]; then
    wdir "$DIR/parity"
    ctr -v "$DIR/out-native:/native:ro" -v "$DIR/out-afni:/afni:ro" -v "$DIR/parity:/parity" \
        --entrypoint python "$TAG" -m afni_group.parity /native /afni --json /parity/parity.json \
        > "$DIR/parity.log" 2>&1
    rc=$?
    sed -n 's/^\(PASS\|FAIL\|SKIP\|INFO\) \(.*\)$/\1 parity\/\2/p' "$DIR/parity.log"
    if [ "$rc" = 0 ]; then pass parity "$(tail -n 1 "$DIR/parity.log"); $DIR/parity/parity.json"
    else fail parity "$(tail -n 1 "$DIR/parity.log") (exit $rc); $DIR/parity/parity.json"; fi
else
    fail parity "needs both runs' outputs"
fi

# ---- Singularity.def %test inside the image ----------------------------------------------------
body=$(awk '/^%test/ {on=1; next} /^%/ {on=0} on' "$ROOT/Singularity.def")
if out=$(ctr --entrypoint bash "$TAG" -c "$body" 2>&1); then
    pass singularity-%test "the %test commands ran inside the image: $(oneline "$out" 80)"
else fail singularity-%test "$(oneline "$out" 300)"; fi

# ---- bad input: a missing BRIK -----------------------------------------------------------------
rm -rf "$DIR/data/bids-bad" && cp -al "$DIR/data/bids" "$DIR/data/bids-bad"
brik=$(find "$DIR/data/bids-bad/derivatives/afni/sub-01" -name 'stats.*.BRIK*' | head -n 1)
rm -f "$brik"
for engine in native afni; do
    out_dir=$DIR/out-bad-$engine
    rm -rf "$out_dir" && wdir "$out_dir"
    ctr -v "$DIR/data/bids-bad:/data:ro" -v "$out_dir:/out" "$TAG" /data /out group \
        --engine "$engine" "${SETS[@]}" > "$DIR/bad-$engine.out" 2> "$DIR/bad-$engine.err"
    rc=$?
    nlines=$(grep -c . "$DIR/bad-$engine.err")
    err=$(head -n 1 "$DIR/bad-$engine.err")
    results=$(find "$out_dir" -name 'mema_results*' -o -name report.html | wc -l)
    # the one line must name the subject's stats dataset (its HEAD or BRIK)
    if [ "$rc" = 66 ] && [ "$nlines" = 1 ] && grep -q "stats.sub-01" <<< "$err" \
        && [ "$results" = 0 ]; then
        pass "missing-BRIK/$engine" "exit 66, one line: $err"
    else
        fail "missing-BRIK/$engine" "exit $rc, $nlines stderr line(s), $results result file(s): $(oneline "$(cat "$DIR/bad-$engine.err")" 300)"
    fi
done
rm -rf "$DIR/data/bids-bad"

echo "check_image: $NFAIL failure(s); native ${SECONDS_OF[native]:-?} s, afni ${SECONDS_OF[afni]:-?} s; outputs in $DIR"
[ "$NFAIL" = 0 ]
