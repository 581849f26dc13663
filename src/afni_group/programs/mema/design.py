"""3dMEMA's model: what is fitted (design matrix, DOF, output layout) and covariate centering.

Spec 02-mema.md §2 and §6.7: analysis types 1 (one sample), 2 (two groups, ``-groups``) and 3
(paired, ``-conditions``), with centered covariates appended to the design matrix.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DESIGNS = ("one", "groups", "conditions")


@dataclass(frozen=True)
class MemaDesign:
    """What 3dMEMA fits and how its output is laid out.

    Parameters
    ----------
    kind : {"one", "groups", "conditions"}
        3dMEMA analysis type 1 (one sample), 2 (two groups, common τ², ``-groups A B``) or
        3 (paired, ``-conditions``: contrast second set minus first).
    n_per_set : tuple of int
        Subjects in each ``-set`` (1 set for "one", 2 otherwise).
    test_names : tuple of str
        "one": (set name,); "groups": the two ``-groups`` names (A, B);
        "conditions": (set1 name, set2 name). Labels use ``B-A`` / ``S2-S1``.
    covariates : ndarray, shape (n_rows, n_cov), optional
        Centered covariate columns, rows in model order (set 1 subjects, then set 2 subjects for
        "groups"; one row per subject for "one"/"conditions").
    covariate_names : tuple of str
    """

    kind: str
    n_per_set: tuple[int, ...]
    test_names: tuple[str, ...]
    covariates: np.ndarray | None = None
    covariate_names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in DESIGNS:
            raise ValueError(f"design must be one of {DESIGNS}, got {self.kind!r}")
        n_sets = 1 if self.kind == "one" else 2
        if len(self.n_per_set) != n_sets:
            raise ValueError(
                f"design {self.kind!r} needs {n_sets} set(s), got {len(self.n_per_set)}"
            )
        if len(self.test_names) != n_sets:
            raise ValueError(f"design {self.kind!r} needs {n_sets} test name(s)")
        if self.kind == "conditions" and self.n_per_set[0] != self.n_per_set[1]:
            raise ValueError(
                "paired design (-conditions) needs the same subjects in both sets, got "
                f"{self.n_per_set[0]} and {self.n_per_set[1]} subjects"
            )
        cov = self.covariates
        if cov is not None:
            cov = np.asarray(cov, dtype=np.float64)
            if (
                cov.ndim != 2
                or cov.shape[0] != self.n_rows
                or cov.shape[1] != len(self.covariate_names)
            ):
                raise ValueError(
                    f"covariates must have shape ({self.n_rows}, {len(self.covariate_names)}), "
                    f"got {cov.shape}"
                )
            if not np.all(np.isfinite(cov)):
                raise ValueError("covariates contain non-finite values")
            object.__setattr__(self, "covariates", cov)
        elif self.covariate_names:
            raise ValueError("covariate_names given without covariates")

    @property
    def n_groups(self) -> int:
        """Number of ``-groups`` names (nGrp)."""
        return 2 if self.kind == "groups" else 1

    @property
    def n_cov(self) -> int:
        return len(self.covariate_names)

    @property
    def n_rows(self) -> int:
        """Rows of the model: all subjects of both sets for "groups", else one set's subjects."""
        return sum(self.n_per_set) if self.kind == "groups" else self.n_per_set[0]

    @property
    def n_total(self) -> int:
        """Sum of subjects over the sets (what the full DOF counts)."""
        return sum(self.n_per_set)

    @property
    def full_dof(self) -> int:
        """nDF = total subjects - groups - covariates (types 1, 2); N - 1 - nCov for paired."""
        if self.kind == "conditions":
            return self.n_per_set[0] - 1 - self.n_cov
        return self.n_total - self.n_groups - self.n_cov

    @property
    def min_nonzero(self) -> int:
        """Minimum non-zero betas for a voxel to be analysed with ``-missing_data``."""
        return 1 + self.n_groups + self.n_cov

    def matrix(self) -> np.ndarray:
        """Design matrix X (n_rows, p): intercept, group dummy (type 2), covariates."""
        cols = [np.ones(self.n_rows)]
        if self.kind == "groups":
            cols.append(np.r_[np.zeros(self.n_per_set[0]), np.ones(self.n_per_set[1])])
        x = np.column_stack(cols)
        if self.covariates is not None:
            x = np.column_stack([x, self.covariates])
        return x

    @property
    def n_bricks(self) -> int:
        """nBrick0 = 4·nGrp + 2·nCov + 1."""
        return 4 * self.n_groups + 2 * self.n_cov + 1

    def labels(self) -> list[str]:
        """Sub-brick labels in output order (current AFNI, with ``I2``)."""
        if self.kind == "groups":
            a, b = self.test_names
            labels = [f"{a}:b", f"{a}:t", f"{b}:b", f"{b}:t", f"{b}-{a}:b", f"{b}-{a}:t"]
        elif self.kind == "conditions":
            s1, s2 = self.test_names
            labels = [f"{s2}-{s1}:b", f"{s2}-{s1}:t"]
        else:
            labels = [f"{self.test_names[0]}:b", f"{self.test_names[0]}:t"]
        for name in self.covariate_names:
            labels += [f"{name}:b", f"{name}:t"]
        return labels + ["I2", "tau", "QE:Chisq"]

    def t_brick_indices(self) -> list[int]:
        """0-based indices of the ``:t`` bricks (all get fitt(nDF) and the DOF re-mapping)."""
        n_t = (3 if self.kind == "groups" else 1) + self.n_cov
        return [2 * k + 1 for k in range(n_t)]

    def stat_aux(self) -> tuple[list[int], list[tuple[float, ...]]]:
        """Per-brick AFNI stat codes and parameters: t bricks fitt(nDF), QE fict(nDF)."""
        codes = [0] * self.n_bricks
        params: list[tuple[float, ...]] = [()] * self.n_bricks
        for i in self.t_brick_indices():
            codes[i], params[i] = 3, (float(self.full_dof),)
        codes[-1], params[-1] = 6, (float(self.full_dof),)
        return codes, params


