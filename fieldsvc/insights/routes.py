"""Insights API: summaries with small-cell suppression, where needs are greatest, plans."""

from __future__ import annotations

import datetime as dt

from flask import current_app, jsonify, request
from flask_babel import gettext as _
from flask_smorest import Blueprint

from fieldsvc.accounts.services import spend
from fieldsvc.extensions import db
from fieldsvc.insights import needs, plans, services
from fieldsvc.insights.queries import SummaryQuery
from fieldsvc.insights.schemas import (
    NeedRankingSchema,
    NeedsArgs,
    PlanResultSchema,
    PlanSchema,
    PublicSummaryArgs,
    SummaryArgs,
    SummaryResultSchema,
)
from fieldsvc.replica import replica_reads, use_replica
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
_ZAGORA_PLACE = {"province": "08.587", "province_name_fr": "Zagora", "province_name_ar": "زاكورة",
                 "region": "08", "region_name_fr": "Drâa-Tafilalet",
                 "region_name_ar": "درعة تافيلالت"}
_NO_FACILITY = {"estimated_from": "national", "why": "no_facility_data",
                "reason": "No health facility list has been imported yet. Estimated from all "
                          "communes (population-weighted median)."}
_NOT_VISITED = {"estimated_from": "province", "why": "not_visited",
                "reason": "No caravan offered this specialty here in the window. Estimated from "
                          "the province's communes (population-weighted median)."}
EXAMPLE_NEEDS = {  # ?specialty=OPH&region=08&limit=2&as_of=2026-11-27, in English
    "specialty": "OPH", "specialty_label": "Ophthalmology", "level": "commune", "sort": "score",
    "weights": {"demand": 0.2, "unmet": 0.2, "access": 0.2, "recency": 0.2, "vulnerability": 0.2},
    "from": "2024-11-28", "to": "2026-11-27", "window_months": 24, "window_days": 730,
    "components": {
        "demand": {"label": "Demand", "unit": "consultations per caravan-day per 1,000 people "
                                              "aged 50 and over"},
        "unmet": {"label": "Unmet demand",
                  "unit": "share of people turned away or referred (0 to 1)"},
        "access": {"label": "Distance to care",
                   "unit": "km to the nearest facility able to treat this specialty"},
        "recency": {"label": "Time since a caravan", "unit": "days since a caravan last offered "
                    "this specialty (window + 1 = never)"},
        "vulnerability": {"label": "Vulnerability", "unit": "mean percentile of census "
                          "indicators: paved road, running water, literacy (0 to 1)"},
    },
    "rows": [
        {"code": "08.587.01.13", "level": "commune", "name_fr": "Zagora", "name_ar": "زاكورة",
         "name": "Zagora", **_ZAGORA_PLACE, "population": 42294, "relevant_population": 5210.0,
         "lat": 30.33, "lon": -5.84, "rank": 1, "national_rank": 41, "score": 0.662,
         "expected_patients": 120.0, "estimated": True, "drivers": ["demand", "unmet"],
         "driver_labels": ["Demand", "Unmet demand"],
         "components": {
             "demand": {"value": 23.0326, "percentile": 0.99, "estimated": False},
             "unmet": {"value": 0.2, "percentile": 0.99, "estimated": False},
             "access": {"value": 0.0, "percentile": 0.5, "estimated": True, **_NO_FACILITY},
             "recency": {"value": 55.0, "percentile": 0.2, "estimated": False},
             "vulnerability": {"value": 0.42, "percentile": 0.44, "estimated": False}}},
        {"code": "08.587.09.23", "level": "commune", "name_fr": "M'hamid El Ghizlane",
         "name_ar": "امحاميد الغزلان", "name": "M'hamid El Ghizlane", **_ZAGORA_PLACE,
         "population": 6664, "relevant_population": 820.0, "lat": 29.82, "lon": -5.72,
         "rank": 2, "national_rank": 97, "score": 0.61, "expected_patients": 18.9,
         "estimated": True, "drivers": ["recency", "demand"],
         "driver_labels": ["Time since a caravan", "Demand"],
         "components": {
             "demand": {"value": 23.0326, "percentile": 0.5, "estimated": True, **_NOT_VISITED},
             "unmet": {"value": 0.2, "percentile": 0.5, "estimated": True, **_NOT_VISITED},
             "access": {"value": 0.0, "percentile": 0.5, "estimated": True, **_NO_FACILITY},
             "recency": {"value": 731.0, "percentile": 0.75, "estimated": False},
             "vulnerability": {"value": 0.5, "percentile": 0.5, "estimated": True,
                               "estimated_from": "national", "why": "no_census_indicator",
                               "reason": "The census gives none of the indicators for this "
                                         "commune. Estimated from all communes "
                                         "(population-weighted median)."}}},
    ],
    "row_count": 2, "national_row_count": 1503,
}
EXAMPLE_PLAN_REQUEST = {"base": "Zagora", "radius_km": 150, "days": 3,
                        "team": {"OPH": 2, "GEN": 2, "PED": 1}}
_ZAGORA_PROVINCE = {"province": "08.587", "province_name_fr": "Zagora",
                    "province_name_ar": "زاكورة"}
