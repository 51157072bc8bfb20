"""Shapes of caravans, sites, enrollments and volunteer profiles (meaning is in services)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, missing, post_load, validate, validates_schema

from fieldsvc.areas.schemas import COMMUNE_CODE
from fieldsvc.caravans.models import CARAVAN_STATUSES, MAX_CARAVAN_DAYS
from fieldsvc.caravans.services import (
    CaravanChanges,
    CaravanFilter,
    CaravanInput,
    EnrollmentInput,
    ProfileChanges,
    SiteInput,
)
from fieldsvc.db import ID_RANGE
from fieldsvc.fields import Day, VisibleText
from fieldsvc.pagination import DEFAULT_LIMIT, PageArgs

SPECIALTY_CODE = validate.Regexp(r"^[A-Z]{2,8}$", error=_l("Use a specialty code such as OPH or GEN."))

EXAMPLE_SITE = {"id": 1, "name": "École Al Amal", "commune": "08.587.01.13", "lat": 30.33,
                "lon": -5.84, "km_from_commune": 0.0}
EXAMPLE_CARAVAN = {
    "id": 12,
    "title": "Caravane médicale de Zagora",
    "commune": "08.587.01.13",
    "commune_name_fr": "Zagora",
    "commune_name_ar": "زاكورة",
    "region": "08",
    "organizers": [{"id": 1, "name": "Wahat Al-Khair"}],
    "sites": [EXAMPLE_SITE],
    "first_day": "2026-11-27",
    "last_day": "2026-11-28",
    "specialties": ["GEN", "OPH", "PED"],
    "status": "planned",
    "closed_at": None,
    "join_code": "K7QX-4MZP",
    "join_url": "https://fieldsvc.example.org/join/K7QX-4MZP",
    "created_at": "2026-11-01T09:30:00+00:00",
    "warnings": [],
    "clashes": [],
}


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class SiteInSchema(Schema):
    name = VisibleText(required=True, validate=validate.Length(1, 200),
                       metadata={"example": "École Al Amal"})
    location = fields.String(
        required=True,
        validate=validate.Length(3, 100),
        metadata={
            "description": (
                "A point as decimal degrees \"lat, lon\" or degrees-minutes-seconds text "
                "(30°19'48\"N 5°50'24\"W, or 30 19 48 N, 5 50 24 W). It must lie inside "
                "Morocco's bounding box (latitude 20.5 to 36.1, longitude -17.3 to -0.9) and "
                "within 50 km (geodesic) of the caravan's commune point."
            ),
            "example": "30°19'48\"N 5°50'24\"W",
        },
    )

    @post_load
    def _input(self, data: dict[str, Any], **kwargs: Any) -> SiteInput:
        return SiteInput(**data)


class CaravanCreateSchema(Schema):
    title = VisibleText(required=True, validate=validate.Length(3, 200),
                          metadata={"example": "Caravane médicale de Zagora"})
    organizers = fields.List(
        fields.Integer(strict=True, validate=ID_RANGE),
        load_default=list, validate=validate.Length(max=20),
        metadata={"description": "Organization ids; defaults to the creator's organization.",
                  "example": [1]},
    )
    commune = fields.String(required=True, validate=COMMUNE_CODE,
                            metadata={"example": "08.587.01.13"})
    sites = fields.List(fields.Nested(SiteInSchema), load_default=list,
                        validate=validate.Length(max=50))
    first_day = Day(required=True, metadata={"example": "2026-11-27"})
    last_day = Day(required=True, metadata={"example": "2026-11-28"})
    specialties = fields.List(
        fields.String(validate=SPECIALTY_CODE), required=True,
        validate=validate.Length(1, 40), metadata={"example": ["GEN", "OPH", "PED"]},
    )

    @validates_schema
    def _days_in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_days(data.get("first_day"), data.get("last_day"))

    @post_load
    def _input(self, data: dict[str, Any], **kwargs: Any) -> CaravanInput:
        return CaravanInput(**data)


def check_days(first: dt.date | None, last: dt.date | None) -> None:
    if first is None or last is None:
        return
    if last < first:
        raise ValidationError(_("The last day cannot come before the first day."), "last_day")
    if (last - first).days + 1 > MAX_CARAVAN_DAYS:
        raise ValidationError(_("A caravan lasts at most %(days)s days.", days=MAX_CARAVAN_DAYS),
                              "last_day")


class CaravanPatchSchema(Schema):
    title = VisibleText(validate=validate.Length(3, 200),
                          metadata={"example": "Caravane ophtalmologique de Zagora"})
    first_day = Day(metadata={"example": "2026-11-27"})
    last_day = Day(metadata={"example": "2026-11-29"})
    specialties = fields.List(fields.String(validate=SPECIALTY_CODE),
                              validate=validate.Length(1, 40),
                              metadata={"description": "Replaces the planned specialties.",
                                        "example": ["GEN", "OPH"]})
    sites = fields.List(fields.Nested(SiteInSchema), validate=validate.Length(max=50),
                        metadata={"description": "Sites to add (existing sites are kept)."})
    status = fields.String(
        validate=validate.OneOf(CARAVAN_STATUSES),
        metadata={"description": "Moves only forward: planned → active → closed.",
                  "example": "active"},
    )

    @post_load
    def _changes(self, data: dict[str, Any], **kwargs: Any) -> CaravanChanges:
        return CaravanChanges(sent=frozenset(data), **data)


class CaravanQuerySchema(PageArgs):
    limit = fields.Integer(load_default=DEFAULT_LIMIT, validate=validate.Range(1, 200),
                           metadata={"description": "Caravans per page, 1 to 200."})
    status = fields.String(validate=validate.OneOf(CARAVAN_STATUSES),
                           metadata={"example": "active"})
    region = fields.String(validate=validate.Regexp(r"^\d{2}$", error=_l("A region code, e.g. 08.")),
                           metadata={"example": "08"})
    commune = fields.String(validate=COMMUNE_CODE, metadata={"example": "08.587.01.13"})

    @post_load
    def _filter(self, data: dict[str, Any], **kwargs: Any) -> CaravanFilter:
        return CaravanFilter(**data)


class OrganizerSchema(Schema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"example": "Wahat Al-Khair"})


class SiteSchema(Schema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"example": "École Al Amal"})
    commune = fields.String(attribute="commune_code", metadata={"example": "08.587.01.13"})
    lat = fields.Float(metadata={"example": 30.33})
    lon = fields.Float(metadata={"example": -5.84})
    km_from_commune = fields.Float(
        allow_none=True,
        metadata={"description": "Geodesic km to the commune's point; null when the commune "
                                 "has no known point.", "example": 0.4},
    )


class ClashCaravanSchema(Schema):
    """Another caravan, as a clash names it (caravan metadata is not health data)."""

    id = fields.Integer(metadata={"example": 14})
    title = fields.String(metadata={"example": "Caravane de Tamegroute"})
    commune = fields.String(attribute="commune_code", metadata={"example": "08.587.01.13"})
    commune_name_fr = fields.String(attribute="commune.name_fr", metadata={"example": "Zagora"})
    first_day = fields.Date(metadata={"example": "2026-11-30"})
    last_day = fields.Date(metadata={"example": "2026-12-01"})
    status = fields.String(metadata={"example": "planned"})
    organizers = fields.List(fields.Nested(OrganizerSchema))


class ClashSchema(Schema):
    """Another caravan within CLASH_KM km and CLASH_DAYS days of this one."""

    caravan = fields.Nested(ClashCaravanSchema, attribute="other")
    km = fields.Float(metadata={"description": "Geodesic km between the nearest points of the "
                                               "two caravans.", "example": 10.2})
    days_apart = fields.Integer(metadata={"description": "0 when their days overlap.",
                                          "example": 2})
    message = fields.String(metadata={"example": "Caravan 14 “Caravane de Tamegroute” … works "
                                                 "10.2 km away, 2 days apart; …"})


class NotificationSchema(ClashSchema):
    """A clash that concerns one of the caller's caravans."""

    kind = fields.Constant("clash", metadata={"type": "string", "example": "clash"})
    about = fields.Nested(ClashCaravanSchema, attribute="caravan")


