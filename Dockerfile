# Load-aware kube-scheduler extender. Multi-stage: the build stage makes a venv (numpy, msgspec
# and orjson-free wheels need no compiler), the final stage copies only the venv and the code.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt constraints.txt /tmp/
RUN /opt/venv/bin/pip install -r /tmp/requirements.txt -c /tmp/constraints.txt

FROM python:3.11-slim-bookworm
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
# Numeric non-root user, so that runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8888 8889
# The same gunicorn configuration `python -m extender serve` uses; settings come from EXTENDER_*.
ENTRYPOINT ["gunicorn", "-c", "python:extender.gunicorn_conf", "extender.wsgi:app"]
