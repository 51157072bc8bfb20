"""Shapes of caravans, sites, enrollments and volunteer profiles (meaning is in services)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from fieldsvc.caravans.models import CARAVAN_STATUSES

SPECIALTY_CODE = validate.Regexp(r"^[A-Z]{2,8}$", error="Use a specialty code such as OPH or GEN.")
COMMUNE_CODE = validate.Regexp(
    r"^\d{2}\.\d{3}\.\d{2}\.\d{2}$", error="Use the commune's HCP code, e.g. 08.587.01.13."
)
MAX_CARAVAN_DAYS = 31

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
}


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class SiteInSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200),
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


class CaravanCreateSchema(Schema):
    title = fields.String(required=True, validate=validate.Length(3, 200),
                          metadata={"example": "Caravane médicale de Zagora"})
    organizers = fields.List(
        fields.Integer(strict=True, validate=validate.Range(1, 2**31 - 1, error="Not a known id.")),
        load_default=list, validate=validate.Length(max=20),
        metadata={"description": "Organization ids; defaults to the creator's organization.",
                  "example": [1]},
    )
    commune = fields.String(required=True, validate=COMMUNE_CODE,
                            metadata={"example": "08.587.01.13"})
    sites = fields.List(fields.Nested(SiteInSchema), load_default=list,
                        validate=validate.Length(max=50))
    first_day = fields.Date(required=True, metadata={"example": "2026-11-27"})
    last_day = fields.Date(required=True, metadata={"example": "2026-11-28"})
    specialties = fields.List(
        fields.String(validate=SPECIALTY_CODE), required=True,
        validate=validate.Length(1, 40), metadata={"example": ["GEN", "OPH", "PED"]},
    )

    @validates_schema
    def _days_in_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        check_days(data.get("first_day"), data.get("last_day"))


def check_days(first: dt.date | None, last: dt.date | None) -> None:
    if first is None or last is None:
        return
    if last < first:
        raise ValidationError("The last day cannot come before the first day.", "last_day")
    if (last - first).days + 1 > MAX_CARAVAN_DAYS:
        raise ValidationError(f"A caravan lasts at most {MAX_CARAVAN_DAYS} days.", "last_day")


class CaravanPatchSchema(Schema):
    title = fields.String(validate=validate.Length(3, 200),
                          metadata={"example": "Caravane ophtalmologique de Zagora"})
    first_day = fields.Date(metadata={"example": "2026-11-27"})
    last_day = fields.Date(metadata={"example": "2026-11-29"})
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


class CaravanQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(CARAVAN_STATUSES),
                           metadata={"example": "active"})
    region = fields.String(validate=validate.Regexp(r"^\d{2}$", error="A region code, e.g. 08."),
                           metadata={"example": "08"})
    commune = fields.String(validate=COMMUNE_CODE, metadata={"example": "08.587.01.13"})


class OrganizerSchema(Schema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"example": "Wahat Al-Khair"})


class SiteSchema(Schema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"example": "École Al Amal"})
    commune = fields.String(metadata={"example": "08.587.01.13"})
    lat = fields.Float(metadata={"example": 30.33})
    lon = fields.Float(metadata={"example": -5.84})
    km_from_commune = fields.Float(
        allow_none=True,
        metadata={"description": "Geodesic km to the commune's point; null when the commune "
                                 "has no known point.", "example": 0.4},
    )


class CaravanSchema(Schema):
    id = fields.Integer(metadata={"example": 12})
    title = fields.String(metadata={"example": "Caravane médicale de Zagora"})
    commune = fields.String(metadata={"example": "08.587.01.13"})
    commune_name_fr = fields.String(metadata={"example": "Zagora"})
    commune_name_ar = fields.String(metadata={"example": "زاكورة"})
    region = fields.String(metadata={"example": "08"})
    organizers = fields.List(fields.Nested(OrganizerSchema))
    sites = fields.List(fields.Nested(SiteSchema))
    first_day = fields.Date(metadata={"example": "2026-11-27"})
    last_day = fields.Date(metadata={"example": "2026-11-28"})
    specialties = fields.List(fields.String(), metadata={"example": ["GEN", "OPH", "PED"]})
    status = fields.String(metadata={"example": "planned"})
    closed_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime()
    join_code = fields.String(
        metadata={"description": "Shown only to admins and the caravan's coordinators.",
                  "example": "K7QX-4MZP"})
    join_url = fields.String(metadata={"example": "https://fieldsvc.example.org/join/K7QX-4MZP"})
    warnings = fields.List(
        fields.String(),
        metadata={"description": "What was accepted but deserves a look (e.g. a commune "
                                 "without a known point, so sites were not checked against it)."},
    )


class JoinCodeSchema(Schema):
    join_code = fields.String(metadata={"example": "K7QX-4MZP"})
    join_url = fields.String(metadata={"example": "https://fieldsvc.example.org/join/K7QX-4MZP"})


class EnrollmentCreateSchema(Schema):
    join_code = fields.String(
        required=True, validate=validate.Length(1, 40),
        metadata={"description": "Case, spaces and dashes do not matter.", "example": "k7qx 4mzp"},
    )
    display_name = fields.String(required=True, validate=validate.Length(1, 120),
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
                "Send either profile_key (to re-attach a profile) or create_profile, not both.",
                "create_profile",
            )


class VolunteerSchema(Schema):
    id = fields.Integer(metadata={"example": 3})
    display_name = fields.String(metadata={"example": "Dr Amina Bennani"})
    specialty = fields.String(allow_none=True, attribute="specialty_code",
                              metadata={"example": "OPH"})
    public_consent = fields.Boolean(metadata={"example": False})
    created_at = fields.DateTime()


class VolunteerProfileSchema(VolunteerSchema):
    caravans = fields.List(fields.Nested(lambda: CaravanRefSchema()))
    profile_key = fields.String(
        metadata={"description": "Only when the profile was just created: keep it on the phone.",
                  "example": "pk_9V0b2…"})


class VolunteerPatchSchema(Schema):
    display_name = fields.String(validate=validate.Length(1, 120),
                                 metadata={"example": "Dr Amina Bennani"})
    specialty = fields.String(allow_none=True, validate=SPECIALTY_CODE,
                              metadata={"example": "OPH"})
    public_consent = fields.Boolean(metadata={"example": True})


class VolunteerCreateSchema(Schema):
    display_name = fields.String(metadata={"example": "Dr Amina Bennani",
                                           "description": "Defaults to the enrollment's name."})
    specialty = fields.String(allow_none=True, validate=SPECIALTY_CODE,
                              metadata={"example": "OPH"})
    public_consent = fields.Boolean(load_default=False, metadata={"example": False})


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
    commune = fields.String(metadata={"example": "08.587.01.13"})
    first_day = fields.Date(metadata={"example": "2026-11-27"})
    last_day = fields.Date(metadata={"example": "2026-11-28"})
    specialties = fields.List(fields.String(), metadata={"example": ["GEN", "OPH", "PED"]})
    sites = fields.List(fields.Nested(SiteBriefSchema))
    status = fields.String(metadata={"example": "active"})


class EnrolledSchema(Schema):
    token = fields.String(
        metadata={"description": "Bearer token for this caravan; shown once.",
                  "example": "b1Jx…"})
    enrollment_id = fields.Integer(metadata={"example": 41})
    caravan = fields.Nested(CaravanBriefSchema)
    volunteer = fields.Nested(VolunteerSchema, allow_none=True)
    profile_key = fields.String(
        metadata={"description": "Only when create_profile was true: keep it to re-attach the "
                                 "profile at the next caravan.", "example": "pk_9V0b2…"})


class EnrollmentSchema(Schema):
    id = fields.Integer(metadata={"example": 41})
    caravan_id = fields.Integer(metadata={"example": 12})
    display_name = fields.String(metadata={"example": "Dr Amina Bennani"})
    specialty = fields.String(allow_none=True, attribute="specialty_code",
                              metadata={"example": "OPH"})
    volunteer_id = fields.Integer(allow_none=True, metadata={"example": 3})
    created_at = fields.DateTime()
    revoked_at = fields.DateTime(allow_none=True)
    live = fields.Boolean(metadata={"description": "Whether the token still works.",
                                    "example": True})
