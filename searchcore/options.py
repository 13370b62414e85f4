"""The search vocabulary: modes, fusions, defaults, filters and their limits, said once.

``SearchOptions`` (with its ``Filters``) is what a search is asked for; it checks itself,
so every caller gets the same one-line errors. ``PARAMS`` describes each option once:
name, kind, default, bounds and help. The CLI derives its click options from it
(``searchctl.options``) and the daemon its request models, POST body and GET query alike
(``searchd.schemas``), so the three cannot drift apart. The empty-query rule is
``check_query``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from .errors import UsageError

__all__ = [
    "MODES",
    "FUSIONS",
    "DEFAULT_MODE",
    "DEFAULT_FUSION",
    "DEFAULT_K",
    "MAX_K",
    "MAX_TIME",
    "MAX_OFFSET",
    "FILE_KINDS",
    "EMPTY_QUERY",
    "Filters",
    "SearchOptions",
    "Param",
    "PARAMS",
    "param",
    "query_params",
    "check_query",
    "is_blank",
    "parse_labels",
    "parse_where",
]

MODES = ("dense", "bm25", "hybrid")
FUSIONS = ("rrf", "weighted")
DEFAULT_MODE = "hybrid"
DEFAULT_FUSION = "weighted"
DEFAULT_K = 10
MAX_K = 1_000
MAX_OFFSET = 10_000
# File kinds a filter names by kind (what the readers record); anything else is taken as
# an extension.
FILE_KINDS = (
    "text",
    "markdown",
    "rst",
    "html",
    "svg",
    "pdf",
    "image",
    "docx",
    "pptx",
    "odt",
    "odp",
    "rtf",
    "epub",
    "notebook",
    "po",
    "jsonl",
    "json",
    "xlsx",
    "ods",
    "csv",
    "eml",
    "mbox",
)
EMPTY_QUERY = "the query is empty; give some words to search for"


def is_blank(text: str | None) -> bool:
    return not text or not text.strip()


def check_query(text: str | None) -> str:
    """``text`` if it has something to search for, else the one error every side gives."""
    if text is None or is_blank(text):
        raise UsageError(EMPTY_QUERY)
    return text


@dataclass(frozen=True)
class Filters:
    """Which chunks a search may return; fields combine with AND.

    ``path``: a glob (``*.md``, ``notes/*``) or a prefix; a relative one matches at any
    folder boundary. ``kinds``: file kinds (``FILE_KINDS``) or
    extensions (``.py``). ``after``/``before``: file modification time, Unix seconds.
    ``where``: (field, value) pairs a record's metadata must hold (a list field holds a
    value when any element equals it). ``labels``: (facet or None, label) pairs from the
    index's classifiers; labels of one facet combine with OR, facets with AND."""

    path: str | None = None
    kinds: tuple[str, ...] = ()
    after: float | None = None
    before: float | None = None
    where: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str | None, str], ...] = ()

    def __bool__(self) -> bool:
        return bool(
            self.path or self.kinds or self.after is not None or self.before is not None or self.where or self.labels
        )


@dataclass(frozen=True)
class SearchOptions:
    """What a search is asked for, besides its query text."""

    k: int = DEFAULT_K
    per_doc: bool = False
    mode: str = DEFAULT_MODE
    fusion: str = DEFAULT_FUSION
    feedback: bool = True
    explain: bool = False
    filters: Filters = field(default_factory=Filters)
    offset: int = 0  # hits (documents when per_doc) to pass over: the next page starts at k

    def __post_init__(self) -> None:
        if self.k < 1:
            raise UsageError(f"k must be at least 1, not {self.k}")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise UsageError(f"offset must be between 0 and {MAX_OFFSET}, not {self.offset}")
        if self.mode not in MODES:
            raise UsageError(f"unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.fusion not in FUSIONS:
            raise UsageError(f"unknown fusion {self.fusion!r}; use one of {', '.join(FUSIONS)}")


def parse_labels(items: Sequence[str]) -> tuple[tuple[str | None, str], ...]:
    """``LABEL`` or ``FACET=LABEL`` strings as (facet or None, label) pairs."""
    out = []
    for item in items:
        facet, sep, label = item.rpartition("=")
        if not label.strip() or (sep and not facet.strip()):
            raise UsageError(f"a label filter takes LABEL or FACET=LABEL, not {item!r}")
        out.append((facet.strip() if sep else None, label.strip()))
    return tuple(out)


def parse_where(items: Sequence[str], *, strip: bool = False) -> tuple[tuple[str, str], ...]:
    """``FIELD=VALUE`` strings as (field, value) pairs. With ``strip`` (the command line)
    the field name is trimmed and must not be blank, and every pair is kept; without it
    (a query string, where FIELD is what the schema allows) a later FIELD replaces an
    earlier one, as in a POST body's object."""
    pairs: list[tuple[str, str]] = []
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not (name.strip() if strip else name):
            raise UsageError(f"{'--where' if strip else 'where'} takes FIELD=VALUE, not {item!r}")
        pairs.append((name.strip() if strip else name, value))
    return tuple(pairs) if strip else tuple(dict(pairs).items())


@dataclass(frozen=True)
class Param:
    """One search option as the CLI and the HTTP API both offer it.

    ``kind``: int, bool, choice, text, time (Unix seconds over HTTP, a date on the command
    line), list (repeatable) or pairs (FIELD=VALUE, a JSON object in a POST body)."""

    name: str
    kind: str
    help: str
    default: object = None
    choices: tuple[str, ...] = ()
    flag: str | None = None  # the CLI spelling; default --name
    metavar: str | None = None
    cli_help: str | None = None  # where the command line takes another form (a date, not Unix time)
    low: float | None = None
    high: float | None = None
    max_length: int | None = None  # of a text, or of a list (items)
    item_max_length: int | None = None


# Unix times beyond the year 5000 either way are not file times.
MAX_TIME = 1e11

PARAMS: tuple[Param, ...] = (
    Param("k", "int", "Number of hits.", DEFAULT_K, flag="-k", low=1, high=MAX_K),
    Param(
        "offset",
        "int",
        "Pass over this many hits first: the next page of k hits starts at offset k.",
        0,
        low=0,
        high=MAX_OFFSET,
    ),
    Param("per_doc", "bool", "One hit per document: its best chunk (over HTTP with its next best passages).", False),
    Param("mode", "choice", "dense: by meaning; bm25: by keywords; hybrid: both, fused.", DEFAULT_MODE, MODES),
    Param(
        "fusion",
        "choice",
        "How hybrid mode fuses: reciprocal ranks, or weighted normalised scores.",
        DEFAULT_FUSION,
        FUSIONS,
    ),
    Param(
        "feedback",
        "bool",
        "Hybrid mode: search the vectors again with the query moved towards its two best hits.",
        True,
    ),
    Param("explain", "bool", "Give each hit's dense and BM25 score and rank and the fused score.", False),
    Param(
        "path",
        "text",
        "Only files matching a glob (*.md, notes/*) or under a folder.",
        metavar="GLOB_OR_PREFIX",
        max_length=1000,
    ),
    Param(
        "type",
        "list",
        "Only this file kind (text, markdown, rst, html, pdf, docx, pptx, epub, notebook, json, ...: the README "
        "lists them) or extension (.py); repeatable.",
        metavar="KIND",
        max_length=20,
        item_max_length=40,
    ),
    Param(
        "after",
        "time",
        "Only files modified at or after this Unix time.",
        metavar="DATE",
        cli_help="Only files modified on or after DATE (YYYY-MM-DD[THH:MM]).",
        low=-MAX_TIME,
        high=MAX_TIME,
    ),
    Param(
        "before",
        "time",
        "Only files modified before this Unix time.",
        metavar="DATE",
        cli_help="Only files modified before DATE.",
        low=-MAX_TIME,
        high=MAX_TIME,
    ),
    Param(
        "where",
        "pairs",
        "Only records whose metadata FIELD equals VALUE; repeatable.",
        metavar="FIELD=VALUE",
        max_length=20,
        item_max_length=1000,
    ),
    Param(
        "label",
        "list",
        "Only documents a classifier labelled LABEL (see `searchctl label`); repeatable: "
        "labels of one facet combine with OR, facets with AND.",
        metavar="[FACET=]LABEL",
        max_length=20,
        item_max_length=400,
    ),
)


def query_params(query: str, options: SearchOptions) -> list[tuple[str, str]]:
    """``query`` and ``options`` as ``GET /search`` takes them: ``q``, then each option of
    ``PARAMS`` under its own name (lists repeated, booleans as true/false), the empty ones left out."""
    f = options.filters
    values: dict[str, object] = {
        "k": options.k,
        "offset": options.offset,
        "per_doc": options.per_doc,
        "mode": options.mode,
        "fusion": options.fusion,
        "feedback": options.feedback,
        "explain": options.explain,
        "path": f.path,
        "type": list(f.kinds),
        "after": f.after,
        "before": f.before,
        "where": [f"{name}={value}" for name, value in f.where],
        "label": [f"{facet}={label}" if facet else label for facet, label in f.labels],
    }
    out = [("q", query)]
    for item in PARAMS:
        value = values[item.name]  # every option has its place above (a test keeps it so)
        if value is None:
            continue
        if isinstance(value, bool):
            out.append((item.name, "true" if value else "false"))
        elif isinstance(value, list):
            out += [(item.name, str(v)) for v in value]
        else:
            out.append((item.name, str(value)))
    return out


def param(name: str) -> Param:
    for item in PARAMS:
        if item.name == name:
            return item
    raise KeyError(name)
