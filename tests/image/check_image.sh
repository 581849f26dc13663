#!/usr/bin/env bash
# check_image.sh TAG -- run a built afni-group image the way users do and check what it does.
#
# Prints one line per check ("PASS|FAIL|SKIP|INFO name: detail") and exits 0 only when no check
# fails. Every container runs with no network, a read-only root (--read-only --tmpfs /tmp), as
# uid 1000 (not root, not the image's user), with BIDS_DIR mounted read-only:
#   --version, --help, --bids-exec-spec (= bids_app_spec.json), AFNI inside (version, commit);
#   two routes, each run by both engines on a demo dataset made inside the image
#   (afni-group-demo): exit 0, every expected output and report.html, the BIDS validator
#   (bids-validator-deno on deno) ran, nothing written outside /out and /tmp (podman diff),
#   BIDS_DIR unchanged; then engine parity (python -m afni_group.parity on the two output
#   folders, one line per check, written as parity.json):
#     mema:  the tutorial's route (3dMEMA, 3dClustSim from the mean ACF) on --grid 3mm, 12
#            subjects, two sets;
#     ttest: --program 3dttest++ --clustsim randomise (3dttest++ -Clustsim: sign-randomised
#            residuals, 3dClustSim -insdat, 3drefit) on --grid small, 14 subjects (AFNI's
#            minimum for -Clustsim), the chx set;
#   Singularity.def's %test commands inside the image;
#   a missing BRIK: exit 66 and a one-line error naming the dataset, no results, each engine.
#
# Environment: PODMAN (default podman; CONTAINERS_CONF is honoured), CLUSTSIM_ITER (default
# 1000: --clustsim-iter of every run; afni-group raises it to 3dClustSim's minimum on the acf
# route), ROUTES (default "mema ttest"), CHECK_DIR (where data and outputs go; default a new
# folder under /var/tmp, kept, printed at the end), NCPUS (default 2).
set -uo pipefail

TAG=${1:?usage: tests/image/check_image.sh TAG}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PODMAN=${PODMAN:-podman}
ITER=${CLUSTSIM_ITER:-1000}
NCPUS=${NCPUS:-2}
ROUTES=${ROUTES:-mema ttest}
DIR=${CHECK_DIR:-$(mktemp -d /var/tmp/afni-group-check.XXXXXX)}
mkdir -p "$DIR"
NFAIL=0

# the demo's sets (as the tutorial: a groups design of two contrasts)
CHX=(--set chx 'left_vs_right_chx#0_Coef' 'left_vs_right_chx#0_Tstat')
SETS=("${CHX[@]}" --set keypress 'left_vs_right_press#0_Coef' 'left_vs_right_press#0_Tstat')
# per route: the demo's options, afni-group's options, the analysis folder and what it must hold
# (the top level must hold EXPECTED_TOP; the keypress effect is weak: no cluster, so no map)
declare -A DEMO_ARGS RUN_ARGS ANALYSIS EXPECTED
DEMO_ARGS[mema]="--grid 3mm"
RUN_ARGS[mema]="${SETS[*]@Q}"
ANALYSIS[mema]=analysis-mema
EXPECTED[mema]="mema_results.nii.gz mask.nii.gz 3dClustSim.cmd ClustSim.mask
 clust_bisided_report_chx.txt clust_bisided_report_keypress.txt
 clust_bisided_map_chx.nii.gz clust_bisided_EE_chx.nii.gz"
DEMO_ARGS[ttest]="--grid small --subjects 14 --group-effect 1"
RUN_ARGS[ttest]="--program 3dttest++ --clustsim randomise ${CHX[*]@Q}"
ANALYSIS[ttest]=analysis-ttest
EXPECTED[ttest]="ttest_results.nii.gz mask.nii.gz ClustSim.CSimA.cmd
 clust_bisided_report_chx.txt clust_bisided_map_chx.nii.gz clust_bisided_EE_chx.nii.gz"
EXPECTED_TOP="dataset_description.json inventory.tsv params.json group_analysis.sh report.html"
for nn in 1 2 3; do
    for sided in 1sided 2sided bisided; do
        EXPECTED[mema]="${EXPECTED[mema]} ClustSim.NN${nn}_${sided}.1D ClustSim.NN${nn}_${sided}.niml"
        EXPECTED[ttest]="${EXPECTED[ttest]} ClustSim.CSimA.NN${nn}_${sided}.1D"
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

