"""The analysis plan: one dataclass model of everything a run does.

Discovery plus the command-line options become an :class:`AnalysisPlan`; both engines consume it
and nothing else. The plan owns every output file name, so the native engine, the rendered AFNI
script and the report agree on them by construction.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from afni_group.programs.checks import NEIGHBOURHOODS, SIDEDNESS
from afni_group.programs.mema.budget import DEFAULT_MEM_LIMIT

DESIGNS = ("one", "groups", "conditions")

#: the group models (``--program``): 3dMEMA (the tutorial's) or 3dttest++
PROGRAMS = ("3dMEMA", "3dttest++")
#: how the cluster-size threshold is simulated (``--clustsim``): 3dClustSim from the mean ACF
#: (the tutorial's) or 3dttest++ -Clustsim on sign-randomised residuals (Cox et al. 2017)
CLUSTSIM_ROUTES = ("acf", "randomise")
#: 3dttest++ refuses -Clustsim with fewer datasets than this (all sets together)
RANDOMISE_MIN_DATASETS = 14
#: 3dttest++ keeps this many characters of a set name (``%.12s``) in its brick labels
TTEST_SET_NAME_MAX = 12

MEMA_FILE = "mema_results.nii.gz"
TTEST_FILE = "ttest_results.nii.gz"
#: the ``-covariates`` table a model with ``--covariates`` reads, in its analysis folder
COVARIATES_FILE = "covariates.txt"
MASK_FILE = "mask.nii.gz"
#: how many subject masks cover each voxel (3dmask_tool -count -frac 0), for the report
MASK_COUNT_FILE = "mask_count.nii.gz"
CLUSTSIM_PREFIX = "ClustSim"
MEMA_SCRIPT = "do_group_level_mema.tcsh"


def clustsim_table_prefix(route: str = "acf") -> str:
    """The prefix of the ClustSim tables: ``ClustSim`` (3dClustSim -prefix ClustSim) or
    ``ClustSim.CSimA`` (3dttest++ -prefix_clustsim ClustSim -Clustsim)."""
    return CLUSTSIM_PREFIX if route == "acf" else f"{CLUSTSIM_PREFIX}.CSimA"


def clustsim_outputs(route: str = "acf") -> list[str]:
    """Every ClustSim table file of a route: for ``acf`` 9 tables x (.1D, .niml), the encoded
    mask and the 3drefit fragment ``3dClustSim -both -prefix ClustSim`` writes; for
    ``randomise`` the 9 ``.1D`` tables and the fragment (3dttest++ deletes the ``.niml`` files
    once it has attached them to its output)."""
    # imported here: the plan (and the command line) must not load numpy to be built
    from afni_group.programs.clustsim.formats import clustsim_table_name

    prefix = clustsim_table_prefix(route)
    extensions = ("1D", "niml") if route == "acf" else ("1D",)
    tables = [
        clustsim_table_name(prefix, nn, sided, ext)
        for nn in NEIGHBOURHOODS
        for sided in SIDEDNESS
        for ext in extensions
    ]
    if route != "acf":
        return [*tables, f"{prefix}.cmd"]
    return [*tables, f"{CLUSTSIM_PREFIX}.mask", "3dClustSim.cmd"]


@dataclass(frozen=True)
class SubjectFiles:
    """The afni_proc.py results of one subject that the group analysis reads.

    A ``None`` path means the file was not found; :attr:`missing` lists those.
    """

    label: str
    results_dir: Path
    stats: Path | None
    mask: Path | None
    blur_est: Path | None
    brick_labels: tuple[str, ...] = ()
    source: str = "standard names"
    #: BIDS session label (``ses-`` removed) of a per-session results folder, else None
    session: str | None = None
    #: afni_proc.py's ``-subj_id`` (the ``$subj`` in its file names); default :attr:`unit_id`
    proc_id: str = ""
    #: the layout the results folder was found in (afni_group.layouts), e.g. ``sub-X.results``
    layout: str = ""

    @property
    def subject_id(self) -> str:
        return f"sub-{self.label}"

    @property
    def unit_id(self) -> str:
        """``sub-X`` or, for one session's results, ``sub-X_ses-Y`` (afni_proc's usual -subj_id)."""
        return self.subject_id + (f"_ses-{self.session}" if self.session else "")

    @property
    def unit_label(self) -> str:
        """The label of these results in lists: ``X``, or ``X_ses-Y`` for one session's."""
        return self.unit_id[4:]

    @property
    def missing(self) -> list[str]:
        """Kinds of required file that were not found."""
        names = {"stats": self.stats, "mask": self.mask, "blur_est": self.blur_est}
        return [kind for kind, path in names.items() if path is None]

    def expected(self, kind: str) -> Path:
        """The standard afni_proc path of a file kind, for messages about missing files."""
        sid = self.proc_id or self.unit_id
        standard = {
            "stats": f"stats.{sid}_REML+tlrc.HEAD",
            "mask": f"mask_epi_anat.{sid}+tlrc.HEAD",
            "blur_est": f"blur_est.{sid}.1D",
        }
        return self.results_dir / standard[kind]


