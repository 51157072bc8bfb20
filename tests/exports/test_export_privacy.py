"""A planner never gets an unsuppressed count from 1 to 4 through any export."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from openpyxl import load_workbook

SUMMARY_QUERIES = (
    "by=region,specialty",
    "by=region,specialty&from=2026-10-01&to=2026-12-31",
    "by=region,specialty,quarter",
    "by=province,specialty,quarter&region=08",
    "by=region,sex,age_band,year",
    "by=region,specialty&specialty=OPH",
    "by=region,measure&from=2026-10-01&to=2026-12-31",
    "region=07&by=specialty",
    "by=commune,specialty&region=08&from=2025-01-01&to=2026-12-31",
)


def _counts(extension: str, body: bytes) -> list[Any]:
    if extension == "csv":
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
        return [int(row["count"]) if row["count"] else None for row in rows]
    if extension == "xlsx":
        sheet = load_workbook(io.BytesIO(body)).worksheets[0]
        values = list(sheet.iter_rows(values_only=True))
        position = list(values[0]).index("count")
        return [row[position] for row in values[1:]]
    document = json.loads(body)
    if extension == "json":
        return [row["count"] for row in document["rows"]] + [document.get("total")]
    return [figure["count"] for feature in document["features"]
            for figure in feature["properties"]["figures"]]


def test_no_export_gives_a_planner_a_small_count(client, season):
    answered = 0
    for query in SUMMARY_QUERIES:
        for extension in ("csv", "xlsx", "json", "geojson"):
            response = client.get(f"/api/v1/exports/summary.{extension}?{query}",
                                  headers=season.planner)
            assert response.status_code < 500
            if response.status_code != 200:
                assert response.status_code == 422, (query, extension)
                continue
            answered += 1
            counts = _counts(extension, response.get_data())
            small = [count for count in counts if count is not None and 1 <= count <= 4]
            assert not small, (query, extension, counts)
    assert answered >= 20  # the queries above are served, not refused


def test_far_dates_are_answered_not_a_server_error(client, season):
    for dates in ("from=0932-07-01&to=0932-09-30", "from=9999-10-01&to=9999-12-31",
                  "from=0932-08-29&to=1043-04-03"):
        response = client.get(f"/api/v1/exports/summary.csv?by=region,specialty&{dates}",
                              headers=season.planner)
        assert response.status_code in (200, 422), dates
        public = client.get(f"/api/v1/public/summary?{dates}")
        assert public.status_code in (200, 422), dates
