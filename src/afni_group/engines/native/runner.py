"""The native engine: the plan's steps run in-process with the numpy modules.

Same steps, order and file names as the tutorial script (and the afni engine): 3dMEMA per
analysis, then the group mask, the mean ACF and 3dClustSim once (they depend only on the
subjects), then per set the cluster-size lookup, p2dsetstat and 3dClusterize.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

from afni_group.outputs import atomic_copy, atomic_write_text
from afni_group.plan import (
    CLUSTSIM_PREFIX,
    MASK_FILE,
    MEMA_FILE,
    Analysis,
    AnalysisPlan,
    clustsim_outputs,
)
from afni_group.steps import StepLog

LOG = logging.getLogger(__name__)

CLUSTSIM_FILES = clustsim_outputs()


def clusterize_thresholds(sided: str, threshold_text: str) -> dict:
    """3dClusterize threshold arguments for a sidedness, as the tutorial passes them.

    The text is p2dsetstat's output, used verbatim (the cluster map's option-summary label
    records what was typed: ``bisided,-4.586894,4.586894,...``).
    """
    if sided == "1sided":
        return {"thresholds": threshold_text, "tail": "RIGHT_TAIL"}
    return {"thresholds": (f"-{threshold_text}", threshold_text)}


def run_mema_step(plan: AnalysisPlan, analysis: Analysis, outdir: Path, log: StepLog) -> None:
    from afni_group.programs.mema import files as mema

    target = outdir / MEMA_FILE
    sets = [
        mema.MemaSet(
            s.label,
            plan.subject_labels,
            plan.brick_specs("beta", s),
            plan.brick_specs("tstat", s),
        )
        for s in analysis.sets
    ]
    params = {
        "sets": [asdict(s) for s in analysis.sets],
        "design": analysis.design,
        "subjects": plan.subject_labels,
        "missing_data": plan.missing_data,
        "hktest": plan.hktest,
        "correct_dof": plan.correct_dof,
        "covariates": plan.covariates,
    }
    log.run(
        f"{analysis.dirname}/3dMEMA",
        params,
        [s.stats for s in plan.subjects],
        [target],
        lambda: str(
            mema.run_mema(
                sets,
                target,
                design=analysis.design,
                missing_data=plan.missing_data,
                hktest=plan.hktest,
                covariates=plan.covariates or None,
                correct_dof=plan.correct_dof,
                n_jobs=plan.n_cpus,
                # the step log decides when to redo a step (--resume with changed options)
                overwrite=True,
                mem_limit=plan.mem_limit,
                # large studies: inputs stored here, kept for --resume until the step is done
                work_dir=plan.work_dir / f"3dMEMA-{analysis.dirname}",
                resume=log.resume,
            )
        ),
    )


def run_shared_steps(plan: AnalysisPlan, outdir: Path, log: StepLog) -> tuple[list[float], dict]:
    """Group mask, mean ACF and 3dClustSim, written into ``outdir``.

    Returns the ACF and the Monte-Carlo s.e. of every ClustSim table cell
    (:func:`clustsim.mc_standard_errors`; empty when the step log has none).
    """
    from afni_group.programs.acf import core as acf
    from afni_group.programs.clustsim import files as clustsim
    from afni_group.programs.mask_tool import core as mask_tool

    mask = outdir / MASK_FILE
    log.run(
        "3dmask_tool",
        {"frac": plan.mask_frac},
        plan.mask_inputs,
        [mask],
        lambda: str(mask_tool.make_group_mask(plan.mask_inputs, mask, frac=plan.mask_frac)),
    )
    mean = log.run(
        "ACF",
        {},
        plan.blur_files,
        [],
        lambda: [float(v) for v in acf.mean_acf(plan.blur_files)],
    )
    acf_text = acf.format_acf(mean)
    LOG.info("++ Group average ACF params: %s", " ".join(acf_text))
    acf_values = tuple(float(v) for v in acf_text)

    def simulate() -> dict:
        files = clustsim.run_clustsim(
            mask,
            acf_values,
            outdir / CLUSTSIM_PREFIX,
            iterations=plan.clustsim_iter,
            seed=plan.seed,
            n_jobs=plan.n_cpus,
            command_line=_clustsim_command(plan, acf_text),
        )
        tables = getattr(files, "tables", None)
        mc = clustsim.mc_standard_errors(tables) if tables is not None else {}
        return {"files": [str(p) for p in files], "mc": mc}

    done = log.run(
        "3dClustSim",
        {"acf": acf_text, "iter": plan.clustsim_iter, "seed": plan.seed},
        [mask],
        [outdir / f for f in CLUSTSIM_FILES],
        simulate,
    )
    # record what 3dClustSim was given (awk's %.6g text), as the afni engine does
    return list(acf_values), (done.get("mc") or {}) if isinstance(done, dict) else {}


def _clustsim_command(plan: AnalysisPlan, acf_text: list[str]) -> str:
    parts = ["3dClustSim", "-both", "-mask", MASK_FILE, "-acf", *acf_text, "-prefix", "ClustSim"]
    if plan.clustsim_iter != 10000:
        parts[1:1] = ["-iter", str(plan.clustsim_iter)]
    if plan.seed is not None:
        parts[1:1] = ["-seed", str(plan.seed)]
    return " ".join(parts)


def run_cluster_steps(
    plan: AnalysisPlan, analysis: Analysis, outdir: Path, log: StepLog
) -> tuple[int, list[dict]]:
    """Cluster-size threshold, then p2dsetstat and 3dClusterize for each set."""
    from afni_group import cluster_table
    from afni_group.programs.clusterize import files as clusterize
    from afni_group.programs.csim_lookup import core as csim_lookup
    from afni_group.programs.p2dsetstat import core as p2dsetstat

    t = plan.thresholds
    table = outdir / plan.clustsim_table
    clust_nvox = log.run(
        f"{analysis.dirname}/1d_tool.py",
        {"pthr": t.pthr, "alpha": t.alpha, "table": table.name},
        [table],
        [],
        lambda: int(csim_lookup.cluster_size_threshold(table, t.pthr, t.alpha)),
    )
    LOG.info("++ Cluster volume threshold: %s", clust_nvox)
    mema_path = outdir / MEMA_FILE
    results = []
    for set_label in analysis.tested_labels():
        files = plan.cluster_files(set_label)
        tbrick, bbrick = f"{set_label}:t", f"{set_label}:b"
        spec = f"{mema_path}[{tbrick}]"
        threshold = log.run(
            f"{analysis.dirname}/p2dsetstat/{set_label}",
            {"pthr": t.pthr, "sided": t.sided},
            [mema_path],
            [],
            lambda spec=spec: float(
                p2dsetstat.format_stat_threshold(p2dsetstat.stat_threshold(spec, t.pthr, t.sided))
            ),
        )
        LOG.info("++ Stat threshold %s: %s", set_label, p2dsetstat.format_stat_threshold(threshold))

        def clusterize_set(files=files, tbrick=tbrick, bbrick=bbrick, threshold=threshold):
            for name in ("map", "ee"):
                (outdir / files[name]).unlink(missing_ok=True)
            result = clusterize.run_clusterize(
                str(mema_path),
                tbrick,
                bbrick,
                mask=str(outdir / MASK_FILE),
                mask_text=MASK_FILE,  # the report names the mask as the tutorial passes it
                sided=t.sided,
                **clusterize_thresholds(t.sided, p2dsetstat.format_stat_threshold(threshold)),
                nn=t.nn,
                clust_nvox=clust_nvox,
                pref_map=str(outdir / files["map"]),
                pref_dat=str(outdir / files["ee"]),
            )
            atomic_write_text(outdir / files["report"], result.report_text)
            extra = cluster_table.tsv_extra(result, mema_path, tbrick, table, t.pthr)
            clusterize.write_clusters_tsv(result, outdir / files["clusters_tsv"], *extra)
            return int(result.n_clusters)

        n_clusters = log.run(
            f"{analysis.dirname}/3dClusterize/{set_label}",
            {"threshold": threshold, "clust_nvox": clust_nvox, "nn": t.nn, "sided": t.sided},
            [mema_path, outdir / MASK_FILE],
            [outdir / files["report"], outdir / files["clusters_tsv"]],
            clusterize_set,
        )
        found = n_clusters > 0
        LOG.info(
            "++ Clusterizing %s complete: %s",
            set_label,
            f"{n_clusters} cluster(s)" if found else "NO CLUSTERS FOUND",
        )
        results.append(
            {
                "set": set_label,
                "tbrick": tbrick,
                "bbrick": bbrick,
                "voxel_threshold": threshold,
                "n_clusters": n_clusters,
                "report": files["report"],
                "clusters_tsv": files["clusters_tsv"],
                "map": files["map"] if found else None,
                "ee": files["ee"] if found else None,
            }
        )
    return clust_nvox, results


def run_native(plan: AnalysisPlan, log: StepLog) -> list[dict]:
    """Run every step of the plan; returns the per-analysis results for params.json."""
    from afni_group.programs.clustsim import files as clustsim

    dirs = [plan.analysis_dir(a) for a in plan.analyses]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    for analysis, outdir in zip(plan.analyses, dirs, strict=True):
        run_mema_step(plan, analysis, outdir, log)
    acf_mean, mc = run_shared_steps(plan, dirs[0], log)
    for outdir in dirs[1:]:
        for name in [MASK_FILE, *CLUSTSIM_FILES]:
            atomic_copy(dirs[0] / name, outdir / name)
    results = []
    for analysis, outdir in zip(plan.analyses, dirs, strict=True):
        clust_nvox, set_results = run_cluster_steps(plan, analysis, outdir, log)
        t = plan.thresholds
        uncertainty = clustsim.threshold_mc(outdir / plan.clustsim_table, t.pthr, t.alpha, mc)
        results.append(
            {
                "acf": acf_mean,
                "cluster_size_threshold": clust_nvox,
                "cluster_size_mc": uncertainty,
                "results": set_results,
            }
        )
    return results
