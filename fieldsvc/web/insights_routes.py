"""Where needs are greatest, in the browser: the need map, the ranking, plans, summaries.

The pages call the same services as the API (``insights.needs.need_ranking``,
``insights.plans.make_plan``, ``insights.services.summary``) after loading their query through
the same schemas, so a page never shows what the API would refuse or hide. What a page shows a
caller without full detail comes from the protected release, exactly as the API's answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from marshmallow import ValidationError
from werkzeug.datastructures import MultiDict

from fieldsvc.areas.points import region_outlines
from fieldsvc.catalog.services import list_specialties
from fieldsvc.errors import DomainError, Unauthorized
from fieldsvc.extensions import db
from fieldsvc.insights import needs, plans
from fieldsvc.insights.needs import COMPONENTS
from fieldsvc.insights.schemas import (
    NeedsArgs,
    PlanResultSchema,
    PlanSchema,
)
from fieldsvc.replica import replica_reads
from fieldsvc.security import ALL_ROLES, allow, current_principal
from fieldsvc.web.forms import SavePlanForm

insights_blp = Blueprint("insights", __name__, url_prefix="/insights")

STAFF = ("admin", "coordinator", "planner")
DEFAULT_SPECIALTY = "OPH"
MAP_ROWS = 2000  # every commune


@insights_blp.context_processor
def _insights_context() -> dict[str, Any]:
    return {
        "url_endpoints": set(current_app.view_functions),
        "tile_url": current_app.config.get("MAP_TILE_URL") or None,
        "component_names": {name: info.label
                            for name, info in needs.component_labels("GEN").items()},
    }


@insights_blp.errorhandler(Unauthorized)
def _log_in_first(error: Unauthorized) -> Any:
    """A page asked for without a session: go and log in, then come back."""
    return redirect(url_for("web.login", next=request.full_path.rstrip("?")))


def _specialties() -> list[dict[str, str]]:
    language = _language()
    return [{"code": s.code, "label": getattr(s, f"label_{language}", None) or s.label_fr}
            for s in list_specialties()]


def _language() -> str:
    from flask_babel import get_locale

    locale = get_locale()
    return locale.language if locale is not None else "fr"


def _region_choices() -> list[dict[str, str]]:
    from sqlalchemy import select

    from fieldsvc.areas.models import Area

    arabic = _language() == "ar"
    return [
        {"code": area.code, "name": (area.name_ar if arabic else area.name_fr) or area.name_fr}
        for area in db.session.scalars(
            select(Area).where(Area.level == "region").order_by(Area.code))
    ]


def _weights_text(args: MultiDict[str, str]) -> str | None:
    """The weight inputs (w_demand=1…) as the API's ``weights`` text."""
    parts = []
    for name in COMPONENTS:
        value = (args.get(f"w_{name}") or "").strip()
        if value:
            parts.append(f"{name}:{value}")
    return ",".join(parts) or args.get("weights") or None


def _needs_query(args: MultiDict[str, str], **extra: Any) -> tuple[Any, dict[str, list[str]]]:
    """Load the page's filters through the API's schema: (query or None, errors by field)."""
    raw: dict[str, Any] = {"specialty": args.get("specialty") or DEFAULT_SPECIALTY,
                           "level": args.get("level") or "commune",
                           "sort": args.get("sort") or "score"}
    for name in ("region", "province", "limit"):
        if args.get(name):
            raw[name] = args[name]
    weights = _weights_text(args)
    if weights:
        raw["weights"] = weights
    raw.update(extra)
    try:
        return NeedsArgs().load(raw), {}
    except ValidationError as error:
        return None, {k: v if isinstance(v, list) else [str(v)]
                      for k, v in error.normalized_messages().items()}
    except DomainError as error:
        return None, _problem(error)


def _ranking(args: MultiDict[str, str], only: str | None = None, **extra: Any
             ) -> tuple[Any, Any, dict[str, list[str]]]:
    query, errors = _needs_query(args, **extra)
    if query is None:
        return None, None, errors
    try:
        ranking = needs.need_ranking(query, current_principal(), only=only)
    except DomainError as error:
        return query, None, _problem(error)
    return query, ranking, {}


