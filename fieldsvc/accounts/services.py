"""Staff accounts, organizations, bearer tokens and the audit log."""

from __future__ import annotations

import datetime as dt
import math
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, has_request_context, request
from flask_babel import gettext as _
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash

from fieldsvc.accounts.models import (
    ROLES,
    ApiToken,
    AuditEvent,
    Organization,
    ThrottleHit,
    User,
    WebSession,
    user_region,
)
from fieldsvc.areas.models import Area
from fieldsvc.db import utcnow
from fieldsvc.errors import Conflict, TooManyRequests, Unauthorized, ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.pagination import Page, paginate
from fieldsvc.security import (
    STAFF_TOKEN_PREFIX,
    Principal,
    current_principal,
    refuse_when_throttled,
    token_digest,
)

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


MIN_PASSWORD_LENGTH = 12
# Common passwords long enough to pass the length rule; guessers try them first.
COMMON_PASSWORDS = frozenset({
    "123456789012", "1234567890123", "12345678901234", "123456789abc", "000000000000",
    "111111111111", "123123123123", "azertyuiop12", "azertyuiop123", "azertyuiopqs",
    "qwertyuiop12", "qwertyuiop123", "qwerty123456", "1q2w3e4r5t6y", "password1234",
    "password12345", "passwordpassword", "motdepasse12", "motdepasse123", "motdepasse2024",
    "motdepasse2025", "motdepasse2026", "administrator", "administrateur", "iloveyou1234",
    "welcome12345", "bienvenue123", "changeme1234", "letmein12345", "morocco12345",
    "maroc1234567", "marrakech123", "casablanca123", "fieldsvc1234", "caravane2026",
})


def check_password_policy(password: str, username: str) -> None:
    """Refuse a password shorter than 12 characters, equal to or containing the username, or common."""
    folded = password.casefold()
    if len(password) < MIN_PASSWORD_LENGTH:
        problem = _("at least %(count)s characters", count=MIN_PASSWORD_LENGTH)
    elif username and (folded == username.casefold()
                       or (len(username) >= 4 and username.casefold() in folded)):
        problem = _("must not be or contain the username")
    elif folded in COMMON_PASSWORDS or len(set(folded)) < 4:
        problem = _("too common; choose a phrase of several words")
    else:
        return
    raise ValidationFailed(_("Choose another password: %(problem)s.", problem=problem),
                           errors={"password": [problem]})


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
    check_password_policy(password, username)
    regions = list(region_codes or [])
    _check_regions(role, regions)
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


