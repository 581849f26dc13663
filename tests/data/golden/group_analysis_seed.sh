#!/usr/bin/env bash
# group_analysis.sh: AFNI group analysis written by afni-group 0.1.0 (afni engine).
# Command line: afni-group /data/bids /data/bids/derivatives/afni-group group
#
# The steps of the tutorial's group_analysis.sh (adapted from AFNI's
# s.nimh_group_level_02_mema_bisided.tcsh): 3dMEMA, group mask, mean ACF,
# 3dClustSim, cluster-size and voxelwise thresholds, 3dClusterize per set.
# Rerun it by hand with AFNI and R on PATH:  bash group_analysis.sh
# (AFNI_GROUP_OUTDIR=DIR writes the results into DIR instead of outdir below;
# existing results of a step are replaced when that step runs again).

set -euo pipefail

###############################################################################
# Paths and analysis parameters
###############################################################################

bids_dir="/data/bids"
path_proc="${bids_dir}/derivatives/afni"
outdir="${AFNI_GROUP_OUTDIR:-/data/bids/derivatives/afni-group}"

# subject inputs (afni_proc.py results), in subject order
mask_files=(
    "${path_proc}/sub-01/sub-01.results/mask_epi_anat.sub-01+tlrc.HEAD"
    "${path_proc}/sub-02/sub-02.results/mask_epi_anat.sub-02+tlrc.HEAD"
    "${path_proc}/sub-03/sub-03.results/mask_epi_anat.sub-03+tlrc.HEAD"
    "${path_proc}/sub-04/sub-04.results/mask_epi_anat.sub-04+tlrc.HEAD"
    "${path_proc}/sub-05/sub-05.results/mask_epi_anat.sub-05+tlrc.HEAD"
    "${path_proc}/sub-06/sub-06.results/mask_epi_anat.sub-06+tlrc.HEAD"
)
blur_files=(
    "${path_proc}/sub-01/sub-01.results/blur_est.sub-01.1D"
    "${path_proc}/sub-02/sub-02.results/blur_est.sub-02.1D"
    "${path_proc}/sub-03/sub-03.results/blur_est.sub-03.1D"
    "${path_proc}/sub-04/sub-04.results/blur_est.sub-04.1D"
    "${path_proc}/sub-05/sub-05.results/blur_est.sub-05.1D"
    "${path_proc}/sub-06/sub-06.results/blur_est.sub-06.1D"
)

# 3dMEMA settings
omema=mema_results.nii.gz
mema_jobs=8

# group mask settings
omask=mask.nii.gz
mask_frac=1.0

# cluster simulation settings
csim_prefix=ClustSim
csim_neigh=1
csim_NN="NN${csim_neigh}"
csim_sided=bisided
csim_pthr=0.001
csim_alpha=0.05

# OpenMP programs (3dClustSim) use this many threads; no AFNI .afni.log files
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}"
export AFNI_DONT_LOGFILE="${AFNI_DONT_LOGFILE:-YES}"

###############################################################################
# Helpers
###############################################################################

# Marks the start of a step: afni-group names a failed step and splits the logs with it.
step() {
    echo "++ afni-group step: $1"
}

die() {
    echo "** ERROR: $*" >&2
    exit 1
}

# Appends name=value to the analysis folder's afni_values.txt (read back by afni-group).
record() {
    printf '%s=%s\n' "$1" "$2" >> afni_values.txt
}

# Stops unless $2 is a positive number (p2dsetstat prints e.g. 4.586894).
check_number() {
    if [[ ! $2 =~ ^[0-9]+([.][0-9]+)?$ ]] || [[ $2 =~ ^0+([.]0+)?$ ]]; then
        die "$1 gave '$2' instead of a positive number"
    fi
}

# 3dMEMA -jobs > 1 needs the R package snow; run serially without it.
if ! Rscript -e 'quit(status = as.integer(!requireNamespace("snow", quietly = TRUE)))' \
        > /dev/null 2>&1; then
    echo "*+ WARNING: R package 'snow' not found: 3dMEMA runs with -jobs 1"
    mema_jobs=1
