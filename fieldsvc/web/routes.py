"""Pages and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from fieldsvc.extensions import db
from fieldsvc.security import ALL_ROLES, allow

web_blp = Blueprint("web", __name__, template_folder="templates", static_folder="static",
                    static_url_path="/static/web")


@web_blp.route("/healthz")
@allow(*ALL_ROLES)
def healthz():
    """Report whether the database is reachable and migrated to head."""
    from fieldsvc.web.services import migration_state

    try:
        db.session.execute(text("SELECT 1"))
        database = "ok"
    except Exception:  # noqa: BLE001 - any failure means unreachable
        db.session.rollback()
        return jsonify(status="error", database="unreachable", migrations="unknown"), 503
    current, head = migration_state()
    migrated = current is not None and current == head
    body = {
        "status": "ok" if migrated else "error",
        "database": database,
        "migrations": "head" if migrated else "behind",
        "revision": current,
        "head": head,
    }
    return jsonify(body), 200 if migrated else 503
