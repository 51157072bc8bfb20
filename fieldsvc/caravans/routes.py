"""Caravans API: caravans, join codes and QR codes, device enrollments, volunteer profiles."""

from __future__ import annotations

from flask import Response, request
from flask_smorest import Blueprint

from fieldsvc.caravans import clashes, services
from fieldsvc.caravans.schemas import (
    EXAMPLE_CARAVAN,
    CaravanCreateSchema,
    CaravanPatchSchema,
    CaravanQuerySchema,
    CaravanSchema,
    EnrolledSchema,
    EnrollmentCreateSchema,
    EnrollmentSchema,
    JoinCodeSchema,
    NotificationSchema,
    SitePatchSchema,
    SiteSchema,
    VolunteerCreateSchema,
    VolunteerPatchSchema,
    VolunteerProfileSchema,
)
from fieldsvc.extensions import db
from fieldsvc.http import commit_keeping
from fieldsvc.pagination import PageArgs, page_of, paginated_response
from fieldsvc.security import (
    ALL_ROLES,
    STAFF_ROLES,
    allow,
    current_principal,
    register_device_loader,
)

PROBLEM = "application/problem+json"

blp = Blueprint("caravans", __name__, url_prefix="/api/v1",
                description="Caravans, join codes, device enrollments and volunteer profiles")
# Devices authenticate with the tokens this blueprint hands out.
blp.record_once(lambda state: register_device_loader(state.app, services.device_principal))

EXAMPLE_CREATE = {
    "title": "Caravane médicale de Zagora",
    "organizers": [1],
    "commune": "08.587.01.13",
    "sites": [{"name": "École Al Amal", "location": "30°19'48\"N 5°50'24\"W"},
              {"name": "Dispensaire d'Amezrou", "location": "30.31, -5.83"}],
    "first_day": "2026-11-27",
    "last_day": "2026-11-28",
    "specialties": ["GEN", "OPH", "PED"],
}
EXAMPLE_BRIEF = {key: EXAMPLE_CARAVAN[key] for key in
                 ("id", "title", "commune", "first_day", "last_day", "specialties", "status")}
EXAMPLE_BRIEF["sites"] = [{"id": 1, "name": "École Al Amal", "lat": 30.33, "lon": -5.84}]
EXAMPLE_PROFILE = {"id": 3, "display_name": "Dr Amina Bennani", "specialty": "OPH",
                   "public_consent": False, "created_at": "2026-11-27T07:58:00+00:00",
                   "caravans": [{"id": 12, "title": "Caravane médicale de Zagora",
                                 "first_day": "2026-11-27", "last_day": "2026-11-28",
                                 "status": "active"}]}
EXAMPLE_ENROLLMENT = {"id": 41, "caravan_id": 12, "display_name": "Dr Amina Bennani",
                      "specialty": "OPH", "volunteer_id": 3,
                      "created_at": "2026-11-27T07:58:00+00:00", "revoked_at": None, "live": True}


@blp.route("/caravans", methods=["POST"])
@allow("admin", "coordinator")
@blp.arguments(CaravanCreateSchema, example=EXAMPLE_CREATE)
@blp.response(201, CaravanSchema, example=EXAMPLE_CARAVAN)
@blp.alt_response(422, description="Invalid input; a refused point shows what was understood",
                  content_type=PROBLEM, example={
                      "type": "https://fieldsvc.org/problems/validation",
                      "title": "Validation failed", "status": 422,
                      "detail": "A site's location is not plausible: Read as latitude -5.84, "
                                "longitude 30.33, which is outside Morocco …",
                      "errors": {"sites[0].location": ["Read as latitude -5.84, longitude 30.33, "
                                                       "which is outside Morocco …"]},
                      "understood": {"site": 0, "text": "-5.84, 30.33", "lat": -5.84,
                                     "lon": 30.33}})
