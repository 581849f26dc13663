"""Host paths of a run inside a container, for the outputs' provenance.

In a container the inputs are seen at ``/data``, ``/out``, ``/work``...; those names say nothing
once the job is over. The job script of ``--write-sbatch`` hands the host side of every bind to
the container in ``AFNI_GROUP_HOST_BINDS`` (Apptainer's ``-B`` syntax: ``HOST:CONTAINER[:ro]``,
comma-separated), and this module maps the plan's paths back to host paths.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import PurePosixPath

HOST_BINDS_VARIABLE = "AFNI_GROUP_HOST_BINDS"


def host_binds(environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The ``(host, container)`` pairs of ``AFNI_GROUP_HOST_BINDS``; empty outside a job."""
    text = (os.environ if environ is None else environ).get(HOST_BINDS_VARIABLE, "")
    pairs = []
    for spec in filter(None, text.split(",")):
        parts = spec.split(":")
        if len(parts) >= 2 and parts[0].startswith("/") and parts[1].startswith("/"):
            pairs.append((parts[0], parts[1]))
    return pairs


def to_host(path: os.PathLike | str, binds: list[tuple[str, str]]) -> str | None:
    """The host path of a container path (the deepest bind wins); None if under no bind."""
    target = PurePosixPath(path)
    best: tuple[str, str] | None = None
    for host, container in binds:
        inside = PurePosixPath(container)
        if target == inside or inside in target.parents:
            if best is None or len(inside.parts) > len(PurePosixPath(best[1]).parts):
                best = (host, container)
    if best is None:
        return None
    rel = target.relative_to(best[1])
    return str(PurePosixPath(best[0]) / rel) if rel.parts else best[0]


def host_paths(named: Mapping[str, os.PathLike | str], environ=None) -> dict[str, dict]:
    """``{name: {"container": path, "host": host_path}}`` for the paths under a bind.

    Empty when the run is not in a job from ``--write-sbatch`` (no binds are known).
    """
    binds = host_binds(environ)
    out = {}
    for name, path in named.items():
        host = to_host(path, binds) if binds else None
        if host is not None:
            out[name] = {"container": str(path), "host": host}
    return out
