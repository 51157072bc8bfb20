"""Staff accounts, organizations, bearer tokens and the audit log."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from flask import current_app, request
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from fieldsvc.accounts.models import ROLES, ApiToken, AuditEvent, Organization, User, user_region
from fieldsvc.areas.models import Area
from fieldsvc.errors import Conflict, ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.security import Principal, current_principal, token_digest

# A hash to compare against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = generate_password_hash("fieldsvc-no-such-user")


def get_or_create_organization(name: str, kind: str = "association", name_ar: str | None = None) -> Organization:
    """Return the organization with this name, creating it if needed."""
    organization = db.session.scalar(select(Organization).where(Organization.name == name))
    if organization is None:
        organization = Organization(name=name, kind=kind, name_ar=name_ar)
        db.session.add(organization)
        db.session.flush()
    return organization


def create_user(
    username: str,
    password: str,
    role: str,
    *,
    region_codes: list[str] | None = None,
    organization: Organization | None = None,
    display_name: str | None = None,
) -> User:
    """Create a staff user with a hashed password."""
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role {role!r}; use one of {', '.join(ROLES)}.",
                               errors={"role": [f"one of {', '.join(ROLES)}"]})
    if db.session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(f"A user named {username!r} already exists.", errors={"username": ["taken"]})
    if len(password) < 8:
        raise ValidationFailed("Passwords need at least 8 characters.",
                               errors={"password": ["at least 8 characters"]})
    regions = list(region_codes or [])
    if role == "coordinator" and not regions:
        raise ValidationFailed("A coordinator needs at least one region.",
                               errors={"regions": ["at least one region code"]})
    for code in regions:
        area = db.session.get(Area, code)
        if area is None or area.level != "region":
            raise ValidationFailed(f"{code!r} is not a region code (e.g. 08 for Drâa-Tafilalet).",
                                   errors={"regions": [f"unknown region {code}"]})
    user = User(
        username=username,
        password_hash=generate_password_hash(password),
        role=role,
        organization_id=organization.id if organization else None,
        display_name=display_name or username,
    )
    db.session.add(user)
    db.session.flush()
    for code in regions:
        db.session.execute(user_region.insert().values(user_id=user.id, region_code=code))
    db.session.flush()
    db.session.expire(user, ["region_rows"])
    return user


def authenticate(username: str, password: str) -> User | None:
    """Return the active user with these credentials, or None."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    return user


def issue_token(user: User) -> tuple[str, ApiToken]:
    """Make a bearer token for a user; only its digest is stored."""
    token = secrets.token_urlsafe(32)
    hours = current_app.config["API_TOKEN_HOURS"]
    row = ApiToken(
        token_hash=token_digest(token),
        user_id=user.id,
        expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(hours=hours),
    )
    db.session.add(row)
    db.session.flush()
    return token, row


def audit(
    action: str,
    *,
    object_type: str | None = None,
    object_id: Any = None,
    region_code: str | None = None,
    principal: Principal | None = None,
    **detail: Any,
) -> AuditEvent:
    """Record who did what; flushed with the request's single commit."""
    principal = principal or current_principal()
    if principal.user is not None:
        actor_kind = "user"
    elif principal.enrollment is not None:
        actor_kind = "volunteer"
    else:
        actor_kind = "anonymous"
    if request:
        detail.setdefault("ip", request.remote_addr)
    event = AuditEvent(
        actor_kind=actor_kind,
        actor_id=principal.actor_id,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        region_code=region_code,
        detail=detail or None,
    )
    db.session.add(event)
    return event
