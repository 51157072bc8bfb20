"""DHIS2 dataValueSets and ADX messages, from an editable mapping."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ADX = "{urn:ihe:qrph:adx:2015}"
REGION = "region=08&from=2026-10-01&to=2026-12-31"


def _get(client, url, headers):
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def test_a_data_value_set_has_dhis2s_shape_and_period_ids(client, season):
    expected_periods = {
        "day": {"20261003", "20261004", "20261127", "20261128"},
        "week": {"2026W40", "2026W48"},
        "month": {"202610", "202611"},
        "quarter": {"2026Q4"},
        "year": {"2026"},
    }
    summary = _get(client, f"/api/v1/summary?by=measure&{REGION}", season.coordinator).json
    totals = {row["measure"]: row["count"] for row in summary["rows"]}
    for unit, periods in expected_periods.items():
        body = json.loads(_get(client, f"/api/v1/exports/dhis2/dataValueSets.json?period={unit}"
                               f"&{REGION}", season.coordinator).get_data())
        assert body["dataSet"] == "FIELDSVC_CARAVANS"
        assert {value["period"] for value in body["dataValues"]} == periods, unit
        for value in body["dataValues"]:
            assert set(value) == {"dataElement", "period", "orgUnit", "categoryOptionCombo",
                                  "value"}
            assert value["value"].isdigit()
        by_element: dict[str, int] = {}
        for value in body["dataValues"]:
            by_element[value["dataElement"]] = by_element.get(value["dataElement"], 0) + int(
                value["value"])
        assert by_element == {f"FS_{measure.upper()}": count for measure, count in totals.items()}
    combos = {(v["orgUnit"], v["categoryOptionCombo"], v["value"]) for v in body["dataValues"]
              if v["dataElement"] == "FS_TURNED_AWAY"}
    assert combos == {("08.587.09.23", "OPH_F_65+", "12")}


def test_dhis2_csv_is_dhis2s_import_format(client, season):
    response = _get(client, f"/api/v1/exports/dhis2/dataValueSets.csv?period=week&{REGION}",
                    season.coordinator)
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True), newline="")))
    assert rows[0] == ["dataelement", "period", "orgunit", "categoryoptioncombo",
                       "attributeoptioncombo", "value", "storedby", "lastupdated", "comment",
                       "followup"]
    assert ["FS_TURNED_AWAY", "2026W48", "08.587.09.23", "OPH_F_65+", "", "12", "", "", "", ""
            ] in rows


def _check_adx_structure(document: bytes) -> ElementTree.Element:
    root = ElementTree.fromstring(document)
    assert root.tag == f"{ADX}adx"
    dt.datetime.fromisoformat(root.attrib["exported"].replace("Z", "+00:00"))
    groups = list(root)
    assert groups and all(group.tag == f"{ADX}group" for group in groups)
    for group in groups:
        assert group.attrib["orgUnit"]
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}/P(1D|7D|1M|3M|1Y)", group.attrib["period"])
        dt.date.fromisoformat(group.attrib["period"].split("/")[0])  # a real day
        assert list(group)
        for value in group:
            assert value.tag == f"{ADX}dataValue" and value.attrib["dataElement"]
            assert re.fullmatch(r"-?\d+(\.\d+)?", value.attrib["value"])
    return root


@pytest.mark.parametrize("unit, period", [
    ("day", "2026-11-27/P1D"), ("week", "2026-11-23/P7D"), ("month", "2026-11-01/P1M"),
    ("quarter", "2026-10-01/P3M"), ("year", "2026-01-01/P1Y")])
def test_adx_has_start_and_duration_periods_and_validates(client, season, unit, period):
    response = _get(client, f"/api/v1/exports/adx.xml?period={unit}&{REGION}",
                    season.coordinator)
    root = _check_adx_structure(response.get_data())
    mhamid = [g for g in root if g.attrib["orgUnit"] == "08.587.09.23"]
    assert period in {g.attrib["period"] for g in mhamid}
    values = [v.attrib for g in mhamid for v in g]
    assert {"dataElement": "FS_TURNED_AWAY", "SPECIALTY": "OPH", "SEX": "F", "AGE": "65+",
            "value": "12"} in values
    schema_file = SHARED / "adx_loose.xsd"
    if schema_file.exists():
        import xmlschema

        xmlschema.XMLSchema(str(schema_file)).validate(response.get_data())


def test_an_edited_mapping_renames_what_dhis2_receives(app, client, runner, season, tmp_path):
    target = tmp_path / "mapping.json"
    result = runner.invoke(args=["dhis2", "mapping-template", "--output", str(target)])
    assert result.exit_code == 0, result.output
    mapping = json.loads(target.read_text(encoding="utf-8"))
    assert mapping["categoryOptionCombos"]["OPH.F.65+"] == "OPH_F_65+"
    assert "08.587.09.23" in mapping["orgUnits"]
    mapping["categoryOptionCombos"]["OPH.F.65+"] = "Xk8bZ3qTRw1"
    mapping["orgUnits"]["08.587.09.23"] = "mH4miDG3kQ2"
    mapping["dataElements"]["turned_away"] = "tUrN3dAw4yZ"
    target.write_text(json.dumps(mapping), encoding="utf-8")
    app.config["DHIS2_MAPPING_FILE"] = str(target)
    try:
        body = json.loads(_get(client, f"/api/v1/exports/dhis2/dataValueSets.json?{REGION}",
                               season.coordinator).get_data())
        assert {"dataElement": "tUrN3dAw4yZ", "period": "202611", "orgUnit": "mH4miDG3kQ2",
                "categoryOptionCombo": "Xk8bZ3qTRw1", "value": "12"} in body["dataValues"]
        target.write_text("{not json", encoding="utf-8")
        broken = client.get(f"/api/v1/exports/adx.xml?{REGION}", headers=season.coordinator)
        assert broken.status_code == 503 and broken.mimetype == "application/problem+json"
        assert "mapping-template" in broken.json["detail"]
    finally:
        app.config["DHIS2_MAPPING_FILE"] = None


def test_dhis2_exports_refuse_what_the_release_cannot_serve_a_planner(client, season):
    for url in ("/api/v1/exports/dhis2/dataValueSets.json", "/api/v1/exports/adx.xml"):
        response = client.get(f"{url}?{REGION}", headers=season.planner)
        assert response.status_code == 422 and response.mimetype == "application/problem+json"
    bad = client.get(f"/api/v1/exports/adx.xml?period=fortnight&{REGION}",
                     headers=season.coordinator)
    assert bad.status_code == 422 and "period" in bad.json["errors"]
