"""Request and response models of the searchd HTTP API (and so its OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
    "MAX_QUERY_CHARS",
    "MAX_TIME",
    "NON_BLANK",
    "LABEL_FILTER",
    "MAX_K",
    "MAX_BATCH",
    "MAX_BODY_BYTES",
    "SearchRequest",
    "HitOut",
    "LabelOut",
    "SearchResponse",
    "BatchResponse",
    "ChunkOut",
    "HealthOut",
    "ErrorOut",
]

MAX_QUERY_CHARS = 2_000
MAX_K = 1_000
MAX_BATCH = 256
MAX_BODY_BYTES = 1 << 20
# Unix times beyond the year 5000 either way are not file times.
MAX_TIME = 1e11

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


class SearchRequest(BaseModel):
    """One query (``q``) or a batch (``queries``), not both."""

    # The schema says what the validator below enforces: exactly one of q and queries.
    # Strict: JSON types as the schema states them (no "10" for 10, no false for 0).
    model_config = ConfigDict(
        extra="forbid", strict=True, json_schema_extra={"oneOf": [{"required": ["q"]}, {"required": ["queries"]}]}
    )

    q: Query = Field(None, description="The query text.")  # type: ignore[assignment]
    queries: list[Query] = Field(  # type: ignore[assignment]
        None, min_length=1, max_length=MAX_BATCH, description="Several queries at once."
    )
    k: WholeNumber = Field(10, ge=1, le=MAX_K, description="Hits per query.")
    per_doc: bool = Field(False, description="Keep only the best chunk of each document.")
    mode: Literal["dense", "bm25", "hybrid"] = Field("hybrid", description="Retrieval mode.")
    fusion: Literal["rrf", "weighted"] = Field("weighted", description="Fusion of hybrid mode.")
    feedback: bool = Field(True, description="Hybrid mode: search the vectors again, moved towards the two best hits.")
    explain: bool = Field(False, description="Give each hit's dense and BM25 score and rank and the fused score.")
    path: str | None = Field(None, max_length=1000, description="Only files matching this glob or under this prefix.")
    type: list[Annotated[str, StringConstraints(max_length=40)]] = Field(
        [], max_length=20, description="Only these file kinds (markdown, pdf...) or extensions (.py)."
    )
    after: float | None = Field(
        None, ge=-MAX_TIME, le=MAX_TIME, description="Only files modified at or after this Unix time."
    )
    before: float | None = Field(
        None, ge=-MAX_TIME, le=MAX_TIME, description="Only files modified before this Unix time."
    )
    where: dict[
        Annotated[str, StringConstraints(min_length=1, max_length=200)],
        Annotated[str, StringConstraints(max_length=1000)],
    ] = Field({}, max_length=20, description="Only records whose metadata field equals the value.")
    label: list[Annotated[str, StringConstraints(max_length=400, pattern=LABEL_FILTER)]] = Field(
        [],
        max_length=20,
        description="Only documents a classifier labelled so: LABEL or FACET=LABEL; one facet's labels OR, facets AND.",
    )

    @model_validator(mode="after")
    def _one_of(self) -> SearchRequest:
        if (self.q is None) == (self.queries is None):
            raise ValueError("give either 'q' (one query) or 'queries' (a batch), not both or neither")
        texts = [self.q] if self.q is not None else self.queries
        if not texts:
            raise ValueError("'queries' is empty; give at least one query")
        if any(not t.strip() for t in texts):
            raise ValueError("a query is empty; give some words to search for")
        return self


class LabelOut(BaseModel):
    label: str
    score: float


class HitOut(BaseModel):
    rank: int
    chunk_id: int
    score: float
    path: str = Field(description="The source file.")
    key: str = Field(description="The record id inside a JSON/JSONL file; empty for a whole file.")
    source: str = Field(description="path, or path#record-id.")
    title: str | None
    lines: list[int] = Field(min_length=2, max_length=2, description="First and last line of the chunk (1-based).")
    snippet: str
    scores: dict[str, float]
    labels: dict[str, LabelOut] = Field(description="The document's label per classifier facet.")


class SearchResponse(BaseModel):
    query: str
    k: int
    per_doc: bool
    mode: str
    generation: int = Field(description="The index generation that answered.")
    took_ms: float
    hits: list[HitOut]
    facets: dict[str, dict[str, int]] = Field(description="Facet -> label -> how many of the hits carry it.")


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


class HealthOut(BaseModel):
    status: str
    model: str
    documents: int
    chunks: int
    generation: int
    index: str


class ErrorOut(BaseModel):
    detail: str