def _problem(error: DomainError) -> dict[str, list[str]]:
    """A refusal as the page shows it: the sentence first, then what each field needs."""
    messages: dict[str, list[str]] = {"": [error.detail]}
    for field_name, value in (error.errors or {}).items():
        messages[field_name] = value if isinstance(value, list) else [str(value)]
    return messages


def _weights_shown(args: MultiDict[str, str]) -> dict[str, str]:
    return {name: args.get(f"w_{name}") or "1" for name in COMPONENTS}


@insights_blp.route("/needs")
@allow(*STAFF)
@replica_reads
def ranking_page():
    """The top communes for a specialty, with their components and adjustable weights."""
    args = request.args
    query, ranking, errors = _ranking(args, limit=args.get("limit") or "50")
    return render_template(
        "insights/needs.html", query=query, ranking=ranking, errors=errors,
        specialties=_specialties(), regions=_region_choices(), weights=_weights_shown(args),
        args=args, components=COMPONENTS,
    ), 422 if errors else 200


@insights_blp.route("/map")
@allow(*STAFF)
@replica_reads
def map_page():
    """Communes as points sized by expected patients and coloured by need score."""
    args = request.args
    query, ranking, errors = _ranking(args, limit=str(MAP_ROWS), level="commune")
    points = []
    if ranking is not None:
        points = [
            {"code": row.code, "name": row.name, "lat": row.lat, "lon": row.lon,
             "score": row.score, "rank": row.rank, "expected": row.expected_patients,
             "estimated": row.estimated}
            for row in ranking.rows if row.lat is not None and row.lon is not None
        ]
    data = {
        "points": points,
        "outlines": url_for("web.insights.outlines"),
        "detail": url_for("web.insights.commune_detail", code="CODE", **_detail_args(args)),
        "tiles": current_app.config.get("MAP_TILE_URL") or None,
        "focus": args.get("region") or None,
        "labels": {"score": _("Need score"), "expected": _("Expected patients per day"),
                   "rank": _("Rank")},
    }
    return render_template(
        "insights/map.html", query=query, ranking=ranking, errors=errors, data=data,
        specialties=_specialties(), regions=_region_choices(), weights=_weights_shown(args),
        args=args,
    ), 422 if errors else 200


def _detail_args(args: MultiDict[str, str]) -> dict[str, str]:
    keep = {"specialty": args.get("specialty") or DEFAULT_SPECIALTY}
    for name in ("region", "province"):  # so that the panel gives the rank within the filter
        if args.get(name):
            keep[name] = args[name]
    for name in COMPONENTS:
        if args.get(f"w_{name}"):
            keep[f"w_{name}"] = args[f"w_{name}"]
    return keep


@insights_blp.route("/map/communes/<code>")
@allow(*STAFF)
@replica_reads
def commune_detail(code: str):
    """One commune's need, as an HTML fragment: components as bars with reasons, caravans."""
    query, ranking, errors = _ranking(request.args, only=code, level="commune")
    row = None
    if ranking is not None:
        row = next((r for r in ranking.rows if r.code == code), None)
    if row is None:
        return render_template("insights/_commune.html", row=None, errors=errors), 404
    return render_template(
        "insights/_commune.html", row=row, ranking=ranking, errors=errors,
        facility=needs.nearest_facility(code, query.specialty)
        if "suppressed" not in _component(row, "access") else None,
        caravans=needs.caravans_reaching(code), components=COMPONENTS,
    )


def _component(row: Any, name: str) -> dict[str, Any]:
    component = row.components[name]
    return {"suppressed": component.suppressed} if component.suppressed else {}


@insights_blp.route("/regions.geojson")
@allow(*ALL_ROLES)
def outlines():
    """Morocco's 12 regions as outlines, for maps that draw without a tile server."""
    response = jsonify(region_outlines())
    response.cache_control.max_age = 86400
    response.cache_control.public = True
    return response


# --- Plans -------------------------------------------------------------------------------------

