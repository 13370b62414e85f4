"""Request and response models of the searchd HTTP API (and so its OpenAPI schema).

The search options of both the POST body and the GET query string are made from
``searchcore.options.PARAMS``, the one place that says what a search may be asked."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, create_model, model_validator
from pydantic.fields import FieldInfo

from searchcore.answers import ASK_K
from searchcore.options import (
    DEFAULT_MODE,
    EMPTY_QUERY,
    MAX_K,
    MAX_TIME,
    MODES,
    PARAMS,
    Filters,
    Param,
    SearchOptions,
    is_blank,
    parse_labels,
    parse_where,
)

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TIME",
    "NON_BLANK",
    "LABEL_FILTER",
    "MAX_K",
    "MAX_BATCH",
    "MAX_BODY_BYTES",
    "SearchRequest",
    "SearchQuery",
    "search_options",
    "HitOut",
    "PassageOut",
    "LabelOut",
    "SearchResponse",
    "BatchResponse",
    "ChunkOut",
    "AskRequest",
    "QuoteOut",
    "AskResponse",
    "HealthOut",
    "ErrorOut",
]

MAX_QUERY_CHARS = 2_000
MAX_BATCH = 256
MAX_BODY_BYTES = 1 << 20

# Some character that no regex dialect and not str.strip() counts as space. The dialects
# disagree: Python's strip() also drops the separators \x1c-\x1f and NEL (\x85); the
# validator's \s has NEL; the schema's (ECMA-262) \s lacks NEL but has the BOM (\ufeff).
# So all of those are named, and a text of nothing else is blank everywhere.
_SPACE = r"\s\x1c-\x1f\x85\ufeff"
NON_BLANK = rf"[^{_SPACE}]"
Query = Annotated[str, StringConstraints(max_length=MAX_QUERY_CHARS, pattern=NON_BLANK)]
# LABEL or FACET=LABEL, neither blank; FACET is all before the last "=".
LABEL_FILTER = rf"^(?:[\s\S]*[^{_SPACE}][\s\S]*=)?[^=]*[^={_SPACE}][^=]*$"


def _whole(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value


# JSON Schema counts 10.0 as an integer; strict mode alone would refuse it.
WholeNumber = Annotated[int, BeforeValidator(_whole)]


def _field(param: Param, form: str) -> tuple[object, FieldInfo]:
    """The annotation and Field of one search option, as a POST body (``form="body"``)
    or a query string (``"query"``) takes it."""
    bounds: dict[str, Any] = {"ge": param.low, "le": param.high} if param.low is not None else {}
    described: dict[str, Any] = {"description": param.help}
    if param.kind == "int":
        return WholeNumber, Field(param.default, **bounds, **described)
    if param.kind == "bool":
        return bool, Field(param.default, **described)
    if param.kind == "choice":
        return Literal[param.choices], Field(param.default, **described)
    if param.kind == "text":
        return str | None, Field(None, max_length=param.max_length, **described)
    if param.kind == "time":
        return float | None, Field(None, **bounds, **described)
    item: object = Annotated[str, StringConstraints(max_length=param.item_max_length)]
    if param.name == "label":
        item = Annotated[str, StringConstraints(max_length=param.item_max_length, pattern=LABEL_FILTER)]
    if param.kind == "pairs":
        if form == "query":  # FIELD=VALUE items
            item = Annotated[str, StringConstraints(pattern=r"^[^=]+=")]
        else:  # a JSON object
            key = Annotated[str, StringConstraints(min_length=1, max_length=200)]
            return dict[key, item], Field({}, max_length=param.max_length, **described)  # type: ignore[valid-type]
    return list[item], Field([], max_length=param.max_length, **described)  # type: ignore[valid-type]


def _fields(form: str) -> dict[str, Any]:
    return {param.name: _field(param, form) for param in PARAMS}


class _OneOrBatch(BaseModel):
    """One query (``q``) or a batch (``queries``), not both."""

    # The schema says what the validator below enforces: exactly one of q and queries.
    # Strict: JSON types as the schema states them (no "10" for 10, no false for 0).
    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"oneOf": [{"required": ["q"]}, {"required": ["queries"]}]}
    )

    q: Query = Field(None, description="The query text.")  # type: ignore[assignment]
    queries: list[Query] = Field(
        None,  # type: ignore[arg-type]
        min_length=1,
        max_length=MAX_BATCH,
        description="Several queries at once.",
    )

    @model_validator(mode="after")
    def _one_of(self) -> _OneOrBatch:
        if (self.q is None) == (self.queries is None):
            raise ValueError("give either 'q' (one query) or 'queries' (a batch), not both or neither")
        texts = [self.q] if self.q is not None else self.queries
        if not texts:
            raise ValueError("'queries' is empty; give at least one query")
        if any(is_blank(t) for t in texts):
            raise ValueError(EMPTY_QUERY.replace("the query", "a query"))
        return self


class _QueryText(BaseModel):
    # An unknown parameter is refused, as an unknown field of a POST body is: a misspelt
    # option (per-doc for per_doc) must not be silently ignored.
    model_config = ConfigDict(extra="forbid")

    q: Annotated[str, StringConstraints(max_length=MAX_QUERY_CHARS, pattern=NON_BLANK)] = Field(
        description="The query text (not blank)."
    )

    @model_validator(mode="after")
    def _not_blank(self) -> _QueryText:
        if is_blank(self.q):
            raise ValueError(EMPTY_QUERY)
        return self


# The POST body and the GET query string, both made from searchcore.options.PARAMS. (The
# type checker sees only the fixed part of each; the options are read through
# search_options(), which reads them by name.)
if TYPE_CHECKING:
    SearchRequest = _OneOrBatch
    SearchQuery = _QueryText
else:
    SearchRequest = create_model("SearchRequest", __base__=_OneOrBatch, **_fields("body"))
    SearchRequest.__doc__ = "One query (``q``) or a batch (``queries``), not both, with the search options."
    SearchQuery = create_model("SearchQuery", __base__=_QueryText, **_fields("query"))
    SearchQuery.__doc__ = "GET /search: the query text and the search options as query parameters."


def search_options(request: BaseModel) -> SearchOptions:
    """The SearchOptions of a SearchRequest or SearchQuery (UsageError for a bad label)."""
    values = request.model_dump()
    where = values["where"]
    return SearchOptions(
        k=values["k"],
        offset=values["offset"],
        per_doc=values["per_doc"],
        mode=values["mode"],
        fusion=values["fusion"],
        feedback=values["feedback"],
        explain=values["explain"],
        filters=Filters(
            path=values["path"] or None,
            kinds=tuple(k.lower() for k in values["type"]),
            after=values["after"],
            before=values["before"],
            where=tuple(where.items()) if isinstance(where, dict) else parse_where(where),
            labels=parse_labels(values["label"]),
        ),
    )


class LabelOut(BaseModel):
    label: str
    score: float


class PassageOut(BaseModel):
    chunk_id: int
    score: float
    lines: list[int] = Field(min_length=2, max_length=2, description="First and last line of the chunk (1-based).")
    snippet: str = Field(description="The passage of the chunk that best matches the query.")
    highlights: list[list[int]] = Field(description="[start, end) of each query word in the snippet.")


class HitOut(BaseModel):
    """One hit, as ``searchcore.results.hit_object`` makes it for every surface."""

    rank: int
    chunk_id: int
    score: float = Field(description="Follows the order: fused in hybrid mode, cosine in dense, BM25 in bm25.")
    path: str = Field(description="The source file.")
    relpath: str = Field(description="The file relative to the indexed folder (the path itself when not under it).")
    handle: str = Field(description="What `read` (MCP) takes to show more: relpath, with #key for a record.")
    url: str | None = Field(description="Where this server opens the file (GET /files/...); null when it cannot.")
    thumbnail: str | None = Field(description="An image's small picture (GET /thumbnails/...); null for other kinds.")
    kind: str = Field(description="The file's kind: text, markdown, pdf, docx, ...")
    key: str = Field(description="The record id inside a JSON/JSONL file; empty for a whole file.")
    source: str = Field(description="path, or path#record-id.")
    title: str | None
    lines: list[int] = Field(min_length=2, max_length=2, description="First and last line of the chunk (1-based).")
    snippet: str = Field(description="The passage of the chunk that best matches the query.")
    highlights: list[list[int]] = Field(description="[start, end) of each query word in the snippet.")
    passages: list[PassageOut] = Field(
        description="Per-document results: the document's next best chunks (up to 2), best first; else empty."
    )
    scores: dict[str, float] = Field(description="With explain: each retriever's score and rank, the fused score.")
    labels: dict[str, LabelOut] = Field(description="The document's label per classifier facet.")
    metadata: dict[str, Any] = Field(description="The record's fields (what --where filters on).")


class SearchResponse(BaseModel):
    query: str
    k: int
    offset: int = Field(description="Hits passed over before the first one here; the next page starts at offset + k.")
    more: bool = Field(description="Whether a next page has hits.")
    per_doc: bool
    mode: str
    generation: int = Field(description="The index generation that answered.")
    took_ms: float
    hits: list[HitOut]
    facets: dict[str, dict[str, int]] = Field(description="Facet -> label -> how many of the hits carry it.")
    kinds: dict[str, int] = Field(description="File kind -> how many of the hits are of it.")
    folders: dict[str, int] = Field(
        description="First folder under the indexed folder -> how many of the hits are in it ('.': directly in it)."
    )
    languages: dict[str, int] = Field(
        description="Document language (ISO 639-1: the `lang` field `where` filters on) -> how many hits are in it."
    )


class BatchResponse(BaseModel):
    k: int
    per_doc: bool
    generation: int
    took_ms: float
    results: list[SearchResponse]


class ChunkOut(BaseModel):
    chunk_id: int
    doc_id: int
    path: str
    key: str
    source: str
    title: str | None
    lines: list[int] = Field(min_length=2, max_length=2, description="First and last line (1-based).")
    chars: list[int] = Field(
        min_length=2, max_length=2, description="Character span of the chunk in the document's text."
    )
    text: str
    metadata: dict
    generation: int


class AskRequest(BaseModel):
    """POST /ask: a question, and where to look for its answer."""

    model_config = ConfigDict(extra="forbid", strict=True)

    q: Query = Field(description="The question (not blank).")
    k: WholeNumber = Field(ASK_K, ge=1, le=20, description="How many documents to take sentences from.")
    mode: Literal[MODES] = Field(DEFAULT_MODE, description="How the documents are found: hybrid, dense or bm25.")  # type: ignore[valid-type]
    path: str | None = Field(None, max_length=1000, description="Only files matching a glob (*.md) or under a folder.")
    type: list[Annotated[str, StringConstraints(max_length=40)]] = Field(
        [], max_length=20, description="Only these file kinds or extensions."
    )
    where: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=200)],
        Annotated[str, StringConstraints(max_length=1000)],
    ] = Field({}, max_length=20, description="Only records whose metadata FIELD equals VALUE.")

    @model_validator(mode="after")
    def _not_blank(self) -> AskRequest:
        if is_blank(self.q):
            raise ValueError(EMPTY_QUERY)
        return self

    def options(self) -> SearchOptions:
        filters = Filters(
            path=self.path or None, kinds=tuple(t.lower() for t in self.type), where=tuple(self.where.items())
        )
        return SearchOptions(mode=self.mode, filters=filters)


class QuoteOut(BaseModel):
    n: int = Field(description="The citation's number: [n].")
    text: str = Field(description="The quoted sentences, as they are in the file.")
    path: str
    relpath: str
    handle: str = Field(description="What `read` (MCP) takes to show the lines around the quote.")
    lines: list[int] = Field(min_length=2, max_length=2, description="First and last line quoted (1-based).")
    title: str | None
    chunk_id: int
    score: float
    citation: str = Field(description="[n] relpath:first-last")


class AskResponse(BaseModel):
    question: str
    answer: str | None = Field(description="A written answer (only from `searchctl ask --generate`); null here.")
    generator: str | None
    quotes: list[QuoteOut] = Field(description="The sentences that answer the question, best first.")
    generation: int
    took_ms: float


class HealthOut(BaseModel):
    status: str
    model: str
    documents: int
    chunks: int
    generation: int
    index: str  # the index folder, or milvus:<URI>/<collection>


class ErrorOut(BaseModel):
    detail: str
