"""Tallies API."""

from flask_smorest import Blueprint

blp = Blueprint("tallies", __name__, url_prefix="/api/v1")
