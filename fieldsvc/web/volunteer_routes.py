"""Pages of recognition and coordination: contributions, clash notifications, certificates.

They call the volunteers and caravans services, the same ones the API calls.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request, url_for
from flask_babel import force_locale, format_date
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from marshmallow import EXCLUDE, ValidationError
from wtforms import RadioField, StringField
from wtforms.validators import DataRequired, Length

from fieldsvc.areas.models import Area
from fieldsvc.caravans import clashes
from fieldsvc.caravans.services import (
    UnknownJoinCode,
    caravan_by_join_code,
    get_caravan,
    morocco_today,
)
from fieldsvc.catalog.services import list_specialties
from fieldsvc.errors import DomainError, NotFound
from fieldsvc.extensions import db
from fieldsvc.security import ALL_ROLES, STAFF_ROLES, allow, current_principal
from fieldsvc.volunteers import services
from fieldsvc.volunteers.pdf import PdfUnavailable, html_to_pdf
from fieldsvc.volunteers.schemas import ContributionArgs

volunteer_blp = Blueprint("volunteers", __name__, template_folder="templates")


class PledgeForm(FlaskForm):
    display_name = StringField(validators=[DataRequired(), Length(max=120)])
    specialty = RadioField(validators=[DataRequired()])

RUNNERS = ("admin", "coordinator")


def _specialty_labels(lang: str) -> dict[str, str]:
    return {s.code: getattr(s, f"label_{lang}", None) or s.code for s in list_specialties()}


@volunteer_blp.route("/contributions")
@allow(*ALL_ROLES)
def contributions():
    """Show what organizations, partnerships and (consenting) volunteers contributed."""
    try:
        query = ContributionArgs(unknown=EXCLUDE).load(request.args.to_dict())
    except ValidationError:
        query = services.ContributionQuery()
    result = services.contributions(query, current_principal())
    communes = {area.code: area for area in db.session.scalars(
        db.select(Area).where(Area.code.in_({c for row in result.rows for c in row.communes})))}
    return render_template("volunteers/contributions.html", result=result, communes=communes,
                           specialties=_specialty_labels(_lang()),
                           kinds=services.CONTRIBUTION_KINDS,
                           may_certify=current_principal().role in RUNNERS)


@volunteer_blp.route("/notifications")
@allow(*STAFF_ROLES)
def notifications():
    """List the clashes of the caravans to come that concern you."""
    found = clashes.notifications(current_principal(), morocco_today())
    return render_template("volunteers/notifications.html", clashes=found)


@volunteer_blp.route("/volunteers/<int:volunteer_id>/certificates")
@allow(*RUNNERS)
def volunteer_certificates(volunteer_id: int):
    """List the certificates a volunteer can be given: each caravan, each year."""
    found = services.certificates_of(volunteer_id)
    return render_template("volunteers/certificates.html",
                           volunteer=found[0].volunteer if found else None, certificates=found)


def _lang() -> str:
    from flask_babel import get_locale

    return str(get_locale() or "fr")


def _isolated(text: object) -> str:
    # First-strong isolates keep a French name or a date whole inside Arabic text (and back).
    return f"\u2068{text}\u2069"


def _sides(certificate: services.Certificate) -> list[dict[str, Any]]:
    """The certificate's text in French and in Arabic, each in its own language and direction."""
    sides = []
    for lang in ("fr", "ar"):
        with force_locale(lang):
            organizers = [_isolated((org.name_ar or org.name) if lang == "ar" else org.name)
                          for org in certificate.organizers]
            sep = "، " if lang == "ar" else ", "
            values = {"name": certificate.volunteer.display_name,
                      "organizers": sep.join(organizers) or "—",
                      "days": certificate.days}
            if certificate.caravan is not None:
                caravan = certificate.caravan
                place = caravan.commune.name_ar if lang == "ar" else caravan.commune.name_fr
                body = _("For volunteering as a doctor in the medical caravan “%(title)s” in "
                         "%(place)s, from %(first)s to %(last)s (%(days)s days), organized by "
                         "%(organizers)s.", title=_isolated(caravan.title),
                         place=_isolated(place),
                         first=_isolated(format_date(caravan.first_day, "long")),
                         last=_isolated(format_date(caravan.last_day, "long")),
                         **{k: v for k, v in values.items() if k != "name"})
            else:
                body = _("For volunteering as a doctor in %(count)s medical caravans in "
                         "%(year)s (%(days)s days), organized by %(organizers)s.",
                         count=len(certificate.caravans), year=certificate.year,
                         days=certificate.days, organizers=values["organizers"])
            specialty = _specialty_labels(lang).get(certificate.volunteer.specialty_code or "")
            sides.append({
                "lang": lang, "dir": "rtl" if lang == "ar" else "ltr",
                "heading": _("Certificate of recognition"),
                "awarded": _("awarded to"), "name": values["name"], "specialty": specialty,
                "body": body,
                "thanks": _("With the thanks of the organizers and of the people served."),
                "code_label": _("Verification code"),
                "verify": _("Check this certificate at"),
            })
    return sides


