"""A large index on one machine: approximate vector search by size (HNSW, IVF) and its
tombstones and filters, the keyword cache (tantivy) kept by generation, and a writer
killed while it rebuilds either. Real FAISS, real tantivy, real SQLite, real processes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import HashingEmbedder, write
from indexer.build import build_index
from searchcore import ann, keywords
from searchcore.config import Config
from searchcore.maintenance import check
from searchcore.options import Filters
from searchcore.search import Searcher
from searchcore.vectors import VectorIndex, tombstones_path, vectors_path

ROOT = Path(__file__).resolve().parent.parent
WORDS = (
    "river forest cloud stone ember harbor violin copper meadow lantern glacier orchard falcon "
    "saffron canyon marble thunder willow compass quartz bramble cinder dune fjord garnet hollow "
    "iris juniper kelp lagoon mosaic nectar onyx prism quiver raven sable tundra umber vapor"
).split()


def clustered(n: int, dim: int, clusters: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres: the shape of real embeddings, unlike uniform noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    points = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, dim))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("kind, bound", [("hnsw", 0.95), ("ivf", 0.9)])
def test_ann_recall_against_exact_on_random_data(kind, bound):
    vectors = clustered(20_000, 48, 64)
    ids = np.arange(len(vectors), dtype=np.int64) * 7 + 3  # ids are chunk ids, not positions
    index = VectorIndex.build(ids, vectors, ann.factory_for(kind, len(vectors), None))
    assert index.kind == kind
    queries = clustered(20_300, 48, 64)[20_000:]  # the same centres, points not in the index
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10]
    _, found = index.search(queries, 10)
    recall = np.mean([len(set(ids[e]) & set(f)) / 10 for e, f in zip(exact, found)])
    assert recall >= bound, recall
    # A small allow-list is scored one by one, whatever the kind (vectors are stored as
    # 16-bit floats: the scores are within their rounding of the exact ones).
    allowed = ids[::97]
    scores, got = index.search(queries[:20], 10, allowed)
    exact_scores = queries[:20] @ vectors[::97].T
    brute = np.argsort(-exact_scores, axis=1)[:, :10]
    assert np.mean([len(set(g) & set(allowed[b])) for g, b in zip(got, brute)]) >= 9.5
    position = {int(i): j for j, i in enumerate(allowed)}
    truth = np.array([[exact_scores[q, position[int(i)]] for i in row] for q, row in enumerate(got)])
    assert np.abs(scores - truth).max() < 0.02


def test_auto_is_exact_below_the_line_and_ivf_above_with_hysteresis():
    line = ann.APPROXIMATE_FROM
    assert ann.wanted_kind("auto", line - 1, None) == "flat"
    assert ann.wanted_kind("auto", line, "flat") == "ivf"
    assert ann.wanted_kind("auto", line // 2 + 1, "ivf") == "ivf"  # no flip near the line
    assert ann.wanted_kind("auto", line // 2 - 1, "ivf") == "flat"
    assert ann.wanted_kind("hnsw", 10, "flat") == "hnsw"


def words_corpus(root: Path, files: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(files):
        folder = "even" if i % 2 == 0 else "odd"
        text = " ".join(rng.choice(WORDS, 12))
        write(root, f"{folder}/doc{i:04d}.txt", f"{text}.\n")


def results(index_dir: Path, queries: list[str], **kw) -> list[list[tuple[str, float]]]:
    with Searcher(Config(index_dir=index_dir), embedder=HashingEmbedder()) as searcher:
        return [[(h.path.rsplit("/", 2)[-2] + "/" + h.path.rsplit("/", 1)[-1], h.score)
                 for h in searcher.search(q, 10, **kw)] for q in queries]  # fmt: skip


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_deletes_filters_and_per_doc_under_ann_match_exact_search(tmp_path, kind):
    docs = tmp_path / "docs"
    words_corpus(docs, 400)
    flat, approx = tmp_path / "flat", tmp_path / kind
    build_index(Config(index_dir=flat, ann="flat"), docs, embedder=HashingEmbedder())
    summary = build_index(Config(index_dir=approx, ann=kind), docs, embedder=HashingEmbedder())
    assert VectorIndex.load(vectors_path(approx, summary.generation)).kind == kind
    # Delete an eighth of the files: IVF removes them, an HNSW graph keeps tombstones.
    gone = sorted(docs.rglob("doc*.txt"))[::8]
    for path in gone:
        path.unlink()
    build_index(Config(index_dir=flat), docs, embedder=HashingEmbedder())
    after = build_index(Config(index_dir=approx), docs, embedder=HashingEmbedder())
    dead = tombstones_path(vectors_path(approx, after.generation))
    assert dead.exists() == (kind == "hnsw")
    for recorded in (True, False):  # a reader takes the tombstones file, or works them out
        if not recorded and dead.exists():
            dead.unlink()
        with Searcher(Config(index_dir=approx), embedder=HashingEmbedder()) as searcher:
            index = searcher.engine.index
            assert index.kind == kind and not searcher.rebuilt
            assert len(index.dead) == (50 if kind == "hnsw" else 0) and searcher.engine.size == 350 == after.chunks
    queries = [" ".join(WORDS[i : i + 3]) for i in range(0, 30, 3)]
    # Hybrid without feedback: the hashing embedder gives many equal cosines, which 16-bit
    # rounding makes unequal, so feedback may start from another of two equal first hits.
    for kw in ({"mode": "dense"}, {"mode": "hybrid", "feedback": False}, {"per_doc": True, "feedback": False},
               {"filters": Filters(path="even/"), "feedback": False},
               {"mode": "dense", "filters": Filters(path="*/doc00[0-4]*")}):  # fmt: skip
        for got, want in zip(results(approx, queries, **kw), results(flat, queries, **kw)):
            # the same hits up to ties and 16-bit floats: scores within their rounding, and
            # every hit scored clearly above the exact list's last one found
            assert np.allclose([s for _, s in got], [s for _, s in want], atol=0.01), kw
            clear = {p for p, s in want if s > want[-1][1] + 0.01}
            assert clear <= {p for p, _ in got}, kw
    found = {path for hits in results(approx, queries, mode="dense") for path, _ in hits}
    assert len(found) > 50 and all((docs / p).exists() for p in found)
    assert not found & {f"{p.parent.name}/{p.name}" for p in gone}
    report = check(approx)
    assert report.healthy and any(f"recall@10 of the {kind} index" in line for line in report.ok), report.ok


def test_ann_choice_is_recorded_and_a_change_rebuilds_the_vector_file(tmp_path):
    docs = tmp_path / "docs"
    words_corpus(docs, 60)
    index_dir = tmp_path / "index"
    first = build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())
    assert VectorIndex.load(vectors_path(index_dir, first.generation)).kind == "flat"  # auto, small
    again = build_index(Config(index_dir=index_dir, ann="ivf"), docs, embedder=HashingEmbedder())
    assert again.chunks_embedded == 0 and again.generation == first.generation
    assert VectorIndex.load(vectors_path(index_dir, again.generation)).kind == "ivf"
    build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())  # keeps the recorded choice
    assert VectorIndex.load(vectors_path(index_dir, again.generation)).kind == "ivf"
    assert check(index_dir).healthy


def test_keyword_cache_follows_runs_and_is_rebuilt_after_deletion_or_damage(tmp_path):
    docs = tmp_path / "docs"
    words_corpus(docs, 120)
    write(docs, "odd/unique.txt", "A zeppelin drifted over the quarry.\n")
    index_dir = tmp_path / "index"
    summary = build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())
    assert keywords.generation_of(index_dir) == summary.generation
    queries = ["zeppelin quarry", "river forest", "glacier violin copper"]

    def keyword_hits(where=index_dir):
        with Searcher(Config(index_dir=where), embedder=HashingEmbedder()) as searcher:
            cached = searcher.engine.keywords is not None
            return cached, [[h.path for h in searcher.search(q, 5, mode="bm25")] for q in queries]

    cached, expected = keyword_hits()
    assert cached and expected[0][0].endswith("unique.txt")
    # A run that deletes a file updates the cache in place, for the new generation, and it
    # ranks as a cache built afresh for the folder as it now is.
    (docs / "odd" / "unique.txt").unlink()
    summary = build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())
    assert keywords.generation_of(index_dir) == summary.generation
    cached, hits = keyword_hits()
    build_index(Config(index_dir=tmp_path / "clean"), docs, embedder=HashingEmbedder())
    assert cached and not any(p.endswith("unique.txt") for p in hits[0])
    assert hits[1:] == keyword_hits(tmp_path / "clean")[1][1:]
    folder = index_dir / keywords.KEYWORDS_DIR
    # Deleted: queries fall back to FTS5 in index.db, check says so, the next run rebuilds it.
    shutil.rmtree(folder)
    cached, fallback = keyword_hits()
    assert not cached and fallback[0] == [] and all(len(h) == 5 for h in fallback[1:])
    assert any("keywords/ is not written yet" in n for n in check(index_dir).notes)
    build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())
    assert keyword_hits() == (True, hits)
    # Damaged (a segment file overwritten, then the meta file): a problem check repairs.
    for victim in [next(folder.glob("*.term")), folder / "meta.json"]:
        victim.write_bytes(b"\x00garbage" * 64)
        cached, got = keyword_hits()
        assert not cached and got[0] == [] and all(len(h) == 5 for h in got[1:])
        report = check(index_dir)
        assert not report.healthy and any("keywords/ is damaged" in p for p in report.problems), report.problems
        assert check(index_dir, repair=True).healthy
        assert keyword_hits() == (True, hits)


def test_a_kill_during_an_ann_rebuild_leaves_a_working_index(tmp_path):
    corpus = tmp_path / "records.jsonl"
    rng = np.random.default_rng(3)
    with open(corpus, "w") as fh:
        for i in range(12_000):
            fh.write(json.dumps({"id": f"r{i}", "text": " ".join(rng.choice(WORDS, 10))}) + "\n")
    index_dir = tmp_path / "index"
    cli = [sys.executable, "-m", "searchctl"]
    made = subprocess.run([*cli, "index", str(corpus), "--index", str(index_dir), "--model", "hash:32",
                           "--ann", "hnsw", "--no-progress"], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert made.returncode == 0, made.stderr
    config = Config(index_dir=index_dir)
    with Searcher(config) as searcher:
        expected = [h.chunk_id for h in searcher.search("river forest cloud", 10, mode="dense")]
    killed = 0
    for delay in (0.3, 0.8, 1.5, 2.5):
        started = time.time()
        run = subprocess.Popen([*cli, "compact", "--index", str(index_dir)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        while time.time() - started < delay and run.poll() is None:
            time.sleep(0.02)
        if run.poll() is None:
            run.send_signal(signal.SIGKILL)
            killed += 1
        run.wait()
        report = check(index_dir)
        assert report.healthy, report.problems
        with Searcher(config) as searcher:
            assert searcher.engine.index.kind == "hnsw" and not searcher.rebuilt
            assert [h.chunk_id for h in searcher.search("river forest cloud", 10, mode="dense")] == expected
            assert searcher.search("river forest cloud", 5, mode="bm25")
    assert killed >= 2
    done = subprocess.run([*cli, "compact", "--index", str(index_dir)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert not list(index_dir.glob(".vectors-*.tmp")) and not list(index_dir.glob("keywords.*"))
    assert check(index_dir).healthy


def test_the_next_run_removes_a_killed_writers_partial_file_and_keeps_a_live_ones(tmp_path):
    """A writer killed between writing ``.vectors-<g>.faiss.<pid>.tmp`` and renaming it
    leaves the file behind; the next run (even one with nothing to re-embed) removes it,
    while the partial file of a writer still running stays."""
    docs = tmp_path / "docs"
    write(docs, "a.txt", "A zeppelin drifted over the quarry.\n")
    index_dir = tmp_path / "index"
    build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = index_dir / f".vectors-1.faiss.{int(gone.stdout)}.tmp"
    dead.write_bytes(b"half a file")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = index_dir / f".vectors-9.faiss.{sleeper.pid}.tmp"
        live.write_bytes(b"being written")
        notes = check(index_dir).notes
        assert any(n.startswith("1 partial FAISS files of an interrupted run") for n in notes), notes
        summary = build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())
        assert summary.chunks == 1 and not dead.exists() and live.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    report = check(index_dir, repair=True)
    assert report.repaired == ["removed 1 partial FAISS files of an interrupted run"] and not live.exists()
    assert not check(index_dir).notes


def test_removed_records_leave_the_full_text_table_and_the_keyword_cache(tmp_path):
    """The full-text table reads its text from the chunks: a record removed from a JSONL
    file (and a file copied over another) must leave it before its chunks go."""
    docs = tmp_path / "docs"
    records = [{"id": f"r{i}", "text": f"record {i} about {WORDS[i]} and {WORDS[i + 1]}"} for i in range(6)]
    write(docs, "a.jsonl", "\n".join(json.dumps(r) for r in records) + "\n")
    write(docs, "b.txt", "A zeppelin drifted over the quarry.\n")
    index_dir = tmp_path / "index"
    build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())
    write(docs, "a.jsonl", "\n".join(json.dumps(r) for r in records[:3]) + "\n")
    write(docs, "b.txt", (docs / "a.jsonl").read_text())  # b.txt becomes a copy of a.jsonl's bytes
    summary = build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())
    report = check(index_dir)
    assert report.healthy, report.problems
    assert any(f"full-text index holds all {summary.chunks} chunks" in line for line in report.ok), report.ok
    with Searcher(Config(index_dir=index_dir), embedder=HashingEmbedder()) as searcher:
        assert searcher.engine.keywords is not None
        assert searcher.search(WORDS[4], 5, mode="bm25") == []  # record 4 is gone, in tantivy and FTS5
        searcher.engine.keywords = None
        assert searcher.search(WORDS[4], 5, mode="bm25") == []
