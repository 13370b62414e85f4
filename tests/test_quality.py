"""Hybrid retrieval: fusion arithmetic, FTS5 escaping, exact filters, explanations, eval."""

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import HashingEmbedder, write
from indexer.build import build_index
from searchcore.config import Config
from searchcore.evaluate import evaluate
from searchcore.fusion import rrf, weighted
from searchcore.options import Filters
from searchcore.search import Searcher
from searchcore.store import fts_query
from searchctl.cli import cli


def test_rrf_by_hand():
    fused = rrf([["a", "b"], ["b", "c"]], k=60)
    assert fused == pytest.approx({"a": 1 / 61, "b": 1 / 62 + 1 / 61, "c": 1 / 62})
    weighted_rrf = rrf([["a"], ["b"]], k=10, weights=[2.0, 1.0])
    assert weighted_rrf == pytest.approx({"a": 2 / 11, "b": 1 / 11})
    # With a depth, a list fetched deeper (the next page) changes no fused score: "c" is
    # 3rd in one list and, only when fetched deeper, 4th in the other.
    shallow = rrf([["a", "b", "c"], ["d", "e", "f"]], depth=3)
    deeper = rrf([["a", "b", "c", "x"], ["d", "e", "f", "c"]], depth=3)
    assert {item: deeper[item] for item in shallow} == pytest.approx(shallow) and deeper["x"] == 0.0


def test_weighted_fusion_by_hand():
    fused = weighted([{"a": 0.9, "b": 0.5, "c": 0.1}, {"b": 12.0, "d": 4.0}], weights=[1.0, 0.5])
    # min-max: dense a=1, b=0.5, c=0; bm25 b=1, d=0 (times 0.5)
    assert fused == pytest.approx({"a": 1.0, "b": 0.5 + 0.5, "c": 0.0, "d": 0.0})
    assert weighted([{"x": 3.0, "y": 3.0}]) == {"x": 1.0, "y": 1.0}  # no spread: all count fully
    assert weighted([{}, {"z": 1.0}]) == {"z": 1.0}


@pytest.mark.parametrize(
    "text,expected",
    [
        ('say "hello" world', '"say" OR "hello" OR "world"'),
        ("NEAR(apple, pear", '"near" OR "apple" OR "pear"'),
        ("cats AND dogs OR NOT birds", '"cats" OR "dogs" OR "birds"'),
        ("pre* -excluded title:foo (unbalanced", '"pre" OR "excluded" OR "title" OR "foo" OR "unbalanced"'),
        ("the of and", None),
        ('" * - : ( ) ^', None),
        ("", None),
        ("Café naïve", '"café" OR "naïve"'),
    ],
)
def test_fts_query_turns_any_text_into_words(text, expected):
    assert fts_query(text) == expected


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "docs"
    for i in range(198):
        write(root, f"bulk/note{i:03}.txt", f"Common apple words number {i} and orchard pears.\n")
    write(root, "keep/one.md", "# Apple\n\nA rare apple variety from the keep folder.\n")
    write(root, "keep/two.md", "Apple pie recipe kept apart.\n")
    records = [
        {"_id": "r1", "title": "Apple report", "text": "Apple harvest figures.", "lang": "en", "tags": ["fruit", "q3"]},
        {"_id": "r2", "title": "Rapport pomme", "text": "Apple harvest in French.", "lang": "fr", "tags": ["fruit"]},
    ]
    write(root, "records.jsonl", "\n".join(json.dumps(r) for r in records))
    build_index(Config(index_dir=tmp_path / "idx"), root, embedder=HashingEmbedder())
    return root