CERTIFICATE_CSS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static",
                               "certificate.css")


def _printable(code: str, for_pdf: bool = False) -> tuple[services.Certificate, str]:
    certificate = services.verify_certificate(code)
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    verify_url = base + url_for(".verify", code=certificate.code)
    html = render_template("volunteers/certificate.html", certificate=certificate,
                           sides=_sides(certificate), verify_url=verify_url, for_pdf=for_pdf)
    return certificate, html


@volunteer_blp.route("/certificates/<code>")
@allow(*RUNNERS)
def certificate(code: str):
    """A printable certificate in French and Arabic, side by side."""
    return _printable(code)[1]


@volunteer_blp.route("/certificates/<code>.pdf")
@allow(*RUNNERS)
def certificate_pdf(code: str):
    """The certificate as a PDF (503 where the server cannot print PDF)."""
    certificate, html = _printable(code, for_pdf=True)
    try:
        body = html_to_pdf(html, [CERTIFICATE_CSS])
    except PdfUnavailable as error:
        raise DomainError(_("PDF certificates need WeasyPrint and the Pango library on the "
                            "server; open the certificate page and print it from the browser "
                            "instead."), status=503, title="Service unavailable") from error
    response = Response(body, mimetype="application/pdf")
    response.headers["Content-Disposition"] = (
        f'inline; filename="certificate-{certificate.code}.pdf"')
    return response


@volunteer_blp.route("/verify", methods=["GET"])
@allow(*ALL_ROLES)
def verify_form():
    """Type a certificate's verification code to check it."""
    code = request.args.get("code", "").strip()
    if code:
        return redirect(url_for(".verify", code=code))
    return render_template("volunteers/verify.html", certificate=None, code="")


@volunteer_blp.route("/verify/<code>")
@allow(*ALL_ROLES)
def verify(code: str):
    """Confirm (or refuse) a certificate from its verification code."""
    try:
        found = services.verify_certificate(code[:40])
    except NotFound as error:
        return render_template("volunteers/verify.html", certificate=None, code=code[:40],
                               error=error.detail), 404
    return render_template("volunteers/verify.html", certificate=found, code=found.code,
                           specialties=_specialty_labels(_lang()))


@volunteer_blp.route("/caravans/<int:caravan_id>/staffing")
@allow(*RUNNERS)
def staffing(caravan_id: int):
    """Show the specialties a caravan plans against the doctors who pledged or enrolled."""
    result = services.staffing(get_caravan(caravan_id), current_principal())
    labels = _specialty_labels(_lang())
    sep = "، " if _lang() == "ar" else ", "
    return render_template("volunteers/staffing.html", staffing=result,
                           specialties=labels,
                           gap_labels=sep.join(labels.get(code, code) for code in result.gaps))


@volunteer_blp.route("/pledge/<code>", methods=["GET", "POST"])
@allow(*ALL_ROLES)
def pledge_page(code: str):
    """Pledge to bring a specialty the caravan still needs (the link a coordinator shares)."""
    try:
        caravan = caravan_by_join_code(code[:40], request.remote_addr or "unknown")
    except UnknownJoinCode as error:
        db.session.commit()  # keep the failure: it is what throttles guessing
        return render_template("volunteers/pledge.html", caravan=None, error=error.detail), 404
    staffing = services.staffing_of(caravan)
    labels = _specialty_labels(_lang())
    form = PledgeForm()
    form.specialty.choices = [(row.specialty, labels.get(row.specialty, row.specialty))
                              for row in staffing.specialties]
    pledged, status = None, 200
    if request.method == "POST" and caravan.status == "planned":
        if form.validate_on_submit():
            try:
                pledged = services.pledge(services.PledgeInput(
                    join_code=code[:40], display_name=form.display_name.data or "",
                    specialty=form.specialty.data or ""), request.remote_addr or "unknown")
            except DomainError as error:
                db.session.rollback()
                form.form_errors.append(error.detail)
                status = error.status
            else:
                db.session.commit()
                staffing = services.staffing_of(caravan)
        else:
            status = 422
    return render_template("volunteers/pledge.html", caravan=caravan, staffing=staffing,
                           form=form, pledged=pledged, specialties=labels,
                           code=code[:40]), status
