"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi …`."""

from fieldsvc import create_app

app = create_app()
