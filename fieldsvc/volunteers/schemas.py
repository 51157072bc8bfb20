"""Shapes of contributions, certificates and pledges (meaning is in services)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, post_load, validate

from fieldsvc.caravans.schemas import SPECIALTY_CODE
from fieldsvc.volunteers.services import (
    CONTRIBUTION_KINDS,
    ContributionQuery,
    PledgeInput,
    caravan_days,
)


class ContributionArgs(Schema):
    by = fields.String(load_default="organization", validate=validate.OneOf(CONTRIBUTION_KINDS),
                       metadata={"description": "organization, partnership (organizations that "
                                                "organized caravans together) or volunteer."})
    year = fields.Integer(load_default=None, validate=validate.Range(2000, 2100),
                          metadata={"description": "Only caravans whose first day falls in this "
                                                   "year.", "example": 2026})

    @post_load
    def _query(self, data: dict[str, Any], **kwargs: Any) -> ContributionQuery:
        return ContributionQuery(**data)


class ContributorOrganizationSchema(Schema):
    id = fields.Integer(metadata={"example": 1})
    name = fields.String(metadata={"example": "Wahat Al-Khair"})
    name_ar = fields.String(allow_none=True, metadata={"example": "واحة الخير"})
    kind = fields.String(metadata={"example": "association"})


class HeldCaravanSchema(Schema):
    id = fields.Integer(metadata={"example": 3})
    title = fields.String(metadata={"example": "Caravane de Ouahat Sidi Brahim"})
    commune = fields.String(attribute="commune_code", metadata={"example": "07.351.02.07"})
    first_day = fields.Date(metadata={"example": "2026-03-14"})
    last_day = fields.Date(metadata={"example": "2026-03-16"})
    days = fields.Method("_days", metadata={"type": "integer", "example": 3})
    specialties = fields.List(fields.String(), metadata={"example": ["GEN", "OPH"]})

    def _days(self, caravan: Any) -> int:
        return caravan_days(caravan)


class ContributionSchema(Schema):
    kind = fields.String(metadata={"example": "organization"})
    key = fields.String(metadata={"description": "Organization id, member ids joined by '-', "
                                                 "or volunteer id.", "example": "1"})
    name = fields.String(metadata={"example": "Wahat Al-Khair"})
    name_ar = fields.String(allow_none=True, metadata={"example": "واحة الخير"})
    organizations = fields.List(fields.Nested(ContributorOrganizationSchema))
    volunteer_id = fields.Integer(allow_none=True, metadata={"example": None})
    specialty = fields.String(allow_none=True, metadata={"example": None})
    caravans = fields.Integer(metadata={"example": 4})
    caravan_ids = fields.List(fields.Integer(), metadata={"example": [3, 5, 8, 12]})
    days = fields.Integer(metadata={"example": 8})
    communes_reached = fields.Integer(metadata={"example": 3})
    communes = fields.List(fields.String(), metadata={"example": ["07.351.02.07"]})
    specialties = fields.List(fields.String(), metadata={"example": ["GEN", "OPH"]})
    first_day = fields.Date(allow_none=True)
    last_day = fields.Date(allow_none=True)
    consultations = fields.Integer(
        allow_none=True, metadata={"description": "Null unless you have full detail for this "
                                                  "row (see suppressed).", "example": 2140})
    procedures = fields.Integer(allow_none=True, metadata={"example": 96})
    full_detail = fields.Boolean(metadata={"example": True})
    suppressed = fields.String(allow_none=True, metadata={"example": None})
    history = fields.List(fields.Nested(HeldCaravanSchema), metadata={
        "description": "Partnership rows only: the caravans its members held together (title, "
                       "days, commune, specialties brought), oldest first; empty otherwise."})


class ContributionsSchema(Schema):
    by = fields.String(metadata={"example": "organization"})
    year = fields.Integer(allow_none=True, metadata={"example": None})
    rows = fields.List(fields.Nested(ContributionSchema))
    row_count = fields.Integer(metadata={"example": 1})


class PledgeCreateSchema(Schema):
    join_code = fields.String(required=True, validate=validate.Length(1, 40),
                              metadata={"description": "The caravan's join code, from its "
                                                       "pledge link.", "example": "K7QX-4MZP"})
    display_name = fields.String(required=True, validate=validate.Length(1, 120),
                                 metadata={"example": "Dr Amina Bennani"})
    specialty = fields.String(required=True, validate=SPECIALTY_CODE,
                              metadata={"description": "One of the caravan's planned "
                                                       "specialties.", "example": "OPH"})
    profile_key = fields.String(load_default=None, allow_none=True,
                                validate=validate.Length(10, 100),
                                metadata={"description": "A volunteer profile's key, so the "
                                                         "pledge counts for that profile."})

    @post_load
    def _input(self, data: dict[str, Any], **kwargs: Any) -> PledgeInput:
        return PledgeInput(**data)


class PledgeSchema(Schema):
    id = fields.Integer(metadata={"example": 7})
    caravan_id = fields.Integer(metadata={"example": 12})
    specialty = fields.String(attribute="specialty_code", metadata={"example": "OPH"})
    display_name = fields.String(metadata={"example": "Dr Amina Bennani"})
    volunteer_id = fields.Integer(allow_none=True, metadata={"example": None})
    enrollment_id = fields.Integer(allow_none=True, metadata={
        "description": "Set once the caravan started and the pledge became an enrollment.",
        "example": None})
    created_at = fields.DateTime()


class PledgedSchema(Schema):
    pledge = fields.Nested(PledgeSchema)
    token = fields.String(metadata={
        "description": "Shown once: when the caravan starts, the pledge becomes an enrollment "
                       "and this is its device bearer token.", "example": "Zr8…"})


class SpecialtyStaffingSchema(Schema):
    specialty = fields.String(metadata={"example": "OPH"})
    pledged = fields.Integer(metadata={"example": 1})
    enrolled = fields.Integer(metadata={"example": 0})
    gap = fields.Boolean(metadata={"description": "Nobody pledged or enrolled for it yet.",
                                   "example": False})


class StaffingSchema(Schema):
    caravan_id = fields.Integer(attribute="caravan.id", metadata={"example": 12})
    status = fields.String(attribute="caravan.status", metadata={"example": "planned"})
    specialties = fields.List(fields.Nested(SpecialtyStaffingSchema))
    gaps = fields.List(fields.String(), metadata={"example": ["PED"]})
    pledge_url = fields.String(metadata={
        "example": "https://fieldsvc.example.org/pledge/K7QX-4MZP"})
    pledges = fields.List(fields.Nested(PledgeSchema))


class CaravanServedSchema(Schema):
    id = fields.Integer(attribute="caravan.id", metadata={"example": 12})
    title = fields.String(attribute="caravan.title",
                          metadata={"example": "Caravane de Ouahat Sidi Brahim"})
    commune = fields.String(attribute="caravan.commune_code", metadata={"example": "07.351.02.07"})
    status = fields.String(attribute="caravan.status", metadata={"example": "closed"})
    first_day = fields.Date(attribute="caravan.first_day")
    last_day = fields.Date(attribute="caravan.last_day")
    days = fields.Integer(metadata={"example": 3})
    consultations = fields.Integer(metadata={
        "description": "Recorded by this volunteer's own devices.", "example": 43})
    procedures = fields.Integer(metadata={"example": 2})


class OwnCertificateSchema(Schema):
    scope = fields.String(metadata={"example": "caravan"})
    caravan_id = fields.Method("_caravan_id", metadata={"type": "integer", "nullable": True,
                                                        "example": 12})
    year = fields.Integer(allow_none=True, metadata={"example": None})
    code = fields.String(metadata={"example": "3-C12-K7QX4MZP"})
    certificate_url = fields.Method("_certificate_url", metadata={
        "type": "string", "example": "/certificates/3-C12-K7QX4MZP"})
    verify_url = fields.Method("_verify_url", metadata={
        "type": "string", "example": "/verify/3-C12-K7QX4MZP"})

    def _caravan_id(self, certificate: Any) -> int | None:
        return certificate.caravan.id if certificate.caravan is not None else None

    def _certificate_url(self, certificate: Any) -> str:
        return f"/certificates/{certificate.code}"

    def _verify_url(self, certificate: Any) -> str:
        return f"/verify/{certificate.code}"


class VolunteerRecordSchema(Schema):
    id = fields.Integer(attribute="volunteer.id", metadata={"example": 3})
    display_name = fields.String(attribute="volunteer.display_name",
                                 metadata={"example": "Dr Amina Bennani"})
    specialty = fields.String(attribute="volunteer.specialty_code", allow_none=True,
                              metadata={"example": "OPH"})
    public_consent = fields.Boolean(attribute="volunteer.public_consent", metadata={
        "description": "Named on public pages; change it with PATCH /api/v1/volunteers/me.",
        "example": True})
    days = fields.Integer(metadata={"example": 5})
    consultations = fields.Integer(metadata={"example": 86})
    procedures = fields.Integer(metadata={"example": 4})
    caravans = fields.List(fields.Nested(CaravanServedSchema))
    certificates = fields.List(fields.Nested(OwnCertificateSchema))
