"""build_index(): folders and files in, an up-to-date index out.

The run walks the sources, and for each file decides from the stored size, mtime and
content hash whether it changed; for a changed file it compares each document (each
record of a JSONL file) by hash, so only new or changed documents are chunked and
embedded. Files that disappeared from under the indexed roots are removed.

Commit protocol. Work is flushed in batches of about ``FLUSH_CHUNKS`` chunks: embed the
batch, then write its documents, chunks and vectors in one SQLite transaction that also
bumps the generation. A file's row gets its content hash only in the transaction that
commits its last document, so a crash mid-file makes the next run look at it again, and
the per-document hashes let that run skip what was already committed. The FAISS file for
the final generation is written after the last commit (temporary file, fsync, rename);
if the run dies before that, the next open rebuilds it from index.db. A crash therefore
loses at most the batch being embedded, never the index.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from searchcore.classifier import Classifier, load_classifier
from searchcore.config import Config
from searchcore.embedder import embedded_text, short_title
from searchcore.engine import LocalWriter
from searchcore.errors import UsageError
from searchcore.hashing import is_hashing_model, parse_hashing_model
from searchcore.lock import writing
from searchcore.models import TextEmbedder, index_backend, index_model, make_embedder
from searchcore.store import Store

from .chunker import Chunk, chunk_text
from .labels import label_with
from .readers import Document, Skip, read_document
from .sources import walk
from .summary import IndexSummary

__all__ = ["build_index", "IndexSummary", "FLUSH_CHUNKS", "PHASES"]

FLUSH_CHUNKS = 512
# The steps a run goes through, as ``on_phase`` hears of them (bench/crash.py kills in each).
PHASES = ("read", "embed", "sqlite", "faiss", "done")


# Tokens kept free below the model's limit: re-tokenising a chunk on its own can differ
# by a token or two from its share of the whole document's tokenisation.
_TOKEN_MARGIN = 4


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class _FileState:
    path: str
    kind: str
    file_id: int | None = None
    claimed: bool = False  # its row is marked unfinished in the current write


@dataclass
class _DocItem:
    file: _FileState
    doc: Document
    hash: str
    chunks: list[Chunk]
    texts: list[str]


@dataclass
class _FileDone:
    file: _FileState
    hash: str
    size: int
    mtime_ns: int
    removed_doc_ids: list[int]


@dataclass
class _Touch:
    file_id: int
    size: int
    mtime_ns: int


@dataclass
class _Drop:
    file_id: int


class _Run:
    def __init__(
        self,
        config: Config,
        store: Store,
        embedder: TextEmbedder,
        summary: IndexSummary,
        progress: bool,
        engine: LocalWriter,
        phase: Callable[[str], None],
    ):
        self.config = config
        self.store = store
        self.embedder = embedder
        self.summary = summary
        self.progress = progress
        self.engine = engine
        self.phase = phase
        self.pending: list[object] = []
        self.pending_chunks = 0
        self.chunk_bar: tqdm | None = None
        self.settings = f"{config.chunk_tokens or 'auto'}:{config.chunk_overlap}"
        self.rechunk = store.get_meta("chunking") not in (None, self.settings)

    # -- chunking -------------------------------------------------------------------

    def _chunk(self, doc: Document, markdown: bool) -> tuple[list[Chunk], list[str]]:
        embedder = self.embedder
        budget = embedder.max_tokens - embedder.special_tokens - _TOKEN_MARGIN
        size = min(self.config.chunk_tokens or budget, budget)
        title = short_title(embedder, doc.title)
        if title:
            size -= len(embedder.token_spans(title)) + 1
        size = max(8, size)
        spans = embedder.token_spans(doc.text)
        for _ in range(4):
            overlap = min(self.config.chunk_overlap, size // 2)
            chunks = chunk_text(doc.text, spans, size, overlap, markdown=markdown)
            texts = [embedded_text(title, c.text) for c in chunks]
            worst = max(self.embedder.count_tokens(texts), default=0) - embedder.max_tokens
            if worst <= 0:
                break
            size = max(8, size - worst - 2)  # rare: tokenisation differed at a cut
        return chunks, texts

    # -- the walk -------------------------------------------------------------------

    def index_file(self, path: Path, known: dict[str, dict]) -> None:
        key = str(path)
        row = known.get(key)
        try:
            st = path.stat()
        except OSError:
            self.summary.skip("unreadable")
            return
        if st.st_size > self.config.max_file_mb * 1024 * 1024:
            self.summary.skip(f"larger than {self.config.max_file_mb:g} MB (--max-file-size)")
            if row:  # it was indexed when smaller; its old text no longer describes it
                self.summary.removed += row["documents"]
                self._queue(_Drop(row["id"]), 0)
            return
        if row and row["hash"] and not self.rechunk and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns:
            self.summary.unchanged += row["documents"]
            return
        try:
            data = path.read_bytes()
        except OSError:
            self.summary.skip("unreadable")
            return
        digest = _digest(data)
        if row and row["hash"] == digest and not self.rechunk:
            self.summary.unchanged += row["documents"]
            self._queue(_Touch(row["id"], st.st_size, st.st_mtime_ns), 0)
            return
        try:
            kind, docs = read_document(path, data)
        except Skip as skip:
            self.summary.skip(str(skip))
            if row:  # the file used to be indexable; its old text no longer describes it
                self.summary.removed += row["documents"]
                self._queue(_Drop(row["id"]), 0)
            return
        state = _FileState(key, kind, row["id"] if row else None)
        existing = self.store.documents_of(row["id"]) if row else {}
        for doc in docs:
            doc_hash = _digest(
                json.dumps([doc.title, doc.text, doc.metadata, self.settings], sort_keys=True, default=str).encode()
            )
            old = existing.pop(doc.key, None)
            if old is not None and old[1] == doc_hash:
                self.summary.unchanged += 1
                continue
            chunks, texts = self._chunk(doc, markdown=kind == "markdown")
            if old is None:
                self.summary.added += 1
            else:
                self.summary.updated += 1
            self._queue(_DocItem(state, doc, doc_hash, chunks, texts), len(chunks))
        self.summary.removed += len(existing)
        removed_ids = [doc_id for doc_id, _ in existing.values()]
        self._queue(_FileDone(state, digest, st.st_size, st.st_mtime_ns, removed_ids), 0)

    def drop_files(self, file_rows: list[dict]) -> None:
        for row in file_rows:
            self.summary.removed += row["documents"]
            self._queue(_Drop(row["id"]), 0)

    # -- batching and commits ---------------------------------------------------------

    def _queue(self, item: object, chunks: int) -> None:
        self.pending.append(item)
        self.pending_chunks += chunks
        if self.pending_chunks >= FLUSH_CHUNKS:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        items, self.pending, self.pending_chunks = self.pending, [], 0
        texts = [t for item in items if isinstance(item, _DocItem) for t in item.texts]
        vectors = np.zeros((0, 0), dtype=np.float32)
        if texts:
            if self.chunk_bar is None:
                self.chunk_bar = tqdm(desc="chunks", unit="chunk", disable=not self.progress, leave=False)
            self.phase("embed")
            vectors = self.embedder.embed(texts, self.config.batch_size, progress=self.chunk_bar.update)
            self.summary.chunks_embedded += len(texts)
        changed = False
        offset = 0
        store = self.store
        self.phase("sqlite")
        with store.write():
            for item in items:
                if isinstance(item, _DocItem):
                    file_id = self._file_id(item.file)
                    n = len(item.texts)
                    doc = item.doc
                    removed, added = store.put_document(
                        file_id,
                        doc.key,
                        title=doc.title,
                        hash=item.hash,
                        metadata=doc.metadata,
                        chunks=item.chunks,
                        vectors=vectors[offset : offset + n],
                    )
                    self.engine.removed(removed)
                    self.engine.added(added)
                    offset += n
                    changed = True
                elif isinstance(item, _FileDone):
                    file_id = self._file_id(item.file)
                    if item.removed_doc_ids:
                        self.engine.removed(store.delete_documents(item.removed_doc_ids))
                        changed = True
                    store.finish_file(
                        file_id, kind=item.file.kind, hash=item.hash, size=item.size, mtime_ns=item.mtime_ns
                    )
                elif isinstance(item, _Touch):
                    store.touch_file(item.file_id, size=item.size, mtime_ns=item.mtime_ns)
                elif isinstance(item, _Drop):
                    self.engine.removed(store.delete_file(item.file_id))
                    changed = True
            if texts and store.get_meta("dim") is None:
                store.set_meta(dim=str(vectors.shape[1]), model_revision=self.embedder.revision, normalized="l2")
            if changed:
                store.set_meta(chunking=self.settings)
                self.summary.generation = store.bump_generation()
        self.phase("read")

    def _file_id(self, state: _FileState) -> int:
        if not state.claimed:
            state.file_id = self.store.ensure_file(state.path, state.kind)
            state.claimed = True
        assert state.file_id is not None
        return state.file_id


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _files(paths: list[Path], config: Config, summary: IndexSummary) -> tuple[list[Path], set[str], list[str]]:
    """The files to look at under ``paths`` (each once), their names, and the roots."""
    roots = [os.path.abspath(p) for p in paths]
    seen: set[str] = set()
    files: list[Path] = []
    for root in roots:
        found = walk(Path(root), config.index_dir)
        for reason, n in found.skipped.items():
            summary.skip(reason, n)
        for file in found.files:
            if str(file) not in seen:
                seen.add(str(file))
                files.append(file)
    return files, seen, roots


def _embedder_for(store: Store, config: Config, embedder: TextEmbedder | None) -> tuple[TextEmbedder, str | None]:
    """The embedder this run writes with, recording model and backend in a new index."""
    model = index_model(store, config.model or (embedder.name if embedder else None))
    notice = None
    if embedder is None:
        backend, notice = index_backend(store, config.backend, writing=True, model=model)
        embedder = make_embedder(model, backend, config.cache_dir)
    if store.get_meta("model") is None:
        with store.write():
            store.set_meta(model=model, faiss_factory=config.faiss_factory, backend=embedder.backend)
    return embedder, notice


def build_index(
    config: Config,
    paths: list[Path] | Path,
    *,
    embedder: TextEmbedder | None = None,
    progress: bool = False,
    wait: bool = False,
    classifier: Path | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> IndexSummary:
    """Bring the index at ``config.index_dir`` up to date with ``paths``; returns the run's figures.

    Only one run writes an index at a time: another one fails at once naming the
    writer's pid, or with ``wait=True`` waits for it to finish. Documents are labelled by
    ``classifier`` (a folder) and by every classifier the index already labels with.
    ``on_phase`` hears the name of each step (``PHASES``) as the run enters it.
    """
    started = time.perf_counter()
    phase = on_phase or (lambda name: None)
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if not paths:
        raise UsageError("nothing to index; give a folder or a file")
    for path in paths:
        if not Path(path).exists():
            raise UsageError(f"no such file or folder: {path}")
    if config.model and is_hashing_model(config.model):
        parse_hashing_model(config.model)  # a bad hash:DIM fails before the index folder is made
    given: Classifier | None = load_classifier(classifier) if classifier is not None else None  # fail before work
    with writing(config.index_dir, wait=wait, create=True) as store:
        embedder, notice = _embedder_for(store, config, embedder)
        summary = IndexSummary(model=embedder.name, backend=embedder.backend, notice=notice)
        engine = LocalWriter(store, Path(config.index_dir))
        phase("read")
        known = store.known_files()
        run = _Run(config, store, embedder, summary, progress, engine, phase)
        files, seen, roots = _files(paths, config, summary)
        summary.files = len(files)
        for path in tqdm(files, desc="files", unit="file", disable=not progress, leave=False):
            run.index_file(path, known)
        run.drop_files([row for p, row in known.items() if p not in seen and _under(p, roots)])
        run.flush()
        if run.chunk_bar is not None:
            run.chunk_bar.close()
        summary.labels, notices = label_with(store, config, given, progress)
        summary.notice = "; ".join(n for n in [summary.notice, *notices] if n) or None
        phase("faiss")
        engine.commit()
        phase("done")
        counts = store.counts()
        summary.documents, summary.chunks = counts["documents"], counts["chunks"]
        summary.generation = store.generation
    summary.seconds = time.perf_counter() - started
    return summary
