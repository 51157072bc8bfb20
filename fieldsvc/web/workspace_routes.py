"""The coordinator's workspace: caravans, poster, completeness, paper sheets, review, volunteers,
staff and audit, as server-rendered pages calling the same services as the API."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, format_date, get_locale
from flask_babel import gettext as _
from marshmallow import ValidationError
from sqlalchemy import select

from fieldsvc.accounts import services as accounts
from fieldsvc.accounts.models import ROLES, Organization, User
from fieldsvc.areas.models import Area
from fieldsvc.areas.points import parse_point
from fieldsvc.areas.services import search_areas
from fieldsvc.areas.text import fold
from fieldsvc.caravans import services as caravans
from fieldsvc.caravans.models import Caravan
from fieldsvc.caravans.schemas import CaravanCreateSchema, CaravanPatchSchema
from fieldsvc.catalog.codes import AGE_BANDS
from fieldsvc.catalog.services import list_measures, list_specialties
from fieldsvc.db import MAX_INT
from fieldsvc.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Unauthorized,
    ValidationFailed,
    flatten_messages,
    unstorable_text,
)
from fieldsvc.extensions import db
from fieldsvc.security import allow, current_principal
from fieldsvc.tallies import services as tallies
from fieldsvc.tallies.models import REVIEW_STATUSES
from fieldsvc.tallies.schemas import ReviewSchema, SubmissionCreateSchema
from fieldsvc.web.workspace_forms import (
    CaravanForm,
    ConfirmForm,
    ReviewForm,
    SheetForm,
    SiteChangeForm,
    StaffChangeForm,
    StaffForm,
    StatusForm,
)

workspace_blp = Blueprint("workspace", __name__, url_prefix="/workspace")

RUNNERS = ("admin", "coordinator")  # who runs caravans: everyone else gets 403 here
RECENTLY_CLOSED = dt.timedelta(days=60)
SEXES = ("F", "M")


# --- errors as pages ---------------------------------------------------------------------------

@workspace_blp.errorhandler(DomainError)
def _refused(error: DomainError) -> Any:
    """Send a visitor who is not logged in to the login page; say what else went wrong."""
    if isinstance(error, Unauthorized):
        return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
    return render_template("workspace/refused.html", error=error), error.status


@workspace_blp.before_request
def _refuse_unstorable_form_text() -> Any:
    """NUL characters and unpaired surrogates cannot be stored: refuse them before any form."""
    for key, value in request.form.items(multi=True):
        if unstorable_text(value, key):
            error = ValidationFailed(_("Remove NUL characters and unpaired surrogates from the "
                                       "form, then send it again."))
            return render_template("workspace/refused.html", error=error), 422
    return None


# --- helpers -------------------------------------------------------------------------------------

def _lang() -> str:
    locale = get_locale()
    return locale.language if locale is not None else "fr"


def label(entry: Any, lang: str | None = None) -> str:
    """A catalog entry's or an area's label in the page's language (French when missing)."""
    lang = lang or _lang()
    if hasattr(entry, "label_fr"):
        return getattr(entry, f"label_{lang}", None) or entry.label_fr
    if lang == "ar":
        return getattr(entry, "name_ar", None) or entry.name_fr
    return entry.name_fr


def organization_name(organization: Organization, lang: str | None = None) -> str:
    if (lang or _lang()) == "ar" and organization.name_ar:
        return organization.name_ar
    return organization.name


@workspace_blp.app_template_filter("day")
def _day(value: dt.date, form: str = "medium") -> str:
    return format_date(value, form)


@workspace_blp.app_context_processor
def _workspace_context() -> dict[str, Any]:
    return {"label": label, "organization_name": organization_name}


def _caravan(caravan_id: int) -> Caravan:
    """A caravan the caller runs (its region), else 404/403 as the API answers."""
    caravan = caravans.get_caravan(caravan_id)
    caravans.require_scope(caravan, current_principal())
    return caravan


def _specialty_labels() -> dict[str, str]:
    return {entry.code: label(entry) for entry in list_specialties()}


def _regions_of(principal: Any) -> list[Area]:
    query = select(Area).where(Area.level == "region").order_by(Area.code)
    if principal.role != "admin":
        query = query.where(Area.code.in_(principal.region_codes))
    return list(db.session.scalars(query))


