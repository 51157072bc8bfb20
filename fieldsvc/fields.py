"""Marshmallow fields every schema shares: days within a sane range, text that can be seen,
UUIDs that are not the nil UUID, comma lists. Ids and offsets are checked against db.py's limits."""

from __future__ import annotations

import datetime as dt
import unicodedata
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError, fields
from webargs.fields import DelimitedList

# No caravan, tally or query of ours is dated outside this range; a date past it is a typo (or an
# attack on date arithmetic: 9999-12-31 plus a day overflows) and is refused with a 422.
MIN_DAY = dt.date(2000, 1, 1)
MAX_DAY = dt.date(2100, 12, 31)

# Characters that show nothing: controls, format characters (zero-width, direction overrides),
# separators, combining marks on their own, unassigned and private-use code points.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Mn", "Me", "Cn", "Co", "Cs"})
# Letters and symbols that draw as blanks (Hangul fillers, the braille blank).
_BLANK_LOOKALIKES = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def day_in_range(day: dt.date) -> bool:
    return MIN_DAY <= day <= MAX_DAY


def day_range_message() -> str:
    return str(_l("Use a date from %(first)s to %(last)s.", first=MIN_DAY.isoformat(),
                  last=MAX_DAY.isoformat()))


def _invisible(ch: str) -> bool:
    return ch in _BLANK_LOOKALIKES or unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def visible_text(value: str) -> str:
    """The text without invisible characters at either end; empty when nothing is visible."""
    start, end = 0, len(value)
    while start < end and (value[start].isspace() or _invisible(value[start])):
        start += 1
    while end > start and (value[end - 1].isspace() or _invisible(value[end - 1])):
        end -= 1
    text = value[start:end]
    return text if any(not _invisible(ch) for ch in text) else ""


class Day(fields.Date):
    """An ISO date (YYYY-MM-DD) from 2000-01-01 to 2100-12-31."""

    def __init__(self, **kwargs: Any) -> None:
        metadata = kwargs.setdefault("metadata", {})
        metadata.setdefault("description", "YYYY-MM-DD, from 2000-01-01 to 2100-12-31.")
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.date:
        day = super()._deserialize(value, attr, data, **kwargs)
        if not day_in_range(day):
            raise ValidationError(day_range_message())
        return day


class VisibleText(fields.String):
    """Text stripped of spaces and invisible characters at both ends, refused when none is left."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = visible_text(super()._deserialize(value, attr, data, **kwargs))
        if not text:
            raise ValidationError(str(_l(
                "Write some visible text: spaces and invisible characters alone are refused.")))
        return text


class KnownUUID(fields.UUID):
    """A UUID other than the nil UUID (00000000-0000-0000-0000-000000000000)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> uuid.UUID:
        loaded = super()._deserialize(value, attr, data, **kwargs)
        if loaded is not None and loaded.int == 0:
            raise ValidationError(str(_l("The nil UUID is not an id; make a random UUID (v4).")))
        return loaded


class Moment(fields.AwareDateTime):
    """An ISO date and time (UTC when no offset is given) from 2000 to 2100."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("default_timezone", dt.UTC)
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dt.datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        if not day_in_range(moment.date()):
            raise ValidationError(day_range_message())
        return moment


class CommaList(DelimitedList):
    """A comma-separated query parameter (`?region=07,08`): parts stripped, empty parts dropped."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if isinstance(value, str):
            value = ",".join(part.strip() for part in value.split(",") if part.strip())
            if not value:
                return []
        return super()._deserialize(value, attr, data, **kwargs)


def each_one_of(choices: Iterable[str], unique: bool = False) -> Callable[[list[str]], None]:
    """Validate every part of a list against `choices`, naming the unknown ones and the choices."""
    allowed = tuple(choices)

    def check(values: list[str]) -> None:
        unknown = [value for value in values if value not in allowed]
        if unknown:
            raise ValidationError(str(_l("Unknown %(codes)s; use one of %(choices)s.",
                                         codes=", ".join(unknown), choices=", ".join(allowed))))
        if unique and len(set(values)) != len(values):
            raise ValidationError(str(_l("Name each one once.")))

    return check