@blp.alt_response(403, description="The commune is outside your regions", content_type=PROBLEM)
def create_caravan(data: services.CaravanInput):
    """Create a caravan in a commune of your regions; answers its join code and link."""
    view = services.create_caravan(data, current_principal())
    db.session.commit()
    return view


@blp.route("/caravans", methods=["GET"])
@allow(*STAFF_ROLES)
@blp.arguments(CaravanQuerySchema, location="query")
@paginated_response(blp, CaravanSchema, example={"items": [EXAMPLE_CARAVAN], "total": 1,
                                                  "limit": 50, "offset": 0})
def list_caravans(filters: services.CaravanFilter):
    """List caravans, newest first, filtered by status, region or commune (paginated)."""
    return services.list_caravans(filters, current_principal())


@blp.route("/caravans/<int:caravan_id>", methods=["GET"])
@allow(*STAFF_ROLES, "volunteer")
@blp.response(200, CaravanSchema, example=EXAMPLE_CARAVAN)
def get_caravan(caravan_id: int):
    """Show a caravan (a device token sees only its own caravan)."""
    principal = current_principal()
    return services.caravan_view(services.caravan_for_reader(caravan_id, principal), principal)


@blp.route("/caravans/<int:caravan_id>", methods=["PATCH"])
@allow("admin", "coordinator")
@blp.arguments(CaravanPatchSchema, example={"status": "active", "sites": [
    {"name": "Douar Tissergate", "location": "30 17 30 N, 5 52 10 W"}]})
@blp.response(200, CaravanSchema, example=EXAMPLE_CARAVAN)
def update_caravan(data: services.CaravanChanges, caravan_id: int):
    """Change a caravan's title, days, specialties, add sites, or move its status forward;
    remove or correct one site at /caravans/{caravan_id}/sites/{site_id}."""
    view = services.update_caravan(services.get_caravan(caravan_id), data, current_principal())
    db.session.commit()
    return view


EXAMPLE_SITE_NAMED = {
    "type": "https://fieldsvc.org/problems/conflict", "title": "Conflict", "status": 409,
    "detail": "Site 31 (École Al Amal) stays: tallies already name it (3). If its name or "
              "point is wrong, correct them instead.",
    "errors": {"site": ["tallies name this site"]}}


@blp.route("/caravans/<int:caravan_id>/sites/<int:site_id>", methods=["DELETE"])
@allow("admin", "coordinator")
@blp.response(204, description="Removed; the caravan's other sites are unchanged")
@blp.alt_response(404, description="No such caravan, or the caravan has no such site",
                  content_type=PROBLEM, example={
                      "type": "https://fieldsvc.org/problems/not-found", "title": "Not found",
                      "status": 404, "detail": "Caravan 12 has no site 31."})
@blp.alt_response(409, description="Tallies name the site (correct it instead), or the caravan "
                  "is closed", content_type=PROBLEM, example=EXAMPLE_SITE_NAMED)
@blp.alt_response(403, description="The caravan is outside your regions", content_type=PROBLEM)
def remove_site(caravan_id: int, site_id: int):
    """Remove a mistyped site that no tally names yet (audited as caravan.site_remove)."""
    services.remove_site(services.get_caravan(caravan_id), site_id, current_principal())
    db.session.commit()
    return None


@blp.route("/caravans/<int:caravan_id>/sites/<int:site_id>", methods=["PATCH"])
@allow("admin", "coordinator")
@blp.arguments(SitePatchSchema, example={"name": "École Al Amal", "location": "30.31, -5.83"})
@blp.response(200, SiteSchema, example={"id": 31, "name": "École Al Amal",
                                        "commune": "08.587.01.13", "lat": 30.31, "lon": -5.83,
                                        "km_from_commune": 2.1})
@blp.alt_response(404, description="No such caravan, or the caravan has no such site",
                  content_type=PROBLEM)
