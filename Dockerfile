# syntax=docker/dockerfile:1
# afni-group: AFNI-style group fMRI analysis (3dMEMA, 3dClustSim, 3dClusterize) as a BIDS-App.
#
#   docker build -t afnigroup/afni-group:0.1.0 .
#   docker run --rm --read-only --tmpfs /tmp -u "$(id -u):$(id -g)" \
#       -v /path/to/bids:/data:ro -v /path/to/out:/out afnigroup/afni-group:0.1.0 /data /out group
#
# AFNI comes from AFNI's own release build, pinned by its release tag; AFNI_26.2.03 is the version
# whose behaviour ../shared/spec documents. Record the digest when you first pull it:
#   docker buildx imagetools inspect afni/afni_make_build:AFNI_26.2.03
# and build with --build-arg AFNI_IMAGE=afni/afni_make_build:AFNI_26.2.03@sha256:<digest>.
ARG AFNI_IMAGE=afni/afni_make_build:AFNI_26.2.03
# The runtime OS must match the one AFNI's binaries were built on (their HISTORY_NOTE says
# {AFNI_26.2.03:linux_ubuntu_24_64}): a Debian/Ubuntu with an older glibc cannot load them.
# Ubuntu 24.04 also brings Python 3.12, R 4.3 and r-cran-snow.
ARG BASE_IMAGE=ubuntu:24.04

FROM ${AFNI_IMAGE} AS afni

FROM ${BASE_IMAGE}

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Runtime libraries of AFNI's command-line programs, as AFNI's own Ubuntu setup notes list them
# (GSL, libjpeg62, Motif/Xt via libxm4 and GLU that libmri links, libgomp for OpenMP, expat,
# zlib); the ldd check below fails the build if one is still missing. tcsh for AFNI's scripts
# (gen_group_command.py writes tcsh); R with snow for 3dMEMA -jobs > 1, installed here because
# 3dMEMA would otherwise try install.packages() at run time, which fails on offline compute nodes
# and in read-only images; Python 3.12 with venv for this package.
# Versions come from the Ubuntu release the base image pins; apt does not keep superseded
# security-update versions, so pinning them here would break rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        gsl-bin \
        libexpat1 \
        libglu1-mesa \
        libgomp1 \
        libjpeg62 \
        libxm4 \
        zlib1g \
        tcsh \
        r-base-core \
        r-cran-snow \
        python3 \
        python3-venv \
    && rm -rf /var/lib/apt/lists/*

# AFNI's whole install folder: the C programs with libmri.so/libf2c.so, the R programs (3dMEMA,
# 3dMEMA.R, AFNIio.R, AFNIplot.R ...) and the Python programs with their afnipy package
# (gen_group_command.py, 1d_tool.py). The whole folder rather than a list of files: the R and
# Python helpers a program loads change between AFNI releases, and a missing one only shows when
# that program runs. Programs that need X11/Motif (the GUI) are present but unused.
COPY --from=afni /opt/afni/install /opt/afni
RUN echo /opt/afni > /etc/ld.so.conf.d/afni.conf && ldconfig

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

# Fail the build, not a user's job, when a program the pipeline runs is missing or cannot load
# its libraries, or when R cannot load snow.
RUN for prog in 3dMEMA 3dmask_tool 3dClustSim 1d_tool.py p2dsetstat 3dClusterize \
        gen_group_command.py 3dinfo 3dcalc 3dbucket 3drefit 3dAttribute Rscript tcsh; do \
        command -v "$prog" >/dev/null || { echo "missing program: $prog" >&2; exit 1; }; \
    done \
    && for prog in 3dmask_tool 3dClustSim p2dsetstat 3dClusterize 3dinfo 3dcalc 3dbucket 3drefit; do \
        if ldd "/opt/afni/$prog" | grep "not found"; then echo "$prog: missing library" >&2; exit 1; fi; \
    done \
    && test -f /opt/afni/3dMEMA.R && test -f /opt/afni/AFNIio.R \
    && Rscript -e 'library(snow)' \
    && 1d_tool.py -ver \
    && afni-group --version

LABEL org.opencontainers.image.title="afni-group" \
      org.opencontainers.image.description="AFNI-style group fMRI analysis (3dMEMA, 3dClustSim, 3dClusterize) of afni_proc.py results, as a BIDS-App" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="ubuntu:24.04"

WORKDIR /tmp
ENTRYPOINT ["afni-group"]
CMD ["--help"]