def _caravans_in_scope(principal: Any, status: str | None = None) -> list[Caravan]:
    regions = [None] if principal.role == "admin" else principal.region_codes
    found: list[Caravan] = []
    for region in regions:
        page = caravans.list_caravans(
            caravans.CaravanFilter(status=status, region=region, limit=500), principal)
        found.extend(view.caravan for view in page.items)
    return sorted(found, key=lambda c: (c.first_day, c.id), reverse=True)


@dataclass
class Glance:
    """Completeness of a caravan in three numbers, for the landing page."""

    planned: int
    received: int
    approved: int


def _glance(caravan: Caravan) -> Glance:
    grid = tallies.completeness(caravan.id, current_principal())
    planned = [cell for cell in grid.cells if cell.planned]
    return Glance(len(planned), sum(1 for c in planned if c.submissions),
                  sum(1 for c in planned if c.all_approved))


# --- landing -------------------------------------------------------------------------------------

@workspace_blp.route("/")
@allow(*RUNNERS)
def index():
    """List the caravans of the caller's regions, upcoming, active and recently closed."""
    principal = current_principal()
    recent = caravans.morocco_today() - RECENTLY_CLOSED
    groups: dict[str, list[Caravan]] = {"active": [], "planned": [], "closed": [], "older": []}
    for caravan in _caravans_in_scope(principal):
        older = caravan.status == "closed" and caravan.last_day < recent
        groups["older" if older else caravan.status].append(caravan)
    groups["planned"].sort(key=lambda c: (c.first_day, c.id))
    glances = {c.id: _glance(c) for status in ("active", "planned", "closed")
               for c in groups[status]}
    return render_template("workspace/index.html", groups=groups, glances=glances,
                           regions=_regions_of(principal))


# --- caravans: create and edit -------------------------------------------------------------------

COMMUNE_CODE_IN_TEXT = re.compile(r"\b(\d{2}\.\d{3}\.\d{2}\.\d{2})\b")


def commune_choice(area: Area) -> str:
    """How a commune is written in the picker: both names and the HCP code."""
    return f"{area.name_fr} — {area.name_ar} ({area.code})"


def _find_commune(text: str) -> tuple[Area | None, str | None]:
    """The commune a coordinator typed (name in French or Arabic, or a picked choice)."""
    match = COMMUNE_CODE_IN_TEXT.search(text)
    if match:
        area = db.session.get(Area, match.group(1))
        if area is not None and area.level == "commune":
            return area, None
    found = search_areas(level="commune", q=text, limit=8)
    if found.total == 1:
        return found.items[0], None
    wanted = fold(text)
    exact = [area for area in found.items if wanted in (fold(area.name_fr), fold(area.name_ar))]
    if len(exact) == 1:
        return exact[0], None
    if found.total == 0:
        return None, _("No commune is called %(name)s; type part of its French or Arabic name "
                       "and pick it from the list.", name=text)
    names = ", ".join(commune_choice(area) for area in found.items[:5])
    return None, _("Several communes match %(name)s: %(names)s. Pick one from the list.",
                   name=text, names=names)


@dataclass
class Understood:
    """What a typed site location was read as, shown back beside the field."""

    text: str
    lat: float | None = None
    lon: float | None = None

    @property
    def dms(self) -> str:
        if self.lat is None or self.lon is None:
            return ""
        return f"{_dms(self.lat, 'N', 'S')} {_dms(self.lon, 'E', 'W')}"


def _dms(value: float, positive: str, negative: str) -> str:
    hemisphere = positive if value >= 0 else negative
    seconds = round(abs(value) * 3600)
    degrees, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{degrees}°{minutes:02d}′{seconds:02d}″{hemisphere}"


@dataclass
class CaravanPage:
    form: CaravanForm
    caravan: Caravan | None = None
    errors: dict[str, list[str]] = field(default_factory=dict)
    understood: dict[int, Understood] = field(default_factory=dict)
    commune: Area | None = None


def _fill_choices(form: CaravanForm) -> None:
    form.organizers.choices = [(org.id, organization_name(org))
                               for org in accounts.list_organizations()]
    form.specialties.choices = [(entry.code, f"{label(entry)} ({entry.code})")
                                for entry in list_specialties()]


def _read_sites(page: CaravanPage) -> tuple[list[dict[str, str]], list[int]]:
    """The site rows filled in, as the API's body, and which form row each came from."""
    sites, rows = [], []
    for index, entry in enumerate(page.form.sites.entries):
        name = (entry.form.name.data or "").strip()
        location = (entry.form.location.data or "").strip()
        if not name and not location:
            continue
        if location:
            point = parse_point(location)
            page.understood[index] = Understood(location, *(point or (None, None)))
        if not name:
            page.errors[f"sites-{index}-name"] = [_("Name this site (a school, a health post…).")]
        elif not location:
            page.errors[f"sites-{index}-location"] = [_("Give this site's point.")]
        sites.append({"name": name, "location": location})
        rows.append(index)
    return sites, rows


