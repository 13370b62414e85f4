"""IndexMeta: what an index says about itself, as one typed value.

index.db keeps it as rows of its ``meta`` table (a key and a text value each); a Milvus
collection keeps the part a daemon with no index.db needs as the collection's
properties. Both go through ``IndexMeta.from_rows`` and ``IndexMeta.rows``, the only
places that spell a key: everything else reads ``meta.dim`` (an int, or None before the
first vector) and writes ``store.update_meta(dim=384)``. A key this version does not know
(written by a newer searchctl) is kept in the table and ignored here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = ["IndexMeta", "Previous", "MILVUS_FIELDS"]


@dataclass(frozen=True)
class Previous:
    """The model and vectors a reindex replaced (what ``reindex --rollback`` returns to)."""

    model: str
    backend: str
    model_revision: str | None = None
    dim: int | None = None


@dataclass(frozen=True)
class IndexMeta:
    """Every setting and mark of one index. ``None`` means "not recorded (yet)"."""

    schema_version: int = 0
    generation: int = 0  # bumped by every commit that changes what a search sees
    created_at: str | None = None
    updated_at: str | None = None
    # the model and its vectors
    model: str | None = None
    model_revision: str | None = None
    backend: str | None = None  # torch, onnx, onnx-int8, hash
    dim: int | None = None
    normalized: str | None = None
    chunking: str | None = None  # the chunker's settings, as a run compares them
    # vector search
    faiss_factory: str | None = None
    ann: str | None = None  # auto, flat, hnsw, ivf
    # what was indexed and how it was read
    roots: tuple[str, ...] = ()
    ocr: str | None = None
    caption_model: str | None = None
    image_reading: str | None = None
    classifiers: Mapping[str, dict] = field(default_factory=dict)  # facet -> its classifier
    # where the chunks are searched
    engine: str | None = None  # None: local
    milvus_uri: str | None = None
    milvus_collection: str | None = None
    milvus_index_id: str | None = None
    milvus_published: int | None = None
    milvus_previous: str | None = None
    # a query encoder `adapt` fitted to this index's vectors (None: queries use ``model``)
    query_model: str | None = None
    # reindexing
    previous: Previous | None = None
    reindex_target: Mapping[str, str] | None = None

    @classmethod
    def from_rows(cls, rows: Mapping[str, str]) -> IndexMeta:
        """The meta of ``rows`` (key -> text); unknown keys are left out."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = rows.get(f.name)
            if raw is None:
                continue
            values[f.name] = _decode(f.name, raw)
        return cls(**values)

    def rows(self, names: tuple[str, ...] | None = None) -> dict[str, str | None]:
        """key -> text of the fields ``names`` (all by default); None for one not recorded."""
        out: dict[str, str | None] = {}
        for name in names if names is not None else tuple(f.name for f in fields(self)):
            value = getattr(self, name)
            out[name] = None if value is None else _encode(value)
        return out

    def changed(self, **changes: Any) -> tuple[IndexMeta, dict[str, str | None]]:
        """(the meta with ``changes``, the rows to write for them); an unknown name is a TypeError."""
        updated = replace(self, **changes)
        return updated, updated.rows(tuple(changes))

    # -- what the fields mean together ------------------------------------------------

    @property
    def embedded_backend(self) -> str | None:
        """The backend of the stored vectors (indexes older than the backend key: torch)."""
        return self.backend or ("torch" if self.dim else None)

    @property
    def engine_name(self) -> str:
        return self.engine or "local"

    @property
    def on_milvus(self) -> bool:
        return self.engine == "milvus"


# The fields a Milvus collection carries as properties (what a daemon with no index.db shows).
MILVUS_FIELDS = ("model", "backend", "dim", "model_revision", "roots", "classifiers", "generation", "query_model")

_INTS = {"schema_version", "generation", "dim", "milvus_published"}


def _decode(name: str, raw: str) -> object:
    if name in _INTS:
        return int(raw)
    if name == "roots":
        return tuple(json.loads(raw))
    if name in ("classifiers", "reindex_target"):
        return json.loads(raw)
    if name == "previous":
        found = json.loads(raw)
        return Previous(
            found["model"],
            found.get("backend") or "torch",
            found.get("model_revision"),
            int(found["dim"]) if found.get("dim") else None,
        )
    return raw


def _encode(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError("IndexMeta has no boolean field")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Previous):
        return json.dumps(
            {
                "model": value.model,
                "backend": value.backend,
                "model_revision": value.model_revision,
                "dim": value.dim,
            }  # fmt: skip
        )
    if isinstance(value, tuple):
        return json.dumps(list(value))
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True)
    raise TypeError(f"cannot record {type(value).__name__} in IndexMeta")
