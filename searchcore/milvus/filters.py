"""Search filters as Milvus boolean expressions, with the local engine's meaning.

Values a user types only ever become string literals (quotes, backslashes and line ends
escaped; other control characters dropped) or numbers: never expression syntax. A path
pattern is SQLite GLOB (``*``, ``?``, ``[...]``, case-sensitive) locally; Milvus LIKE has
``%`` and ``_`` and no escape in every engine, so a pattern holding ``%``, ``_`` or a
``[...]`` class is matched by LIKE to a superset and then exactly by ``fnmatchcase`` on
the paths found, the result passed on as an id list.
"""

from __future__ import annotations

import fnmatch
import math

from ..errors import UsageError
from ..options import FILE_KINDS, Filters

__all__ = ["literal", "filter_expr", "path_patterns"]

_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def literal(text: str) -> str:
    """``text`` as a double-quoted string literal."""
    body = "".join(_ESCAPES.get(ch, ch) for ch in str(text) if ch in _ESCAPES or ord(ch) >= 32)
    return f'"{body}"'


def _number(seconds: float) -> int:
    if math.isnan(seconds):
        raise UsageError("a time filter is not a number")
    return int(min(max(seconds * 1e9, -(2.0**63)), 2.0**63 - 1024))


def path_patterns(filters: Filters) -> list[str]:
    """The GLOB patterns (any of which) a path filter means; [] when there is none."""
    if not filters.path:
        return []
    pattern = filters.path
    is_glob = any(ch in pattern for ch in "*?[")
    if not pattern.startswith("/"):
        pattern = "*/" + pattern.lstrip("./")
    return [pattern] if is_glob else [pattern, pattern.rstrip("/") + "/*"]


def _like(pattern: str) -> str:
    """A LIKE pattern matching at least what the GLOB ``pattern`` matches."""
    out = []
    in_class = False
    for ch in pattern:
        if in_class:
            in_class = ch != "]"
            continue
        if ch == "[":
            out.append("_")
            in_class = True
        else:
            out.append({"*": "%", "?": "_"}.get(ch, ch))
    return "".join(out)


def needs_exact_paths(filters: Filters) -> bool:
    return any(ch in p for p in path_patterns(filters) for ch in "%_[")


def path_matches(filters: Filters, path: str) -> bool:
    return any(fnmatch.fnmatchcase(path, p) for p in path_patterns(filters))


def filter_expr(filters: Filters) -> str:
    """The expression for ``filters`` ("" for none); a path filter here may be a superset
    (see ``needs_exact_paths``)."""
    clauses: list[str] = []
    patterns = path_patterns(filters)
    if patterns:
        clauses.append("(" + " or ".join(f"path like {literal(_like(p))}" for p in patterns) + ")")
    if filters.kinds:
        parts = []
        for kind in filters.kinds:
            if kind.startswith(".") or kind not in FILE_KINDS:
                parts.append(f"path like {literal('%.' + kind.lstrip('.'))}")
            else:
                parts.append(f"kind == {literal(kind)}")
        clauses.append("(" + " or ".join(parts) + ")")
    if filters.after is not None:
        clauses.append(f"mtime_ns >= {_number(filters.after)}")
    if filters.before is not None:
        clauses.append(f"mtime_ns < {_number(filters.before)}")
    for name, value in filters.where:
        field = f"meta[{literal(name)}]"
        text = literal(str(value))
        parts = [f"{field} == {text}", f"json_contains({field}, {text})"]
        try:
            number = float(str(value))
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            shown = str(int(number)) if number.is_integer() else repr(number)
            parts += [f"{field} == {shown}", f"json_contains({field}, {shown})"]
        clauses.append("(" + " or ".join(parts) + ")")
    by_facet: dict[str | None, list[str]] = {}
    for facet, label in filters.labels:
        by_facet.setdefault(facet, []).append(label)
    for facet, labels in by_facet.items():
        if facet is None:
            clauses.append(f"array_contains_any(label_any, [{', '.join(literal(x) for x in labels)}])")
        else:
            items = ", ".join(literal(f"{facet}:{x}") for x in labels)
            clauses.append(f"array_contains_any(label_pairs, [{items}])")
    return " and ".join(clauses)