@dataclass(frozen=True)
class SetSpec:
    """One 3dMEMA set: a label and the beta and t sub-brick labels of each subject's stats."""

    label: str
    beta: str
    tstat: str


@dataclass(frozen=True)
class Thresholds:
    """Voxelwise p, FWE alpha, sidedness and neighbourhood of the cluster inference."""

    pthr: float = 0.001
    alpha: float = 0.05
    sided: str = "bisided"
    nn: int = 1


@dataclass
class Analysis:
    """One 3dMEMA model (one or two sets) and its cluster inference, in its own folder.

    ``members`` lists, per set, the results (subject or subject-session) that set reads; empty
    means every set reads all the plan's subjects (the tutorial). ``session`` names the session
    of a per-session analysis.
    """

    name: str
    sets: list[SetSpec]
    design: str
    members: list[list[SubjectFiles]] = field(default_factory=list)
    session: str | None = None

    @property
    def dirname(self) -> str:
        return f"analysis-{self.name}"

    def set_labels(self) -> list[str]:
        return [s.label for s in self.sets]

    def difference_label(self) -> str | None:
        """``B-A``, 3dMEMA's label of the second set minus the first (two-set designs only)."""
        if len(self.sets) != 2:
            return None
        return f"{self.sets[1].label}-{self.sets[0].label}"

    def tested_labels(self) -> list[str]:
        """Labels whose ``:t`` brick is clustered.

        Each set's own t-brick (as the seed does) and, for two groups, their difference ``B-A``
        that 3dMEMA writes too; a paired (``conditions``) 3dMEMA writes only the difference
        ``S2-S1``, so that is what gets clustered there.
        """
        if self.design == "conditions":
            return [f"{self.sets[1].label}-{self.sets[0].label}"]
        labels = [s.label for s in self.sets]
        if self.design == "groups":
            labels.append(f"{self.sets[1].label}-{self.sets[0].label}")
        return labels


