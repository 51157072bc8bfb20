"""Catalog API: the codes tallies use."""

from flask_smorest import Blueprint

from fieldsvc.catalog import services
from fieldsvc.catalog.codes import AGE_BANDS, ICD10_CHAPTERS, SEXES
from fieldsvc.catalog.schemas import CatalogSchema, MeasureSchema, SpecialtySchema
from fieldsvc.extensions import db
from fieldsvc.security import ALL_ROLES, allow

blp = Blueprint("catalog", __name__, url_prefix="/api/v1", description="Codes tallies use")


def _labelled(table: dict) -> list[dict]:
    return [{"code": c, "label_fr": v[0], "label_ar": v[1], "label_en": v[2]} for c, v in table.items()]


@blp.route("/catalog", methods=["GET"])
@allow(*ALL_ROLES)
@blp.response(200, CatalogSchema)
def get_catalog():
    """List specialties, measures, sexes, age bands and ICD-10 chapters with their labels."""
    return {
        "specialties": services.list_specialties(),
        "measures": services.list_measures(),
        "sexes": _labelled(SEXES),
        "age_bands": list(AGE_BANDS),
        "conditions": _labelled(ICD10_CHAPTERS),
    }


@blp.route("/specialties", methods=["POST"])
@allow("admin")
@blp.arguments(SpecialtySchema)
@blp.response(201, SpecialtySchema)
def create_specialty(data):
    """Add a specialty (admin)."""
    specialty = services.add_specialty(data)
    db.session.commit()
    return specialty


@blp.route("/measures", methods=["POST"])
@allow("admin")
@blp.arguments(MeasureSchema)
@blp.response(201, MeasureSchema)
def create_measure(data):
    """Add a measure (admin)."""
    measure = services.add_measure(data)
    db.session.commit()
    return measure