@pytest.fixture
def searcher(corpus, tmp_path):
    with Searcher(Config(index_dir=tmp_path / "idx"), embedder=HashingEmbedder()) as s:
        yield s


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_hostile_queries_never_raise(searcher, mode):
    for q in ['"', "NEAR(", "*", "-", ":", "AND", "(((", "apple) OR (", "😀", "the"]:
        hits = searcher.search(q, 5, mode=mode)
        assert isinstance(hits, list)


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_a_filter_keeping_one_percent_still_returns_k_hits(searcher, corpus, mode):
    assert searcher.counts["chunks"] == 202
    hits = searcher.search("apple", 2, mode=mode, filters=Filters(path="keep/*"))
    assert sorted(os.path.basename(h.path) for h in hits) == ["one.md", "two.md"]
    hits = searcher.search("apple", 2, mode=mode, filters=Filters(path=str(corpus / "keep")))
    assert len(hits) == 2


def test_filters_by_kind_time_and_record_fields(searcher, corpus):
    assert {os.path.basename(h.path) for h in searcher.search("apple", 10, filters=Filters(kinds=("markdown",)))} == {
        "one.md",
        "two.md",
    }
    assert len(searcher.search("apple", 300, filters=Filters(kinds=(".txt",)))) == 198
    [fr] = searcher.search("apple", 10, filters=Filters(where=(("lang", "fr"),)))
    assert fr.key == "r2"
    assert {h.key for h in searcher.search("apple", 10, filters=Filters(where=(("tags", "fruit"),)))} == {"r1", "r2"}
    assert [h.key for h in searcher.search("apple", 10, filters=Filters(where=(("tags", "q3"),)))] == ["r1"]
    assert searcher.search("apple", 10, filters=Filters(where=(("lang", "de"),))) == []
    future = searcher.search("apple", 10, filters=Filters(after=4_000_000_000))
    past = searcher.search("apple", 10, filters=Filters(before=4_000_000_000))
    assert future == [] and len(past) == 10


def test_hybrid_explains_each_hit(searcher):
    hits = searcher.search("rare apple variety keep folder", 3, mode="hybrid", feedback=False)
    top = hits[0]
    assert os.path.basename(top.path) == "one.md"
    assert {"dense", "dense_rank", "bm25", "bm25_rank", "fused"} <= set(top.scores)
    assert top.score == pytest.approx(top.scores["fused"])  # the score shown follows the order
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    rrf_hits = searcher.search("rare apple variety keep folder", 3, mode="hybrid", fusion="rrf", feedback=False)
    assert rrf_hits[0].scores["fused"] == pytest.approx(
        1 / (60 + rrf_hits[0].scores["dense_rank"]) + 1 / (60 + rrf_hits[0].scores["bm25_rank"])
    )


def test_feedback_searches_again_with_the_query_moved_towards_its_best_hits(searcher):
    from searchcore.search import FEEDBACK_DOCS, FEEDBACK_WEIGHT

    query = "rare apple variety keep folder"
    first = searcher.search(query, 10, mode="hybrid", feedback=False)
    assert not any("dense_feedback" in h.scores for h in first)
    vector = searcher.embedder.embed([query])[0]
    fed_back = searcher.records.vectors_of([h.chunk_id for h in first[:FEEDBACK_DOCS]])
    expanded = vector + FEEDBACK_WEIGHT * np.mean(list(fed_back.values()), axis=0)
    expanded /= np.linalg.norm(expanded)
    hits = searcher.search(query, 10, mode="hybrid")  # feedback is the default
    assert {"dense", "dense_feedback", "dense_feedback_rank", "bm25", "bm25_rank", "fused"} <= set(hits[0].scores)
    stored = searcher.records.vectors_of([h.chunk_id for h in hits])
    for hit in hits:
        # The explanation's cosine is to the query as typed; fusion used the second search.
        assert hit.scores["dense"] == pytest.approx(float(stored[hit.chunk_id] @ vector), abs=1e-5)
        if "dense_feedback" in hit.scores:
            assert hit.scores["dense_feedback"] == pytest.approx(float(stored[hit.chunk_id] @ expanded), abs=1e-5)
    ranked = sorted(
        (h for h in hits if "dense_feedback_rank" in h.scores), key=lambda h: h.scores["dense_feedback_rank"]
    )
    assert [h.scores["dense_feedback"] for h in ranked] == sorted(
        (h.scores["dense_feedback"] for h in ranked), reverse=True
    )
    # Dense and BM25 modes never feed back.
    assert all("dense_feedback" not in h.scores for h in searcher.search(query, 5, mode="dense"))


