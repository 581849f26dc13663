"""What p2dsetstat prints, and the threshold value AFNI's scripts pass on from it.

With ``-quiet`` p2dsetstat prints ``%.6f`` of the float32 threshold with no newline
(:func:`format_stat_threshold`); a script passes that text to 3dClusterize, which parses it
back with ``atof``. :func:`afni_printed_threshold` is that round trip in one place: the native
engine thresholds with exactly the number AFNI's tutorial script gives 3dClusterize.
"""

from __future__ import annotations

import numpy as np


def format_stat_threshold(value: float) -> str:
    """The text p2dsetstat prints with ``-quiet``: ``%.6f`` of the float32 value, no newline."""
    return "%.6f" % float(np.float32(value))


def afni_printed_threshold(value: float) -> float:
    """The threshold value AFNI's scripts pass on from p2dsetstat to 3dClusterize.

    p2dsetstat prints ``%.6f`` of the float32 value (:func:`format_stat_threshold`), the shell
    passes that text, and 3dClusterize parses it as a float (``atof``; it then compares in
    float32). This returns the parsed value: 4.586894 for a computed 4.58689403...; the
    comparisons are with ``float32`` of it, never of the unrounded value. The text the script
    typed is :func:`printed_threshold_text` of the result.
    """
    return float(format_stat_threshold(value))


def printed_threshold_text(printed: float) -> str:
    """The text a script typed for :func:`afni_printed_threshold`'s value (p2dsetstat's output).

    ``%.6f`` of the double gives the printed six decimals back exactly; 3dClusterize echoes
    this text in the cluster map's label and the history.
    """
    return "%.6f" % printed


def format_pvalue(pval: float) -> str:
    """p as on the ``++ p-value`` line: ``%.8f``, or ``%e`` at or below 1e-6 (float32 p)."""
    p32 = float(np.float32(pval))
    return "%e" % p32 if p32 <= 1e-6 else "%.8f" % p32