fi

echo "++ Running group analysis in: $outdir"
mkdir -p "$outdir"

###############################################################################
###############################################################################
# Analysis mema: two-group (unpaired) 3dMEMA of set chx and set keypress (difference keypress-chx)
###############################################################################
###############################################################################

adir="${outdir}/analysis-mema"
mkdir -p "$adir"
cd "$adir" || die "cannot enter $adir"
: > afni_values.txt
declare -A voxstat_thr=()

###############################################################################
# 1.1) 3dMEMA
###############################################################################

step analysis-mema/3dMEMA
rm -f "$omema"
3dMEMA \
    -prefix "$omema" \
    -jobs "$mema_jobs" \
    -set chx \
        sub-01 "${path_proc}/sub-01/sub-01.results/stats.sub-01_REML+tlrc.HEAD[left_vs_right_chx#0_Coef]" \
               "${path_proc}/sub-01/sub-01.results/stats.sub-01_REML+tlrc.HEAD[left_vs_right_chx#0_Tstat]" \
        sub-02 "${path_proc}/sub-02/sub-02.results/stats.sub-02_REML+tlrc.HEAD[left_vs_right_chx#0_Coef]" \
               "${path_proc}/sub-02/sub-02.results/stats.sub-02_REML+tlrc.HEAD[left_vs_right_chx#0_Tstat]" \
        sub-03 "${path_proc}/sub-03/sub-03.results/stats.sub-03_REML+tlrc.HEAD[left_vs_right_chx#0_Coef]" \
               "${path_proc}/sub-03/sub-03.results/stats.sub-03_REML+tlrc.HEAD[left_vs_right_chx#0_Tstat]" \
        sub-04 "${path_proc}/sub-04/sub-04.results/stats.sub-04_REML+tlrc.HEAD[left_vs_right_chx#0_Coef]" \
               "${path_proc}/sub-04/sub-04.results/stats.sub-04_REML+tlrc.HEAD[left_vs_right_chx#0_Tstat]" \
        sub-05 "${path_proc}/sub-05/sub-05.results/stats.sub-05_REML+tlrc.HEAD[left_vs_right_chx#0_Coef]" \
               "${path_proc}/sub-05/sub-05.results/stats.sub-05_REML+tlrc.HEAD[left_vs_right_chx#0_Tstat]" \
        sub-06 "${path_proc}/sub-06/sub-06.results/stats.sub-06_REML+tlrc.HEAD[left_vs_right_chx#0_Coef]" \
               "${path_proc}/sub-06/sub-06.results/stats.sub-06_REML+tlrc.HEAD[left_vs_right_chx#0_Tstat]" \
    -set keypress \
        sub-01 "${path_proc}/sub-01/sub-01.results/stats.sub-01_REML+tlrc.HEAD[left_vs_right_press#0_Coef]" \
               "${path_proc}/sub-01/sub-01.results/stats.sub-01_REML+tlrc.HEAD[left_vs_right_press#0_Tstat]" \
        sub-02 "${path_proc}/sub-02/sub-02.results/stats.sub-02_REML+tlrc.HEAD[left_vs_right_press#0_Coef]" \
               "${path_proc}/sub-02/sub-02.results/stats.sub-02_REML+tlrc.HEAD[left_vs_right_press#0_Tstat]" \
        sub-03 "${path_proc}/sub-03/sub-03.results/stats.sub-03_REML+tlrc.HEAD[left_vs_right_press#0_Coef]" \
               "${path_proc}/sub-03/sub-03.results/stats.sub-03_REML+tlrc.HEAD[left_vs_right_press#0_Tstat]" \
        sub-04 "${path_proc}/sub-04/sub-04.results/stats.sub-04_REML+tlrc.HEAD[left_vs_right_press#0_Coef]" \
               "${path_proc}/sub-04/sub-04.results/stats.sub-04_REML+tlrc.HEAD[left_vs_right_press#0_Tstat]" \
        sub-05 "${path_proc}/sub-05/sub-05.results/stats.sub-05_REML+tlrc.HEAD[left_vs_right_press#0_Coef]" \
               "${path_proc}/sub-05/sub-05.results/stats.sub-05_REML+tlrc.HEAD[left_vs_right_press#0_Tstat]" \
        sub-06 "${path_proc}/sub-06/sub-06.results/stats.sub-06_REML+tlrc.HEAD[left_vs_right_press#0_Coef]" \
               "${path_proc}/sub-06/sub-06.results/stats.sub-06_REML+tlrc.HEAD[left_vs_right_press#0_Tstat]" \
    -groups chx keypress \
    -missing_data 0
