"""Catalog API: the codes tallies use."""

from flask_smorest import Blueprint

from fieldsvc.catalog import services
from fieldsvc.catalog.codes import AGE_BANDS, ICD10_CHAPTERS, SEXES
from fieldsvc.catalog.schemas import CatalogSchema, MeasureSchema, SpecialtySchema
from fieldsvc.extensions import db
from fieldsvc.security import ALL_ROLES, allow

blp = Blueprint("catalog", __name__, url_prefix="/api/v1", description="Codes tallies use")

EXAMPLE_SPECIALTY = {"code": "OPH", "label_fr": "Ophtalmologie", "label_ar": "طب العيون",
                     "label_en": "Ophthalmology", "needs_hospital": True}
EXAMPLE_CATALOG = {  # abridged: the answer lists every specialty, measure and chapter
    "specialties": [
        {"code": "GEN", "label_fr": "Médecine générale", "label_ar": "الطب العام",
         "label_en": "General medicine", "needs_hospital": False},
        EXAMPLE_SPECIALTY,
        {"code": "PED", "label_fr": "Pédiatrie", "label_ar": "طب الأطفال",
         "label_en": "Paediatrics", "needs_hospital": True},
    ],
    "measures": [
        {"code": "consultations", "label_fr": "Consultations", "label_ar": "الفحوصات",
         "label_en": "Consultations"},
        {"code": "glasses", "label_fr": "Lunettes remises", "label_ar": "النظارات الموزعة",
         "label_en": "Glasses given"},
        {"code": "turned_away", "label_fr": "Non vus (demande non satisfaite)",
         "label_ar": "لم يتم فحصهم (طلب غير ملبى)", "label_en": "Turned away (unmet demand)"},
    ],
    "sexes": [{"code": "F", "label_fr": "Femmes", "label_ar": "إناث", "label_en": "Female"},
              {"code": "M", "label_fr": "Hommes", "label_ar": "ذكور", "label_en": "Male"}],
    "age_bands": ["0-4", "5-14", "15-24", "25-49", "50-64", "65+"],
    "conditions": [{"code": "VII", "label_fr": "Maladies de l'œil", "label_ar": "أمراض العين",
                    "label_en": "Diseases of the eye"}],
}
EXAMPLE_NEW_SPECIALTY = {"code": "NEP", "label_fr": "Néphrologie", "label_ar": "أمراض الكلى",
                         "label_en": "Nephrology", "needs_hospital": True}
EXAMPLE_NEW_MEASURE = {"code": "vaccinations", "label_fr": "Vaccinations",
                       "label_ar": "التلقيحات", "label_en": "Vaccinations"}


def _labelled(table: dict) -> list[dict]:
    return [{"code": c, "label_fr": v[0], "label_ar": v[1], "label_en": v[2]} for c, v in table.items()]


@blp.route("/catalog", methods=["GET"])
@allow(*ALL_ROLES)
@blp.response(200, CatalogSchema, example=EXAMPLE_CATALOG)
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
@blp.arguments(SpecialtySchema, example=EXAMPLE_NEW_SPECIALTY)
@blp.response(201, SpecialtySchema, example=EXAMPLE_NEW_SPECIALTY)
def create_specialty(data):
    """Add a specialty (admin)."""
    specialty = services.add_specialty(data)
    db.session.commit()
    return specialty


@blp.route("/measures", methods=["POST"])
@allow("admin")
@blp.arguments(MeasureSchema, example=EXAMPLE_NEW_MEASURE)
@blp.response(201, MeasureSchema, example=EXAMPLE_NEW_MEASURE)
def create_measure(data):
    """Add a measure (admin)."""
    measure = services.add_measure(data)
    db.session.commit()
    return measure
