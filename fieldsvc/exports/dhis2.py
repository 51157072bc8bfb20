"""DHIS2 interop: dataValueSets (JSON, CSV) with DHIS2 period ids, and ADX (IHE QRPH) XML.

Counts come from `insights.services.summary` like every export; what DHIS2 calls them comes
from a mapping file the operator edits (`flask --app wsgi dhis2 mapping-template` writes one):
a data element per measure, a categoryOptionCombo per specialty × sex × age band (or the
category option codes ADX uses), and an orgUnit per area (its HCP code when not mapped).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from flask import current_app
from flask_babel import gettext as _
from marshmallow import Schema, ValidationError, fields, validate
from sqlalchemy import select

from fieldsvc.areas.models import Area
from fieldsvc.catalog.codes import AGE_BANDS, SEXES
from fieldsvc.catalog.services import measure_codes, specialty_codes
from fieldsvc.errors import DomainError, ValidationFailed
from fieldsvc.exports.services import audit_export, one_region
from fieldsvc.extensions import db
from fieldsvc.insights import services as insights
from fieldsvc.insights.queries import SummaryQuery, SummaryResult
from fieldsvc.security import Principal

DEFAULT_MAPPING = Path(__file__).parent / "dhis2_mapping.json"
PERIOD_UNITS = ("day", "week", "month", "quarter", "year")
ADX_NAMESPACE = "urn:ihe:qrph:adx:2015"
ADX_DURATIONS = {"day": "P1D", "week": "P7D", "month": "P1M", "quarter": "P3M", "year": "P1Y"}
CSV_COLUMNS = ["dataelement", "period", "orgunit", "categoryoptioncombo", "attributeoptioncombo",
               "value", "storedby", "lastupdated", "comment", "followup"]


class MappingUnusable(DomainError):
    status = 503
    title = "DHIS2 mapping unusable"
    type_slug = "dhis2-mapping"


class MappingSchema(Schema):
    """The mapping file's shape (extra keys such as _comment are the operator's notes)."""

    class Meta:
        unknown = "exclude"

    dataSet = fields.String(load_default=None)  # noqa: N815 - DHIS2's own names
    attributeOptionCombo = fields.String(load_default=None)  # noqa: N815
    orgUnitLevel = fields.String(load_default="commune",  # noqa: N815
                                 validate=validate.OneOf(("region", "province", "commune")))
    orgUnits = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict)  # noqa: N815
    dataElements = fields.Dict(keys=fields.String(), values=fields.String(), required=True)  # noqa: N815
    categoryOptionCombos = fields.Dict(keys=fields.String(), values=fields.String(),  # noqa: N815
                                       load_default=dict)
    categoryOptionComboPattern = fields.String(  # noqa: N815
        load_default="{specialty}_{sex}_{age_band}")
    adxCategories = fields.Dict(keys=fields.String(), values=fields.String(),  # noqa: N815
                                load_default=lambda: {"SPECIALTY": "specialty", "SEX": "sex",
                                                      "AGE": "age_band"})
    categoryOptions = fields.Dict(keys=fields.String(),  # noqa: N815
                                  values=fields.Dict(keys=fields.String(), values=fields.String()),
                                  load_default=dict)


@dataclass
class Mapping:
    data_set: str | None
    attribute_option_combo: str | None
    org_unit_level: str
    org_units: dict[str, str]
    data_elements: dict[str, str]
    combos: dict[str, str]
    combo_pattern: str
    adx_categories: dict[str, str]
    category_options: dict[str, dict[str, str]]

    def combo(self, specialty: str, sex: str, age_band: str) -> str:
        key = f"{specialty}.{sex}.{age_band}"
        if key in self.combos:
            return self.combos[key]
        return self.combo_pattern.format(specialty=specialty, sex=sex, age_band=age_band)

    def option(self, dimension: str, code: str) -> str:
        return self.category_options.get(dimension, {}).get(code, code)


def mapping_path() -> Path:
    return Path(current_app.config.get("DHIS2_MAPPING_FILE") or DEFAULT_MAPPING)


def load_mapping(path: Path | None = None) -> Mapping:
    """Read and check the operator's mapping file; an unusable one is a 503 that says why."""
    path = path or mapping_path()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        data = MappingSchema().load(raw)
        for key in data["categoryOptionCombos"]:
            if key.count(".") != 2:
                raise ValidationError({"categoryOptionCombos": [
                    f"{key!r}: keys are SPECIALTY.SEX.AGE_BAND, e.g. OPH.F.50-64"]})
        data["categoryOptionComboPattern"].format(specialty="GEN", sex="F", age_band="0-4")
    except (OSError, ValueError, KeyError, IndexError, ValidationError) as error:
        detail = error.messages if isinstance(error, ValidationError) else str(error)
        raise MappingUnusable(
            _("The DHIS2 mapping file %(path)s cannot be used: %(detail)s. Write a new one with "
              "flask --app wsgi dhis2 mapping-template.", path=path.name, detail=detail)
        ) from error
    return Mapping(data_set=data["dataSet"], attribute_option_combo=data["attributeOptionCombo"],
                   org_unit_level=data["orgUnitLevel"], org_units=data["orgUnits"],
                   data_elements=data["dataElements"], combos=data["categoryOptionCombos"],
                   combo_pattern=data["categoryOptionComboPattern"],
                   adx_categories=data["adxCategories"], category_options=data["categoryOptions"])


