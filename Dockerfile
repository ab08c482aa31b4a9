# Load-aware kube-scheduler extender. Multi-stage: the build stage makes a venv (numpy, msgspec
# and orjson-free wheels need no compiler), the final stage copies only the venv and the code.
#
# The base image of both stages, by tag and, once pinned, by digest (the tag stays in front of
# it as its name: Docker pulls by the digest and ignores the tag). NOT PINNED YET: the machine
# this was written on cannot reach Docker Hub, and a digest must be read, never guessed. Pin it:
#   docker buildx imagetools inspect python:3.11-slim-bookworm    (its "Digest:" line, the
#   multi-platform index; or: crane digest python:3.11-slim-bookworm)
# and set the default below to python:3.11-slim-bookworm@sha256:<that digest>, or build with
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
# tests/test_container.py checks that both stages use this one argument and that a digest,
# when there, is a whole sha256.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt constraints.txt /tmp/
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt -c /tmp/constraints.txt

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1 \
    EXTENDER_HOST=127.0.0.1 \
    EXTENDER_PORT=8888 \
    EXTENDER_OPS_HOST=0.0.0.0 \
    EXTENDER_OPS_PORT=8889
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY extender/ /app/extender/
COPY scoring/ /app/scoring/
COPY config/extender-policy.yaml /app/config/extender-policy.yaml
COPY LICENSE NOTICE /app/
# Numeric non-root user, so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8888 8889
# `python -m extender serve` (the command line users run; settings come from EXTENDER_*):
# it checks the settings and the policy first, so a mistake is one line on stderr and exit
# code 2, not a traceback from the gunicorn worker; then it replaces itself (exec) with gunicorn
# under extender/gunicorn_conf.py, so gunicorn is PID 1 and receives the kubelet's SIGTERM.
ENTRYPOINT ["python", "-m", "extender", "serve"]