def center_covariates(
    values: np.ndarray, row_subjects: Sequence[str], center: str | Sequence[float] = "mean"
) -> np.ndarray:
    """Center covariate columns as 3dMEMA does (``-covariates_center``).

    Parameters
    ----------
    values : ndarray, shape (n_rows, n_cov)
        Covariate value of the subject on each model row.
    row_subjects : sequence of str
        Subject label of each row; a subject appearing on several rows (both sets) counts once
        in the mean, as 3dMEMA matches the table rows to the unique subject labels.
    center : "mean" or sequence of float
        Subtract each column's mean over unique subjects, or the given values.
    """
    values = np.asarray(values, dtype=np.float64)
    if isinstance(center, str):
        if center != "mean":
            raise ValueError(f"covariate center must be 'mean' or numbers, got {center!r}")
        _, first = np.unique(np.asarray(row_subjects), return_index=True)
        centers = values[np.sort(first)].mean(axis=0)
    else:
        centers = np.asarray(center, dtype=np.float64)
        if centers.shape != (values.shape[1],):
            raise ValueError(f"need {values.shape[1]} covariate centers, got {centers.size}")
    return values - centers


@dataclass
class MemaResult:
    """3dMEMA output over voxels.

    Attributes
    ----------
    bricks : ndarray, shape (n_voxels, n_bricks), float32
        Output sub-bricks after DOF re-mapping, NaN -> 0 and the float32 cast.
    labels, stat_codes, stat_params
        Per-brick label and AFNI statistic code/parameters.
    full_dof : int
    n_analyzed : int
        Voxels that entered the fit (passed the non-zero count rule and the mask).
    n_reml : int
        Voxels whose final τ² came from REML.
    """

    bricks: np.ndarray
    labels: list[str]
    stat_codes: list[int]
    stat_params: list[tuple[float, ...]]
    full_dof: int
    n_analyzed: int = 0
    n_reml: int = 0
