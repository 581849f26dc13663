"""Voxelwise statistic threshold for a p-value, as ``p2dsetstat -quiet -pval P -bisided -inset D``.

Spec 06 (b). The threshold comes from the selected sub-brick's AFNI stat code and parameters
(``Ttest(dof)``, ``Zscore()``, ``Ftest(n,d)`` ...) through :func:`afni_group.statdist.pval_to_stat`.
With ``-quiet`` AFNI prints ``%.6f`` of the float32 value with no newline; that text is what the
tutorial passes on to 3dClusterize, so :func:`format_stat_threshold` is the value to use there.
"""

from __future__ import annotations

import numpy as np

from afni_group import afni_io
from afni_group.errors import EXIT_USAGE, InputDataError, UsageError
from afni_group.statdist import SIDEDNESS, pval_to_stat, stat_symbol

EXIT_AFNI_FATAL = EXIT_USAGE  # AFNI exits 1; afni-native uses BEP027's codes (64/65/66)


def format_stat_threshold(value: float) -> str:
    """The text p2dsetstat prints with ``-quiet``: ``%.6f`` of the float32 value, no newline."""
    return "%.6f" % float(np.float32(value))


def _format_pvalue(pval: float) -> str:
    """p as on the ``++ p-value`` line: ``%.8f``, or ``%e`` at or below 1e-6 (float32 p)."""
    p32 = float(np.float32(pval))
    return "%e" % p32 if p32 <= 1e-6 else "%.8f" % p32


def _select_stat_brick(dset_spec: str) -> tuple[str, int, tuple[float, ...]]:
    """Open ``dset[sel]`` and return (label, stat code, params) of its single sub-brick."""
    dset = afni_io.read_dataset(dset_spec)
    if dset.nvals != 1:
        raise InputDataError(
            f"{dset_spec}: p2dsetstat needs exactly one sub-brick but the selection has "
            f"{dset.nvals}; add a selector such as '[chx:t]' or '[3]'"
        )
    code = int(dset.stat_codes[0]) if dset.stat_codes else 0
    if code <= 0:
        raise InputDataError(
            f"{dset_spec}: sub-brick '{dset.labels[0]}' has no statistic code (it is not a t, z, "
            "F... brick); select a statistic sub-brick"
        )
    params = tuple(float(v) for v in dset.stat_params[0]) if dset.stat_params else ()
    return dset.labels[0], code, params


def stat_threshold(dset_spec: str, pval: float, sided: str) -> float:
    """Statistic threshold for ``pval`` on the sub-brick ``dset_spec`` (e.g. ``'mema.nii.gz[chx:t]'``).

    Parameters
    ----------
    dset_spec : str
        Dataset path with a sub-brick selector that picks exactly one statistic sub-brick.
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
    UsageError
        For p outside (0, 1) or an unknown sidedness (AFNI would print ``-1.000000``).
    InputDataError
        If the selection is not exactly one statistic sub-brick.
    """
    if sided not in SIDEDNESS:
        raise UsageError(f"sidedness must be one of {', '.join(SIDEDNESS)}, not '{sided}'")
    if not (0.0 < float(np.float32(pval)) < 1.0):
        raise UsageError(f"p-value {pval} for {dset_spec} must be strictly between 0 and 1")
    _, code, params = _select_stat_brick(dset_spec)
    value = pval_to_stat(pval, code, params, sided)
    if value < 0:
        raise InputDataError(
            f"{dset_spec}: cannot convert p = {pval} to a {stat_symbol(code, params)} threshold"
        )
    return value
