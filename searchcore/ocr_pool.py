"""OCR of many pages at once: worker processes, each with its own engine on one thread.

PP-OCR's recogniser spends most of a page's time on small batches of text lines, which
ONNX Runtime spreads over two threads poorly, and the detector's post-processing is
Python; two processes with one thread each keep both cores busy instead. Measured on 10
real scanned receipts (this 2-core AVX-512 machine, 3 alternating rounds): one engine with
ONNX Runtime's default threads 16.8 s, two single-thread workers 12.5 s (1.35x); one
engine on one thread 35.6 s for 16 receipts against 19.9 s for the two workers.

Workers are started with ``spawn`` (an ONNX Runtime session's threads do not survive a
fork: a forked worker can hang), once per indexing run and only when a file has pages
enough to share (``POOL_PAGES``); each builds its engine when it starts. Pages go out in
order, at most two per worker in flight, and their texts come back in the same order, so
the progress line moves page by page. A pool that breaks (a worker killed) is closed and
the pages left are read in the indexing process, as without a pool.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

from .errors import UsageError

if TYPE_CHECKING:
    from .ocr_int8 import Int8Models

__all__ = ["OcrPool", "POOL_PAGES", "pool_workers", "BrokenProcessPool"]

# A file with fewer pages to read than this is read in the indexing process.
POOL_PAGES = 3
_IN_FLIGHT = 2  # pages sent per worker before the first answer is waited for

_engine: Any = None


def pool_workers() -> int:
    """How many workers a pool has: ``SEARCHCTL_OCR_WORKERS`` if set (0: no pool), else the
    cores this process may run on (none on a single core, where one engine with its threads
    is as fast)."""
    given = os.environ.get("SEARCHCTL_OCR_WORKERS", "").strip()
    if given:
        if not given.isdigit():
            raise UsageError(f"SEARCHCTL_OCR_WORKERS takes a number of processes (0: no pool), not {given[:40]!r}")
        return int(given) if int(given) >= 2 else 0
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return cores if cores >= 2 else 0


def _keep_freed_memory() -> None:
    """This worker's C allocator (glibc) told to keep the detector's large buffers for the
    next page instead of mapping them afresh from the system each time: pages of a scan
    come in many sizes, and rapidocr-onnxruntime turns ONNX Runtime's own memory arena
    off. 80 pages of receipts on one thread: 135.0 s with 20.4 s of it in the kernel, as
    shipped; 122.9 s with 8.4 s here (up to 64 MB a block from the heap, 128 MB kept free
    before any is given back; resident memory 600-780 MB against 440-670, peak 1.11 GB
    against 1.07). ONNX Runtime's arena instead (12 % faster) grew with every page: 0.47,
    0.78, 0.91 and 1.14 GB resident after 1, 10, 20 and 40 pages. Nothing happens where
    the C library is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        if not hasattr(libc, "gnu_get_libc_version"):
            return
        libc.mallopt(_M_MMAP_THRESHOLD, 64 * 2**20)
        libc.mallopt(_M_TRIM_THRESHOLD, 128 * 2**20)
    except (OSError, AttributeError):
        return


# mallopt's parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _start(name: str, int8: Int8Models | None) -> None:
    global _engine
    os.environ["OMP_THREAD_LIMIT"] = "1"  # Tesseract's own threads: one per worker
    _keep_freed_memory()
    from .ocr import make_ocr

    _engine = make_ocr(name, threads=1, int8=int8)


def _read(image) -> str:
    return _engine.read(image)


class OcrPool:
    """``read_all`` over worker processes running the OCR engine called ``name``;
    ``int8`` gives PP-OCR's int8 models for them (None: the shipped fp32 ones), asked
    once, in this process, when the pool starts."""

    def __init__(self, name: str, workers: int, int8: Callable[[], Int8Models | None] | None = None) -> None:
        self.name = name
        self.workers = workers
        self.int8 = int8
        self._executor: Any = None
        self.broken = False

    def _pool(self):
        if self._executor is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            context = multiprocessing.get_context("spawn")
            int8 = self.int8() if self.int8 is not None else None
            self._executor = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=_start, initargs=(self.name, int8)
            )
        return self._executor

    def read_all(self, pages: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, str]]:
        """(key, text) for each (key, PIL image) of ``pages``, in their order. The pool
        breaking (a worker gone) marks it ``broken`` and raises BrokenProcessPool; an
        engine's own error is raised as the engine raised it."""
        pool = self._pool()
        waiting: deque = deque()
        try:
            for key, image in pages:
                waiting.append((key, pool.submit(_read, image)))
                while len(waiting) >= self.workers * _IN_FLIGHT:
                    done_key, future = waiting.popleft()
                    yield done_key, future.result()
            while waiting:
                done_key, future = waiting.popleft()
                yield done_key, future.result()
        except BrokenProcessPool:
            self.broken = True
            self.close()
            raise
        finally:
            for _, future in waiting:
                future.cancel()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
