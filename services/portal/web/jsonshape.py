"""Read models as JSON, and their JSON Schemas — derived from the same dataclass fields,
so what the API sends and what its OpenAPI document says cannot drift apart.

Money is integer cents; rates (``Decimal``) are strings like ``"26.99"`` (never
floats); dates and times are ISO 8601 strings.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.portal.service_layer.unit import Page

RATE_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"


def to_json(value: Any) -> Any:
    if isinstance(value, Page):
        return {
            "items": [to_json(item) for item in value.items],
            "page": value.page,
            "per_page": value.per_page,
            "total": value.total,
            "total_is_lower_bound": value.total_is_lower_bound,
            "pages": value.pages,
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return value


def _type_schema(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        inner = _type_schema(options[0])
        if len(options) == 1 and "type" in inner:
            return {**inner, "type": [inner["type"], "null"]}
        return {"oneOf": [inner, {"type": "null"}]}
    if origin in (tuple, list):
        args = [arg for arg in typing.get_args(annotation) if arg is not Ellipsis]
        return {"type": "array", "items": _type_schema(args[0]) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(typing.get_args(annotation)[1])}
    if annotation is bool:
        return {"type": "boolean"}
    if annotation is int:
        return {"type": "integer"}
    if annotation is str:
        return {"type": "string"}
    if annotation is Decimal:
        return {"type": "string", "pattern": RATE_PATTERN}
    if annotation is datetime:
        return {"type": "string", "format": "date-time"}
    if annotation is date:
        return {"type": "string", "format": "date"}
    if dataclasses.is_dataclass(annotation):
        return {"$ref": f"#/components/schemas/{annotation.__name__}"}
    raise TypeError(f"no JSON Schema for {annotation!r}")  # pragma: no cover - a programming error


def schema_for(cls: type) -> dict[str, Any]:
    """The JSON Schema of a read model (nested read models by ``$ref``)."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    return {
        "type": "object",
        "required": [f.name for f in fields],
        "properties": {f.name: _type_schema(hints[f.name]) for f in fields},
    }


def nested_models(cls: type, found: dict[str, type] | None = None) -> dict[str, type]:
    """``cls`` and every read model it refers to, by name."""
    found = {} if found is None else found
    found[cls.__name__] = cls
    for hint in typing.get_type_hints(cls).values():
        for candidate in (hint, *typing.get_args(hint)):
            if dataclasses.is_dataclass(candidate) and candidate.__name__ not in found:
                nested_models(candidate, found)  # type: ignore[arg-type]
    return found


def page_schema(item: type) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "page", "per_page", "total", "total_is_lower_bound", "pages"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item.__name__}"}},
            "page": {"type": "integer"},
            "per_page": {"type": "integer"},
            "total": {
                "type": "integer",
                "description": (
                    "rows matching; exact unless total_is_lower_bound (counting stops 10,000 rows on)"
                ),
            },
            "total_is_lower_bound": {
                "type": "boolean",
                "description": "true: there are more than total rows",
            },
            "pages": {
                "type": "integer",
                "description": "pages of total rows (at least that many when total is a lower bound)",
            },
        },
    }
