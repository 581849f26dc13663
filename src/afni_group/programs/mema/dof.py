"""3dMEMA's missing-data DOF re-mapping of the t bricks (spec 02-mema.md §7).

With ``-missing_data`` every t brick is mapped from the voxel's own DOF to the full DOF through
Student t probabilities, rounded the way R's ``pt``/``qt`` round them, with AFNI's sign slip
in the two-group DOF kept by default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import special

if TYPE_CHECKING:
    from afni_group.programs.mema.design import MemaDesign


def voxel_dof(
    design: MemaDesign, zero_counts: np.ndarray, *, correct_dof: bool = False
) -> np.ndarray:
    """Per-voxel DOF of 3dMEMA's ``-missing_data`` correction.

    Parameters
    ----------
    zero_counts : ndarray, shape (n_sets, V)
        Subjects with an exactly-zero beta in each set (or read from ``-missing_data`` files).
    correct_dof : bool
        False (default) reproduces AFNI's sign slip for two groups (z1 is *added*:
        n1 + n2 + z1 - z2 - 2 - nCov); True uses the intended n1 + n2 - z1 - z2 - 2 - nCov.
    """
    z = np.asarray(zero_counts, dtype=np.int64)
    if design.kind == "one":
        return design.n_per_set[0] - z[0] - 1 - design.n_cov
    if design.kind == "conditions":
        return design.n_per_set[0] - np.maximum(z[0], z[1]) - 1 - design.n_cov
    sign = -1 if correct_dof else 1
    return design.n_total + sign * z[0] - z[1] - 2 - design.n_cov


def t_cdf(t: np.ndarray, dof: float) -> np.ndarray:
    """Lower-tail Student t CDF, rounded the way R's ``pt`` rounds it.

    For t > 0, R returns ``(0.5 - tail) + 0.5``; that double rounding differs from ``1 - tail``
    by one ulp now and then, which moves re-mapped t values near 20-50 by ~1e-5 relative.
    """
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        t_sq = t * t
        central = dof > t_sq
        tail = np.where(
            central,
            special.betaincc(0.5, dof / 2.0, t_sq / (dof + t_sq)),
            special.betainc(dof / 2.0, 0.5, 1.0 / (1.0 + (t / dof) * t)),
        )
    tail = tail / 2.0
    return np.where(t > 0, (0.5 - tail) + 0.5, tail)


def t_quantile(p: np.ndarray, dof: float) -> np.ndarray:
    """Student t quantile of a lower-tail probability (R's ``qt``; ±Inf at p = 1 or 0)."""
    p = np.asarray(p, dtype=np.float64)
    upper = p > 0.5
    tail = np.where(upper, 1.0 - p, p)  # exact for p in [0.5, 1] (Sterbenz)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = special.betaincinv(dof / 2.0, 0.5, 2.0 * tail)
        t = np.sqrt(dof * (1.0 / x - 1.0))
    return np.where(upper, t, -t)


def remap_t(t: np.ndarray, dof: np.ndarray, full_dof: int) -> np.ndarray:
    """t' = Tinv_full(Tcdf_dof(t)) where dof != full; t where equal; 0 where dof < 1.

    Uses the lower-tail CDF as R's ``pt``/``qt`` do, so large positive t can become +Inf
    (kept as Inf, as 3dMEMA writes it) while large negative t stays finite.
    """
    t = np.asarray(t, dtype=np.float64)
    out = t.copy()
    dof = np.broadcast_to(dof, t.shape)
    out[dof < 1] = 0.0
    for df in np.unique(dof[(dof >= 1) & (dof != full_dof)]):
        sel = dof == df
        out[sel] = t_quantile(t_cdf(t[sel], float(df)), float(full_dof))
    return out
