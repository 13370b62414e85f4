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

import functools
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from searchcore.classifier import Classifier, load_classifier
from searchcore.config import Config
from searchcore.devices import describe_device, resolve_device
from searchcore.embedder import embedded_text, short_title
from searchcore.engine import EngineWriter
from searchcore.engines import precheck, record_ann, record_engine, wanted_target, writer_for
from searchcore.errors import UsageError
from searchcore.hashing import is_hashing_model, parse_hashing_model
from searchcore.lock import writing
from searchcore.models import TextEmbedder
from searchcore.store import Store

from .ahead import EmbedAhead, Embedded
from .chunker import Chunk, chunk_text
from .equipment import embedder_for, vision_for
from .items import Copy, DocItem, Drop, FileDone, FileState, Move, Touch, write_items
from .labels import label_with
from .languages import describe
from .progress import Progress
from .readers import READERS_VERSION, SECTIONED, Document, Skip, Vision, file_kind, read_document
from .sources import walk_roots
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


class _Run:
    def __init__(
        self,
        config: Config,
        store: Store,
        embedder: TextEmbedder,
        summary: IndexSummary,
        engine: EngineWriter,
        phase: Callable[[str], None],
        seen: set[str],
        vision: Vision,
        reimage: bool,
    ):
        self.config = config
        self.vision = vision
        self.reimage = reimage  # the OCR engine or caption model changed: read images again
        self.store = store
        self.embedder = embedder
        self.summary = summary
        self.engine = engine
        self.phase = phase
        self.seen = seen  # every file path this run's walk found
        self.progress: Progress | None = None
        self.pending: list[object] = []
        self.ahead = EmbedAhead(embedder, config.batch_size)
        self.pending_chunks = 0
        self.settings = f"{config.chunk_tokens or 'auto'}:{config.chunk_overlap}"
        self.rechunk = store.meta().chunking not in (None, self.settings)
        self.moved_from: set[str] = set()  # old paths of files re-linked to a new one
        self.skips: list[tuple[str, str, int, int, str]] = []  # to record in the skipped table

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

    def _unchanged(self, doc_id: int, doc: Document, chunks: list[Chunk]) -> dict:
        """Chunk index -> stored vector, for the chunks of a changed document whose text
        (and the document's title, embedded with each) did not change: an edited sentence
        re-embeds its chunk and the ones its new length shifted, not the whole document."""
        title, stored = self.store.stored_vectors(doc_id)
        if title != doc.title:
            return {}
        kept = {i: stored[c.text] for i, c in enumerate(chunks) if c.text in stored}
        self.summary.chunks_kept += len(kept)
        return kept

    # -- the walk -------------------------------------------------------------------

    def _skip(self, path: str, reason: str, st: os.stat_result | None = None, row: dict | None = None) -> None:
        self.summary.skip(reason, path=path)
        self.skips.append((path, reason, st.st_size if st else -1, st.st_mtime_ns if st else -1, READERS_VERSION))
        if row:  # the file used to be indexable; its old text no longer describes it
            self.summary.removed += row["documents"]
            self._queue(Drop(row["id"]), 0)

    def index_file(self, path: Path, known: dict[str, dict], remembered: dict[str, dict]) -> None:
        key = str(path)
        row = known.get(key)
        try:
            st = path.stat()
        except OSError:
            self._skip(key, "unreadable", None, row)
            return
        kind = file_kind(path)
        if kind is None:
            self._skip(key, "unsupported file type", st, row)
            return
        if st.st_size > self.config.max_file_mb * 1024 * 1024:
            self._skip(key, f"larger than {self.config.max_file_mb:g} MB (--max-file-size)", st, row)
            return
        again = self.rechunk or (self.reimage and kind == "image")
        if row and row["hash"] and not again and row["size"] == st.st_size and row["mtime_ns"] == st.st_mtime_ns:
            self.summary.unchanged += row["documents"]
            return
        old_skip = remembered.get(key)
        if (
            row is None
            and old_skip is not None
            and (old_skip["size"], old_skip["mtime_ns"], old_skip["readers"])
            == (st.st_size, st.st_mtime_ns, READERS_VERSION)
        ):
            self._skip(key, old_skip["reason"], st)  # the same bytes the same readers could not index
            return
        try:
            data = path.read_bytes()
        except OSError:
            self._skip(key, "unreadable", st, row)
            return
        digest = _digest(data)
        if row and row["hash"] == digest and not again:
            self.summary.unchanged += row["documents"]
            self._queue(Touch(row["id"], st.st_size, st.st_mtime_ns), 0)
            return
        if row is None and not again and self._relink(key, kind, digest, st):
            return
        if self.progress is not None:
            self.vision.on_page = functools.partial(self.progress.reading, path.name)
        try:
            kind, docs, notes = read_document(path, data, self.vision)
        except Skip as skip:
            self._skip(key, str(skip), st, row)
            return
        self.summary.notes.extend((key, note) for note in notes)
        state = FileState(key, kind, row["id"] if row else None)
        existing = self.store.documents_of(row["id"]) if row else {}
        for doc in docs:
            doc_hash = _digest(
                json.dumps([doc.title, doc.text, doc.metadata, self.settings], sort_keys=True, default=str).encode()
            )
            old = existing.pop(doc.key, None)
            if old is not None and old[1] == doc_hash:
                self.summary.unchanged += 1
                continue
            # Detected for the documents written only (the hash is of what the reader gave).
            lang = describe(doc.metadata, doc.text, doc.title) or "?"
            self.summary.languages[lang] = self.summary.languages.get(lang, 0) + 1
            chunks, texts = self._chunk(doc, markdown=kind in SECTIONED)
            kept: dict = {}
            if old is None:
                self.summary.added += 1
            else:
                self.summary.updated += 1
                kept = self._unchanged(old[0], doc, chunks)
            self._queue(DocItem(state, doc, doc_hash, chunks, texts, kept), len(chunks) - len(kept))
        self.summary.removed += len(existing)
        removed_ids = [doc_id for doc_id, _ in existing.values()]
        self._queue(FileDone(state, digest, st.st_size, st.st_mtime_ns, removed_ids, notes), 0)

    def _relink(self, path: str, kind: str, digest: str, st: os.stat_result) -> bool:
        """A new path whose content is already indexed: move the file's row there when the
        old path is gone, or copy its documents when it is still there; nothing is read
        or embedded again. True if it did."""
        for candidate in self.store.files_with_hash(digest):
            if candidate["kind"] != kind:
                continue  # the same bytes read another way (a .txt renamed .md): read it
            old = candidate["path"]
            if old not in self.seen and old not in self.moved_from and not os.path.exists(old):
                self.moved_from.add(old)
                self.summary.moved += 1
                self._queue(Move(candidate["id"], path, st.st_size, st.st_mtime_ns), 0)
                return True
            try:
                source = os.stat(old)
            except OSError:
                continue
            if old in self.moved_from or (source.st_size, source.st_mtime_ns) == (
                candidate["size"],
                candidate["mtime_ns"],
            ):
                self.summary.copied += 1
                self._queue(Copy(candidate["id"], path, st.st_size, st.st_mtime_ns), 0)
                return True
        return False

    def drop_files(self, file_rows: list[dict]) -> None:
        for row in file_rows:
            self.summary.removed += row["documents"]
            self._queue(Drop(row["id"]), 0)

    # -- batching and commits ---------------------------------------------------------

    def _queue(self, item: object, chunks: int) -> None:
        self.pending.append(item)
        self.pending_chunks += chunks
        if self.pending_chunks >= FLUSH_CHUNKS:
            self.flush()

    def flush(self, last: bool = False) -> None:
        """Hand the pending batch to the encoder, and write the batch handed in before it,
        embedded by now, to index.db (``indexer.ahead``); ``last``: write that one too."""
        if self.pending:
            items, self.pending, self.pending_chunks = self.pending, [], 0
            texts = [t for item in items if isinstance(item, DocItem) for t in item.to_embed]
            if texts:
                self.phase("embed")
            self._write(self.ahead.submit(items, texts))
        if last:
            self._write(self.ahead.drain())

    def _write(self, batch: Embedded | None) -> None:
        if batch is None:
            return
        items, texts, vectors, seconds = batch
        if texts:
            self.summary.chunks_embedded += len(texts)
            if self.progress is not None:
                self.progress.embedded(len(texts), seconds)
        store = self.store
        self.phase("sqlite")
        with store.write():
            changed = write_items(store, self.engine, items, vectors)
            if texts and store.meta().dim is None:
                store.update_meta(dim=int(vectors.shape[1]), model_revision=self.embedder.revision, normalized="l2")
            if changed:
                store.update_meta(chunking=self.settings)
                self.summary.generation = store.bump_generation()
        self.phase("read")


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _remember_roots(store: Store, roots: list[str]) -> None:
    """The folders ever given to an index run (a file's own folder where a file was given):
    paths are shown relative to them."""
    known = store.meta().roots
    given = {r if os.path.isdir(r) else os.path.dirname(r) for r in roots if os.path.exists(r)}
    merged = tuple(sorted(set(known) | given))
    if merged != known:
        with store.write():
            store.update_meta(roots=merged)


