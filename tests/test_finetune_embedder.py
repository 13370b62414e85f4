"""Embedder fine-tuning: pairs in every format and every validation error, hard-negative
mining, a short real training run, pairs generation, and reindex swap and rollback."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import write
from finetune.embedder import indexed_positives, mine_hard_negatives
from finetune.pairs import Pair, generate_pairs, load_beir_pairs, load_pairs
from finetune.precision import resolve_precision
from searchcore.config import Config
from searchcore.errors import UsageError
from searchcore.search import Searcher
from searchcore.snapshot import open_snapshot
from searchcore.store import Store
from searchctl.cli import cli


def run(*args, code=0):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


# -- pairs --------------------------------------------------------------------------------


def test_pairs_from_jsonl_and_tsv(tmp_path):
    (tmp_path / "p.jsonl").write_text(
        '{"query": "q1", "positive": "p1"}\n\n{"query": "q2", "positive": "p2", "negative": "n2"}\n'
    )
    assert load_pairs(tmp_path / "p.jsonl") == [Pair("q1", "p1"), Pair("q2", "p2", "n2")]
    (tmp_path / "p.tsv").write_text("query\tpositive\nq1\tp1\nq2\tp2\tn2\n")
    assert load_pairs(tmp_path / "p.tsv") == [Pair("q1", "p1"), Pair("q2", "p2", "n2")]


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("a.jsonl", '{"query": "q", "positive": "p"}\n{"positive": "p"}\n', "a.jsonl:2: missing field 'query'"),
        ("a.jsonl", '{"query": "q"}\n', "a.jsonl:1: missing field 'positive'"),
        ("a.jsonl", '{"query": " ", "positive": "p"}\n', "a.jsonl:1: 'query' is empty"),
        ("a.jsonl", '{"query": "q", "positive": "p", "negative": ""}\n', "a.jsonl:1: 'negative' is empty"),
        ("a.jsonl", '{"query": "q", "positive": 3}\n', "a.jsonl:1: 'positive' must be a string"),
        ("a.jsonl", '{"query": "q",\n', "a.jsonl:1: not valid JSON"),
        ("a.jsonl", "[1, 2]\n", "a.jsonl:1: expected an object"),
        ("a.jsonl", "\n", "holds no pairs"),
        ("a.tsv", "q1\tp1\nq2\n", "a.tsv:2: expected 2 or 3 tab-separated columns, found 1"),
        ("a.tsv", "q1\t \n", "a.tsv:1: 'positive' is empty"),
    ],
)
def test_every_pair_error_names_the_line(tmp_path, name, content, message):
    (tmp_path / name).write_text(content)
    with pytest.raises(UsageError, match=message.replace("(", r"\(")):
        load_pairs(tmp_path / name)
    result = run("finetune", "embedder", "--pairs", tmp_path / name, "--out", tmp_path / "m", code=2)
    assert message in result.output and len(result.output.strip().splitlines()) == 1


def _beir(root: Path, qrels: str) -> Path:
    write(root, "corpus.jsonl", "".join(json.dumps(d) + "\n" for d in [
        {"_id": "d1", "title": "Boats", "text": "Sailing boats need wind."},
        {"_id": "d2", "title": "", "text": "Cats chase mice."},
    ]))  # fmt: skip
    write(root, "queries.jsonl", '{"_id": "q1", "text": "how do boats sail"}\n{"_id": "q2", "text": "cats"}\n')
    write(root, "qrels/train.tsv", "query-id\tcorpus-id\tscore\n" + qrels)
    return root


def test_beir_pairs_and_unknown_ids(tmp_path):
    pairs = load_beir_pairs(_beir(tmp_path / "ok", "q1\td1\t1\nq2\td2\t1\nq2\td1\t0\n"), "train")
    assert pairs == [Pair("how do boats sail", "Boats\nSailing boats need wind.", positive_id="d1"),
                     Pair("cats", "Cats chase mice.", positive_id="d2")]  # fmt: skip
    with pytest.raises(UsageError, match=r"train.tsv:3: unknown document id 'd9'"):
        load_beir_pairs(_beir(tmp_path / "bad-doc", "q1\td1\t1\nq2\td9\t1\n"), "train")
    with pytest.raises(UsageError, match=r"train.tsv:2: unknown query id 'q7'"):
        load_beir_pairs(_beir(tmp_path / "bad-query", "q7\td1\t1\n"), "train")
    with pytest.raises(UsageError, match="no split 'dev'"):
        load_beir_pairs(tmp_path / "ok", "dev")


# -- hard negatives -----------------------------------------------------------------------

TOPICS = {
    "sail": "Sailing boats need wind, a keel and a good sail to cross the bay.",
    "sail2": "A sailing dinghy capsizes when the wind gusts; sailors hike out to keep it flat.",
    "row": "Rowing boats are moved by oars; rowers face the stern of the boat.",
    "cats": "Cats purr and chase mice around the barn at night.",
    "bread": "Sourdough bread rises slowly with wild yeast and flour.",
    "bake": "Baking bread needs a hot oven and a long proof of the dough.",
}


@pytest.fixture
def topic_index(tmp_path, real_embedder):
    from indexer.build import build_index

    rows = "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in TOPICS.items())
    write(tmp_path / "docs", "corpus.jsonl", rows)
    build_index(Config(index_dir=tmp_path / "idx"), tmp_path / "docs", embedder=real_embedder)
    return tmp_path / "idx"


def test_mining_never_picks_a_positive(topic_index, real_embedder):
    pairs = [
        Pair("how does a sailing boat move", TOPICS["sail"], positive_id="sail"),
        Pair("how does a sailing boat move", TOPICS["sail2"], positive_id="sail2"),
        Pair("making sourdough", TOPICS["bread"], positive_id="bread"),
        Pair("cats at night", TOPICS["cats"]),  # no id: excluded by its text
    ]
    with Searcher(Config(index_dir=topic_index), embedder=real_embedder) as searcher:
        mined, count = mine_hard_negatives(pairs, searcher)
    assert count == 4
    for pair in mined:
        positives = {p.positive for p in pairs if p.query == pair.query}
        assert pair.negative and pair.negative not in positives
        q = real_embedder.embed([pair.query])[0]
        positive, negative = real_embedder.embed([pair.positive, pair.negative])
        assert float(negative @ q) < 0.95 * float(positive @ q)  # the margin keeps maybe-relevant ones out
    negatives = {p.positive: p.negative for p in mined}
    # "Rowing boats" outscores both positives of this query: perhaps relevant, never a negative.
    assert TOPICS["row"] not in (negatives[TOPICS["sail"]], negatives[TOPICS["sail2"]])
    assert negatives[TOPICS["bread"]] == TOPICS["bake"]  # the best-ranked passage below the positive


def test_a_long_positive_becomes_the_indexed_chunk_its_query_is_closest_to(tmp_path, real_embedder):
    from indexer.build import build_index

    long_doc = (
        "Volcanoes erupt when magma rises through the crust and gas pressure builds. " * 6
        + "Sourdough bread is leavened by wild yeast and lactic bacteria in a starter. " * 6
    )
    rows = [
        {"_id": "long", "title": "Field notes", "text": long_doc},
        {"_id": "short", "title": "", "text": TOPICS["cats"]},
    ]
    write(tmp_path / "docs", "corpus.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    config = Config(index_dir=tmp_path / "idx", chunk_tokens=40, chunk_overlap=0)
    build_index(config, tmp_path / "docs", embedder=real_embedder)
    with Store.open(config.index_dir) as store:
        texts = [t for (t,) in store.conn.execute("SELECT text FROM chunks ORDER BY id")]
    assert len(texts) > 3  # the long record is several chunks
    pairs = [
        Pair("how is sourdough leavened", "Field notes\n" + long_doc, positive_id="long"),
        Pair("what makes a volcano erupt", "Field notes\n" + long_doc, positive_id="long"),
        Pair("what do cats hunt", TOPICS["cats"], positive_id="short"),  # one chunk: kept
        Pair("cats at night", TOPICS["cats"]),  # no id: kept
        Pair("unknown id", "some text", positive_id="nowhere"),  # not in the index: kept
    ]
    with Searcher(config, embedder=real_embedder) as searcher:
        out, changed = indexed_positives(pairs, searcher)
    assert changed == 2
    bread, volcano = out[0].positive, out[1].positive
    assert bread.startswith("Field notes\n") and "Sourdough" in bread and bread[len("Field notes\n") :] in texts
    assert volcano.startswith("Field notes\n") and "Volcanoes" in volcano and "Sourdough" not in volcano
    assert out[2:] == pairs[2:]
    assert [p.query for p in out] == [p.query for p in pairs] and out[0].positive_id == "long"


# -- training, pairs generate, reindex ----------------------------------------------------


def test_one_step_of_training_writes_a_loadable_model_with_a_card(tmp_path, topic_index):
    rows = [
        {"query": "how does a sailing boat move", "positive": TOPICS["sail"]},
        {"query": "what makes bread rise", "positive": TOPICS["bread"]},
        {"query": "what do cats hunt", "positive": TOPICS["cats"]},
        {"query": "how do rowers move a boat", "positive": TOPICS["row"]},
        {"query": "how to bake a loaf", "positive": TOPICS["bake"]},
        {"query": "why does a dinghy capsize", "positive": TOPICS["sail2"]},
    ]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "model"
    result = run(
        "finetune", "embedder", "--pairs", tmp_path / "pairs.jsonl", "--out", out, "--index", topic_index,
        "--epochs", "1", "--batch-size", "4", "--lr", "1e-6", "--force", "--json",
    )  # fmt: skip
    figures = json.loads(result.stdout)
    assert figures["pairs"] == 5 and figures["hard_negatives"] >= 1 and figures["seconds_training"] > 0
    assert set(figures["before"]) == set(figures["after"]) == {"dense nDCG@10", "dense MRR@10", "dense R@10"}
    assert figures["settings"]["precision"] == resolve_precision("auto")  # bf16 where the CPU has it natively
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(out), device="cpu")
    assert model.encode(["a boat"]).shape == (1, 384)
    card = (out / "README.md").read_text()
    assert "all-MiniLM-L6-v2" in card and "5 query/passage pairs" in card and "| dense nDCG@10 |" in card
    assert not list(tmp_path.glob(".model.partial-*"))


def test_not_better_fails_unless_forced(tmp_path, topic_index):
    rows = [{"query": f"question {i} about {k}", "positive": v} for i, (k, v) in enumerate(TOPICS.items())] * 2
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = run(
        "finetune", "embedder", "--pairs", tmp_path / "pairs.jsonl", "--out", tmp_path / "m", "--index", topic_index,
        "--epochs", "1", "--batch-size", "4", "--lr", "1e-9", "--no-hard-negatives", code=1,
    )  # fmt: skip
    assert "is not better than" in result.stderr and "--force accepts it" in result.stderr
    assert (tmp_path / "m" / "modules.json").exists()


def test_pairs_generate_from_an_index(tmp_path, real_embedder):
    from indexer.build import build_index

    docs = tmp_path / "docs"
    tides = (
        "The moon pulls the oceans toward it. Two bulges of water circle the planet each day. "
        "Coasts see two high tides and two low tides. Spring tides come with the new and full moon."
    )
    write(docs, "records.jsonl", json.dumps({"_id": "r1", "title": "Tides and the moon", "text": tides}) + "\n")
    pruning = (
        "Prune apple trees in late winter while they are dormant. Cut out dead wood first, "
        "then crossing branches. Keep the centre open to light."
    )
    write(docs, "guide.md", f"# Guide\n\n## Pruning apple trees\n\n{pruning}\n")
    build_index(Config(index_dir=tmp_path / "idx"), docs, embedder=real_embedder)
    with open_snapshot(Config(index_dir=tmp_path / "idx")) as snapshot:
        pairs, counts = generate_pairs(snapshot.records)
    assert counts["title"] == 1 and counts["heading"] >= 1 and counts["inverse-cloze"] >= 1
    title = next(p for p in pairs if p.kind == "title")
    assert title.query == "Tides and the moon" and title.positive.startswith("The moon pulls")
    heading = next(p for p in pairs if p.kind == "heading")
    assert heading.query == "Pruning apple trees" and heading.positive.startswith("Prune apple trees")
    cloze = next(p for p in pairs if p.kind == "inverse-cloze")
    assert cloze.query not in cloze.positive
    out = run("pairs", "generate", "--index", tmp_path / "idx", "--out", tmp_path / "pairs.jsonl").output
    assert "title" in out and "heading" in out and "inverse-cloze" in out
    assert len(load_pairs(tmp_path / "pairs.jsonl")) == len(pairs)


def _vectors(index: Path) -> dict[int, bytes]:
    with sqlite3.connect(index / "index.db") as conn:
        return dict(conn.execute("SELECT chunk_id, vector FROM vectors"))


def test_reindex_swaps_and_rolls_back_consistently(tmp_path, real_embedder):
    from conftest import make_tiny_model
    from indexer.build import build_index
    from searchd import create_app

    docs, index = tmp_path / "docs", tmp_path / "idx"
    for name, text in TOPICS.items():
        write(docs, f"{name}.txt", text + "\n")
    build_index(Config(index_dir=index), docs, embedder=real_embedder)
    original = _vectors(index)
    tiny = make_tiny_model(tmp_path / "tiny")
    assert "holds no vectors" not in run("reindex", "--index", index, "--model", tiny, "--backend", "torch").output
    with Store.open(index) as store:
        assert (store.meta().model, store.meta().dim) == (str(tiny), 32)
    assert len(next(iter(_vectors(index).values()))) == 32 * 4
    run("check", "--index", index)
    hits = json.loads(run("query", "sailing in the wind", "--index", index, "--json").output)["hits"]
    assert hits and hits[0]["path"].endswith(".txt")

    # A file added after the swap is embedded with the new model, then by the old one on rollback.
    write(docs, "kites.txt", "Kites fly on a steady wind above the beach.\n")
    run("index", docs, "--index", index)
    out = run("reindex", "--index", index, "--rollback").output
    assert "7 chunks, 1 embedded, 6 reused" in out
    with Store.open(index) as store:
        assert (store.meta().model, store.meta().dim) == ("sentence-transformers/all-MiniLM-L6-v2", 384)
    rolled = _vectors(index)
    assert {k: v for k, v in rolled.items() if k in original} == original  # the very same vectors
    run("check", "--index", index)
    same = run("reindex", "--index", index, "--model", "all-MiniLM-L6-v2", "--backend", "torch", code=2)
    assert "nothing to re-embed" in same.output
    assert "give --model" in run("reindex", "--index", index, code=2).output

    # A daemon serving the index picks the new model up with no failed request.
    from fastapi.testclient import TestClient

    errors, models, serving = [], set(), threading.Event()
    with TestClient(create_app(Config(index_dir=index), reload_interval=0.05)) as client:
        stop = time.monotonic() + 60

        def load():
            while time.monotonic() < stop:
                response = client.get("/search", params={"q": "wind and sails", "k": 3})
                if response.status_code != 200:
                    errors.append(response.text)
                health = client.get("/health").json()
                models.add(health["model"])
                serving.set()
                if health["model"] == str(tiny):
                    return

        thread = threading.Thread(target=load)
        thread.start()
        assert serving.wait(60)  # the old model has answered before the swap starts
        run("reindex", "--index", index, "--rollback")
        thread.join()
    assert errors == [] and str(tiny) in models and len(models) == 2
