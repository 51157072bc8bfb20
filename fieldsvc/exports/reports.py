"""Printable reports (HTML with print styles, PDF with WeasyPrint): a region's, a caravan's.

Every count comes from `insights.services.summary` for the caller: without full detail a
section the protected release cannot serve says so instead of being computed here.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import render_template
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select

from fieldsvc.areas.models import Area
from fieldsvc.caravans import services as caravans
from fieldsvc.caravans.models import Caravan, Enrollment, Volunteer
from fieldsvc.catalog.codes import AGE_BANDS
from fieldsvc.catalog.services import list_measures, list_specialties
from fieldsvc.errors import DomainError, Forbidden, NotFound, ValidationFailed
from fieldsvc.exports.services import audit_export
from fieldsvc.extensions import db
from fieldsvc.insights import needs
from fieldsvc.insights import services as insights
from fieldsvc.insights.queries import ReleaseInfo, SummaryQuery
from fieldsvc.security import Principal
from fieldsvc.tallies import services as tallies

REPORT_MEASURES = ("consultations", "procedures", "referrals", "turned_away")
CSS = (Path(__file__).parent / "templates" / "exports" / "report.css").read_text(encoding="utf-8")
CSS_HASH = base64.b64encode(hashlib.sha256(CSS.encode("utf-8")).digest()).decode()
# The report's own CSP: the service's policy, with its one inline stylesheet allowed by hash
# (the file is whole on its own when saved or printed).
REPORT_CSP = (f"default-src 'none'; style-src 'sha256-{CSS_HASH}'; img-src 'self' data:; "
              "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


class PdfUnavailable(DomainError):
    status = 503
    title = "PDF unavailable"
    type_slug = "pdf-unavailable"


@dataclass
class Section:
    """Rows of a report's table, or why the caller cannot see them."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    unavailable: str | None = None
    release: ReleaseInfo | None = None


@dataclass
class CaravanLine:
    id: int
    title: str
    commune: Area
    first_day: dt.date
    last_day: dt.date
    status: str
    organizers: list[str]
    completeness: float | None


@dataclass
class Report:
    kind: str  # "region" or "caravan"
    title_fr: str
    title_ar: str
    area: Area | None
    start: dt.date | None
    end: dt.date | None
    full_detail: bool
    specialties: Section
    demographics: Section
    caravans: list[CaravanLine] = field(default_factory=list)
    needs: Section = field(default_factory=Section)
    caravan: Caravan | None = None
    days: list[dt.date] = field(default_factory=list)
    sites: list[str] = field(default_factory=list)
    volunteers: list[str] = field(default_factory=list)
    unnamed_volunteers: int = 0
    completeness: float | None = None
    generated_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def _section(query: SummaryQuery, principal: Principal, pivot: str | None = None) -> Section:
    """A summary for the caller, or the service's own reason it cannot be served to them."""
    try:
        result = insights.summary(query, principal)
    except ValidationFailed as refused:
        return Section(unavailable=refused.detail)
    rows = result.rows
    if pivot is not None:  # one row per pivot key, a column per measure
        table: dict[Any, dict[str, Any]] = {}
        for row in rows:
            entry = table.setdefault(row[pivot], {pivot: row[pivot]})
            entry[row["measure"]] = row["count"]
            if row.get("suppressed"):
                entry[f"{row['measure']}_suppressed"] = row["suppressed"]
        rows = [table[key] for key in sorted(table)]
    return Section(rows=rows, release=result.release)


def _completeness(caravan_id: int, principal: Principal) -> float | None:
    try:
        state = tallies.completeness(caravan_id, principal)
    except (Forbidden, NotFound):
        return None
    planned = [cell for cell in state.cells if cell.planned]
    return None if not planned else state.received / len(planned)


