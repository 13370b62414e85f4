"""The daemon's view of the index: one Searcher at a time, swapped when a new generation lands.

A Searcher holds a read transaction on index.db for its whole life, so every request it
answers sees exactly the committed state its FAISS file was built from: no mixed
results, no hit whose text a concurrent writer has just deleted. ``refresh()`` asks the
read seam what is published (``searchcore.snapshot.Probe``: the rule for when a new
generation is ready lives there), builds a new Searcher beside the old one (sharing the
loaded model unless the index's model changed) and swaps one reference. Requests already running keep the
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
from searchcore.models import TextEmbedder
from searchcore.options import SearchOptions
from searchcore.search import Searcher
from searchcore.snapshot import Probe

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
        # Reads what is published outside any transaction, so it sees each commit as it lands.
        self._probe = Probe(config)
        self.reloads = 0

    def _open(self, embedder, query_embedder=None) -> Searcher:
        searcher = Searcher(self.config, embedder=embedder, query_embedder=query_embedder)
        # Close the connection when the last request using this Searcher lets go of it.
        weakref.finalize(searcher, searcher.snapshot.close)
        return searcher

    @property
    def searcher(self) -> Searcher:
        return self._searcher

    def refresh(self) -> bool:
        """Swap in the newest published generation; True if it did."""
        with self._reload_lock:
            published = self._probe.published()
            # None: a writer is between its commit and its vector file; the same source
            # at the same generation: nothing new (compact may move a Milvus collection)
            current = self._searcher.snapshot.published
            if published is None or (published.generation, published.source) == (current.generation, current.source):
                return False
            embedder: TextEmbedder | None = self._searcher.embedder
            if published.model not in (None, self._searcher.embedder.name):
                embedder = None  # `searchctl reindex` swapped the model: load the index's new one
            queries: TextEmbedder | None = self._searcher.query_embedder
            if embedder is None or published.query_model != current.query_model:
                queries = None  # `searchctl adapt` gave the index another query encoder (or took it away)
            try:
                fresh = self._open(embedder, queries)
                if embedder is None or queries is None:
                    fresh.query_embedder.embed(["warm-up"])  # load (or export) the new model before the swap
            except SearchctlError as exc:  # e.g. the new model cannot be loaded here: keep serving
                logger.error("cannot open generation %s of %s: %s", published.generation, self.config.index_dir, exc)
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