def _remember_skips(store: Store, skips: list, remembered: dict[str, dict], seen: set[str], roots: list[str]) -> None:
    """Record this run's skipped files, and forget those under its roots that are gone or
    were indexed this time."""
    skipped_now = {s[0] for s in skips}
    stale = [p for p in remembered if _under(p, roots) and p not in skipped_now]
    if skips or stale:
        with store.write():
            store.forget_skips(stale)
            store.record_skips(skips)


def build_index(
    config: Config,
    paths: list[Path] | Path,
    *,
    embedder: TextEmbedder | None = None,
    progress: bool | str | Progress = False,
    wait: bool = False,
    classifier: Path | None = None,
    on_phase: Callable[[str], None] | None = None,
) -> IndexSummary:
    """Bring the index at ``config.index_dir`` up to date with ``paths``; returns the run's figures.

    Only one run writes an index at a time: another one fails at once naming the
    writer's pid, or with ``wait=True`` waits for it to finish. Documents are labelled by
    ``classifier`` (a folder) and by every classifier the index already labels with.
    ``on_phase`` hears the name of each step (``PHASES``) as the run enters it.
    ``progress``: "bar" (or True) for a progress bar, "lines" for progress lines (a log),
    "none" (or False) for nothing, or a ``Progress`` to report to.
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
    resolve_device(config.device)  # so does a --device cuda where there is no GPU
    given: Classifier | None = load_classifier(classifier) if classifier is not None else None  # fail before work
    precheck(config)  # a Milvus engine that cannot be reached, or a collection not ours: before any write
    with writing(config.index_dir, wait=wait, create=True) as store:
        embedder, notice = embedder_for(store, config, embedder)
        summary = IndexSummary(model=embedder.name, backend=embedder.backend, notice=notice)
        summary.model_languages = getattr(embedder, "languages", None)
        if getattr(embedder, "device", "cpu") == "cuda":
            summary.device = describe_device("cuda")
        with store.write():
            record_engine(store, wanted_target(config, store.meta(), Path(config.index_dir)))
        engine = writer_for(store, Path(config.index_dir), config.milvus_token)
        record_ann(store, config.ann)
        phase("read")
        known = store.known_files()
        remembered = store.skipped_rows()
        walk_skips: list[tuple[str, str, int, int, str]] = []
        files, seen, roots = walk_roots(paths, config.index_dir, summary, walk_skips, READERS_VERSION)
        summary.files = len(files)
        _remember_roots(store, roots)
        vision, reimage = vision_for(store, config)
        run = _Run(config, store, embedder, summary, engine, phase, seen, vision, reimage)
        if isinstance(progress, Progress):  # one made by the caller (its stream, its pace)
            mode, run.progress = progress.mode, progress
            progress.total = len(files)
        else:
            mode = ("bar" if progress else "none") if isinstance(progress, bool) else progress
            run.progress = Progress(mode, len(files))
        try:
            for path in files:
                run.index_file(path, known, remembered)
                run.progress.file_done()
            gone = [row for p, row in known.items() if p not in seen and _under(p, roots) and p not in run.moved_from]
            run.drop_files(gone)
            run.flush(last=True)
        finally:
            run.ahead.close()
            vision.close()
            run.progress.close()
        _remember_skips(store, walk_skips + run.skips, remembered, seen, roots)
        summary.images_ocr = vision.counts["images_ocr"]
        summary.captioned = vision.counts["captioned"]
        summary.pages_ocr = vision.counts["pages_ocr"]
        summary.labels, notices = label_with(store, config, given, mode == "bar")
        summary.notice = "; ".join(n for n in [summary.notice, *notices] if n) or None
        phase("faiss")
        engine.commit()
        phase("done")
        counts = store.counts()
        summary.documents, summary.chunks = counts["documents"], counts["chunks"]
        summary.generation = store.generation
    summary.seconds = time.perf_counter() - started
    return summary
