# syntax=docker/dockerfile:1
# afni-group: AFNI-style group fMRI analysis (3dMEMA or 3dttest++, 3dClustSim, 3dClusterize) as a
# BIDS-App.
#
#   docker build -t afnigroup/afni-group:0.1.0 .
#   docker run --rm --read-only --tmpfs /tmp -u "$(id -u):$(id -g)" \
#       -v /path/to/bids:/data:ro -v /path/to/out:/out afnigroup/afni-group:0.1.0 /data /out group
#
# AFNI is compiled from AFNI's public source in a builder stage on the same base image as the
# runtime, so every library it links is the runtime's own (AFNI's published images are built on
# Ubuntu 18.04: their shared libraries do not load on 24.04; see docs/containers.md).
# The source is pinned by commit: git checks the fetched tree against the hash.
# Offline builds (tests/image/build_local.sh) override AFNI_SOURCE and BASE_IMAGE.
ARG BASE_IMAGE=ubuntu:24.04

###############################################################################
# Builder: the AFNI programs afni-group runs, from source (a few minutes)
###############################################################################
FROM ${BASE_IMAGE} AS afni-build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# AFNI_26.2.03 as ../shared/spec documents it: the snapshot 90ce18f6 (2026-08-21) of AFNI's
# master, whose version string is AFNI_26.2.03 (the tag itself is on 5b79e2a5, 2026-08-04).
ARG AFNI_COMMIT=90ce18f64946abb1859bfbd8ea2b3165aa5d36b9
# github: fetch AFNI_COMMIT from AFNI_REPO; context: docker/afni-src.tar (git archive of
# AFNI_COMMIT); prefix: copy an already built install from docker/afni-prefix/.
ARG AFNI_SOURCE=github
ARG AFNI_REPO=https://github.com/afni/afni.git
COPY docker/ /build/
RUN AFNI_REPO="$AFNI_REPO" bash /build/afni-build.sh "$AFNI_SOURCE" "$AFNI_COMMIT" /opt/afni

