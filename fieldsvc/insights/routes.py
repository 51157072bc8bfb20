"""Insights API: summaries with small-cell suppression, where needs are greatest, plans."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import current_app, jsonify, request
from flask_babel import gettext as _
from flask_smorest import Blueprint

from fieldsvc.accounts.services import spend
from fieldsvc.catalog.services import specialty_codes
from fieldsvc.errors import ValidationFailed
from fieldsvc.extensions import db
from fieldsvc.insights import needs, plans, services
from fieldsvc.insights.queries import SummaryQuery
from fieldsvc.insights.schemas import (
    NeedsArgs,
    PlanSchema,
    PublicSummaryArgs,
    SummaryArgs,
    SummaryResultSchema,
)
from fieldsvc.security import ALL_ROLES, allow, current_principal

blp = Blueprint("insights", __name__, url_prefix="/api/v1",
                description="Summaries, needs and plans (small cells suppressed where required)")

STAFF = ("admin", "coordinator", "planner")

MARRAKECH = {"province": "07.351", "province_name_fr": "Marrakech", "province_name_ar": "مراكش"}
ZAGORA = {"province": "08.587", "province_name_fr": "Zagora", "province_name_ar": "زاكورة"}
EXAMPLE_SUMMARY = {  # ?by=province,specialty&from=2026-10-01&to=2026-10-31, by an admin
    "by": ["province", "specialty"], "measure": ["consultations"],
    "from": "2026-10-01", "to": "2026-10-31", "full_detail": True,
    "rows": [
        {**MARRAKECH, "specialty": "GEN", "count": 412},
        {**MARRAKECH, "specialty": "OPH", "count": 188},
        {**MARRAKECH, "specialty": "PED", "count": 3},
        {**ZAGORA, "specialty": "GEN", "count": 1265},
        {**ZAGORA, "specialty": "OPH", "count": 734},
        {**ZAGORA, "specialty": "PED", "count": 402},
    ],
    "total": 3004, "row_count": 6,
}
MARRAKECH_SAFI = {"region": "07", "region_name_fr": "Marrakech-Safi", "region_name_ar": "مراكش آسفي"}
DRAA_TAFILALET = {"region": "08", "region_name_fr": "Drâa-Tafilalet",
                  "region_name_ar": "درعة تافيلالت"}
EXAMPLE_PUBLIC_SUMMARY = {  # ?from=2026-10-01&to=2026-12-31: 3 children seen is a small cell
    "by": ["region", "specialty"], "measure": ["consultations"],
    "from": "2026-10-01", "to": "2026-12-31", "full_detail": False,
    "release": {"version": 14, "built_at": "2026-11-29T03:00:00+00:00", "k": 5,
                "window": {"from": "2025-01-01", "to": "2026-12-31"},
                "table": "region.specialty.quarter"},
    "rows": [
        {**MARRAKECH_SAFI, "specialty": "GEN", "count": 412},
        {**MARRAKECH_SAFI, "specialty": "OPH", "count": None, "suppressed": "complementary"},
        {**MARRAKECH_SAFI, "specialty": "PED", "count": None, "suppressed": "primary"},
        {**DRAA_TAFILALET, "specialty": "GEN", "count": 1265},
        {**DRAA_TAFILALET, "specialty": "OPH", "count": None, "suppressed": "complementary"},
        {**DRAA_TAFILALET, "specialty": "PED", "count": None, "suppressed": "complementary"},
    ],
    "suppression": {"k": 5}, "total": 3004, "row_count": 6,
}
EXAMPLE_NEEDS = {  # ?specialty=OPH&region=08&limit=2&as_of=2026-11-27
    "specialty": "OPH", "level": "commune",
    "weights": {"demand": 0.2, "unmet": 0.2, "access": 0.2, "recency": 0.2, "vulnerability": 0.2},
    "from": "2024-11-28", "to": "2026-11-27", "window_months": 24, "window_days": 730,
    "rows": [
        {"code": "08.587.09.23", "name_fr": "M'hamid El Ghizlane", "name_ar": "امحاميد الغزلان",
         "population": 6664, "lat": 29.82, "lon": -5.72, "rank": 1, "score": 0.86,
         "estimated": False, "drivers": ["access", "unmet"],
         "components": {
             "demand": {"value": 9.1, "percentile": 0.82, "estimated": False},
             "unmet": {"value": 0.3125, "percentile": 0.91, "estimated": False},
             "access": {"value": 95.0, "percentile": 0.97, "estimated": False},
             "recency": {"value": 412.0, "percentile": 0.74, "estimated": False},
             "vulnerability": {"value": 0.86, "percentile": 0.86, "estimated": False}}},
        {"code": "08.587.01.13", "name_fr": "Zagora", "name_ar": "زاكورة",
         "population": 42294, "lat": 30.33, "lon": -5.84, "rank": 2, "score": 0.462,
         "estimated": False, "drivers": ["unmet", "demand"],
         "components": {
             "demand": {"value": 7.5, "percentile": 0.71, "estimated": False},
             "unmet": {"value": 0.2857, "percentile": 0.88, "estimated": False},
             "access": {"value": 2.1, "percentile": 0.08, "estimated": False},
             "recency": {"value": 55.0, "percentile": 0.2, "estimated": False},
             "vulnerability": {"value": 0.42, "percentile": 0.44, "estimated": False}}},
    ],
    "row_count": 2,
}
EXAMPLE_PLAN_REQUEST = {"base": "08.587.01.13", "radius_km": 150, "days": 3,
                        "team": {"OPH": 2, "GEN": 2, "PED": 1}}
EXAMPLE_PLAN = {
    "base": {"code": "08.587.01.13", "name_fr": "Zagora", "name_ar": "زاكورة",
             "lat": 30.33, "lon": -5.84},
    "radius_km": 150.0, "days": 3, "stops_per_day": 1, "capacity_per_doctor_day": 40.0,
    "candidates": 28,
    "stops": [
        {"code": "08.587.01.13", "name_fr": "Zagora", "name_ar": "زاكورة", "lat": 30.33,
         "lon": -5.84, "day": 1, "need_score": 0.462, "estimated": False, "km_from_base": 0.0,
         "km_from_previous": 0.0},
        {"code": "08.587.09.23", "name_fr": "M'hamid El Ghizlane", "name_ar": "امحاميد الغزلان",
         "lat": 29.82, "lon": -5.72, "day": 2, "need_score": 0.86, "estimated": False,
         "km_from_base": 57.7, "km_from_previous": 57.7},
        {"code": "08.577.01.11", "name_fr": "Tinghir", "name_ar": "تنغير", "lat": 31.51,
         "lon": -5.53, "day": 3, "need_score": 0.55, "estimated": True, "km_from_base": 134.1,
         "km_from_previous": 188.2},
    ],
    "total_km": 380.1, "nearest_neighbour_km": 380.1,
    "specialties": {
        "GEN": {"doctors": 2, "expected_patients": 265, "capacity": 240, "advice": "keep"},
        "GYN": {"doctors": 0, "expected_patients": 150, "capacity": 0, "advice": "add"},
        "OPH": {"doctors": 2, "expected_patients": 386, "capacity": 240, "advice": "add"},
        "PED": {"doctors": 1, "expected_patients": 88, "capacity": 120, "advice": "keep"},
    },
}


@blp.route("/summary", methods=["GET"])
@allow(*STAFF)
@blp.arguments(SummaryArgs, location="query")
@blp.response(200, SummaryResultSchema,
              description="Counts by the requested dimensions, with area names",
              example=EXAMPLE_SUMMARY)
def get_summary(query: SummaryQuery):
    """Sum tallies by any dimensions, with small cells suppressed without full detail."""
    return services.summary(query, current_principal())


@blp.route("/public/summary", methods=["GET"])
@allow(*ALL_ROLES)
@blp.arguments(PublicSummaryArgs, location="query")
@blp.response(200, SummaryResultSchema,
              description="Counts by region and specialty; small cells are null",
              example=EXAMPLE_PUBLIC_SUMMARY)
def get_public_summary(query: SummaryQuery):
    """Sum consultations by region and specialty for anyone, small cells suppressed."""
    return services.public_summary(query)


@blp.route("/needs", methods=["GET"])
@allow(*STAFF)
@blp.arguments(NeedsArgs, location="query")
@blp.response(200, description="Areas ranked by need score, with each component",
              example=EXAMPLE_NEEDS)
def get_needs(args: dict[str, Any]):
    """Rank communes, provinces or regions by need for one specialty, with the reasons."""
    specialty = args["specialty"].strip()
    if specialty not in specialty_codes():
        raise ValidationFailed(f"Unknown specialty {specialty}.",
                               errors={"specialty": ["unknown specialty code"]})
    body = needs.need_rows(
        specialty,
        level=args["level"],
        weights=needs.parse_weights(args.get("weights")),
        window_months=args.get("window_months"),
        as_of=args.get("as_of"),
        principal=current_principal(),
        regions=args.get("region", []),
        provinces=args.get("province", []),
    )
    if args.get("limit"):
        body["rows"] = body["rows"][: args["limit"]]
        body["row_count"] = len(body["rows"])
    return body


@blp.route("/plans", methods=["POST"])
@allow(*STAFF)
@blp.arguments(PlanSchema, example=EXAMPLE_PLAN_REQUEST)
@blp.response(200, description="The plan (GeoJSON FeatureCollection with "
              "Accept: application/geo+json)", example=EXAMPLE_PLAN)
def create_plan(body: dict[str, Any]):
    """Plan a caravan: stops within reach ranked by need, their order, the specialty mix."""
    principal = current_principal()
    spend(f"plan:{principal.actor_id or request.remote_addr}",
          limit=current_app.config["PLAN_MAX_PER_MINUTE"], window=dt.timedelta(minutes=1),
          message=lambda seconds: _("Plans are limited to %(count)s a minute; try again in "
                                    "%(seconds)s seconds.",
                                    count=current_app.config["PLAN_MAX_PER_MINUTE"],
                                    seconds=seconds))
    db.session.commit()  # the plan counts even if it fails
    with plans.plan_slot():
        plan = plans.make_plan(body, principal)
    if request.accept_mimetypes.best_match(["application/json", "application/geo+json"]) == (
        "application/geo+json"
    ):
        response = jsonify(plans.as_geojson(plan))
        response.mimetype = "application/geo+json"
        return response
    return plan
