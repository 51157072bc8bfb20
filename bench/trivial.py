"""The ingest benchmark's baseline: a trivial endpoint that reads the same body, nothing more.

Served by the same gunicorn settings as fieldsvc (``gunicorn -c gunicorn.conf.py
bench.trivial:app``); benchmark-only, never part of fieldsvc.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

app = Flask(__name__)


@app.post("/api/v1/submissions")
def accept() -> Any:
    """Parse the JSON body and answer 201 with its id, as the real endpoint would."""
    body = request.get_json()
    return jsonify(id=body["id"], lines=len(body["lines"])), 201


@app.get("/healthz")
def healthz() -> Any:
    return jsonify(status="ok")
