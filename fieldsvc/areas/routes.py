"""Areas API."""

from flask_smorest import Blueprint

blp = Blueprint("areas", __name__, url_prefix="/api/v1")
