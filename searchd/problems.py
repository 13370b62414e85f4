"""Validation errors in plain language: one line naming the parameter and what it takes.

Pydantic describes a failed check in its own terms ("String should match pattern
'[^\\s...]'", "JSON decode error" at a parser offset). A person sending a request wants the
parameter, what it must be and, for a short value, what was sent; never a regular
expression or a position inside the parser.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from searchcore.options import EMPTY_QUERY, PARAMS

__all__ = ["plain_errors"]

_EXAMPLE = '{"q": "some words"}'
_KNOWN_QUERY = ("q", *(p.name for p in PARAMS))
_KNOWN_BODY = ("q", "queries", *(p.name for p in PARAMS))


def _name(loc: tuple) -> str:
    """The parameter an error is about: the first name after where it came from."""
    for part in loc[1:]:
        if isinstance(part, str) and part and not part.startswith("["):
            return part
    return ""


def _sent(value: Any) -> str:
    """`, not 'ten'` for a short value that was sent; nothing for anything long."""
    if isinstance(value, bool) or value is None:
        return ""
    if not isinstance(value, str | int | float) or len(str(value)) > 40:
        return ""
    if isinstance(value, str):
        try:
            float(value)  # a number as a query string sends it: shown as the number
        except ValueError:
            return f", not {value!r}"
    return f", not {value}"


def _count(n: object, kind: str) -> str:
    unit = "character" if kind.startswith("string") else "item"
    return f"{n} {unit}" + ("" if n == 1 else "s")


def _pattern(name: str, value: Any) -> str:
    shown = value if isinstance(value, str) and len(value) <= 80 else None
    if name in ("q", "queries"):
        return EMPTY_QUERY
    if name == "label":
        return "a label filter takes LABEL or FACET=LABEL" + (f", not {shown!r}" if shown is not None else "")
    if name == "where":
        return "where takes FIELD=VALUE" + (f", not {shown!r}" if shown is not None else "")
    return f"{name} is not in the form it takes"


def _one(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    loc = tuple(error.get("loc", ()))
    where = loc[0] if loc else "body"
    name = _name(loc)
    ctx = error.get("ctx") or {}
    value = error.get("input")
    label = name or "the body"
    if kind == "json_invalid":
        return f"the body is not valid JSON; send an object such as {_EXAMPLE}"
    if kind in ("model_attributes_type", "dict_type", "model_type") and not name:
        return f"the body must be a JSON object such as {_EXAMPLE}"
    if kind == "missing":
        if name == "q":
            return "q is missing; give the words to search for as q"
        return f"{label} is missing"
    if kind == "extra_forbidden":
        if where == "query":
            return f"unknown parameter {name!r}; the parameters are {', '.join(_KNOWN_QUERY)}"
        return f"unknown field {name!r}; the fields are {', '.join(_KNOWN_BODY)}"
    if kind == "string_pattern_mismatch":
        return _pattern(name, value)
    if kind in ("string_too_long", "too_long"):
        return f"{label} takes at most {_count(ctx.get('max_length'), kind)}"
    if kind in ("string_too_short", "too_short"):
        if name == "where":
            return "where: a field name must not be empty"
        return f"{label} takes at least {_count(ctx.get('min_length'), kind)}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{label} must be a whole number{_sent(value)}"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"{label} must be a number{_sent(value)}"
    if kind in ("bool_parsing", "bool_type"):
        return f"{label} must be true or false{_sent(value)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        words = {
            "greater_than_equal": ("at least", "ge"),
            "greater_than": ("more than", "gt"),
            "less_than_equal": ("at most", "le"),
            "less_than": ("less than", "lt"),
        }[kind]
        bound = ctx.get(words[1])
        bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
        return f"{label} must be {words[0]} {bound}{_sent(value)}"
    if kind == "literal_error":
        return f"{label} must be {ctx.get('expected')}{_sent(value)}"
    if kind == "string_type":
        return f"{label} must be text"
    if kind == "list_type":
        return f"{label} must be a list"
    if kind in ("dict_type", "model_attributes_type"):
        return f"{label} must be an object"
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return message if kind == "value_error" else f"{label}: {message}"


def plain_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """One line for a request's validation errors, each said once."""
    return "; ".join(dict.fromkeys(_one(error) for error in errors)) or "the request is not valid"
