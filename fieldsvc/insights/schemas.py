"""Shapes of the insights API's parameters and answers (meaning is checked in the services)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_dump,
    post_load,
    validate,
    validates_schema,
)

from fieldsvc.catalog.codes import AGE_BANDS, SEXES
from fieldsvc.db import ID_RANGE
from fieldsvc.fields import CommaList, Day, each_one_of
from fieldsvc.insights.needs import (
    DEFAULT_WINDOW_MONTHS,
    LEVELS,
    SORTS,
    NeedsQuery,
    parse_weights,
)
from fieldsvc.insights.plans import DEFAULT_CAPACITY, PlanRequest
from fieldsvc.insights.queries import COUNTED_STATUSES, DIMENSIONS, SummaryQuery

CODE = fields.String(validate=validate.Length(1, 20))
# A region is named by its two-digit code everywhere (summaries, needs, exports): "8x" is refused,
# not answered with no rows.
REGION_CODE = fields.String(validate=validate.Regexp(
    r"^\d{2}$", error=_l("A region code is two digits, e.g. 08.")))


class _PeriodArgs(Schema):
    from_ = Day(data_key="from", metadata={"description": "First day, e.g. 2026-01-01"})
    to = Day(metadata={"description": "Last day, e.g. 2026-12-31"})

    @validates_schema
    def _ordered(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("from_") and data.get("to") and data["from_"] > data["to"]:
            raise ValidationError(str(_l("from must be on or before to.")), "from")


class SummaryArgs(_PeriodArgs):
    """The summary's query parameters, loaded into a `SummaryQuery`."""

    by = CommaList(fields.String(), validate=each_one_of(DIMENSIONS, unique=True),
                   metadata={"description": "Comma-separated dimensions, e.g. province,specialty"})
    region = CommaList(REGION_CODE, metadata={"description": "Region codes, comma-separated"})
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



# --- Where needs are greatest ------------------------------------------------------------------

class NeedsArgs(Schema):
    specialty = fields.String(required=True, metadata={"description": "A specialty code, e.g. OPH"})
    level = fields.String(load_default="commune", validate=validate.OneOf(LEVELS))
    window_months = fields.Integer(
        validate=validate.Range(1, 120),
        metadata={"description": f"Admins only (default {DEFAULT_WINDOW_MONTHS}); everyone else "
                  "gets the protected release's window"})
    weights = fields.String(metadata={"description": "e.g. demand:1,unmet:2,access:1 (unnamed "
                                      "components weigh 1; normalised to sum to 1)"})
    region = CommaList(REGION_CODE, load_default=list,
                       metadata={"description": "Keep rows in these regions, e.g. 08"})
    province = CommaList(CODE, load_default=list,
                         metadata={"description": "Keep rows in these provinces, e.g. 08.587"})
    sort = fields.String(load_default="score", validate=validate.OneOf(SORTS),
                         metadata={"description": "score (default) or expected_patients"})
    as_of = Day(metadata={"description": "End of the window (admins only; default today)"})
    limit = fields.Integer(validate=validate.Range(1, 5000))

    @post_load
    def to_query(self, data: dict[str, Any], **_: Any) -> NeedsQuery:
        return NeedsQuery(
            specialty=data["specialty"].strip(), level=data["level"],
            weights=parse_weights(data.get("weights")), regions=data["region"],
            provinces=data["province"], sort=data["sort"], limit=data.get("limit"),
            window_months=data.get("window_months"), as_of=data.get("as_of"))


class ComponentInfoSchema(Schema):
    label = fields.String(metadata={"description": "The component's name, in your language"})
    unit = fields.String(metadata={"description": "What its value counts, in your language"})


