"""The 3dttest++ command of the afni engine, as ``gen_group_command.py -command 3dttest++``
writes it.

gen_group_command.py writes ``3dttest++ -prefix P -AminusB -setA LABEL SID "dset[beta]" ...
-setB LABEL ... OPTIONS`` (LONG-form sets, subject IDs as dataset labels; ``-AminusB`` always
with two sets; the ``-options`` words last, verbatim). The direct command below has those words
in that order, with explicit IDs (``sub-X``, ``sub-X_ses-Y`` for one session's results, as
the native engine labels them); with ``--via-gen-group-command`` the script calls
gen_group_command.py itself (:func:`ggc_command`).

Two-set designs give the **second** set as ``-setA`` and the first as ``-setB``, so 3dttest++'s
difference ``A-B`` is labelled ``second-first`` like 3dMEMA's ``B-A``
(:meth:`afni_group.plan.Analysis.tested_labels`). ``--design conditions`` adds ``-paired``.
"""

from __future__ import annotations

from afni_group.plan import Analysis, AnalysisPlan

#: gen_group_command.py's script in each analysis folder (``--via-gen-group-command``)
TTEST_SCRIPT = "do_group_level_ttest.tcsh"


def ttest_options(plan: AnalysisPlan, analysis: Analysis, covariates_file: str) -> list[str]:
    """3dttest++ options after the sets (gen_group_command.py's ``-options`` words).

    ``-paired`` for conditions, the group mask (made before the model), the covariate table,
    and for ``--clustsim randomise`` the simulations: ``-prefix_clustsim ClustSim -CLUSTSIM N``
    (capital L: AFNI keeps the simulation files, so the script can check that every job
    finished before 3dClustSim read them; see the template) and ``-seed``.
    """
    options = []
    if analysis.design == "conditions":
        options.append("-paired")
    options.append('-mask "$omask"')
    if plan.covariates:
        options.append(f"-covariates {covariates_file}")
    if plan.clustsim_route == "randomise":
        options.append('-prefix_clustsim "$csim_prefix"')
        options.append('-CLUSTSIM "$csim_jobs"')
        if plan.seed is not None:
            options.append('-seed "$csim_seed"')
    return options


def ttest_command(plan: AnalysisPlan, analysis: Analysis, covariates_file: str) -> list[str]:
    """The lines of the direct 3dttest++ command (LONG-form sets with ``sub-XX`` labels)."""
    from afni_group.engines.afni.render import proc_path, shell_word

    lines = ["3dttest++", '    -prefix "$ottest"']
    sets = plan.ttest_sets(analysis)
    if len(sets) == 2:
        lines.append("    -AminusB")
    for option, (spec, units) in zip(("-setA", "-setB"), sets, strict=False):
        lines.append(f"    {option} {shell_word(spec.label)}")
        for subj in units:
            dataset = proc_path(subj.stats, plan.afni_dir, f"[{spec.beta}]")
            lines.append(f"        {shell_word(subj.unit_id)} {dataset}")
    lines.extend(f"    {opt}" for opt in ttest_options(plan, analysis, covariates_file))
    return lines


def covariate_rows(plan: AnalysisPlan, analysis: Analysis) -> list[str]:
    """The ``-covariates`` table's lines, the native engine's text (one row per dataset label
    of the analysis: ``sub-X``, or ``sub-X_ses-Y`` for one session's results)."""
    from afni_group.programs.ttest.formats import format_covariates

    if not plan.covariates:
        return []
    return format_covariates(sorted(plan.covariates), plan.ttest_covariates(analysis)).splitlines()


def ggc_command(plan: AnalysisPlan, analysis: Analysis, covariates_file: str) -> list[str]:
    """The lines of the ``gen_group_command.py -command 3dttest++`` call writing the command.

    One ``-dsets`` list when both sets read the same results (one-sample, paired conditions of
    one session), else one per set; ``-subs_betas`` once per set, or once when both sets use
    the same beta of different subjects (gen_group_command.py then uses it for both).
    """
    from afni_group.engines.afni.render import double_quote, proc_path

    sets = plan.ttest_sets(analysis)
    lines = [
        "gen_group_command.py",
        "    -command 3dttest++",
        '    -write_script "${adir}/${script_ttest}"',
        '    -prefix "$ottest"',
    ]
    units = [u for _, u in sets]
    lists = units if len(units) == 2 and units[0] != units[1] else units[:1]
    for members in lists:
        lines.append("    -dsets")
        lines.extend(f"        {proc_path(s.stats, plan.afni_dir)}" for s in members)
    betas = [spec.beta for spec, _ in sets]
    if len(lists) == 2 and len(set(betas)) == 1:
        betas = betas[:1]
    lines.append(f"    -set_labels {' '.join(double_quote(spec.label) for spec, _ in sets)}")
    lines.append(f"    -subs_betas {' '.join(double_quote(b) for b in betas)}")
    lines.append(f"    -options {' '.join(ttest_options(plan, analysis, covariates_file))}")
    return lines
