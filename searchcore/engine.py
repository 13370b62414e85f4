"""The engine seam: what readers need of an index (``Records``) and where its chunks are
searched (``Engine``, ``EngineWriter``).

``Records`` is what is stored, at one pinned generation: chunk records, documents, labels,
vectors and the index's ``IndexMeta``. index.db's ``Store`` implements it, and so does a
Milvus collection's view (``searchcore.milvus.reader.CollectionView``), so the Searcher, the
daemon and fine-tuning read either the same way; ``searchcore.snapshot`` opens one.

The Searcher asks an engine for four things: the dense top-k of a query vector, the
keyword top-k of a query text (each restricted to an allow-list of chunk ids when the
search is filtered), the stored vectors of some chunks, and the allow-list a set of
filters makes. A writer tells its engine which chunks a run added and removed, then
commits, which publishes the committed generation to searchers. The local index.db stays
the manifest of what was read, whatever the engine, so incremental indexing works the
same on every engine.

``LocalEngine`` is the default: a tantivy inverted index for keywords
(``searchcore.keywords``, a derived cache of the generation; SQLite FTS5 in index.db,
written in the same transactions as the chunks, answers whenever that cache is not of the
reader's generation) and the FAISS file of the generation for vectors
(``searchcore.vectors``). ``searchcore.milvus`` implements the
same two protocols on a Milvus collection, and also serves the records a Searcher shows,
so that it needs no index.db at all; ``searchcore.snapshot`` picks one for a reader and
``searchcore.engines`` for a writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from . import keywords
from .keywords import KeywordIndex
from .meta import IndexMeta
from .options import Filters
from .store import ChunkRecord, DocumentRow, Store, fts_query
from .vector_files import load_current, rebuild, remove_partial_files, sync, vectors_path
from .vectors import VectorIndex

__all__ = ["AllowList", "Records", "Engine", "EngineWriter", "LocalEngine", "LocalWriter", "RunChanges"]

# The temporary table in index.db that holds a filtered search's allowed chunk ids.
_ALLOWED = "allowed"
# Allow-lists a reader keeps, by filter.
_ALLOW_LISTS_KEPT = 8


@dataclass(frozen=True)
class AllowList:
    """The chunks a filtered search may return: their ids, or an engine's own expression
    for them and how many there are."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    expr: str | None = None
    count: int | None = None

    def __len__(self) -> int:
        return self.count if self.count is not None else len(self.ids)


class Records(Protocol):
    """What readers need of an index, at the generation ``begin_read`` pinned."""

    @property
    def generation(self) -> int: ...

    @property
    def source(self) -> str:
        """Where the records are read from, as shown to people (a folder, ``milvus:URI/collection``)."""
        ...

    def meta(self) -> IndexMeta: ...

    def begin_read(self) -> None:
        """Pin the committed (published) generation until ``close``."""
        ...

    def close(self) -> None: ...

    def counts(self) -> dict[str, int]:
        """files, documents, chunks and vectors."""
        ...

    def has_labels(self) -> bool: ...

    def chunk_records(self, chunk_ids: Sequence[int]) -> dict[int, ChunkRecord]: ...

    def file_chunks(self, path: str) -> list[ChunkRecord]:
        """Every chunk of the indexed file at exactly ``path``, by document, in document order."""
        ...

    def metadata_fields(self) -> set[str] | None:
        """Every metadata field some document has; None where that is not known cheaply."""
        ...

    def doc_ids_of(self, chunk_ids: Sequence[int]) -> dict[int, int]: ...

    def places_of(self, chunk_ids: Sequence[int]) -> dict[int, tuple[str, str, int]]:
        """chunk id -> (record key, path, first character): where each chunk is, the order
        equal scores are given in."""
        ...

    def labels_of(self, doc_ids: Sequence[int]) -> dict[int, dict[str, dict]]:
        """doc id -> facet -> {"label", "score"}."""
        ...

    def vectors_of(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]: ...

    def file_kind(self, path: str) -> str | None:
        """The kind of the indexed file at exactly ``path``; None when the index holds none."""
        ...

    def document_ids(self) -> tuple[set[str], set[str]]:
        """(record ids, paths of whole-file documents): the ids a judgement can name."""
        ...

    def document_list(self) -> list[DocumentRow]: ...

    def document_chunks(self, doc_ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
        """doc id -> [(chunk id, text)] in document order."""
        ...

    def documents_by_key(self, keys: Iterable[str]) -> dict[str, list[tuple[int, str | None]]]:
        """record id -> [(doc id, title)] of the documents with that key."""
        ...


class Engine(Protocol):
    """The read side: one committed generation of an index."""

    rebuilt: bool  # no sound vector file of this generation: the vectors came from index.db

    def dense(self, vector: np.ndarray, k: int, allowed: AllowList | None) -> list[tuple[int, float]]:
        """Best-first (chunk id, cosine) of the k nearest chunks (of ``allowed`` only)."""
        ...

    def keyword(self, text: str, k: int, allowed: AllowList | None) -> list[tuple[int, float]]:
        """Best-first (chunk id, BM25 score) of the k best keyword matches of ``text``."""
        ...

    def vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]: ...

    def allow(self, filters: Filters) -> AllowList: ...

    @property
    def size(self) -> int:
        """How many vectors a dense search runs over (0: dense search finds nothing)."""
        ...


