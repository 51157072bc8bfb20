"""The detail export: every tally line of a coordinator's season, to check it in Excel."""

from __future__ import annotations

import csv
import io
from collections import Counter

from sqlalchemy import func, select

from fieldsvc.accounts.models import AuditEvent
from fieldsvc.tallies.models import Submission, SubmissionVersion, TallyLine


def _lines(response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_data().startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"), newline="")))


def test_the_detail_of_a_season_equals_the_sum_of_its_tally_lines(client, db, season):
    lines = _lines(client.get("/api/v1/exports/detail.csv?from=2026-10-01&to=2026-12-31",
                              headers=season.coordinator))
    stored = db.session.execute(
        select(func.count(), func.sum(TallyLine.count))
        .join(SubmissionVersion, SubmissionVersion.id == TallyLine.version_id)
        .join(Submission, Submission.current_version_id == SubmissionVersion.id)
        .where(SubmissionVersion.caravan_id.in_([season.zagora, season.mhamid]))
    ).one()
    assert len(lines) == stored[0] == 13
    assert sum(int(line["count"]) for line in lines) == stored[1]
    # Rejected lines are there to check, marked; the rest add up to the summary's figures.
    assert {line["review_status"] for line in lines} == {"approved", "received", "flagged",
                                                         "rejected"}
    summary = client.get("/api/v1/summary?by=specialty,measure&region=08&from=2026-10-01"
                         "&to=2026-12-31", headers=season.coordinator).json
    counted: Counter[tuple[str, str]] = Counter()
    for line in lines:
        if line["review_status"] != "rejected":
            counted[(line["specialty"], line["measure"])] += int(line["count"])
    assert counted == {(row["specialty"], row["measure"]): row["count"] for row in summary["rows"]}
    first = next(line for line in lines if line["measure"] == "consultations"
                 and line["specialty"] == "OPH" and line["commune"] == "08.587.01.13")
    assert first["site_name"] == "École Al Amal" and first["commune_name_ar"] == "زاكورة"
    assert first["day"] == "2026-10-03" and first["version"] == "1"
    assert {line["caravan_title"] for line in lines} >= {"قافلة امحاميد الغزلان"}
    assert "Ouahat" not in "".join(line["commune_name_fr"] for line in lines)


def test_the_detail_export_keeps_to_the_period_and_is_audited(client, db, season):
    lines = _lines(client.get("/api/v1/exports/detail.csv?from=2026-11-01&to=2026-11-30",
                              headers=season.coordinator))
    assert {line["day"] for line in lines} == {"2026-11-27", "2026-11-28"}
    db.session.expire_all()
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "export.detail")).one()
    assert event.detail["rows"] == len(lines) == 4
    assert event.detail["filters"] == {"from": "2026-11-01", "to": "2026-11-30"}
    assert event.region_code == "08"


def test_planners_and_other_regions_never_get_the_lines(client, season):
    for headers in (season.planner, {}):
        response = client.get("/api/v1/exports/detail.csv", headers=headers)
        assert response.status_code in (401, 403)
        assert response.mimetype == "application/problem+json"
    other = client.get("/api/v1/exports/detail.csv?region=08", headers=season.outsider)
    assert other.status_code == 403
    mine = _lines(client.get("/api/v1/exports/detail.csv", headers=season.outsider))
    assert {line["commune"] for line in mine} == {"07.351.02.07"}
    everything = _lines(client.get("/api/v1/exports/detail.csv", headers=season.admin))
    assert len(everything) == 13 + 3


def test_a_long_export_starts_at_once(client, season):
    """Exports are streamed (no Content-Length): the header row leaves in the first chunk."""
    for url in ("/api/v1/exports/detail.csv", "/api/v1/exports/summary.csv?by=commune,day&region=08"):
        with client:  # keep the request's context while the body is read, as a server does
            response = client.get(url, headers=season.coordinator, buffered=False)
            assert response.status_code == 200 and response.is_streamed
            assert "Content-Length" not in response.headers
            chunks = iter(response.response)
            first = next(chunks)
            assert first.decode("utf-8-sig").split("\r\n")[0].split(",")[0] in {"caravan", "commune"}
            rest = b"".join(chunks)
            response.close()
            assert rest or first.count(b"\r\n") > 1
