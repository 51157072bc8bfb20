"""Shapes of tokens, the caller, organizations and users."""


from typing import Any

from flask_babel import lazy_gettext as _l
from marshmallow import Schema, fields, post_load, validate

from fieldsvc.accounts.models import ORGANIZATION_KINDS, ROLES
from fieldsvc.accounts.services import UserChanges
from fieldsvc.db import ID_RANGE
from fieldsvc.fields import Moment, VisibleText
from fieldsvc.pagination import PageArgs


class TokenSchema(Schema):
    token = fields.String(metadata={"description": "Send as `Authorization: Bearer …`."})
    expires_at = fields.DateTime()


class OrganizationSchema(Schema):
    id = fields.Integer(dump_only=True)
    name = VisibleText(required=True, validate=validate.Length(1, 200))
    name_ar = VisibleText(load_default=None, allow_none=True, validate=validate.Length(1, 200))
    kind = fields.String(load_default="association", validate=validate.OneOf(ORGANIZATION_KINDS))


class OrganizationRefSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    name_ar = fields.String(allow_none=True)
    kind = fields.String()


class MeSchema(Schema):
    """The caller: a staff user, or a volunteer's device enrollment."""

    role = fields.String(validate=validate.OneOf((*ROLES, "volunteer")))
    id = fields.Integer(allow_none=True)
    username = fields.String(allow_none=True)
    display_name = fields.String(allow_none=True)
    regions = fields.List(fields.String(), metadata={"description": "Coordinator's region codes."})
    organization = fields.Nested(OrganizationRefSchema, allow_none=True)
    caravan_id = fields.Integer(allow_none=True, metadata={"description": "Volunteers only."})
    specialty = fields.String(allow_none=True, metadata={"description": "Volunteers only."})


class UserSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String(allow_none=True)
    role = fields.String()
    active = fields.Boolean()
    regions = fields.List(fields.String(), attribute="region_codes")
    organization = fields.Nested(OrganizationRefSchema, allow_none=True)
    created_at = fields.DateTime()


class UserPatchSchema(Schema):
    role = fields.String(validate=validate.OneOf(ROLES), metadata={"example": "coordinator"})
    regions = fields.List(
        fields.String(validate=validate.Regexp(r"^\d{2}$", error=_l("A region code, e.g. 08."))),
        validate=validate.Length(max=12),
        metadata={"description": "Replaces a coordinator's regions.", "example": ["08"]})
    organization = fields.Integer(allow_none=True, strict=True, validate=ID_RANGE,
                                  metadata={"description": "Organization id, or null.",
                                            "example": 1})
    active = fields.Boolean(metadata={"description": "false deactivates the account.",
                                      "example": False})
    display_name = VisibleText(validate=validate.Length(1, 200),
                               metadata={"example": "Saïd Aït Ali"})

    @post_load
    def _changes(self, data: dict[str, Any], **kwargs: Any) -> UserChanges:
        return UserChanges(sent=frozenset(data), **data)


class PasswordResetSchema(Schema):
    password = fields.String(required=True, validate=validate.Length(1, 200),
                             metadata={"description": "At least 12 characters, not the username "
                                                      "and not a common password.",
                                       "example": "palmiers-de-skoura-au-matin"})


class AuditQuerySchema(PageArgs):
    action = fields.String(validate=validate.Length(1, 40),
                           metadata={"example": "enrollment.create"})
    region = fields.String(validate=validate.Regexp(r"^\d{2}$", error=_l("A region code, e.g. 08.")),
                           metadata={"example": "08"})
    from_ = Moment(data_key="from", metadata={"example": "2026-11-01T00:00:00Z"})
    to = Moment(metadata={"example": "2026-11-30T23:59:59Z"})


class AuditEventSchema(Schema):
    id = fields.Integer(metadata={"example": 301})
    at = fields.DateTime(metadata={"example": "2026-11-27T07:58:00+00:00"})
    actor_kind = fields.String(metadata={"example": "user"})
    actor_id = fields.String(allow_none=True, metadata={"example": "4"})
    action = fields.String(metadata={"example": "caravan.create"})
    object_type = fields.String(allow_none=True, metadata={"example": "caravan"})
    object_id = fields.String(allow_none=True, metadata={"example": "12"})
    region_code = fields.String(allow_none=True, metadata={"example": "08"})
    detail = fields.Dict(allow_none=True, metadata={"example": {"ip": "196.200.1.7"}})
