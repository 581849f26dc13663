"""The ACF lines of afni_proc.py's ``blur_est.$subj.1D`` and the tutorial's ``-acf`` text.

A blur estimate line is ``a b c d   # SOURCE ACF blur estimates`` (3dFWHMx's four ACF numbers,
``%g``); the group analysis reads the ``err_reml`` ones (:data:`REML_ACF_TAG`). The mean handed
to 3dClustSim is printed by awk (:func:`format_acf`).
"""

from __future__ import annotations

from collections.abc import Sequence

from afni_group.errors import InputDataError

#: Text that marks the REML ACF line of afni_proc's blur_est.$subj.1D.
REML_ACF_TAG = "err_reml ACF"


def parse_acf_line(line: str, *, source: str = "<line>") -> tuple[float, float, float]:
    """First three numbers of one ``... # err_reml ACF blur estimates`` line.

    Raises
    ------
    InputDataError
        Fewer than three tokens, or a token that is not a number (``source`` names the place).
    """
    tokens = line.split("#", 1)[0].split()
    if len(tokens) < 3:
        raise InputDataError(
            f"{source}: expected 3 ACF numbers before '#' in {line.strip()!r}; "
            "re-run afni_proc.py's blur estimation"
        )
    try:
        a, b, c = (float(t) for t in tokens[:3])
    except ValueError as err:
        raise InputDataError(f"{source}: malformed ACF number in {line.strip()!r} ({err})") from err
    return a, b, c


def format_acf_line(values: Sequence[float], source: str = "err_reml") -> str:
    """One blur estimate line as afni_proc.py writes it (no newline): the numbers ``%g`` with
    single spaces, three spaces, then ``# SOURCE ACF blur estimates``."""
    return " ".join(f"{v:g}" for v in values) + f"   # {source} ACF blur estimates"


def format_acf(acf: Sequence[float]) -> list[str]:
    """The three strings awk prints (``%.6g``) and the tutorial passes to ``3dClustSim -acf``."""
    out = []
    for v in acf:
        v = float(v)
        # awk prints integral values as integers, everything else with OFMT "%.6g"
        out.append("%d" % v if v == int(v) and abs(v) < 1e16 else "%.6g" % v)
    return out
