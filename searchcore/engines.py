"""Which engine a writer publishes to, and opening it.

An index records its engine in its ``IndexMeta``: ``engine`` ("local", the default, or
"milvus"), with ``milvus_uri`` and ``milvus_collection`` for Milvus (a token is never
recorded: it comes with each command, or from SEARCHCTL_MILVUS_TOKEN). ``Config.engine``
asks a writer to move an index to an engine; later commands need no flags. Readers open
an index through ``searchcore.snapshot``.
"""

from __future__ import annotations

from pathlib import Path

from .config import Config
from .engine import EngineWriter, LocalWriter
from .errors import UsageError
from .meta import IndexMeta
from .milvus.target import MilvusTarget, default_collection
from .snapshot import recorded_target

__all__ = ["ENGINES", "wanted_target", "precheck", "record_engine", "record_ann", "writer_for"]

ENGINES = ("local", "milvus")


def wanted_target(config: Config, meta: IndexMeta, index_dir: Path) -> MilvusTarget | None:
    """The Milvus collection a writer run is to publish to (None: the local engine)."""
    engine = config.engine or meta.engine_name
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

    meta = IndexMeta()
    if (Path(config.index_dir) / DB_NAME).exists():
        with Store.open(config.index_dir, reader=True) as store:
            meta = store.meta()
    target = wanted_target(config, meta, Path(config.index_dir))
    if target is None:
        return
    from .milvus.writer import check_target

    model = meta.model or (canonical_model_name(config.model) if config.model else DEFAULT_MODEL)
    check_target(target, meta.milvus_index_id, model, meta.dim)


def record_engine(store, target: MilvusTarget | None) -> bool:
    """Inside ``store.write()``: note the engine in meta; True when it changed (so the
    next commit publishes everything afresh)."""
    meta = store.meta()
    if target is None:
        store.update_meta(engine="local")
        return meta.engine_name != "local"
    changed = (meta.engine, meta.milvus_uri, meta.milvus_collection) != ("milvus", target.uri, target.collection)
    store.update_meta(engine="milvus", milvus_uri=target.uri, milvus_collection=target.collection)
    if changed:
        store.update_meta(milvus_published=-1)  # nothing published there yet: the next commit publishes all
    return changed


def record_ann(store, ann: str | None) -> None:
    """``index --ann``: note the vector search wanted; the writer made before this notices
    the change and its commit brings the vector file to the new kind."""
    if ann and ann != store.meta().ann:
        with store.write():
            store.update_meta(ann=ann)


def writer_for(store, index_dir: Path, token: str = "") -> EngineWriter:
    """The writer of the engine the index records."""
    target = recorded_target(store.meta(), token)
    if target is None:
        return LocalWriter(store, Path(index_dir))
    from .milvus.writer import MilvusWriter

    return MilvusWriter(store, Path(index_dir), target)
