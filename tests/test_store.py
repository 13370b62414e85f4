import sqlite3
from types import SimpleNamespace

import numpy as np
import pytest

from searchcore.errors import IndexFormatError, IndexNotFoundError
from searchcore.store import MIGRATIONS, Store


def chunk(text, start=0):
    return SimpleNamespace(text=text, char_start=start, char_end=start + len(text), line_start=1, line_end=1)


def test_open_without_create_names_the_folder(tmp_path):
    with pytest.raises(IndexNotFoundError, match="no index at .*; run `searchctl index DIR` first"):
        Store.open(tmp_path / "nothing")


def test_round_trip_of_documents_chunks_and_vectors(tmp_path):
    vectors = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    with Store.open(tmp_path, create=True) as store:
        with store.write():
            fid = store.ensure_file("/docs/a.jsonl", "jsonl")
            removed, added = store.put_document(
                fid,
                "r1",
                title="T",
                hash="h1",
                metadata={"lang": "en", "n": 3},
                chunks=[chunk("hello"), chunk("world", 6)],
                vectors=vectors,
            )
            store.finish_file(fid, kind="jsonl", hash="fh", size=11, mtime_ns=5)
            store.update_meta(dim=8)
    with Store.open(tmp_path) as store:
        assert removed == [] and len(added) == 2
        records = store.chunk_records(added)
        first = records[added[0]]
        assert (first.path, first.key, first.title, first.text) == ("/docs/a.jsonl", "r1", "T", "hello")
        assert first.metadata == {"lang": "en", "n": 3}
        ids, matrix = store.all_vectors(8)
        assert ids.tolist() == added
        np.testing.assert_array_equal(matrix, vectors)
        assert store.file_row("/docs/a.jsonl")["hash"] == "fh"
        assert store.counts() == {"files": 1, "documents": 1, "chunks": 2, "vectors": 2}


def test_replacing_a_document_returns_old_chunk_ids_and_never_reuses_them(tmp_path):
    v = np.ones((1, 4), dtype=np.float32)
    with Store.open(tmp_path, create=True) as store:
        with store.write():
            fid = store.ensure_file("/a.txt", "text")
            _, first = store.put_document(fid, "", title=None, hash="1", metadata={}, chunks=[chunk("x")], vectors=v)
        with store.write():
            removed, second = store.put_document(
                fid, "", title=None, hash="2", metadata={}, chunks=[chunk("y")], vectors=v
            )
        assert removed == first
        assert second[0] > first[0]
        with store.write():
            assert store.delete_file(fid) == second
        assert store.counts() == {"files": 0, "documents": 0, "chunks": 0, "vectors": 0}


def test_failed_write_rolls_back_everything(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        with pytest.raises(ValueError):
            with store.write():
                fid = store.ensure_file("/a.txt", "text")
                store.put_document(
                    fid, "", title=None, hash="1", metadata={}, chunks=[chunk("x")], vectors=np.ones((2, 4), np.float32)
                )
        assert store.counts()["files"] == 0


def test_migrations_applied_twice_are_a_no_op(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert store.migrate() == 0
        assert store.meta().generation == 0
    with Store.open(tmp_path) as store:
        assert store.migrate() == 0
        assert store.schema_version == len(MIGRATIONS)
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrations_upgrade_an_older_schema(tmp_path):
    # A version-0 database: an empty SQLite file, as an interrupted first run leaves it.
    sqlite3.connect(tmp_path / "index.db").close()
    with Store.open(tmp_path) as store:
        assert store.schema_version == len(MIGRATIONS)
        assert set(store.db.table_names()) >= {"meta", "files", "documents", "chunks", "vectors"}


def test_newer_schema_is_refused_with_the_fix(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        with store.write():
            store.update_meta(schema_version=99)
    with pytest.raises(IndexFormatError, match="schema v99 .* upgrade searchctl"):
        Store.open(tmp_path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path):
    (tmp_path / "index.db").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(IndexFormatError, match="not a searchctl index"):
        Store.open(tmp_path)


def test_a_reader_never_migrates_and_says_how_to_upgrade(tmp_path):
    with Store.open(tmp_path, create=True) as store:
        with store.write():
            store.update_meta(schema_version=len(MIGRATIONS) - 1)
    before = (tmp_path / "index.db").read_bytes()
    with pytest.raises(IndexFormatError, match=r"needs an upgrade .* `searchctl check --repair`"):
        Store.open(tmp_path, reader=True)
    assert (tmp_path / "index.db").read_bytes() == before
    # An empty file left by an interrupted first run is no index yet, to a reader.
    sqlite3.connect(tmp_path / "empty.db").close()
    (tmp_path / "other").mkdir()
    (tmp_path / "empty.db").rename(tmp_path / "other" / "index.db")
    with pytest.raises(IndexNotFoundError):
        Store.open(tmp_path / "other", reader=True)
    assert (tmp_path / "other" / "index.db").stat().st_size == 0


def test_a_searcher_writes_nothing_even_when_it_rebuilds_the_vectors(tmp_path):
    from conftest import HashingEmbedder, write
    from indexer.build import build_index
    from searchcore.config import Config
    from searchcore.search import Searcher
    from searchcore.vectors import vectors_path

    docs, index = tmp_path / "docs", tmp_path / "idx"
    write(docs, "a.txt", "Sailing boats need wind.\n")
    write(docs, "b.txt", "Cats chase mice.\n")
    build_index(Config(index_dir=index), docs, embedder=HashingEmbedder())
    vectors_path(index, 1).unlink()  # as a crash between the commit and the FAISS write leaves it
    listing = {p.name: p.stat().st_mtime_ns for p in index.iterdir()}
    with Searcher(Config(index_dir=index), embedder=HashingEmbedder()) as searcher:
        assert searcher.rebuilt
        assert searcher.search("boats", 1)[0].path.endswith("a.txt")
    assert {p.name: p.stat().st_mtime_ns for p in index.iterdir()} == listing