class CaravanSchema(Schema):
    """A CaravanView: the caravan, and its join code only for those who run it."""

    id = fields.Integer(attribute="caravan.id", metadata={"example": 12})
    title = fields.String(attribute="caravan.title",
                          metadata={"example": "Caravane médicale de Zagora"})
    commune = fields.String(attribute="caravan.commune_code", metadata={"example": "08.587.01.13"})
    commune_name_fr = fields.String(attribute="caravan.commune.name_fr",
                                    metadata={"example": "Zagora"})
    commune_name_ar = fields.String(attribute="caravan.commune.name_ar",
                                    metadata={"example": "زاكورة"})
    region = fields.String(attribute="caravan.region_code", metadata={"example": "08"})
    organizers = fields.List(fields.Nested(OrganizerSchema), attribute="caravan.organizers")
    sites = fields.List(fields.Nested(SiteSchema), attribute="caravan.sites")
    first_day = fields.Date(attribute="caravan.first_day", metadata={"example": "2026-11-27"})
    last_day = fields.Date(attribute="caravan.last_day", metadata={"example": "2026-11-28"})
    specialties = fields.List(fields.String(), attribute="caravan.specialties",
                              metadata={"example": ["GEN", "OPH", "PED"]})
    status = fields.String(attribute="caravan.status", metadata={"example": "planned"})
    closed_at = fields.DateTime(attribute="caravan.closed_at", allow_none=True)
    created_at = fields.DateTime(attribute="caravan.created_at")
    join_code = fields.Method(
        "_join_code", metadata={"type": "string", "example": "K7QX-4MZP",
                                "description": "Shown only to admins and the caravan's "
                                               "coordinators."})
    join_url = fields.Method(
        "_join_url", metadata={"type": "string",
                               "example": "https://fieldsvc.example.org/join/K7QX-4MZP"})
    warnings = fields.Method(
        "_warnings",
        metadata={"type": "array", "items": {"type": "string"},
                  "description": "What was accepted but deserves a look (e.g. a commune "
                                 "without a known point, so sites were not checked against it)."},
    )

    # Hidden values leave their keys out rather than answer null.
    def _join_code(self, view: Any) -> Any:
        return missing if view.join_code is None else view.join_code

    def _join_url(self, view: Any) -> Any:
        return missing if view.join_url is None else view.join_url

    clashes = fields.Method(
        "_clashes",
        metadata={"type": "array", "items": {"type": "object"},
                  "description": "Other caravans within 30 km and 14 days (CLASH_KM, "
                                 "CLASH_DAYS): each is also a line of `warnings`."})

    def _warnings(self, view: Any) -> Any:
        return missing if view.warnings is None else view.warnings

    def _clashes(self, view: Any) -> Any:
        return missing if view.clashes is None else ClashSchema(many=True).dump(view.clashes)


