"""The collection: its fields, the rows made from index.db, and the properties it carries.

One row per chunk, keyed by the chunk id (index.db never reuses one), never changed once
written (but for its labels). ``born`` is the generation that wrote it; a chunk a run
removes gets a tombstone (its id and that generation) in the side collection
``<name>_dead``. A search at generation G sees the rows born <= G that have no tombstone
of a generation <= G, so a run's new rows and its deletions become visible together when
it publishes G (the collection's ``searchctl.generation`` property), and a daemon still at
G-1 keeps seeing G-1 exactly. Rows whose tombstone is older than the previous published
generation are then deleted for good, with their tombstones. (Marking rows in place would
be an upsert, which Milvus Lite applies as a delete then an insert: a search between the
two misses the row.)

``terms`` is the title and text already stemmed our way (``searchcore.terms``); Milvus
fills ``sparse`` from it with its BM25 function and scores raw query text against it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ..meta import MILVUS_FIELDS, IndexMeta
from ..terms import TERMS_VERSION, document_terms

__all__ = [
    "FORMAT",
    "create",
    "rows",
    "visible",
    "tombstones",
    "PREFIX",
    "props_of",
    "meta_of",
    "OUTPUT",
    "label_fields",
]

FORMAT = "1"
PREFIX = "searchctl."
_TEXT_BYTES = 65_535  # a VARCHAR's largest size in Milvus
LABELS_MAX = 64
# Fields a record is read from (everything but the vectors and the terms).
OUTPUT = [
    "id", "doc_id", "path", "key", "kind", "title", "text", "char_start", "char_end",
    "line_start", "line_end", "mtime_ns", "meta", "labels",
]  # fmt: skip


def visible(generation: int, dead: Sequence[int] = ()) -> str:
    """The rows a search at ``generation`` sees, given the ids tombstoned by then."""
    alive = f"born <= {int(generation)}"
    return f"{alive} and id not in {sorted(int(i) for i in dead)}" if len(dead) else alive


def tombstones(name: str) -> str:
    return f"{name}_dead"


def create_tombstones(client, name: str) -> None:
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False, description="searchctl tombstones")
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("dead", DataType.INT64)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)  # every collection needs a vector field
    index = client.prepare_index_params()
    index.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(tombstones(name), schema=schema, index_params=index)


def _fit(text: str | None, limit: int = _TEXT_BYTES) -> str:
    data = (text or "").encode("utf-8")
    return text or "" if len(data) <= limit else data[:limit].decode("utf-8", "ignore")


def create(client, name: str, dim: int, properties: dict[str, str]) -> None:
    """A new, empty collection ``name`` for vectors of ``dim``."""
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False, description="searchctl chunks")
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("doc_id", DataType.INT64)
    for field in ("path", "key", "kind", "title", "text"):
        schema.add_field(field, DataType.VARCHAR, max_length=_TEXT_BYTES)
    schema.add_field("terms", DataType.VARCHAR, max_length=_TEXT_BYTES, enable_analyzer=True,
                     analyzer_params={"tokenizer": "standard"})  # fmt: skip
    for field in ("char_start", "char_end", "line_start", "line_end", "mtime_ns", "born"):
        schema.add_field(field, DataType.INT64)
    schema.add_field("meta", DataType.JSON)
    schema.add_field("labels", DataType.JSON)
    for field in ("label_any", "label_pairs"):
        schema.add_field(field, DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=LABELS_MAX,
                         max_length=1024)  # fmt: skip
    schema.add_field("dense", DataType.FLOAT_VECTOR, dim=int(dim))
    schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    schema.add_function(
        Function(
            name="bm25", function_type=FunctionType.BM25, input_field_names=["terms"], output_field_names=["sparse"]
        )  # fmt: skip
    )
    index = client.prepare_index_params()
    # Exact, as the local engine is (Milvus' AUTOINDEX is HNSW: approximate).
    index.add_index("dense", index_type="FLAT", metric_type="IP")
    index.add_index("sparse", index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    if client.has_collection(tombstones(name)):  # left by a run killed between the two creations
        client.drop_collection(tombstones(name))
    create_tombstones(client, name)
    client.create_collection(name, schema=schema, index_params=index, properties=properties)


def label_fields(labels: dict[str, dict]) -> dict:
    """The label fields of a row: facet -> {label, score}, and the arrays filters match."""
    pairs = sorted(labels.items())[:LABELS_MAX]
    return {
        "labels": dict(pairs),
        "label_any": sorted({v["label"] for _, v in pairs}),
        "label_pairs": [f"{facet}:{v['label']}" for facet, v in pairs],
    }


def rows(store, chunk_ids: Sequence[int], born: int) -> list[dict]:
    """The rows of ``chunk_ids`` as index.db holds them (call inside a snapshot)."""
    records = store.chunk_records(list(chunk_ids))
    vectors = store.vectors_of(list(records))
    labels = store.labels_of([r.doc_id for r in records.values()])
    out = []
    for chunk_id, r in records.items():
        vector = vectors.get(chunk_id)
        if vector is None:
            continue
        out.append(
            {
                "id": int(chunk_id), "doc_id": int(r.doc_id), "path": _fit(r.path), "key": _fit(r.key),
                "kind": r.kind, "title": _fit(r.title), "text": _fit(r.text),
                "terms": _fit(document_terms(r.title, r.text, lang=r.metadata.get("lang"))),
                "char_start": r.char_start, "char_end": r.char_end, "line_start": r.line_start,
                "line_end": r.line_end, "mtime_ns": int(r.mtime_ns), "born": int(born),
                "meta": r.metadata or {}, **label_fields(labels.get(r.doc_id, {})),
                "dense": np.asarray(vector, dtype=np.float32).tolist(),
            }
        )  # fmt: skip
    return out


def props_of(store, generation: int) -> dict[str, str]:
    """The properties a published collection carries: what a daemon with no index.db needs
    (the fields ``MILVUS_FIELDS`` of the index's meta, and the collection's own marks)."""
    meta = replace(store.meta(), generation=int(generation))
    counts = store.counts()
    keep = {k: v for k, v in meta.rows(MILVUS_FIELDS).items() if v is not None}
    return {
        PREFIX + "format": FORMAT,
        PREFIX + "index_id": meta.milvus_index_id or "",
        PREFIX + "counts": json.dumps({k: counts[k] for k in ("files", "documents", "chunks")}),
        PREFIX + "labels": "1" if store.has_labels() else "0",
        PREFIX + "terms": TERMS_VERSION,
        PREFIX + "languages": ",".join(store.keyword_languages()),
        **{PREFIX + k: v for k, v in keep.items()},
    }


def meta_of(props: dict[str, str]) -> IndexMeta:
    """The index meta a collection's properties carry."""
    return IndexMeta.from_rows({k[len(PREFIX) :]: v for k, v in props.items() if k.startswith(PREFIX)})