@blp.alt_response(409, description="The caravan is closed", content_type=PROBLEM)
@blp.alt_response(403, description="The caravan is outside your regions", content_type=PROBLEM)
def update_site(data: services.SiteChanges, caravan_id: int, site_id: int):
    """Correct a site's name or point, even once tallies name it (audited as
    caravan.site_update); the point is read and checked as when sites are added."""
    site = services.update_site(services.get_caravan(caravan_id), site_id, data,
                                current_principal())
    db.session.commit()
    return site


@blp.route("/caravans/<int:caravan_id>/join-code", methods=["POST"])
@allow("admin", "coordinator")
@blp.response(200, JoinCodeSchema, example={"join_code": "P3WE-9RTA",
                                            "join_url": "https://fieldsvc.example.org/join/P3WE-9RTA"})
def rotate_join_code(caravan_id: int):
    """Replace the caravan's join code; devices already enrolled keep working."""
    principal = current_principal()
    caravan = services.rotate_join_code(services.get_caravan(caravan_id), principal)
    db.session.commit()
    return services.caravan_view(caravan, principal)


def _qr(caravan_id: int, kind: str) -> Response:
    caravan = services.get_caravan(caravan_id)
    body = services.qr_code(caravan, current_principal(), kind)
    response = Response(body, mimetype="image/svg+xml" if kind == "svg" else "image/png")
    # The picture carries the join code: keep it out of shared caches.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/caravans/<int:caravan_id>/qr.svg", methods=["GET"])
@allow("admin", "coordinator")
@blp.response(200, content_type="image/svg+xml",
              description="A QR code of the join link, as SVG",
              example="<svg xmlns=\"http://www.w3.org/2000/svg\" …</svg>")
def qr_svg(caravan_id: int):
    """Draw the caravan's join link as an SVG QR code (for posters)."""
    return _qr(caravan_id, "svg")


@blp.route("/caravans/<int:caravan_id>/qr.png", methods=["GET"])
@allow("admin", "coordinator")
@blp.response(200, content_type="image/png", description="A QR code of the join link, as PNG",
              example="(PNG bytes)")
def qr_png(caravan_id: int):
    """Draw the caravan's join link as a PNG QR code (for phones and messages)."""
    return _qr(caravan_id, "png")


@blp.route("/caravans/<int:caravan_id>/enrollments", methods=["GET"])
@allow("admin", "coordinator")
@blp.arguments(PageArgs, location="query")
@paginated_response(blp, EnrollmentSchema, example={
    "items": [EXAMPLE_ENROLLMENT], "total": 1, "limit": 50, "offset": 0})
def list_enrollments(page: dict[str, int], caravan_id: int):
    """List the devices enrolled in a caravan and whether each token still works."""
    return page_of(services.list_enrollments(services.get_caravan(caravan_id),
                                             current_principal()), **page)


@blp.route("/enrollments", methods=["POST"])
@allow(*ALL_ROLES)
@blp.arguments(EnrollmentCreateSchema, example={
    "join_code": "K7QX-4MZP", "display_name": "Dr Amina Bennani", "specialty": "OPH",
    "create_profile": True})
@blp.response(201, EnrolledSchema, example={
    "token": "b1Jx…", "enrollment_id": 41, "caravan": EXAMPLE_BRIEF,
    "volunteer": {"id": 3, "display_name": "Dr Amina Bennani", "specialty": "OPH",
                  "public_consent": False, "created_at": "2026-11-27T07:58:00+00:00"},
    "profile_key": "pk_9V0b2…"})
@blp.alt_response(404, description="Unknown join code (counts towards the throttle)",
                  content_type=PROBLEM)
@blp.alt_response(429, description="Too many wrong codes from this connection; see Retry-After",
                  content_type=PROBLEM, headers={"Retry-After": {
                      "description": "Seconds to wait", "schema": {"type": "integer"}}},
                  example={"type": "https://fieldsvc.org/problems/too-many-requests",
                           "title": "Too many requests", "status": 429, "retry_after": 412,
                           "detail": "Too many wrong join codes from this connection; try again "
                                     "in 412 seconds."})
