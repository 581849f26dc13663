"""p2dsetstat on a dataset: the statistic threshold of one of its sub-bricks for a p-value.

The file level of :mod:`.core`: reads the dataset, picks the sub-brick by index or label, and
turns the core's ``ValueError`` into the CLI's error classes naming the dataset.
"""

from __future__ import annotations

import os
from pathlib import Path

from afni_group import afni_io
from afni_group.errors import InputDataError, UsageError
from afni_group.programs.p2dsetstat.core import check_request, threshold_for_stat


def stat_threshold(dataset: str | Path, brick: int | str, pval: float, sided: str) -> float:
    """Statistic threshold for ``pval`` on sub-brick ``brick`` of ``dataset``.

    Parameters
    ----------
    dataset : str or Path
        The dataset, e.g. ``mema_results.nii.gz``.
    brick : int or str
        Sub-brick index, or its exact label (``chx:t``; the last match wins).
    pval, sided
        As :func:`.core.threshold_for_stat`.

    Returns
    -------
    float
        The float32 threshold as a Python float; :func:`.formats.afni_printed_threshold` gives
        the value a script passes on to 3dClusterize.

    Raises
    ------
    UsageError
        For p outside (0, 1) or an unknown sidedness.
    InputDataError
        If the sub-brick does not exist or is not a statistic.
    """
    where = f"{os.fspath(dataset)}[{brick}]"
    try:
        check_request(pval, sided)
    except ValueError as err:
        raise UsageError(f"{where}: {err}") from None
    dset = afni_io.read_dataset(dataset)
    index = dset.index_of(brick) if isinstance(brick, str) else int(brick)
    if not 0 <= index < dset.nvals:
        raise InputDataError(f"{where}: no such sub-brick ({dset.nvals} sub-bricks)")
    try:
        return threshold_for_stat(dset.stat_codes[index], dset.stat_params[index], pval, sided)
    except ValueError as err:
        raise InputDataError(f"{where} ('{dset.labels[index]}'): {err}") from None
