FROM python:3.11-slim

ENV UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PYTHONUNBUFFERED=1
RUN pip install --no-cache-dir "uv==0.13.8"
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY strategies ./strategies
RUN uv sync --frozen --no-dev

RUN useradd --create-home alchemiser && mkdir -p /data && chown alchemiser /data
USER alchemiser
ENV PATH=/app/.venv/bin:$PATH \
    ALCHEMISER_DATA_DIR=/data
EXPOSE 8080
CMD ["sh", "-c", "alchemiser db upgrade && exec alchemiser run"]