class JoinCodeSchema(Schema):
    join_code = fields.String(metadata={"example": "K7QX-4MZP"})
    join_url = fields.String(metadata={"example": "https://fieldsvc.example.org/join/K7QX-4MZP"})


class EnrollmentCreateSchema(Schema):
    join_code = fields.String(
        required=True, validate=validate.Length(1, 40),
        metadata={"description": "Case, spaces and dashes do not matter.", "example": "k7qx 4mzp"},
    )
    display_name = VisibleText(required=True, validate=validate.Length(1, 120),
                                 metadata={"example": "Dr Amina Bennani"})
    specialty = fields.String(load_default=None, allow_none=True, validate=SPECIALTY_CODE,
                              metadata={"example": "OPH"})
    profile_key = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(10, 100),
        metadata={"description": "The key a previous enrollment returned; re-attaches that "
                                 "volunteer profile.", "example": "pk_9V0b2…"},
    )
    create_profile = fields.Boolean(
        load_default=False,
        metadata={"description": "Create a volunteer profile and return its profile_key.",
                  "example": True},
    )
    public_consent = fields.Boolean(
        load_default=False,
        metadata={"description": "For a new profile: may the volunteer be named publicly?",
                  "example": False},
    )

    @validates_schema
    def _key_or_create(self, data: dict[str, Any], **kwargs: Any) -> None:
        data["display_name"] = _strip(data.get("display_name"))
        if not data.get("display_name"):
            raise ValidationError(str(_l("Give a name the coordinator will recognise.")),
                                  "display_name")
        if data.get("profile_key") and data.get("create_profile"):
            raise ValidationError(
                str(_l("Send either profile_key (to re-attach a profile) or create_profile, "
                       "not both.")),
                "create_profile",
            )

    @post_load
    def _input(self, data: dict[str, Any], **kwargs: Any) -> EnrollmentInput:
        return EnrollmentInput(**data)


class VolunteerSchema(Schema):
    id = fields.Integer(metadata={"example": 3})
    display_name = fields.String(metadata={"example": "Dr Amina Bennani"})
    specialty = fields.String(allow_none=True, attribute="specialty_code",
                              metadata={"example": "OPH"})
    public_consent = fields.Boolean(metadata={"example": False})
    created_at = fields.DateTime()


class VolunteerProfileSchema(Schema):
    """A VolunteerProfile: the volunteer, their caravans, and a new profile's key once."""

    id = fields.Integer(attribute="volunteer.id", metadata={"example": 3})
    display_name = fields.String(attribute="volunteer.display_name",
                                 metadata={"example": "Dr Amina Bennani"})
    specialty = fields.String(allow_none=True, attribute="volunteer.specialty_code",
                              metadata={"example": "OPH"})
    public_consent = fields.Boolean(attribute="volunteer.public_consent",
                                    metadata={"example": False})
    created_at = fields.DateTime(attribute="volunteer.created_at")
    caravans = fields.List(fields.Nested(lambda: CaravanRefSchema()))
    profile_key = fields.Method(
        "_profile_key",
        metadata={"type": "string", "example": "pk_9V0b2…",
                  "description": "Only when the profile was just created: keep it on the phone."})

    def _profile_key(self, profile: Any) -> Any:
        return missing if profile.profile_key is None else profile.profile_key