@dataclass
class AnalysisPlan:
    """Everything a run does: inputs, options, and the output file names.

    Attributes
    ----------
    subjects : list of SubjectFiles
        Subjects included (complete inputs), in sorted label order.
    dropped : list of (label, reason)
        Subjects left out (``--drop-incomplete``) and why.
    analyses : list of Analysis
        One per 3dMEMA model; each has its own output folder.
    """

    bids_dir: Path
    afni_dir: Path
    output_dir: Path
    work_dir: Path
    subjects: list[SubjectFiles]
    analyses: list[Analysis]
    dropped: list[tuple[str, str]] = field(default_factory=list)
    missing_data: int | None = 0
    mask_frac: float = 1.0
    thresholds: Thresholds = field(default_factory=Thresholds)
    clustsim_iter: int = 10000
    #: --clustsim-iter auto: batches of clustsim_iter until the threshold is stable
    clustsim_auto: bool = False
    seed: int | None = None
    hktest: bool = True
    correct_dof: bool = False
    covariates: dict[str, dict[str, float]] = field(default_factory=dict)
    n_cpus: int = 1
    #: native 3dMEMA's memory target in bytes (``--mem-limit``)
    mem_limit: int = DEFAULT_MEM_LIMIT
    #: the group model (``--program``, one of PROGRAMS)
    program: str = "3dMEMA"
    #: the cluster-size threshold's simulation (``--clustsim``, one of CLUSTSIM_ROUTES)
    clustsim_route: str = "acf"
    engine: str = "native"
    engine_reason: str = ""
    via_gen_group_command: bool = False
    selection_notes: list[str] = field(default_factory=list)
    inventory: list[SubjectFiles] = field(default_factory=list)
    #: what the pre-flight checks found (afni_group.validate.preflight), for params.json
    input_qc: dict = field(default_factory=dict)
    #: what the BIDS validator said about BIDS_DIR (afni_group.bids_validator), for params.json
    bids_validation: dict = field(default_factory=dict)
    #: the afni_proc results layout(s) discovery found, one line (afni_group.layouts)
    layout: str = ""

    # ---- file names shared by both engines -------------------------------------------------
    def analysis_dir(self, analysis: Analysis) -> Path:
        return self.output_dir / analysis.dirname

    @property
    def stats_file(self) -> str:
        """The group model's bucket in each analysis folder (3dMEMA's or 3dttest++'s)."""
        return MEMA_FILE if self.program == "3dMEMA" else TTEST_FILE

    @property
    def ttest_toz(self) -> bool:
        """3dttest++ writes z instead of t: ``-Clustsim`` turns on ``-toz``."""
        return self.program == "3dttest++" and self.clustsim_route == "randomise"

    def stat_bricks(self, label: str, analysis: Analysis) -> tuple[str, str]:
        """``(statistic, effect)`` sub-brick labels of a tested label in :attr:`stats_file`.

        3dMEMA: ``label:t`` and ``label:b``. 3dttest++: ``NAME_Tstat`` (``NAME_Zscr`` with
        ``-toz``) and ``NAME_mean``, where NAME is the label with each set name cut to the 12
        characters 3dttest++ keeps (``left_vs_right_chx`` -> ``left_vs_righ``); two-set designs
        give it the second set as ``-setA`` so its difference is ``B-A`` like 3dMEMA's
        (:meth:`Analysis.tested_labels`).
        """
        if self.program == "3dMEMA":
            return f"{label}:t", f"{label}:b"
        name = ttest_brick_name(label, analysis)
        return f"{name}_{'Zscr' if self.ttest_toz else 'Tstat'}", f"{name}_mean"

    def ttest_sets(self, analysis: Analysis) -> list[tuple[SetSpec, list[SubjectFiles]]]:
        """The sets and their results in 3dttest++'s order, ``-setA`` first: the second set of
        a two-set design, so that 3dttest++'s A-B is 3dMEMA's B-A, with its label."""
        sets = [(s, self.set_units(analysis, k)) for k, s in enumerate(analysis.sets)]
        return sets[::-1]

    def ttest_covariates(self, analysis: Analysis) -> list[tuple[str, list[float]]]:
        """``(dataset label, values in sorted column order)`` of each result of ``analysis``:
        the rows of its 3dttest++ ``-covariates`` table (labels as the LONG-form sets give)."""
        columns = sorted(self.covariates)
        return [
            (unit.unit_id, [float(self.covariates[c][unit.label]) for c in columns])
            for unit in self.analysis_units(analysis)
        ]

    @property
    def clustsim_table(self) -> str:
        from afni_group.programs.clustsim.formats import clustsim_table_name

        t = self.thresholds
        return clustsim_table_name(clustsim_table_prefix(self.clustsim_route), t.nn, t.sided, "1D")

    def cluster_prefix(self) -> str:
        return f"clust_{self.thresholds.sided}"

    def cluster_files(self, set_label: str) -> dict[str, str]:
        """Names (relative to the analysis folder) of the 3dClusterize outputs of one set."""
        pre = self.cluster_prefix()
        return {
            "map": f"{pre}_map_{set_label}.nii.gz",
            "ee": f"{pre}_EE_{set_label}.nii.gz",
            "report": f"{pre}_report_{set_label}.txt",
            "clusters_tsv": f"{pre}_clusters_{set_label}.tsv",
        }

    def brick_specs(
        self, kind: str, set_spec: SetSpec, units: list[SubjectFiles] | None = None
    ) -> list[str]:
        """``stats+tlrc.HEAD[label]`` selectors of every subject (or of ``units``) for a set
        (kind: beta/tstat)."""
        label = getattr(set_spec, kind)
        return [f"{s.stats}[{label}]" for s in (self.subjects if units is None else units)]

    def set_units(self, analysis: Analysis, index: int) -> list[SubjectFiles]:
        """The results set ``index`` of ``analysis`` reads (all subjects unless it has members)."""
        return analysis.members[index] if analysis.members else self.subjects

    def analysis_units(self, analysis: Analysis) -> list[SubjectFiles]:
        """Every result an analysis reads, once each: its group mask and ACF come from these."""
        seen: dict[str, SubjectFiles] = {}
        for index in range(len(analysis.sets)):
            for unit in self.set_units(analysis, index):
                seen.setdefault(unit.unit_id, unit)
        return list(seen.values())

    def shared_key(self, analysis: Analysis) -> tuple[str, ...]:
        """Analyses with the same key have the same group mask, ACF and 3dClustSim tables."""
        return tuple(sorted(u.unit_id for u in self.analysis_units(analysis)))

    @property
    def mask_inputs(self) -> list[Path]:
        return [s.mask for s in self.subjects if s.mask is not None]

    @property
    def blur_files(self) -> list[Path]:
        return [s.blur_est for s in self.subjects if s.blur_est is not None]

    @property
    def subject_labels(self) -> list[str]:
        """Labels of the included results: ``X``, or ``X_ses-Y`` for per-session results."""
        return [s.unit_label for s in self.subjects]

    def to_dict(self) -> dict:
        """JSON-ready summary (printed by ``--dry-run``, stored in params.json)."""
        return {
            "bids_dir": str(self.bids_dir),
            "afni_dir": str(self.afni_dir),
            "output_dir": str(self.output_dir),
            "engine": self.engine,
            "engine_reason": self.engine_reason,
            "program": self.program,
            "clustsim_route": self.clustsim_route,
            "subjects": self.subject_labels,
            "dropped": [{"subject": s, "reason": r} for s, r in self.dropped],
            "analyses": [
                {
                    "name": a.name,
                    "dir": a.dirname,
                    "design": a.design,
                    "sets": [asdict(s) for s in a.sets],
                    **self.members_summary(a),
                }
                for a in self.analyses
            ],
            "missing_data": self.missing_data,
            "mask_frac": self.mask_frac,
            "thresholds": asdict(self.thresholds),
            "clustsim_iter": self.clustsim_iter,
            "clustsim_auto": self.clustsim_auto,
            "seed": self.seed,
            "hktest": self.hktest,
            "correct_dof": self.correct_dof,
            "covariates": sorted(self.covariates),
            "n_cpus": self.n_cpus,
            "selection_notes": self.selection_notes,
            "layout": self.layout,
        }

    def members_summary(self, analysis: Analysis) -> dict:
        """``session`` and the per-set subject lists of an analysis with its own members."""
        out: dict = {}
        if analysis.session:
            out["session"] = analysis.session
        if analysis.members:
            out["set_subjects"] = {
                s.label: [u.unit_label for u in self.set_units(analysis, k)]
                for k, s in enumerate(analysis.sets)
            }
        return out

    def describe(self) -> str:
        """Human-readable plan for the terminal."""
        t = self.thresholds
        lines = [
            f"afni-group plan ({self.engine} engine{': ' + self.engine_reason if self.engine_reason else ''})",
            f"  subjects ({len(self.subjects)}): {' '.join(self.subject_labels)}",
        ]
        for label, reason in self.dropped:
            lines.append(f"  dropped sub-{label}: {reason}")
        for note in self.selection_notes:
            lines.append(f"  note: {note}")
        for a in self.analyses:
            sets = ", ".join(
                # 3dttest++ reads only the effect estimates; 3dMEMA also their t statistics
                f"{s.label}=[{s.beta}]"
                + (f" / [{s.tstat}]" if self.program == "3dMEMA" else "")
                + (f" (n={len(self.set_units(a, k))})" if a.members else "")
                for k, s in enumerate(a.sets)
            )
            lines.append(f"  {a.dirname}: {self.program} design={a.design}: {sets}")
        simulation = "3dClustSim -both" if self.clustsim_route == "acf" else "3dttest++ -Clustsim"
        lines.append(
            f"  mask -frac {self.mask_frac}; {simulation} -iter {self.clustsim_iter}"
            f"{' (auto: more until the threshold is stable)' if self.clustsim_auto else ''}"
            f"{'' if self.seed is None else f' -seed {self.seed}'}; "
            f"NN{t.nn} {t.sided} p={t.pthr} alpha={t.alpha}"
            + (f"; missing_data={self.missing_data}" if self.program == "3dMEMA" else "")
        )
        return "\n".join(lines)


def ttest_brick_name(label: str, analysis: Analysis) -> str:
    """3dttest++'s name of a tested label: set names cut to :data:`TTEST_SET_NAME_MAX`."""
    if label == analysis.difference_label():
        second, first = (s.label[:TTEST_SET_NAME_MAX] for s in analysis.sets[::-1])
        return f"{second}-{first}"
    return label[:TTEST_SET_NAME_MAX]


_SAFE_NAME = re.compile(r"[^A-Za-z0-9_.+-]")


def safe_name(label: str) -> str:
    """A folder- and shell-safe version of a label (for auto-named analyses)."""
    return _SAFE_NAME.sub("-", label).strip("-") or "analysis"
