"""Forms of the staff pages (CSRF-protected by Flask-WTF)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, PasswordField, StringField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    username = StringField(validators=[DataRequired(), Length(max=80)])
    password = PasswordField(validators=[DataRequired(), Length(max=200)])


class LogoutForm(FlaskForm):
    """Only carries the CSRF token: logging out is a POST so no link or image can do it."""


class SavePlanForm(FlaskForm):
    """Save a plan as planned caravans (the plan's own fields travel as hidden inputs)."""

    title = StringField(_l("Title"), validators=[DataRequired(), Length(max=200)])
    first_day = DateField(_l("First day"), validators=[DataRequired()])
