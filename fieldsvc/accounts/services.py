"""Staff accounts, organizations, bearer tokens and the audit log."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from typing import Any

from flask import current_app, has_request_context, request
from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from fieldsvc.accounts.models import ROLES, ApiToken, AuditEvent, Organization, User, user_region
from fieldsvc.areas.models import Area
from fieldsvc.db import page_offset
from fieldsvc.errors import Conflict, ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.security import Principal, current_principal, token_digest

USERNAME = re.compile(r"[^\s:]{1,80}")

# A hash to compare against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = generate_password_hash("fieldsvc-no-such-user")


def get_or_create_organization(
    name: str, kind: str = "association", name_ar: str | None = None
) -> Organization:
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
    if not USERNAME.fullmatch(username):
        # HTTP basic auth splits at the first colon: such a name could never get a token.
        raise ValidationFailed("Usernames have 1 to 80 characters, without spaces or colons.",
                               errors={"username": ["1 to 80 characters, no spaces or colons"]})
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


def revoke_token(authorization: str, principal: Principal) -> None:
    """Delete the caller's own bearer token (idempotent for the row; its next use gets 401)."""
    from sqlalchemy import delete

    if authorization[:7].lower() != "bearer ":
        raise ValidationFailed(
            "Send the token to revoke in the Authorization header (Bearer …); a web session "
            "ends with the logout button.",
            errors={"Authorization": ["a bearer token"]})
    digest = token_digest(authorization[7:].strip())
    db.session.execute(delete(ApiToken).where(ApiToken.token_hash == digest,
                                              ApiToken.user_id == principal.user.id))
    audit("token.revoke", object_type="user", object_id=principal.user.id, principal=principal)


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
    elif not has_request_context():
        actor_kind = "system"
    else:
        actor_kind = "anonymous"
    if has_request_context():
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


# Failed logins are throttled from the audit log itself, so every gunicorn worker sees them.
LOGIN_FAILED = "login_failed"


def _login_limits() -> tuple[int, int, dt.timedelta]:
    config = current_app.config
    return (
        int(config.get("LOGIN_MAX_FAILURES_PER_USER", 5)),
        int(config.get("LOGIN_MAX_FAILURES_PER_IP", 20)),
        dt.timedelta(minutes=int(config.get("LOGIN_THROTTLE_MINUTES", 15))),
    )


def check_login_throttle(username: str, ip: str | None) -> None:
    """Refuse a login attempt after too many recent failures for this username or address."""
    from sqlalchemy import func, or_

    from fieldsvc.errors import TooManyRequests

    per_user, per_ip, window = _login_limits()
    since = dt.datetime.now(dt.UTC) - window
    key = username[:64]
    user_failures, ip_failures = db.session.execute(
        select(
            func.count().filter(AuditEvent.object_id == key),
            func.count().filter(AuditEvent.actor_id == ip),
        ).where(
            AuditEvent.action == LOGIN_FAILED,
            AuditEvent.at > since,
            or_(AuditEvent.object_id == key, AuditEvent.actor_id == ip),
        )
    ).one()
    if user_failures >= per_user or (ip is not None and ip_failures >= per_ip):
        minutes = int(window.total_seconds() // 60)
        raise TooManyRequests(
            f"Too many failed logins; wait {minutes} minutes before trying again.",
            retry_after=int(window.total_seconds()),
        )


def record_login_failure(username: str, ip: str | None) -> None:
    """Remember a failed login (username and address) for the audit log and the throttle."""
    db.session.add(AuditEvent(
        actor_kind="anonymous", actor_id=ip, action=LOGIN_FAILED,
        object_type="login", object_id=username[:64], detail={"ip": ip},
    ))


def record_login(user: User, method: str) -> AuditEvent:
    """Audit a successful login by password (API token or web session)."""
    principal = Principal(role=user.role, user=user, region_codes=list(user.region_codes),
                          organization_id=user.organization_id)
    return audit("login", object_type="user", object_id=user.id, principal=principal, method=method)


def login(username: str, password: str, method: str) -> User | None:
    """Check credentials under the throttle; audit the outcome. None means wrong credentials."""
    ip = request.remote_addr if has_request_context() else None
    check_login_throttle(username, ip)
    user = authenticate(username, password)
    if user is None:
        record_login_failure(username, ip)
        return None
    record_login(user, method)
    return user


def create_organization(name: str, kind: str, name_ar: str | None = None) -> Organization:
    """Add an organization; names are unique."""
    existing = db.session.scalar(select(Organization).where(Organization.name == name))
    if existing is not None:
        raise Conflict(f"An organization named {name!r} already exists.",
                       errors={"name": ["already exists"]}, id=existing.id)
    organization = Organization(name=name, kind=kind, name_ar=name_ar)
    db.session.add(organization)
    db.session.flush()
    return organization


def list_organizations() -> list[Organization]:
    """All organizations by name."""
    return list(db.session.scalars(select(Organization).order_by(Organization.name)))


def list_users() -> list[User]:
    """All staff users by username."""
    return list(db.session.scalars(select(User).order_by(User.username)))


def list_audit_events(
    filters: dict[str, Any], principal: Principal, page: int, page_size: int
) -> tuple[list[AuditEvent], int]:
    """Audit events, newest first: all for admins, a coordinator's regions for coordinators."""
    from sqlalchemy import func

    query = select(AuditEvent)
    if principal.role != "admin":
        query = query.where(AuditEvent.region_code.in_(principal.region_codes))
    if "action" in filters:
        query = query.where(AuditEvent.action == filters["action"])
    if "region" in filters:
        query = query.where(AuditEvent.region_code == filters["region"])
    if "from_" in filters:
        query = query.where(AuditEvent.at >= filters["from_"])
    if "to" in filters:
        query = query.where(AuditEvent.at <= filters["to"])
    total = db.session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = db.session.scalars(
        query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
        .limit(page_size).offset(page_offset(page, page_size))
    )
    return list(rows), total
