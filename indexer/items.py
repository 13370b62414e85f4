"""The work items of an indexing run, and how a batch of them is written to index.db.

An indexing run decides per file what to do (``indexer.build``) and queues items: a
document to write with its chunks (``DocItem``, embedded in the batch), a file finished
(``FileDone``: only now does its row get its content hash), a file moved or copied
without embedding (``Move``, ``Copy``), a new timestamp (``Touch``) or a file gone
(``Drop``). ``write_items`` writes one batch inside the run's transaction and tells the
engine writer which chunks came and went.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from searchcore.engine import EngineWriter
from searchcore.store import Store

from .chunker import Chunk
from .readers import Document

__all__ = ["FileState", "DocItem", "FileDone", "Move", "Copy", "Touch", "Drop", "write_items"]


@dataclass
class FileState:
    path: str
    kind: str
    file_id: int | None = None
    claimed: bool = False  # its row is marked unfinished in the current write


@dataclass
class DocItem:
    file: FileState
    doc: Document
    hash: str
    chunks: list[Chunk]
    texts: list[str]
    kept: dict[int, np.ndarray] = field(default_factory=dict)  # chunk index -> its unchanged stored vector

    @property
    def to_embed(self) -> list[str]:
        """The texts of the chunks that need the encoder (those not kept)."""
        return [text for i, text in enumerate(self.texts) if i not in self.kept]

    def vectors(self, fresh: np.ndarray) -> np.ndarray:
        """Every chunk's vector: the kept ones, and ``fresh`` (of ``to_embed``) in between."""
        if not self.kept:
            return fresh
        out = np.empty((len(self.texts), fresh.shape[1] if len(fresh) else len(next(iter(self.kept.values())))))
        rows = iter(fresh)
        for i in range(len(self.texts)):
            out[i] = self.kept[i] if i in self.kept else next(rows)
        return out.astype(np.float32)


@dataclass
class FileDone:
    file: FileState
    hash: str
    size: int
    mtime_ns: int
    removed_doc_ids: list[int]
    notes: list[str]


@dataclass
class Move:
    file_id: int
    path: str
    size: int
    mtime_ns: int


@dataclass
class Copy:
    source_id: int
    path: str
    size: int
    mtime_ns: int


@dataclass
class Touch:
    file_id: int
    size: int
    mtime_ns: int


@dataclass
class Drop:
    file_id: int


def _file_id(store: Store, state: FileState) -> int:
    if not state.claimed:
        state.file_id = store.ensure_file(state.path, state.kind)
        state.claimed = True
    assert state.file_id is not None
    return state.file_id


def write_items(store: Store, engine: EngineWriter, items: list[object], vectors: np.ndarray) -> bool:
    """Inside ``store.write()``: write a batch; ``vectors`` are its DocItems' chunk vectors
    in order. True if anything a search sees changed."""
    changed = False
    offset = 0
    for item in items:
        if isinstance(item, DocItem):
            file_id = _file_id(store, item.file)
            n = len(item.texts) - len(item.kept)
            doc = item.doc
            removed, added = store.put_document(
                file_id,
                doc.key,
                title=doc.title,
                hash=item.hash,
                metadata=doc.metadata,
                chunks=item.chunks,
                vectors=item.vectors(vectors[offset : offset + n]),
            )
            engine.removed(removed)
            engine.added(added)
            offset += n
            changed = True
        elif isinstance(item, FileDone):
            file_id = _file_id(store, item.file)
            if item.removed_doc_ids:
                engine.removed(store.delete_documents(item.removed_doc_ids))
                changed = True
            store.finish_file(
                file_id,
                kind=item.file.kind,
                hash=item.hash,
                size=item.size,
                mtime_ns=item.mtime_ns,
                notes=item.notes,
            )
        elif isinstance(item, Move):
            store.move_file(item.file_id, item.path, size=item.size, mtime_ns=item.mtime_ns)
            changed = True
        elif isinstance(item, Copy):
            _, added_ids = store.copy_file(item.source_id, item.path, size=item.size, mtime_ns=item.mtime_ns)
            engine.added(added_ids)
            changed = True
        elif isinstance(item, Touch):
            store.touch_file(item.file_id, size=item.size, mtime_ns=item.mtime_ns)
        elif isinstance(item, Drop):
            engine.removed(store.delete_file(item.file_id))
            changed = True
    return changed
