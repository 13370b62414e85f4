"""The Milvus engine, on Milvus Lite: a real embedded engine in a file, and a real
``milvus-lite server`` on 127.0.0.1 for the tests with several processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import write
from indexer.build import build_index
from searchcore.config import Config
from searchcore.maintenance import check
from searchcore.options import Filters
from searchcore.search import Searcher
from searchctl.cli import cli

pymilvus = pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

TOPICS = {
    "cats.md": "# Cats\n\nCats sleep most of the day and purr when they are content.",
    "dogs.md": "# Dogs\n\nDogs are loyal companions and enjoy long walks in the park.",
    "volcano_notes.txt": "Volcanoes erupt when magma rises through the crust of the earth.",
    "markets.txt": "Stock markets fell sharply as investors sold shares in a panic.",
    "sub/recipes.txt": "Bake the bread at a high temperature until the crust is golden.",
    "sub/notes_2.txt": "Rivers carry sediment to the sea and shape their valleys over time.",
}
QUERIES = ["purring cats", "magma eruption", "investors selling shares", "golden bread crust", "rivers shape valleys"]


def corpus(root: Path) -> Path:
    for rel, text in TOPICS.items():
        write(root / "docs", rel, text)
    return root / "docs"


def milvus(tmp_path: Path, name: str = "idx", **more) -> Config:
    return Config(index_dir=tmp_path / name, engine="milvus", milvus_uri=str(tmp_path / "chunks.db"), **more)


def ranked(config: Config, embedder, mode: str = "hybrid", **kw) -> list[list[str]]:
    with Searcher(Config(index_dir=config.index_dir, milvus_token=config.milvus_token), embedder=embedder) as s:
        return [[Path(h.path).name for h in hits] for hits in s.search_many(QUERIES, k=3, mode=mode, **kw)]


@pytest.fixture
def built(tmp_path, hashing):
    docs = corpus(tmp_path)
    config = milvus(tmp_path)
    build_index(config, docs, embedder=hashing)
    return config, docs


def test_every_mode_finds_what_the_local_engine_finds(built, tmp_path, hashing):
    config, docs = built
    local = Config(index_dir=tmp_path / "local")
    build_index(local, docs, embedder=hashing)
    for mode in ("dense", "bm25", "hybrid"):
        here, there = ranked(local, hashing, mode), ranked(config, hashing, mode)
        assert [r[0] for r in there] == [r[0] for r in here], mode
    with Searcher(Config(index_dir=config.index_dir, engine="local"), embedder=hashing) as s:
        assert s.records.source == str(config.index_dir.resolve())
        assert s.search("magma eruption", k=1)[0].path.endswith("volcano_notes.txt")
    with Searcher(Config(index_dir=config.index_dir), embedder=hashing) as s:
        assert s.records.source.startswith("milvus:") and s.counts["chunks"] == len(TOPICS)
        hit = s.search("magma eruption", k=1, mode="hybrid")[0]
        assert hit.path.endswith("volcano_notes.txt") and hit.lines[0] == 1
        assert {"dense", "bm25", "fused"} <= set(hit.scores)


def test_incremental_runs_add_change_and_delete_without_duplicates(built, hashing):
    config, docs = built
    (docs / "markets.txt").unlink()
    write(docs, "cats.md", "# Cats\n\nCats chase laser pointers around the living room.")
    write(docs, "comets.txt", "Comets are icy bodies whose tails point away from the sun.")
    summary = build_index(config, docs, embedder=hashing)
    assert (summary.added, summary.updated, summary.removed) == (1, 1, 1)
    with Searcher(Config(index_dir=config.index_dir), embedder=hashing) as s:
        names = [Path(h.path).name for h in s.search("investors selling shares", k=10, mode="bm25")]
        assert "markets.txt" not in names
        assert Path(s.search("icy comet tails", k=1)[0].path).name == "comets.txt"
        assert "laser" in s.search("laser pointers", k=1, mode="bm25")[0].text
    report = check(config.index_dir)
    assert report.healthy, report.problems
    client = pymilvus.MilvusClient(config.milvus_uri)
    alias = client.list_aliases()["aliases"][0]
    name = client.describe_alias(alias)["collection_name"]
    client.load_collection(name + "_dead")
    rows = client.query(alias, filter="id >= 0", output_fields=["id"])
    dead = {r["id"] for r in client.query(name + "_dead", filter="id >= 0", output_fields=["id"])}
    assert len(rows) == len({r["id"] for r in rows})  # no duplicates
    assert len({r["id"] for r in rows} - dead) == len(TOPICS) and len(dead) == 2  # until the next run


def test_filters_are_exact_and_per_doc_gives_one_hit_per_document(built, hashing):
    config, _ = built
    with Searcher(Config(index_dir=config.index_dir), embedder=hashing) as s:
        # "_" is a wildcard in LIKE: only volcano_notes.txt may match, never "volcanoXnotes".
        hits = s.search("earth", k=5, filters=Filters(path="volcano_notes.txt"))
        assert [Path(h.path).name for h in hits] == ["volcano_notes.txt"]
        assert {Path(h.path).name for h in s.search("the", k=10, filters=Filters(path="sub/"))} == {
            "recipes.txt", "notes_2.txt",
        }  # fmt: skip
        assert {h.kind for h in s.search("animals", k=10, filters=Filters(kinds=("markdown",)))} == {"markdown"}
        assert s.search("cats", k=10, filters=Filters(path="nothing/*")) == []
        assert s.search("cats", k=10, filters=Filters(before=0)) == []
        docs = s.search("crust of bread and earth", k=10, per_doc=True)
        assert len({h.doc_id for h in docs}) == len(docs) == len(TOPICS)


def test_metadata_and_label_filters_and_facets(tmp_path, hashing):
    root = tmp_path / "docs"
    rows = [
        {"id": "a", "text": "Solar panels turn sunlight into electricity.", "lang": "en", "tags": ["energy"]},
        {"id": "b", "text": "Les panneaux solaires produisent de l'electricite.", "lang": "fr", "tags": ["energy"]},
        {"id": "c", "text": "Wind turbines spin in the breeze.", "lang": "en", "tags": ["wind"], "year": 2021},
    ]
    write(root, "records.jsonl", "\n".join(json.dumps(r) for r in rows))
    config = milvus(tmp_path)
    build_index(config, root, embedder=hashing)
    from searchcore.lock import writing

    with writing(config.index_dir) as store:
        from searchcore.engines import writer_for

        writer = writer_for(store, config.index_dir)
        docs = {key: ids[0][0] for key, ids in store.documents_by_key(["a", "b", "c"]).items()}
        with store.write():
            store.put_labels("topic", "t1", [(docs["a"], "sun", 0.9, "h"), (docs["c"], "air", 0.8, "h")])
            store.bump_generation()
        writer.commit()
    with Searcher(Config(index_dir=config.index_dir), embedder=hashing) as s:
        keys = lambda **f: sorted(h.key for h in s.search("energy", k=10, filters=Filters(**f)))  # noqa: E731
        assert keys(where=(("lang", "en"),)) == ["a", "c"]
        assert keys(where=(("tags", "energy"),)) == ["a", "b"]
        assert keys(where=(("year", "2021"),)) == ["c"]
        assert keys(labels=(("topic", "sun"),)) == ["a"]
        assert keys(labels=((None, "air"),)) == ["c"]
        assert s.search("wind", k=1, mode="bm25")[0].labels == {"topic": {"label": "air", "score": 0.8}}


def test_reindex_moves_the_alias_and_rollback_moves_it_back(tmp_path):
    config = milvus(tmp_path, model="hash:64")  # a model the CLI can load by name
    build_index(config, corpus(tmp_path))
    runner = CliRunner()
    env = {"HF_HUB_OFFLINE": "1"}
    result = runner.invoke(cli, ["reindex", "--index", str(config.index_dir), "--model", "hash:32"], env=env)
    assert result.exit_code == 0, result.output
    client = pymilvus.MilvusClient(config.milvus_uri)
    alias = client.list_aliases()["aliases"][0]
    assert client.describe_alias(alias)["collection_name"].endswith("_v2")
    result = runner.invoke(cli, ["query", "magma eruption", "--index", str(config.index_dir), "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hits"][0]["path"].endswith("volcano_notes.txt")
    result = runner.invoke(cli, ["reindex", "--index", str(config.index_dir), "--rollback"], env=env)
    assert result.exit_code == 0, result.output
    assert client.describe_alias(alias)["collection_name"].endswith("_v1")
    assert check(config.index_dir).healthy


def test_check_finds_and_repairs_a_collection_that_drifted(built, hashing):
    config, _ = built
    client = pymilvus.MilvusClient(config.milvus_uri)
    alias = client.list_aliases()["aliases"][0]
    name = client.describe_alias(alias)["collection_name"]
    victim = client.query(name, filter="id >= 0", output_fields=["id"], limit=2)
    client.delete(name, ids=[r["id"] for r in victim])
    report = check(config.index_dir)
    assert not report.healthy and "lacks 2 chunks" in report.problems[0]
    repaired = check(config.index_dir, repair=True)
    assert repaired.healthy and repaired.repaired


def test_cli_serves_a_collection_with_no_local_index(tmp_path):
    config = milvus(tmp_path, model="hash:64")
    build_index(config, corpus(tmp_path))
    client = pymilvus.MilvusClient(config.milvus_uri)
    alias = client.list_aliases()["aliases"][0]
    client.close()
    remote = ["--engine", "milvus", "--milvus-uri", config.milvus_uri, "--collection", alias]
    runner = CliRunner()
    env = {"HF_HUB_OFFLINE": "1", "SEARCHCTL_INDEX": str(tmp_path / "no-index-here")}
    result = runner.invoke(cli, ["query", "magma eruption", *remote, "--json", "--per-doc"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hits"][0]["path"].endswith("volcano_notes.txt")
    result = runner.invoke(cli, ["info", *remote, "--json"], env=env)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["engine"] == "milvus" and shown["model"] == "hash:64" and shown["index"] is None
    assert "token" not in result.stdout
    result = runner.invoke(cli, ["info", "--index", str(config.index_dir)], env=env)
    assert "engine      milvus at" in result.output and "SPARSE_INVERTED_INDEX" in result.output
    assert not (tmp_path / "no-index-here").exists()


def _one_line(result) -> str:
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_bad_targets_are_one_line_and_write_nothing(tmp_path, hashing):
    docs = corpus(tmp_path)
    runner = CliRunner()
    env = {"HF_HUB_OFFLINE": "1"}
    base = ["index", str(docs), "--model", "hash:32", "--engine", "milvus"]
    result = runner.invoke(cli, [*base, "--index", str(tmp_path / "a"), "--milvus-uri", "http://127.0.0.1:1"], env=env)
    assert result.exit_code == 1 and "cannot reach Milvus at http://127.0.0.1:1" in _one_line(result)
    assert not (tmp_path / "a").exists()
    uri = str(tmp_path / "m.db")
    client = pymilvus.MilvusClient(uri)
    client.create_collection("theirs", dimension=8)
    result = runner.invoke(cli, [*base, "--index", str(tmp_path / "b"), "--milvus-uri", uri, "--collection", "theirs"])
    assert result.exit_code == 1 and "was not made by searchctl" in _one_line(result)
    assert not (tmp_path / "b").exists()
    ok = runner.invoke(cli, [*base, "--index", str(tmp_path / "c"), "--milvus-uri", uri, "--collection", "ours"])
    assert ok.exit_code == 0, ok.output
    result = runner.invoke(cli, [*base, "--index", str(tmp_path / "d"), "--milvus-uri", uri, "--collection", "ours"])
    assert result.exit_code == 1 and "already holds another index's chunks" in _one_line(result)
    other = ["index", str(docs), "--model", "hash:48", "--index", str(tmp_path / "c")]
    before = (tmp_path / "c" / "index.db").read_bytes()
    result = runner.invoke(cli, other, env=env)
    assert result.exit_code != 0  # the index's own model check
    result = runner.invoke(cli, ["query", "x", "--engine", "milvus", "--milvus-uri", uri, "--collection", "bad-name"])
    assert result.exit_code == 2 and "not a Milvus collection name" in _one_line(result)
    assert (tmp_path / "c" / "index.db").read_bytes() == before
    result = runner.invoke(cli, ["serve", "--engine", "milvus", "--milvus-uri", uri, "--collection", "nope"])
    assert result.exit_code == 1 and "no collection 'nope'" in _one_line(result)
    result = runner.invoke(cli, ["index", str(docs), "--index", str(tmp_path / "e"), "--engine", "milvus"])
    assert result.exit_code == 2 and "--milvus-uri" in _one_line(result)


def test_without_pymilvus_the_engine_names_what_to_install(tmp_path):
    docs = corpus(tmp_path)
    code = (
        "import sys; sys.modules['pymilvus'] = None; sys.argv = ['searchctl', 'index', sys.argv[1], '--index', "
        "sys.argv[2], '--model', 'hash:16', '--engine', 'milvus', '--milvus-uri', sys.argv[3]]\n"
        "from searchctl.cli import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(docs), str(tmp_path / "i"), str(tmp_path / "m.db")],
        capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: the milvus engine needs pymilvus and milvus-lite; pip install 'searchctl[milvus]'"
    )
    assert not (tmp_path / "i").exists()


# -- several processes on one Milvus server ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_cli(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "searchctl", *args], capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip


def _wait(check, what: str, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
            if found:
                return found
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} did not come up in {seconds:.0f} s")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_two_daemons_serve_one_collection_while_index_adds_and_deletes(tmp_path):
    import threading

    import httpx

    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    lite = subprocess.Popen(
        [str(Path(sys.executable).with_name("milvus-lite")), "server", "--data-dir", str(tmp_path / "lite"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SEARCHCTL_INDEX": str(tmp_path / "no-index")}
    daemons: list[subprocess.Popen] = []
    try:
        _wait(lambda: pymilvus.MilvusClient(uri).list_collections() is not None, "milvus-lite server")
        docs = corpus(tmp_path)
        markers = [0, 1, 2]
        for n in markers:
            write(docs, f"marker_{n}.txt", f"The zebra marker number {n} grazes on the plain.")
        engine = ["--engine", "milvus", "--milvus-uri", uri, "--collection", "shared"]
        index = ["index", str(docs), "--index", str(tmp_path / "idx"), "--model", "hash:64", "--json", *engine]
        first = _run_cli(*index, env=env)
        assert first.returncode == 0, first.stderr
        expected = {json.loads(first.stdout)["generation"]: {f"marker_{n}.txt" for n in markers}}
        ports = [_free_port(), _free_port()]
        for p in ports:
            daemons.append(subprocess.Popen(
                [sys.executable, "-m", "searchctl", "serve", "--port", str(p), "--log-level", "warning", *engine],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            ))  # fmt: skip
        for p in ports:
            _wait(lambda p=p: httpx.get(f"http://127.0.0.1:{p}/health").status_code == 200, f"searchd on {p}")

        seen: list[tuple[int, int, frozenset]] = []
        stop = threading.Event()

        def poll(p: int) -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{p}", timeout=30) as http:
                while not stop.is_set():
                    answer = http.get("/search", params={"q": "zebra", "mode": "bm25", "k": 50})
                    body = answer.json() if answer.status_code == 200 else {}
                    names = frozenset(Path(h["path"]).name for h in body.get("hits", []))
                    seen.append((answer.status_code, body.get("generation", -1), names))

        pollers = [threading.Thread(target=poll, args=(p,)) for p in ports]
        for t in pollers:
            t.start()
        lags = []
        for step in range(3, 9):
            write(docs, f"marker_{step}.txt", f"The zebra marker number {step} grazes on the plain.")
            (docs / f"marker_{markers.pop(0)}.txt").unlink()
            markers.append(step)
            run = _run_cli(*index, env=env)
            assert run.returncode == 0, run.stderr
            done = time.monotonic()
            generation = json.loads(run.stdout)["generation"]
            expected[generation] = {f"marker_{n}.txt" for n in markers}
            for p in ports:
                _wait(lambda p=p, g=generation: httpx.get(f"http://127.0.0.1:{p}/health").json()["generation"] >= g,
                      "the new generation", 10)  # fmt: skip
            lags.append(time.monotonic() - done)
        stop.set()
        for t in pollers:
            t.join()
        assert seen and all(status == 200 for status, _, _ in seen), {s for s, _, _ in seen}
        wrong = [(g, sorted(names)) for _, g, names in seen if names != expected.get(g)]
        assert not wrong, (len(wrong), len(seen), wrong[:3], expected)
        assert len({g for _, g, _ in seen}) >= 4  # the daemons did move through the generations
        assert max(lags) <= 2.0, lags
    finally:
        for proc in [*daemons, lite]:
            proc.terminate()
        for proc in [*daemons, lite]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ten_kills_during_index_on_milvus_then_the_same_rows_as_a_clean_build(tmp_path):
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, str(root / "bench" / "crash.py"), "--files", "150", "--kills", "10", "--model", "hash:64",
         "--workdir", str(tmp_path), "--milvus-uri", str(tmp_path / "chunks.db"), "--quiet", "--json"],
        capture_output=True, text=True, timeout=800, env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["failures"] == [], summary
    assert summary["kills"] >= 10 and summary["engine"] == "milvus"
    # Counts and ids match the manifest (check), the collection holds the clean build's rows
    # exactly, and the dense top-10 is the clean build's.
    assert summary["same_chunks"] and summary["same_rows_as_clean"] and summary["same_top10"]


def test_searchd_answers_from_a_collection_with_no_local_index(tmp_path):
    import httpx

    from conftest import LiveServer
    from searchd import create_app

    config = milvus(tmp_path, model="hash:64")
    build_index(config, corpus(tmp_path))
    alias = pymilvus.MilvusClient(config.milvus_uri).list_aliases()["aliases"][0]
    remote = Config(index_dir=tmp_path / "nothing-here", engine="milvus", milvus_uri=config.milvus_uri,
                    collection=alias)  # fmt: skip
    with LiveServer(create_app(remote)) as live:
        health = httpx.get(live.url + "/health").json()
        assert health["chunks"] == len(TOPICS) and health["index"].startswith("milvus:")
        found = httpx.get(live.url + "/search", params={"q": "magma eruption", "explain": "true", "k": 3}).json()
        assert found["hits"][0]["path"].endswith("volcano_notes.txt") and "bm25" in found["hits"][0]["scores"]
        chunk = httpx.get(f"{live.url}/chunks/{found['hits'][0]['chunk_id']}").json()
        assert "magma" in chunk["text"]
        assert httpx.get(live.url + "/search", params={"q": "x", "path": "sub/"}).status_code == 200
        assert httpx.get(live.url + "/metrics").status_code == 200
        assert httpx.get(live.url + "/chunks/999999").status_code == 404
        # compact writes a new collection at the same generation and drops the one before
        # the last: the daemon follows the alias, or its second search would fail.
        from searchcore.maintenance import compact

        for _ in range(2):
            compact(config.index_dir)
            time.sleep(1.0)
            assert httpx.get(live.url + "/search", params={"q": "magma"}).status_code == 200
    assert not (tmp_path / "nothing-here").exists()


def test_compact_writes_the_collection_afresh_and_a_model_mismatch_is_refused(tmp_path):
    from searchcore.errors import SearchctlError
    from searchcore.maintenance import compact
    from searchcore.milvus.target import MilvusTarget
    from searchcore.milvus.writer import check_target
    from searchcore.store import Store

    config = milvus(tmp_path, model="hash:64")
    docs = corpus(tmp_path)
    build_index(config, docs)
    (docs / "markets.txt").unlink()
    build_index(config, docs)
    client = pymilvus.MilvusClient(config.milvus_uri)
    alias = client.list_aliases()["aliases"][0]
    client.create_collection(f"{alias}_v7", dimension=4)  # named like ours, but someone else's
    compact(config.index_dir)
    assert client.has_collection(f"{alias}_v7")
    name = client.describe_alias(alias)["collection_name"]
    assert name.endswith("_v8") and client.get_collection_stats(name)["row_count"] == len(TOPICS) - 1
    assert check(config.index_dir).healthy
    with Store.open(config.index_dir, reader=True) as store:
        index_id = store.meta().milvus_index_id
    with pytest.raises(SearchctlError, match="holds vectors of model 'hash:64', not 'hash:48'"):
        check_target(MilvusTarget(config.milvus_uri, alias), index_id, "hash:48", 48)


def test_the_collection_serves_the_records_index_db_holds(tmp_path, hashing):
    """The read seam: every document read fine-tuning and evaluation make gives the same
    answer from the Milvus collection as from index.db."""
    from searchcore.milvus.reader import CollectionView
    from searchcore.places import Places
    from searchcore.reading import file_list, read_file
    from searchcore.snapshot import open_snapshot
    from searchcore.store import Store

    docs = corpus(tmp_path)
    records = [{"_id": f"q{i}", "title": f"Question {i}", "text": f"Answer {i} " * 90} for i in range(4)]
    write(docs, "faq.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    config = milvus(tmp_path, chunk_tokens=64, chunk_overlap=8)
    build_index(config, docs, embedder=hashing)
    with (
        open_snapshot(Config(index_dir=config.index_dir)) as remote,
        open_snapshot(Config(index_dir=config.index_dir, engine="local")) as local,
    ):
        there, here = remote.records, local.records
        assert isinstance(there, CollectionView) and isinstance(here, Store)
        listed = here.document_list()
        ids = [d.doc_id for d in listed]
        assert there.document_list() == listed and len(listed) == len(TOPICS) + 4
        chunks = here.document_chunks(ids)
        assert there.document_chunks(ids) == chunks and max(len(c) for c in chunks.values()) > 1
        assert there.documents_by_key(["q1", "q3", "nope"]) == here.documents_by_key(["q1", "q3", "nope"])
        assert there.document_ids() == here.document_ids()
        assert there.file_kind(str(docs / "faq.jsonl")) == here.file_kind(str(docs / "faq.jsonl")) == "jsonl"
        first = [c for c, _ in chunks[ids[0]]]
        theirs, ours = there.vectors_of(first), here.vectors_of(first)
        assert set(theirs) == set(ours) == set(first)
        assert all(abs(float(theirs[c] @ ours[c]) - 1) < 1e-5 for c in first)  # the same unit vectors
        assert (there.meta().model, there.meta().dim, there.generation) == (here.meta().model, 64, here.generation)
        # what MCP `read` and `files` give: the same from either
        faq = str(docs / "faq.jsonl")
        assert there.file_chunks(faq) == here.file_chunks(faq) and len(here.file_chunks(faq)) > 4
        places = Places.of(here.meta())
        assert read_file(there, places, "faq.jsonl#q2") == read_file(here, places, "faq.jsonl#q2")
        assert "Answer 2 Answer 2" in read_file(there, places, "faq.jsonl#q2")["text"]
        assert file_list(there, places) == file_list(here, places)
