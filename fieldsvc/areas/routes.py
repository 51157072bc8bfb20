"""Areas API: Morocco's regions, provinces and communes (public reference data)."""

from flask_smorest import Blueprint

from fieldsvc.areas import services
from fieldsvc.areas.schemas import AreaDetailSchema, AreaPageSchema, AreaQuerySchema
from fieldsvc.security import ALL_ROLES, allow

blp = Blueprint("areas", __name__, url_prefix="/api/v1",
                description="Regions, provinces and communes")


@blp.route("/areas", methods=["GET"])
@allow(*ALL_ROLES)
@blp.arguments(AreaQuerySchema, location="query")
@blp.response(200, AreaPageSchema)
def list_areas(args):
    """Find areas by level, parent and French or Arabic name."""
    items, total = services.search_areas(
        level=args.get("level"), parent=args.get("parent"), q=args.get("q"),
        page=args["page"], per_page=args["per_page"],
    )
    return {"items": items, "total": total, "page": args["page"], "per_page": args["per_page"]}


@blp.route("/areas/<code>", methods=["GET"])
@allow(*ALL_ROLES)
@blp.response(200, AreaDetailSchema)
def get_area(code):
    """Show an area with population, age bands, indicators and point."""
    detail = services.get_area(code)
    area = detail["area"]
    body = {column: getattr(area, column) for column in (*AreaDetailSchema().fields, "lat", "lon",
                                                         "point_source") if hasattr(area, column)}
    body.update(age_bands=detail["age_bands"], indicators=detail["indicators"])
    return body