def _field_key(key: str, rows: list[int]) -> str:
    """An API error key (sites[1].location) as the form field it belongs to (sites-2-location)."""
    match = re.fullmatch(r"sites\[(\d+)\]\.(name|location)", key)
    if match and int(match.group(1)) < len(rows):
        return f"sites-{rows[int(match.group(1))]}-{match.group(2)}"
    return key.split("[")[0].split(".")[0]


def _undone(error: DomainError) -> dict[str, list[str]]:
    """Undo a refused change; its messages by field ("_form" when it names none)."""
    db.session.rollback()
    return {k: list(v) for k, v in (error.errors or {"_form": [error.detail]}).items()}


def _with_form_errors(form: Any, errors: dict[str, list[str]]) -> dict[str, list[str]]:
    """The form's own field errors, then the service's (which win on the same field)."""
    return {**{k: list(v) for k, v in form.errors.items()}, **errors}


def _add_errors(page: CaravanPage, errors: dict[str, Any] | None, rows: list[int],
                fallback: str) -> None:
    if not errors:
        page.errors.setdefault("_form", []).append(fallback)
        return
    for key, messages in flatten_messages(errors).items():
        page.errors.setdefault(_field_key(key, rows), []).extend(messages)


def _save_caravan(page: CaravanPage) -> Caravan | None:
    """Create or change the caravan through the API's schema and service; None on errors."""
    form, principal = page.form, current_principal()
    form_ok = form.validate()
    for name, messages in form.errors.items():
        if name != "sites":
            page.errors[name] = list(messages)
    sites, rows = _read_sites(page)
    if page.caravan is None or page.caravan.status == "planned" or form.commune.data:
        commune, problem = _find_commune(form.commune.data or "") if form.commune.data else (None, None)
        page.commune = commune
        if problem:
            page.errors["commune"] = [problem]
    if not form_ok or page.errors or "check" in request.form:
        return None
    try:
        if page.caravan is None:
            body = {"title": form.title.data.strip(), "commune": page.commune.code,
                    "organizers": form.organizers.data or [], "sites": sites,
                    "first_day": form.first_day.data.isoformat(),
                    "last_day": form.last_day.data.isoformat(),
                    "specialties": form.specialties.data or []}
            view = caravans.create_caravan(CaravanCreateSchema().load(body), principal)
        else:
            body = {"title": form.title.data.strip(),
                    "first_day": form.first_day.data.isoformat(),
                    "last_day": form.last_day.data.isoformat(),
                    "specialties": form.specialties.data or []}
            if page.caravan.status == "closed":
                body = {"title": body["title"]}
            if sites:
                body["sites"] = sites
            changes = CaravanPatchSchema().load(body)
            if page.caravan.status != "closed":
                changes.organizers = form.organizers.data or []
                changes.sent = changes.sent | {"organizers"}
            view = caravans.update_caravan(page.caravan, changes, principal)
    except ValidationError as error:
        db.session.rollback()
        _add_errors(page, error.normalized_messages(), rows, _("Check the fields below."))
        return None
    except DomainError as error:
        db.session.rollback()
        if isinstance(error, Forbidden) and page.caravan is None:
            page.errors["commune"] = [_("This commune is outside your regions.")]
        else:
            _add_errors(page, error.errors, rows, error.detail)
        return None
    for warning in view.warnings or []:
        flash(warning)
    db.session.commit()
    return view.caravan


def _render_caravan_form(page: CaravanPage, status: int = 200) -> Any:
    return render_template("workspace/caravan_form.html", page=page, form=page.form,
                           caravan=page.caravan, commune_choice=commune_choice), status


@workspace_blp.route("/caravans/new", methods=["GET", "POST"])
@allow(*RUNNERS)
def caravan_new():
    """Create a caravan: title, organizers, commune, sites, days and planned specialties."""
    form = CaravanForm()
    _fill_choices(form)
    page = CaravanPage(form)
    if request.method == "POST":
        caravan = _save_caravan(page)
        if caravan is not None:
            flash(_("Caravan created. Its join code is %(code)s.",
                    code=caravans.display_join_code(caravan.join_code)))
            return redirect(url_for(".caravan", caravan_id=caravan.id))
        return _render_caravan_form(page, 200 if "check" in request.form else 422)
    return _render_caravan_form(page)


