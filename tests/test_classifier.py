"""Text classifiers: data validation, training (full and head), classify, and labels as
search filters and facets, with the real default model, real SQLite and real FAISS."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from conftest import write
from searchcore.classifier import load_classifier
from searchcore.config import Config
from searchctl.cli import cli

POSITIVE = [
    "a wonderful, moving film with brilliant acting",
    "I loved every minute of this delightful story",
    "superb direction and a joyful, uplifting script",
    "great fun from start to finish, highly recommended",
    "beautiful photography and a charming cast",
    "an excellent, heartfelt and funny movie",
    "one of the best films of the year, a triumph",
    "warm, witty and wonderfully performed",
    "a brilliant and satisfying thriller",
    "touching and beautifully made, I adored it",
    "the cast is fantastic and the story is a delight",
    "fresh, clever and thoroughly enjoyable",
]
NEGATIVE = [
    "a dull, lifeless film with terrible acting",
    "I hated every minute of this boring mess",
    "awful direction and a clumsy, tedious script",
    "a waste of time from start to finish, avoid it",
    "ugly photography and a wooden cast",
    "a poor, tiresome and unfunny movie",
    "one of the worst films of the year, a disaster",
    "cold, stupid and badly performed",
    "a predictable and frustrating thriller",
    "boring and badly made, I regret watching it",
    "the cast is dreadful and the story is a bore",
    "stale, dumb and thoroughly unpleasant",
]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _reviews(path: Path, names=("positive", "negative")) -> Path:
    rows = [{"text": t, "label": names[0]} for t in POSITIVE] + [{"text": t, "label": names[1]} for t in NEGATIVE]
    return _jsonl(path, rows)


def run(*args, code=0):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


# -- data validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "rows,message",
    [
        ([{"text": "fine", "label": "a"}, {"text": "  ", "label": "b"}], ":2: 'text' is empty"),
        ([{"text": "fine", "label": "a"}, {"label": "b"}], ":2: missing field 'text'"),
        ([{"text": "fine", "label": "a"}, {"text": "x"}], ":2: missing field 'label'"),
        ([{"text": "fine", "label": "a"}, {"text": "x", "label": [1]}], ":2: 'label' must be a string or an integer"),
        ([{"text": "one", "label": "a"}, {"text": "two", "label": "a"}], "has only one class (a)"),
        ([{"text": "one", "label": "a"}, {"text": "two", "label": 1}], "labels mix integers and names"),
    ],
)
def test_bad_training_data_is_one_line_naming_the_line(tmp_path, rows, message):
    train = _jsonl(tmp_path / "train.jsonl", rows)
    result = run("finetune", "classifier", "--train", train, "--out", tmp_path / "clf", code=2)
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "clf").exists()


def test_unknown_eval_label_and_broken_json_are_reported(tmp_path):
    train = _reviews(tmp_path / "train.jsonl")
    evaluation = _jsonl(tmp_path / "eval.jsonl", [{"text": "so so", "label": "neutral"}])
    result = run("finetune", "classifier", "--train", train, "--eval", evaluation, "--out", tmp_path / "c", code=2)
    assert "label(s) neutral" in result.output and "never has" in result.output
    (tmp_path / "bad.jsonl").write_text('{"text": "a", "label": "x"}\n{"text": \n')
    result = run("finetune", "classifier", "--train", tmp_path / "bad.jsonl", "--out", tmp_path / "c", code=2)
    assert "bad.jsonl:2: not valid JSON" in result.output


def test_csv_with_integer_labels_and_label_names(tmp_path):
    from finetune.data import label_names, load_examples

    (tmp_path / "d.csv").write_text('text,label\n"good, really",1\nbad,0\nfine,1\n')
    examples = load_examples(tmp_path / "d.csv")
    assert examples.texts[0] == "good, really" and examples.labels == [1, 0, 1]
    assert label_names(examples) == ["0", "1"]
    assert label_names(examples, names=["negative", "positive"]) == ["negative", "positive"]
    (tmp_path / "nohead.csv").write_text("words,class\nx,1\n")
    result = run("finetune", "classifier", "--train", tmp_path / "nohead.csv", "--out", tmp_path / "c", code=2)
    assert "must name the columns 'text' and 'label'" in result.output


# -- training -----------------------------------------------------------------------------


def test_full_training_writes_a_folder_transformers_pipeline_loads(tmp_path):
    train = _reviews(tmp_path / "train.jsonl")
    out = tmp_path / "sentiment"
    result = run(
        "finetune", "classifier", "--train", train, "--out", out, "--method", "full",
        "--epochs", "2", "--batch-size", "8", "--lr", "1e-4", "--plot", tmp_path / "cm.png", "--no-progress",
    )  # fmt: skip
    last = result.output.strip().splitlines()[-1]
    assert last.startswith(f"trained {out} (full): accuracy") and "macro-F1" in last and " s" in last
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".sentiment.partial-*")) and not (out / "checkpoints").exists()

    from transformers import pipeline

    classify = pipeline("text-classification", model=str(out), device="cpu")
    predicted = classify(["an utterly delightful film", "a tedious, awful mess"])
    assert {p["label"] for p in predicted} <= {"positive", "negative"}
    manifest = json.loads((out / "searchctl-classifier.json").read_text())
    assert manifest["method"] == "full" and manifest["labels"] == ["negative", "positive"]
    assert manifest["eval_examples"] == 2 and len(manifest["metrics"]["epochs"]) == 2


def test_head_round_trip_and_classify(tmp_path):
    train = _reviews(tmp_path / "train.jsonl")
    test = _jsonl(
        tmp_path / "test.jsonl",
        [{"text": "a joyful, brilliant film", "label": "positive"}, {"text": "a boring disaster", "label": "negative"}],
    )
    out = tmp_path / "sentiment"
    result = run(
        "finetune", "classifier", "--train", train, "--test", test, "--out", out, "--method", "head",
        "--backend", "torch", "--json",
    )  # fmt: skip
    figures = json.loads(result.output)
    assert figures["method"] == "head" and figures["test"]["accuracy"] == 1.0 and figures["test"]["examples"] == 2
    classifier = load_classifier(out)
    assert classifier.method == "head" and classifier.embedder_model == "sentence-transformers/all-MiniLM-L6-v2"
    result = run("classify", "what a lovely, heartwarming movie", "--classifier", out, "--backend", "torch", "--json")
    assert json.loads(result.output)[0]["label"] == "positive"
    texts = tmp_path / "texts.txt"
    texts.write_text("a miserable, boring film\n\nsheer delight from beginning to end\n")
    lines = run("classify", "--file", texts, "--classifier", out, "--backend", "torch").output.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["negative", "positive"]
    # The head reads vectors of its own model only.
    import numpy as np

    with pytest.raises(Exception, match="reads 384-d vectors"):
        classifier.probabilities_of_vectors(np.zeros((1, 32), dtype=np.float32))


def test_classify_errors(tmp_path):
    assert "give a TEXT or --file" in run("classify", "--model", tmp_path, code=2).output
    assert "holds no classifier" in run("classify", "hello", "--model", tmp_path, code=2).output
    assert "no classifier folder" in run("classify", "hello", "--model", tmp_path / "nope", code=2).output


# -- labels as filters and facets ---------------------------------------------------------


@pytest.fixture(scope="module")
def sentiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("clf")
    out = root / "sentiment"
    run(
        "finetune", "classifier", "--train", _reviews(root / "train.jsonl"), "--out", out, "--method", "head",
        "--backend", "torch",
    )  # fmt: skip
    return out


def _corpus(root: Path) -> Path:
    for i, text in enumerate(POSITIVE[:6]):
        write(root, f"good/review-{i}.txt", f"Review of film {i}. {text}.\n")
    for i, text in enumerate(NEGATIVE[:6]):
        write(root, f"bad/review-{i}.txt", f"Review of film {i + 6}. {text}.\n")
    return root


def test_labels_stored_at_index_time_filter_and_facet(tmp_path, sentiment):
    docs, index = _corpus(tmp_path / "docs"), tmp_path / "idx"
    out = run("index", docs, "--index", index, "--backend", "torch", "--classifier", sentiment).output
    assert "12 documents labelled (sentiment)" in out
    result = run("query", "film review", "--index", index, "-k", "12", "--label", "negative", "--facets", "--json")
    payload = json.loads(result.output)
    assert len(payload["hits"]) == 6 and all("/bad/" in h["path"] for h in payload["hits"])
    assert payload["facets"] == {"sentiment": {"negative": 6}}
    assert all(h["labels"]["sentiment"]["label"] == "negative" for h in payload["hits"])
    text = run("query", "film review", "--index", index, "-k", "12", "--facets").output
    assert "sentiment: negative 6, positive 6" in text and "[positive]" in text
    # facet=label form, and an unknown label filters everything out.
    hits = json.loads(run("query", "film", "--index", index, "--label", "sentiment=positive", "--json").output)["hits"]
    assert hits and all("/good/" in h["path"] for h in hits)
    assert "no hits" in run("query", "film", "--index", index, "--label", "neutral").output
    assert "FACET=LABEL" in run("query", "film", "--index", index, "--label", "=x", code=2).output
    info = json.loads(run("info", "--index", index, "--json").output)
    assert info["classifiers"]["sentiment"]["labels"] == {"negative": 6, "positive": 6}

    # The index remembers its classifier: a new file is labelled by a plain re-index.
    write(docs, "bad/review-new.txt", "Review of film 99. A tedious, dreadful bore.\n")
    out = run("index", docs, "--index", index).output
    assert "1 documents labelled (sentiment)" in out

    # Over HTTP: the label filter and the facets of the hits.
    from searchd import create_app

    with TestClient(create_app(Config(index_dir=index), reload_interval=0)) as client:
        body = client.get("/search", params={"q": "film review", "k": 20, "label": "negative"}).json()
        assert len(body["hits"]) == 7 and body["facets"] == {"sentiment": {"negative": 7}}
        body = client.post("/search", json={"q": "film", "k": 20, "label": ["sentiment=positive"]}).json()
        assert body["facets"] == {"sentiment": {"positive": 6}}
        assert client.get("/search", params={"q": "film", "label": "=x"}).status_code == 422

    removed = run("label", "--index", index, "--remove", "sentiment").output
    assert "removed facet sentiment: 13 labels" in removed
    assert json.loads(run("info", "--index", index, "--json").output)["classifiers"] == {}
    assert "no hits" in run("query", "film", "--index", index, "--label", "negative").output


def test_label_an_existing_index_and_relabel_only_what_changed(tmp_path, sentiment):
    docs, index = _corpus(tmp_path / "docs"), tmp_path / "idx"
    run("index", docs, "--index", index, "--backend", "torch")
    assert "no classifiers yet" in run("label", "--index", index, code=2).output
    out = run("label", "--index", index, "--classifier", sentiment).output
    assert "sentiment: 12 documents labelled, 0 already current" in out
    out = run("label", "--index", index).output
    assert "sentiment: 0 documents labelled, 12 already current" in out
    write(docs, "good/review-0.txt", "Review of film 0. Now I think it was an awful, boring film.\n")
    run("index", docs, "--index", index)
    hits = json.loads(run("query", "film 0", "--index", index, "--label", "negative", "-k", "20", "--json").output)
    assert any(h["path"].endswith("good/review-0.txt") for h in hits["hits"])
    run("check", "--index", index)
