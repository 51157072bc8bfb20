"""Recognition and coordination API: contributions, pledges and a caravan's staffing."""

from __future__ import annotations

from flask import request
from flask_smorest import Blueprint

from fieldsvc.caravans.services import UnknownJoinCode, get_caravan, register_status_hook
from fieldsvc.extensions import db
from fieldsvc.http import commit_keeping
from fieldsvc.security import ALL_ROLES, allow, current_principal
from fieldsvc.volunteers import services
from fieldsvc.volunteers.schemas import (
    ContributionArgs,
    ContributionsSchema,
    PledgeCreateSchema,
    PledgedSchema,
    StaffingSchema,
    VolunteerRecordSchema,
)

blp = Blueprint("volunteers", __name__, url_prefix="/api/v1",
                description="Contributions, certificates of recognition and pledges")
# A caravan that starts turns its pledges into enrollments.
blp.record_once(lambda state: register_status_hook(state.app, services.enroll_pledges))

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
              "full_detail": False, "suppressed": "full_detail_only", "history": []}],
}


@blp.route("/contributions", methods=["GET"])
@allow(*ALL_ROLES)
@blp.arguments(ContributionArgs, location="query")
@blp.response(200, ContributionsSchema, example=EXAMPLE_CONTRIBUTIONS)
def contributions(query: services.ContributionQuery):
    """List each organization's, partnership's or volunteer's caravans, days and communes."""
    return services.contributions(query, current_principal())


EXAMPLE_PLEDGE = {"id": 7, "caravan_id": 12, "specialty": "OPH", "display_name": "Dr Amina Bennani",
                  "volunteer_id": None, "enrollment_id": None,
                  "created_at": "2026-11-20T18:02:00+00:00"}


@blp.route("/pledges", methods=["POST"])
@allow(*ALL_ROLES)
@blp.arguments(PledgeCreateSchema, example={"join_code": "K7QX-4MZP",
                                            "display_name": "Dr Amina Bennani", "specialty": "OPH"})
@blp.response(201, PledgedSchema, example={"pledge": EXAMPLE_PLEDGE, "token": "Zr8…"})
@blp.alt_response(404, description="Unknown join code (counts towards the throttle)",
                  content_type="application/problem+json")
@blp.alt_response(409, description="The caravan has started: join it instead",
                  content_type="application/problem+json")
def create_pledge(data: services.PledgeInput):
    """Pledge to bring a specialty to a caravan still planned; it becomes an enrollment at start."""
    return commit_keeping(UnknownJoinCode,
                          lambda: services.pledge(data, request.remote_addr or "unknown"))


@blp.route("/caravans/<int:caravan_id>/staffing", methods=["GET"])
@allow("admin", "coordinator")
@blp.response(200, StaffingSchema, example={
    "caravan_id": 12, "status": "planned", "gaps": ["PED"], "pledges": [EXAMPLE_PLEDGE],
    "pledge_url": "https://fieldsvc.example.org/pledge/K7QX-4MZP",
    "specialties": [{"specialty": "GEN", "pledged": 0, "enrolled": 2, "gap": False},
                    {"specialty": "OPH", "pledged": 1, "enrolled": 0, "gap": False},
                    {"specialty": "PED", "pledged": 0, "enrolled": 0, "gap": True}]})
def staffing(caravan_id: int):
    """Show the specialties a caravan plans against the doctors who pledged or enrolled."""
    return services.staffing(get_caravan(caravan_id), current_principal())


@blp.route("/volunteers/me/record", methods=["GET"])
@allow("volunteer")
@blp.response(200, VolunteerRecordSchema, example={
    "id": 3, "display_name": "Dr Amina Bennani", "specialty": "OPH", "public_consent": True,
    "days": 3, "consultations": 43, "procedures": 2,
    "caravans": [{"id": 12, "title": "Caravane de Ouahat Sidi Brahim",
                  "commune": "07.351.02.07", "status": "closed", "first_day": "2026-03-14",
                  "last_day": "2026-03-16", "days": 3, "consultations": 43, "procedures": 2}],
    "certificates": [{"scope": "caravan", "caravan_id": 12, "year": None,
                      "code": "3-C12-K7QX4MZP", "certificate_url": "/certificates/3-C12-K7QX4MZP",
                      "verify_url": "/verify/3-C12-K7QX4MZP"}]})
@blp.alt_response(404, description="This device has no volunteer profile",
                  content_type="application/problem+json")
def my_record():
    """Show this device's volunteer their caravans, days, own tallies and certificates."""
    return services.my_record(current_principal())


@blp.route("/volunteers/me/erase", methods=["POST"])
@allow("volunteer")
@blp.response(204)
@blp.alt_response(404, description="This device has no volunteer profile",
                  content_type="application/problem+json")
def erase_my_profile():
    """Erase this device's volunteer profile; its tallies stay, attributed to nobody."""
    services.erase_my_profile(current_principal())
    db.session.commit()