@workspace_blp.route("/caravans/<int:caravan_id>/edit", methods=["GET", "POST"])
@allow(*RUNNERS)
def caravan_edit(caravan_id: int):
    """Change a caravan's title, organizers, days, specialties, or add sites."""
    caravan = _caravan(caravan_id)
    if request.method == "POST":
        form = CaravanForm()
    else:
        form = CaravanForm(formdata=None, data={
            "title": caravan.title, "commune": commune_choice(caravan.commune),
            "organizers": [org.id for org in caravan.organizers],
            "first_day": caravan.first_day, "last_day": caravan.last_day,
            "specialties": caravan.specialties})
    form.commune.data = commune_choice(caravan.commune)  # a caravan stays in its commune
    _fill_choices(form)
    page = CaravanPage(form, caravan=caravan, commune=caravan.commune)
    if request.method == "POST":
        saved = _save_caravan(page)
        if saved is not None:
            flash(_("Caravan saved."))
            return redirect(url_for(".caravan", caravan_id=saved.id))
        return _render_caravan_form(page, 200 if "check" in request.form else 422)
    return _render_caravan_form(page)


@workspace_blp.route("/caravans/<int:caravan_id>")
@allow(*RUNNERS)
def caravan(caravan_id: int):
    """Show a caravan: its facts, sites, join code and what to do next."""
    caravan = _caravan(caravan_id)
    view = caravans.caravan_view(caravan, current_principal())
    return render_template("workspace/caravan.html", caravan=caravan, view=view,
                           specialty_labels=_specialty_labels(), glance=_glance(caravan),
                           status_form=StatusForm(), remove_form=ConfirmForm())


@workspace_blp.route("/caravans/<int:caravan_id>/status", methods=["POST"])
@allow(*RUNNERS)
def caravan_status(caravan_id: int):
    """Start a planned caravan or close an active one."""
    caravan = _caravan(caravan_id)
    form = StatusForm()
    if not form.validate():
        abort(400)
    changes = caravans.CaravanChanges(sent=frozenset({"status"}), status=form.status.data)
    try:
        caravans.update_caravan(caravan, changes, current_principal())
    except DomainError as error:
        db.session.rollback()
        flash(error.detail)
    else:
        db.session.commit()
        flash(_("The caravan is closed.") if form.status.data == "closed"
              else _("The caravan is active."))
    target = request.form.get("back")
    if target == "completeness":
        return redirect(url_for(".completeness", caravan_id=caravan_id))
    return redirect(url_for(".caravan", caravan_id=caravan_id))


@workspace_blp.route("/caravans/<int:caravan_id>/sites/<int:site_id>/remove", methods=["POST"])
@allow(*RUNNERS)
def remove_site(caravan_id: int, site_id: int):
    """Remove a mistyped site; the page says why when it must stay."""
    caravan = _caravan(caravan_id)
    if not ConfirmForm().validate():
        abort(400)
    try:
        caravans.remove_site(caravan, site_id, current_principal())
    except Conflict as error:  # tallies name it, or the caravan is closed: say so on the page
        db.session.rollback()
        flash(error.detail)
    else:
        db.session.commit()
        flash(_("The site was removed."))
    return redirect(url_for(".caravan", caravan_id=caravan_id))


@workspace_blp.route("/caravans/<int:caravan_id>/sites/<int:site_id>", methods=["GET", "POST"])
@allow(*RUNNERS)
def site(caravan_id: int, site_id: int):
    """Correct a site's name or point (also once tallies name it)."""
    caravan = _caravan(caravan_id)
    site = caravans.site_to_change(caravan, site_id, current_principal())
    if request.method == "POST":
        form = SiteChangeForm()
    else:
        form = SiteChangeForm(formdata=None, data={
            "name": site.name, "location": f"{site.lat:.5f}, {site.lon:.5f}"})
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        if form.validate():
            try:
                caravans.update_site(caravan, site.id, caravans.SiteChanges(
                    name=form.name.data, location=form.location.data), current_principal())
            except ValidationFailed as error:
                db.session.rollback()
                errors = {k: list(v) for k, v in (error.errors or {"location": [error.detail]})
                          .items()}
            else:
                db.session.commit()
                flash(_("The site was corrected."))
                return redirect(url_for(".caravan", caravan_id=caravan_id))
        errors = {**{k: list(v) for k, v in form.errors.items()}, **errors}
        return render_template("workspace/site.html", caravan=caravan, site=site, form=form,
                               errors=errors), 422
    return render_template("workspace/site.html", caravan=caravan, site=site, form=form,
                           errors=errors)