EXAMPLE_PLAN = {
    "base": {"code": "08.587.01.13", "name_fr": "Zagora", "name_ar": "زاكورة",
             "lat": 30.33, "lon": -5.84},
    "radius_km": 150.0, "days": 3, "stops_per_day": 1, "capacity_per_doctor_day": 40.0,
    "candidates": 28,
    "stops": [
        {"code": "08.587.01.13", "name_fr": "Zagora", "name_ar": "زاكورة", **_ZAGORA_PROVINCE,
         "lat": 30.33, "lon": -5.84, "day": 1, "need_score": 0.462, "estimated": False,
         "km_from_base": 0.0, "km_from_previous": 0.0,
         "expected_patients": {"OPH": 120, "GEN": 310, "PED": 95}, "patients_reached": 255},
        {"code": "08.587.09.23", "name_fr": "M'hamid El Ghizlane", "name_ar": "امحاميد الغزلان",
         **_ZAGORA_PROVINCE, "lat": 29.82, "lon": -5.72, "day": 2, "need_score": 0.86,
         "estimated": False, "km_from_base": 57.7, "km_from_previous": 57.7,
         "expected_patients": {"OPH": 19, "GEN": 62, "PED": 20}, "patients_reached": 101},
        {"code": "08.587.05.07", "name_fr": "Tagounite", "name_ar": "تاكونيت",
         **_ZAGORA_PROVINCE, "lat": 29.98, "lon": -5.58, "day": 3, "need_score": 0.55,
         "estimated": True, "km_from_base": 45.9, "km_from_previous": 20.9,
         "expected_patients": {"OPH": 40, "GEN": 150, "PED": 38}, "patients_reached": 198},
    ],
    "total_km": 124.5, "nearest_neighbour_km": 124.5,
    "specialties": {
        "GEN": {"doctors": 2, "expected_patients": 522, "capacity": 240, "advice": "add",
                "suggested_doctors": 5, "advice_label": "Add doctors",
                "reason": "About 522 patients are expected for a capacity of 240 (2 doctor(s) × "
                          "3 days × 40 a day): bring 5 doctor(s)."},
        "GYN": {"doctors": 0, "expected_patients": 150, "capacity": 0, "advice": "add",
                "suggested_doctors": 2, "advice_label": "Add doctors",
                "reason": "About 150 patients are expected and the team has no doctor for them; "
                          "one doctor sees 40 a day: 2 doctor(s) for 3 days."},
        "OPH": {"doctors": 2, "expected_patients": 179, "capacity": 240, "advice": "keep",
                "suggested_doctors": 2, "advice_label": "Keep",
                "reason": "About 179 patients are expected for a capacity of 240 (2 doctor(s) × "
                          "3 days × 40 a day): the team fits."},
        "PED": {"doctors": 1, "expected_patients": 153, "capacity": 120, "advice": "keep",
                "suggested_doctors": 1, "advice_label": "Keep",
                "reason": "About 153 patients are expected for a capacity of 120 (1 doctor(s) × "
                          "3 days × 40 a day): the team fits."},
    },
}


@blp.route("/summary", methods=["GET"])
@allow(*STAFF)
@blp.arguments(SummaryArgs, location="query")
@blp.response(200, SummaryResultSchema,
              description="Counts by the requested dimensions, with area names",
              example=EXAMPLE_SUMMARY)
@replica_reads
def get_summary(query: SummaryQuery):
    """Sum tallies by any dimensions, with small cells suppressed without full detail."""
    return services.summary(query, current_principal())


@blp.route("/public/summary", methods=["GET"])
@allow(*ALL_ROLES)
@blp.arguments(PublicSummaryArgs, location="query")
@blp.response(200, SummaryResultSchema,
              description="Counts by region and specialty; small cells are null",
              example=EXAMPLE_PUBLIC_SUMMARY)
@replica_reads
def get_public_summary(query: SummaryQuery):
    """Sum consultations by region and specialty for anyone, small cells suppressed."""
    return services.public_summary(query)


@blp.route("/needs", methods=["GET"])
@allow(*STAFF)
@blp.arguments(NeedsArgs, location="query", as_kwargs=False)
@blp.response(200, NeedRankingSchema, description="Areas ranked by need, with each component",
              example=EXAMPLE_NEEDS)
@replica_reads
def get_needs(query: needs.NeedsQuery):
    """Rank communes, provinces or regions by need for one specialty, with the reasons."""
    return needs.need_ranking(query, current_principal())


@blp.route("/plans", methods=["POST"])
@allow(*STAFF)
@blp.arguments(PlanSchema, example=EXAMPLE_PLAN_REQUEST)
@blp.response(200, PlanResultSchema, description="The plan (GeoJSON FeatureCollection with "
              "Accept: application/geo+json)", example=EXAMPLE_PLAN)
def create_plan(plan_request: plans.PlanRequest):
    """Plan a caravan: stops reaching the most patients per km, their order, the specialty mix."""
    principal = current_principal()
    spend(f"plan:{principal.actor_id or request.remote_addr}",
          limit=current_app.config["PLAN_MAX_PER_MINUTE"], window=dt.timedelta(minutes=1),
          message=lambda seconds: _("Plans are limited to %(count)s a minute; try again in "
                                    "%(seconds)s seconds.",
                                    count=current_app.config["PLAN_MAX_PER_MINUTE"],
                                    seconds=seconds))
    db.session.commit()  # the plan counts even if it fails
    use_replica()  # what the plan reads may be a moment behind; the throttle above may not
    with plans.plan_slot():
        plan = plans.make_plan(plan_request, principal)
    if request.accept_mimetypes.best_match(["application/json", "application/geo+json"]) == (
        "application/geo+json"
    ):
        response = jsonify(plans.as_geojson(PlanResultSchema().dump(plan)))
        response.mimetype = "application/geo+json"
        return response
    return plan
