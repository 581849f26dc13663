"""The native engine's 3dttest++ step (``--program 3dttest++``): one analysis's sets as
3dttest++'s LONG-form sets, run with :func:`afni_group.programs.ttest.files.run_ttest` in the
analysis folder, as the afni engine runs AFNI's 3dttest++ there.

Conventions shared with the afni engine (issue 22):

* two-set designs give 3dttest++ the SECOND set as ``-setA`` and the first as ``-setB``, so its
  difference brick ``B-A_*`` has the label and sign of 3dMEMA's ``B-A``; ``groups`` is the
  unpaired pooled two-sample test, ``conditions`` ``-paired``, ``one`` the one-sample test;
* each dataset is labelled with its result's ID (``sub-X`` or ``sub-X_ses-Y``), and the effect
  is the set's beta sub-brick;
* ``-mask mask.nii.gz`` (the group mask); ``--covariates`` become a ``-covariates`` table
  (:data:`COVARIATES_FILE`) in the analysis folder, centred per set (3dttest++'s default);
* ``--clustsim randomise``: ``-prefix_clustsim ClustSim -Clustsim N`` (N = ``--n-cpus`` jobs),
  ``AFNI_TTEST_NUMCSIM`` = ``--clustsim-iter`` and ``-seed`` when given; the tables
  ``ClustSim.CSimA.NN*`` are written in the analysis folder.
"""

from __future__ import annotations

import logging
from pathlib import Path

from afni_group import atomic
from afni_group.plan import (
    CLUSTSIM_PREFIX,
    COVARIATES_FILE,
    MASK_FILE,
    Analysis,
    AnalysisPlan,
    clustsim_outputs,
)
from afni_group.steps import StepLog

LOG = logging.getLogger(__name__)

#: 3dttest++'s test for each design (two-set designs; one set is the one-sample test)
KINDS = {"one": "one", "groups": "pooled", "conditions": "paired"}


def ttest_argv(plan: AnalysisPlan, analysis: Analysis) -> tuple[list, list[str]]:
    """The 3dttest++ sets (``-setA`` first) and the command line recorded in the output's
    HISTORY_NOTE."""
    from afni_group.programs.ttest.files import DatasetSet

    sets = [
        DatasetSet(plan.brick_specs("beta", spec, units), [u.unit_id for u in units], spec.label)
        for spec, units in plan.ttest_sets(analysis)
    ]
    argv: list[str] = []
    for option, dsets in zip(("-setA", "-setB"), sets, strict=False):
        argv += [option, str(dsets.name)]
        for label, spec in zip(dsets.labels, dsets.specs, strict=True):
            argv += [label, spec]
    if analysis.design == "conditions":
        argv.append("-paired")
    if plan.covariates:
        argv += ["-covariates", COVARIATES_FILE]
    argv += ["-mask", MASK_FILE, "-prefix", plan.stats_file]
    if plan.clustsim_route == "randomise":
        argv += ["-prefix_clustsim", CLUSTSIM_PREFIX, "-Clustsim", str(plan.n_cpus)]
        if plan.seed is not None:
            argv += ["-seed", str(plan.seed)]
    return sets, argv


def run_ttest_step(plan: AnalysisPlan, analysis: Analysis, outdir: Path, log: StepLog) -> dict:
    """3dttest++ of one analysis into ``outdir`` (which holds the group mask already).

    Returns what the step recorded: the written files and, with ``--clustsim randomise``,
    ``iterations``, ``seeds`` and ``cluster_size_mc`` (the Monte-Carlo error of the threshold
    the plan reads).
    """
    from afni_group.programs.ttest import files as ttest
    from afni_group.programs.ttest import formats

    sets, argv = ttest_argv(plan, analysis)
    randomise = plan.clustsim_route == "randomise"
    options = None
    if randomise:
        options = ttest.ClustsimOptions(
            jobs=plan.n_cpus,
            iterations=plan.clustsim_iter,
            seed=plan.seed,
            prefix=CLUSTSIM_PREFIX,
            threads=plan.n_cpus,
        )
    params = {
        "argv": argv,
        "iterations": plan.clustsim_iter if randomise else None,
        "covariates": plan.covariates,
    }
    outputs = [outdir / plan.stats_file]
    if randomise:
        outputs += [outdir / name for name in clustsim_outputs("randomise")]

    def run() -> dict:
        if plan.covariates:
            table = formats.format_covariates(
                sorted(plan.covariates), plan.ttest_covariates(analysis)
            )
            atomic.write_text(outdir / COVARIATES_FILE, table)
        # as AFNI's 3dttest++ runs in the analysis folder: the -Clustsim tables go beside the
        # -prefix and record the names as given (mask.nii.gz)
        files = ttest.run_ttest(
            sets[0],
            sets[1] if len(sets) > 1 else None,
            plan.stats_file,
            kind=KINDS[analysis.design],
            mask=MASK_FILE,
            covariates=COVARIATES_FILE if plan.covariates else None,
            toz=plan.ttest_toz,
            clustsim_options=options,
            command=argv,
            # the step log decides when to redo a step (--resume with changed options)
            overwrite=True,
            # the pipeline judges the one cell it reads (threshold_uncertainty)
            table_warnings=False,
            directory=outdir,
        )
        done: dict = {"files": [str(p) for p in files]}
        if files.tables is not None:
            done["iterations"] = int(files.tables.iterations)
            done["seeds"] = list(files.seeds or ())
            done["cluster_size_mc"] = threshold_uncertainty(plan, files.tables)
        return done

    inputs = [u.stats for u in plan.analysis_units(analysis)] + [outdir / MASK_FILE]
    return log.run(f"{analysis.dirname}/3dttest++", params, inputs, outputs, run)


def threshold_uncertainty(plan: AnalysisPlan, tables) -> dict:
    """Monte-Carlo error of the cluster-size threshold the plan reads from 3dttest++'s tables.

    The ``-nodec`` table cell is an integer, ``int(C + 0.951)`` of the interpolated size C
    (spec 08 §7.1): its error is judged on C, recomputed from the simulated maxima, as for the
    ACF route's ``%.1f`` cells (:func:`afni_group.programs.clustsim.files.threshold_mc`); a
    warning is logged when C's 95 % interval gives more than one whole-voxel threshold.
    """
    from afni_group.programs.clustsim import core, stability
    from afni_group.programs.clustsim.simulate import tables_from_sizes

    t = plan.thresholds
    s, n = core.SIDEDNESS.index(t.sided), t.nn - 1
    i = [float(p) for p in tables.pthr].index(float(t.pthr))
    j = [float(a) for a in tables.athr].index(float(t.alpha))
    decimal = tables_from_sizes(tables.max_sizes, tables.pthr, tables.athr, nodec=False)
    size = float(decimal.tables[s, n, i, j])
    column = tables.max_sizes[:, s, n, i]
    result = core.threshold_uncertainty(column, t.alpha, tables.iterations, size)
    out = result.as_dict()
    out["iterations_to_settle"] = stability.iterations_to_settle(
        result.size, result.se, tables.iterations
    )
    if not result.stable:
        LOG.warning(
            "%s", stability.unstable_message(out, "3dttest++ -Clustsim", auto_possible=False)
        )
    return out
