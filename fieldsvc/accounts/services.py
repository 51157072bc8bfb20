"""Staff accounts, organizations, bearer tokens and the audit log."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Any

from flask import current_app, has_request_context, request
from flask_babel import gettext as _
from sqlalchemy import delete, func, or_, select
from werkzeug.security import check_password_hash, generate_password_hash

from fieldsvc.accounts.models import ROLES, ApiToken, AuditEvent, Organization, User, user_region
from fieldsvc.areas.models import Area
from fieldsvc.errors import Conflict, ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.pagination import Page, paginate
from fieldsvc.security import Principal, current_principal, refuse_when_throttled, token_digest

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
    roles = ", ".join(ROLES)
    if role not in ROLES:
        raise ValidationFailed(_("Unknown role %(role)r; use one of %(roles)s.", role=role,
                                 roles=roles),
                               errors={"role": [_("one of %(roles)s", roles=roles)]})
    if not USERNAME.fullmatch(username):
        # HTTP basic auth splits at the first colon: such a name could never get a token.
        raise ValidationFailed(
            _("Usernames have 1 to 80 characters, without spaces or colons."),
            errors={"username": [_("1 to 80 characters, no spaces or colons")]})
    if db.session.scalar(select(User).where(User.username == username)) is not None:
        raise Conflict(_("A user named %(name)r already exists.", name=username),
                       errors={"username": [_("taken")]})
    if len(password) < 8:
        raise ValidationFailed(_("Passwords need at least 8 characters."),
                               errors={"password": [_("at least 8 characters")]})
    regions = list(region_codes or [])
    if role == "coordinator" and not regions:
        raise ValidationFailed(_("A coordinator needs at least one region."),
                               errors={"regions": [_("at least one region code")]})
    for code in regions:
        area = db.session.get(Area, code)
        if area is None or area.level != "region":
            raise ValidationFailed(
                _("%(code)r is not a region code (e.g. 08 for Drâa-Tafilalet).", code=code),
                errors={"regions": [_("unknown region %(code)s", code=code)]})
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
    audit("user.create", object_type="user", object_id=user.id, role=role)
    return user


@dataclass
class UserChanges:
    """What an admin changes on a staff account."""

    active: bool
    region_codes: list[str]
    organization_id: int | None
    password: str | None = None


def change_user(user: User, changes: UserChanges) -> User:
    """Deactivate or reactivate an account, set its regions or organization, reset its password."""
    regions = sorted(set(changes.region_codes))
    if user.role == "coordinator" and not regions:
        raise ValidationFailed(_("A coordinator needs at least one region."),
                               errors={"regions": [_("at least one region code")]})
    for code in regions:
        area = db.session.get(Area, code)
        if area is None or area.level != "region":
            raise ValidationFailed(
                _("%(code)r is not a region code (e.g. 08 for Drâa-Tafilalet).", code=code),
                errors={"regions": [_("unknown region %(code)s", code=code)]})
    if changes.organization_id is not None and \
            db.session.get(Organization, changes.organization_id) is None:
        raise ValidationFailed(_("No organization has this id."),
                               errors={"organization": [_("unknown organization")]})
    if changes.password is not None and len(changes.password) < 8:
        raise ValidationFailed(_("Passwords need at least 8 characters."),
                               errors={"password": [_("at least 8 characters")]})
    changed = []
    if user.active != changes.active:
        user.active = changes.active
        changed.append("active")
        if not changes.active:  # a deactivated account's bearer tokens stop at once
            db.session.execute(delete(ApiToken).where(ApiToken.user_id == user.id))
    if regions != user.region_codes:
        db.session.execute(delete(user_region).where(user_region.c.user_id == user.id))
        for code in regions:
            db.session.execute(user_region.insert().values(user_id=user.id, region_code=code))
        changed.append("regions")
    if user.organization_id != changes.organization_id:
        user.organization_id = changes.organization_id
        changed.append("organization")
    if changes.password is not None:
        user.password_hash = generate_password_hash(changes.password)
        changed.append("password")
    db.session.flush()
    db.session.expire(user, ["region_rows", "organization"])
    audit("user.update", object_type="user", object_id=user.id, changed=changed,
          active=user.active, regions=regions)
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
    audit("token.create", object_type="user", object_id=user.id, principal=_as_principal(user))
    return token, row


def revoke_token(authorization: str, principal: Principal) -> None:
    """Delete the caller's own bearer token (idempotent for the row; its next use gets 401)."""
    if authorization[:7].lower() != "bearer ":
        raise ValidationFailed(
            _("Send the token to revoke in the Authorization header (Bearer …); a web session "
              "ends with the logout button."),
            errors={"Authorization": [_("a bearer token")]})
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


