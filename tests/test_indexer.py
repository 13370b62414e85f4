import json
import os

import numpy as np
import pytest

import indexer.build as build_module
from conftest import HashingEmbedder, write
from indexer.build import build_index
from searchcore.config import Config
from searchcore.errors import ModelMismatchError, UsageError
from searchcore.search import Searcher
from searchcore.store import Store
from searchcore.vectors import vectors_path


def search(index_dir, query, k=3, **kw):
    with Searcher(Config(index_dir=index_dir), embedder=HashingEmbedder()) as s:
        return s.search(query, k, **kw)


@pytest.fixture
def docs(tmp_path):
    root = tmp_path / "docs"
    write(root, "cats.md", "# Cats\n\nCats purr and chase mice around the barn.\n")
    write(root, "boats.txt", "Sailing boats need wind, a keel and a good sail.\n")
    write(root, "sub/bread.txt", "Sourdough bread rises slowly with wild yeast.\n")
    return root


def test_build_then_search_finds_the_right_file(docs, index_dir, hashing):
    summary = build_index(Config(index_dir=index_dir), docs, embedder=hashing)
    assert (summary.added, summary.files, summary.chunks_embedded, summary.documents) == (3, 3, 3, 3)
    assert summary.generation == 1
    assert vectors_path(index_dir, 1).exists()
    [hit] = search(index_dir, "wild yeast sourdough", k=1)
    assert hit.path == str(docs / "sub" / "bread.txt")
    assert hit.lines == (1, 1)
    assert 0 < hit.scores["dense"] <= 1.0001


def test_incremental_add_change_delete(docs, index_dir, hashing):
    config = Config(index_dir=index_dir)
    build_index(config, docs, embedder=hashing)
    write(docs, "new.txt", "Volcanoes erupt lava and ash.\n")
    write(docs, "boats.txt", "Motor boats need fuel and an engine.\n")
    (docs / "cats.md").unlink()
    again = HashingEmbedder()
    summary = build_index(config, docs, embedder=again)
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (1, 1, 1, 1)
    assert sorted(again.embedded) == ["Motor boats need fuel and an engine.", "Volcanoes erupt lava and ash."]
    assert summary.documents == 3 and summary.generation == 2
    assert search(index_dir, "cats purr mice", k=3)[0].path != str(docs / "cats.md")
    assert search(index_dir, "volcanoes lava", k=1)[0].path == str(docs / "new.txt")
    # The previous generation's FAISS file is gone, the new one is there.
    assert not vectors_path(index_dir, 1).exists() and vectors_path(index_dir, 2).exists()


def test_unchanged_rerun_never_loads_the_model(docs, index_dir, hashing):
    build_index(Config(index_dir=index_dir), docs, embedder=hashing)
    untouched = HashingEmbedder()
    summary = build_index(Config(index_dir=index_dir), docs, embedder=untouched)
    assert untouched.loads == 0
    assert (summary.unchanged, summary.chunks_embedded, summary.generation) == (3, 0, 1)


def test_touched_file_with_same_content_is_not_re_embedded(docs, index_dir, hashing):
    build_index(Config(index_dir=index_dir), docs, embedder=hashing)
    path = docs / "boats.txt"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    again = HashingEmbedder()
    summary = build_index(Config(index_dir=index_dir), docs, embedder=again)
    assert again.loads == 0 and summary.unchanged == 3
    with Store.open(index_dir) as store:
        assert store.file_row(str(path))["mtime_ns"] == path.stat().st_mtime_ns


def test_jsonl_records_are_documents_with_title_and_metadata(tmp_path, index_dir, hashing):
    records = [
        {"_id": "d1", "title": "Mars", "text": "The red planet has two moons.", "year": 2020},
        {"id": 7, "title": "Venus", "text": "Venus is hotter than Mercury."},
        {"_id": "d3", "text": "A record without a title about comets."},
    ]
    path = write(tmp_path, "corpus.jsonl", "\n".join(json.dumps(r) for r in records) + "\n")
    summary = build_index(Config(index_dir=index_dir), path, embedder=hashing)
    assert summary.added == 3
    assert "Mars\nThe red planet has two moons." in hashing.embedded
    [hit] = search(index_dir, "planet moons", k=1)
    assert (hit.key, hit.title, hit.metadata, hit.source) == ("d1", "Mars", {"year": 2020, "lang": "en"}, f"{path}#d1")
    # Change one record, drop another: only the changed one is embedded again.
    records[1]["text"] = "Venus spins backwards."
    write(tmp_path, "corpus.jsonl", "\n".join(json.dumps(r) for r in records[:2]) + "\n")
    again = HashingEmbedder()
    summary = build_index(Config(index_dir=index_dir), path, embedder=again)
    assert (summary.added, summary.updated, summary.removed, summary.unchanged) == (0, 1, 1, 1)
    assert again.embedded == ["Venus\nVenus spins backwards."]


