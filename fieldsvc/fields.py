"""Marshmallow fields shared by every domain's query schemas."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from marshmallow import ValidationError
from webargs.fields import DelimitedList


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
            raise ValidationError(f"Unknown {', '.join(unknown)}; use one of {', '.join(allowed)}.")
        if unique and len(set(values)) != len(values):
            raise ValidationError("Name each one once.")

    return check