def _plan_input(args: MultiDict[str, str]) -> dict[str, Any]:
    """The plan form's fields as the API's body (team from team_OPH=2… or team=OPH:2,GEN:1)."""
    team: dict[str, Any] = {}
    for part in (args.get("team") or "").split(","):
        code, _sep, number = part.partition(":")
        if code.strip():
            team[code.strip()] = number.strip() or "1"
    for key, value in args.items():
        if key.startswith("team_") and value.strip():
            team[key[5:]] = value.strip()
    team = {code: n for code, n in team.items() if n not in ("0", "")}
    body: dict[str, Any] = {"base": args.get("base", ""), "team": team}
    for name, default in (("days", "3"), ("radius_km", "150"), ("stops_per_day", "1"),
                          ("capacity_per_doctor_day", "")):
        value = (args.get(name) or default).strip()
        if value:
            body[name] = value
    return body


def _make_plan(args: MultiDict[str, str]) -> tuple[Any, dict[str, Any], dict[str, list[str]]]:
    body = _plan_input(args)
    try:
        plan_request = PlanSchema().load(body)
        plan = plans.make_plan(plan_request, current_principal())
    except ValidationError as error:
        return None, body, {k: v if isinstance(v, list) else [str(v)]
                            for k, v in error.normalized_messages().items()}
    except DomainError as error:
        return None, body, _problem(error)
    return plan, body, {}


@insights_blp.route("/plan")
@allow(*STAFF)
@replica_reads
def plan_page():
    """The plan form, and with a base the proposed route, daily stops and specialty advice."""
    args = request.args
    plan, body, errors = (None, _plan_input(args), {})
    if args.get("base"):
        plan, body, errors = _make_plan(args)
    dumped = PlanResultSchema().dump(plan) if plan is not None else None
    form = None
    principal = current_principal()
    if plan is not None and principal.role in ("admin", "coordinator"):
        form = SavePlanForm(formdata=None, first_day=dt.date.today() + dt.timedelta(days=14),
                            title=_("Caravan from %(base)s", base=plan.base.name_fr or
                                    plan.base.code or args.get("base")))
    return render_template(
        "insights/plan.html", plan=plan, dumped=dumped, body=body, errors=errors,
        specialties=_specialties(), form=form, args=args,
    ), 422 if errors else 200


def plan_specialties(body: dict[str, Any]) -> set[str]:
    return {code for code, doctors in body["team"].items() if str(doctors) not in ("", "0")}


@insights_blp.route("/plan/save", methods=["POST"])
@allow("admin", "coordinator")
def save_plan():
    """Save a plan as planned caravans: one per stop, on its day, with the team's specialties."""
    from fieldsvc.caravans import services as caravans

    form = SavePlanForm()
    plan, body, errors = _make_plan(request.form)
    if plan is None or not form.validate():
        for name, messages in form.errors.items():
            errors.setdefault(name, []).extend(str(m) for m in messages)
        return render_template(
            "insights/plan.html", plan=plan,
            dumped=PlanResultSchema().dump(plan) if plan is not None else None, body=body,
            errors=errors, specialties=_specialties(), form=form, args=request.form,
        ), 422
    principal = current_principal()
    created = []
    try:
        for stop in plan.stops:
            day = form.first_day.data + dt.timedelta(days=stop.day - 1)
            created.append(caravans.create_caravan(caravans.CaravanInput(
                title=f"{form.title.data.strip()} — {stop.name_fr}", commune=stop.code,
                first_day=day, last_day=day, specialties=sorted(plan_specialties(body)),
                organizers=[], sites=[]), principal).caravan)
    except DomainError as error:
        db.session.rollback()
        errors = _problem(error)
        return render_template(
            "insights/plan.html", plan=plan, dumped=PlanResultSchema().dump(plan), body=body,
            errors=errors, specialties=_specialties(), form=form, args=request.form,
        ), error.status
    db.session.commit()
    return render_template("insights/plan_saved.html", caravans=created)


# --- Summaries ---------------------------------------------------------------------------------