# --- the join poster ---------------------------------------------------------------------------

@workspace_blp.route("/caravans/<int:caravan_id>/poster")
@allow(*RUNNERS)
def poster(caravan_id: int):
    """A printable A4 poster with the join code and its QR code, in French and Arabic."""
    caravan = _caravan(caravan_id)
    view = caravans.caravan_view(caravan, current_principal())
    specialties = {entry.code: entry for entry in list_specialties()}
    sides = []
    for lang in ("fr", "ar"):
        with force_locale(lang):
            sides.append({
                "lang": lang, "dir": "rtl" if lang == "ar" else "ltr",
                "heading": _("Medical caravan"),
                "title": caravan.title,
                "where": label(caravan.commune, lang),
                "days": _("%(first)s to %(last)s", first=format_date(caravan.first_day, "long"),
                          last=format_date(caravan.last_day, "long"))
                if caravan.first_day != caravan.last_day else format_date(caravan.first_day,
                                                                          "long"),
                "organized_by": _("Organized by %(names)s", names=" · ".join(
                    organization_name(org, lang)
                    for org in sorted(caravan.organizers, key=lambda o: o.name)))
                if caravan.organizers else "",
                "specialties": [label(specialties[code], lang) for code in caravan.specialties
                                if code in specialties],
                "doctors": _("Volunteer doctors: scan the code with your phone, or open the "
                             "link and type the join code."),
                "code_label": _("Join code"),
                "privacy": _("Only counts are sent, never anything about a patient."),
            })
    return render_template("workspace/poster.html", caravan=caravan, view=view, sides=sides)


# --- completeness ---------------------------------------------------------------------------

@workspace_blp.route("/caravans/<int:caravan_id>/completeness")
@allow(*RUNNERS)
def completeness(caravan_id: int):
    """The grid of days × planned specialties: approved, received or missing; close from here."""
    caravan = _caravan(caravan_id)
    grid = tallies.completeness(caravan.id, current_principal())
    cells = {(cell.day, cell.specialty): cell for cell in grid.cells}
    columns = [*grid.specialties,
               *sorted({cell.specialty for cell in grid.cells} - set(grid.specialties))]
    return render_template("workspace/completeness.html", caravan=caravan, grid=grid,
                           cells=cells, columns=columns, glance=_glance(caravan),
                           specialty_labels=_specialty_labels(), status_form=StatusForm())


# --- volunteers ------------------------------------------------------------------------------

@workspace_blp.route("/caravans/<int:caravan_id>/volunteers")
@allow(*RUNNERS)
def volunteers(caravan_id: int):
    """Who enrolled on which phone, their specialty, when they last sent a tally."""
    caravan = _caravan(caravan_id)
    devices = caravans.list_enrollments(caravan, current_principal())
    return render_template("workspace/volunteers.html", caravan=caravan, devices=devices,
                           last_sent=tallies.last_tally_times(caravan.id),
                           specialty_labels=_specialty_labels())


def _enrollment(enrollment_id: int) -> Any:
    from fieldsvc.caravans.models import Enrollment

    enrollment = db.session.get(Enrollment, enrollment_id)
    if enrollment is None:
        raise NotFound(_("No volunteer device has this number."))
    caravans.require_scope(enrollment.caravan, current_principal())
    return enrollment


@workspace_blp.route("/devices/<int:enrollment_id>/revoke", methods=["GET", "POST"])
@allow(*RUNNERS)
def revoke(enrollment_id: int):
    """Confirm, then revoke a volunteer's device token."""
    enrollment = _enrollment(enrollment_id)
    form = ConfirmForm()
    if request.method == "POST" and form.validate():
        caravans.revoke_enrollment(enrollment.id, current_principal())
        db.session.commit()
        flash(_("The device of %(name)s can no longer send tallies.",
                name=enrollment.display_name))
        return redirect(url_for(".volunteers", caravan_id=enrollment.caravan_id))
    return render_template("workspace/revoke.html", enrollment=enrollment, form=form)


# --- paper sheets ----------------------------------------------------------------------------

@dataclass
class Sheet:
    """The grid of a paper tally sheet: rows measure × sex, columns age bands."""

    measures: list[Any]
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    @staticmethod
    def name(measure: str, sex: str, band: str) -> str:
        return f"n-{measure}-{sex}-{band}"


