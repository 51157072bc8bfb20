"""Forms of the coordinator's workspace (CSRF-protected by Flask-WTF; labels set by the pages)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    Form,
    FormField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

SITE_ROWS = 3  # blank site rows offered by the caravan form (blank rows are ignored)


class CheckboxList(SelectMultipleField):
    """Several choices as a list of checkboxes (usable with the keyboard, no script)."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class SiteForm(Form):
    """One site of a caravan: a name and a point as typed (decimal or DMS)."""

    name = StringField(validators=[Optional(), Length(max=200)])
    location = StringField(validators=[Optional(), Length(max=100)])


class CaravanForm(FlaskForm):
    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    commune = StringField(_l("Commune"), validators=[DataRequired(), Length(max=200)])
    organizers = CheckboxList(_l("Organizers"), coerce=int)
    first_day = DateField(_l("First day"), validators=[InputRequired()])
    last_day = DateField(_l("Last day"), validators=[InputRequired()])
    specialties = CheckboxList(_l("Planned specialties"))
    sites = FieldList(FormField(SiteForm), min_entries=SITE_ROWS, max_entries=10)


class SiteChangeForm(FlaskForm):
    """Correct one site: its name and its point, as typed (decimal or DMS)."""

    name = StringField(_l("Site name"), validators=[DataRequired(), Length(max=200)])
    location = StringField(_l("Point (decimal or degrees-minutes-seconds)"),
                           validators=[DataRequired(), Length(max=100)])


class StatusForm(FlaskForm):
    """Start or close a caravan (planned → active → closed)."""

    status = SelectField(choices=[SelectChoice("active"), SelectChoice("closed")])


class ConfirmForm(FlaskForm):
    """Only carries the CSRF token: the page already said what the button does."""


class ReviewForm(FlaskForm):
    status = RadioField(_l("Decision"), choices=[
        SelectChoice("approved", _l("Approve")), SelectChoice("flagged", _l("Flag")),
        SelectChoice("rejected", _l("Reject"))],
        validators=[InputRequired()])
    reason = TextAreaField(_l("Reason"), validators=[Optional(), Length(max=500)])


class SheetForm(FlaskForm):
    """A paper tally sheet's header; the grid's counts are read from the request by name."""

    day = SelectField(_l("Day"), validators=[InputRequired()])
    specialty = SelectField(_l("Specialty"), validators=[InputRequired()])
    site = SelectField(_l("Site"), validators=[Optional()])
    volunteer = SelectField(_l("Volunteer"), validators=[Optional()])
    note = TextAreaField(_l("Note (never about a patient)"), validators=[Optional(), Length(max=500)])


class StaffForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=80)])
    display_name = StringField(_l("Name"), validators=[Optional(), Length(max=200)])
    role = SelectField(_l("Role"), choices=[
        SelectChoice("coordinator", _l("Regional coordinator")),
        SelectChoice("planner", _l("Association planner")),
        SelectChoice("admin", _l("Administrator"))])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=8, max=200)])
    regions = CheckboxList(_l("Regions"))
    organization = SelectField(_l("Organization"), coerce=int)


class StaffChangeForm(FlaskForm):
    active = BooleanField(_l("Active"))
    regions = CheckboxList(_l("Regions"))
    organization = SelectField(_l("Organization"), coerce=int)
    password = PasswordField(_l("New password (leave empty to keep it)"),
                             validators=[Optional(), Length(min=8, max=200)])
