# One image for web, worker and beat (see docker-compose.yml).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The app runs as this user; captured attachments and the mail spool live under /data, a volume the
# web and worker containers share (docker-compose.yml).
RUN useradd --create-home --uid 1000 aspire && mkdir -p /data/media /data/spool && chown -R aspire:aspire /data
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY --chown=aspire:aspire . .
# Static files are collected at build time. Production settings refuse to load without their
# secrets, and collectstatic uses none of them (it neither signs nor encrypts anything), so this one
# command gets throwaway values on its own command line: they are not in the image's environment,
# and the running containers must still be given real ones (docker-compose.yml refuses to start
# without them). tests/ops/test_image.py runs these steps.
RUN DEBUG=false SECRET_KEY=build-only-not-a-secret TOKEN_ENCRYPTION_KEYS=YnVpbGQtb25seS1ub3QtYS1zZWNyZXQtMC0xMjM0NTY= \
    ALLOWED_HOSTS=build DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    python manage.py collectstatic --noinput

USER aspire
EXPOSE 8000
CMD ["gunicorn", "aspire_sync.wsgi:application", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
