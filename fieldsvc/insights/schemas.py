"""Shapes of the insights API's parameters (meaning is checked in the services)."""

from marshmallow import Schema, fields, validate

from fieldsvc.insights.needs import DEFAULT_WINDOW_MONTHS, LEVELS


class SummaryArgs(Schema):
    by = fields.String(
        metadata={"description": "Comma-separated dimensions, e.g. province,specialty"}
    )
    region = fields.String(metadata={"description": "Region codes, comma-separated"})
    province = fields.String()
    commune = fields.String()
    caravan = fields.String(metadata={"description": "Caravan ids, comma-separated"})
    organization = fields.String(metadata={"description": "Organization ids, comma-separated"})
    specialty = fields.String()
    measure = fields.String(metadata={"description": "Default: consultations"})
    sex = fields.String()
    age_band = fields.String()
    status = fields.String(metadata={"description": "Review statuses: received, approved, flagged"})
    from_ = fields.Date(data_key="from")
    to = fields.Date()


class PublicSummaryArgs(Schema):
    measure = fields.String()
    from_ = fields.Date(data_key="from")
    to = fields.Date()


class NeedsArgs(Schema):
    specialty = fields.String(required=True)
    level = fields.String(load_default="commune", validate=validate.OneOf(LEVELS))
    window_months = fields.Integer(
        validate=validate.Range(1, 120),
        metadata={"description": f"Admins only (default {DEFAULT_WINDOW_MONTHS}); everyone else "
                  "gets the protected release's window"})
    weights = fields.String(metadata={"description": "e.g. demand:1,unmet:2,access:1"})
    region = fields.String()
    province = fields.String()
    as_of = fields.Date(metadata={"description": "End of the window (admins only; default today)"})
    limit = fields.Integer(validate=validate.Range(1, 5000))


class PlanSchema(Schema):
    base = fields.String(required=True, validate=validate.Length(1, 100),
                         metadata={"description": "Commune code or 'lat, lon'"})
    radius_km = fields.Float(required=True, validate=validate.Range(1, 1000))
    days = fields.Integer(required=True, validate=validate.Range(1, 30))
    team = fields.Dict(keys=fields.String(), values=fields.Integer(validate=validate.Range(0, 200)),
                       required=True)
    capacity_per_doctor_day = fields.Float(validate=validate.Range(1, 500))
    stops_per_day = fields.Integer(validate=validate.Range(1, 6))
    window_months = fields.Integer(validate=validate.Range(1, 120))
