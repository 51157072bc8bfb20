"""Shapes of the exports' query parameters (the summary's own, plus a few of their own)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, post_load, validate, validates_schema

from fieldsvc.config import LANGUAGES
from fieldsvc.db import ID_RANGE
from fieldsvc.exports.dhis2 import PERIOD_UNITS
from fieldsvc.exports.services import DetailQuery
from fieldsvc.fields import CommaList, each_one_of
from fieldsvc.insights.queries import SummaryQuery
from fieldsvc.insights.schemas import CODE, REGION_CODE, SummaryArgs, _PeriodArgs
from fieldsvc.tallies.models import REVIEW_STATUSES

__all__ = ["DetailArgs", "Dhis2Args", "SummaryArgs"]


class DetailArgs(_PeriodArgs):
    """Which tally lines a coordinator exports: their regions (or some), caravans, a period."""

    region = CommaList(REGION_CODE, metadata={"description": "Region codes (default: all of yours)"})
    caravan = CommaList(fields.Integer(validate=ID_RANGE),
                        metadata={"description": "Caravan ids, comma-separated"})
    status = CommaList(fields.String(), validate=each_one_of(REVIEW_STATUSES),
                       metadata={"description": "Review statuses (default: all, rejected included)"})

    @post_load
    def _query(self, data: dict[str, Any], **_: Any) -> DetailQuery:
        return DetailQuery(regions=data.get("region", []), caravans=data.get("caravan", []),
                           statuses=data.get("status", []), start=data.get("from_"),
                           end=data.get("to"))


@dataclass
class Dhis2Request:
    query: SummaryQuery
    unit: str


class Dhis2Args(SummaryArgs):
    """The summary's filters and the period DHIS2 reports by (by is set by the export)."""

    period = fields.String(load_default="month", validate=validate.OneOf(PERIOD_UNITS),
                           metadata={"description": "day, week, month (default), quarter or year"})

    @post_load
    def _query(self, data: dict[str, Any], **kwargs: Any) -> Dhis2Request:  # type: ignore[override]
        unit = data.pop("period")
        data.pop("by", None)
        return Dhis2Request(query=super()._query(data, **kwargs), unit=unit)


class ReportArgs(_PeriodArgs):
    """Which region or province, which period, which language."""

    region = CODE
    province = fields.String(validate=validate.Length(1, 20))
    lang = fields.String(load_default="fr", validate=validate.OneOf(LANGUAGES),
                         metadata={"description": "Language of the report (default fr)"})

    @validates_schema
    def _one_area(self, data: dict[str, Any], **_: Any) -> None:
        if bool(data.get("region")) == bool(data.get("province")):
            raise ValidationError(str(_l("Name one region (region=08) or one province "
                                         "(province=08.587).")), "region")


class LangArgs(Schema):
    lang = fields.String(load_default="fr", validate=validate.OneOf(LANGUAGES),
                         metadata={"description": "Language of the report (default fr)"})