def test_eval_metrics_match_a_hand_computation(tmp_path):
    docs = [
        {"_id": "d1", "text": "apple apple apple"},
        {"_id": "d2", "text": "apple banana"},
        {"_id": "d3", "text": "cherry"},
    ]
    write(tmp_path, "corpus.jsonl", "\n".join(json.dumps(d) for d in docs))
    build_index(Config(index_dir=tmp_path / "idx"), tmp_path / "corpus.jsonl", embedder=HashingEmbedder())
    qrels = {"q1": {"d2": 1}, "q2": {"d3": 1}}
    with Searcher(Config(index_dir=tmp_path / "idx"), embedder=HashingEmbedder()) as s:
        assert [h.key for h in s.search("apple", 10, mode="bm25")] == ["d1", "d2"]
        result = evaluate(s, {"q1": "apple", "q2": "cherry"}, qrels, mode="bm25")
    # q1: the relevant d2 at rank 2 -> nDCG 1/log2(3), RR 1/2, AP 1/2; q2: d3 at rank 1 -> all 1.
    assert result.metrics["ndcg@10"] == pytest.approx((1 / math.log2(3) + 1) / 2, abs=1e-4)
    assert result.metrics["mrr@10"] == pytest.approx(0.75)
    assert result.metrics["map"] == pytest.approx(0.75)
    assert result.metrics["recall@10"] == pytest.approx(1.0)
    assert result.queries == 2