def regional_report(area_code: str, start: dt.date | None, end: dt.date | None,
                    principal: Principal, need_specialty: str = "GEN") -> Report:
    """A region's or province's season: caravans, totals by specialty, patients, needs."""
    area = db.session.get(Area, area_code)
    if area is None or area.level not in ("region", "province"):
        message = _("Name one region (08) or province (08.587) to report on.")
        raise ValidationFailed(message, errors={"region": [message]})
    field_name = "regions" if area.level == "region" else "provinces"
    base = {field_name: [area.code], "start": start, "end": end}
    by_specialty = _section(SummaryQuery(by=["specialty", "measure"],
                                         measures=list(REPORT_MEASURES), **base), principal,
                            pivot="specialty")
    if by_specialty.unavailable and "measure" in by_specialty.unavailable:
        by_specialty = _section(SummaryQuery(by=["specialty", "measure"], **base), principal,
                                pivot="specialty")
    demographics = _section(SummaryQuery(by=["sex", "age_band"], measures=["consultations"],
                                         **base), principal)
    full = insights.has_full_detail(principal, SummaryQuery(**base))
    lines = []
    listed, _total = caravans.list_caravans(caravans.CaravanFilter(region=area.region_code), 1, 500)
    for caravan in sorted(listed, key=lambda c: (c.first_day, c.id)):
        if not caravan.commune_code.startswith(area.code):
            continue
        if (end is not None and caravan.first_day > end) or (
                start is not None and caravan.last_day < start):
            continue
        lines.append(CaravanLine(
            id=caravan.id, title=caravan.title, commune=caravan.commune,
            first_day=caravan.first_day, last_day=caravan.last_day, status=caravan.status,
            organizers=[organization.name for organization in caravan.organizers],
            completeness=_completeness(caravan.id, principal)))
    try:
        ranking = needs.need_rows(need_specialty, level="commune", principal=principal,
                                  **{field_name: [area.code]})
        need_section = Section(rows=[row for row in ranking["rows"] if row.get("score") is not None][:10])
    except DomainError as refused:
        need_section = Section(unavailable=refused.detail)
    report = Report(kind="region", title_fr=area.name_fr, title_ar=area.name_ar, area=area,
                    start=start, end=end, full_detail=full, specialties=by_specialty,
                    demographics=demographics, caravans=lines, needs=need_section)
    audit_export("report", "region", len(by_specialty.rows), principal,
                 region_code=area.region_code, full_detail=full)
    return report


def caravan_report(caravan_id: int, principal: Principal) -> Report:
    """One caravan for its organizers and sponsors: days, sites, specialties, volunteers, totals."""
    caravan = caravans.get_caravan(caravan_id)
    query = SummaryQuery(by=["specialty", "measure"], caravans=[caravan.id],
                         measures=list(REPORT_MEASURES))
    if not insights.has_full_detail(principal, query):
        raise Forbidden(_("Only the caravan's coordinators and organizers see its report."))
    by_specialty = _section(query, principal, pivot="specialty")
    demographics = _section(SummaryQuery(by=["sex", "age_band"], caravans=[caravan.id],
                                         measures=["consultations"]), principal)
    people = db.session.execute(
        select(Volunteer.display_name, Volunteer.public_consent, Enrollment.id)
        .select_from(Enrollment).outerjoin(Volunteer, Volunteer.id == Enrollment.volunteer_id)
        .where(Enrollment.caravan_id == caravan.id)
    ).all()
    named = sorted({name for name, consent, _enrollment in people if consent and name})
    report = Report(
        kind="caravan", title_fr=caravan.title, title_ar=caravan.title, area=caravan.commune,
        start=caravan.first_day, end=caravan.last_day, full_detail=True,
        specialties=by_specialty, demographics=demographics, caravan=caravan,
        days=[caravan.first_day + dt.timedelta(days=n)
              for n in range((caravan.last_day - caravan.first_day).days + 1)],
        sites=[site.name for site in caravan.sites], volunteers=named,
        unnamed_volunteers=len(people) - sum(1 for name, consent, _enrollment in people if consent and name),
        completeness=_completeness(caravan.id, principal),
    )
    audit_export("report", "caravan", len(by_specialty.rows), principal,
                 region_code=caravan.region_code, caravan=caravan.id)
    return report


def render_html(report: Report, lang: str) -> str:
    """The report as a whole HTML page in one language (Arabic right to left)."""
    with force_locale(lang):
        specialties = {s.code: getattr(s, f"label_{lang}") for s in list_specialties()}
        measures = {m.code: getattr(m, f"label_{lang}") for m in list_measures()}
        return render_template(
            "exports/report.html", report=report, lang=lang,
            direction="rtl" if lang == "ar" else "ltr", css=CSS, specialties=specialties,
            measures=measures, report_measures=REPORT_MEASURES, age_bands=AGE_BANDS,
            drivers={"demand": _("demand"), "unmet": _("unmet demand"),
                     "access": _("distance to care"), "recency": _("time since the last caravan"),
                     "vulnerability": _("vulnerability")},
            name=lambda item: (getattr(item, "name_ar", None) if lang == "ar" else None)
            or getattr(item, "name_fr", ""),
            title=report.title_ar if lang == "ar" else report.title_fr,
        )


def render_pdf(html: str) -> bytes:
    """Print the HTML to PDF with WeasyPrint; 503 where it cannot load (no Pango)."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as missing:
        raise PdfUnavailable(_("PDF reports need WeasyPrint and the Pango library on the "
                               "server; ask for report.html and print it instead.")) from missing
    return HTML(string=html).write_pdf()
