"""Summary exports hold exactly what the summary API answers, in files Excel and QGIS open."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import Any

from openpyxl import load_workbook
from sqlalchemy import select

from fieldsvc.accounts.models import AuditEvent

AUTUMN = "from=2026-10-01&to=2026-12-31"


def _api(client, query: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"/api/v1/summary?{query}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def _csv_rows(response) -> tuple[list[str], list[dict[str, str]]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    raw = response.get_data()
    assert raw.startswith("\ufeff".encode()), "Excel needs the BOM to read Arabic"
    text = raw.decode("utf-8-sig")
    assert "\r\n" in text and "\n" not in text.replace("\r\n", "")  # RFC 4180 line ends
    reader = csv.DictReader(io.StringIO(text, newline=""))
    return list(reader.fieldnames or []), list(reader)


def _as_text(rows: list[dict[str, Any]], columns: list[str]) -> list[dict[str, str]]:
    return [{c: "" if row.get(c) is None else str(row[c]) for c in columns} for row in rows]


def _xlsx_rows(response) -> tuple[list[str], list[dict[str, Any]], Any]:
    assert response.status_code == 200, response.get_data(as_text=True)
    workbook = load_workbook(io.BytesIO(response.get_data()))
    sheet = workbook.worksheets[0]
    values = list(sheet.iter_rows(values_only=True))
    header = list(values[0])
    return header, [dict(zip(header, row, strict=True)) for row in values[1:]], sheet


QUERIES = (
    f"by=commune,specialty,day&region=08&{AUTUMN}",
    f"by=province,specialty,sex,age_band,condition&region=08&{AUTUMN}",
    "by=caravan,week,measure&region=08",
)


def test_csv_and_xlsx_equal_the_summary_api_for_full_detail(client, season):
    for query in QUERIES:
        expected = _api(client, query, season.coordinator)
        assert expected["full_detail"] is True
        columns, rows = _csv_rows(client.get(f"/api/v1/exports/summary.csv?{query}",
                                             headers=season.coordinator))
        assert rows == _as_text(expected["rows"], columns), query
        assert set(columns) >= set().union(*(row.keys() for row in expected["rows"]))

        header, cells, sheet = _xlsx_rows(client.get(f"/api/v1/exports/summary.xlsx?{query}",
                                                     headers=season.coordinator))
        assert header == columns
        assert sheet.freeze_panes == "A2"
        assert len(cells) == len(expected["rows"])
        for cell, row in zip(cells, expected["rows"], strict=True):
            assert isinstance(cell["count"], int)  # a number Excel can sum
            for column in columns:
                value = cell[column]
                if isinstance(value, dt.datetime):  # days and weeks are dates in the sheet
                    value = value.date().isoformat()
                assert value == row.get(column), (query, column)
        total = sum(cell["count"] for cell in cells)
        assert total == expected["total"]


def test_arabic_names_survive_csv_and_xlsx(client, season):
    query = f"by=commune&region=08&{AUTUMN}"
    _, rows = _csv_rows(client.get(f"/api/v1/exports/summary.csv?{query}",
                                   headers=season.coordinator))
    assert {row["commune_name_ar"] for row in rows} == {"زاكورة", "امحاميد الغزلان"}
    _, cells, sheet = _xlsx_rows(client.get(f"/api/v1/exports/summary.xlsx?{query}",
                                            headers=season.coordinator))
    assert {cell["commune_name_ar"] for cell in cells} == {"زاكورة", "امحاميد الغزلان"}
    widths = {sheet.column_dimensions[letter].width for letter in "ABC"}
    assert all(width and width >= 8 for width in widths)
    _, rows = _csv_rows(client.get("/api/v1/exports/summary.csv?by=caravan&region=08",
                                   headers=season.coordinator))
    assert "قافلة امحاميد الغزلان" in {row["caravan_title"] for row in rows}


def test_a_planners_exports_equal_the_protected_summary(client, season):
    query = f"by=region,specialty&{AUTUMN}"
    expected = _api(client, query, season.planner)
    assert expected["full_detail"] is False
    assert any(row.get("suppressed") for row in expected["rows"])
    columns, rows = _csv_rows(client.get(f"/api/v1/exports/summary.csv?{query}",
                                         headers=season.planner))
    assert rows == _as_text(expected["rows"], columns)
    suppressed = [row for row in rows if row["suppressed"]]
    assert suppressed and all(row["count"] == "" for row in suppressed)
    header, cells, _ = _xlsx_rows(client.get(f"/api/v1/exports/summary.xlsx?{query}",
                                             headers=season.planner))
    assert [[cell[c] for c in header] for cell in cells] == [
        [row.get(c) for c in header] for row in expected["rows"]]
    as_json = client.get(f"/api/v1/exports/summary.json?{query}", headers=season.planner)
    assert json.loads(as_json.get_data()) == expected
    assert "attachment" in as_json.headers["Content-Disposition"]


def test_a_planner_asking_for_detail_gets_the_same_refusal_as_from_the_api(client, season):
    query = f"by=commune,day&region=08&{AUTUMN}"
    api = client.get(f"/api/v1/summary?{query}", headers=season.planner)
    assert api.status_code == 422
    for extension in ("csv", "xlsx", "json", "geojson"):
        response = client.get(f"/api/v1/exports/summary.{extension}?{query}",
                              headers=season.planner)
        assert response.status_code == 422, extension
        assert response.mimetype == "application/problem+json"
        assert response.json["errors"] == api.json["errors"]


def test_the_file_name_says_which_region_and_period(client, season):
    response = client.get(f"/api/v1/exports/summary.csv?by=specialty&region=08&{AUTUMN}",
                          headers=season.coordinator)
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "draa-tafilalet" in disposition and "2026-10-01_2026-12-31" in disposition
    assert disposition.endswith('.csv"')
    response = client.get("/api/v1/exports/summary.xlsx?by=specialty&province=08.587",
                          headers=season.coordinator)
    assert "zagora_all-time.xlsx" in response.headers["Content-Disposition"]


def test_geojson_puts_each_area_on_its_point_with_its_figures(client, season):
    query = f"by=commune,specialty&region=08&{AUTUMN}"
    expected = _api(client, query, season.coordinator)
    response = client.get(f"/api/v1/exports/summary.geojson?{query}", headers=season.coordinator)
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    collection = json.loads(response.get_data())
    assert collection["type"] == "FeatureCollection"
    features = {feature["id"]: feature for feature in collection["features"]}
    assert set(features) == {"08.587.01.13", "08.587.09.23"}
    mhamid = features["08.587.09.23"]
    assert mhamid["geometry"] == {"type": "Point", "coordinates": [-5.72, 29.82]}
    assert mhamid["properties"]["name_ar"] == "امحاميد الغزلان"
    figures = [(f["specialty"], f["count"]) for feature in features.values()
               for f in feature["properties"]["figures"]]
    assert sorted(figures) == sorted((r["specialty"], r["count"]) for r in expected["rows"])
    no_area = client.get("/api/v1/exports/summary.geojson?by=specialty&region=08",
                         headers=season.coordinator)
    assert no_area.status_code == 422 and "by" in no_area.json["errors"]


def test_a_suppressed_export_is_capped(app, client, season):
    app.config["SUPPRESSED_EXPORT_MAX_CELLS"] = 2
    try:
        response = client.get(f"/api/v1/exports/summary.csv?by=region,specialty&{AUTUMN}",
                              headers=season.planner)
        assert response.status_code == 422
        assert response.mimetype == "application/problem+json"
        assert "by" in response.json["errors"] and "2" in response.json["detail"]
        full = client.get(f"/api/v1/exports/summary.csv?by=commune,specialty&region=08&{AUTUMN}",
                          headers=season.coordinator)
        assert full.status_code == 200  # full detail streams: no cap
    finally:
        app.config["SUPPRESSED_EXPORT_MAX_CELLS"] = 50000


def test_every_export_is_audited_with_its_filters_and_rows(client, db, season):
    query = f"by=commune,specialty&region=08&{AUTUMN}"
    expected = _api(client, query, season.coordinator)
    for extension in ("csv", "xlsx", "json", "geojson"):
        assert client.get(f"/api/v1/exports/summary.{extension}?{query}",
                          headers=season.coordinator).status_code == 200
    db.session.expire_all()
    events = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "export.summary").order_by(AuditEvent.id)
    ).all()
    assert [event.detail["format"] for event in events] == ["csv", "xlsx", "json", "geojson"]
    for event in events:
        assert event.actor_kind == "user" and event.actor_id
        assert event.region_code == "08"
        assert event.detail["rows"] == expected["row_count"]
        assert event.detail["filters"] == {"by": "commune,specialty", "region": "08",
                                           "from": "2026-10-01", "to": "2026-12-31"}


def test_odd_filter_values_are_data_not_sql(client, db, season):
    odd = "0');DROP TABLE area"  # within the 20 characters a code may have
    for url in (f"/api/v1/exports/summary.csv?by=commune&commune={odd}",
                "/api/v1/exports/summary.csv?by=specialty&from=2026-10-04&to=2026-10-04"
                "&province=08.587,07%25"):
        response = client.get(url, headers=season.admin)
        assert response.status_code == 200, url
    _, rows = _csv_rows(client.get(f"/api/v1/exports/summary.csv?by=commune&commune={odd}",
                                   headers=season.admin))
    assert rows == []
    assert client.get("/api/v1/areas/08.587.01.13").status_code == 200
    # A region is two digits, in the summary as in the detail export: refused, not searched.
    for url in (f"/api/v1/exports/detail.csv?region={odd}",
                f"/api/v1/exports/summary.csv?by=commune&region={odd}",
                "/api/v1/exports/summary.csv?by=specialty&region=08,07%25"):
        refused = client.get(url, headers=season.admin)
        assert refused.status_code == 422 and "deux chiffres" in str(refused.json["errors"]), url


def test_a_control_character_in_a_title_does_not_break_the_workbook(client, db, season):
    from fieldsvc.caravans.models import Caravan

    db.session.get(Caravan, season.zagora).title = "Caravane\x07 de Zagora"
    db.session.commit()
    _, cells, _ = _xlsx_rows(client.get("/api/v1/exports/summary.xlsx?by=caravan&region=08",
                                        headers=season.coordinator))
    assert "Caravane de Zagora" in {cell["caravan_title"] for cell in cells}


def test_a_full_detail_xlsx_is_streamed_from_the_cursor_and_equals_the_api(client, season):
    query = f"by=commune,specialty,day&region=08&{AUTUMN}"
    expected = _api(client, query, season.coordinator)
    with client:  # keep the request's context while the body is read, as a server does
        response = client.get(f"/api/v1/exports/summary.xlsx?{query}",
                              headers=season.coordinator, buffered=False)
        assert response.is_streamed  # built as the rows come, not from a list held in memory
        assert "Content-Length" not in response.headers
        header, cells, sheet = _xlsx_rows(response)
        response.close()
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["B"].width >= len("commune_name_fr") + 2  # fitted
    assert [{k: v.date().isoformat() if isinstance(v, dt.datetime) else v
             for k, v in cell.items() if v is not None} for cell in cells] == [
        {k: v for k, v in row.items() if v is not None and k in header}
        for row in expected["rows"]]
    arabic = [cell["commune_name_ar"] for cell in cells]
    assert arabic and all(name and "\u0600" <= name[0] <= "\u06ff" for name in arabic)
    planner = client.get(f"/api/v1/exports/summary.xlsx?by=region,specialty&{AUTUMN}",
                         headers=season.planner)
    assert planner.status_code == 200 and not planner.is_streamed  # the release, as before


def _streamed_body(client, url: str, headers: dict[str, str]) -> bytes:
    with client:  # keep the request's context while the body is read, as a server does
        response = client.get(url, headers=headers, buffered=False)
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.is_streamed and "Content-Length" not in response.headers
        body = b"".join(response.response)
        response.close()
    return body


def test_a_full_detail_json_is_streamed_and_is_the_summary_apis_document(client, season):
    for query in QUERIES:
        expected = _api(client, query, season.coordinator)
        body = _streamed_body(client, f"/api/v1/exports/summary.json?{query}", season.coordinator)
        assert json.loads(body) == expected, query
        # the same text as the document written whole (sorted keys, Arabic as is)
        assert body.decode() == json.dumps(expected, ensure_ascii=False, sort_keys=True), query
    empty = "by=commune&region=08&from=2020-01-01&to=2020-01-02"
    body = _streamed_body(client, f"/api/v1/exports/summary.json?{empty}", season.coordinator)
    assert json.loads(body) == _api(client, empty, season.coordinator)


def test_a_full_detail_geojson_is_streamed_and_holds_the_summary_apis_figures(app, client, season):
    from fieldsvc.exports.formats import geojson

    for query, by in ((f"by=commune,specialty&region=08&{AUTUMN}", ["commune", "specialty"]),
                      (f"by=specialty,province,sex&region=08&{AUTUMN}",
                       ["specialty", "province", "sex"]),
                      ("by=province&region=08", ["province"])):
        expected = _api(client, query, season.coordinator)
        meta = {key: value for key, value in expected.items() if key != "rows"}
        with app.app_context():  # the collection built whole from the API's own rows
            whole = json.loads(json.dumps(geojson(by, expected["rows"], meta)))
        body = _streamed_body(client, f"/api/v1/exports/summary.geojson?{query}",
                              season.coordinator)
        streamed = json.loads(body)
        assert streamed["fieldsvc"] == whole["fieldsvc"] and streamed["type"] == "FeatureCollection"
        if by[0] in ("commune", "province"):  # grouped as the API sorts: the very same order
            assert streamed["features"] == whole["features"], query
        else:  # grouped by area first: the same features, areas in code order
            assert sorted(streamed["features"], key=lambda f: f["id"]) == sorted(
                whole["features"], key=lambda f: f["id"]), query
        assert sum(figure["count"] for feature in streamed["features"]
                   for figure in feature["properties"]["figures"]) == expected["total"]
        assert any(feature["properties"]["name_ar"] for feature in streamed["features"])
