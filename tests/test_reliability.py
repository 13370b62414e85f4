"""Reliability: hostile files, a read-only index, a full disk, SIGKILL at random moments,
fuzzed HTTP requests and load while a re-index commits. Real processes, real SQLite,
real FAISS, real HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import HashingEmbedder, LiveServer, make_tiny_model, write
from indexer.build import build_index
from searchcore.config import Config
from searchcore.search import Searcher

ROOT = Path(__file__).resolve().parent.parent
IS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A random-weight one-layer model: fast to embed with, so subprocess runs are short."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny"))


LAUNCH = """\
import resource, runpy, signal, sys
limit = int(sys.argv.pop(1))
if limit:  # writes past the limit fail with EFBIG, as on a full disk
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
sys.argv[0] = "searchctl"
runpy.run_module("searchctl", run_name="__main__", alter_sys=True)
"""


def searchctl(*args, limit_bytes: int | None = None, env=None, timeout=300):
    """Run the real CLI in a subprocess, optionally with a file-size limit.

    The limit is set by the child itself: a preexec_fn runs Python between fork and exec, which
    can deadlock when the test process has other threads (a live server, a progress monitor)."""
    return subprocess.run(
        [sys.executable, "-c", LAUNCH, str(limit_bytes or 0), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
    )


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


# -- hostile files -----------------------------------------------------------------------


def test_hostile_files_are_indexed_or_skipped_with_a_reason(tmp_path):
    docs = tmp_path / "docs"
    write(docs, "empty.txt", b"")
    write(docs, "invalid-utf8.txt", b"caf\xe9 cr\xe8me br\xfbl\xe9e, then \xff\xfe\xfd bytes no decoder expects\n")
    write(docs, "utf16.txt", "\ufeffUTF-16 text about lighthouses and foghorns\n".encode("utf-16-le"))
    write(docs, "latin1.txt", "Crème brûlée à la française, über alles\n".encode("latin-1"))
    write(docs, "binary.txt", bytes(range(256)) * 64)
    write(docs, "corrupt.pdf", b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage \x00\x01 no xref, no trailer")
    write(docs, "name with spaces.md", "# Spaces\n\nA file name with spaces, about kayaks.\n")
    write(docs, "new\nline.txt", "A file name with a newline, about glaciers.\n")
    write(docs, "ünïcödé-名前.txt", "A non-ASCII file name, about origami.\n")
    deep = docs.joinpath(*[f"level{i:02d}" for i in range(30)])
    write(deep, "deep.txt", "Thirty folders down lives a note about submarines.\n")
    big = docs / "big.txt"
    with big.open("wb") as handle:  # 50 MB of real text, not a sparse file
        line = b"a fifty megabyte log line about nothing in particular\n"
        handle.write(line * (50 * 1024 * 1024 // len(line) + 1))
    os.symlink(docs, docs / "loop")  # a folder that contains itself
    os.symlink(docs / "missing.txt", docs / "dangling.txt")
    os.mkfifo(docs / "pipe.txt")  # reading it would block forever
    if not IS_ROOT:
        write(docs, "unreadable.txt", "secret").chmod(0)

    hashing = HashingEmbedder()
    summary = build_index(Config(index_dir=tmp_path / "idx"), docs, embedder=hashing)
    skipped = dict(summary.skipped)
    assert skipped.pop("larger than 20 MB (--max-file-size)") == 1
    assert skipped.pop("binary") == 1
    assert skipped.pop("symlink to a folder already walked") == 1
    assert skipped.pop("broken symlink") == 1
    assert skipped.pop("not a regular file") == 1
    assert skipped.pop("corrupt PDF") == 1
    assert skipped.pop("empty file") == 1  # named, never indexed empty in silence (and not read again)
    if not IS_ROOT:
        assert skipped.pop("unreadable") == 1
    assert skipped == {}, skipped
    indexed = {"invalid-utf8.txt", "utf16.txt", "latin1.txt", "name with spaces.md", "new\nline.txt"}
    indexed |= {"ünïcödé-名前.txt", "deep.txt"}
    assert summary.added == len(indexed), summary.line()
    with Searcher(Config(index_dir=tmp_path / "idx"), embedder=hashing) as searcher:
        paths = {Path(h.path).name for h in searcher.search("about", 20, mode="bm25")}
        assert indexed - {"invalid-utf8.txt", "latin1.txt"} <= paths
        [hit] = searcher.search("submarines", 1, mode="bm25")
        assert hit.path.endswith("level29/deep.txt") and hit.path.count("level") == 30
        [hit] = searcher.search("crème brûlée", 1, mode="bm25")
        assert Path(hit.path).name in ("invalid-utf8.txt", "latin1.txt")
    # The CLI prints the newline of a file name escaped, on one line.
    from click.testing import CliRunner

    from searchctl.cli import cli

    result = CliRunner().invoke(cli, ["query", "glaciers", "--index", str(tmp_path / "idx"), "--mode", "bm25"])
    assert result.exit_code == 1 or "line.txt" in result.output  # the index's model is the hashing one


# -- read-only index, unreadable file, full disk ------------------------------------------


def _make_unreadable(path: Path) -> None:
    """A file this user cannot read. Root reads any file whatever its mode, so for root
    it is a link to /proc/self/mem, whose first page no process can read (EIO)."""
    if IS_ROOT:
        os.symlink("/proc/self/mem", path)
    else:
        path.write_text("private")
        path.chmod(0)


def _set_read_only(folder: Path, read_only: bool) -> bool:
    """Make ``folder`` and its files unwritable for this user: by mode, or for root (whom
    modes do not stop) with the immutable attribute. False where neither is possible."""
    paths = [folder, *folder.iterdir()]
    if not IS_ROOT:
        for path in paths:
            path.chmod((0o555 if path.is_dir() else 0o444) if read_only else (0o755 if path.is_dir() else 0o644))
        return True
    done = subprocess.run(["chattr", "+i" if read_only else "-i", *map(str, paths)], capture_output=True)
    return done.returncode == 0


@pytest.mark.skipif(IS_ROOT and not Path("/proc/self/mem").exists(), reason="needs Linux /proc for root")
def test_unreadable_file_and_read_only_index(tmp_path):
    docs, index = tmp_path / "docs", tmp_path / "idx"
    for name, text in {"a.txt": "apples and pears", "b.txt": "boats and sails", "c.txt": "cats and mice"}.items():
        write(docs, name, text + "\n")
    _make_unreadable(docs / "secret.txt")
    args = ("--index", index)
    done = searchctl("index", docs, *args, "--model", "hash:64")
    assert done.returncode == 0, done.stderr
    assert "3 added" in done.stdout and "1 skipped (1 unreadable)" in done.stdout

    write(docs, "d.txt", "dogs and bones\n")
    if not _set_read_only(index, True):
        pytest.skip("cannot make a folder read-only here (chattr failed)")
    try:
        refused = searchctl("index", docs, *args)
        assert refused.returncode == 1
        line = one_line_error(refused)
        assert f"cannot write the index at {index}" in line and "it can still be queried" in line
        found = searchctl("query", "sailing boats", *args, "-k", "1", "--json", "--path", "*.txt")
        assert found.returncode == 0, found.stderr
        assert json.loads(found.stdout)["hits"][0]["path"].endswith("b.txt")
        checked = searchctl("check", "--index", index)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        repair = searchctl("check", "--index", index, "--repair")
        assert repair.returncode == 1 and "cannot write the index" in one_line_error(repair)
    finally:
        _set_read_only(index, False)
    assert searchctl("index", docs, *args).returncode == 0  # writable again: the last commit was intact


def test_a_full_disk_fails_in_one_line_and_keeps_the_last_commit(tmp_path):
    docs = tmp_path / "docs"
    for i in range(20):
        write(docs, f"first-{i:02d}.txt", f"First batch note {i} about lighthouses and harbours.\n")
    index = tmp_path / "idx"
    args = ("--index", index, "--model", "hash:64")
    assert searchctl("index", docs, *args).returncode == 0
    before = {p.name: p.stat().st_size for p in index.iterdir()}
    for i in range(600):
        write(docs, f"second-{i:03d}.txt", f"Second batch note {i} about volcanoes. " * 20 + "\n")
    limit = max(before.values()) + 16 * 1024  # room for a little, not for 600 more files
    full = searchctl("index", docs, *args, limit_bytes=limit)
    assert full.returncode == 1, full.stdout + full.stderr
    line = one_line_error(full)
    assert "the last committed index is intact" in line and "free some space" in line

    checked = searchctl("check", "--index", index)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = searchctl("query", "lighthouses", "--index", index, "-k", "3", "--json")
    assert found.returncode == 0 and json.loads(found.stdout)["hits"][0]["path"].endswith(".txt")
    again = searchctl("index", docs, *args)
    assert again.returncode == 0, again.stderr
    assert searchctl("check", "--index", index).returncode == 0
    info = json.loads(searchctl("info", "--index", index, "--json").stdout)
    assert info["documents"] == 620


# -- SIGKILL at random moments ------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_sigkill_fifty_times_then_the_same_index_as_a_clean_build(tmp_path, tiny_model):
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "crash.py"), "--files", "2000", "--kills", "50"]
        + ["--model", str(tiny_model), "--workdir", str(tmp_path), "--quiet", "--json"],
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert result.returncode in (0, 1), result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["failures"] == [], summary
    assert summary["kills"] >= 50
    assert {"embed", "sqlite", "faiss"} <= set(summary["kills_by_phase"]), summary["kills_by_phase"]
    assert summary["same_chunks"] and summary["same_top10"] and summary["max_vector_difference"] <= 1e-5


# -- hostile requests and load ------------------------------------------------------------


@pytest.fixture
def fuzz_index(tmp_path, real_embedder):
    docs = tmp_path / "docs"
    write(docs, "cats.md", "# Cats\n\nCats purr and chase mice around the barn.\n")
    write(docs, "boats.txt", "Sailing boats need wind, a keel and a good sail.\n")
    write(docs, "faq.jsonl", json.dumps({"_id": "q1", "title": "Refunds", "text": "Money back in thirty days."}) + "\n")
    build_index(Config(index_dir=tmp_path / "idx"), docs, embedder=real_embedder)
    return tmp_path / "idx"


def fuzz(operation, mode, base_url: str, requests: dict) -> None:
    """450 generated requests to one operation; raises on a 5xx or any schema violation.

    One check is left out for invalid query strings only: "invalid data must be
    rejected". A query string cannot tell an empty array or object from an empty string
    (``type=`` is all of them), so such a request is valid in the form it arrives in."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis.specs.openapi.checks import negative_data_rejection

    query_only = operation.method.upper() == "GET"
    excluded = [negative_data_rejection] if mode == schemathesis.GenerationMode.NEGATIVE and query_only else []

    @settings(
        max_examples=450,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
    )
    @given(operation.as_strategy(mode))
    def run(case):
        requests[mode.value] += 1
        case.call_and_validate(base_url=base_url, excluded_checks=excluded)

    run()


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_schemathesis_finds_no_server_error_and_no_schema_violation(fuzz_index, real_embedder):
    import schemathesis

    from searchd import create_app

    app = create_app(Config(index_dir=fuzz_index), embedder=real_embedder)
    requests = {"positive": 0, "negative": 0}
    with LiveServer(app) as live:
        schema = schemathesis.openapi.from_url(live.url + "/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            modes = [schemathesis.GenerationMode.POSITIVE]
            if operation.query or operation.path_parameters or operation.body:
                modes.append(schemathesis.GenerationMode.NEGATIVE)
            for mode in modes:
                fuzz(operation, mode, live.url, requests)
    assert requests["positive"] + requests["negative"] >= 2000, requests
    print(f"schemathesis: {requests} requests, no failure")


@pytest.mark.slow
def test_eight_clients_for_thirty_seconds_while_a_reindex_commits(tmp_path, tiny_model):
    from searchcore.embedder import Embedder
    from searchd import create_app

    docs, index = tmp_path / "docs", tmp_path / "idx"
    for i in range(300):
        write(docs, f"note-{i:03d}.txt", f"Note {i}: harbours, lighthouses and the weather at sea, version 0.\n")
    args = ("--index", index, "--model", tiny_model, "--backend", "torch")
    assert searchctl("index", docs, *args).returncode == 0
    app = create_app(Config(index_dir=index), embedder=Embedder(str(tiny_model), backend="torch"))
    stop = time.monotonic() + 30
    errors: list[str] = []
    counts = [0] * 8
    generations: set[int] = set()

    def client(n: int) -> None:
        with httpx.Client(base_url=live.url, timeout=30) as http:
            while time.monotonic() < stop:
                try:
                    response = http.get("/search", params={"q": f"lighthouse weather {n}", "k": 5})
                    if response.status_code != 200:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                    else:
                        generations.add(response.json()["generation"])
                        counts[n] += 1
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    with LiveServer(app) as live:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        rounds = 0
        while time.monotonic() < stop - 3:  # re-index, changing a third of the notes each round
            rounds += 1
            for i in range(rounds % 3, 300, 3):
                write(docs, f"note-{i:03d}.txt", f"Note {i}: harbours and lighthouses, version {rounds}.\n")
            done = searchctl("index", docs, *args)
            assert done.returncode == 0, done.stderr
        for thread in threads:
            thread.join()
    assert errors == [], errors[:5]
    assert sum(counts) > 100 and min(counts) > 0
    assert rounds >= 2 and len(generations) >= 2, (rounds, generations)
    print(f"8 clients, 30 s: {sum(counts)} requests, {rounds} re-index runs, {len(generations)} generations, 0 errors")