def _sheet_choices(form: SheetForm, caravan: Caravan) -> None:
    labels = _specialty_labels()
    days = [caravan.first_day + dt.timedelta(days=n)
            for n in range((caravan.last_day - caravan.first_day).days + 1)]
    form.day.choices = [(day.isoformat(), format_date(day, "full")) for day in days]
    planned = caravan.specialties
    others = sorted(set(labels) - set(planned))
    form.specialty.choices = [(code, f"{labels.get(code, code)} ({code})")
                              for code in [*planned, *others]]
    form.site.choices = [("", _("No particular site"))] + [
        (str(site.id), site.name) for site in caravan.sites]
    devices = caravans.list_enrollments(caravan, current_principal())
    form.volunteer.choices = [("", _("Not a volunteer with a phone"))] + [
        (str(d.enrollment.id), d.enrollment.display_name) for d in devices]


@workspace_blp.route("/caravans/<int:caravan_id>/sheet", methods=["GET", "POST"])
@allow(*RUNNERS)
def sheet(caravan_id: int):
    """Type a volunteer's paper tally sheet, checked and flagged as the phone's tallies are."""
    caravan = _caravan(caravan_id)
    form = SheetForm()
    _sheet_choices(form, caravan)
    grid = Sheet(measures=list_measures())
    status = 200
    if request.method == "POST":
        saved = _save_sheet(caravan, form, grid)
        if saved is not None:
            flags = tallies.render_flags(saved.version.flags)
            flash(_("Paper sheet saved for %(day)s.", day=format_date(saved.version.day, "full")))
            for flag in flags:
                flash(_("To check: %(flag)s", flag=flag["message"]))
            db.session.commit()
            return redirect(url_for(".sheet", caravan_id=caravan.id))
        status = 422
    return render_template("workspace/sheet.html", caravan=caravan, form=form, grid=grid,
                           sexes=SEXES, bands=AGE_BANDS), status


def _save_sheet(caravan: Caravan, form: SheetForm, grid: Sheet) -> Any:
    """Build the tally the phone would send and store it with the tallies service."""
    ok = form.validate()
    grid.errors.update({name: list(messages) for name, messages in form.errors.items()})
    lines, cells = [], []
    for measure in grid.measures:
        for sex in SEXES:
            for band in AGE_BANDS:
                name = Sheet.name(measure.code, sex, band)
                raw = (request.form.get(name) or "").strip()
                grid.values[name] = raw
                if not raw:
                    continue
                if not raw.isdigit():
                    grid.errors[name] = [_("A whole number, 0 or more.")]
                    continue
                if int(raw):
                    lines.append({"measure": measure.code, "sex": sex, "age_band": band,
                                  "count": int(raw)})
                    cells.append(name)
    if not lines and not grid.errors:
        grid.errors["_grid"] = [_("The sheet is empty: type at least one count.")]
    if not ok or grid.errors:
        return None
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()), "caravan_id": caravan.id, "day": form.day.data,
        "specialty": form.specialty.data, "lines": lines,
        "site_id": int(form.site.data) if form.site.data else None,
        "enrollment_id": int(form.volunteer.data) if form.volunteer.data else None,
        "note": (form.note.data or "").strip() or None,
    }
    try:
        content = SubmissionCreateSchema().load(body)
        stored, _created = tallies.submit(content, current_principal())
    except ValidationError as error:
        for key, messages in flatten_messages(error.normalized_messages()).items():
            match = re.match(r"lines\[(\d+)\]", key)
            target = cells[int(match.group(1))] if match else _sheet_field(key)
            grid.errors.setdefault(target, []).extend(messages)
        return None
    except DomainError as error:
        db.session.rollback()
        for key, messages in (error.errors or {"_grid": [error.detail]}).items():
            grid.errors.setdefault(_sheet_field(key), []).extend(messages)
        return None
    return stored


def _sheet_field(key: str) -> str:
    return {"site_id": "site", "enrollment_id": "volunteer"}.get(key, key)


# --- review ------------------------------------------------------------------------------------

INBOX_PAGE = 100  # tallies per page of the review inbox


