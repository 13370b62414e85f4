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

import sqlite3
import threading
import weakref
from pathlib import Path

from searchcore.config import Config
from searchcore.lock import writer_active
from searchcore.search import Searcher
from searchcore.store import DB_NAME
from searchcore.vectors import vectors_path

__all__ = ["IndexHolder"]


class IndexHolder:
    def __init__(self, config: Config, embedder=None):
        self.config = config
        self._searcher = self._open(embedder)
        self._reload_lock = threading.Lock()
        self._probe = sqlite3.connect(Path(config.index_dir) / DB_NAME, isolation_level=None, check_same_thread=False)
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
        row = self._probe.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def refresh(self) -> bool:
        """Swap in the newest published generation; True if it did."""
        with self._reload_lock:
            generation = self.committed_generation()
            if generation == self._searcher.generation:
                return False
            published = vectors_path(self.config.index_dir, generation).exists()
            if not published and writer_active(self.config.index_dir):
                return False  # the writer is between commits; its FAISS file comes at the end
            fresh = self._open(self._searcher.embedder)
            self._searcher = fresh
            self.reloads += 1
            return True

    def close(self) -> None:
        self._probe.close()
        self._searcher.close()
