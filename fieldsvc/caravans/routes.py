"""Caravans API."""

from flask_smorest import Blueprint

blp = Blueprint("caravans", __name__, url_prefix="/api/v1")