SUMMARY_GROUPINGS = ("", "region,specialty", "specialty", "province,specialty", "commune",
                     "measure", "sex,age_band", "quarter", "month")
SUMMARY_FIELDS = ("by", "region", "province", "commune", "specialty", "measure", "sex",
                  "age_band", "from", "to")
EXPORT_FORMATS = ("csv", "xlsx", "json", "geojson")


def _resolve_area(text: str) -> tuple[str | None, str | None, list[str]]:
    """An area typed by name or code at any level: (level, code, errors)."""
    from fieldsvc.areas.models import Area
    from fieldsvc.areas.services import search_areas
    from fieldsvc.areas.text import fold

    text = text.strip()
    if not text:
        return None, None, []
    area = db.session.get(Area, text)
    if area is None:
        found = search_areas(q=text, limit=20).items
        exact = [a for a in found if fold(text) in (fold(a.name_fr), fold(a.name_ar))]
        found = exact or found
        if exact and len(exact) > 1:
            # Zagora is a province and its chief town: the larger area, when only one is largest.
            order = {"region": 0, "province": 1, "commune": 2}
            top = min(order.get(a.level, 3) for a in exact)
            largest = [a for a in exact if order.get(a.level, 3) == top]
            if len(largest) == 1:
                found = largest
        if len(found) != 1:
            choices = ", ".join(f"{a.name_fr} ({a.code})" for a in found[:6])
            message = (_("Several areas match %(name)s: %(choices)s. Type one of the codes.",
                         name=text, choices=choices) if found
                       else _("No region, province or commune is named %(name)s.", name=text))
            return None, None, [message]
        area = found[0]
    return area.level, area.code, []


def _summary_args(args: MultiDict[str, str]) -> tuple[dict[str, str], list[str]]:
    """The page's form as the API's (and the exports') query parameters."""
    api: dict[str, str] = {}
    for name in SUMMARY_FIELDS:
        value = (args.get(name) or "").strip()
        if value:
            api[name] = value
    level, code, errors = _resolve_area(args.get("area") or "")
    if code is not None and level is not None:
        api[level] = code
    # Automatic grouping: the chosen area's own level by specialty, else regions by specialty
    # (what every caller may ask for the whole country).
    by = api.pop("by", None) or f"{level if level in ('region', 'province') else 'region'},specialty"
    return {"by": by, **api}, errors


def _summary(api: dict[str, str], principal: Any, **override: str) -> Any:
    """Load through the API's schema and call the API's service; (result, errors)."""
    from fieldsvc.insights import services as summaries
    from fieldsvc.insights.schemas import SummaryArgs

    try:
        query = SummaryArgs().load({**api, **override})
        return summaries.summary(query, principal), {}
    except ValidationError as error:
        return None, {k: v if isinstance(v, list) else [str(v)]
                      for k, v in error.normalized_messages().items()}
    except DomainError as error:
        return None, _problem(error)


def _cell_label(row: dict[str, Any], dimension: str, labels: dict[str, str]) -> str:
    if dimension in ("region", "province", "commune"):
        arabic = _language() == "ar"
        name = row.get(f"{dimension}_name_ar" if arabic else f"{dimension}_name_fr")
        return name or str(row.get(dimension))
    value = row.get(dimension)
    return labels.get(str(value), str(value))


def _series(result: Any, dimensions: list[str], labels: dict[str, str]) -> dict[str, Any]:
    """A result as chart data: labels, counts (None when suppressed) and the suppressed flags."""
    rows = sorted(result.rows, key=lambda r: [str(r.get(d)) for d in dimensions])
    return {
        "labels": [" · ".join(_cell_label(r, d, labels) for d in dimensions) for r in rows],
        "keys": [[r.get(d) for d in dimensions] for r in rows],
        "counts": [r.get("count") for r in rows],
        "suppressed": [r.get("suppressed") for r in rows],
    }


def _code_labels() -> dict[str, str]:
    from fieldsvc.catalog.services import list_measures

    language = _language()
    labels = {s["code"]: s["label"] for s in _specialties()}
    for measure in list_measures():
        labels[measure.code] = getattr(measure, f"label_{language}", None) or measure.label_fr
    labels.update({"F": _("women"), "M": _("men")})
    return labels


