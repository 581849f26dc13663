"""3dClusterize's options as values: thresholds, cluster size, and the label that echoes them.

``afni-native 3dClusterize`` (:mod:`afni_group.programs.cli.clusterize`) parses AFNI's option
text (``-bisided -3 3``, ``p=0.001``, ``-clust_nvox 34``) into :class:`Thresholds` and numbers;
:func:`.files.run_clusterize` takes those values. Here they are checked (``UsageError`` in AFNI's
wording), turned into the float32 thresholds and the report's ``Threshold value(s)`` text
(:func:`resolve_thresholds`), and echoed as typed in the cluster map's label
(:func:`option_label`, from :class:`OptionWords`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from afni_group.errors import UsageError
from afni_group.programs.checks import check_nn, check_sided
from afni_group.programs.clusterize.core import _SIDED_MODES, _TAIL_WORDS
from afni_group.statdist import pval_to_stat, stat_nsides


@dataclass(frozen=True)
class Thresholds:
    """3dClusterize's thresholding option as values (``-bisided L R``, ``-1sided TAIL T``, ``p=P``).

    Attributes
    ----------
    sided : {"bisided", "2sided", "1sided", "within_range"}
        ``bisided``: the tails are clustered separately; ``2sided``: together.
    values : tuple of float
        Statistic thresholds (left, right), for ``within_range`` (low, high), for ``1sided`` one
        value; empty with ``pval``. Comparisons are inclusive and in float32. The native engine
        passes :func:`afni_group.programs.p2dsetstat.formats.afni_printed_threshold`: AFNI
        thresholds at ``float32(4.586894)`` (p2dsetstat's printed text), not the unrounded value.
    pval : float, optional
        ``p=P`` instead of ``values``: converted with the threshold brick's stat code (07 §3.2).
    tail : {"RIGHT_TAIL", "RIGHT", "LEFT_TAIL", "LEFT"}
        Tail of a ``1sided`` test.
    """

    sided: str = "bisided"
    values: tuple[float, ...] = ()
    pval: float | None = None
    tail: str = "RIGHT_TAIL"

    def words(self) -> tuple[str, ...]:
        """The option's arguments with the values as Python prints them (the default echo)."""
        given = (f"p={arg_text(self.pval)}",) if self.pval is not None else self.values
        words = tuple(arg_text(v) for v in given)
        return (str(self.tail), *words) if self.sided == "1sided" else words


@dataclass(frozen=True)
class OptionWords:
    """Option arguments as typed, which 3dClusterize echoes in the map's label and history.

    AFNI echoes its command line, so ``-bisided -3 3`` gives the label ``bisided,-3,3,...``:
    ``afni-native 3dClusterize`` passes the words it was given, the native engine p2dsetstat's
    text (as the tutorial's script types it). ``None`` fields: the values as Python prints them.

    Attributes
    ----------
    thresholds : tuple of str, optional
        The sidedness option's arguments, the tail word first for ``1sided``:
        ``("-4.586894", "4.586894")``, ``("RIGHT_TAIL", "p=0.01")``.
    size : str, optional
        The argument of ``-clust_nvox``/``-clust_vol``.
    """

    thresholds: tuple[str, ...] | None = None
    size: str | None = None


def arg_text(value: str | float | int) -> str:
    """An option argument as it would be typed (strings verbatim, numbers as Python prints them)."""
    return value if isinstance(value, str) else str(value)


@dataclass
class ResolvedThresholds:
    """Numeric float32 thresholds and the report's ``Threshold value(s)`` text."""

    low: np.float32
    high: np.float32
    text: str


def check_options(thresholds: Thresholds, nn: int) -> str:
    """Sidedness, tail, value/p and NN checks before anything is read; returns the tail key."""
    try:
        check_sided(thresholds.sided, _SIDED_MODES)
    except ValueError as err:
        raise UsageError(str(err)) from None
    tail = thresholds.tail
    tail_key = _TAIL_WORDS.get(str(tail).upper() if tail else "")
    if tail_key is None:
        raise UsageError(f"Illegal tail '{tail}' after '-1sided': need 'RIGHT_TAIL' or 'LEFT_TAIL'")
    if (not thresholds.values) == (thresholds.pval is None):
        raise UsageError("give either threshold values or pval (p=P), not both or neither")
    try:
        check_nn(nn)
    except ValueError as err:
        raise UsageError(f"-NN: {err}") from None
    return tail_key


def min_cluster_size(
    clust_nvox: float | None, clust_vol: float | None
) -> tuple[str | None, float | None, int]:
    """(option name, value, minimum voxels) of ``-clust_nvox``/``-clust_vol`` (a voxel count
    either way: AFNI quirk); (None, None, 0) without either."""
    if clust_nvox is not None and clust_vol is not None:
        raise UsageError("give -clust_nvox or -clust_vol, not both")
    if clust_nvox is None and clust_vol is None:
        return None, None, 0
    option = "clust_nvox" if clust_nvox is not None else "clust_vol"
    value = clust_nvox if clust_nvox is not None else clust_vol
    if not float(value) > 0:
        raise UsageError(
            f"Need the volume threshold to be >=0 (not {float(value):f}); "
            f"-{option} must be a positive number of voxels"
        )
    return option, value, int(float(value))


def _p_thresholds(thresholds: Thresholds, tail_key: str, code: int, params) -> ResolvedThresholds:
    """``p=P``: the statistic thresholds from the brick's stat code (07 §3.2)."""
    sided, p = thresholds.sided, float(thresholds.pval)
    if stat_nsides(code) == 0:
        raise UsageError(
            "Thresholding volume does *not* appear to be a stat so you can't use the "
            "'p=..' internal conversion to stat"
        )
    if not 0.0 <= p <= (0.5 if sided == "1sided" else 1.0):
        raise UsageError(f"Non-valid p-value ({p:f}) entered!")
    p32 = float(np.float32(p))
    if sided == "1sided":
        value = np.float32(pval_to_stat(p, code, params, "1sided"))
        value = -value if tail_key == "LEFT" else value
        side = "right" if tail_key == "RIGHT" else "left"
        return ResolvedThresholds(value, value, f"{side}-tail p={p32:f} -> thr={float(value):f}")
    right = np.float32(pval_to_stat(p, code, params, "2sided"))
    return ResolvedThresholds(
        -right,
        right,
        f"left-tail p={p32:f} -> thr={float(-right):f};  "
        f"right-tail p={p32:f} -> thr={float(right):f}",
    )


def resolve_thresholds(
    thresholds: Thresholds, tail_key: str, code: int, params: tuple[float, ...]
) -> ResolvedThresholds:
    """Numeric thresholds and the report text; the Glen rule and value counts checked."""
    sided, values = thresholds.sided, thresholds.values
    if sided == "1sided" and tail_key == "LEFT" and stat_nsides(code) == 1:
        raise UsageError(
            "The Glen Rule applies here: can't run a left-sided test on this stat, as it only "
            "has one (positive) side"
        )
    if thresholds.pval is not None:
        return _p_thresholds(thresholds, tail_key, code, params)
    if sided == "1sided":
        if len(values) != 1:
            raise UsageError("-1sided takes one threshold value")
        value = np.float32(values[0])
        side = "right" if tail_key == "RIGHT" else "left"
        return ResolvedThresholds(value, value, f"{side}-tail thr={float(value):f}")
    if len(values) != 2:
        raise UsageError(f"-{sided} takes two threshold values (left, right) or p=P")
    low, high = np.float32(values[0]), np.float32(values[1])
    return ResolvedThresholds(
        low, high, f"left-tail thr={float(low):f};  right-tail thr={float(high):f}"
    )


def option_label(
    thresholds: Thresholds, words: OptionWords, size_option: str | None, size: float | None, nn: int
) -> str:
    """The cluster map's brick label: the options as typed, e.g.
    ``bisided,-4.586894,4.586894,clust_nvox,34,NN1`` (``p=`` with two sides: ``-bisided,p=..``)."""
    typed = words.thresholds if words.thresholds is not None else thresholds.words()
    quirk = "-" if thresholds.pval is not None and thresholds.sided != "1sided" else ""
    label = f"{quirk}{thresholds.sided},{','.join(typed)},"
    if size_option is not None:
        label += f"{size_option},{words.size if words.size is not None else arg_text(size)},"
    return f"{label}NN{nn}"
