"""Areas API: Morocco's regions, provinces and communes (public reference data)."""

from flask_smorest import Blueprint

from fieldsvc.areas import services
from fieldsvc.areas.schemas import AreaDetailSchema, AreaQuerySchema, AreaSchema
from fieldsvc.pagination import paginated_response
from fieldsvc.security import ALL_ROLES, allow

blp = Blueprint("areas", __name__, url_prefix="/api/v1",
                description="Regions, provinces and communes")

# Figures of RGPH 2024 (HCP), as `flask areas load` stores them.
EXAMPLE_AREAS = {  # ?level=commune&q=zagora
    "items": [
        {"code": "08.587.01.13", "level": "commune", "parent_code": "08.587", "region_code": "08",
         "province_code": "08.587", "name_fr": "Zagora", "name_ar": "زاكورة", "kind": "urban",
         "population_legal": 42294, "point": {"lat": 30.33, "lon": -5.84, "source": "geonames"}},
    ],
    "total": 1, "limit": 50, "offset": 0,
}
EXAMPLE_AREA = {
    "code": "07.351.02.07", "level": "commune", "parent_code": "07.351", "region_code": "07",
    "province_code": "07.351", "name_fr": "Ouahat Sidi Brahim", "name_ar": "واحة سيدي ابراهيم",
    "kind": "rural", "population_legal": 36493, "population_municipal": 36448,
    "households": 8393, "point": {"lat": 31.7, "lon": -7.95, "source": "geonames"},
    "age_bands": [
        {"age_band": "0-4", "F": 1649, "M": 1890, "total": 3539},
        {"age_band": "5-14", "F": 3925, "M": 4094, "total": 8019},
        {"age_band": "15-24", "F": 3100, "M": 2946, "total": 6046},
        {"age_band": "25-49", "F": 6434, "M": 6318, "total": 12752},
        {"age_band": "50-64", "F": 1953, "M": 2297, "total": 4250},
        {"age_band": "65+", "F": 824, "M": 963, "total": 1787},
    ],
    "indicators": {"distance_paved_road_km": 0.5, "no_running_water_pct": 6.9,
                   "illiteracy_rate_pct": 20.8},
}


@blp.route("/areas", methods=["GET"])
@allow(*ALL_ROLES)
@blp.arguments(AreaQuerySchema, location="query")
@paginated_response(blp, AreaSchema, description="One page of matching areas",
                    example=EXAMPLE_AREAS)
def list_areas(args):
    """Find areas by level, parent and French or Arabic name."""
    return services.search_areas(**args)


@blp.route("/areas/<code>", methods=["GET"])
@allow(*ALL_ROLES)
@blp.response(200, AreaDetailSchema, example=EXAMPLE_AREA)
def get_area(code):
    """Show an area with population, age bands, indicators and point."""
    detail = services.get_area(code)
    area = detail["area"]
    body = {column: getattr(area, column) for column in (*AreaDetailSchema().fields, "lat", "lon",
                                                         "point_source") if hasattr(area, column)}
    body.update(age_bands=detail["age_bands"], indicators=detail["indicators"])
    return body
