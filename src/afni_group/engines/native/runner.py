"""The native engine: the plan's steps run in-process with the numpy modules.

Same steps, order and file names as the tutorial script (and the afni engine): 3dMEMA per
analysis, then the group mask, the mean ACF and 3dClustSim once (they depend only on the
subjects), then per set the cluster-size lookup, p2dsetstat and 3dClusterize.

``--program 3dttest++`` reads the group mask, so the mask (with ``--clustsim acf`` also the ACF
and 3dClustSim) comes first; with ``--clustsim randomise`` each analysis's 3dttest++
``-Clustsim`` writes its own tables (they rest on that model's residuals) and there is no ACF
step (:mod:`.ttest`).
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
    SubjectFiles,
    clustsim_outputs,
)
from afni_group.steps import StepLog

LOG = logging.getLogger(__name__)

CLUSTSIM_FILES = clustsim_outputs()


def tutorial_thresholds(sided: str, threshold: float) -> dict:
    """3dClusterize's threshold arguments as the tutorial's script passes p2dsetstat's value.

    The script types p2dsetstat's text (``-bisided -$thr $thr``, ``-1sided RIGHT_TAIL $thr``);
    3dClusterize echoes those words in the cluster map's label (``bisided,-4.586894,4.586894,
    ...``) and compares with float32 of their value. ``threshold`` is
    :func:`~afni_group.programs.p2dsetstat.formats.afni_printed_threshold`'s value.
    """
    from afni_group.programs.clusterize.options import OptionWords, Thresholds
    from afni_group.programs.p2dsetstat.formats import printed_threshold_text

    text = printed_threshold_text(threshold)
    if sided == "1sided":
        return {
            "thresholds": Thresholds("1sided", (threshold,), tail="RIGHT_TAIL"),
            "words": OptionWords(("RIGHT_TAIL", text)),
        }
    return {
        "thresholds": Thresholds(sided, (-threshold, threshold)),
        "words": OptionWords((f"-{text}", text)),
    }


def run_mema_step(plan: AnalysisPlan, analysis: Analysis, outdir: Path, log: StepLog) -> None:
    from afni_group.programs.mema import files as mema

    target = outdir / MEMA_FILE
    members = [plan.set_units(analysis, k) for k in range(len(analysis.sets))]
    sets = [
        mema.MemaSet(
            s.label,
            [u.label for u in units],
            plan.brick_specs("beta", s, units),
            plan.brick_specs("tstat", s, units),
        )
        for s, units in zip(analysis.sets, members, strict=True)
    ]
    params = {
        "sets": [asdict(s) for s in analysis.sets],
        "design": analysis.design,
        "subjects": [u.unit_label for u in plan.analysis_units(analysis)],
        "missing_data": plan.missing_data,
        "hktest": plan.hktest,
        "correct_dof": plan.correct_dof,
        "covariates": plan.covariates,
    }
    if analysis.members:
        params["set_subjects"] = [[u.unit_label for u in units] for units in members]
    log.run(
        f"{analysis.dirname}/3dMEMA",
        params,
        [s.stats for s in plan.analysis_units(analysis)],
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


def run_shared_steps(
    plan: AnalysisPlan,
    outdir: Path,
    log: StepLog,
    units: list[SubjectFiles] | None = None,
    step_prefix: str = "",
) -> tuple[list[float], dict]:
    """Group mask, mean ACF and 3dClustSim of ``units`` (default all subjects) into ``outdir``.

    ``step_prefix`` (e.g. ``analysis-chx_ses-2/``) names the steps of a second set of subjects.
    Returns the ACF and what the 3dClustSim step recorded: ``mc``, the Monte-Carlo s.e. of
    every table cell (:func:`clustsim.mc_standard_errors`; empty when the step log has none)
    and, with ``--clustsim-iter auto``, ``auto``: the batch size, the cap and the batches run.
    """
    from afni_group.programs.acf.files import mean_acf
    from afni_group.programs.acf.formats import format_acf
    from afni_group.programs.clustsim import files as clustsim

    units = plan.subjects if units is None else units
    blur_files = [s.blur_est for s in units if s.blur_est is not None]
    mask = run_mask_step(plan, outdir, log, units, step_prefix)
    mean = log.run(
        f"{step_prefix}ACF",
        {},
        blur_files,
        [],
        lambda: [float(v) for v in mean_acf(blur_files)],
    )
    acf_text = format_acf(mean)
    LOG.info("++ Group average ACF params: %s", " ".join(acf_text))
    acf_values = tuple(float(v) for v in acf_text)

    goal = stability_goal(plan)

    def simulate() -> dict:
        files = clustsim.run_clustsim(
            mask,
            acf_values,
            outdir / CLUSTSIM_PREFIX,
            iterations=plan.clustsim_iter,
            seed=plan.seed,
            n_jobs=plan.n_cpus,
            # the table headers name the iterations run (with 'auto': known at the end)
            command_line=lambda n: _clustsim_command(plan, acf_text, n),
            until_stable=goal,
        )
        tables = getattr(files, "tables", None)
        mc = clustsim.mc_standard_errors(tables) if tables is not None else {}
        batches = tables.batches if tables is not None else []
        return {"files": [str(p) for p in files], "mc": mc, "batches": batches}

    params: dict = {"acf": acf_text, "iter": plan.clustsim_iter, "seed": plan.seed}
    if goal is not None:
        params["auto"] = {"batch": goal.batch, "max": goal.max_iterations}
    done = log.run(
        f"{step_prefix}3dClustSim", params, [mask], [outdir / f for f in CLUSTSIM_FILES], simulate
    )
    done = done if isinstance(done, dict) else {}
    if goal is not None:
        # what ran: params.json, the report and the rewritten group_analysis.sh name it
        plan.clustsim_iter = int((done.get("mc") or {}).get("iterations") or plan.clustsim_iter)
        done["auto"] = {
            "batch": goal.batch,
            "max_iterations": goal.max_iterations,
            "batches": done.get("batches") or [],
        }
    # record what 3dClustSim was given (awk's %.6g text), as the afni engine does
    return list(acf_values), done


def run_mask_step(
    plan: AnalysisPlan, outdir: Path, log: StepLog, units: list[SubjectFiles], step_prefix: str
) -> Path:
    """The group mask of ``units`` (3dmask_tool -frac) in ``outdir``; returns its path."""
    from afni_group.programs.mask_tool import files as mask_tool

    mask_inputs = [s.mask for s in units if s.mask is not None]
    mask = outdir / MASK_FILE
    log.run(
        f"{step_prefix}3dmask_tool",
        {"frac": plan.mask_frac},
        mask_inputs,
        [mask],
        lambda: str(mask_tool.make_group_mask(mask_inputs, mask, frac=plan.mask_frac)),
    )
    return mask


def stability_goal(plan: AnalysisPlan):
    """``--clustsim-iter auto``: after ``plan.clustsim_iter`` iterations, batches until the
    plan's threshold cell is stable (:class:`~afni_group.programs.clustsim.stability.StabilityGoal`,
    batch size and cap of that module); None without ``auto``."""
    if not plan.clustsim_auto:
        return None
    from afni_group.programs.clustsim import stability

    t = plan.thresholds

    def note(tables, u) -> None:
        state = "stable" if u.stable else "not stable yet"
        if not u.stable and tables.iterations >= goal.max_iterations:
            state = f"still not stable at the most iterations 'auto' runs ({goal.max_iterations})"
        elif not u.stable:
            state += f": adding {min(goal.batch, goal.max_iterations - tables.iterations)}"
        LOG.info(
            "++ 3dClustSim %d iterations: cluster-size threshold %d (cell %.2f, s.e. %.2f), %s",
            tables.iterations, u.threshold, u.size, u.se, state,
        )  # fmt: skip

    goal = stability.StabilityGoal(
        t.pthr, t.alpha, t.nn, t.sided, stability.AUTO_BATCH, stability.AUTO_MAX_ITERATIONS, note
    )
    return goal


def _clustsim_command(plan: AnalysisPlan, acf_text: list[str], iterations: int) -> str:
    parts = ["3dClustSim", "-both", "-mask", MASK_FILE, "-acf", *acf_text, "-prefix", "ClustSim"]
    if iterations != 10000:
        parts[1:1] = ["-iter", str(iterations)]
    if plan.seed is not None:
        parts[1:1] = ["-seed", str(plan.seed)]
    return " ".join(parts)


def run_cluster_steps(
    plan: AnalysisPlan, analysis: Analysis, outdir: Path, log: StepLog
) -> tuple[int, list[dict]]:
    """Cluster-size threshold, then p2dsetstat and 3dClusterize for each set."""
    from afni_group import cluster_table, designs
    from afni_group.programs.clusterize import files as clusterize
    from afni_group.programs.clustsim.formats import read_clustsim_table
    from afni_group.programs.csim_lookup import core as csim_lookup
    from afni_group.programs.p2dsetstat import files as p2dsetstat
    from afni_group.programs.p2dsetstat.formats import (
        afni_printed_threshold,
        printed_threshold_text,
    )

    t = plan.thresholds
    table_path = outdir / plan.clustsim_table
    clust_nvox = log.run(
        f"{analysis.dirname}/1d_tool.py",
        {"pthr": t.pthr, "alpha": t.alpha, "table": table_path.name},
        [table_path],
        [],
        lambda: int(csim_lookup.cluster_size_threshold(table_path, t.pthr, t.alpha)),
    )
    LOG.info("++ Cluster volume threshold: %s", clust_nvox)
    table = read_clustsim_table(table_path)  # for every cluster's corrected p
    mema_path = outdir / plan.stats_file  # 3dMEMA's or 3dttest++'s bucket
    results = []
    for set_label in analysis.tested_labels():
        files = plan.cluster_files(set_label)
        tbrick, bbrick = plan.stat_bricks(set_label, analysis)
        threshold = log.run(
            f"{analysis.dirname}/p2dsetstat/{set_label}",
            {"pthr": t.pthr, "sided": t.sided},
            [mema_path],
            [],
            lambda tbrick=tbrick: afni_printed_threshold(
                p2dsetstat.stat_threshold(mema_path, tbrick, t.pthr, t.sided)
            ),
        )
        text = printed_threshold_text(threshold)
        dof = designs.t_dof(mema_path, tbrick)
        stat = "z" if plan.ttest_toz else "t"
        LOG.info("%s", designs.threshold_line(set_label, text, dof, stat))

        def clusterize_set(files=files, tbrick=tbrick, bbrick=bbrick, threshold=threshold):
            for name in ("map", "ee"):
                (outdir / files[name]).unlink(missing_ok=True)
            result = clusterize.run_clusterize(
                mema_path,
                tbrick,
                bbrick,
                mask=outdir / MASK_FILE,
                mask_text=MASK_FILE,  # the report names the mask as the tutorial passes it
                **tutorial_thresholds(t.sided, threshold),
                nn=t.nn,
                clust_nvox=clust_nvox,
                pref_map=outdir / files["map"],
                pref_dat=outdir / files["ee"],
            )
            atomic_write_text(outdir / files["report"], result.report_text)
            extra = cluster_table.tsv_extra(
                result, result.threshold_brick, result.affine, result.space, table, t.pthr
            )
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
    from afni_group.engines.native.ttest import run_ttest_step
    from afni_group.programs.clustsim import files as clustsim

    dirs = [plan.analysis_dir(a) for a in plan.analyses]
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
    mema = plan.program == "3dMEMA"
    if mema:  # the tutorial's order: the model first, then mask, ACF and 3dClustSim
        for analysis, outdir in zip(plan.analyses, dirs, strict=True):
            run_mema_step(plan, analysis, outdir, log)
    # mask, ACF and 3dClustSim once per set of subjects (per session, ...), copied to the rest;
    # --clustsim randomise: the mask only (its tables come from each analysis's 3dttest++)
    t = plan.thresholds
    acf = plan.clustsim_route == "acf"
    copied = [MASK_FILE, *CLUSTSIM_FILES] if acf else [MASK_FILE]
    shared: dict[tuple[str, ...], tuple[Path, list[float] | None, dict, dict | None]] = {}
    for analysis, outdir in zip(plan.analyses, dirs, strict=True):
        key = plan.shared_key(analysis)
        if key in shared:
            for name in copied:
                atomic_copy(shared[key][0] / name, outdir / name)
            continue
        prefix = f"{outdir.name}/" if shared else ""
        units = plan.analysis_units(analysis)
        if not acf:
            run_mask_step(plan, outdir, log, units, prefix)
            shared[key] = (outdir, None, {}, None)
            continue
        acf_mean, simulated = run_shared_steps(plan, outdir, log, units, prefix)
        # the analyses of these subjects read the same table cell: its error (and any warning) once
        uncertainty = clustsim.threshold_mc(
            outdir / plan.clustsim_table, t.pthr, t.alpha, simulated.get("mc") or {}
        )
        shared[key] = (outdir, acf_mean, simulated, uncertainty)
    results = []
    for analysis, outdir in zip(plan.analyses, dirs, strict=True):
        _, acf_mean, simulated, uncertainty = shared[plan.shared_key(analysis)]
        randomised = None
        if not mema:  # 3dttest++ reads the group mask (and -Clustsim: writes its own tables)
            done = run_ttest_step(plan, analysis, outdir, log)
            if not acf:
                randomised = {
                    "jobs": plan.n_cpus,
                    "iterations": done.get("iterations"),
                    "seeds": done.get("seeds"),
                }
                uncertainty = done.get("cluster_size_mc")
        clust_nvox, set_results = run_cluster_steps(plan, analysis, outdir, log)
        result = {
            "acf": acf_mean,
            "cluster_size_threshold": clust_nvox,
            "cluster_size_mc": uncertainty,
            "results": set_results,
        }
        if "auto" in simulated:
            result["clustsim_auto"] = simulated["auto"]
        if randomised is not None:
            result["clustsim_randomise"] = randomised
        results.append(result)
    return results
