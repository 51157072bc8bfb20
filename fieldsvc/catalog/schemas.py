"""Shapes of catalog entries."""

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from fieldsvc.fields import VisibleText

CODE = validate.Regexp(r"^[A-Z]{2,8}$", error=_l("Use 2 to 8 capital letters, e.g. NEP."))
MEASURE_CODE = validate.Regexp(
    r"^[a-z][a-z_]{1,31}$", error=_l("Use lower-case letters and _, e.g. vaccinations.")
)


class SpecialtySchema(Schema):
    code = fields.String(required=True, validate=CODE)
    label_fr = VisibleText(required=True, validate=validate.Length(1, 120))
    label_ar = VisibleText(required=True, validate=validate.Length(1, 120))
    label_en = VisibleText(required=True, validate=validate.Length(1, 120))
    needs_hospital = fields.Boolean(load_default=True)


class MeasureSchema(Schema):
    code = fields.String(required=True, validate=MEASURE_CODE)
    label_fr = VisibleText(required=True, validate=validate.Length(1, 120))
    label_ar = VisibleText(required=True, validate=validate.Length(1, 120))
    label_en = VisibleText(required=True, validate=validate.Length(1, 120))


class LabelledCodeSchema(Schema):
    code = fields.String()
    label_fr = fields.String()
    label_ar = fields.String()
    label_en = fields.String()


class CatalogSchema(Schema):
    specialties = fields.List(fields.Nested(SpecialtySchema))
    measures = fields.List(fields.Nested(MeasureSchema))
    sexes = fields.List(fields.Nested(LabelledCodeSchema))
    age_bands = fields.List(fields.String())
    conditions = fields.List(fields.Nested(LabelledCodeSchema))
