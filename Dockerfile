# gridsense: one image for the pipeline, the reference case platform and the simulators.
# docker-compose.yml picks the command; see `gridsense --help`.
# Stage 1 compiles the ingest hot path (setup.py: mypyc) into a wheel; it needs a C compiler,
# which the image that runs it does not.
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Every top-level package in pyproject's [tool.setuptools.packages.find] include must be
# copied here (tests/deploy/test_compose.py checks it): a missing one installs without
# error and fails only at import time inside the container.
COPY pyproject.toml setup.py README.md ./
COPY gridsense/ gridsense/
COPY ingest/ ingest/
COPY detectors/ detectors/
COPY rules/ rules/
COPY bridge/ bridge/
COPY simulators/ simulators/
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A regular (not editable) install, so the package data (demo registries, calendars) is read
# from site-packages. The build fails if any hot-path module came out as plain Python.
COPY --from=build /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels \
    && python -c "import sys; from gridsense.hot_path import plain_modules; sys.exit(plain_modules())"

# Non-root. /var/lib/gridsense is created here so that a fresh named volume mounted on it
# takes this ownership and the store is writable.
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/gridsense --no-create-home gridsense \
    && mkdir -p /var/lib/gridsense /etc/gridsense \
    && chown gridsense:gridsense /var/lib/gridsense
USER gridsense
WORKDIR /var/lib/gridsense

CMD ["gridsense", "--help"]
