"""The official BIDS validator on BIDS_DIR, before anything else (``--skip-bids-validation``).

The schema-based validator of the BIDS project is a Deno program; the ``bids-validator-deno``
package ships it as one JavaScript bundle with the BIDS schema inside, and the ``deno`` package
the runtime, so it runs offline. It is run here with Deno's permissions to read and to see the
environment only (no network, no writes, no subprocesses), with its cache in a temporary folder
(nothing in ``$HOME``).

Errors stop the run (exit 65, naming the first problems); warnings are logged and kept for
params.json and the report (:func:`log_summary` says how many); when the validator cannot run
(not installed, crashed, timed out) the run goes on with a warning, as with
``--skip-bids-validation``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

from afni_group.errors import InputDataError

LOG = logging.getLogger(__name__)

PACKAGE = "bids-validator-deno"
TIMEOUT_S = 600
#: issues named in the error line / kept per code in params.json
FIRST_PROBLEMS = 3
LOCATIONS_PER_CODE = 5


def validator_command() -> list[str] | None:
    """``[deno, run, permissions..., bundle]`` of the installed validator, or None.

    Falls back to the package's ``bids-validator-deno`` script on PATH when the bundle is not
    where version 3 puts it.
    """
    try:
        import bids_validator_deno
        from deno import find_deno_bin

        bundle = Path(bids_validator_deno.__file__).parent / "bids-validator.js"
        deno = os.fsdecode(find_deno_bin())
    except (ImportError, OSError, RuntimeError):
        bundle, deno = None, None
    if bundle is not None and bundle.is_file() and deno:
        return [deno, "run", "--allow-read", "--allow-env", "--no-prompt", str(bundle)]
    script = shutil.which(PACKAGE)
    return [script] if script else None


def version() -> str | None:
    """The installed validator's version (None when it is not installed)."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def _issue_text(issue: dict) -> str:
    where = issue.get("location") or ""
    sub = f" {issue['subCode']}" if issue.get("subCode") else ""
    return f"{issue.get('code', '?')}{sub}{' ' + where if where else ''}"


def summarize(report: dict, validator_version: str | None) -> dict:
    """params.json's ``bids_validation`` from the validator's JSON report.

    ``{"ran": True, "validator": "bids-validator-deno 3.0.2", "schema_version",
    "n_errors", "n_warnings", "errors": [...], "warnings": [{"code", "count", "locations"}]}``;
    each ``errors`` entry has the same keys.
    """
    issues = (report.get("issues") or {}).get("issues") or []
    by_severity: dict[str, dict[str, list[str]]] = {"error": {}, "warning": {}}
    for issue in issues:
        kind = by_severity.get(issue.get("severity", "warning"))
        if kind is None:
            continue
        code = issue.get("code", "?") + (f" {issue['subCode']}" if issue.get("subCode") else "")
        kind.setdefault(code, []).append(issue.get("location") or "")
    counts = Counter(issue.get("severity") for issue in issues)

    def listing(groups: dict[str, list[str]]) -> list[dict]:
        return [
            {"code": code, "count": len(where), "locations": where[:LOCATIONS_PER_CODE]}
            for code, where in groups.items()
        ]

    return {
        "ran": True,
        "validator": f"{PACKAGE} {validator_version or '?'}",
        "schema_version": (report.get("summary") or {}).get("schemaVersion"),
        "n_errors": counts.get("error", 0),
        "n_warnings": counts.get("warning", 0),
        "errors": listing(by_severity["error"]),
        "warnings": listing(by_severity["warning"]),
    }


def run_validator(bids_dir: Path, timeout: float = TIMEOUT_S) -> dict:
    """Run the validator on ``bids_dir``; its JSON report, or ``{"error": why}`` if it could not.

    Only raw datasets are validated (not ``derivatives/``), as ``bids-validator`` does by
    default.
    """
    command = validator_command()
    if command is None:
        return {"error": f"{PACKAGE} (with the deno runtime) is not installed"}
    with tempfile.TemporaryDirectory(prefix="afni-group-deno-") as cache:
        env = {**os.environ, "DENO_DIR": cache, "DENO_NO_UPDATE_CHECK": "1", "NO_COLOR": "1"}
        try:
            done = subprocess.run(
                [*command, "--format", "json", str(bids_dir)],
                capture_output=True,
                text=True,
                timeout=timeout,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"error": f"{PACKAGE} did not finish in {timeout:g} s"}
        except OSError as err:
            return {"error": f"{PACKAGE} could not start: {err}"}
    try:
        report = json.loads(done.stdout)
    except ValueError:
        last = (done.stderr or done.stdout or "").strip().splitlines()
        return {
            "error": f"{PACKAGE} exited {done.returncode} without a report"
            + (f": {last[-1][:200]}" if last else "")
        }
    return report if isinstance(report, dict) else {"error": f"{PACKAGE}: unexpected output"}


def validate(bids_dir: Path, skip: bool = False) -> dict:
    """Validate BIDS_DIR; returns params.json's ``bids_validation``.

    Raises
    ------
    InputDataError
        (exit 65) when the validator reports errors: the first few, and the way out.
    """
    if skip:
        return {"ran": False, "reason": "--skip-bids-validation"}
    report = run_validator(Path(bids_dir))
    if "error" in report:
        return {"ran": False, "reason": report["error"], "validator": f"{PACKAGE} {version()}"}
    summary = summarize(report, version())
    if summary["n_errors"]:
        first = [
            f"{e['code']} {e['locations'][0]}".strip() if e["locations"] else e["code"]
            for e in summary["errors"][:FIRST_PROBLEMS]
        ]
        raise InputDataError(
            f"BIDS_DIR {bids_dir} is not valid BIDS ({summary['validator']}: "
            f"{summary['n_errors']} error(s), first: {'; '.join(first)}); fix the dataset "
            "(run bids-validator-deno on it for details) or pass --skip-bids-validation"
        )
    return summary


@contextlib.contextmanager
def validating(bids_dir: Path, skip: bool = False) -> Iterator[Future]:
    """:func:`validate` in a thread while the caller goes on reading BIDS_DIR.

    The validator is a separate Deno process (about 1 s on a small dataset), so the run's own
    discovery and checks need not wait for it. The future's ``result()`` is the summary, or
    raises :func:`validate`'s :class:`InputDataError`. Leaving the block waits for the thread,
    so no thread outlives it (the report forks its figure workers only without other threads).
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="bids-validator") as pool:
        yield pool.submit(validate, Path(bids_dir), skip)


def log_summary(summary: dict) -> None:
    """One line on what the validator said (its warnings in full are in params.json)."""
    if not summary:
        return
    if not summary.get("ran"):
        if summary.get("reason") != "--skip-bids-validation":
            LOG.warning("BIDS validation skipped: %s", summary.get("reason"))
        return
    if summary["n_warnings"]:
        kinds: Counter = Counter()
        for w in summary["warnings"]:
            kinds[w["code"].split(" ")[0]] += w["count"]
        most = ", ".join(f"{code} {count}" for code, count in kinds.most_common(3))
        more = f" and {len(kinds) - 3} more kinds" if len(kinds) > 3 else ""
        LOG.info(
            "++ BIDS validator (%s): no errors, %d warning(s): %s%s (all in params.json)",
            summary["validator"],
            summary["n_warnings"],
            most,
            more,
        )
    else:
        LOG.info("++ BIDS validator (%s): no errors or warnings", summary["validator"])
