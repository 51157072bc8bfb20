# fieldsvc web service: gunicorn on PostgreSQL (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FIELDSVC_ENV=production \
    GUNICORN_BIND=0.0.0.0:8000

WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Compile the fr/ar/en message catalogs (pybabel comes with Flask-Babel's Babel).
RUN pybabel compile -f -d fieldsvc/translations \
    && useradd --system --create-home --home-dir /home/fieldsvc fieldsvc \
    && mkdir -p /app/instance && chown fieldsvc /app/instance
USER fieldsvc

EXPOSE 8000
# docker-compose.yml runs the migrations first; this is the bare server.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
