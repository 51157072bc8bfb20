"""Insights API: summaries with small-cell suppression, where needs are greatest, plans."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask_smorest import Blueprint

from fieldsvc.catalog.services import specialty_codes
from fieldsvc.errors import ValidationFailed
from fieldsvc.insights import needs, plans, services
from fieldsvc.insights.schemas import NeedsArgs, PlanSchema, PublicSummaryArgs, SummaryArgs
from fieldsvc.security import ALL_ROLES, allow, current_principal

blp = Blueprint("insights", __name__, url_prefix="/api/v1",
                description="Summaries, needs and plans (small cells suppressed where required)")

STAFF = ("admin", "coordinator", "planner")


@blp.route("/summary", methods=["GET"])
@allow(*STAFF)
@blp.arguments(SummaryArgs, location="query")
@blp.response(200)
def get_summary(args: dict[str, Any]):
    """Sum tallies by any dimensions, with small cells suppressed without full detail."""
    args["from"] = args.pop("from_", None)
    query = services.parse_summary_args(args)
    return services.summary(query, current_principal())


@blp.route("/public/summary", methods=["GET"])
@allow(*ALL_ROLES)
@blp.arguments(PublicSummaryArgs, location="query")
@blp.response(200)
def get_public_summary(args: dict[str, Any]):
    """Sum consultations by region and specialty for anyone, small cells suppressed."""
    args["from"] = args.pop("from_", None)
    return services.public_summary(args)


@blp.route("/needs", methods=["GET"])
@allow(*STAFF)
@blp.arguments(NeedsArgs, location="query")
@blp.response(200)
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
        window_months=args["window_months"],
        as_of=args.get("as_of"),
        principal=current_principal(),
        regions=services._split(args.get("region")),  # noqa: SLF001 - same domain
        provinces=services._split(args.get("province")),  # noqa: SLF001
    )
    if args.get("limit"):
        body["rows"] = body["rows"][: args["limit"]]
        body["row_count"] = len(body["rows"])
    return body


@blp.route("/plans", methods=["POST"])
@allow(*STAFF)
@blp.arguments(PlanSchema)
@blp.response(200)
def create_plan(body: dict[str, Any]):
    """Plan a caravan: stops within reach ranked by need, their order, the specialty mix."""
    plan = plans.make_plan(body, current_principal())
    if request.accept_mimetypes.best_match(["application/json", "application/geo+json"]) == (
        "application/geo+json"
    ):
        response = jsonify(plans.as_geojson(plan))
        response.mimetype = "application/geo+json"
        return response
    return plan