@workspace_blp.route("/review")
@allow(*RUNNERS)
def review_inbox():
    """The region's tallies, flagged first, filterable by caravan, day, specialty and status."""
    principal = current_principal()
    in_scope = _caravans_in_scope(principal)
    args = request.args
    caravan_id = args.get("caravan", type=int)
    if caravan_id is not None and caravan_id not in {c.id for c in in_scope}:
        caravan_id = None
    try:
        day = dt.date.fromisoformat(args["day"]) if args.get("day") else None
    except ValueError:
        day = None
    status = args.get("status") if args.get("status") in REVIEW_STATUSES else None
    labels = _specialty_labels()
    specialty = args.get("specialty") if args.get("specialty") in labels else None
    offset = max(0, min(args.get("offset", 0, type=int), MAX_INT))
    page = tallies.list_submissions(principal, tallies.SubmissionFilter(
        caravan_id=caravan_id, day=day, status=status, specialty=specialty,
        flagged_first=True, limit=INBOX_PAGE, offset=offset))
    by_id = {c.id: c for c in in_scope}
    names = _enrollment_names([item.submission.enrollment_id for item in page.items])
    chosen = {"caravan": caravan_id, "day": day.isoformat() if day else "",
              "status": status or "", "specialty": specialty or ""}
    kept = {key: value for key, value in chosen.items() if value not in (None, "")}
    pages = {
        "first": offset + 1 if page.items else 0,
        "last": offset + len(page.items),
        "previous": url_for("web.workspace.review_inbox", **kept,
                            offset=max(0, offset - INBOX_PAGE)) if offset > 0 else None,
        "next": url_for("web.workspace.review_inbox", **kept, offset=offset + INBOX_PAGE)
        if offset + INBOX_PAGE < page.total else None,
    }
    return render_template(
        "workspace/review.html", page=page, pages=pages, caravans=in_scope, by_id=by_id,
        names=names, specialty_labels=labels, statuses=REVIEW_STATUSES,
        render_flags=tallies.render_flags, chosen=chosen, approve_form=ConfirmForm())


def _enrollment_names(ids: list[int | None]) -> dict[int, str]:
    from fieldsvc.caravans.models import Enrollment

    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(db.session.execute(
        select(Enrollment.id, Enrollment.display_name).where(Enrollment.id.in_(wanted))).all())


def _version_table(stored: tallies.StoredSubmission) -> dict[str, Any]:
    """Every version's lines side by side; a count that differs from the previous one is marked."""
    versions = stored.versions or []
    keys: list[tuple[str, str, str, str]] = []
    counts: list[dict[tuple[str, str, str, str], int]] = []
    for version in versions:
        mine = {}
        for line in version.lines:
            key = (line["measure"], line["sex"], line["age_band"], line["condition"] or "")
            mine[key] = line["count"]
            if key not in keys:
                keys.append(key)
        counts.append(mine)
    rows = []
    for key in sorted(keys):
        cells = []
        for n, mine in enumerate(counts):
            value = mine.get(key)
            changed = n > 0 and value != counts[n - 1].get(key)
            cells.append({"value": value, "changed": changed})
        rows.append({"key": key, "cells": cells})
    return {"versions": versions, "rows": rows}


@workspace_blp.route("/submissions/<string:submission_id>", methods=["GET", "POST"])
@allow(*RUNNERS)
def submission(submission_id: str):
    """A tally with its flags in words and its versions side by side; approve, flag or reject."""
    principal = current_principal()
    stored = tallies.get_submission(submission_id, principal)
    form = ReviewForm()
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                decision = ReviewSchema().load({"status": form.status.data,
                                                "reason": form.reason.data or None,
                                                "version": _form_version()})
                tallies.review(submission_id, decision, principal)
            except ValidationError as error:
                errors = flatten_messages(error.normalized_messages())
            except Conflict as error:  # amended since the page was opened
                db.session.rollback()
                errors = {"_form": [error.detail]}
            else:
                db.session.commit()
                flash({"approved": _("Tally approved."), "flagged": _("Tally flagged."),
                       "rejected": _("Tally rejected.")}[form.status.data])
                back = request.form.get("back")
                if back == "inbox":
                    return redirect(url_for(".review_inbox"))
                return redirect(url_for(".submission", submission_id=submission_id))
        errors = _with_form_errors(form, errors)
        status = 422
    caravan = db.session.get(Caravan, stored.submission.caravan_id)
    return render_template(
        "workspace/submission.html", stored=stored, caravan=caravan, form=form, errors=errors,
        table=_version_table(stored), flags=tallies.render_flags(stored.version.flags),
        names=_enrollment_names([stored.submission.enrollment_id]),
        measure_labels={m.code: label(m) for m in list_measures()},
        specialty_labels=_specialty_labels()), status


