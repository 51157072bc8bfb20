"""Shapes of the insights API's parameters and answers (meaning is checked in the services)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from marshmallow import Schema, ValidationError, fields, post_dump, post_load, validate, validates_schema

from fieldsvc.catalog.codes import AGE_BANDS, SEXES
from fieldsvc.db import ID_RANGE
from fieldsvc.fields import CommaList, Day, each_one_of
from fieldsvc.insights.needs import DEFAULT_WINDOW_MONTHS, LEVELS
from fieldsvc.insights.queries import COUNTED_STATUSES, DIMENSIONS, SummaryQuery

CODE = fields.String(validate=validate.Length(1, 20))


class _PeriodArgs(Schema):
    from_ = Day(data_key="from", metadata={"description": "First day, e.g. 2026-01-01"})
    to = Day(metadata={"description": "Last day, e.g. 2026-12-31"})

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError("from must be on or before to.", "from")


class SummaryArgs(_PeriodArgs):
    """The summary's query parameters, loaded into a `SummaryQuery`."""

    by = CommaList(fields.String(), validate=each_one_of(DIMENSIONS, unique=True),
                   metadata={"description": "Comma-separated dimensions, e.g. province,specialty"})
    region = CommaList(CODE, metadata={"description": "Region codes, comma-separated"})
    province = CommaList(CODE)
    commune = CommaList(CODE)
    caravan = CommaList(fields.Integer(validate=ID_RANGE),
                        metadata={"description": "Caravan ids, comma-separated"})
    organization = CommaList(fields.Integer(validate=ID_RANGE),
                             metadata={"description": "Organization ids, comma-separated"})
    specialty = CommaList(CODE)
    measure = CommaList(CODE, metadata={"description": "Default: consultations"})
    sex = CommaList(fields.String(), validate=each_one_of(SEXES))
    age_band = CommaList(fields.String(), validate=each_one_of(AGE_BANDS))
    status = CommaList(fields.String(), validate=each_one_of(COUNTED_STATUSES),
                       metadata={"description": "Review statuses: received, approved, flagged"})

    @post_load
    def _query(self, data: dict[str, Any], **_: Any) -> SummaryQuery:
        return SummaryQuery(
            by=data.get("by", []), regions=data.get("region", []),
            provinces=data.get("province", []), communes=data.get("commune", []),
            caravans=data.get("caravan", []), organizations=data.get("organization", []),
            specialties=data.get("specialty", []), measures=data.get("measure", []),
            sexes=data.get("sex", []), age_bands=data.get("age_band", []),
            statuses=data.get("status", []), start=data.get("from_"), end=data.get("to"),
        )


class PublicSummaryArgs(_PeriodArgs):
    """The public summary's parameters: always by region and specialty."""

    measure = CommaList(CODE)

    @post_load
    def _query(self, data: dict[str, Any], **_: Any) -> SummaryQuery:
        return SummaryQuery(by=["region", "specialty"], measures=data.get("measure", []),
                            start=data.get("from_"), end=data.get("to"))


class WindowSchema(Schema):
    from_ = fields.Date(data_key="from", attribute="window_start")
    to = fields.Date(attribute="window_end")


class ReleaseInfoSchema(Schema):
    version = fields.Integer()
    built_at = fields.AwareDateTime(default_timezone=dt.UTC, format="iso")
    k = fields.Integer(metadata={"description": "Counts from 1 to k-1 are never published"})
    window = fields.Function(lambda info: WindowSchema().dump(info),
                             metadata={"description": "The need window communes are published over"})
    table = fields.String()


class SummaryResultSchema(Schema):
    """A summary: rows keyed by the asked dimensions (area codes with their names) and `count`."""

    by = fields.List(fields.String(), attribute="query.by")
    measure = fields.List(fields.String(), attribute="measures", allow_none=True)
    from_ = fields.Date(data_key="from", attribute="query.start", allow_none=True)
    to = fields.Date(attribute="query.end", allow_none=True)
    full_detail = fields.Boolean()
    suppression = fields.Dict(metadata={"description": "k, below which a count is hidden"})
    release = fields.Nested(ReleaseInfoSchema, metadata={
        "description": "The protected release the rows were selected from (without full detail)"})
    rows = fields.List(fields.Dict(), metadata={
        "description": "A suppressed cell has count null and suppressed: primary|complementary"})
    total = fields.Integer(allow_none=True)
    total_suppressed = fields.String()
    row_count = fields.Integer()

    @post_dump
    def _drop_absent(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        for key in ("suppression", "release", "total_suppressed"):
            if data.get(key) is None:
                data.pop(key, None)
        return data


class NeedsArgs(Schema):
    specialty = fields.String(required=True)
    level = fields.String(load_default="commune", validate=validate.OneOf(LEVELS))
    window_months = fields.Integer(
        validate=validate.Range(1, 120),
        metadata={"description": f"Admins only (default {DEFAULT_WINDOW_MONTHS}); everyone else "
                  "gets the protected release's window"})
    weights = fields.String(metadata={"description": "e.g. demand:1,unmet:2,access:1"})
    region = CommaList(CODE, metadata={"description": "Region codes, comma-separated"})
    province = CommaList(CODE, metadata={"description": "Province codes, comma-separated"})
    as_of = Day(metadata={"description": "End of the window (admins only; default today)"})
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
