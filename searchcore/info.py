"""What ``searchctl info`` and ``GET /info`` show of an index, made once.

``index_info(config)`` reads an index (or, with ``--engine milvus --milvus-uri``, a Milvus
collection with no local index) and returns ``IndexInfo``: the model, its backend and
dimension, the counts, the vector search and where the chunks live, the classifier
facets and the files on disk. ``to_dict()`` is the JSON both sides give, ``lines()`` the
text the command prints. It never writes anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .config import Config
from .keywords import KEYWORDS_DIR
from .snapshot import open_records, recorded_target
from .store import Store
from .vector_files import describe as describe_vectors

__all__ = ["IndexInfo", "index_info", "index_status", "human_bytes", "MAX_SKIPPED_SHOWN"]

_LOCAL = "local (FAISS + tantivy; SQLite FTS5 as fallback)"


@dataclass
class IndexInfo:
    index: str | None  # the index folder; None for a Milvus collection read with no index.db
    engine: str
    model: str | None
    model_revision: str | None
    backend: str | None
    dimension: int | None
    files: int
    documents: int
    chunks: int
    generation: int
    index_type: str | None = None
    ann: str = "auto"
    schema_version: int | None = None
    chunking: str | None = None
    updated_at: str | None = None
    classifiers: dict[str, dict] = field(default_factory=dict)  # facet -> {path, id, labels: {label: n}}
    sizes: dict[str, int] = field(default_factory=dict)
    total_bytes: int = 0
    milvus: dict | None = None  # engine, URI (never the token), collection, rows, index types
    query_model: str | None = None  # the query encoder `adapt` fitted, where there is one

    def to_dict(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        """The text of ``searchctl info``: one "label  value" line each."""
        rows: list[tuple[str, object]] = []
        if self.index is not None:
            rows += [
                ("index", self.index),
                ("model", f"{self.model} (revision {self.model_revision or '-'})"),
                *([("queries by", f"{self.query_model} (adapted by `searchctl adapt`)")] if self.query_model else []),
                ("backend", self.backend or "-"),
                ("dimension", self.dimension or "-"),
                ("documents", f"{self.documents:,} in {self.files:,} files"),
                ("chunks", f"{self.chunks:,}"),
                ("index type", f"{self.index_type}; --ann {self.ann} (inner product on L2-normalised vectors)"),
                *([("engine", _LOCAL)] if self.engine == "local" else []),
                ("generation", self.generation),
                ("schema", f"v{self.schema_version}"),
                ("updated", self.updated_at or "-"),
                *[
                    (f"facet {f}", ", ".join(f"{k} {n:,}" for k, n in c["labels"].items()) + f" ({c['path']})")
                    for f, c in self.classifiers.items()
                ],
                (
                    "on disk",
                    ", ".join(f"{name} {human_bytes(size)}" for name, size in self.sizes.items())
                    + f"; total {human_bytes(self.total_bytes)}",
                ),
            ]
        if self.milvus is not None:
            m = self.milvus
            rows += [
                ("engine", f"milvus at {m['milvus_uri']}"),
                ("collection", f"{m['collection']} -> {m['milvus_collection']}"),
                ("model", self.model or "-"),
                ("rows", f"{m['rows']:,} (chunks {self.chunks:,})"),
                ("index type", m["milvus_index"]),
                ("generation", m["published_generation"]),
            ]
        return [f"{label:<11} {value}" for label, value in rows]


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _sizes(index_dir: Path) -> dict[str, int]:
    sizes = {p.name: p.stat().st_size for p in sorted(index_dir.iterdir()) if p.is_file()}
    cache = index_dir / KEYWORDS_DIR
    if cache.is_dir():  # the keyword cache: one folder of tantivy's files
        sizes[KEYWORDS_DIR + "/"] = sum(p.stat().st_size for p in cache.iterdir() if p.is_file())
    return sizes


def index_info(config: Config) -> IndexInfo:
    """What there is to know about the index ``config`` names (see the module docstring)."""
    from .milvus.reader import CollectionView, describe

    # index.db itself (it may publish to Milvus), or a collection named with no index.db
    local = not (config.engine == "milvus" and config.milvus_uri)
    records = open_records(replace(config, engine="local") if local else config)
    if isinstance(records, CollectionView):
        meta, counts = records.meta(), records.counts()
        records.close()
        shown = describe(records.target)
        return IndexInfo(
            None, "milvus", meta.model, meta.model_revision, meta.embedded_backend, meta.dim, counts["files"],
            counts["documents"], counts["chunks"], meta.generation, milvus=shown,
        )  # fmt: skip
    index_dir = Path(config.index_dir)
    assert isinstance(records, Store)
    with records as store:
        with store.snapshot():
            meta, counts = store.meta(), store.counts()
            classifiers, label_counts = store.classifiers(), store.label_counts()
    sizes = _sizes(index_dir)
    info = IndexInfo(
        index=str(index_dir.resolve()),
        engine=meta.engine_name,
        model=meta.model,
        model_revision=meta.model_revision,
        backend=meta.embedded_backend,
        dimension=meta.dim,
        files=counts["files"],
        documents=counts["documents"],
        chunks=counts["chunks"],
        generation=meta.generation,
        index_type=describe_vectors(index_dir, meta) or meta.faiss_factory,
        ann=meta.ann or "auto",
        schema_version=meta.schema_version,
        chunking=meta.chunking,
        updated_at=meta.updated_at,
        classifiers={f: {**c, "labels": label_counts.get(f, {})} for f, c in classifiers.items()},
        sizes=sizes,
        total_bytes=sum(sizes.values()),
        query_model=meta.query_model,
    )
    recorded = recorded_target(meta, config.milvus_token)
    if recorded is not None:
        info.milvus = describe(recorded)
    return info


# The most skipped files a status names (it counts them all).
MAX_SKIPPED_SHOWN = 100


def index_status(config: Config) -> dict:
    """What an assistant asks of an index: its size, model, generation, last run, and the
    files its runs passed over with the reason (the first MAX_SKIPPED_SHOWN; on a Milvus
    collection read with no index.db, none are known)."""
    info = index_info(config)
    skipped: list[dict] = []
    if info.index is not None:
        with Store.open(Path(info.index), reader=True) as store:
            skipped = store.skipped_list()
    return {
        "index": info.index or (info.milvus or {}).get("collection"),
        "engine": info.engine,
        "model": info.model,
        "query_encoder": info.query_model,  # the query encoder `adapt` fitted, if any
        "backend": info.backend,
        "files": info.files,
        "documents": info.documents,
        "chunks": info.chunks,
        "generation": info.generation,
        "last_run": info.updated_at,
        "facets": sorted(info.classifiers),
        "skipped_count": len(skipped),
        "skipped": [{"path": row["path"], "reason": row["reason"]} for row in skipped[:MAX_SKIPPED_SHOWN]],
    }
