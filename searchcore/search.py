"""Searcher: a query string in, a ranked list of ``Hit`` out.

Scope: dense retrieval by cosine similarity over the FAISS cache of one index, with an
optional one-best-chunk-per-document mode (needed wherever relevance is judged per
document). The searcher refuses to embed a query with any model but the index's own:
vectors from two models are not comparable, and a silent mix ranks garbage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .config import Config
from .embedder import DEFAULT_MODEL, Embedder, canonical_model_name
from .errors import ModelMismatchError, UsageError
from .store import Store
from .vectors import load_current

__all__ = ["Hit", "Searcher", "index_model"]


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    score: float
    path: str
    lines: tuple[int, int]
    text: str
    scores: dict[str, float] = field(default_factory=dict)
    key: str = ""
    title: str | None = None
    doc_id: int = 0
    metadata: dict = field(default_factory=dict)

    @property
    def source(self) -> str:
        """The file path, with ``#record-id`` for a record of a JSON/JSONL file."""
        return f"{self.path}#{self.key}" if self.key else self.path

    def to_dict(self) -> dict:
        out = asdict(self)
        out["lines"] = list(self.lines)
        out["source"] = self.source
        return out


def index_model(store: Store, requested: str | None) -> str:
    """The model to use with this index: its own, or ``requested`` if it is the same one."""
    recorded = store.get_meta("model")
    if recorded is None:
        return canonical_model_name(requested) if requested else DEFAULT_MODEL
    if requested is not None and canonical_model_name(requested) != recorded:
        raise ModelMismatchError(recorded, canonical_model_name(requested))
    return recorded


class Searcher:
    """Queries one committed generation of an index.

    The Searcher holds a read transaction on index.db for its whole life, so every search
    sees exactly the state its FAISS index was built from, whatever a writer commits
    meanwhile. Open a new Searcher to see newer generations.
    """

    def __init__(self, config: Config, embedder: Embedder | None = None):
        self.config = config
        self.store = Store.open(config.index_dir)
        try:
            model = index_model(self.store, config.model or (embedder.name if embedder else None))
            self.embedder = embedder if embedder is not None else Embedder(model)
            self.store.conn.execute("BEGIN")
            self.generation = self.store.generation
            self.counts = self.store.counts()
            self.vectors, self.rebuilt = load_current(self.store, config.index_dir)
        except BaseException:
            self.store.close()
            raise

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def search(self, query: str, k: int = 10, *, per_doc: bool = False) -> list[Hit]:
        return self.search_many([query], k, per_doc=per_doc)[0]

    def search_many(self, queries: Sequence[str], k: int = 10, *, per_doc: bool = False) -> list[list[Hit]]:
        """Hits for each query; the queries are embedded in one batch."""
        if any(not query or not query.strip() for query in queries):
            raise UsageError("the query is empty; give some words to search for")
        if k < 1:
            raise UsageError(f"k must be at least 1, not {k}")
        if self.vectors is None or self.vectors.ntotal == 0:
            return [[] for _ in queries]
        vectors = self.embedder.embed(list(queries))
        return [self._rank(vectors[i : i + 1], k, per_doc) for i in range(len(queries))]

    def _rank(self, query_vector: np.ndarray, k: int, per_doc: bool) -> list[Hit]:
        fetch = k * 4 if per_doc else k
        while True:
            scores, ids = self.vectors.search(query_vector, fetch)
            pairs = [(float(s), int(i)) for s, i in zip(scores[0], ids[0]) if i >= 0]
            records = self.store.chunk_records([i for _, i in pairs])
            hits: list[Hit] = []
            seen_docs: set[int] = set()
            for score, chunk_id in pairs:
                record = records.get(chunk_id)
                if record is None:  # cannot happen within one snapshot; never fatal
                    continue
                if per_doc:
                    if record.doc_id in seen_docs:
                        continue
                    seen_docs.add(record.doc_id)
                hits.append(
                    Hit(
                        chunk_id=chunk_id,
                        score=score,
                        path=record.path,
                        lines=(record.line_start, record.line_end),
                        text=record.text,
                        scores={"dense": score},
                        key=record.key,
                        title=record.title,
                        doc_id=record.doc_id,
                        metadata=record.metadata,
                    )
                )
                if len(hits) == k:
                    return hits
            if fetch >= self.vectors.ntotal:
                return hits
            fetch *= 4