class ComponentSchema(Schema):
    value = fields.Float(allow_none=True, metadata={
        "description": "In the unit given under `components` at the top of the answer; null "
                       "when suppressed"})
    percentile = fields.Float(allow_none=True, metadata={
        "description": "0 to 1 among all communes nationally: more means more need"})
    estimated = fields.Boolean(metadata={"description": "Not observed here: estimated"})
    estimated_from = fields.String(metadata={
        "description": "province, region, national (population-weighted medians of the communes "
                       "that have it), prior (nothing observed anywhere yet) or none; an "
                       "estimated demand is that median (or prior) × how much the commune's own "
                       "relevant ages consult, from the census bands (the reason says so)"})
    why = fields.String(metadata={
        "description": "Why it is estimated: not_visited, nothing_seen, no_point, "
                       "no_facility_data, no_able_facility, no_census_indicator"})
    reason = fields.String(metadata={"description": "The same, in words, in your language"})
    suppressed = fields.String(metadata={"description": "primary: rests on a small cell"})

    @post_dump
    def drop_empty(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {k: v for k, v in data.items()
                if v is not None or k in ("value", "percentile")}


class NeedRowSchema(Schema):
    code = fields.String(metadata={"description": "HCP code of the commune, province or region"})
    level = fields.String()
    name_fr = fields.String()
    name_ar = fields.String()
    name = fields.String(metadata={"description": "The name in your language"})
    province = fields.String(metadata={"description": "Province code (commune rows)"})
    province_name_fr = fields.String()
    province_name_ar = fields.String()
    region = fields.String(metadata={"description": "Region code (commune and province rows)"})
    region_name_fr = fields.String()
    region_name_ar = fields.String()
    population = fields.Integer(metadata={"description": "Legal population (HCP 2024)"})
    relevant_population = fields.Float(allow_none=True, metadata={
        "description": "People of the ages the specialty serves (see the demand unit)"})
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    score = fields.Float(allow_none=True, metadata={
        "description": "Need score, 0 to 1: the weighted mean of the component percentiles"})
    rank = fields.Integer(allow_none=True, metadata={
        "description": "Rank within this answer's filter (region, province) and sort"})
    national_rank = fields.Integer(allow_none=True, metadata={
        "description": "Rank among every row of the level nationally, same sort"})
    expected_patients = fields.Float(metadata={
        "description": "Size of the need: consultations to expect per caravan-day (relevant "
                       "people × the demand rate, observed or estimated)"})
    estimated = fields.Boolean(metadata={"description": "Some component is estimated"})
    drivers = fields.List(fields.String(), metadata={
        "description": "The two components weighing most in the score"})
    driver_labels = fields.List(fields.String(), metadata={
        "description": "The drivers' names in your language"})
    components = fields.Dict(keys=fields.String(), values=fields.Nested(ComponentSchema))

    @post_dump
    def drop_empty(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        return {k: v for k, v in data.items()
                if v is not None or k not in {"province", "province_name_fr", "province_name_ar",
                                              "region", "region_name_fr", "region_name_ar"}}


class NeedRankingSchema(Schema):
    specialty = fields.String()
    specialty_label = fields.String(metadata={"description": "In your language"})
    level = fields.String()
    sort = fields.String()
    window_months = fields.Integer()
    weights = fields.Dict(keys=fields.String(), values=fields.Float(),
                          metadata={"description": "As used: normalised to sum to 1"})
    start = fields.Date(data_key="from")
    end = fields.Date(data_key="to")
    window_days = fields.Integer()
    release = fields.Dict(metadata={"description": "The protected release the answer comes "
                                    "from (callers without full detail)"})
    components = fields.Dict(keys=fields.String(), values=fields.Nested(ComponentInfoSchema),
                             metadata={"description": "Each component's label and unit"})
    rows = fields.List(fields.Nested(NeedRowSchema))
    row_count = fields.Integer()
    national_row_count = fields.Integer(metadata={
        "description": "Rows of the level nationally, before the region/province filter"})

    @post_dump
    def drop_release(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("release") is None:
            data.pop("release", None)
        return data


# --- Plans -------------------------------------------------------------------------------------

class PlanSchema(Schema):
    """A plan's request, bounded so that one plan stays cheap: at most 300 km, 10 days,
    4 stops a day (40 stops to order) and 10 specialties (each one a need ranking)."""

    base = fields.String(required=True, validate=validate.Length(1, 100), metadata={
        "description": "Where the team starts and ends each day's route: a commune code "
                       "(08.587.01.13), a commune name when only one commune has it (Zagora), or "
                       "a point ('30.33, -5.84' or 30 19 48 N, 5 50 24 W)"})
    radius_km = fields.Float(required=True, validate=validate.Range(1, 300), metadata={
        "description": "How far from the base a stop may be (geodesic km, 1 to 300)"})
    days = fields.Integer(required=True, validate=validate.Range(1, 10),
                          metadata={"description": "1 to 10 days"})
    team = fields.Dict(keys=fields.String(validate=validate.Length(1, 8)),
                       values=fields.Integer(validate=validate.Range(0, 100)),
                       required=True, validate=validate.Length(1, 10), metadata={
                           "description": "Doctors per specialty, 1 to 10 specialties, e.g. "
                                          "{\"OPH\": 2, \"GEN\": 3}"})
    capacity_per_doctor_day = fields.Float(validate=validate.Range(1, 500), metadata={
        "description": f"Consultations one doctor gives in a day (default {DEFAULT_CAPACITY})"})
    stops_per_day = fields.Integer(validate=validate.Range(1, 4), metadata={
        "description": "Communes visited per day (default 1, at most 4)"})
    window_months = fields.Integer(validate=validate.Range(1, 120), metadata={
        "description": "Admins only: the needs' window"})

    @post_load
    def to_request(self, data: dict[str, Any], **_: Any) -> PlanRequest:
        return PlanRequest(
            base=data["base"], radius_km=data["radius_km"], days=data["days"], team=data["team"],
            capacity_per_doctor_day=data.get("capacity_per_doctor_day") or DEFAULT_CAPACITY,
            stops_per_day=data.get("stops_per_day") or 1,
            window_months=data.get("window_months"))


class PlanBaseSchema(Schema):
    code = fields.String(allow_none=True, metadata={"description": "The base commune, if any"})
    name_fr = fields.String(allow_none=True)
    name_ar = fields.String(allow_none=True)
    lat = fields.Float()
    lon = fields.Float()


class PlanStopSchema(Schema):
    code = fields.String(metadata={"description": "HCP commune code"})
    name_fr = fields.String()
    name_ar = fields.String()
    province = fields.String()
    province_name_fr = fields.String(allow_none=True)
    province_name_ar = fields.String(allow_none=True)
    lat = fields.Float()
    lon = fields.Float()
    day = fields.Integer(metadata={"description": "Which day of the caravan (from 1)"})
    km_from_previous = fields.Float(metadata={
        "description": "Geodesic km from the previous stop (the base for the first)"})
    km_from_base = fields.Float(metadata={"description": "Geodesic km from the base"})
    need_score = fields.Float(metadata={
        "description": "The stop's need score for the team's specialties, weighted by doctors"})
    estimated = fields.Boolean(metadata={
        "description": "Some need component of a team specialty is estimated here"})
    expected_patients = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Patients to expect per team specialty during the time spent here"})
    patients_reached = fields.Integer(metadata={
        "description": "Of those, how many the team's doctors can see here"})


class SpecialtyAdviceSchema(Schema):
    doctors = fields.Integer(metadata={"description": "Doctors the team brings"})
    expected_patients = fields.Integer(metadata={
        "description": "Patients to expect over all stops (expected per caravan-day × days)"})
    capacity = fields.Integer(metadata={
        "description": "doctors × days × capacity_per_doctor_day"})
    advice = fields.String(metadata={"description": "add, keep, reduce or drop"})
    suggested_doctors = fields.Integer(metadata={
        "description": "Doctors that would match the expected patients"})
    advice_label = fields.String(metadata={"description": "The advice in your language"})
    reason = fields.String(metadata={"description": "The advice explained with its numbers"})


class PlanResultSchema(Schema):
    base = fields.Nested(PlanBaseSchema)
    radius_km = fields.Float()
    days = fields.Integer()
    stops_per_day = fields.Integer()
    capacity_per_doctor_day = fields.Float()
    candidates = fields.Integer(metadata={"description": "Communes with a point within reach"})
    stops = fields.List(fields.Nested(PlanStopSchema), metadata={
        "description": "In visiting order"})
    total_km = fields.Float(metadata={
        "description": "The round trip base → stops → base, after 2-opt (geodesic km)"})
    nearest_neighbour_km = fields.Float(metadata={
        "description": "The same round trip in the greedy nearest-first order, before 2-opt "
                       "improved it; equal to total_km when no shorter order was found"})
    specialties = fields.Dict(keys=fields.String(), values=fields.Nested(SpecialtyAdviceSchema),
                              metadata={"description": "Advice for each specialty of the team, "
                                        "and for missing ones the stops would fill"})
