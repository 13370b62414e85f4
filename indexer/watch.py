"""Keep an index current: file-system events in, incremental indexing runs out.

``watch()`` brings the index up to date once, then waits for events under the folders
(the ``watchfiles`` library: inotify on Linux, FSEvents on macOS, polling elsewhere).
Events are debounced and coalesced: a burst (an editor's save-by-rename, a ``git
checkout`` of a thousand files) becomes one run once the folder has been quiet for
``quiet_ms``, and whatever arrives during a run is gathered into the next one.

Each run is an ordinary incremental ``build_index`` over the watched folders, so it
sees exactly what a manual ``searchctl index`` would: additions, edits, deletions and
moves (a moved file is re-linked, not embedded again), the ignore rules and the skip
reasons. A run costs a walk and a ``stat`` per file plus the work on what changed; the
model is loaded once and kept. Events inside the index folder are never watched, so the
index's own writes cannot start a run.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from searchcore.config import Config
from searchcore.models import TextEmbedder

from .build import build_index
from .summary import IndexSummary

__all__ = ["watch", "WatchRun"]


@dataclass
class WatchRun:
    """One run the watcher made: how many events started it, and its summary."""

    events: int
    summary: IndexSummary
    started: float  # time.time() when the run began


def _filter(index_dir: Path):
    from watchfiles import DefaultFilter

    index = os.path.abspath(index_dir)

    class Filter(DefaultFilter):
        def __call__(self, change, path: str) -> bool:
            if path == index or path.startswith(index + os.sep):
                return False
            return super().__call__(change, path)

    return Filter()


def watch(
    config: Config,
    paths: list[Path],
    *,
    embedder: TextEmbedder | None = None,
    on_run: Callable[[WatchRun], None] | None = None,
    stop: threading.Event | None = None,
    quiet_ms: int = 50,
    max_wait_ms: int = 1600,
    wait: bool = True,
) -> int:
    """Index ``paths`` now and again after every burst of changes, until ``stop`` is set
    (or the process is interrupted); returns how many runs it made."""
    from watchfiles import watch as events

    def run(count: int) -> None:
        nonlocal embedder
        started = time.time()
        summary = build_index(config, paths, embedder=embedder, wait=wait)
        if embedder is None:
            embedder = _loaded(config)  # loads its weights on first use, then keeps them
        if on_run is not None:
            on_run(WatchRun(count, summary, started))

    roots = [str(Path(p).resolve()) for p in paths]
    run(0)
    runs = 1
    for changes in events(
        *roots,
        watch_filter=_filter(config.index_dir),
        debounce=max_wait_ms,
        step=quiet_ms,
        stop_event=stop,
        rust_timeout=500,
        yield_on_timeout=False,
        raise_interrupt=False,
    ):
        if changes:
            run(len(changes))
            runs += 1
    return runs


def _loaded(config: Config) -> TextEmbedder:
    """The index's embedder, loaded once for every later run."""
    from searchcore.devices import resolve_device
    from searchcore.models import index_backend, index_model, make_embedder
    from searchcore.store import Store

    device = resolve_device(config.device)
    with Store.open(config.index_dir, reader=True) as store:
        meta = store.meta()
        model = index_model(meta, config.model)
        backend, _ = index_backend(
            meta, config.backend, writing=True, model=model, device=device, cache_dir=config.cache_dir
        )
    return make_embedder(model, backend, config.cache_dir, device)