def test_eval_command_compares_and_plots(tmp_path):
    beir = tmp_path / "beir"
    docs = [{"_id": f"d{i}", "title": f"Topic {i}", "text": f"word{i} text about subject{i}"} for i in range(20)]
    write(beir, "corpus.jsonl", "\n".join(json.dumps(d) for d in docs))
    write(beir, "queries.jsonl", "\n".join(json.dumps({"_id": f"q{i}", "text": f"subject{i}"}) for i in range(5)))
    write(beir, "qrels/test.tsv", "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{i}\t1\n" for i in range(5)))
    idx = tmp_path / "idx"
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(beir / "corpus.jsonl"), "--index", str(idx)]).exit_code == 0
    plot = tmp_path / "cmp.png"
    result = runner.invoke(
        cli,
        [
            "eval",
            "--beir",
            str(beir),
            "--index",
            str(idx),
            "--compare",
            "mode=dense,bm25,hybrid",
            "--json",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    on_off = runner.invoke(
        cli, ["eval", "--beir", str(beir), "--index", str(idx), "--compare", "feedback=on,off", "--json"]
    )
    assert on_off.exit_code == 0, on_off.output
    assert [r["label"] for r in json.loads(on_off.stdout)] == ["feedback=on", "feedback=off"]
    rows = json.loads(result.stdout)
    assert [r["label"] for r in rows] == ["mode=dense", "mode=bm25", "mode=hybrid"]
    assert rows[1]["ndcg@10"] == pytest.approx(1.0) and all(r["queries"] == 5 for r in rows)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = runner.invoke(cli, ["eval", "--beir", str(beir), "--index", str(idx)])
    assert table.exit_code == 0 and "nDCG@10" in table.stdout and "mode=hybrid" in table.stdout
    for args, message in [
        (["--beir", str(beir), "--split", "dev"], "no split 'dev'"),
        (["--compare", "mode=dense,sparse", "--beir", str(beir)], "--compare takes"),
        ([], "give --beir DIR"),
    ]:
        bad = runner.invoke(cli, ["eval", "--index", str(idx), *args])
        assert bad.exit_code == 2 and message in bad.stderr, bad.output


def test_query_command_explain_modes_and_filters(tmp_path):
    root = tmp_path / "docs"
    write(root, "pie.md", "Apple pie: bake the apples with cinnamon and butter.\n")
    write(root, "car.txt", "Changing the oil of a car engine every year.\n")
    write(root, "tart.txt", "A pear tart with almond cream.\n")
    idx = str(tmp_path / "idx")
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(root), "--index", idx]).exit_code == 0
    out = runner.invoke(cli, ["query", "apple dessert", "--index", idx, "--explain", "-k", "2"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert "pie.md" in lines[0]
    assert lines[1].strip().startswith("dense 0.") and "(rank 1)" in lines[1] and "bm25 " in lines[1]
    assert "fused " in lines[1]
    assert "dense after feedback" in lines[1]
    plain = runner.invoke(cli, ["query", "apple dessert", "--index", idx, "--no-feedback", "--json", "--explain"])
    assert all("dense_feedback" not in h["scores"] for h in json.loads(plain.stdout)["hits"])
    only_text = runner.invoke(cli, ["query", "apple dessert", "--index", idx, "--type", "text", "--json"])
    assert {os.path.basename(h["path"]) for h in json.loads(only_text.stdout)["hits"]} == {"car.txt", "tart.txt"}
    bm25 = runner.invoke(cli, ["query", "engine oil", "--index", idx, "--mode", "bm25", "--json", "--explain"])
    hits = json.loads(bm25.stdout)["hits"]
    assert [os.path.basename(h["path"]) for h in hits] == ["car.txt"] and hits[0]["scores"]["bm25_rank"] == 1
    for args, message in [
        (["--where", "novalue"], "--where takes FIELD=VALUE"),
        (["--after", "last tuesday"], "--after takes a date"),
        (["--mode", "fuzzy"], "'--mode'"),
    ]:
        bad = runner.invoke(cli, ["query", "x", "--index", idx, *args])
        assert bad.exit_code == 2 and message in bad.stderr, bad.output


def test_eval_compares_embedding_models(tmp_path, monkeypatch):
    from conftest import make_tiny_model

    # Exports go to $SEARCHCTL_CACHE, never to the home folder.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    tiny = make_tiny_model(tmp_path)
    beir = tmp_path / "beir"
    docs = [{"_id": f"d{i}", "title": f"Topic {i}", "text": f"word{i} text about subject{i}"} for i in range(12)]
    write(beir, "corpus.jsonl", "\n".join(json.dumps(d) for d in docs))
    write(beir, "queries.jsonl", "\n".join(json.dumps({"_id": f"q{i}", "text": f"subject{i}"}) for i in range(4)))
    write(beir, "qrels/test.tsv", "".join(f"q{i}\td{i}\t1\n" for i in range(4)))
    idx = tmp_path / "idx"
    runner = CliRunner()
    assert runner.invoke(cli, ["index", str(beir / "corpus.jsonl"), "--index", str(idx)]).exit_code == 0
    args = ["eval", "--beir", str(beir), "--index", str(idx), "--model", "all-MiniLM-L6-v2", "--model", str(tiny)]
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["label"] for r in rows] == ["sentence-transformers/all-MiniLM-L6-v2", str(tiny)]
    assert [r["dimension"] for r in rows] == [384, 32]
    assert rows[0]["index"] == str(idx)  # the main index serves its own model
    assert rows[1]["index"] != str(idx) and (Path(rows[1]["index"]) / "index.db").exists()
    assert all(r["chunks_per_second"] > 0 and 0 <= r["ndcg@10"] <= 1 for r in rows)
    table = runner.invoke(cli, [*args, "--mode", "dense"])
    assert table.exit_code == 0 and "chunks/s" in table.stdout and " 32 " in table.stdout
    bad = runner.invoke(cli, [*args, "--compare", "mode=dense,bm25"])
    assert bad.exit_code == 2 and "not both" in bad.stderr
    assert not (tmp_path / "home").exists()
    assert any("tiny-model" in p.name for p in Path(os.environ["SEARCHCTL_CACHE"]).iterdir())


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_per_doc_is_the_chunk_list_with_repeats_dropped(tmp_path, mode):
    root = tmp_path / "long"
    topics = ["apple orchard", "pear harvest", "cherry blossom", "plum jam", "quince paste"]
    for i, topic in enumerate(topics):
        sections = [
            f"# Part {j}\n\nNotes {j} on {topic} and fruit number {i * 7 + j} from the folder." for j in range(6)
        ]
        write(root, f"doc{i}.md", "\n\n".join(sections))
    config = Config(index_dir=tmp_path / "idx-long")
    build_index(config, root, embedder=HashingEmbedder())
    with Searcher(config, embedder=HashingEmbedder()) as searcher:
        assert searcher.counts["chunks"] >= 25
        for query in ("apple fruit notes", "harvest of pears", "jam folder part 3"):
            chunks = searcher.search(query, 200, mode=mode)
            deduped, seen = [], set()
            for hit in chunks:
                if hit.doc_id not in seen:
                    seen.add(hit.doc_id)
                    deduped.append((hit.chunk_id, round(hit.score, 6)))
            per_doc = searcher.search(query, 4, mode=mode, per_doc=True)
            assert [(h.chunk_id, round(h.score, 6)) for h in per_doc] == deduped[:4]


# -- the keyword cache ranks as FTS5 does ------------------------------------------------


def test_the_keyword_cache_scores_every_query_as_fts5_does(tmp_path):
    """Short chunks (under 24 terms, where tantivy stores lengths exactly): the cache's BM25
    scores are FTS5's, with its stems ("technology" matches "technological", as SQLite's
    Porter stems them and Snowball's does not) and its idf (a word in most chunks counts
    almost nothing)."""
    rows = [
        {"_id": "tech", "title": "", "text": "Technological change in the library"},
        {"_id": "method", "title": "", "text": "A methodology for possibly faster assembly"},
        {"_id": "ms", "title": "", "text": "Treating MS in the US with new drugs"},
        *[{"_id": f"common{i}", "title": "", "text": f"system number {i} of the library system"} for i in range(9)],
    ]
    write(tmp_path / "docs", "corpus.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    config = Config(index_dir=tmp_path / "idx")
    build_index(config, tmp_path / "docs", embedder=HashingEmbedder())
    queries = ["technology library", "methodologies possible assemblies", "ms us drugs", "library system", "systems"]
    with Searcher(config, embedder=HashingEmbedder()) as searcher:
        cache = searcher.engine.keywords  # type: ignore[attr-defined]
        assert cache is not None
        cached = [searcher.engine.keyword(q, 20, None) for q in queries]
        searcher.engine.keywords = None  # type: ignore[attr-defined]  # the FTS5 path
        fts5 = [searcher.engine.keyword(q, 20, None) for q in queries]
        keys = {c: r.key for c, r in searcher.records.chunk_records([c for hits in fts5 for c, _ in hits]).items()}
    for query, got, want in zip(queries, cached, fts5):
        assert [c for c, _ in got] == [c for c, _ in want], query
        assert [s for _, s in got] == pytest.approx([s for _, s in want], rel=1e-4), query
    assert keys[cached[0][0][0]] == "tech" and keys[cached[1][0][0]] == "method" and keys[cached[2][0][0]] == "ms"
    # "library" and "system" are in 10 and 9 of 12 chunks: FTS5 gives them almost no
    # weight, and so does the cache (tantivy's own idf would give each ln 2 at least)
    assert 0 < cached[3][0][1] < 1e-3


def test_a_keyword_cache_of_older_terms_is_made_again(tmp_path):
    from searchcore import keywords

    write(tmp_path / "docs", "a.txt", "Pathology of the heart\n")
    config = Config(index_dir=tmp_path / "idx")
    summary = build_index(config, tmp_path / "docs", embedder=HashingEmbedder())
    mark = tmp_path / "idx" / keywords.KEYWORDS_DIR / "generation"
    mark.write_text(f"{summary.generation} 0")  # as a version before TERMS_VERSION wrote it
    with Searcher(config, embedder=HashingEmbedder()) as searcher:
        assert searcher.engine.keywords is None  # type: ignore[attr-defined]  # FTS5 answers meanwhile
        assert searcher.search("pathologies", 1, mode="bm25")[0].path.endswith("a.txt")
    build_index(config, tmp_path / "docs", embedder=HashingEmbedder())  # nothing changed: the cache is remade
    assert keywords.generation_of(tmp_path / "idx") == summary.generation
    with Searcher(config, embedder=HashingEmbedder()) as searcher:
        assert searcher.engine.keywords is not None  # type: ignore[attr-defined]
        assert searcher.search("pathologies", 1, mode="bm25")[0].path.endswith("a.txt")


EVAL_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "eval-data"


@pytest.mark.slow
@pytest.mark.skipif(not (EVAL_DATA / "cranfield").is_dir(), reason="no shared eval-data folder beside the project")
def test_the_quality_guard_holds_on_cranfield_and_med(tmp_path):
    """bench/quality.py on the two small collections: no mode below the committed baseline
    by more than its tolerance (a ranking regression turns CI red)."""
    import subprocess
    import sys

    bench = Path(__file__).resolve().parent.parent / "bench" / "quality.py"
    done = subprocess.run(
        [sys.executable, str(bench), str(EVAL_DATA), "--collections", "cranfield", "med", "--work", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "cranfield" in done.stdout and "med" in done.stdout and "BELOW BASELINE" not in done.stdout


def test_snippet_marks_found_by_term_starts_are_the_marks_of_stemming_every_word():
    """The light stem's fast path (searching for where the terms begin) marks exactly the
    words that stemming every word of the passage marks."""
    import random

    from searchcore import snippets

    def every_word(word: str) -> str:  # not the light stem itself: the general path
        return snippets._stem(word)

    words = (
        "study studies studied studying cell cells cellular tumour tumours x_cell 2cells Ünïcode café "
        "party parties partly policy policies reply replies"
    ).split()
    rng = random.Random(7)
    for _ in range(300):
        text = " ".join(
            rng.choice(words) + rng.choice(["", ",", ".", "'s", "_", "-"]) for _ in range(rng.randint(1, 40))
        )
        query = " ".join(rng.sample(words, rng.randint(1, 4)))
        terms = snippets.query_terms(query)
        assert snippets._matches(text, terms, snippets._stem) == snippets._matches(text, terms, every_word), (
            text,
            query,
        )


def test_query_stems_stay_fts5s_when_the_scratch_tables_are_reused_and_remade(monkeypatch):
    from searchcore.store import stemming

    monkeypatch.setattr(stemming, "_TABLE_USES", 3)  # remade every third call
    reused = stemming.Stems()
    batches = [["running", "studies"], ["technology", "ms"], ["cats", "running"], ["happily"], ["pathology", "us"]]
    for batch in batches:
        assert reused.of(batch) == stemming.Stems().of(batch)
    assert reused.of(["technology", "studies"]) == ["technolog", "studi"]


def test_bench_query_times_two_checkouts_in_one_run(tmp_path):
    # bench/query.py --against: both checkouts in worker processes, the answers compared.
    import json
    import subprocess
    import sys
    from pathlib import Path

    from click.testing import CliRunner

    from searchctl.cli import cli

    root = Path(__file__).resolve().parents[1]
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, topic in enumerate(["cells divide", "stars burn hydrogen", "rivers reach the sea"]):
        (docs / f"{i}.md").write_text(f"# Note {i}\n\nWhere {topic}, notes follow.\n")
    index = tmp_path / "idx"
    done = CliRunner().invoke(cli, ["index", str(docs), "--index", str(index), "--model", "hash:64", "--no-progress"])
    assert done.exit_code == 0, done.output
    queries = tmp_path / "queries.jsonl"
    queries.write_text("".join(json.dumps({"_id": str(i), "text": t}) + "\n" for i, t in enumerate(["cells", "sea"])))
    bench = root / "bench" / "query.py"
    run = [sys.executable, str(bench), str(index), str(queries), "--rounds", "2", "--against", str(root), "--json"]
    out = subprocess.run(run, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout)
    assert found["same"] == found["of"] == 4
    assert set(found["figures"]) == {"this checkout", "against"}
    assert all(f["ms"]["hybrid"]["p50"] > 0 for f in found["figures"].values())