def mapping_template() -> dict[str, Any]:
    """A mapping to fill in: every measure, specialty × sex × age band and area of this database."""
    specialties = sorted(specialty_codes())
    default = load_mapping(DEFAULT_MAPPING)
    level = default.org_unit_level
    areas = db.session.scalars(select(Area.code).where(Area.level == level).order_by(Area.code))
    return {
        "_comment": ("Replace the values with your DHIS2 identifiers (UIDs or codes, as your "
                     "import's idScheme says). orgUnits: an area's HCP code → its orgUnit; an "
                     "area left out is sent under its HCP code. categoryOptionCombos: "
                     "SPECIALTY.SEX.AGE_BAND → categoryOptionCombo. categoryOptions: the codes "
                     "ADX sends for each category."),
        "dataSet": default.data_set,
        "attributeOptionCombo": default.attribute_option_combo,
        "orgUnitLevel": level,
        "orgUnits": {code: code for code in areas},
        "dataElements": {measure: default.data_elements.get(measure, f"FS_{measure.upper()}")
                         for measure in sorted(measure_codes())},
        "categoryOptionCombos": {f"{s}.{sex}.{band}": default.combo(s, sex, band)
                                 for s in specialties for sex in SEXES for band in AGE_BANDS},
        "categoryOptionComboPattern": default.combo_pattern,
        "adxCategories": default.adx_categories,
        "categoryOptions": {
            "specialty": {s: default.option("specialty", s) for s in specialties},
            "sex": {sex: default.option("sex", sex) for sex in SEXES},
            "age_band": {band: default.option("age_band", band) for band in AGE_BANDS},
        },
    }


def dhis2_period(unit: str, key: str) -> str:
    """DHIS2's period id for a summary period key: 20261128, 2026W48, 202611, 2026Q4, 2026."""
    if unit == "day":
        return key.replace("-", "")
    if unit == "week":
        year, week, _ = dt.date.fromisoformat(key).isocalendar()
        return f"{year}W{week}"
    if unit == "month":
        return key.replace("-", "")
    if unit == "quarter":
        return key.replace("-", "")
    return key


def adx_period(unit: str, key: str) -> str:
    """ADX's start/duration for a period key: 2026-11-28/P1D, 2026-11-23/P7D, 2026-11-01/P1M…"""
    if unit in ("day", "week"):
        start = key
    elif unit == "month":
        start = f"{key}-01"
    elif unit == "quarter":
        year, quarter = key.split("-Q")
        start = f"{year}-{(int(quarter) - 1) * 3 + 1:02d}-01"
    else:
        start = f"{key}-01-01"
    return f"{start}/{ADX_DURATIONS[unit]}"


@dataclass
class Dhis2Export:
    mapping: Mapping
    unit: str
    level: str
    result: SummaryResult

    @property
    def values(self) -> list[dict[str, Any]]:
        """Rows with a count (suppressed cells are left out: DHIS2 has no way to say hidden)."""
        return [row for row in self.result.rows if row["count"] is not None]