def test_stale_or_missing_faiss_file_is_rebuilt_without_embedding(docs, index_dir, hashing):
    build_index(Config(index_dir=index_dir), docs, embedder=hashing)
    stale = vectors_path(index_dir, 1).read_bytes()
    write(docs, "extra.txt", "Extra words about wind and sails.\n")
    build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())
    expected = [(h.chunk_id, round(h.score, 6)) for h in search(index_dir, "boats wind sail")]
    assert len(expected) == 3
    current = vectors_path(index_dir, 2)
    # A crash between the SQLite commit and the FAISS rename leaves no file, or an old one.
    for damage in ("missing", "stale", "garbage"):
        if damage == "missing":
            current.unlink()
        elif damage == "stale":
            current.write_bytes(stale)
        else:
            current.write_bytes(b"\x00" * 100)
        query_embedder = HashingEmbedder()
        with Searcher(Config(index_dir=index_dir), embedder=query_embedder) as searcher:
            assert searcher.rebuilt, damage
            assert searcher.engine.size == 4
            got = [(h.chunk_id, round(h.score, 6)) for h in searcher.search("boats wind sail", 3)]
        assert got == expected, damage
        assert query_embedder.embedded == ["boats wind sail"]  # only the query was embedded
        # A reader never writes: the damage stays until a writer publishes the file again.
        assert current.exists() == (damage != "missing")
        if damage == "missing":  # a run that changes nothing still publishes a missing file
            writer = HashingEmbedder()
            build_index(Config(index_dir=index_dir), docs, embedder=writer)
            assert writer.embedded == [] and current.exists()
    from searchcore.maintenance import check

    assert check(index_dir, repair=True).healthy  # the garbage file is rebuilt from index.db
    with Searcher(Config(index_dir=index_dir), embedder=HashingEmbedder()) as searcher:
        assert not searcher.rebuilt
        assert [(h.chunk_id, round(h.score, 6)) for h in searcher.search("boats wind sail", 3)] == expected


def test_crash_mid_run_loses_only_the_batch_in_flight(tmp_path, index_dir, monkeypatch):
    root = tmp_path / "many"
    for i in range(40):
        write(root, f"f{i:02}.txt", f"Document {i} talks about topic{i} and word{i % 7}.\n")
    monkeypatch.setattr(build_module, "FLUSH_CHUNKS", 8)

    class Crashing(HashingEmbedder):
        def embed(self, texts, batch_size=32, progress=None):
            if len(self.embedded) >= 16:
                raise KeyboardInterrupt  # stands in for a kill in the middle of embedding
            return super().embed(texts, batch_size, progress)

    with pytest.raises(KeyboardInterrupt):
        build_index(Config(index_dir=index_dir), root, embedder=Crashing())
    with Store.open(index_dir) as store:
        assert store.counts()["documents"] == 16  # two whole batches were committed
    resumed = HashingEmbedder()
    summary = build_index(Config(index_dir=index_dir), root, embedder=resumed)
    assert len(resumed.embedded) == 24 and summary.unchanged == 16
    # Exactly what a clean build gives.
    clean_dir = tmp_path / "clean"
    build_index(Config(index_dir=clean_dir), root, embedder=HashingEmbedder())
    with Store.open(index_dir) as a, Store.open(clean_dir) as b:
        ta = sorted(r[0] for r in a.conn.execute("SELECT text FROM chunks"))
        tb = sorted(r[0] for r in b.conn.execute("SELECT text FROM chunks"))
        assert ta == tb
    got = [(h.path, round(h.score, 5)) for h in search(index_dir, "topic3 word3", k=10)]
    want = [(h.path, round(h.score, 5)) for h in search(clean_dir, "topic3 word3", k=10)]
    assert got == want


