"""The read seam: one published generation of an index, whichever engine holds its chunks.

Every reader (the Searcher, the daemon, fine-tuning, ``info``) opens an index here and
sees it through two typed interfaces (``searchcore.engine``): ``Records``, what is stored
(chunks, documents, labels, vectors, the index's ``IndexMeta``), and ``Engine``, how the
chunks are searched. The records are index.db (``Store``) with the local engine (tantivy
or FTS5 + FAISS), or a Milvus collection's view with the Milvus engine: where a Milvus
index is read from is decided here and nowhere else.

``Probe`` tells a daemon what is published now, outside any transaction: the rule for
"a new generation is ready to serve" (its vector file is written, or no writer is at work
any more and it must be rebuilt; on Milvus, the collection's properties name it) is
``Probe.published``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .engine import Engine, LocalEngine, Records
from .lock import writer_active
from .meta import IndexMeta
from .milvus.target import MilvusTarget, default_collection
from .store import Store
from .vector_files import vectors_path

__all__ = ["Snapshot", "Published", "Probe", "open_records", "open_snapshot", "published_generation",
           "recorded_target"]  # fmt: skip


def recorded_target(meta: IndexMeta, token: str = "") -> MilvusTarget | None:
    """The Milvus collection an index's meta names; None for the local engine."""
    if not meta.on_milvus or not meta.milvus_uri or not meta.milvus_collection:
        return None
    return MilvusTarget(meta.milvus_uri, meta.milvus_collection, token)


def _asked_target(config: Config) -> MilvusTarget | None:
    """A collection named on the command line (``--engine milvus --milvus-uri``), read with no index.db."""
    if config.engine == "milvus" and config.milvus_uri:
        collection = config.collection or default_collection(config.index_dir)
        return MilvusTarget(config.milvus_uri, collection, config.milvus_token)
    return None


def open_records(config: Config) -> Records:
    """The records of the index ``config`` names, not yet pinned: index.db, or the Milvus
    collection it publishes to (``--engine local`` reads index.db even then), or a
    collection named with no index at all."""
    target = _asked_target(config)
    if target is None:
        store = Store.open(config.index_dir, reader=True)
        try:
            target = None if config.engine == "local" else recorded_target(store.meta(), config.milvus_token)
        except BaseException:
            store.close()
            raise
        if target is None:
            return store
        store.close()
    from .milvus.reader import CollectionView

    return CollectionView(target)


@dataclass
class Snapshot:
    """One pinned generation: its records and the engine over them."""

    records: Records
    engine: Engine
    index_dir: Path

    @property
    def generation(self) -> int:
        return self.records.generation

    @property
    def published(self) -> Published:
        meta = self.records.meta()
        return Published(meta.generation, _location(self.records), meta.model, meta.query_model)

    def close(self) -> None:
        self.records.close()

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_snapshot(config: Config) -> Snapshot:
    """The committed (on Milvus: published) generation of the index, pinned for as long as
    the snapshot stays open: every read sees that one state whatever a writer does."""
    records = open_records(config)
    try:
        records.begin_read()
        engine: Engine
        if isinstance(records, Store):
            engine = LocalEngine(records, Path(config.index_dir))
        else:
            from .milvus.reader import CollectionView, MilvusEngine

            assert isinstance(records, CollectionView)
            engine = MilvusEngine(records)
        return Snapshot(records, engine, Path(config.index_dir))
    except BaseException:
        records.close()
        raise


@dataclass(frozen=True)
class Published:
    """What a daemon could serve: a generation, where its chunks are (the index folder, or
    the physical collection behind a Milvus alias: compact moves it at the same
    generation) and the model its vectors are of."""

    generation: int
    source: str
    model: str | None
    query_model: str | None = None


def _location(records: Records) -> str:
    """Where the records are: the index folder, or the physical collection behind an alias."""
    from .milvus.reader import CollectionView

    return records.name if isinstance(records, CollectionView) else records.source


class Probe:
    """What is published now, read afresh at every call (a daemon's quarter-second poll)."""

    def __init__(self, config: Config):
        self.index_dir = Path(config.index_dir)
        self._records = open_records(config)
        self._local = isinstance(self._records, Store)

    def published(self) -> Published | None:
        """The newest generation ready to serve; None while a writer is between its commit
        and writing that generation's vector file."""
        if self._local:
            meta = self._records.meta()
            ready = vectors_path(self.index_dir, meta.generation).exists() or not writer_active(self.index_dir)
            return Published(meta.generation, _location(self._records), meta.model, meta.query_model) if ready else None
        from .milvus.reader import CollectionView

        assert isinstance(self._records, CollectionView)
        self._records.refresh()  # a Milvus writer publishes a generation only once its rows are in
        meta = self._records.meta()
        return Published(meta.generation, _location(self._records), meta.model, meta.query_model)

    def close(self) -> None:
        self._records.close()


def published_generation(config: Config) -> int | None:
    """The generation a daemon opened now would serve (None: a writer is about to publish one)."""
    probe = Probe(config)
    try:
        found = probe.published()
        return found.generation if found else None
    finally:
        probe.close()
