"""Which group model and cluster-threshold route a run used, as the report reads them.

params.json says it per analysis (``program``, ``stats_file``, ``clustsim.route``) and at the top
(``program``, ``clustsim_route``); runs written before ``--program`` existed say neither and are
3dMEMA with the ACF route. :func:`resolve` fills every analysis with the three, so the rest of
the report reads them from one place.
"""

from __future__ import annotations

from afni_group.plan import MEMA_FILE, TTEST_FILE

#: the statistic of a stat brick: 3dttest++ -toz (forced by -Clustsim) writes ``LABEL_Zscr``
Z_SUFFIX = "_Zscr"

#: AFNI's recommended voxelwise p for the ACF route (Cox et al. 2017)
ACF_RECOMMENDED_PTHR = 0.001


def resolve(params: dict, analyses: list[dict]) -> list[dict]:
    """``analyses`` (params.json's), each with ``program``, ``stats_file`` and ``clustsim.route``.

    Parameters
    ----------
    params : dict
        The params.json document (its top-level ``program`` and ``clustsim_route`` are the
        fallback of an analysis that does not say).
    analyses : list of dict
        Its analyses (possibly already extended by the report).

    Returns
    -------
    list of dict
        New dicts; the input is not changed.
    """
    out = []
    for analysis in analyses:
        program = analysis.get("program") or params.get("program") or "3dMEMA"
        clustsim = dict(analysis.get("clustsim") or {})
        clustsim["route"] = clustsim.get("route") or params.get("clustsim_route") or "acf"
        stats_file = analysis.get("stats_file") or (
            MEMA_FILE if program == "3dMEMA" else TTEST_FILE
        )
        out.append({**analysis, "program": program, "stats_file": stats_file, "clustsim": clustsim})
    return out


def stat_name(brick: str | None) -> str:
    """``z`` for a 3dttest++ ``-toz`` brick (``LABEL_Zscr``, no degrees of freedom), else ``t``."""
    return "z" if (brick or "").endswith(Z_SUFFIX) else "t"


def result_stat(result: dict) -> str:
    """The statistic of a result: params.json's ``stat`` where recorded, else from its brick."""
    return result.get("stat") or stat_name(result.get("tbrick"))


def route_text(route: str) -> str:
    """How the route simulates the cluster-size threshold, in a few words for the report."""
    if route == "randomise":
        return "3dttest++ -Clustsim (sign-randomised residuals, no spatial model)"
    return "3dClustSim -both from the mean ACF (spatial noise model)"


def acf_pthr_advice(program: str, route: str, pthr: float | None) -> str | None:
    """The report's note when the ACF route runs at a voxelwise p above 0.001 (None otherwise).

    Cox et al. (2017) measured false-positive rates on null data: 3dttest++ -Clustsim stayed near
    the nominal 5 % at every p <= 0.01, the ACF model still above it in many cases unless
    p <= 0.001. The note names the alternative for this run's program.
    """
    if route != "acf" or pthr is None or float(pthr) <= ACF_RECOMMENDED_PTHR:
        return None
    alternative = (
        "<code>--clustsim randomise</code>"
        if program == "3dttest++"
        else "<code>--program 3dttest++ --clustsim randomise</code> where t-tests suffice as the "
        "group model"
    )
    return (
        f"With the ACF route at p = {float(pthr):g}, Cox et al. (2017) found family-wise "
        "false-positive rates above the nominal level in many cases; AFNI recommends p \u2264 "
        f"0.001 for it, or {alternative} (<code>3dttest++ -Clustsim</code> stayed near 5 % at "
        "every p \u2264 0.01; it needs at least 14 datasets)."
    )
