"""One pagination style for every list: `?limit=&offset=` in, `{items, total, limit, offset}` out.

A service returns a `Page` (so a page or an export gets the same object as the API); a route
declares `@paginated_response(blp, ItemSchema)` and its query schema extends `PageArgs`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from marshmallow import Schema, fields, validate
from sqlalchemy import Select, func, select

from fieldsvc.db import OFFSET_RANGE
from fieldsvc.extensions import db

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class PageArgs(Schema):
    """The query arguments of a list; each list's own query schema extends this one."""

    limit = fields.Integer(load_default=DEFAULT_LIMIT,
                           validate=validate.Range(1, MAX_LIMIT),
                           metadata={"description": f"Items per page, 1 to {MAX_LIMIT}."})
    offset = fields.Integer(load_default=0, validate=OFFSET_RANGE,
                            metadata={"description": "Items to skip before this page."})


@dataclass
class Page(Generic[T]):
    """One page of a list, with the number of items in the whole list."""

    items: list[T]
    total: int
    limit: int
    offset: int


def paginate(query: Select[Any], limit: int, offset: int) -> Page[Any]:
    """Count the query's rows, then fetch one page of it (the query carries its own order)."""
    total = db.session.scalar(
        select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = list(db.session.scalars(query.limit(limit).offset(offset)))
    return Page(items=items, total=total, limit=limit, offset=offset)


def page_of(items: list[T], limit: int, offset: int) -> Page[T]:
    """One page of a list a service already holds whole (short ones: staff, a caravan's phones)."""
    return Page(items=items[offset:offset + limit], total=len(items), limit=limit,
                offset=offset)


_PAGE_SCHEMAS: dict[type[Schema], type[Schema]] = {}


def page_schema(item_schema: type[Schema]) -> type[Schema]:
    """The schema of a page of `item_schema` (one class per item schema, named for OpenAPI)."""
    schema = _PAGE_SCHEMAS.get(item_schema)
    if schema is None:
        name = item_schema.__name__.removesuffix("Schema") + "PageSchema"
        schema = _PAGE_SCHEMAS[item_schema] = Schema.from_dict({
            "items": fields.List(fields.Nested(item_schema)),
            "total": fields.Integer(metadata={"description": "Items in the whole list."}),
            "limit": fields.Integer(),
            "offset": fields.Integer(),
        }, name=name)
    return schema


def paginated_response(blp: Any, item_schema: type[Schema], **kwargs: Any) -> Any:
    """Answer 200 with one page of `item_schema` items (the view returns a `Page`)."""
    return blp.response(200, page_schema(item_schema), **kwargs)
