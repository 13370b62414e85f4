"""The command line end to end: the real default model, real SQLite, real FAISS."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from conftest import write
from searchctl.cli import cli

SEED = {
    "book-reader.txt": "Can anyone suggest a desktop book reader for Mac that works similar to Stanza on the iPhone?",
    "headset.txt": "I'm looking for a good quality headset that doesn't cost too much. Any recommendations?",
    "backup.txt": "What's the best way to backup data on a Windows laptop?",
    "phones.txt": "I need help choosing between the latest iPhone and Samsung Galaxy models.",
    "recipes.txt": "Does anyone know of a good recipe app that lets you search by ingredients?",
}


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def seed(tmp_path):
    root = tmp_path / "seed"
    for name, text in SEED.items():
        write(root, name, text + "\n")
    return root


def run(runner, *args, code=0):
    result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def one_error_line(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_seed_book_reader_ranks_first_with_the_published_score(runner, seed, tmp_path):
    idx = tmp_path / "idx"
    out = run(runner, "index", seed, "--index", idx, "--backend", "torch").output
    assert "5 added" in out and "5 chunks embedded" in out
    result = run(
        runner, "query", "I need a desktop book reader for Mac", "-k", "3", "--json", "--explain", "--index", idx
    )
    hits = json.loads(result.stdout)["hits"]
    assert len(hits) == 3
    assert hits[0]["path"].endswith("book-reader.txt")
    assert hits[0]["scores"]["dense"] == pytest.approx(0.8011, abs=0.0005)  # the cosine, in the explanation
    assert hits[0]["lines"] == [1, 1] and hits[0]["rank"] == 1
    assert hits[1]["scores"]["dense"] < 0.3
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)  # the score follows the order


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_seed_under_the_onnx_backends(runner, seed, tmp_path, backend):
    idx = tmp_path / "idx"
    run(runner, "index", seed, "--index", idx, "--backend", backend)
    hits = json.loads(
        run(runner, "query", "I need a desktop book reader for Mac", "--index", idx, "--json", "--explain").stdout
    )["hits"]
    assert hits[0]["path"].endswith("book-reader.txt")
    # int8: query-document scores differ from torch's by 0.0105 RMS (measured over
    # SciFact, 300 queries x 400 abstracts); 0.035 is about three times that.
    assert hits[0]["scores"]["dense"] == pytest.approx(0.8011, abs=0.0005 if backend == "onnx" else 0.035)
    info = json.loads(run(runner, "info", "--index", idx, "--json").stdout)
    assert info["backend"] == backend


def test_query_text_output_and_per_doc(runner, tmp_path):
    root = tmp_path / "docs"
    write(
        root,
        "bikes.md",
        "# Bikes\n\nOil the chain every week.\n\n# Tyres\n\nPump the tyres to the pressure on the sidewall.\n",
    )
    write(root, "bread.md", "Knead the dough and let it rise overnight.\n")
    idx = tmp_path / "idx"
    run(runner, "index", root, "--index", idx)
    lines = run(runner, "query", "bicycle maintenance", "--index", idx, "-k", "3").stdout.splitlines()
    assert lines[0].startswith("  1. ")
    assert "bikes.md:" in lines[0] and len(lines[0].split()[1]) == 6  # score with 4 decimals
    assert lines[1].startswith("     ")
    per_doc = json.loads(run(runner, "query", "bicycle", "--index", idx, "--per-doc", "--json").stdout)["hits"]
    assert [os.path.basename(h["path"]) for h in per_doc] == ["bikes.md", "bread.md"]


def test_query_offset_is_the_next_page(runner, seed, tmp_path):
    idx = tmp_path / "idx"
    run(runner, "index", seed, "--index", idx, "--model", "hash:64")
    whole = json.loads(run(runner, "query", "good laptop", "--index", idx, "-k", "4", "--json").stdout)["hits"]
    page = json.loads(run(runner, "query", "good laptop", "--index", idx, "-k", "2", "--offset", "2", "--json").stdout)
    assert page["offset"] == 2 and [h["rank"] for h in page["hits"]] == [3, 4]
    assert [h["chunk_id"] for h in page["hits"]] == [h["chunk_id"] for h in whole[2:]]
    text = run(runner, "query", "good laptop", "--index", idx, "-k", "2", "--offset", "2").stdout
    assert text.startswith("  3. ")
    assert "--offset" in run(runner, "query", "x", "--index", idx, "--offset", "-1", code=2).stderr


def test_info_reports_the_index(runner, seed, tmp_path):
    idx = tmp_path / "idx"
    run(runner, "index", seed, "--index", idx)
    text = run(runner, "info", "--index", idx).stdout
    for expected in (
        "sentence-transformers/all-MiniLM-L6-v2",
        "dimension   384",
        "5 in 5 files",
        "IDMap,Flat",
        "vectors-1.faiss",
    ):
        assert expected in text
    info = json.loads(run(runner, "info", "--index", idx, "--json").stdout)
    assert (info["documents"], info["chunks"], info["dimension"], info["generation"]) == (5, 5, 384, 1)


def test_unchanged_rerun_embeds_nothing(runner, seed, tmp_path):
    idx = tmp_path / "idx"
    run(runner, "index", seed, "--index", idx, "--model", "hash:64")  # plumbing: the hashing embedder
    summary = json.loads(run(runner, "index", seed, "--index", idx, "--json").stdout)
    assert summary["chunks_embedded"] == 0 and summary["unchanged"] == 5


def test_index_environment_variable(runner, seed, tmp_path):
    idx = tmp_path / "from-env"
    result = runner.invoke(cli, ["index", str(seed), "--model", "hash:64"], env={"SEARCHCTL_INDEX": str(idx)})
    assert result.exit_code == 0 and (idx / "index.db").exists()


# -- errors: one line, the right exit code, no traceback ---------------------------------


def test_missing_path_exits_2(runner, tmp_path):
    result = run(runner, "index", tmp_path / "nope", "--index", tmp_path / "idx", code=2)
    assert "no such file or folder" in one_error_line(result)
    assert not (tmp_path / "idx").exists()


def test_query_without_index_exits_1_with_the_fix(runner, tmp_path):
    result = run(runner, "query", "anything", "--index", tmp_path / "none", code=1)
    assert one_error_line(result) == f"error: no index at {tmp_path / 'none'}; run `searchctl index DIR` first"
    assert "no index at" in one_error_line(run(runner, "info", "--index", tmp_path / "none", code=1))


def test_index_built_with_another_model_exits_1_naming_both(runner, seed, tmp_path):
    idx = tmp_path / "idx"
    run(runner, "index", seed, "--index", idx, "--model", "hash:64")
    result = run(runner, "query", "book", "--index", idx, "--model", "acme/other-model", code=1)
    line = one_error_line(result)
    assert "'hash:64'" in line and "'acme/other-model'" in line
    line = one_error_line(run(runner, "index", seed, "--index", idx, "--model", "acme/other-model", code=1))
    assert "acme/other-model" in line


def test_unknown_model_says_nothing_is_downloaded(runner, seed, tmp_path):
    result = run(runner, "index", seed, "--index", tmp_path / "idx", "--model", "acme/no-such-model", code=1)
    line = one_error_line(result)
    assert "model 'acme/no-such-model' not found" in line and "nothing is downloaded at run time" in line


def test_empty_folder_succeeds_with_zero_documents(runner, tmp_path):
    (tmp_path / "empty").mkdir()
    out = run(runner, "index", tmp_path / "empty", "--index", tmp_path / "idx").stdout
    assert "0 added" in out and "0 documents / 0 chunks" in out
    assert "no hits" in run(runner, "query", "anything", "--index", tmp_path / "idx").stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["query", "   "], "the query is empty"),
        (["query", "x", "-k", "0"], "'-k'"),
        (["query", "x", "-k", "ten"], "'-k'"),
        (["query"], "Missing argument 'TEXT'"),
        (["index"], "Missing argument 'PATH...'"),
        (["index", ".", "--chunk-size", "64", "--chunk-overlap", "64"], "chunk overlap (64) must be smaller"),
        (["index", ".", "--batch-size", "0"], "batch size must be at least 1"),
        (["nosuchcommand"], "No such command"),
    ],
)
def test_usage_errors_exit_2_with_one_line(runner, tmp_path, args, message):
    result = (
        run(runner, *args, "--index", tmp_path / "idx", code=2)
        if args[0] != "nosuchcommand"
        else run(runner, *args, code=2)
    )
    assert message in one_error_line(result)


def test_index_folder_that_is_a_file_is_a_usage_error(runner, seed, tmp_path):
    (tmp_path / "afile").write_text("x")
    result = run(runner, "index", seed, "--index", tmp_path / "afile", code=2)
    assert "afile" in one_error_line(result)


def test_corrupt_index_db_exits_1(runner, tmp_path):
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "index.db").write_bytes(b"garbage" * 1000)
    assert "not a searchctl index" in one_error_line(run(runner, "query", "x", "--index", tmp_path / "idx", code=1))


def test_help_is_instant_and_imports_no_torch():
    code = "import sys; from searchctl.cli import cli; assert 'torch' not in sys.modules and 'faiss' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    out = subprocess.run([sys.executable, "-m", "searchctl", "--help"], check=True, capture_output=True, text=True)
    assert "index" in out.stdout and "query" in out.stdout


def test_the_hashing_model_runs_every_command_without_loading_a_model(tmp_path):
    """`--model hash:DIM` is a real index end to end, made in a subprocess that never imports torch."""
    docs, idx = tmp_path / "docs", tmp_path / "idx"
    write(docs, "boats.txt", "Sailing boats need wind and a good sail.\n")
    write(docs, "bread.txt", "Sourdough bread rises slowly.\n")
    code = (
        "import sys; from searchctl.cli import cli; "
        "cli.main(sys.argv[1:], prog_name='searchctl', standalone_mode=False); "
        "print('torch' in sys.modules, 'onnxruntime' in sys.modules)"
    )

    def searchctl(*args):
        done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.splitlines()

    assert searchctl("index", docs, "--index", idx, "--model", "hash:32")[-1] == "False False"
    out = searchctl("query", "sailing boats", "--index", idx, "-k", "1", "--json")
    assert json.loads("\n".join(out[:-1]))["hits"][0]["path"].endswith("boats.txt") and out[-1] == "False False"
    info = json.loads("\n".join(searchctl("info", "--index", idx, "--json")[:-1]))
    assert (info["model"], info["backend"], info["dimension"]) == ("hash:32", "hash", 32)
    bad = CliRunner().invoke(cli, ["index", str(docs), "--index", str(tmp_path / "other"), "--model", "hash:x"])
    assert bad.exit_code == 2 and "a hashing model is hash:DIM with DIM from 2 to 4096" in bad.output
    assert not (tmp_path / "other").exists()  # refused before any folder is made
