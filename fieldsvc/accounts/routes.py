"""Accounts API: bearer tokens, the caller, organizations and users."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_babel import gettext as _
from flask_smorest import Blueprint

from fieldsvc.accounts import services
from fieldsvc.accounts.schemas import (
    AuditEventSchema,
    AuditQuerySchema,
    MeSchema,
    OrganizationSchema,
    PasswordResetSchema,
    TokenSchema,
    UserPatchSchema,
    UserSchema,
)
from fieldsvc.errors import problem
from fieldsvc.extensions import db
from fieldsvc.pagination import PageArgs, page_of, paginated_response
from fieldsvc.security import (
    ALL_ROLES,
    STAFF_ROLES,
    VOLUNTEER,
    allow,
    current_principal,
    register_staff_loaders,
)

blp = Blueprint("accounts", __name__, url_prefix="/api/v1",
                description="Staff tokens, the caller and organizations")
blp.record_once(lambda state: register_staff_loaders(state.app, services.token_user,
                                                     services.web_session_user))


EXAMPLE_ORGANIZATION = {"id": 1, "name": "Association Wahat Al-Khair",
                        "name_ar": "جمعية واحة الخير", "kind": "association"}
EXAMPLE_ORGANIZATIONS = [
    EXAMPLE_ORGANIZATION,
    {"id": 2, "name": "Commune de Zagora", "name_ar": "جماعة زاكورة", "kind": "commune_council"},
    {"id": 3, "name": "Délégation provinciale de la santé de Zagora", "name_ar": None,
     "kind": "partner"},
]
EXAMPLE_ME = {
    "coordinator": {"summary": "A coordinator (staff bearer token)", "value": {
        "role": "coordinator", "id": 7, "username": "s.aitali", "display_name": "Saïd Aït Ali",
        "regions": ["08"], "organization": EXAMPLE_ORGANIZATION}},
    "volunteer": {"summary": "A volunteer's phone (device token of caravan 12)", "value": {
        "role": "volunteer", "id": 41, "display_name": "Dr Amina Bennani", "regions": [],
        "caravan_id": 12, "specialty": "OPH"}},
}
EXAMPLE_USERS = [
    {"id": 1, "username": "admin", "display_name": "Nadia El Idrissi", "role": "admin",
     "active": True, "regions": [], "organization": EXAMPLE_ORGANIZATION,
     "created_at": "2026-09-01T08:00:00+00:00"},
    {"id": 9, "username": "k.benjelloun", "display_name": "Karim Benjelloun", "role": "planner",
     "active": True, "regions": [], "organization": None,
     "created_at": "2026-11-02T16:40:00+00:00"},
    {"id": 7, "username": "s.aitali", "display_name": "Saïd Aït Ali", "role": "coordinator",
     "active": True, "regions": ["08"], "organization": EXAMPLE_ORGANIZATION,
     "created_at": "2026-10-14T10:25:00+00:00"},
]


def _basic_auth_problem(detail: str) -> Any:
    return problem(401, "Authentication required", detail, type_slug="unauthorized",
                   headers={"WWW-Authenticate": 'Basic realm="fieldsvc", charset="UTF-8"'})


@blp.route("/tokens", methods=["POST"])
@allow(*ALL_ROLES)
@blp.doc(security=[{"basic": []}])
@blp.response(201, TokenSchema, example={"token": "q0Vb4mS1wZ7cT3xN9eLrA2kJ8uYdH5fGp6iOaQzXjEo",
                                         "expires_at": "2026-11-27T19:58:00+00:00"})
@blp.alt_response(401, description="Missing or wrong username and password")
@blp.alt_response(429, description="Too many failed logins; see Retry-After")
def create_token():
    """Exchange a staff username and password (HTTP basic auth) for a bearer token."""
    credentials = request.authorization
    if credentials is None or credentials.type != "basic" or not credentials.username:
        return _basic_auth_problem(_(
            "Send your username and password with HTTP basic auth "
            "(curl -u NAME -X POST …/api/v1/tokens)."
        ))
    user = services.login(credentials.username, credentials.password or "", method="token")
    if user is None:
        db.session.commit()  # keep the failure: it is audited and counts towards the throttle
        return _basic_auth_problem(_("Wrong username or password."))
    token, row = services.issue_token(user)
    expires_at = row.expires_at  # read before commit: SQLite reloads it without its UTC offset
    db.session.commit()
    return {"token": token, "expires_at": expires_at}


@blp.route("/tokens", methods=["DELETE"])
@allow(*STAFF_ROLES)
@blp.response(204, description="Revoked; the token now gets 401 everywhere")
@blp.alt_response(422, description="No bearer token in the request (a web session has none)",
                  content_type="application/problem+json")
def revoke_token():
    """Revoke the bearer token this request carries (an API client logging out, a lost token)."""
    services.revoke_token(request.headers.get("Authorization", ""), current_principal())
    db.session.commit()
    return None


@blp.route("/me", methods=["GET"])
@allow(*STAFF_ROLES, VOLUNTEER)
@blp.response(200, MeSchema, examples=EXAMPLE_ME)
def me():
    """Describe the caller: role, regions and organization (or, for a volunteer, the caravan)."""
    principal = current_principal()
    if principal.enrollment is not None:
        enrollment = principal.enrollment
        return {"role": VOLUNTEER, "id": enrollment.id, "display_name": enrollment.display_name,
                "regions": [], "caravan_id": enrollment.caravan_id,
                "specialty": enrollment.specialty_code}
    user = principal.user
    return {"role": user.role, "id": user.id, "username": user.username,
            "display_name": user.display_name, "regions": user.region_codes,
            "organization": user.organization}


@blp.route("/organizations", methods=["GET"])
@allow(*STAFF_ROLES)
@blp.arguments(PageArgs, location="query")
@paginated_response(blp, OrganizationSchema, example={
    "items": EXAMPLE_ORGANIZATIONS, "total": len(EXAMPLE_ORGANIZATIONS), "limit": 50, "offset": 0})
def list_organizations(page: dict[str, int]):
    """List associations, commune councils and partners."""
    return page_of(services.list_organizations(), **page)


@blp.route("/organizations", methods=["POST"])
@allow("admin")
@blp.arguments(OrganizationSchema, example={"name": "Commune de Zagora", "name_ar": "جماعة زاكورة",
                                            "kind": "commune_council"})
@blp.response(201, OrganizationSchema, example=EXAMPLE_ORGANIZATIONS[1])
def create_organization(data: dict[str, Any]):
    """Add an organization (admin)."""
    organization = services.create_organization(data["name"].strip(), data["kind"],
                                                data.get("name_ar"))
    db.session.commit()
    return organization


@blp.route("/users", methods=["GET"])
@allow("admin")
@blp.arguments(PageArgs, location="query")
@paginated_response(blp, UserSchema, example={
    "items": EXAMPLE_USERS, "total": len(EXAMPLE_USERS), "limit": 50, "offset": 0})
def list_users(page: dict[str, int]):
    """List staff accounts with their roles, regions and organizations (admin)."""
    return page_of(services.list_users(), **page)


@blp.route("/users/<int:user_id>", methods=["PATCH"])
@allow("admin")
@blp.arguments(UserPatchSchema, example={"role": "coordinator", "regions": ["08", "07"]})
@blp.response(200, UserSchema, example=EXAMPLE_USERS[2])
def update_user(changes: services.UserChanges, user_id: int):
    """Change a user's role, regions, organization or name, or deactivate them (admin); a change
    of rights ends their sessions and tokens."""
    user = services.update_user(services.find_user(user_id), changes)
    db.session.commit()
    return user


@blp.route("/users/<int:user_id>/password", methods=["POST"])
@allow("admin")
@blp.arguments(PasswordResetSchema, example={"password": "palmiers-de-skoura-au-matin"})
@blp.response(204, description="Set; the user's sessions and tokens are ended")
def reset_password(data: dict[str, Any], user_id: int):
    """Set a new password for a user (admin); ends their sessions and tokens."""
    services.reset_password(services.find_user(user_id), data["password"])
    db.session.commit()
    return None


@blp.route("/audit", methods=["GET"])
@allow("admin", "coordinator")
@blp.arguments(AuditQuerySchema, location="query")
@paginated_response(blp, AuditEventSchema, example={"items": [{
    "id": 301, "at": "2026-11-27T07:58:00+00:00", "actor_kind": "volunteer",
    "actor_id": "enrollment:41", "action": "enrollment.create", "object_type": "enrollment",
    "object_id": "41", "region_code": "08", "detail": {"caravan_id": 12, "ip": "196.200.1.7"}}],
    "total": 1, "limit": 50, "offset": 0})
def list_audit_events(filters: dict[str, Any]):
    """Read the audit log, newest first: admins all of it, coordinators their regions' events."""
    return services.list_audit_events(filters, current_principal(), filters.pop("limit"),
                                      filters.pop("offset"))
