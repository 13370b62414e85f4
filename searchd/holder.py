"""The daemon's view of the index: one Searcher at a time, swapped when a new generation lands.

A Searcher holds a read transaction on index.db for its whole life, so every request it
answers sees exactly the committed state its FAISS file was built from: no mixed
results, no hit whose text a concurrent writer has just deleted. ``refresh()`` notices a
newer published generation (its ``vectors-<generation>.faiss`` exists, or no writer is
at work any more and the file must be rebuilt), builds a new Searcher beside the old one
(sharing the loaded model) and swaps one reference. Requests already running keep the
old Searcher until they finish; the last reference closes its connection.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

from searchcore.config import Config
from searchcore.errors import SearchctlError
from searchcore.lock import writer_active
from searchcore.milvus.reader import CollectionView
from searchcore.models import TextEmbedder
from searchcore.options import SearchOptions
from searchcore.search import Searcher
from searchcore.store import Store
from searchcore.vectors import vectors_path

__all__ = ["IndexHolder"]

logger = logging.getLogger("searchd")

# Most queries one forward pass embeds for requests that arrived together.
_BATCH_QUERIES = 64


def _search_batch(batch: list[tuple]) -> list:
    """Results (or the exception) for each request of ``batch``; requests on the same
    Searcher with the same options share one embedding call."""
    groups: dict[tuple, list[int]] = {}
    for i, (searcher, _, options, _) in enumerate(batch):
        groups.setdefault((id(searcher), options), []).append(i)
    outcomes: list = [None] * len(batch)
    for members in groups.values():
        searcher, _, options, _ = batch[members[0]]
        flat = [q for i in members for q in batch[i][1]]
        try:
            results = searcher.run(flat, options)
        except Exception:
            # One bad request must not fail its neighbours: answer each on its own.
            for i in members:
                try:
                    outcomes[i] = searcher.run(batch[i][1], options)
                except Exception as exc:
                    outcomes[i] = exc
            continue
        start = 0
        for i in members:
            n = len(batch[i][1])
            outcomes[i] = results[start : start + n]
            start += n
    return outcomes


class IndexHolder:
    def __init__(self, config: Config, embedder=None):
        self.config = config
        # Every search runs on this one thread. On a CPU the model's forward pass already
        # uses every core; running searches side by side from many threads only makes the
        # OpenMP pools of torch and FAISS fight (measured: 2x the latency at concurrency 1).
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="searchd-search")
        self._pending: list[tuple] = []
        self._draining = False
        # Opened on the search thread too: torch and FAISS then only ever run there.
        try:
            self._searcher = self._executor.submit(self._open, embedder).result()
        except BaseException:
            self._executor.shutdown(wait=False)
            raise
        self._reload_lock = threading.Lock()
        # Reads meta outside any transaction (or a collection's properties afresh), so it
        # sees each commit as it lands.
        self._remote = self._searcher.remote
        self._probe: Store | CollectionView
        if self._remote:
            self._probe = CollectionView(self._searcher.store.target)
        else:
            self._probe = Store.open(config.index_dir, reader=True)
        self.reloads = 0

    def _open(self, embedder) -> Searcher:
        searcher = Searcher(self.config, embedder=embedder)
        # Close the connection when the last request using this Searcher lets go of it.
        weakref.finalize(searcher, searcher.store.close)
        return searcher

    @property
    def searcher(self) -> Searcher:
        return self._searcher

    def committed_generation(self) -> int:
        if isinstance(self._probe, CollectionView):
            self._probe.refresh()  # a Milvus writer publishes a generation only once its rows are in
        return self._probe.generation

    def refresh(self) -> bool:
        """Swap in the newest published generation; True if it did."""
        with self._reload_lock:
            generation = self.committed_generation()
            moved = isinstance(self._probe, CollectionView) and self._probe.name != self._searcher.store.name
            if generation == self._searcher.generation and not moved:  # moved: compact's new collection
                return False
            published = self._remote or vectors_path(self.config.index_dir, generation).exists()
            if not published and writer_active(self.config.index_dir):
                return False  # the writer is between commits; its FAISS file comes at the end
            embedder: TextEmbedder | None = self._searcher.embedder
            if self._probe.get_meta("model") not in (None, self._searcher.embedder.name):
                embedder = None  # `searchctl reindex` swapped the model: load the index's new one
            try:
                fresh = self._open(embedder)
                if embedder is None:
                    fresh.embedder.embed(["warm-up"])  # load (or export) the new model before the swap
            except SearchctlError as exc:  # e.g. the new model cannot be loaded here: keep serving
                logger.error("cannot open generation %s of %s: %s", generation, self.config.index_dir, exc)
                return False
            self._searcher = fresh
            self.reloads += 1
            return True

    async def run(self, func, *args):
        """``func(*args)`` on the search thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)

    async def search(self, searcher: Searcher, queries: list[str], options: SearchOptions) -> list:
        """``searcher.run(queries, options)`` on the search thread, batched with the
        queries of other requests waiting meanwhile: one forward pass of the model for
        many short queries costs much less than one pass each."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((searcher, list(queries), options, future))
        if not self._draining:
            self._draining = True
            asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch: list[tuple] = []
                taken = 0
                while self._pending and (not batch or taken + len(self._pending[0][1]) <= _BATCH_QUERIES):
                    batch.append(self._pending.pop(0))
                    taken += len(batch[-1][1])
                outcomes = await loop.run_in_executor(self._executor, _search_batch, batch)
                for (*_, future), outcome in zip(batch, outcomes):
                    if future.done():
                        continue  # the client went away
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._draining = False

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._probe.close()
        self._searcher.close()
