"""Step bookkeeping: fingerprints for ``--resume`` and completion records.

A step is done when its record in ``OUTPUT_DIR/.afni-group/state.json`` has the same fingerprint
(its parameters, the size and modification time of its input files, and the afni-group version
that computed it) and all its outputs exist. Records are written only after a step's outputs are in place, so an interrupted step is
always redone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from afni_group import __version__
from afni_group.outputs import STATE_DIR, write_json

LOG = logging.getLogger(__name__)


def fingerprint(params: dict, inputs: Iterable[Path]) -> str:
    """Hash of the step's parameters, the identity (path, size, mtime) of its inputs and the
    afni-group version (a result made by another version is redone, not trusted)."""
    items = []
    for path in inputs:
        path = Path(path)
        st = path.stat() if path.exists() else None
        items.append([str(path), st.st_size if st else None, st.st_mtime_ns if st else None])
    blob = json.dumps(
        {"params": params, "inputs": items, "version": __version__}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class StepLog:
    """Records finished steps and decides which can be skipped on ``--resume``.

    The records live in ``OUTPUT_DIR/.afni-group/state.json``; a ``--fan-out`` task keeps its
    analysis's in ``.afni-group/analysis-NAME/state.json`` (``state_dir``), so that tasks running
    at once never rewrite each other's records.
    """

    def __init__(self, output_dir: Path, resume: bool, state_dir: Path | None = None):
        self.path = (state_dir or output_dir / STATE_DIR) / "state.json"
        self.resume = resume
        self.records: dict[str, dict] = {}
        if resume and self.path.is_file():
            try:
                self.records = json.loads(self.path.read_text())
            except json.JSONDecodeError:
                LOG.warning("ignoring unreadable %s; redoing every step", self.path)

    def run(
        self,
        key: str,
        params: dict,
        inputs: Iterable[Path],
        outputs: Iterable[Path],
        action: Callable[[], Any],
    ) -> Any:
        """Run ``action`` unless a matching record says it is done; return its (saved) value."""
        inputs = list(inputs)
        outputs = [Path(p) for p in outputs]
        fp = fingerprint(params, inputs)
        record = self.records.get(key)
        if (
            self.resume
            and record
            and record.get("fingerprint") == fp
            and all(p.exists() for p in outputs)
        ):
            LOG.info("++ %s: unchanged, skipped (--resume)", key)
            return record.get("value")
        LOG.info("++ %s", key)
        start = time.monotonic()
        value = action()
        self.records[key] = {
            "fingerprint": fp,
            "value": value,
            "seconds": round(time.monotonic() - start, 3),
        }
        write_json(self.path, self.records)
        return value

    def seconds(self) -> dict[str, float]:
        return {k: v.get("seconds", 0.0) for k, v in self.records.items()}
