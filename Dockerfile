# fieldsvc web service: gunicorn on PostgreSQL (see docker-compose.yml).
# Front-end libraries (Leaflet, Chart.js, axe-core) come from the npm registry at build time.
FROM node:20-slim AS vendor
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    FIELDSVC_ENV=production \
    GUNICORN_BIND=0.0.0.0:8000

WORKDIR /app

# WeasyPrint prints the PDF reports with Pango; DejaVu's fonts cover French and Arabic.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
       libharfbuzz-subset0 fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
COPY --from=vendor /build/node_modules/leaflet/dist/leaflet.js /build/node_modules/leaflet/dist/leaflet.css fieldsvc/web/static/vendor/leaflet/
COPY --from=vendor /build/node_modules/leaflet/dist/images fieldsvc/web/static/vendor/leaflet/images
COPY --from=vendor /build/node_modules/chart.js/dist/chart.umd.min.js /build/node_modules/axe-core/axe.min.js fieldsvc/web/static/vendor/
# Compile the fr/ar/en message catalogs (pybabel comes with Flask-Babel's Babel).
RUN pybabel compile -f -d fieldsvc/translations \
    && useradd --system --create-home --home-dir /home/fieldsvc fieldsvc \
    && mkdir -p /app/instance && chown fieldsvc /app/instance
USER fieldsvc

EXPOSE 8000
# docker-compose.yml runs the migrations first; this is the bare server.
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
