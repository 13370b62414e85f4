"""Embedding one batch ahead of the writes.

A run hands each full batch of chunk texts to the encoder and goes on reading, chunking
and tokenising the next files, and writing the batch before it to index.db, while the
encoder computes: ONNX Runtime releases the GIL while it runs, so the walk's Python
work and SQLite's writes fill the time the encoder would otherwise leave to them. One
batch is in flight at a time, so batches still reach index.db in order, and a run that
is stopped loses at most the batch being embedded and the one being read, never a
written one.

The torch backend runs in line (its tokenizer is one object that chunking also uses, and
a fast tokenizer refuses to be used from two threads at once).
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

__all__ = ["EmbedAhead", "Embedded"]

# (the batch's items, its texts, their vectors, seconds the encoder took)
Embedded = tuple[list, list[str], np.ndarray, float]
_CONCURRENT = ("onnx", "onnx-int8", "hash")


class EmbedAhead:
    def __init__(self, embedder, batch_size: int):
        self.embedder = embedder
        self.batch_size = batch_size
        self.concurrent = getattr(embedder, "backend", "") in _CONCURRENT
        self._pool: ThreadPoolExecutor | None = None
        self._inflight: tuple[list, list[str], Future | None] | None = None

    def _embed(self, texts: list[str]) -> tuple[np.ndarray, float]:
        started = time.perf_counter()
        vectors = self.embedder.embed(texts, self.batch_size)
        return vectors, time.perf_counter() - started

    def submit(self, items: list, texts: list[str]) -> Embedded | None:
        """Start embedding ``texts``; returns the batch handed in before, embedded."""
        job: Future | None = None
        if texts:
            if self.concurrent:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="searchctl-embed")
                job = self._pool.submit(self._embed, texts)
            else:
                job = Future()
                job.set_result(self._embed(texts))
        previous = self.drain()
        self._inflight = (items, texts, job)
        return previous

    def drain(self) -> Embedded | None:
        """The batch in flight, once embedded (None if there is none)."""
        if self._inflight is None:
            return None
        items, texts, job = self._inflight
        self._inflight = None
        vectors, seconds = job.result() if job is not None else (np.zeros((0, 0), dtype=np.float32), 0.0)
        return items, texts, vectors, seconds

    def close(self) -> None:
        """Drop what is in flight (a stopped run) and let the thread go."""
        self._inflight = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