def dhis2_summary(query: SummaryQuery, unit: str, principal: Principal, fmt: str) -> Dhis2Export:
    """The summary DHIS2 needs (area × period × measure × specialty × sex × age band)."""
    if unit not in PERIOD_UNITS:
        message = _("period is one of %(units)s.", units=", ".join(PERIOD_UNITS))
        raise ValidationFailed(message, errors={"period": [message]})
    mapping = load_mapping()
    level = mapping.org_unit_level
    mapped = sorted(mapping.data_elements)
    asked = query.measures or mapped
    unmapped = [measure for measure in asked if measure not in mapping.data_elements]
    if unmapped:
        message = _("No DHIS2 data element is mapped for %(measures)s; add it to the mapping "
                    "file's dataElements.", measures=", ".join(unmapped))
        raise ValidationFailed(message, errors={"measure": [message]})
    query.by = [level, unit, "measure", "specialty", "sex", "age_band"]
    query.measures = list(asked)
    result = insights.summary(query, principal)
    export = Dhis2Export(mapping=mapping, unit=unit, level=level, result=result)
    audit_export("dhis2", fmt, len(export.values), principal, full_detail=result.full_detail,
                 region_code=one_region(query))
    return export


def _org_unit(export: Dhis2Export, code: str) -> str:
    return export.mapping.org_units.get(code, code)


def data_value_set(export: Dhis2Export) -> dict[str, Any]:
    """A DHIS2 dataValueSet: {dataSet?, dataValues: [{dataElement, period, orgUnit, …, value}]}."""
    mapping = export.mapping
    values = []
    for row in export.values:
        value: dict[str, Any] = {
            "dataElement": mapping.data_elements[row["measure"]],
            "period": dhis2_period(export.unit, row[export.unit]),
            "orgUnit": _org_unit(export, row[export.level]),
            "categoryOptionCombo": mapping.combo(row["specialty"], row["sex"], row["age_band"]),
            "value": str(row["count"]),
        }
        if mapping.attribute_option_combo:
            value["attributeOptionCombo"] = mapping.attribute_option_combo
        values.append(value)
    body: dict[str, Any] = {"dataValues": values}
    if mapping.data_set:
        body = {"dataSet": mapping.data_set, **body}
    return body


def data_value_csv(export: Dhis2Export) -> str:
    """DHIS2's CSV import format (header row, one data value a line)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for value in data_value_set(export)["dataValues"]:
        writer.writerow([value["dataElement"], value["period"], value["orgUnit"],
                         value["categoryOptionCombo"], value.get("attributeOptionCombo", ""),
                         value["value"], "", "", "", ""])
    return out.getvalue()


def adx_document(export: Dhis2Export, exported: dt.datetime | None = None) -> bytes:
    """An ADX message: one group per area and period, its values by category option codes."""
    mapping = export.mapping
    if not export.values:
        message = _("No counts in this selection: an ADX message needs at least one value.")
        raise ValidationFailed(message, errors={"from": [message]})
    exported = (exported or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    ElementTree.register_namespace("", ADX_NAMESPACE)
    root = ElementTree.Element(f"{{{ADX_NAMESPACE}}}adx",
                               exported=exported.isoformat().replace("+00:00", "Z"))
    groups: dict[tuple[str, str], ElementTree.Element] = {}
    for row in export.values:
        key = (row[export.level], row[export.unit])
        group = groups.get(key)
        if group is None:
            attributes = {"orgUnit": _org_unit(export, key[0]),
                          "period": adx_period(export.unit, key[1])}
            if mapping.data_set:
                attributes["dataSet"] = mapping.data_set
            group = groups[key] = ElementTree.SubElement(root, f"{{{ADX_NAMESPACE}}}group",
                                                         attributes)
        attributes = {"dataElement": mapping.data_elements[row["measure"]]}
        for category, dimension in mapping.adx_categories.items():
            attributes[category] = mapping.option(dimension, row[dimension])
        attributes["value"] = str(row["count"])
        ElementTree.SubElement(group, f"{{{ADX_NAMESPACE}}}dataValue", attributes)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
