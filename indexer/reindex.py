"""``searchctl reindex``: re-embed every stored chunk with another model, swap it in at once.

No file is read again: the chunks (and their documents' titles) are in index.db. The new
vectors fill the ``vectors_next`` table in committed batches, so a killed run resumes
where it stopped, while queries go on against the current vectors. One transaction then
swaps the tables (the replaced vectors become ``vectors_previous``), records the new
model, backend and dimension, and bumps the generation; the FAISS file of the new
generation is written from the stored vectors. A daemon notices the generation, loads
the new model and swaps its searcher, with no failed request.

``rollback`` swaps back to the kept previous vectors and model; chunks indexed since the
swap are embedded with the previous model, chunks deleted since are gone from both. The
previous generation is kept until the next reindex replaces it.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from searchcore.config import Config
from searchcore.devices import resolve_device
from searchcore.embedder import canonical_model_name, embedded_text, short_title
from searchcore.engines import precheck, writer_for
from searchcore.errors import UsageError
from searchcore.hashing import is_hashing_model
from searchcore.lock import writing
from searchcore.meta import Previous
from searchcore.models import TextEmbedder, make_embedder
from searchcore.probe import default_backend
from searchcore.store import DB_NAME, Store

__all__ = ["ReindexSummary", "reindex", "rollback", "reembedded_copy", "use_query_model"]

BATCH_CHUNKS = 512
QUERY_MODELS = "query-models"  # the index folder's copies of the query encoders `adapt` fitted


@dataclass
class ReindexSummary:
    model: str
    backend: str
    previous_model: str
    chunks: int = 0
    embedded: int = 0
    reused: int = 0
    generation: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.previous_model} -> {self.model} ({self.backend}): {self.chunks:,} chunks, {self.embedded:,} "
            f"embedded, {self.reused:,} reused; generation {self.generation}; {self.seconds:.1f} s"
        )


def _current(store: Store) -> Previous | None:
    """The model and vectors the index uses now (None: no vectors yet)."""
    meta = store.meta()
    if meta.model is None:
        return None
    return Previous(meta.model, meta.backend or "torch", meta.model_revision, meta.dim)


def _fill_next(store: Store, embedder: TextEmbedder, progress: bool, summary: ReindexSummary) -> None:
    """Embed every chunk that has no row in vectors_next yet, batch by batch."""
    with store.snapshot():
        todo = store.chunks_without_next_vector()
    titles: dict[int, str | None] = {}
    with tqdm(total=todo, desc="re-embedding", unit="chunk", disable=not progress, leave=False) as bar:
        while True:
            with store.snapshot():
                rows = store.next_to_embed(BATCH_CHUNKS)
            if not rows:
                return
            texts = []
            for _, doc_id, title, text in rows:
                if doc_id not in titles:
                    titles[doc_id] = short_title(embedder, title)
                texts.append(embedded_text(titles[doc_id], text))
            vectors = np.ascontiguousarray(embedder.embed(texts), dtype=np.float32)
            with store.write():
                store.put_next_vectors([(row[0], vector.tobytes()) for row, vector in zip(rows, vectors)])
            summary.embedded += len(rows)
            bar.update(len(rows))


def _swap(store: Store, index_dir: Path, target: Previous, summary: ReindexSummary, token: str = "") -> None:
    """One transaction: vectors_next becomes the vectors, the vectors become the previous."""
    with store.write():
        missing = store.chunks_without_next_vector()
        if missing:  # cannot happen under the writer lock; never swap in a partial set
            raise UsageError(f"{missing} chunks have no new vector yet; run the reindex again")
        previous = _current(store)
        fitted = store.meta().query_model
        summary.chunks = store.swap_vectors()
        store.update_meta(
            model=target.model,
            backend=target.backend,
            model_revision=target.model_revision,
            dim=target.dim,
            previous=previous,
            query_model=None,  # a query encoder `adapt` fitted to the old vectors fits no others
        )
        summary.generation = store.bump_generation()
    # The new generation's FAISS file from the stored vectors, or a new Milvus collection
    # that the alias moves to.
    writer_for(store, index_dir, token).rebuild()
    if fitted and fitted.startswith(f"{QUERY_MODELS}/"):
        shutil.rmtree(index_dir / fitted, ignore_errors=True)  # no generation uses it any more


def _run(index_dir: Path, target_model: str, backend: str, *, rollback_to: Previous | None, config, progress, wait):
    started = time.perf_counter()
    precheck(config)  # an index on Milvus: the engine answers before anything is embedded
    with writing(index_dir, wait=wait) as store:
        current = _current(store)
        if current is None:
            raise UsageError(f"the index at {index_dir} holds no vectors yet; run `searchctl index` first")
        embedder = make_embedder(target_model, backend, config.cache_dir, resolve_device(config.device))
        summary = ReindexSummary(target_model, backend, current.model)
        with store.write():
            summary.reused = store.start_next(
                {"model": target_model, "backend": backend}, reuse_previous=rollback_to is not None
            )
        _fill_next(store, embedder, progress, summary)
        if rollback_to is not None and summary.embedded == 0 and rollback_to.dim:
            dim, revision = rollback_to.dim, rollback_to.model_revision
        else:
            dim, revision = embedder.dim, embedder.revision
        _swap(store, index_dir, Previous(target_model, backend, revision, dim), summary, config.milvus_token)
    summary.seconds = time.perf_counter() - started
    return summary


def reindex(
    config: Config, model: str, *, backend: str | None = None, progress: bool = False, wait: bool = False
) -> ReindexSummary:
    """Re-embed the index at ``config.index_dir`` with ``model`` and swap it in."""
    index_dir = Path(config.index_dir)
    with Store.open(index_dir) as store:  # a writing command: an older schema is upgraded here
        current = _current(store)
    model = canonical_model_name(model)
    if is_hashing_model(model):
        backend = "hash"
    elif backend is None:
        backend = current.backend if current else default_backend(model, config.cache_dir)[0]
    if current is not None and (model, backend) == (current.model, current.backend):
        raise UsageError(f"the index already uses {model} with the {backend} backend; nothing to re-embed")
    return _run(index_dir, model, backend, rollback_to=None, config=config, progress=progress, wait=wait)


def rollback(config: Config, *, progress: bool = False, wait: bool = False) -> ReindexSummary:
    """Return to the vectors and model the last reindex replaced."""
    index_dir = Path(config.index_dir)
    with Store.open(index_dir) as store:
        previous = store.meta().previous
    if previous is None:
        raise UsageError(f"the index at {index_dir} keeps no previous generation; nothing to roll back to")
    return _run(
        index_dir,
        previous.model,
        previous.backend,
        rollback_to=previous,
        config=config,
        progress=progress,
        wait=wait,
    )


def reembedded_copy(
    source: Path, target: Path, model: str, *, backend: str | None = None, cache_dir=None, progress=False
) -> ReindexSummary:
    """A copy of the index at ``source`` in ``target``, re-embedded with ``model`` (for
    scoring a model on an indexed collection without touching the original)."""
    target.mkdir(parents=True, exist_ok=True)
    with Store.open(source, reader=True) as src:
        src.copy_to(target / DB_NAME)
    return reindex(Config(index_dir=target, cache_dir=cache_dir), model, backend=backend, progress=progress)


def use_query_model(config: Config, model: Path | None, *, wait: bool = False) -> int:
    """Make ``model`` (a sentence-transformers folder fitted to this index's vectors by
    ``searchctl adapt``) the encoder of this index's queries, or go back to the index's
    own model (None). The folder is copied into the index, recorded, and published as a
    new generation, so a daemon loads it without a restart. Returns the generation."""
    index_dir = Path(config.index_dir)
    with writing(index_dir, wait=wait) as store:
        old = store.meta().query_model
        recorded = None
        if model is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            recorded = f"{QUERY_MODELS}/{stamp}"
            staging = index_dir / QUERY_MODELS / f".{stamp}.tmp"
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(model, staging)
            staging.rename(index_dir / recorded)
        with store.write():
            store.update_meta(query_model=recorded)
            generation = store.bump_generation()
        writer_for(store, index_dir, config.milvus_token).rebuild()
    if old and old != recorded and old.startswith(f"{QUERY_MODELS}/"):
        shutil.rmtree(index_dir / old, ignore_errors=True)  # no generation uses it any more
    return generation