[[ -f $omema ]] || die "3dMEMA did not write $omema"
echo "++ Finished MEMA"

###############################################################################
# 1.2) Group mask
###############################################################################

step 3dmask_tool
rm -f "$omask"
3dmask_tool \
    -prefix "$omask" \
    -input "${mask_files[@]}" \
    -frac "$mask_frac"
[[ -f $omask ]] || die "3dmask_tool did not write $omask"
echo "++ Created group mask"

###############################################################################
# 1.3) Average ACF smoothness (REML ACF only, 3 parameters)
###############################################################################

step ACF
# first 3 numbers of each "err_reml ACF" line (the 4th is the combined FWHM);
# grep -h: no file name prefix, so this also works for a single subject
# unlike the tutorial, a subject without the line stops the run instead of silently
# leaving its smoothness out of the mean
acf_lines=""
no_acf=()
for blur_file in "${blur_files[@]}"; do
    if ! lines=$(grep -h "err_reml ACF" "$blur_file"); then
        no_acf+=("$blur_file")
        continue
    fi
    acf_lines+="$(awk '{print $1, $2, $3}' <<< "$lines")"$'\n'
done
if [[ -z $acf_lines ]]; then
    die "No REML ACF lines found in blur_est files"
fi
if [[ -n "${no_acf[*]}" ]]; then
    die "no 'err_reml ACF' line in ${no_acf[*]}: rerun that subject's blur estimation or leave the subject out"
fi

# mean of each column, printed by awk with 6 significant digits
read -r acf_a acf_b acf_c <<< "$(awk 'NF {a+=$1; b+=$2; c+=$3; n+=1} END {print a/n, b/n, c/n}' <<< "$acf_lines")"
blur_est=("$acf_a" "$acf_b" "$acf_c")
echo "++ Group average ACF params: ${blur_est[*]}"

###############################################################################
# 1.4) Cluster simulations (3dClustSim)
###############################################################################

step 3dClustSim
rm -f "$csim_prefix".* 3dClustSim.cmd
3dClustSim \
    -both \
    -mask "$omask" \
    -acf "${blur_est[@]}" \
    -prefix "$csim_prefix"
echo "++ Finished cluster simulations"

###############################################################################
# 1.5) Cluster-size threshold in voxels
###############################################################################

step analysis-mema/1d_tool.py
clust_thrvol=$(1d_tool.py -verb 0 \
    -infile "${csim_prefix}.${csim_NN}_${csim_sided}.1D" \
    -csim_pthr "$csim_pthr" \
    -csim_alpha "$csim_alpha")
# 1d_tool.py prints 0 (after a message) when p or alpha is not in the table
if [[ ! $clust_thrvol =~ ^[0-9]+$ ]] || (( clust_thrvol < 1 )); then
    die "1d_tool.py found no cluster size for p=$csim_pthr alpha=$csim_alpha in" \
        "${csim_prefix}.${csim_NN}_${csim_sided}.1D: $clust_thrvol"
fi
echo "++ Cluster volume threshold: $clust_thrvol"
record acf "${blur_est[*]}"
record clust_thrvol "$clust_thrvol"

###############################################################################
# 1.6) Voxelwise stat thresholds
###############################################################################

step analysis-mema/p2dsetstat/chx
voxstat_thr[chx]=$(p2dsetstat -quiet \
    -pval "$csim_pthr" \
    "-${csim_sided}" \
    -inset "${omema}[chx:t]")
