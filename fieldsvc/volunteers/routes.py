"""Recognition API: contributions of organizations, partnerships and volunteers."""

from __future__ import annotations

from flask_smorest import Blueprint

from fieldsvc.security import ALL_ROLES, allow, current_principal
from fieldsvc.volunteers import services
from fieldsvc.volunteers.schemas import ContributionArgs, ContributionsSchema

blp = Blueprint("volunteers", __name__, url_prefix="/api/v1",
                description="Contributions, certificates of recognition and pledges")

EXAMPLE_CONTRIBUTIONS = {
    "by": "organization", "year": None, "row_count": 1,
    "rows": [{"kind": "organization", "key": "1", "name": "Wahat Al-Khair",
              "name_ar": "واحة الخير", "organizations": [
                  {"id": 1, "name": "Wahat Al-Khair", "name_ar": "واحة الخير",
                   "kind": "association"}],
              "volunteer_id": None, "specialty": None, "caravans": 4,
              "caravan_ids": [3, 5, 8, 12], "days": 8, "communes_reached": 3,
              "communes": ["07.351.02.07", "08.587.01.13", "08.587.09.23"],
              "specialties": ["GEN", "OPH", "PED"], "first_day": "2026-03-14",
              "last_day": "2026-11-28", "consultations": None, "procedures": None,
              "full_detail": False, "suppressed": "full_detail_only"}],
}


@blp.route("/contributions", methods=["GET"])
@allow(*ALL_ROLES)
@blp.arguments(ContributionArgs, location="query")
@blp.response(200, ContributionsSchema, example=EXAMPLE_CONTRIBUTIONS)
def contributions(query: services.ContributionQuery):
    """List each organization's, partnership's or volunteer's caravans, days and communes."""
    return services.contributions(query, current_principal())
