"""Shapes of areas in the API."""

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, validate

from fieldsvc.areas.models import LEVELS
from fieldsvc.pagination import PageArgs

# HCP commune codes: region.province.circle.commune; the six big-city communes (Rabat, Salé,
# Casablanca, Fès, Marrakech, Tanger) end in a single digit ("07.351.01.0").
COMMUNE_CODE_PATTERN = r"^\d{2}\.\d{3}\.\d{2}\.\d{1,2}$"
COMMUNE_CODE = validate.Regexp(
    COMMUNE_CODE_PATTERN, error=_l("Use the commune's HCP code, e.g. 08.587.01.13."))


class AreaQuerySchema(PageArgs):
    level = fields.String(validate=validate.OneOf(LEVELS))
    parent = fields.String(validate=validate.Length(1, 16),
                           metadata={"description": "Parent area code"})
    q = fields.String(validate=validate.Length(1, 100),
                      metadata={"description": "French or Arabic name, any case or accents"})


def _point(area) -> dict | None:
    get = area.get if isinstance(area, dict) else lambda name: getattr(area, name)
    if get("lat") is None or get("lon") is None:
        return None
    return {"lat": get("lat"), "lon": get("lon"), "source": get("point_source")}


class AreaSchema(Schema):
    code = fields.String()
    level = fields.String()
    parent_code = fields.String(allow_none=True)
    region_code = fields.String()
    province_code = fields.String(allow_none=True)
    name_fr = fields.String()
    name_ar = fields.String()
    kind = fields.String(allow_none=True)
    population_legal = fields.Integer(allow_none=True)
    point = fields.Function(_point, allow_none=True)


class AgeBandSchema(Schema):
    age_band = fields.String()
    F = fields.Integer(allow_none=True)
    M = fields.Integer(allow_none=True)
    total = fields.Integer(allow_none=True)


class AreaDetailSchema(AreaSchema):
    population_municipal = fields.Integer(allow_none=True)
    households = fields.Integer(allow_none=True)
    age_bands = fields.List(
        fields.Nested(AgeBandSchema),
        metadata={"description": "People by sex, derived from the census percentages of the "
                                 "municipal population; need not sum to the legal population"},
    )
    indicators = fields.Dict(
        keys=fields.String(), values=fields.Float(),
        metadata={"description": "Census indicators; a missing indicator is absent, not zero"},
    )