@workspace_blp.route("/submissions/<string:submission_id>/approve", methods=["POST"])
@allow(*RUNNERS)
def approve(submission_id: str):
    """Approve a tally from the inbox in one click."""
    if not ConfirmForm().validate():
        abort(400)
    try:
        decision = ReviewSchema().load({"status": "approved", "version": _form_version()})
        tallies.review(submission_id, decision, current_principal())
    except ValidationError:
        abort(400)
    except Conflict as error:  # amended since the inbox was opened
        db.session.rollback()
        flash(error.detail)
    else:
        db.session.commit()
        flash(_("Tally approved."))
    return redirect(request.referrer if _same_site(request.referrer) else url_for(".review_inbox"))


def _form_version() -> int | str | None:
    """The version number a review form was shown with (the API wants a JSON integer)."""
    text = request.form.get("version", "")
    return int(text) if text.isdigit() and len(text) < 10 else text or None


def _same_site(target: str | None) -> bool:
    return bool(target) and target.startswith(request.host_url + "workspace/")


# --- audit and staff -------------------------------------------------------------------------

@workspace_blp.route("/audit")
@allow(*RUNNERS)
def audit():
    """Who did what and when: everything for admins, a coordinator's regions for coordinators."""
    principal = current_principal()
    args = request.args
    filters: dict[str, Any] = {}
    if args.get("action"):
        filters["action"] = args["action"].strip()[:40]
    who = (args.get("who") or "").strip()
    if who:
        user = db.session.scalar(select(User).where(User.username == who))
        filters["actor"] = str(user.id) if user is not None else who
    for name, key, end in (("from", "from_", False), ("to", "to", True)):
        try:
            day = dt.date.fromisoformat(args[name]) if args.get(name) else None
        except ValueError:
            day = None
        if day is not None:
            moment = dt.datetime.combine(day, dt.time.max if end else dt.time.min, dt.UTC)
            filters[key] = moment
    page = accounts.list_audit_events(filters, principal, 200, 0)
    users = {str(user.id): user.username for user in accounts.list_users()}
    return render_template("workspace/audit.html", page=page, users=users,
                           chosen={"action": args.get("action", ""), "who": who,
                                   "from": args.get("from", ""), "to": args.get("to", "")})


def _staff_choices(form: Any) -> None:
    form.regions.choices = [(area.code, f"{label(area)} ({area.code})")
                            for area in db.session.scalars(
                                select(Area).where(Area.level == "region").order_by(Area.code))]
    form.organization.choices = [(0, _("None"))] + [
        (org.id, organization_name(org)) for org in accounts.list_organizations()]


@workspace_blp.route("/staff", methods=["GET", "POST"])
@allow("admin")
def staff():
    """Staff accounts: create coordinators and planners, see who is active."""
    form = StaffForm()
    _staff_choices(form)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        if form.validate():
            organization = (db.session.get(Organization, form.organization.data)
                            if form.organization.data else None)
            try:
                user = accounts.create_user(
                    form.username.data.strip(), form.password.data, form.role.data,
                    region_codes=form.regions.data or [], organization=organization,
                    display_name=(form.display_name.data or "").strip() or None)
            except DomainError as error:
                errors = _undone(error)
            else:
                db.session.commit()
                flash(_("Account %(name)s created.", name=user.username))
                return redirect(url_for(".staff"))
        errors = _with_form_errors(form, errors)
        status = 422
    return render_template("workspace/staff.html", form=form, errors=errors,
                           users=accounts.list_users(), roles=ROLES), status


@workspace_blp.route("/staff/<int:user_id>", methods=["GET", "POST"])
@allow("admin")
def staff_member(user_id: int):
    """Deactivate or reactivate an account, reset its password, set its regions or organization."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(_("No account has this number."))
    if request.method == "POST":
        form = StaffChangeForm()
    else:
        form = StaffChangeForm(formdata=None, data={
            "active": user.active, "regions": user.region_codes,
            "organization": user.organization_id or 0})
    _staff_choices(form)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                regions = (form.regions.data or []) if user.role == "coordinator" else []
                accounts.update_user(user, accounts.UserChanges(
                    sent=frozenset({"active", "regions", "organization"}),
                    active=form.active.data, regions=regions,
                    organization=form.organization.data or None))
                if form.password.data:
                    accounts.reset_password(user, form.password.data)
            except DomainError as error:
                errors = _undone(error)
            else:
                db.session.commit()
                flash(_("Account %(name)s saved.", name=user.username))
                return redirect(url_for(".staff"))
        errors = _with_form_errors(form, errors)
        status = 422
    return render_template("workspace/staff_member.html", form=form, errors=errors,
                           member=user), status