###############################################################################
# Runtime
###############################################################################
FROM ${BASE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Runtime libraries of the AFNI programs built above (libmri is static): GSL (3dClusterize),
# libgomp (3dClustSim's OpenMP), expat and zlib; the ldd check below fails the build if one is
# missing. tcsh for AFNI's scripts (the 3dMEMA wrapper, the scripts gen_group_command.py
# writes); R with data.table (AFNI's AFNIio.R always sources lib_dataTable.R, which loads it)
# and snow (3dMEMA -jobs > 1; installed here because 3dMEMA would otherwise try
# install.packages() at run time, which fails offline and in read-only images); Python with
# venv for this package. Versions come from the release the base image pins; apt does not
# keep superseded security-update versions, so pinning them here would break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gsl-bin \
        libexpat1 \
        libgomp1 \
        zlib1g \
        tcsh \
        r-base-core \
        r-cran-data.table \
        r-cran-snow \
        python3 \
        python3-venv \
    && rm -rf /var/lib/apt/lists/*

# The AFNI programs (flat: C programs, the 3dMEMA wrapper with 3dMEMA.R/AFNIio.R/
# lib_dataTable.R/R_io.so, 1d_tool.py and gen_group_command.py with afnipy/), plus
# AFNI_commit.txt and AFNI_source.txt saying where they came from.
COPY --from=afni-build /opt/afni /opt/afni

# Everything a run may write goes to OUTPUT_DIR, --work-dir or /tmp (docker run --read-only
# --tmpfs /tmp, -u any uid, Apptainer with $HOME bound): no caches or logs in $HOME or the image.
ENV PATH="/opt/venv/bin:/opt/afni:${PATH}" \
    LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    PYTHONNOUSERSITE=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    R_LIBS_SITE=/usr/local/lib/R/site-library:/usr/lib/R/site-library:/usr/lib/R/library \
    R_LIBS=/usr/lib/R/site-library \
    R_LIBS_USER=/nonexistent \
    R_ENVIRON_USER=/dev/null \
    R_PROFILE_USER=/dev/null \
    AFNI_DONT_LOGFILE=YES \
    AFNI_NOSPLASH=YES \
    AFNI_NIFTI_TYPE_WARN=NO \
    AFNI_ENVIRON_WARNINGS=NO \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/afni-group-matplotlib \
    NUMBA_CACHE_DIR=/tmp/afni-group-numba \
    XDG_CACHE_HOME=/tmp/afni-group-cache \
    HOME=/tmp

# Our package (README.md is the project's readme in pyproject.toml).
COPY pyproject.toml README.md /src/afni-group/
COPY src /src/afni-group/src
RUN python3 -m venv /opt/venv \
    && pip install --no-cache-dir /src/afni-group \
    && rm -rf /src/afni-group \
    && python -c "import afni_group; print(afni_group.__version__)" > /version

# Fail the build, not a user's job: every program the afni engine runs for each --program
# (its own lists, with gen_group_command.py and tcsh; 3dttest++ -Clustsim runs 3dClustSim and
# 3drefit) is on PATH; every AFNI binary loads all its libraries; R loads snow, data.table
# and AFNI's R_io.so; the AFNI programs answer; the BIDS validator's deno runs.
RUN python -c "from afni_group.engines.afni.runner import afni_available; \
from afni_group.plan import PROGRAMS; \
found = {p: afni_available(True, program=p) for p in PROGRAMS}; print(found); \
raise SystemExit(0 if all(ok for ok, _ in found.values()) else 1)" \
    && for prog in 3dMEMA 3dMEMA.R AFNIio.R lib_dataTable.R R_io.so @global_parse 3dinfo 3dcalc \
        3dbucket 3drefit 3dcopy 3dTcat 3dAttribute 3dNotes nifti_tool 3dAFNItoNIFTI 3dttest++ \
        3dmask_tool p2dsetstat; do \
        test -e "/opt/afni/$prog" || { echo "missing AFNI file: $prog" >&2; exit 1; }; \
    done \
    && for f in /opt/afni/*; do \
        if [ -f "$f" ] && [ "$(head -c 4 "$f" | tr -d '\177')" = ELF ]; then \
            if ldd "$f" | grep "not found"; then echo "$f: missing library" >&2; exit 1; fi; \
        fi; \
    done \
    && Rscript -e 'library(snow); library(data.table); dyn.load("/opt/afni/R_io.so")' \
    && 3dMEMA -help > /dev/null \
    && 3dttest++ -help > /dev/null \
    && 3dClustSim -help > /dev/null \
    && 3drefit -help > /dev/null \
    && 3dmask_tool -help > /dev/null \
    && p2dsetstat -help > /dev/null \
    && 3dClusterize -help > /dev/null \
    && 1d_tool.py -ver \
    && gen_group_command.py -ver \
    && python -c "import subprocess; from afni_group.bids_validator import validator_command; \
c = validator_command(); assert c and len(c) > 1, 'no deno and bids-validator-deno bundle'; \
subprocess.run([c[0], '--version'], check=True)" \
    && afni-group --version

# The image's name in the outputs' provenance (dataset_description.json GeneratedBy.Container);
# build with --build-arg IMAGE_NAME=REGISTRY/NAME:TAG when pushing under another name. An image
# cannot know its own digest: run with -e AFNI_GROUP_CONTAINER_DIGEST=sha256:... to record it.
ARG IMAGE_NAME=afni-group:0.1.0
ENV AFNI_GROUP_CONTAINER=${IMAGE_NAME}

LABEL org.opencontainers.image.title="afni-group" \
      org.opencontainers.image.description="AFNI-style group fMRI analysis (3dMEMA or 3dttest++, 3dClustSim, 3dClusterize) of afni_proc.py results, as a BIDS-App" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="ubuntu:24.04"

WORKDIR /tmp
ENTRYPOINT ["afni-group"]
CMD ["--help"]
