"""afni-group: AFNI-style group analysis of afni_proc.py results as a BIDS-App.

The steps are also a Python library (:mod:`afni_group.api`), on arrays, with the values the
AFNI programs compute::

    import afni_group as ag

    maps = ag.mema([chx_betas], [chx_tstats], set_labels=["chx"], missing_data=True)
    mask = ag.group_mask(subject_masks, frac=1.0)
    tables = ag.clustsim(mask, (2.5, 2.5, 2.5), ag.mean_acf(blur_files))
    size = ag.cluster_size_threshold(tables, pthr=0.001, alpha=0.05, nn=1, sided="bisided")
    t = ag.p_to_stat(0.001, ag.STAT_TTEST, (maps.stat_params[1][0],), "bisided")
    found = ag.clusterize(maps.brick(1), maps.brick(0), maps.affine, thresholds=t,
                          mask=mask, min_nvox=size)

The names are loaded on first use, so ``import afni_group`` stays cheap for the command line.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: public name -> module that defines it
_EXPORTS = {
    "mema": "afni_group.api",
    "group_mask": "afni_group.api",
    "mean_acf": "afni_group.api",
    "clustsim": "afni_group.api",
    "ClustSimTables": "afni_group.api",
    "cluster_size_threshold": "afni_group.api",
    "p_to_stat": "afni_group.api",
    "clusterize": "afni_group.api",
    "ClusterResult": "afni_group.api",
    "ClusterRow": "afni_group.api",
    "LabelledClusterResult": "afni_group.api",
    "peak_labels": "afni_group.api",
    "AfniDataset": "afni_group.afni_io",
    "read_dataset": "afni_group.afni_io",
    "write_dataset": "afni_group.afni_io",
    "STAT_TTEST": "afni_group.afni_io",
    "STAT_FTEST": "afni_group.afni_io",
    "STAT_ZSCORE": "afni_group.afni_io",
    "STAT_CHISQ": "afni_group.afni_io",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'afni_group' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
