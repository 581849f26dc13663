"""Checks shared by the AFNI programs, the plan and the input validation.

Sidedness, neighbourhood (NN), probability lists and the mixed-ACF ranges are checked the same
way by 3dClustSim, 3dClusterize, p2dsetstat, the command line and the pre-flight validation;
this module is the one place that knows the rules. Each check raises :class:`ValueError` with
one line saying what is wrong (AFNI's wording where AFNI has one); the caller adds the file or
option and turns it into its own error class.

Standard library only, so that the plan and the command line can use it without loading numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: 3dClustSim's sidedness names, in its table order (also p2dsetstat's and 3dClusterize's)
SIDEDNESS = ("1sided", "2sided", "bisided")
#: 3dClustSim's neighbourhoods: faces (1), + edges (2), + corners (3)
NEIGHBOURHOODS = (1, 2, 3)


def check_sided(sided: str, choices: Sequence[str] = SIDEDNESS) -> str:
    """``sided`` when it is one of ``choices`` (default :data:`SIDEDNESS`), else ValueError."""
    if sided not in choices:
        raise ValueError(f"sidedness must be one of {', '.join(choices)}, not {sided!r}")
    return sided


def check_nn(nn: int) -> int:
    """``nn`` as an int when it is 1, 2 or 3 (:data:`NEIGHBOURHOODS`), else ValueError."""
    try:
        value = int(nn)
    except (TypeError, ValueError):
        value = None
    if value not in NEIGHBOURHOODS or value != nn:  # 1.5 and "1" are not NN values
        raise ValueError(f"nn must be 1, 2 or 3, not {nn!r}")
    return value


def check_probabilities(values: Sequence[float], what: str) -> tuple[float, ...]:
    """3dClustSim's ``-pthr``/``-athr`` rule: each value 0 < value <= 0.5, at least one.

    Returns the values as floats sorted in decreasing order (as AFNI stores them); ``what``
    names the option in the message.
    """
    out = []
    for v in values:
        try:
            x = float(v)
        except (TypeError, ValueError):
            x = float("nan")
        if not 0 < x <= 0.5:
            raise ValueError(f"value '{v}' after '{what}' is illegal! (need 0 < value <= 0.5)")
        out.append(x)
    if not out:
        raise ValueError(f"need at least one value after '{what}'")
    return tuple(sorted(out, reverse=True))


def check_acf(acf: Sequence[float]) -> tuple[float, float, float]:
    """Mixed-ACF parameters (a, b, c): three finite numbers, 0 <= a <= 1, b > 0, c > 0.

    The ranges are 3dClustSim's ``-acf`` checks (same wording); a subject's ``err_reml ACF``
    line must pass them too, or its smoothness would break the group mean.
    """
    if len(acf) != 3:
        raise ValueError(f"need 3 parameters (a b c), not {len(acf)}")
    try:
        a, b, c = (float(v) for v in acf)
    except (TypeError, ValueError) as err:
        raise ValueError(f"values {list(acf)} are not numbers") from err
    if not all(math.isfinite(v) for v in (a, b, c)):
        raise ValueError(f"values {a:g} {b:g} {c:g} are not all finite numbers")
    if not 0 <= a <= 1:
        raise ValueError(f"'a' value should be between 0 and 1 (got {a:g})")
    if not b > 0:
        raise ValueError(f"'b' value should be positive (got {b:g})")
    if not c > 0:
        raise ValueError(f"'c' value should be positive (got {c:g})")
    return a, b, c