def enroll(data: services.EnrollmentInput):
    """Join a caravan with its code: answers a device token scoped to that caravan."""
    return commit_keeping(services.UnknownJoinCode,
                          lambda: services.enroll(data, request.remote_addr or "unknown"))


@blp.route("/enrollments/<int:enrollment_id>", methods=["DELETE"])
@allow("admin", "coordinator")
@blp.response(204, description="Revoked; the token now gets 401 everywhere")
@blp.alt_response(404, description="No such enrollment", content_type="application/problem+json",
                  example={"type": "https://fieldsvc.org/problems/not-found", "title": "Not found",
                           "status": 404, "detail": "No enrollment has id 41."})
def revoke_enrollment(enrollment_id: int):
    """Revoke a device token (idempotent)."""
    services.revoke_enrollment(enrollment_id, current_principal())
    db.session.commit()
    return None


@blp.route("/enrollments/<int:enrollment_id>/token", methods=["POST"])
@allow("admin", "coordinator")
@blp.response(201, EnrolledSchema, example={
    "token": "Qm8v…", "enrollment_id": 41, "caravan": EXAMPLE_BRIEF,
    "volunteer": {"id": 3, "display_name": "Dr Amina Bennani", "specialty": "OPH",
                  "public_consent": False, "created_at": "2026-11-27T07:58:00+00:00"}})
def readmit_device(enrollment_id: int):
    """Give a revoked device a fresh token to hand to the volunteer (the old token stays dead);
    the only way back for a revoked device."""
    readmitted = services.readmit_device(enrollment_id, current_principal())
    db.session.commit()
    return readmitted


@blp.route("/volunteers/me", methods=["GET"])
@allow("volunteer")
@blp.response(200, VolunteerProfileSchema, example=EXAMPLE_PROFILE)
def get_my_profile():
    """Show the volunteer profile this device's enrollment points to."""
    return services.my_profile(current_principal())


@blp.route("/volunteers/me", methods=["POST"])
@allow("volunteer")
@blp.arguments(VolunteerCreateSchema, example={"public_consent": True})
@blp.response(201, VolunteerProfileSchema, example={**EXAMPLE_PROFILE, "profile_key": "pk_9V0b2…"})
def create_my_profile(data: services.ProfileChanges):
    """Create a volunteer profile for a device that joined without one; answers its key once."""
    profile = services.create_my_profile(data, current_principal())
    db.session.commit()
    return profile


@blp.route("/volunteers/me", methods=["PATCH"])
@allow("volunteer")
@blp.arguments(VolunteerPatchSchema, example={"public_consent": True})
@blp.response(200, VolunteerProfileSchema, example=EXAMPLE_PROFILE)
def update_my_profile(data: services.ProfileChanges):
    """Change this volunteer's name, specialty or consent to be named publicly."""
    profile = services.update_my_profile(data, current_principal())
    db.session.commit()
    return profile


@blp.route("/notifications", methods=["GET"])
@allow(*STAFF_ROLES)
@blp.arguments(PageArgs, location="query")
@paginated_response(blp, NotificationSchema, example={"items": [{
    "kind": "clash", "about": EXAMPLE_BRIEF, "km": 10.2, "days_apart": 2,
    "caravan": {"id": 14, "title": "Caravane de Tamegroute", "commune": "08.587.01.13",
                "commune_name_fr": "Zagora", "first_day": "2026-11-30",
                "last_day": "2026-12-01", "status": "planned",
                "organizers": [{"id": 2, "name": "Association Tafilalet Santé"}]},
    "message": "Caravan 14 “Caravane de Tamegroute” … works 10.2 km away, 2 days apart; …"}],
    "total": 1, "limit": 50, "offset": 0})
def notifications(page: dict[str, int]):
    """List clashes of the caravans to come that your organization organizes or your regions run."""
    return page_of(clashes.notifications(current_principal(), services.morocco_today()), **page)