class EngineWriter(Protocol):
    """The write side: told what a run changed, publishes it on commit."""

    def added(self, chunk_ids: Iterable[int]) -> None: ...

    def removed(self, chunk_ids: Iterable[int]) -> None: ...

    def commit(self) -> None: ...

    def rebuild(self) -> None:
        """Everything derived again from index.db (after a reindex swap or a repair)."""
        ...


class LocalEngine:
    """tantivy (or FTS5) + FAISS, for a reader that holds a read transaction on ``store``.

    Open it inside that transaction: the FAISS index it loads (or rebuilds in memory from
    index.db, writing nothing) and the keyword cache it accepts then belong to the same
    committed state as every read."""

    def __init__(self, store: Store, index_dir: Path):
        self.store = store
        self.index: VectorIndex | None
        counts = store.counts()  # once: at a million chunks each count reads an index
        self.index, self.rebuilt = load_current(store, Path(index_dir), counts=counts)
        self.keywords = KeywordIndex.open(Path(index_dir), store.generation, counts["chunks"])
        self.languages = store.keyword_languages()  # a query is also stemmed as each of these
        self._allowed: dict[Filters, AllowList] = {}  # newest last

    @property
    def size(self) -> int:
        return self.index.live if self.index is not None else 0

    def dense(self, vector: np.ndarray, k: int, allowed: AllowList | None) -> list[tuple[int, float]]:
        if self.index is None:
            return []
        scores, ids = self.index.search(vector, k, allowed.ids if allowed is not None else None)
        return [(i, s) for s, i in zip(scores[0].tolist(), ids[0].tolist()) if i >= 0]  # Python numbers

    def keyword(self, text: str, k: int, allowed: AllowList | None) -> list[tuple[int, float]]:
        if self.keywords is not None:
            try:
                return self.keywords.search(text, k, allowed.ids if allowed is not None else None, self.languages)
            except ValueError:  # a cache file damaged after it was opened: FTS5 from here on
                self.keywords = None
                if allowed is not None:
                    self.store.allow_ids(allowed.ids, _ALLOWED)
        match = fts_query(text, self.languages)
        if match is None:
            return []
        return self.store.bm25(match, k, _ALLOWED if allowed is not None else None)

    def vectors(self, chunk_ids: Sequence[int]) -> dict[int, np.ndarray]:
        return self.store.vectors_of(chunk_ids)

    def allow(self, filters: Filters) -> AllowList:
        if self.keywords is None:  # FTS5 reads the ids from a table of index.db, filled anew
            return AllowList(self.store.allow(filters, _ALLOWED))
        # The generation is pinned, so a filter's chunks never change: the last few are
        # kept (a broad filter over a million chunks costs SQLite most of a second).
        found = self._allowed.pop(filters, None)
        if found is None:
            found = AllowList(self.store.allow(filters, None))
        self._allowed[filters] = found
        while len(self._allowed) > _ALLOW_LISTS_KEPT:
            self._allowed.pop(next(iter(self._allowed)))
        return found


class RunChanges:
    """The chunk ids a writer's run added and removed, as it tells them."""

    def __init__(self) -> None:
        self._added: set[int] = set()
        self._removed: set[int] = set()

    def added(self, chunk_ids: Iterable[int]) -> None:
        self._added.update(int(c) for c in chunk_ids)

    def removed(self, chunk_ids: Iterable[int]) -> None:
        self._removed.update(int(c) for c in chunk_ids)


class LocalWriter(RunChanges):
    """The writer's side of the local engine: FTS5 rows are written with the chunks, so
    a commit brings the derived caches to the committed generation: the keyword cache,
    then the FAISS file (whose presence is what a daemon waits for), each a delta on what
    the run started from, or a rebuild."""

    def __init__(self, store: Store, index_dir: Path):
        super().__init__()
        self.store = store
        self.index_dir = Path(index_dir)
        with store.snapshot():
            self.start = (store.generation, store.counts()["vectors"])
        self.ann = store.meta().ann

    def commit(self) -> None:
        """Publish the committed generation: its FAISS file, if this run changed anything
        or no file of it exists yet (a crashed run's last commit)."""
        meta = self.store.meta()
        generation = meta.generation
        if keywords.generation_of(self.index_dir) != generation:
            keywords.sync(self.store, self.index_dir, self.start[0], self._added, self._removed)
        unpublished = meta.dim and not vectors_path(self.index_dir, generation).exists()
        reshaped = meta.ann != self.ann  # `index --ann` changed the kind wanted
        if generation != self.start[0] or unpublished or reshaped:
            sync(self.store, self.index_dir, self.start, self._added, self._removed)
        else:
            remove_partial_files(self.index_dir)  # a killed writer's, when nothing else is written
        self.ann = meta.ann
        with self.store.snapshot():
            self.start = (self.store.generation, self.store.counts()["vectors"])
        self._added, self._removed = set(), set()

    def rebuild(self) -> None:
        keywords.rebuild(self.store, self.index_dir)
        rebuild(self.store, self.index_dir)