class VolunteerPatchSchema(Schema):
    display_name = VisibleText(validate=validate.Length(1, 120),
                                 metadata={"example": "Dr Amina Bennani"})
    specialty = fields.String(allow_none=True, validate=SPECIALTY_CODE,
                              metadata={"example": "OPH"})
    public_consent = fields.Boolean(metadata={"example": True})

    @post_load
    def _changes(self, data: dict[str, Any], **kwargs: Any) -> ProfileChanges:
        return ProfileChanges(sent=frozenset(data), **data)


class VolunteerCreateSchema(Schema):
    display_name = VisibleText(validate=validate.Length(1, 120),
                               metadata={"example": "Dr Amina Bennani",
                                         "description": "Defaults to the enrollment's name."})
    specialty = fields.String(allow_none=True, validate=SPECIALTY_CODE,
                              metadata={"example": "OPH"})
    public_consent = fields.Boolean(load_default=False, metadata={"example": False})

    @post_load
    def _changes(self, data: dict[str, Any], **kwargs: Any) -> ProfileChanges:
        return ProfileChanges(sent=frozenset(data), **data)


class SiteBriefSchema(Schema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"example": "École Al Amal"})
    lat = fields.Float(metadata={"example": 30.33})
    lon = fields.Float(metadata={"example": -5.84})


class CaravanRefSchema(Schema):
    id = fields.Integer(metadata={"example": 12})
    title = fields.String(metadata={"example": "Caravane médicale de Zagora"})
    first_day = fields.Date(metadata={"example": "2026-11-27"})
    last_day = fields.Date(metadata={"example": "2026-11-28"})
    status = fields.String(metadata={"example": "active"})


class CaravanBriefSchema(Schema):
    """What a volunteer's phone needs to know about its caravan."""

    id = fields.Integer(metadata={"example": 12})
    title = fields.String(metadata={"example": "Caravane médicale de Zagora"})
    commune = fields.String(attribute="commune_code", metadata={"example": "08.587.01.13"})
    first_day = fields.Date(metadata={"example": "2026-11-27"})
    last_day = fields.Date(metadata={"example": "2026-11-28"})
    specialties = fields.List(fields.String(), metadata={"example": ["GEN", "OPH", "PED"]})
    sites = fields.List(fields.Nested(SiteBriefSchema))
    status = fields.String(metadata={"example": "active"})


class EnrolledSchema(Schema):
    """An Enrolled: the device's token, its caravan, and a new profile's key once."""

    token = fields.String(
        metadata={"description": "Bearer token for this caravan; shown once.",
                  "example": "b1Jx…"})
    enrollment_id = fields.Integer(attribute="enrollment.id", metadata={"example": 41})
    caravan = fields.Nested(CaravanBriefSchema, attribute="enrollment.caravan")
    volunteer = fields.Nested(VolunteerSchema, attribute="enrollment.volunteer", allow_none=True)
    profile_key = fields.Method(
        "_profile_key",
        metadata={"type": "string", "example": "pk_9V0b2…",
                  "description": "Only when create_profile was true: keep it to re-attach the "
                                 "profile at the next caravan."})

    def _profile_key(self, enrolled: Any) -> Any:
        return missing if enrolled.profile_key is None else enrolled.profile_key


class EnrollmentSchema(Schema):
    """A DeviceStatus: an enrolled device and whether its token still works."""

    id = fields.Integer(attribute="enrollment.id", metadata={"example": 41})
    caravan_id = fields.Integer(attribute="enrollment.caravan_id", metadata={"example": 12})
    display_name = fields.String(attribute="enrollment.display_name",
                                 metadata={"example": "Dr Amina Bennani"})
    specialty = fields.String(allow_none=True, attribute="enrollment.specialty_code",
                              metadata={"example": "OPH"})
    volunteer_id = fields.Integer(attribute="enrollment.volunteer_id", allow_none=True,
                                  metadata={"example": 3})
    created_at = fields.DateTime(attribute="enrollment.created_at")
    revoked_at = fields.DateTime(attribute="enrollment.revoked_at", allow_none=True)
    live = fields.Boolean(metadata={"description": "Whether the token still works.",
                                    "example": True})