# ---- each route: the demo, both engines, parity ----------------------------------------------
# run_engine ROUTE ENGINE: one analysis as users run it; PASS/FAIL lines for the run and the
# BIDS validator (offline, read-only, uid 1000)
run_engine() {
    local route=$1 engine=$2 name rc t0 written missing nfiles f valid
    local bids=$DIR/data/bids-$route out_dir=$DIR/out-$route-$engine adir=${ANALYSIS[$route]}
    local -a args
    eval "args=(${RUN_ARGS[$route]})"
    rm -rf "$out_dir" && wdir "$out_dir"
    name=afni-group-check-$route-$engine-$$
    t0=$(date +%s)
    "$PODMAN" run --name "$name" --network=none --read-only --tmpfs /tmp -u 1000:1000 \
        -v "$bids:/data:ro" -v "$out_dir:/out" "$TAG" /data /out group \
        --engine "$engine" "${args[@]}" --seed 1 --clustsim-iter "$ITER" --n-cpus "$NCPUS" \
        > "$DIR/run-$route-$engine.log" 2>&1
    rc=$?
    SECONDS_OF[$route/$engine]=$(($(date +%s) - t0))
    # podman itself adds /etc/hosts, /etc/resolv.conf ... ("C /etc") and the mount points
    # /data and /out: anything else would be a write to the image
    written=$("$PODMAN" diff "$name" 2> /dev/null | grep -Ev '^(C /etc|A /data|A /out)$' | tr '\n' ' ')
    "$PODMAN" rm "$name" > /dev/null 2>&1
    missing=""
    for f in $EXPECTED_TOP; do [ -s "$out_dir/$f" ] || missing="$missing $f"; done
    for f in ${EXPECTED[$route]}; do [ -s "$out_dir/$adir/$f" ] || missing="$missing $adir/$f"; done
    nfiles=$(find "$out_dir" -type f | wc -l)
    if [ "$rc" != 0 ]; then
        fail "$route/run/$engine" "exit $rc after ${SECONDS_OF[$route/$engine]} s: $(tail -n 1 "$DIR/run-$route-$engine.log")"
    elif [ -n "$missing" ]; then
        fail "$route/run/$engine" "exit 0 but missing:$missing"
    elif [ -n "$written" ]; then
        fail "$route/run/$engine" "wrote outside /out and /tmp: $written"
    else
        pass "$route/run/$engine" "exit 0 in ${SECONDS_OF[$route/$engine]} s (read-only, uid 1000, --clustsim-iter $ITER), $nfiles files incl. report.html, nothing written outside /out and /tmp"
    fi
    # params.json's bids_validation: the validator (a deno program) must have run, offline
    valid=$(python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["bids_validation"]
print(("ran: %s, %d error(s), %d warning(s)" % (v["validator"], v["n_errors"], v["n_warnings"]))
      if v.get("ran") else "did not run: %s" % v.get("reason"))' "$out_dir/params.json" 2>&1)
    if [[ $valid == ran:* ]]; then pass "$route/bids-validator/$engine" "$valid"
    else fail "$route/bids-validator/$engine" "$(oneline "$valid")"; fi
}

# parity_check ROUTE: python -m afni_group.parity inside the image on the two engines' outputs
parity_check() {
    local route=$1 rc
    local nat=$DIR/out-$route-native afn=$DIR/out-$route-afni
    if ! [ -s "$nat/params.json" ] || ! [ -s "$afn/params.json" ]; then
        fail "$route/parity" "needs both runs' outputs"
        return
    fi
    wdir "$DIR/parity-$route"
    ctr -v "$nat:/native:ro" -v "$afn:/afni:ro" -v "$DIR/parity-$route:/parity" \
        --entrypoint python "$TAG" -m afni_group.parity /native /afni --json /parity/parity.json \
        > "$DIR/parity-$route.log" 2>&1
    rc=$?
    sed -n "s/^\(PASS\|FAIL\|SKIP\|INFO\) \(.*\)$/\1 $route\/parity\/\2/p" "$DIR/parity-$route.log"
    if [ "$rc" = 0 ]; then pass "$route/parity" "$(tail -n 1 "$DIR/parity-$route.log"); $DIR/parity-$route/parity.json"
    else fail "$route/parity" "$(tail -n 1 "$DIR/parity-$route.log") (exit $rc); $DIR/parity-$route/parity.json"; fi
}

declare -A SECONDS_OF
wdir "$DIR/data"
for route in $ROUTES; do
    bids=$DIR/data/bids-$route
    # shellcheck disable=SC2086  # DEMO_ARGS are words
    if ! out=$(ctr -v "$DIR/data:/w" --entrypoint afni-group-demo "$TAG" "/w/bids-$route" \
        ${DEMO_ARGS[$route]} 2>&1); then
        fail "$route/demo-data" "afni-group-demo ${DEMO_ARGS[$route]} failed: $(oneline "$out")"
        continue
    fi
    pass "$route/demo-data" "afni-group-demo ${DEMO_ARGS[$route]} inside the image: $(find "$bids" -type f | wc -l) files"
    bids_sum=$(tree_sum "$bids")
    for engine in native afni; do run_engine "$route" "$engine"; done
    if [ "$(tree_sum "$bids")" = "$bids_sum" ]; then pass "$route/bids-unchanged" "BIDS_DIR identical after both runs"
    else fail "$route/bids-unchanged" "BIDS_DIR changed"; fi
    parity_check "$route"
done

# ---- Singularity.def %test inside the image ----------------------------------------------------
body=$(awk '/^%test/ {on=1; next} /^%/ {on=0} on' "$ROOT/Singularity.def")
if out=$(ctr --entrypoint bash "$TAG" -c "$body" 2>&1); then
    pass singularity-%test "the %test commands ran inside the image: $(oneline "$out" 80)"
else fail singularity-%test "$(oneline "$out" 300)"; fi

# ---- bad input: a missing BRIK -----------------------------------------------------------------
# stderr may carry progress lines ("++ found afni_proc results ..."), but exactly one error
# line, naming the subject's stats dataset (its HEAD or BRIK), and no traceback
first=${ROUTES%% *}
if [ -d "$DIR/data/bids-$first" ]; then
    rm -rf "$DIR/data/bids-bad" && cp -al "$DIR/data/bids-$first" "$DIR/data/bids-bad"
    brik=$(find "$DIR/data/bids-bad/derivatives/afni/sub-01" -name 'stats.*.BRIK*' | head -n 1)
    rm -f "$brik"
    eval "args=(${RUN_ARGS[$first]})"
    for engine in native afni; do
        out_dir=$DIR/out-bad-$engine
        rm -rf "$out_dir" && wdir "$out_dir"
        ctr -v "$DIR/data/bids-bad:/data:ro" -v "$out_dir:/out" "$TAG" /data /out group \
            --engine "$engine" "${args[@]}" > "$DIR/bad-$engine.out" 2> "$DIR/bad-$engine.err"
        rc=$?
        nerr=$(grep -c "^afni-group: error: " "$DIR/bad-$engine.err")
        ntrace=$(grep -c "Traceback" "$DIR/bad-$engine.err")
        err=$(grep -m 1 "^afni-group: error: " "$DIR/bad-$engine.err")
        results=$(find "$out_dir" -name '*_results.nii*' -o -name report.html | wc -l)
        if [ "$rc" = 66 ] && [ "$nerr" = 1 ] && [ "$ntrace" = 0 ] \
            && grep -q "stats.sub-01" <<< "$err" && [ "$results" = 0 ]; then
            pass "missing-BRIK/$engine" "exit 66, one error line: $err"
        else
            fail "missing-BRIK/$engine" "exit $rc, $nerr error line(s), $ntrace traceback(s), $results result file(s): $(oneline "$(cat "$DIR/bad-$engine.err")" 300)"
        fi
    done
    rm -rf "$DIR/data/bids-bad"
else
    fail missing-BRIK "no demo data of route $first"
fi

times=""
for key in "${!SECONDS_OF[@]}"; do times="$times, $key ${SECONDS_OF[$key]} s"; done
echo "check_image: $NFAIL failure(s)$times; outputs in $DIR"
[ "$NFAIL" = 0 ]
