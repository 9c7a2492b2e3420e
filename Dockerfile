# syntax=docker/dockerfile:1

# --- build: compile every pinned dependency into wheels ------------------------------
FROM python:3.11-slim-bookworm AS build
WORKDIR /build
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

# --- runtime: the wheels, the code, a non-root user ----------------------------------
FROM python:3.11-slim-bookworm AS runtime
# DEBUG off in the image whatever the settings' default: a container started without
# SECRET_KEY refuses to start instead of signing sessions with the development key.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    DEBUG=false \
    STATIC_ROOT=/app/staticfiles
RUN python -m venv /opt/venv \
 && useradd --create-home --uid 10001 inventory
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/*.whl \
 && rm -rf /wheels
WORKDIR /app
COPY --chown=inventory:inventory . .
# Static files are gathered at build time. The settings refuse a weak key with DEBUG off,
# so this step gets a random one that signs nothing and is not kept in the image.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    bin/run collectstatic
USER inventory
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --retries=3 CMD ["bin/run", "ping-web"]
ENTRYPOINT ["bin/run"]
CMD ["web"]
