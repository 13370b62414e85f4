"""The SQL of search: filters as a WHERE clause, query text as an FTS5 expression.

Nothing a user types is ever spliced into SQL: every value is a parameter, a metadata
field is matched by key (never built into a JSON path), and every query word is quoted
so no user text is FTS5 syntax.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ..errors import UsageError
from ..options import FILE_KINDS, Filters
from .stemming import stemmed_words

__all__ = ["filter_sql", "fts_query", "STOPWORDS"]

# Words too common to help a keyword match; dropped from the BM25 query only.
STOPWORDS = frozenset(
    """a an and are as at be but by can do does for from has have how i if in into is it its
    me my no not of on or our so such than that the their them then there these they this
    to was we were what when where which who whom why will with you your""".split()
)
_WORD = re.compile(r"\w+", re.UNICODE)
_GLOB_CHARS = set("*?[")


def fts_query(text: str, languages: Sequence[str] = ()) -> str | None:
    """An FTS5 MATCH expression that finds chunks with any of the words of ``text``, or
    any of their stems in ``languages`` (the languages whose stemmer reduced the terms
    of some of the index's chunks: a query's own language is not known, so its words are
    looked for as each of them would index them).

    Every word is quoted, so no user text is FTS5 syntax: quotes, AND/OR/NOT/NEAR, ``*``,
    ``-``, ``:`` and brackets are just words or separators. None when nothing is left."""
    words = [w for w in dict.fromkeys(_WORD.findall(text.lower())) if w not in STOPWORDS and w != "_"]
    if not words:
        return None
    words += [s for lang in languages for s in stemmed_words(words, lang) or ()]
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in dict.fromkeys(words))


def _nanoseconds(seconds: float) -> int:
    """Unix seconds as SQLite-sized nanoseconds (clamped: any time past the range is "never")."""
    if math.isnan(seconds):
        raise UsageError("a time filter is not a number")
    return int(min(max(seconds * 1e9, -(2.0**63)), 2.0**63 - 1024))


def filter_sql(filters: Filters) -> tuple[str, list[object]]:
    """A WHERE clause over chunks, documents and files (and its parameters) for ``filters``."""
    clauses: list[str] = []
    params: list[object] = []
    if filters.path:
        pattern = filters.path
        is_glob = bool(_GLOB_CHARS & set(pattern))
        if not pattern.startswith("/"):
            pattern = "*/" + pattern.lstrip("./")
        if is_glob:
            clauses.append("files.path GLOB ?")
            params.append(pattern)
        else:
            clauses.append("(files.path GLOB ? OR files.path GLOB ?)")
            params += [pattern, pattern.rstrip("/") + "/*"]
    if filters.kinds:
        parts = []
        for kind in filters.kinds:
            if kind.startswith(".") or kind not in FILE_KINDS:
                parts.append("files.path GLOB ?")
                params.append("*." + kind.lstrip("."))
            else:
                parts.append("files.kind = ?")
                params.append(kind)
        clauses.append("(" + " OR ".join(parts) + ")")
    if filters.after is not None:
        clauses.append("files.mtime_ns >= ?")
        params.append(_nanoseconds(filters.after))
    if filters.before is not None:
        clauses.append("files.mtime_ns < ?")
        params.append(_nanoseconds(filters.before))
    for field_name, value in filters.where:
        # The field is matched by key, never spliced into a JSON path: any key is safe.
        clauses.append(
            "EXISTS (SELECT 1 FROM json_each(documents.metadata) AS field WHERE field.key = ? AND "
            "(CAST(field.value AS TEXT) = ? OR (field.type = 'array' AND EXISTS "
            "(SELECT 1 FROM json_each(field.value) AS item WHERE CAST(item.value AS TEXT) = ?))))"
        )
        params += [field_name, str(value), str(value)]
    by_facet: dict[str | None, list[str]] = {}
    for facet, label in filters.labels:
        by_facet.setdefault(facet, []).append(label)
    for facet, labels in by_facet.items():
        marks = ",".join("?" * len(labels))
        facet_sql = " AND labels.facet = ?" if facet is not None else ""
        clauses.append(
            f"EXISTS (SELECT 1 FROM labels WHERE labels.doc_id = documents.id AND labels.label IN ({marks}){facet_sql})"
        )
        params += [*labels, *([facet] if facet is not None else [])]
    return " AND ".join(clauses) or "1", params