@insights_blp.route("/summary")
@allow(*STAFF)
@replica_reads
def summary_page():
    """The summary's filters, its table, and charts by specialty, sex and age, and over time."""
    from urllib.parse import urlencode

    from fieldsvc.catalog.services import list_measures
    from fieldsvc.insights.schemas import SummaryResultSchema

    principal = current_principal()
    api, area_errors = _summary_args(request.args)
    result, errors = (None, {"area": area_errors}) if area_errors else _summary(api, principal)
    labels = _code_labels()
    charts: dict[str, Any] = {}
    chart_notes: dict[str, str] = {}
    if result is not None:
        filters = {k: v for k, v in api.items() if k != "by"}
        for name, by in (("specialty", "specialty"), ("pyramid", "sex,age_band"),
                         ("trend", "month")):
            chart_result, chart_errors = _summary({**filters, "by": by}, principal)
            if chart_result is None and name == "trend":
                by = "quarter"  # the protected release is by quarter
                chart_result, chart_errors = _summary({**filters, "by": by}, principal)
            if chart_result is None:
                messages = [m for ms in chart_errors.values() for m in ms]
                chart_notes[name] = " ".join(dict.fromkeys(messages))  # each sentence once
                continue
            charts[name] = {"by": by, **_series(chart_result, by.split(","), labels)}
    query_string = urlencode(api)
    downloads = [(fmt.upper(), f"/api/v1/exports/summary.{fmt}?{query_string}")
                 for fmt in EXPORT_FORMATS]
    dimensions = result.query.by if result is not None else []
    return render_template(
        "insights/summary.html", result=result, errors=errors, args=request.args, api=api,
        dimensions=dimensions, labels=labels, downloads=downloads,
        dumped=SummaryResultSchema().dump(result) if result is not None else None,
        charts={"charts": charts, "text": _chart_text()}, chart_notes=chart_notes,
        specialties=_specialties(), measures=list_measures(), groupings=SUMMARY_GROUPINGS,
        cell_label=_cell_label, language=_language(), dimension_labels=_dimension_labels(),
    ), 422 if errors else 200


def _dimension_labels() -> dict[str, str]:
    return {
        "region": _("Region"), "province": _("Province"), "commune": _("Commune"),
        "site": _("Site"), "caravan": _("Caravan"), "specialty": _("Specialty"),
        "measure": _("Measure"), "sex": _("Sex"), "age_band": _("Age band"),
        "condition": _("Condition"), "day": _("Day"), "week": _("Week"), "month": _("Month"),
        "quarter": _("Quarter"), "year": _("Year"),
    }


def _chart_text() -> dict[str, str]:
    return {
        "count": _("Count"), "suppressed": _("Suppressed: too few people to show"),
        "women": _("women"), "men": _("men"),
    }


@insights_blp.route("/public")
@allow(*ALL_ROLES)
@replica_reads
def public_page():
    """The public summary for anyone: consultations by region and specialty, small cells hidden."""
    from fieldsvc.insights import services as summaries
    from fieldsvc.insights.schemas import PublicSummaryArgs

    raw = {name: request.args[name] for name in ("from", "to", "measure") if request.args.get(name)}
    labels = _code_labels()
    result, errors, charts = None, {}, {}
    try:
        result = summaries.public_summary(PublicSummaryArgs().load(raw))
    except ValidationError as error:
        errors = {k: v if isinstance(v, list) else [str(v)]
                  for k, v in error.normalized_messages().items()}
    except DomainError as error:
        errors = _problem(error)
    if result is not None:
        charts["specialty"] = {"by": "region,specialty",
                               **_series(result, ["region", "specialty"], labels)}
    return render_template(
        "insights/public.html", result=result, errors=errors, args=request.args,
        dimensions=["region", "specialty"], labels=labels, cell_label=_cell_label,
        dimension_labels=_dimension_labels(), charts={"charts": charts, "text": _chart_text()},
    ), 422 if errors else 200