check_number p2dsetstat "${voxstat_thr[chx]}"
record voxstat_thr_chx "${voxstat_thr[chx]}"
echo "++ Stat threshold chx: ${voxstat_thr[chx]}"

step analysis-mema/p2dsetstat/keypress
voxstat_thr[keypress]=$(p2dsetstat -quiet \
    -pval "$csim_pthr" \
    "-${csim_sided}" \
    -inset "${omema}[keypress:t]")
check_number p2dsetstat "${voxstat_thr[keypress]}"
record voxstat_thr_keypress "${voxstat_thr[keypress]}"
echo "++ Stat threshold keypress: ${voxstat_thr[keypress]}"

step analysis-mema/p2dsetstat/keypress-chx
voxstat_thr[keypress-chx]=$(p2dsetstat -quiet \
    -pval "$csim_pthr" \
    "-${csim_sided}" \
    -inset "${omema}[keypress-chx:t]")
check_number p2dsetstat "${voxstat_thr[keypress-chx]}"
record voxstat_thr_keypress-chx "${voxstat_thr[keypress-chx]}"
echo "++ Stat threshold keypress-chx: ${voxstat_thr[keypress-chx]}"

###############################################################################
# 1.7) Clusterize: thresholded cluster maps
###############################################################################

# Maps of the clusters (sorted by size) and the cluster-masked effect estimate
# (EE); when no cluster survives only the report is written.

### chx
step analysis-mema/3dClusterize/chx
thr="${voxstat_thr[chx]}"
rm -f "clust_bisided_map_chx.nii.gz" "clust_bisided_EE_chx.nii.gz" "clust_bisided_report_chx.txt"
3dClusterize \
    -inset "$omema" \
    -ithr "chx:t" \
    -idat "chx:b" \
    -mask "$omask" \
    "-${csim_sided}" "-${thr}" "$thr" \
    -NN "$csim_neigh" \
    -clust_nvox "$clust_thrvol" \
    -pref_map "clust_bisided_map_chx.nii.gz" \
    -pref_dat "clust_bisided_EE_chx.nii.gz" \
    > "clust_bisided_report_chx.txt"
echo "++ Clusterizing chx complete"

### keypress
step analysis-mema/3dClusterize/keypress
thr="${voxstat_thr[keypress]}"
rm -f "clust_bisided_map_keypress.nii.gz" "clust_bisided_EE_keypress.nii.gz" "clust_bisided_report_keypress.txt"
3dClusterize \
    -inset "$omema" \
    -ithr "keypress:t" \
    -idat "keypress:b" \
    -mask "$omask" \
    "-${csim_sided}" "-${thr}" "$thr" \
    -NN "$csim_neigh" \
    -clust_nvox "$clust_thrvol" \
    -pref_map "clust_bisided_map_keypress.nii.gz" \
    -pref_dat "clust_bisided_EE_keypress.nii.gz" \
    > "clust_bisided_report_keypress.txt"
echo "++ Clusterizing keypress complete"

### keypress-chx
step analysis-mema/3dClusterize/keypress-chx
thr="${voxstat_thr[keypress-chx]}"
rm -f "clust_bisided_map_keypress-chx.nii.gz" "clust_bisided_EE_keypress-chx.nii.gz" "clust_bisided_report_keypress-chx.txt"
3dClusterize \
    -inset "$omema" \
    -ithr "keypress-chx:t" \
    -idat "keypress-chx:b" \
    -mask "$omask" \
    "-${csim_sided}" "-${thr}" "$thr" \
    -NN "$csim_neigh" \
    -clust_nvox "$clust_thrvol" \
    -pref_map "clust_bisided_map_keypress-chx.nii.gz" \
    -pref_dat "clust_bisided_EE_keypress-chx.nii.gz" \
    > "clust_bisided_report_keypress-chx.txt"
echo "++ Clusterizing keypress-chx complete"

###############################################################################
printf '\n++ DONE with group-level stats and clustering! ++\n\n'
exit 0
