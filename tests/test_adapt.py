"""`searchctl adapt`: queries written from the chunks, graded by the index's own search, a
query encoder distilled from the grades, judged, swapped in and out, and resumed after a
kill -9; on a tiny random-weight model built here."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import make_tiny_model, write
from finetune.grading import Written, grade
from finetune.writers import chunk_sample, span_queries
from searchcore.config import Config
from searchcore.search import Searcher
from searchcore.snapshot import open_snapshot
from searchctl.cli import cli

ROOT = Path(__file__).resolve().parent.parent
TOPICS = ["sailing boats", "sourdough bread", "honey bees", "ocean tides", "forest moss", "oil lamps",
          "mountain goats", "desert cacti", "river otters", "glass blowing", "paper kites", "copper wire"]  # fmt: skip


def _beir(root: Path) -> Path:
    """A small BEIR folder: a document of several sentences per topic, and a judged query each."""
    docs, queries, qrels = [], [], []
    for i, topic in enumerate(TOPICS):
        text = " ".join(
            f"The {topic} of region {j} were studied in season {i + j}. Observers counted {topic} near station {j}, "
            f"and the {topic} changed with the weather of that year."
            for j in range(3)
        )
        docs.append({"_id": f"d{i}", "title": topic.title(), "text": text})
        queries.append({"_id": f"q{i}", "text": f"what happened to the {topic}"})
        qrels.append(f"q{i}\td{i}\t1\n")
    write(root, "corpus.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
    write(root, "queries.jsonl", "".join(json.dumps(q) + "\n" for q in queries))
    write(root, "qrels/test.tsv", "query-id\tcorpus-id\tscore\n" + "".join(qrels))
    return root


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> tuple[Path, Path]:
    """(BEIR folder, an index of its corpus made with a tiny model); tests copy the index."""
    from indexer.build import build_index

    root = tmp_path_factory.mktemp("adapt")
    beir = _beir(root / "beir")
    tiny = make_tiny_model(root / "tiny")
    index = root / "idx"
    build_index(Config(index_dir=index, model=str(tiny), backend="torch"), beir / "corpus.jsonl")
    return beir, index


@pytest.fixture
def index(collection, tmp_path) -> Path:
    import shutil

    copy = tmp_path / "idx"
    shutil.copytree(collection[1], copy)
    return copy


def cli_run(*args, code=None):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    return result


def _query_model(index: Path) -> str | None:
    with open_snapshot(Config(index_dir=index)) as snapshot:
        return snapshot.records.meta().query_model


def test_spans_and_grades_come_from_the_index(index):
    with Searcher(Config(index_dir=index)) as searcher:
        items = chunk_sample(searcher.records, 0, seed=1)
        written = span_queries(items, per_chunk=2, seed=1)
        assert len(written) == 2 * len(items)  # every chunk has three sentences to draw from
        assert all(w.query in " ".join(text.split()) for w in written for c, _, text in items if c == w.chunk_id)
        graded = grade(searcher, written[:10])
        lone = grade(searcher, [Written("copper wire", items[0][0], items[0][1])], teacher="bm25")
    for g in graded:
        assert g.candidates[0][0] == g.positive and len(g.candidates) >= 2
        assert all(-1e-4 <= score <= 2 + 1e-4 for _, score in g.candidates)  # two normalised scores summed
    assert all(-1e-4 <= score <= 1 + 1e-4 for _, score in lone[0].candidates)
    unpunctuated = " ".join(f"w{i}" for i in range(30))  # no sentence: word spans of it instead
    spans = span_queries([(1, 1, unpunctuated), (2, 2, "too short")], per_chunk=2, seed=0)
    assert [w.chunk_id for w in spans] == [1, 1] and all(6 <= len(w.query.split()) <= 20 for w in spans)
    assert all(w.query in unpunctuated for w in spans)
    with pytest.raises(ValueError, match="teacher 'cross'"):
        grade(searcher, written[:1], teacher="cross")


def test_adapt_trains_judges_and_swaps_the_query_encoder(collection, index, tmp_path):
    beir = collection[0]
    out = tmp_path / "run"
    args = ["adapt", "--index", index, "--out", out, "--steps", 6, "--max-epochs", 99, "--batch-size", 8, "--seed", 3,
            "--no-progress"]  # fmt: skip
    judged = cli_run(*args, "--eval-beir", beir, "--json")
    report = json.loads(judged.stdout)
    assert judged.exit_code == (0 if report["improved"] else 1), judged.output
    assert report["graded"] > 20 and report["training"]["steps_done"] == 6 and report["judge"].startswith("BEIR ")
    assert set(report["before"]) == set(report["after"]) == {"dense", "hybrid"}
    assert {"writing queries", "grading", "training", "judging"} <= set(report["seconds"])
    assert (out / "queries.jsonl").exists() and (out / "graded.jsonl").exists()
    assert (out / "query-encoder" / "modules.json").exists() and (out / "training" / "latest").exists()
    assert "adapt: grading" in judged.stderr and "adapt: training the query encoder" in judged.stderr
    if report["improved"]:  # swapped in at once
        assert report["swapped"] and _query_model(index)
        cli_run("adapt", "--index", index, "--undo", code=0)
    else:  # the index is untouched
        assert "is not better on BEIR" in judged.output and _query_model(index) is None
    # Unjudged, the model is swapped in only on request; the run resumes from its folder.
    unjudged = cli_run(*args, code=None)
    assert "queries already written" in unjudged.stderr and "training the query encoder" not in unjudged.stderr
    swapped = cli_run(*args, "--swap-unjudged", code=0)
    assert "swapped in as the index's query encoder" in swapped.output and "judge: none" in swapped.output
    recorded = _query_model(index)
    assert recorded and (index / recorded / "modules.json").exists()
    with Searcher(Config(index_dir=index)) as searcher:
        assert searcher.query_embedder is not searcher.embedder
        vector = searcher.query_embedder.embed(["ocean tides"])
        assert not np.allclose(vector, searcher.embedder.embed(["ocean tides"]), atol=1e-4)
        assert searcher.search("ocean tides", 3)  # queries go through the adapted encoder
    assert "queries by" in cli_run("info", "--index", index, code=0).output
    undone = cli_run("adapt", "--index", index, "--undo", code=0)
    assert "own model again" in undone.output and _query_model(index) is None
    assert not (index / recorded).exists()
    import torch

    if not torch.cuda.is_available():  # a device this machine lacks: said before any work
        lacking = cli_run("adapt", "--index", index, "--device", "cuda", "--out", tmp_path / "gpu", code=2)
        assert "--device cuda: no CUDA GPU is visible" in lacking.output and not (tmp_path / "gpu").exists()
    # Other settings into the same folder: one line, exit 2.
    other = cli_run("adapt", "--index", index, "--out", out, "--steps", 7, code=2)
    assert "holds a run with other settings" in other.output


def test_quick_is_the_defaults_with_fewer_steps(index, tmp_path, monkeypatch):
    """--quick caps the steps and keeps every other default (a small corpus that reaches
    the passes' cap first trains as the defaults do); --steps given beside it wins."""
    import math

    from finetune.adapt import QUICK, AdaptSettings

    monkeypatch.setattr("finetune.adapt.MIN_GRADED", 5)  # the test index has 12 chunks

    quick = cli_run("adapt", "--index", index, "--quick", "--out", tmp_path / "quick", "--batch-size", 8,
                    "--dry-run", "--json", "--no-progress", code=None)  # fmt: skip
    report = json.loads(quick.stdout)
    chosen, defaults = report["settings"], AdaptSettings()
    assert (chosen["per_chunk"], chosen["max_epochs"]) == (defaults.per_chunk, defaults.max_epochs)
    assert chosen["steps"] == 600
    assert QUICK == {"steps": 600} and defaults.steps == 3000
    assert report["training"]["steps_done"] == math.ceil(defaults.max_epochs * report["graded"] / 8) < 600
    graded, quick_settings = report["graded"], AdaptSettings(steps=600, batch_size=8)
    # the passes' cap binds first: the defaults' own schedule
    assert quick_settings.planned_steps(graded) == AdaptSettings(batch_size=8).planned_steps(graded)
    given = cli_run("adapt", "--index", index, "--quick", "--steps", 3, "--out", tmp_path / "given",
                    "--batch-size", 8, "--dry-run", "--json", "--no-progress", code=None)  # fmt: skip
    assert json.loads(given.stdout)["settings"]["steps"] == 3


def test_a_killed_adapt_resumes_from_its_checkpoint(index, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "searchctl", "adapt", "--index", str(index), "--out", str(out), "--steps", "80",
               "--max-epochs", "99", "--batch-size", "4", "--swap-unjudged", "--no-progress"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    latest = out / "training" / "latest"
    deadline = time.monotonic() + 240
    while not latest.exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "the run ended before its first checkpoint: " + first.stdout.read().decode()
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    at = int(latest.read_text().strip().split("-")[1])
    assert 0 < at < 80 and not (out / "query-encoder").exists()
    again = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "Traceback" not in again.stderr and "queries already written" in again.stderr
    resumed = [line for line in again.stderr.splitlines() if "resuming from the checkpoint at step" in line]
    assert resumed and int(resumed[0].rsplit(" ", 1)[1].replace(",", "")) >= at
    report = json.loads((out / "adapt.json").read_text())
    assert report["training"]["resumed_from"] >= at and report["training"]["steps_done"] == 80
    assert report["swapped"] and _query_model(index)


def test_the_daemon_picks_up_a_new_query_encoder_without_a_restart(collection, index, tmp_path):
    import torch
    from fastapi.testclient import TestClient
    from sentence_transformers import SentenceTransformer

    from indexer.reindex import use_query_model
    from searchd import create_app

    tiny = SentenceTransformer(str(collection[1].parent / "tiny" / "tiny-model"), device="cpu")
    with torch.no_grad():
        for parameter in tiny.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    tiny.save(str(tmp_path / "other"))
    config = Config(index_dir=index)
    ask = {"q": "ocean tides", "k": 1, "mode": "dense"}

    def dense_score(client) -> tuple[int, float]:
        body = client.get("/search", params=ask).json()
        return body["generation"], body["hits"][0]["score"]

    with TestClient(create_app(config, reload_interval=0.05)) as client:
        generation, before = dense_score(client)
        changed = use_query_model(config, tmp_path / "other")
        deadline = time.monotonic() + 10
        while dense_score(client)[0] != changed and time.monotonic() < deadline:
            time.sleep(0.05)
        with Searcher(config) as searcher:
            expected = searcher.search("ocean tides", 1, mode="dense")[0].score
        now, after = dense_score(client)
        assert now == changed > generation and after == pytest.approx(expected, abs=1e-5) and after != before
        undone = use_query_model(config, None)
        while dense_score(client)[0] != undone and time.monotonic() < deadline + 10:
            time.sleep(0.05)
        assert dense_score(client)[1] == pytest.approx(before, abs=1e-5)


def test_hours_stops_training_at_a_checkpoint_and_the_next_run_goes_on(index, tmp_path):
    from finetune.adapt import AdaptSettings, adapt

    settings = AdaptSettings(steps=5, max_epochs=99, batch_size=4, seed=1)
    heard: list[str] = []
    stopped = adapt(index, tmp_path / "run", settings=settings, hours=1e-7, on_stage=heard.append)
    assert stopped.training["stopped_by_budget"] and stopped.training["steps_done"] == 1
    assert any("(--hours); run again to go on" in line for line in heard) and not stopped.swapped
    written = json.loads((tmp_path / "run" / "query-encoder" / "searchctl-distill.json").read_text())
    assert written["steps_done"] == 1  # the model so far is there, and says how far it got
    went_on = adapt(index, tmp_path / "run", settings=settings, on_stage=heard.append)
    assert went_on.training["resumed_from"] == 1 and went_on.training["steps_done"] == 5
    assert not went_on.judged and not went_on.improved  # no judge given: nothing swapped


def test_the_judge_can_score_both_query_encoders_on_another_backend(collection, tmp_path):
    """``query_backend``: the index's own query encoder and the candidate both re-made on that
    backend (fp32 ONNX here, over an index written by torch): the same weights score the same."""
    from finetune.adapt import judge

    beir, index = collection
    with Searcher(Config(index_dir=index)) as searcher:
        own = searcher.embedder.name
        torch_figures = judge(Config(index_dir=index), Path(own), (beir, "test"))
    before, after = judge(Config(index_dir=index, cache_dir=tmp_path), Path(own), (beir, "test"), query_backend="onnx")
    assert before == after  # one encoder, one backend
    assert set(before) == {"dense", "hybrid"}
    for mode in before:  # fp32 ONNX gives the torch vectors to float precision
        assert abs(before[mode] - torch_figures[0][mode]) <= 0.002
