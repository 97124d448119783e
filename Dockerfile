# gridsense: one image for the pipeline, the reference case platform and the simulators.
# docker-compose.yml picks the command; see `gridsense --help`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Every top-level package in pyproject's [tool.setuptools.packages.find] include must be
# copied here (tests/deploy/test_compose.py checks it): a missing one installs without
# error and fails only at import time inside the container.
COPY pyproject.toml README.md ./
COPY gridsense/ gridsense/
COPY ingest/ ingest/
COPY detectors/ detectors/
COPY rules/ rules/
COPY bridge/ bridge/
COPY simulators/ simulators/
# A regular (not editable) install, so the sources can go and the package data (demo
# registries, calendars) is read from site-packages.
RUN pip install . && rm -rf /src

# Non-root. /var/lib/gridsense is created here so that a fresh named volume mounted on it
# takes this ownership and the store is writable.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/gridsense --no-create-home gridsense \
    && mkdir -p /var/lib/gridsense /etc/gridsense \
    && chown gridsense:gridsense /var/lib/gridsense
USER gridsense
WORKDIR /var/lib/gridsense

CMD ["gridsense", "--help"]