# Failed logins are counted in the audit log itself, so every gunicorn worker sees them.
LOGIN_FAILED = "login.fail"


def _login_limits() -> tuple[int, int, dt.timedelta]:
    config = current_app.config
    return (
        int(config["LOGIN_MAX_FAILURES_PER_USER"]),
        int(config["LOGIN_MAX_FAILURES_PER_IP"]),
        dt.timedelta(minutes=int(config["LOGIN_THROTTLE_MINUTES"])),
    )


def _too_many_logins(seconds: int) -> str:
    return _("Too many failed logins; wait %(minutes)s minutes before trying again.",
             minutes=max(1, -(-seconds // 60)))


def check_login_throttle(username: str, ip: str | None) -> None:
    """Refuse a login attempt after too many recent failures for this username or address."""
    per_user, per_ip, window = _login_limits()
    now = dt.datetime.now(dt.UTC)
    key = username[:64]
    by_user = AuditEvent.object_id == key
    by_ip = AuditEvent.actor_id == ip
    user_failures, user_oldest, ip_failures, ip_oldest = db.session.execute(
        select(
            func.count().filter(by_user), func.min(AuditEvent.at).filter(by_user),
            func.count().filter(by_ip), func.min(AuditEvent.at).filter(by_ip),
        ).where(AuditEvent.action == LOGIN_FAILED, AuditEvent.at > now - window,
                or_(by_user, by_ip))
    ).one()
    refuse_when_throttled(user_failures, user_oldest, limit=per_user, window=window, now=now,
                          message=_too_many_logins)
    if ip is not None:
        refuse_when_throttled(ip_failures, ip_oldest, limit=per_ip, window=window, now=now,
                              message=_too_many_logins)


def record_login_failure(username: str, ip: str | None) -> None:
    """Remember a failed login (username and address) for the audit log and the throttle."""
    db.session.add(AuditEvent(
        actor_kind="anonymous", actor_id=ip, action=LOGIN_FAILED,
        object_type="login", object_id=username[:64], detail={"ip": ip},
    ))


def _as_principal(user: User) -> Principal:
    return Principal(role=user.role, user=user, region_codes=list(user.region_codes),
                     organization_id=user.organization_id)


def record_login(user: User, method: str) -> AuditEvent:
    """Audit a successful login by password (API token or web session)."""
    return audit("login.success", object_type="user", object_id=user.id,
                 principal=_as_principal(user), method=method)


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


def logout(user: User) -> AuditEvent:
    """Audit the end of a web session."""
    return audit("logout", object_type="user", object_id=user.id)


def create_organization(name: str, kind: str, name_ar: str | None = None) -> Organization:
    """Add an organization; names are unique."""
    existing = db.session.scalar(select(Organization).where(Organization.name == name))
    if existing is not None:
        raise Conflict(_("An organization named %(name)r already exists.", name=name),
                       errors={"name": [_("already exists")]}, id=existing.id)
    organization = Organization(name=name, kind=kind, name_ar=name_ar)
    db.session.add(organization)
    db.session.flush()
    audit("organization.create", object_type="organization", object_id=organization.id)
    return organization


def list_organizations() -> list[Organization]:
    """All organizations by name."""
    return list(db.session.scalars(select(Organization).order_by(Organization.name)))


def list_users() -> list[User]:
    """All staff users by username."""
    return list(db.session.scalars(select(User).order_by(User.username)))


def list_audit_events(
    filters: dict[str, Any], principal: Principal, limit: int, offset: int
) -> Page[AuditEvent]:
    """Audit events, newest first: all for admins, a coordinator's regions for coordinators."""
    query = select(AuditEvent)
    if principal.role != "admin":
        query = query.where(AuditEvent.region_code.in_(principal.region_codes))
    if "action" in filters:
        query = query.where(AuditEvent.action == filters["action"])
    if "actor" in filters:
        query = query.where(AuditEvent.actor_id == filters["actor"])
    if "region" in filters:
        query = query.where(AuditEvent.region_code == filters["region"])
    if "from_" in filters:
        query = query.where(AuditEvent.at >= filters["from_"])
    if "to" in filters:
        query = query.where(AuditEvent.at <= filters["to"])
    return paginate(query.order_by(AuditEvent.at.desc(), AuditEvent.id.desc()), limit, offset)
