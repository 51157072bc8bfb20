"""Regional and caravan reports: printable HTML in fr/ar/en, and PDF with Arabic intact."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from fieldsvc.accounts.models import AuditEvent
from fieldsvc.caravans.models import Enrollment, Volunteer
from fieldsvc.exports import reports

AUTUMN = "from=2026-10-01&to=2026-12-31"


def _pdf_text(body: bytes) -> str:
    from pypdf import PdfReader

    assert body.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def _cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>|\s+", " ", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", html, flags=re.S)]


def test_the_regional_report_is_french_by_default_and_shows_the_season(client, db, season):
    response = client.get(f"/api/v1/exports/report.html?region=08&{AUTUMN}",
                          headers=season.coordinator)
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    assert '<html lang="fr" dir="ltr">' in html
    assert "Drâa-Tafilalet" in html and "Caravane médicale de Zagora" in html
    assert "Wahat Al-Khair" in html and "Union Féminine" in html
    cells = _cells(html)
    # Ophthalmology: 41 + 17 consultations, 6 referrals; M'Hamid's OPH: 30 seen, 12 turned away.
    row = cells.index("Ophtalmologie")
    assert cells[row + 1: row + 5] == ["88", "0", "6", "12"]
    assert "@media print" in html
    csp = response.headers["Content-Security-Policy"]
    assert "'unsafe-inline'" not in csp and reports.CSS_HASH in csp
    db.session.expire_all()
    assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "export.report")).all()


def test_the_regional_report_in_arabic_reads_right_to_left(client, season):
    html = client.get(f"/api/v1/exports/report.html?region=08&lang=ar&{AUTUMN}",
                      headers=season.coordinator).get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html
    assert "درعة تافيلالت" in html and "طب العيون" in html
    english = client.get("/api/v1/exports/report.html?province=08.587&lang=en",
                         headers=season.coordinator).get_data(as_text=True)
    assert '<html lang="en" dir="ltr">' in english and "Ophthalmology" in english


def test_a_planner_sees_hidden_cells_never_small_counts(client, season):
    response = client.get(f"/api/v1/exports/report.html?region=07&{AUTUMN}",
                          headers=season.planner)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    cells = _cells(html)
    assert not [cell for cell in cells if cell in {"1", "2", "3", "4"}], cells
    assert "protected release" not in html  # French by default
    assert "publication protégée" in html or "Non affiché" in html


def test_bad_report_parameters_say_what_to_fix(client, season):
    for query in ("", "region=08&province=08.587", "region=99", "region=08&lang=de"):
        response = client.get(f"/api/v1/exports/report.html?{query}", headers=season.coordinator)
        assert response.status_code == 422, query
        assert response.mimetype == "application/problem+json"


def test_the_caravan_report_names_only_volunteers_who_consented(client, db, season):
    consenting = Volunteer(display_name="Dr Salma Idrissi", specialty_code="OPH",
                           public_consent=True, profile_key_hash="a" * 64)
    private = Volunteer(display_name="Dr Hidden Name", specialty_code="GEN",
                        public_consent=False, profile_key_hash="b" * 64)
    db.session.add_all([consenting, private])
    db.session.flush()
    for number, volunteer in enumerate((consenting, private)):
        db.session.add(Enrollment(caravan_id=season.zagora, volunteer_id=volunteer.id,
                                  display_name=volunteer.display_name, token_hash=str(number) * 64))
    db.session.commit()
    response = client.get(f"/api/v1/exports/caravans/{season.zagora}/report.html",
                          headers=season.coordinator)
    assert response.status_code == 200, response.get_data(as_text=True)
    html = response.get_data(as_text=True)
    assert "Dr Salma Idrissi" in html and "Hidden Name" not in html
    assert "École Al Amal" in html and "2026-10-03" in html
    cells = _cells(html)
    row = cells.index("Ophtalmologie")
    assert cells[row + 1] == "58"
    outside = client.get(f"/api/v1/exports/caravans/{season.zagora}/report.html",
                         headers=season.outsider)
    assert outside.status_code == 403


def test_pdf_reports_hold_the_arabic_region_name_in_logical_order(client, season):
    pytest.importorskip("weasyprint")
    response = client.get(f"/api/v1/exports/report.pdf?region=08&lang=ar&{AUTUMN}",
                          headers=season.coordinator)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/pdf"
    assert "draa-tafilalet" in response.headers["Content-Disposition"]
    text = _pdf_text(response.get_data())
    assert "درعة تافيلالت" in text
    french = _pdf_text(client.get(f"/api/v1/exports/report.pdf?region=08&{AUTUMN}",
                                  headers=season.coordinator).get_data())
    assert "Drâa-Tafilalet" in french and "Ophtalmologie" in french
    caravan = client.get(f"/api/v1/exports/caravans/{season.mhamid}/report.pdf?lang=ar",
                         headers=season.coordinator)
    assert "قافلة امحاميد الغزلان" in _pdf_text(caravan.get_data())


def test_without_weasyprint_the_pdf_is_a_503_that_says_so(client, season, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_pango(name, *args, **kwargs):
        if name == "weasyprint":
            raise OSError("cannot load library 'libpango-1.0-0'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pango)
    response = client.get("/api/v1/exports/report.pdf?region=08", headers=season.coordinator)
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert "report.html" in response.json["detail"]