def test_another_model_is_refused_naming_both(docs, index_dir, hashing):
    build_index(Config(index_dir=index_dir), docs, embedder=hashing)
    with pytest.raises(ModelMismatchError, match="'test/hashing', not 'other/model'"):
        build_index(Config(index_dir=index_dir, model="other/model"), docs, embedder=HashingEmbedder())
    with pytest.raises(ModelMismatchError):
        Searcher(Config(index_dir=index_dir, model="other/model"))


def test_empty_folder_makes_an_empty_index(tmp_path, index_dir, hashing):
    (tmp_path / "empty").mkdir()
    summary = build_index(Config(index_dir=index_dir), tmp_path / "empty", embedder=hashing)
    assert (summary.documents, summary.chunks, summary.added) == (0, 0, 0)
    assert search(index_dir, "anything") == []
    assert hashing.loads == 0


def test_missing_path_is_a_usage_error(tmp_path, index_dir, hashing):
    with pytest.raises(UsageError, match="no such file or folder"):
        build_index(Config(index_dir=index_dir), tmp_path / "nope", embedder=hashing)


def test_changing_chunk_settings_rechunks_everything(tmp_path, index_dir):
    long = " ".join(f"word{i}" for i in range(60))
    path = write(tmp_path, "d/long.txt", long)
    first = build_index(
        Config(index_dir=index_dir, chunk_tokens=30, chunk_overlap=0),
        path.parent,
        embedder=HashingEmbedder(max_tokens=64),
    )
    second = build_index(
        Config(index_dir=index_dir, chunk_tokens=20, chunk_overlap=0),
        path.parent,
        embedder=HashingEmbedder(max_tokens=64),
    )
    assert first.chunks == 2 and second.updated == 1 and second.chunks == 3


def test_per_doc_keeps_the_best_chunk_of_each_document(tmp_path, index_dir):
    text = "\n\n".join(f"apple banana section {i} " + " ".join(f"w{i}x{j}" for j in range(12)) for i in range(6))
    write(tmp_path, "d/long.txt", text)
    write(tmp_path, "d/other.txt", "apple banana cherry")
    build_index(
        Config(index_dir=index_dir, chunk_tokens=20, chunk_overlap=0),
        tmp_path / "d",
        embedder=HashingEmbedder(max_tokens=40),
    )
    all_hits = search(index_dir, "apple banana", k=10)
    assert len({h.doc_id for h in all_hits}) == 2 and len(all_hits) == 7
    per_doc = search(index_dir, "apple banana", k=10, per_doc=True)
    assert len(per_doc) == 2 and len({h.doc_id for h in per_doc}) == 2
    assert np.all(np.diff([h.score for h in per_doc]) <= 0)


def test_second_writer_fails_at_once_naming_the_holder(docs, index_dir, hashing):
    from searchcore.errors import IndexLockedError
    from searchcore.lock import WriterLock

    index_dir.mkdir()
    with WriterLock(index_dir):
        with pytest.raises(IndexLockedError, match=f"being written by process {os.getpid()}; .* --wait"):
            build_index(Config(index_dir=index_dir), docs, embedder=hashing)
    assert build_index(Config(index_dir=index_dir), docs, embedder=hashing).added == 3


def test_lock_of_a_killed_writer_is_taken_over(docs, index_dir, hashing):
    import signal
    import subprocess
    import sys

    index_dir.mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from searchcore.lock import WriterLock; "
            f"WriterLock({str(index_dir)!r}).acquire(); print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    from searchcore.lock import writer_active

    assert writer_active(index_dir)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert not writer_active(index_dir)
    assert build_index(Config(index_dir=index_dir), docs, embedder=hashing).added == 3


def test_wait_waits_for_the_writer_to_finish(docs, index_dir, hashing):
    import threading

    from searchcore.lock import WriterLock

    index_dir.mkdir()
    lock = WriterLock(index_dir).acquire()
    threading.Timer(0.5, lock.release).start()
    assert build_index(Config(index_dir=index_dir), docs, embedder=hashing, wait=True).added == 3


