"""Which engine an index searches with, and opening its read and write sides.

An index records its engine in index.db's meta: ``engine`` ("local", the default, or
"milvus"), with ``milvus_uri`` and ``milvus_collection`` for Milvus (a token is never
recorded: it comes with each command, or from SEARCHCTL_MILVUS_TOKEN). ``Config.engine``
asks a writer to move an index to an engine; later commands need no flags.
"""

from __future__ import annotations

from pathlib import Path

from .config import Config
from .engine import LocalEngine, LocalWriter
from .errors import UsageError
from .milvus.target import MilvusTarget, default_collection

__all__ = [
    "ENGINES",
    "recorded_target",
    "wanted_target",
    "precheck",
    "record_engine",
    "record_ann",
    "writer_for",
    "open_source",
    "engine_of",
]

ENGINES = ("local", "milvus")


def recorded_target(meta: dict[str, str], token: str = "") -> MilvusTarget | None:
    """The Milvus collection an index's meta names; None for the local engine."""
    if meta.get("engine") != "milvus":
        return None
    return MilvusTarget(meta["milvus_uri"], meta["milvus_collection"], token)


def wanted_target(config: Config, meta: dict[str, str], index_dir: Path) -> MilvusTarget | None:
    """The Milvus collection a writer run is to publish to (None: the local engine)."""
    engine = config.engine or meta.get("engine") or "local"
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "local":
        if config.milvus_uri or config.collection:
            raise UsageError("--milvus-uri and --collection go with --engine milvus")
        return None
    recorded = recorded_target(meta, config.milvus_token)
    uri = config.milvus_uri or (recorded.uri if recorded else None)
    if not uri:
        raise UsageError(
            "--engine milvus needs --milvus-uri (a Milvus Lite file such as ./chunks.db, or http://host:19530)"
        )
    collection = config.collection or (recorded.collection if recorded else None) or default_collection(index_dir)
    return MilvusTarget(uri, collection, config.milvus_token).recorded()


def precheck(config: Config) -> None:
    """Before a writer run changes anything: when it is to publish to Milvus, the engine
    answers and the collection is absent or this index's own, with its model."""
    from .models import DEFAULT_MODEL, canonical_model_name
    from .store import DB_NAME, Store

    meta: dict[str, str] = {}
    if (Path(config.index_dir) / DB_NAME).exists():
        with Store.open(config.index_dir, reader=True) as store:
            meta = store.meta()
    target = wanted_target(config, meta, Path(config.index_dir))
    if target is None:
        return
    from .milvus.writer import check_target

    model = meta.get("model") or (canonical_model_name(config.model) if config.model else DEFAULT_MODEL)
    check_target(target, meta.get("milvus_index_id"), model, int(meta["dim"]) if meta.get("dim") else None)


def record_engine(store, target: MilvusTarget | None) -> bool:
    """Inside ``store.write()``: note the engine in meta; True when it changed (so the
    next commit publishes everything afresh)."""
    meta = store.meta()
    if target is None:
        changed = meta.get("engine", "local") != "local"
        store.set_meta(engine="local")
        return changed
    changed = (meta.get("engine"), meta.get("milvus_uri"), meta.get("milvus_collection")) != (
        "milvus", target.uri, target.collection,
    )  # fmt: skip
    store.set_meta(engine="milvus", milvus_uri=target.uri, milvus_collection=target.collection)
    if changed:
        store.set_meta(milvus_published="-1")  # nothing published there yet: the next commit publishes all
    return changed


def record_ann(store, ann: str | None) -> None:
    """``index --ann``: note the vector search wanted; the writer made before this notices
    the change and its commit brings the vector file to the new kind."""
    if ann and ann != store.get_meta("ann"):
        with store.write():
            store.set_meta(ann=ann)


def writer_for(store, index_dir: Path, token: str = ""):
    """The writer of the engine the index records."""
    target = recorded_target(store.meta(), token)
    if target is None:
        return LocalWriter(store, Path(index_dir))
    from .milvus.writer import MilvusWriter

    return MilvusWriter(store, Path(index_dir), target)


def open_source(config: Config):
    """(records, remote) for a Searcher: index.db and the local engine, or a
    Milvus collection's view and engine (``config.milvus_uri`` with no index, or an index
    that records Milvus)."""
    from .store import Store

    target = None
    if config.engine == "milvus" and config.milvus_uri:
        target = MilvusTarget(config.milvus_uri, config.collection or default_collection(config.index_dir),
                              config.milvus_token)  # fmt: skip
    if target is None:
        store = Store.open(config.index_dir, reader=True)
        try:
            # --engine local reads index.db even where the index publishes to Milvus
            target = None if config.engine == "local" else recorded_target(store.meta(), config.milvus_token)
        except BaseException:
            store.close()
            raise
        if target is None:
            return store, False
        store.close()
    from .milvus.reader import CollectionView

    return CollectionView(target), True


def engine_of(source, is_remote: bool, index_dir: Path):
    """The engine over ``source`` (call inside its read transaction / pinned generation)."""
    if is_remote:
        from .milvus.reader import MilvusEngine

        return MilvusEngine(source)
    return LocalEngine(source, index_dir)
