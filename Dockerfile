# `alchemiser run` in a slim image, as a non-root user; docker-compose.yml runs it with
# PostgreSQL. The daemon migrates the database itself at start.
FROM python:3.11-slim

ENV UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir "uv==0.13.8"
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY strategies ./strategies
RUN uv sync --frozen --no-dev
# Bytecode built once here (the user cannot write it at run time): each run's evaluation
# workers start in about half a second instead of compiling the project every time.
RUN /app/.venv/bin/python -m compileall -q src

RUN useradd --create-home --uid 10001 alchemiser && mkdir -p /data && chown alchemiser /data
USER alchemiser
# Inside the container the health server listens on every interface; compose publishes
# it to 127.0.0.1 only.
ENV PATH=/app/.venv/bin:$PATH \
    ALCHEMISER_DATA_DIR=/data \
    ALCHEMISER_HEALTH_PORT=8080 \
    ALCHEMISER_DAEMON__HEALTH_HOST=0.0.0.0 \
    ALCHEMISER_LOG_FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# SIGTERM stops it cleanly: the walks get their grace period (compose: stop_grace_period).
STOPSIGNAL SIGTERM
CMD ["alchemiser", "run"]