def authenticate(username: str, password: str) -> User | None:
    """Return the active user with these credentials, or None."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(user.password_hash, password):
        return None
    return user


def issue_token(user: User, *, lifetime: dt.timedelta | None = None) -> tuple[str, ApiToken]:
    """Make a bearer token for a user (API_TOKEN_HOURS, or a shorter lifetime); store its digest."""
    token = STAFF_TOKEN_PREFIX + secrets.token_urlsafe(32)
    lifetime = lifetime or dt.timedelta(hours=current_app.config["API_TOKEN_HOURS"])
    row = ApiToken(
        token_hash=token_digest(token),
        user_id=user.id,
        expires_at=dt.datetime.now(dt.UTC) + lifetime,
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


DEVICE_COOKIE = "fieldsvc_device"
_DEVICE_SALT = "fieldsvc-known-device"


@dataclass(frozen=True)
class LoginPolicy:
    """Failed logins, counted in the audit log so every worker sees them (see the README).

    Guessing is slowed per username *and* caller (an address, or a known device): after
    `free` failures each further try waits `first_delay`, doubling up to `max_delay`. A
    stranger's failures therefore never slow the real user on their own device; an address
    trying many usernames waits after `per_address` failures; and once a username has
    `per_user` failures from unknown callers (a guess spread over many addresses), only
    unknown callers wait: a device that logged in before still logs in.
    """

    free: int
    first_delay: dt.timedelta
    max_delay: dt.timedelta
    per_address: int
    per_user: int
    window: dt.timedelta

    def delay(self, failures: int) -> dt.timedelta:
        if failures < self.free:
            return dt.timedelta(0)
        return min(self.first_delay * 2 ** (failures - self.free), self.max_delay)


def _login_policy() -> LoginPolicy:
    config = current_app.config
    return LoginPolicy(
        free=int(config["LOGIN_FREE_FAILURES"]),
        first_delay=dt.timedelta(seconds=int(config["LOGIN_FIRST_DELAY_SECONDS"])),
        max_delay=dt.timedelta(seconds=int(config["LOGIN_MAX_DELAY_SECONDS"])),
        per_address=int(config["LOGIN_MAX_FAILURES_PER_IP"]),
        per_user=int(config["LOGIN_MAX_FAILURES_PER_USER"]),
        window=dt.timedelta(hours=int(config["LOGIN_WINDOW_HOURS"])),
    )


def _too_many_logins(seconds: int) -> str:
    if seconds < 120:
        return _("Too many failed logins; wait %(seconds)s seconds before trying again.",
                 seconds=seconds)
    return _("Too many failed logins; wait %(minutes)s minutes before trying again.",
             minutes=max(1, -(-seconds // 60)))


def _device_serializer() -> Any:
    from itsdangerous import URLSafeSerializer

    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_DEVICE_SALT)


def known_device(username: str) -> str | None:
    """The id of this browser or client if it logged in as `username` before, else None."""
    if not has_request_context():
        return None
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        user_id, nonce = _device_serializer().loads(raw)
    except Exception:  # noqa: BLE001 - a forged or stale cookie is simply not a known device
        return None
    user = db.session.get(User, user_id) if isinstance(user_id, int) else None
    if user is None or user.username != username or not isinstance(nonce, str):
        return None
    return f"device:{nonce[:40]}"


def _remember_device(user: User) -> None:
    """After a successful login, let this browser or client prove it is a known device."""
    from flask import after_this_request

    if not has_request_context():
        return
    value = _device_serializer().dumps([user.id, secrets.token_urlsafe(16)])
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))

    @after_this_request
    def _set(response: Any) -> Any:
        response.set_cookie(DEVICE_COOKIE, value, max_age=365 * 24 * 3600, httponly=True,
                            secure=secure, samesite="Lax")
        return response


def _wait(failures: int, last: dt.datetime | None, delay: dt.timedelta,
          now: dt.datetime) -> None:
    if not failures or last is None or delay <= dt.timedelta(0):
        return
    if last.tzinfo is None:  # SQLite gives back naive UTC
        last = last.replace(tzinfo=dt.UTC)
    remaining = math.ceil((last + delay - now).total_seconds())
    if remaining > 0:
        raise TooManyRequests(_too_many_logins(remaining), headers={"Retry-After": str(remaining)},
                              retry_after=remaining)


def check_login_throttle(username: str, ip: str | None, device: str | None = None) -> None:
    """Refuse a login attempt that must still wait (429 with Retry-After) under LoginPolicy."""
    policy = _login_policy()
    now = dt.datetime.now(dt.UTC)
    key = username[:64]
    caller = device or ip
    by_pair = (AuditEvent.object_id == key) & (AuditEvent.actor_id == caller)
    by_ip = AuditEvent.actor_id == ip
    by_user_unknown = (AuditEvent.object_id == key) & ~AuditEvent.actor_id.like("device:%")
    (pair, pair_last, address, address_oldest, anywhere,
     anywhere_last) = db.session.execute(
        select(
            func.count().filter(by_pair), func.max(AuditEvent.at).filter(by_pair),
            func.count().filter(by_ip), func.min(AuditEvent.at).filter(by_ip),
            func.count().filter(by_user_unknown), func.max(AuditEvent.at).filter(by_user_unknown),
        ).where(AuditEvent.action == LOGIN_FAILED, AuditEvent.at > now - policy.window,
                or_(AuditEvent.object_id == key, by_ip))
    ).one()
    _wait(pair, pair_last, policy.delay(pair), now)
    if device is not None:
        return  # a known device answers only for its own failures
    if ip is not None and address >= policy.per_address:
        # Guessing many usernames from one address: wait until the oldest failure leaves
        # the last 15 minutes' count.
        window = dt.timedelta(minutes=15)
        recent = db.session.execute(
            select(func.count(), func.min(AuditEvent.at)).where(
                AuditEvent.action == LOGIN_FAILED, by_ip, AuditEvent.at > now - window)).one()
        refuse_when_throttled(recent[0], recent[1], limit=policy.per_address, window=window,
                              now=now, message=_too_many_logins)
    if anywhere >= policy.per_user:
        _wait(anywhere, anywhere_last,
              policy.delay(policy.free + (anywhere - policy.per_user) // policy.free), now)


def record_login_failure(username: str, ip: str | None, device: str | None = None) -> None:
    """Remember a failed login (username and caller) for the audit log and the throttle."""
    db.session.add(AuditEvent(
        actor_kind="anonymous", actor_id=device or ip, action=LOGIN_FAILED,
        object_type="login", object_id=username[:64], detail={"ip": ip},
    ))


def spend(key: str, *, limit: int, window: dt.timedelta, message: Any) -> None:
    """Count one costly request under `key` (a caller), or answer 429 past `limit` per `window`.

    Counted in the database (throttle_hit), so every worker sees the same count; old hits are
    forgotten as new ones come.
    """
    now = dt.datetime.now(dt.UTC)
    count, oldest = db.session.execute(
        select(func.count(), func.min(ThrottleHit.at))
        .where(ThrottleHit.key == key, ThrottleHit.at > now - window)).one()
    refuse_when_throttled(count, oldest, limit=limit, window=window, now=now, message=message)
    db.session.execute(delete(ThrottleHit).where(ThrottleHit.at < now - window,
                                                 ThrottleHit.key == key))
    db.session.add(ThrottleHit(key=key[:100], at=now))
    db.session.flush()


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
    device = known_device(username)
    check_login_throttle(username, ip, device)
    user = authenticate(username, password)
    if user is None:
        record_login_failure(username, ip, device)
        return None
    record_login(user, method)
    _remember_device(user)
    return user


def start_web_session(user: User) -> str:
    """Open a server-side session for a browser; the cookie keeps the returned id."""
    token = secrets.token_urlsafe(32)
    db.session.add(WebSession(token_hash=token_digest(token), user_id=user.id))
    db.session.flush()
    return token


def token_user(digest: str) -> User | None:
    """The active user a staff bearer token (by its digest) stands for; None if no staff token
    has that digest; Unauthorized if it has expired or its user was deactivated."""
    # The token, its user and the user's regions in one query: every staff request runs it.
    api_token = db.session.scalars(
        select(ApiToken).where(ApiToken.token_hash == digest)
        .options(joinedload(ApiToken.user).joinedload(User.region_rows))).unique().first()
    if api_token is None:
        return None
    expires = api_token.expires_at
    if expires.tzinfo is None:  # SQLite gives back naive UTC
        expires = expires.replace(tzinfo=dt.UTC)
    if expires > dt.datetime.now(dt.UTC) and api_token.user.active:
        return api_token.user
    raise Unauthorized(_("This token has expired; ask for a new one: POST /api/v1/tokens "
                         "with your username and password."))


def web_session_user(token: str | None, user_id: Any) -> User | None:
    """The active user of a session that is still open, or None (ended, forged, another user)."""
    if not token or not isinstance(token, str) or not isinstance(user_id, int):
        return None
    row = db.session.scalar(select(WebSession).where(
        WebSession.token_hash == token_digest(token), WebSession.ended_at.is_(None)))
    if row is None or row.user_id != user_id:
        return None
    user = db.session.get(User, user_id)
    return user if user is not None and user.active else None


def logout(user: User, session_token: str | None) -> AuditEvent:
    """End this web session on the server (a replayed cookie then gets 401) and audit it."""
    if session_token:
        db.session.execute(
            update(WebSession).where(WebSession.token_hash == token_digest(session_token),
                                     WebSession.ended_at.is_(None))
            .values(ended_at=utcnow()))
    return audit("logout", object_type="user", object_id=user.id)


def end_access(user: User) -> int:
    """End every web session and delete every bearer token of a user; how many ended."""
    sessions = db.session.execute(
        update(WebSession).where(WebSession.user_id == user.id, WebSession.ended_at.is_(None))
        .values(ended_at=utcnow())).rowcount or 0
    tokens = db.session.execute(delete(ApiToken).where(ApiToken.user_id == user.id)).rowcount or 0
    return sessions + tokens


@dataclass
class UserChanges:
    """What an admin changes about a staff account; `sent` says which fields were given."""

    sent: frozenset[str] = field(default_factory=frozenset)
    role: str | None = None
    regions: list[str] = field(default_factory=list)
    organization: int | None = None
    active: bool = True
    display_name: str | None = None


def find_user(user_id: int) -> User:
    from fieldsvc.errors import NotFound

    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(_("No user has id %(id)s.", id=user_id))
    return user


def _check_regions(role: str, regions: list[str]) -> None:
    """A coordinator has regions, and each is a region code."""
    if role == "coordinator" and not regions:
        raise ValidationFailed(_("A coordinator needs at least one region."),
                               errors={"regions": [_("at least one region code")]})
    for code in regions:
        area = db.session.get(Area, code)
        if area is None or area.level != "region":
            raise ValidationFailed(
                _("%(code)r is not a region code (e.g. 08 for Drâa-Tafilalet).", code=code),
                errors={"regions": [_("unknown region %(code)s", code=code)]})


def update_user(user: User, changes: UserChanges) -> User:
    """Change a user's role, regions, organization, name or activity; a change of rights or a
    deactivation ends their sessions and tokens at once."""
    role = changes.role if "role" in changes.sent else user.role
    if role not in ROLES:
        raise ValidationFailed(_("Unknown role %(role)r; use one of %(roles)s.", role=role,
                                 roles=", ".join(ROLES)),
                               errors={"role": [_("one of %(roles)s", roles=", ".join(ROLES))]})
    regions = list(changes.regions) if "regions" in changes.sent else user.region_codes
    if role != "coordinator" and "regions" in changes.sent and regions:
        raise ValidationFailed(_("Only coordinators have regions."),
                               errors={"regions": [_("only for coordinators")]})
    if role != "coordinator":
        regions = []
    _check_regions(role, regions)
    organization_id = changes.organization if "organization" in changes.sent \
        else user.organization_id
    if organization_id is not None and db.session.get(Organization, organization_id) is None:
        raise ValidationFailed(_("No organization has id %(id)s.", id=organization_id),
                               errors={"organization": [_("unknown organization")]})
    active = changes.active if "active" in changes.sent else user.active
    before = {"role": user.role, "regions": user.region_codes,
              "organization": user.organization_id, "active": user.active}
    after = {"role": role, "regions": sorted(set(regions)), "organization": organization_id,
             "active": active}
    user.role, user.organization_id, user.active = role, organization_id, active
    if "display_name" in changes.sent and changes.display_name:
        user.display_name = changes.display_name
    if before["regions"] != after["regions"]:
        db.session.execute(delete(user_region).where(user_region.c.user_id == user.id))
        for code in after["regions"]:
            db.session.execute(user_region.insert().values(user_id=user.id, region_code=code))
    db.session.flush()
    db.session.expire(user, ["region_rows", "organization"])
    changed = sorted(key for key in before if before[key] != after[key])
    ended = end_access(user) if changed else 0
    audit("user.update", object_type="user", object_id=user.id, changed=changed,
          role=role, regions=after["regions"], active=active, access_ended=ended)
    return user


def reset_password(user: User, password: str) -> User:
    """Set a new password (under the policy) and end every session and token of the user."""
    check_password_policy(password, user.username)
    user.password_hash = generate_password_hash(password)
    ended = end_access(user)
    db.session.flush()
    audit("user.password_reset", object_type="user", object_id=user.id, access_ended=ended)
    return user


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
