"""Input rules declared once, used three ways: parsing JSON bodies, parsing HTML
forms and query strings, and describing the API in its OpenAPI document.

JSON is strict: the declared types only, unknown fields rejected. Forms and
query strings arrive as text and are converted (money typed in dollars becomes
cents). Either way a broken rule becomes a :class:`ValidationError` naming every
bad field, never an exception from deeper down.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from services.portal.errors import ValidationError

MAX_CENTS = 10_000_000_00  # $10 million: far above any real amount, far below int64


@dataclass(frozen=True)
class Field:
    """One input: ``kind`` is str, int, cents, bool, date, enum or enum_list."""

    name: str
    kind: str = "str"
    required: bool = True
    label: str = ""
    min_len: int = 0
    max_len: int = 200
    pattern: str | None = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    default: Any = None
    description: str = ""

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any]
        if self.kind == "str":
            schema = {"type": "string", "maxLength": self.max_len}
            if self.min_len:
                schema["minLength"] = self.min_len
            if self.pattern:
                schema["pattern"] = self.pattern
        elif self.kind in {"int", "cents"}:
            schema = {"type": "integer"}
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
        elif self.kind == "bool":
            schema = {"type": "boolean"}
        elif self.kind == "date":
            schema = {"type": "string", "format": "date"}
        elif self.kind == "enum":
            schema = {"type": "string", "enum": list(self.choices)}
        elif self.kind == "enum_list":
            schema = {
                "type": "array",
                "items": {"type": "string", "enum": list(self.choices)},
                "maxItems": len(self.choices),
                "uniqueItems": True,
            }
        else:  # pragma: no cover - a programming error
            raise ValueError(self.kind)
        if self.description:
            schema["description"] = self.description
        if self.default is not None:
            schema["default"] = self.default
        return schema


def object_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    """The JSON Schema of a request body made of ``fields`` (no other properties allowed)."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": [f.name for f in fields if f.required],
        "properties": {f.name: f.json_schema() for f in fields},
    }


def _bad(field: Field) -> str:
    if field.kind == "str":
        return f"must be text of {field.min_len or 1} to {field.max_len} characters"
    if field.kind in {"int", "cents"}:
        low = field.minimum if field.minimum is not None else "-∞"
        high = field.maximum if field.maximum is not None else "∞"
        return f"must be a whole number from {low} to {high}"
    if field.kind == "bool":
        return "must be true or false"
    if field.kind == "date":
        return "must be a date (YYYY-MM-DD)"
    return f"must be one of: {', '.join(field.choices)}"


def _dollars_to_cents(text: str) -> int:
    cleaned = text.replace(",", "").replace("$", "").strip()
    if not re.fullmatch(r"\d{1,10}(\.\d{1,2})?", cleaned):
        raise ValueError(text)
    return int((Decimal(cleaned) * 100).to_integral_value())


def _convert(field: Field, value: Any, *, text: bool) -> Any:
    """The field's value or ``ValueError``."""
    if field.kind == "str":
        if not isinstance(value, str):
            raise ValueError
        value = value.strip()
        if not field.min_len <= len(value) <= field.max_len or (len(value) == 0 and field.required):
            raise ValueError
        if "\x00" in value or (field.pattern and value and not re.fullmatch(field.pattern, value)):
            raise ValueError
        return value
    if field.kind in {"int", "cents"}:
        if text:
            if not isinstance(value, str):
                raise ValueError
            number = _dollars_to_cents(value) if field.kind == "cents" else int(value.strip(), 10)
        else:
            # bool is an int in Python; JSON true is not a number.
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError
            number = value
        if field.minimum is not None and number < field.minimum:
            raise ValueError
        if field.maximum is not None and number > field.maximum:
            raise ValueError
        return number
    if field.kind == "bool":
        if text:
            return isinstance(value, str) and value.strip().lower() in {"on", "yes", "true", "1"}
        if not isinstance(value, bool):
            raise ValueError
        return value
    if field.kind == "date":
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            raise ValueError
        return date.fromisoformat(value.strip())
    if field.kind == "enum":
        if not isinstance(value, str) or value.strip() not in field.choices:
            raise ValueError
        return value.strip()
    if field.kind == "enum_list":
        items = value if isinstance(value, list) else None
        if items is None or not all(isinstance(item, str) and item in field.choices for item in items):
            raise ValueError
        if len(set(items)) != len(items):
            raise ValueError
        return tuple(items)
    raise ValueError  # pragma: no cover


def _missing(field: Field, value: Any, *, text: bool) -> bool:
    if value is None:
        return True
    return text and field.kind not in {"bool", "enum_list"} and isinstance(value, str) and not value.strip()


def parse(
    fields: tuple[Field, ...],
    data: Mapping[str, Any] | Any,
    *,
    text: bool = False,
    ignore: frozenset[str] = frozenset({"csrf_token"}),
) -> dict[str, Any]:
    """Check ``data`` against ``fields``; returns converted values (``default`` for absent optionals).

    ``text=True`` for HTML forms and query strings (strings in, unknown names
    ignored); otherwise a parsed JSON body (exact types, unknown names rejected).
    """
    if not isinstance(data, Mapping):
        raise ValidationError({"body": "must be a JSON object"})
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    known = {f.name for f in fields}
    if not text:
        for name in data:
            if name not in known:
                errors[str(name)[:64]] = "is not a field of this request"
    for field in fields:
        raw = data.get(field.name)
        if _missing(field, raw, text=text):
            if field.kind == "bool" and text:
                values[field.name] = False
            elif field.required:
                errors[field.name] = "is required"
            else:
                values[field.name] = field.default
            continue
        try:
            values[field.name] = _convert(field, raw, text=text)
        except (ValueError, TypeError, InvalidOperation, OverflowError):
            errors[field.name] = _bad(field)
    if errors:
        raise ValidationError(errors)
    return values
