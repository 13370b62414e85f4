"""`searchctl watch`: real file-system events (watchfiles) on a real folder, real indexing
runs, real searches: a change is searchable within 2 s, a burst is one run, nothing is
missed."""

import threading
import time

import numpy as np
import pytest

from conftest import HashingEmbedder, write
from indexer.build import build_index
from indexer.watch import watch
from searchcore.config import Config
from searchcore.search import Searcher


class Watcher:
    def __init__(self, config, root, embedder):
        self.runs = []
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=watch,
            args=(config, [root]),
            kwargs={"embedder": embedder, "on_run": self.runs.append, "stop": self.stop},
        )

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 30
        while not self.runs:  # the first run brings the index up to date
            assert time.time() < deadline, "the watcher never made its first run"
            time.sleep(0.02)
        time.sleep(0.3)  # the event watch is set up right after the first run
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)

    def settle(self, quiet=2.0, limit=60):
        """Wait until no run has started for ``quiet`` seconds."""
        deadline = time.time() + limit
        seen = len(self.runs)
        last = time.time()
        while time.time() - last < quiet:
            assert time.time() < deadline
            time.sleep(0.05)
            if len(self.runs) != seen:
                seen, last = len(self.runs), time.time()


def _found(config, embedder, word):
    with Searcher(config, embedder=embedder) as searcher:
        return any(word in h.text for h in searcher.search(word, 3, mode="bm25"))


@pytest.mark.timeout(300)
def test_an_edit_is_searchable_within_two_seconds(tmp_path):
    root = tmp_path / "docs"
    write(root, "notes.md", "# Notes\n\nNothing yet.")
    config = Config(index_dir=tmp_path / "idx")
    embedder = HashingEmbedder()
    latencies = []
    with Watcher(config, root, embedder):
        for i in range(50):
            word = f"zebra{i}quux"
            started = time.perf_counter()
            write(root, f"edit{i % 5}.md", f"# Edit {i}\n\nThe word of this edit is {word}.")
            while not _found(config, embedder, word):
                assert time.perf_counter() - started < 30, f"edit {i} never became searchable"
                time.sleep(0.01)
            latencies.append(time.perf_counter() - started)
    p95 = float(np.percentile(latencies, 95))
    assert p95 <= 2.0, f"p95 change-to-searchable {p95:.2f} s (median {np.median(latencies):.2f} s)"


@pytest.mark.timeout(300)
def test_a_checkout_of_a_thousand_files_is_coalesced_and_nothing_is_missed(tmp_path):
    root = tmp_path / "repo"
    write(root, "README.md", "# Repo\n\nA repository.")
    config = Config(index_dir=tmp_path / "idx")
    embedder = HashingEmbedder()
    with Watcher(config, root, embedder) as watcher:
        before = len(watcher.runs)
        for i in range(1000):  # what a `git checkout` of another branch does
            write(root, f"src/module{i // 100}/file{i:04d}.py", f"def function_{i}():\n    return {i}\n")
        (root / "README.md").unlink()
        watcher.settle()
        runs = watcher.runs[before:]
    assert 1 <= len(runs) <= 3, [r.events for r in runs]
    assert sum(r.summary.added for r in runs) == 1000 and sum(r.summary.removed for r in runs) == 1
    clean = Config(index_dir=tmp_path / "clean")
    build_index(clean, root, embedder=embedder)
    with Searcher(config, embedder=embedder) as a, Searcher(clean, embedder=embedder) as b:
        sa, sb = a.snapshot.records, b.snapshot.records
        assert sorted(sa.file_paths()) == sorted(sb.file_paths())
        assert sorted(r[:-1] for r in sa.chunk_rows()) == sorted(r[:-1] for r in sb.chunk_rows())
        assert a.engine.size == b.engine.size == 1000


def test_the_index_folder_inside_the_watched_one_starts_no_run(tmp_path):
    root = tmp_path / "docs"
    write(root, "a.md", "Alpha.")
    config = Config(index_dir=root / ".searchctl")
    with Watcher(config, root, HashingEmbedder()) as watcher:
        write(root, "b.md", "Beta.")
        watcher.settle(quiet=1.5)
        count = len(watcher.runs)
        time.sleep(1.5)  # the run's own writes to .searchctl/ must not start another
        assert len(watcher.runs) == count == 2