def test_check_passes_on_a_sound_index_and_repairs_derived_damage(docs, index_dir, hashing):
    from click.testing import CliRunner

    from searchctl.cli import cli

    build_index(Config(index_dir=index_dir), docs, embedder=hashing)
    runner = CliRunner()
    result = runner.invoke(cli, ["check", "--index", str(index_dir)])
    assert result.exit_code == 0, result.output
    assert "ok       SQLite integrity check passed" in result.stdout and "problem" not in result.stdout
    # A run killed between its last commit and the FAISS write: a note, not a problem.
    vectors_path(index_dir, 1).unlink()
    interrupted = runner.invoke(cli, ["check", "--index", str(index_dir)])
    assert interrupted.exit_code == 0, interrupted.output
    assert "note     vectors-1.faiss is not written yet" in interrupted.stdout
    # Damage everything derived: the FAISS file, the full-text table, plus an orphan vector.
    vectors_path(index_dir, 1).write_bytes(b"not a faiss file")
    with Store.open(index_dir) as store:
        store.conn.execute("PRAGMA foreign_keys=OFF")  # as an older version or a hand edit could leave it
        with store.write():
            store.conn.execute("DELETE FROM chunks_fts WHERE rowid = (SELECT min(id) FROM chunks)")
            store.conn.execute("INSERT INTO vectors (chunk_id, vector) VALUES (99999, zeroblob(256))")
    broken = runner.invoke(cli, ["check", "--index", str(index_dir)])
    assert broken.exit_code == 1
    assert "1 vectors without a chunk" in broken.stdout and "full-text index holds 2 rows for 3 chunks" in broken.stdout
    assert "vectors-1.faiss does not match index.db" in broken.stdout
    assert broken.stderr.strip().endswith("`searchctl check --repair` rebuilds what is derived")
    repaired = runner.invoke(cli, ["check", "--index", str(index_dir), "--repair"])
    assert repaired.exit_code == 0, repaired.output
    assert "repaired rebuilt the full-text index" in repaired.stdout and "problem" not in repaired.stdout
    assert runner.invoke(cli, ["check", "--index", str(index_dir)]).exit_code == 0
    [hit] = search(index_dir, "wild yeast sourdough", k=1)
    assert hit.path.endswith("bread.txt")


def test_compact_reclaims_space_after_deletions(tmp_path, index_dir, hashing):
    from click.testing import CliRunner

    from searchctl.cli import cli

    root = tmp_path / "many"
    for i in range(300):
        write(root, f"f{i:03}.txt", f"Document {i} " + "filler words " * 200)
    build_index(Config(index_dir=index_dir), root, embedder=hashing)
    for i in range(290):
        (root / f"f{i:03}.txt").unlink()
    build_index(Config(index_dir=index_dir), root, embedder=HashingEmbedder())
    result = CliRunner().invoke(cli, ["compact", "--index", str(index_dir)])
    assert result.exit_code == 0, result.output
    before, after = (int(x.replace(",", "")) for x in result.stdout.split("(")[1].split(" bytes")[0].split(" -> "))
    assert after < before / 2
    with Store.open(index_dir) as store:
        generation = store.generation
    assert [p.name for p in index_dir.glob("vectors-*.faiss")] == [f"vectors-{generation}.faiss"]
    assert len(search(index_dir, "document filler", k=20, per_doc=True)) == 10


def test_a_run_publishes_its_vectors_as_a_delta_equal_to_a_rebuild(docs, index_dir):
    from searchcore.vectors import VectorIndex

    build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())
    write(docs, "extra.txt", "Extra words about wind and sails.\n")
    (docs / "sub" / "bread.txt").unlink()
    summary = build_index(Config(index_dir=index_dir), docs, embedder=HashingEmbedder())
    assert summary.added == 1 and summary.removed == 1
    published = VectorIndex.load(vectors_path(index_dir, summary.generation))
    with Store.open(index_dir, reader=True) as store:
        ids, matrix = store.all_vectors(store.meta().dim)
    rebuilt = VectorIndex.build(ids, matrix)
    assert sorted(published.ids().tolist()) == sorted(rebuilt.ids().tolist()) == ids.tolist()
    query = matrix[:1]
    np.testing.assert_allclose(published.search(query, len(ids))[0], rebuilt.search(query, len(ids))[0], atol=1e-6)
    assert [p.name for p in index_dir.glob("vectors-*.faiss")] == [f"vectors-{summary.generation}.faiss"]
