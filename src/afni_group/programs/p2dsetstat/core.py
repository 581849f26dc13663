"""Voxelwise statistic threshold for a p-value, as ``p2dsetstat -pval P -bisided`` (spec 06 b).

The value level: a sub-brick's AFNI stat code and parameters (``Ttest(dof)``, ``Zscore()``,
``Ftest(n,d)`` ...) and a p-value give the threshold through
:func:`afni_group.statdist.pval_to_stat`. Bad values raise ``ValueError``. Reading the dataset is
:mod:`.files`, the printed text :mod:`.formats`, ``afni-native p2dsetstat``'s options
:mod:`afni_group.programs.cli.p2dsetstat`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from afni_group.programs.checks import check_sided
from afni_group.statdist import pval_to_stat, stat_symbol


def check_request(pval: float, sided: str) -> None:
    """``ValueError`` unless ``sided`` is a sidedness and ``0 < float32(pval) < 1``."""
    check_sided(sided)
    if not (0.0 < float(np.float32(pval)) < 1.0):
        raise ValueError(f"p-value {pval} must be strictly between 0 and 1")


def threshold_for_stat(code: int, params: Sequence[float], pval: float, sided: str) -> float:
    """Statistic threshold for ``pval`` on a sub-brick with stat ``code`` and ``params``.

    Parameters
    ----------
    code : int
        AFNI stat code of the sub-brick (3 = t, 4 = F, 5 = z ...); 0 (not a statistic) is an
        error.
    params : sequence of float
        Its parameters (the DOF of a t).
    pval : float
        Voxelwise p-value, 0 < p < 1.
    sided : {"1sided", "2sided", "bisided"}
        With ``2sided``/``bisided`` a t, z or correlation threshold uses p as the two-tailed
        probability; ``1sided`` doubles p first. F, chi² ... are upper-tail and never doubled.

    Returns
    -------
    float
        The float32 threshold as a Python float (``3.792131...`` for Ttest(22) at p = 0.001).

    Raises
    ------
    ValueError
        For a bad p or sidedness, a brick that is not a statistic, or a p the statistic cannot
        reach (AFNI would print ``-1.000000``).
    """
    check_request(pval, sided)
    if int(code) <= 0:
        raise ValueError(
            "it has no statistic code (it is not a t, z, F... brick); select a statistic sub-brick"
        )
    params = tuple(float(v) for v in params)
    value = pval_to_stat(pval, int(code), params, sided)
    if value < 0:
        raise ValueError(f"cannot convert p = {pval} to a {stat_symbol(code, params)} threshold")
    return value
