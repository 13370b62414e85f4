"""A large index on one machine: build indexes of 100k and 1M chunks, measure them.

    python bench/scale.py ../shared/eval-data [--sizes 100000 1000000] [--workdir DIR] [--json]

Embedding a million real chunks takes hours on two cores, so each index is a real base
plus derived chunks, written through the library's own write path:

1. The base: SciFact's and Cranfield's corpora (whichever are under DATA), indexed with
   `searchctl index DATA/NAME/corpus.jsonl` (the default model and backend) into
   WORKDIR/base-NAME, once (a later run reuses them).
2. The index of N chunks (WORKDIR/scale-N, made afresh): every base document as it is,
   then derived documents until N chunks: each copies a base document picked at random;
   each of its chunks keeps the parent chunk's length in words, its words drawn at random
   from the parent chunk's, and its vector is the parent chunk's plus Gaussian noise of
   norm 0.5, normalised again (cosine to the parent about 0.9). Documents go in with
   ``Store.put_document`` in transactions of 5,000, each bumping the generation; then
   the keyword cache and the vector file are built from index.db (``keywords.rebuild``,
   ``vector_files.rebuild``: what a writer does when it has no earlier file to start from).

First, at each base's own size (SciFact 10,174 chunks, Cranfield 1,883), on a copy of its
index with the keyword cache written: nDCG@10 (best chunk per document, k=100, the test
split) and hybrid p50/p99 of `Searcher.search(q, 10)` in process, three ways in the same
run: the old path (FTS5 keywords, exact vectors), the keyword cache with exact vectors
(what `--ann auto` gives at this size), and the keyword cache with HNSW forced.

Then, with nothing else running, against the data sets' real queries (SciFact test and
Cranfield, embedded by the index's model):

- dense top-10 through the engine: p50/p99 of the index's own vector file (HNSW above
  50k chunks) and, beside it, of exact search over the same vectors in the same run;
  recall@10 of the first against the second;
- hybrid end to end (`Searcher.search(q, 10)`, query encoding included): p50/p99 with the
  keyword cache and, beside it, the old path (FTS5 keywords, exact vectors) on the first
  60 queries; filtered to one base corpus's file (a small allow-list) and to the derived
  documents (nearly all), on the first 60 queries;
- opening: a Searcher's open and first answer in process; `searchctl serve` from start to
  its first answered `/search`, and its resident memory after every query went through it;
- adding 1,000 chunks: `searchctl index` of a new folder of 1,000 files (texts of base
  chunks), then deleting one file and running again: seconds of each, and whether the
  next query still finds the deleted file;
- `searchctl check`: seconds; disk: index.db, keywords/ and the vector file against raw
  vectors (N x dim float32) plus text.
"""

from __future__ import annotations

import sys

sys.path = [p for p in sys.path if p not in ("", __file__.rsplit("/", 1)[0])]

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from searchcore.meta import IndexMeta

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BATCH_DOCS = 5_000
NOISE = 0.5
OLD_PATH_QUERIES = 60


def ms(times: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(times, 50)), 2), "p99_ms": round(float(np.percentile(times, 99)), 2)}


def searchctl(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "searchctl", *args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"searchctl {' '.join(args)} failed: {done.stderr.strip()}")
    return time.perf_counter() - started, done


def bases(data: Path, work: Path) -> list[Path]:
    out = []
    for name in ("scifact", "cranfield"):
        corpus = data / name / "corpus.jsonl"
        if not corpus.exists():
            continue
        folder = work / f"base-{name}"
        if not (folder / "index.db").exists():
            seconds, _ = searchctl("index", str(corpus.resolve()), "--index", str(folder), "--no-progress")
            print(f"base {name}: indexed in {seconds:.0f} s", flush=True)
        out.append(folder)
    if not out:
        raise SystemExit(f"no scifact/ or cranfield/ corpus under {data}")
    return out


def queries_of(data: Path) -> list[str]:
    from searchcore.evaluate import load_beir

    out: list[str] = []
    for name, split in (("scifact", "test"), ("cranfield", "test")):
        if (data / name / "queries.jsonl").exists():
            found, _ = load_beir(data / name, split)
            out += list(found.values())
    return out


class Chunk:
    def __init__(self, text: str, start: int = 0):
        self.text = text
        self.char_start, self.char_end = start, start + len(text)
        self.line_start = self.line_end = 1


def base_documents(folders: list[Path]) -> tuple[list[dict], dict[str, str]]:
    """Every base document: path, key, title, chunks (texts) and their vectors."""
    from searchcore.meta import IndexMeta
    from searchcore.store import Store

    docs, meta = [], IndexMeta()
    for folder in folders:
        with Store.open(folder) as store:  # a writer's open: brings an older schema up to date
            meta = store.meta()
            listed = store.document_list()
            chunks = store.document_chunks([d.doc_id for d in listed])
            vectors = store.vectors_of([c for rows in chunks.values() for c, _ in rows])
            for doc_id, key, title, path, _kind in listed:
                rows = chunks[doc_id]
                if rows:
                    docs.append({"path": f"{path}", "key": key, "title": title, "texts": [t for _, t in rows],
                                 "vectors": np.stack([vectors[c] for c, _ in rows])})  # fmt: skip
    return docs, meta


def build(target: Path, size: int, docs: list[dict], meta: IndexMeta, seed: int = 0) -> dict:
    from searchcore.store import Store

    rng = np.random.default_rng(seed)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    timings: dict = {}
    started = time.perf_counter()
    chunks = 0
    with Store.open(target, create=True) as store:
        with store.write():
            store.update_meta(model=meta.model, backend=meta.backend, dim=meta.dim, normalized=meta.normalized,
                              chunking=meta.chunking, model_revision=meta.model_revision,
                              faiss_factory=meta.faiss_factory)  # fmt: skip
        derived = 0
        while chunks < size:
            with store.write():
                for _ in range(BATCH_DOCS):
                    if chunks >= size:
                        break
                    if derived < len(docs):  # the real base first
                        doc = docs[derived]
                        path, key, texts, vectors = doc["path"], doc["key"], doc["texts"], doc["vectors"]
                    else:
                        doc = docs[int(rng.integers(len(docs)))]
                        path, key = f"/scale/derived/{derived:07d}.txt", ""
                        texts = [" ".join(rng.choice(t.split(), len(t.split()))) for t in doc["texts"]]
                        noise = rng.standard_normal(doc["vectors"].shape) * (NOISE / np.sqrt(doc["vectors"].shape[1]))
                        vectors = doc["vectors"] + noise
                        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                    texts, vectors = texts[: size - chunks], vectors[: size - chunks]
                    kind = "jsonl" if key else "text"
                    file_id = store.ensure_file(path, kind)
                    offsets = np.cumsum([0] + [len(t) + 1 for t in texts])
                    _, added = store.put_document(file_id, key, title=doc["title"], hash=f"h{derived}", metadata={},
                                                  chunks=[Chunk(t, int(o)) for t, o in zip(texts, offsets)],
                                                  vectors=vectors.astype(np.float32))  # fmt: skip
                    store.finish_file(file_id, kind=kind, hash=f"f{derived}", size=1, mtime_ns=1)
                    chunks += len(added)
                    derived += 1
                store.bump_generation()
        timings["sqlite_s"] = round(time.perf_counter() - started, 1)
        from searchcore import keywords, vector_files

        step = time.perf_counter()
        keywords.rebuild(store, target)
        timings["keywords_s"] = round(time.perf_counter() - step, 1)
        step = time.perf_counter()
        vector_files.rebuild(store, target)
        timings["vectors_s"] = round(time.perf_counter() - step, 1)
        counts = store.counts()
    timings.update(chunks=counts["chunks"], documents=counts["documents"])
    return timings


def disk(target: Path, dim: int) -> dict:
    from searchcore.store import Store

    with Store.open(target, reader=True) as store:
        text = sum(len(t.encode()) for rows in store.keyword_rows() for _, _, t in rows)
        chunks = store.counts()["chunks"]
    sizes = {"index_db": (target / "index.db").stat().st_size,
             "keywords": sum(p.stat().st_size for p in (target / "keywords").iterdir()),
             "vectors": sum(p.stat().st_size for p in target.glob("vectors-*.faiss"))}  # fmt: skip
    raw = chunks * dim * 4 + text
    return {**{k: round(v / 2**20) for k, v in sizes.items()}, "raw_mb": round(raw / 2**20),
            "ratio": round(sum(sizes.values()) / raw, 2)}  # fmt: skip


def queries_bench(target: Path, queries: list[str], base_path: str) -> dict:
    """``base_path``: the file of one base corpus, for a filter that keeps only its chunks."""
    from searchcore.config import Config
    from searchcore.options import Filters
    from searchcore.search import Searcher
    from searchcore.store import Store
    from searchcore.vectors import VectorIndex

    out: dict = {}
    started = time.perf_counter()
    with Searcher(Config(index_dir=target)) as searcher:
        searcher.search(queries[0], 10)
        out["open_and_first_answer_s"] = round(time.perf_counter() - started, 2)
        engine = searcher.engine
        out["kind"] = engine.index.kind
        vectors = searcher.embedder.embed(queries)
        with Store.open(target, reader=True) as store:
            ids, matrix = store.all_vectors(vectors.shape[1])
        exact = VectorIndex.build(ids, matrix)
        del matrix
        for name, index in (("ann", engine.index), ("exact", exact)):
            times, found = [], []
            for v in vectors:
                step = time.perf_counter()
                _, got = index.search(v, 10)
                times.append((time.perf_counter() - step) * 1000)
                found.append(got[0])
            out[f"dense_{name}"] = ms(times)
            out[f"_found_{name}"] = found
        recall = [len(set(a) & set(e)) / 10 for a, e in zip(out.pop("_found_ann"), out.pop("_found_exact"))]
        out["dense_recall_at_10"] = round(float(np.mean(recall)), 4)
        times = []
        for q in queries:
            step = time.perf_counter()
            searcher.search(q, 10)
            times.append((time.perf_counter() - step) * 1000)
        out["hybrid"] = ms(times)
        for name, filters in (("filtered_one_corpus", Filters(path=base_path)),
                              ("filtered_derived", Filters(path="/scale/derived/"))):  # fmt: skip
            times = []
            for q in queries[:OLD_PATH_QUERIES]:
                step = time.perf_counter()
                searcher.search(q, 10, filters=filters)
                times.append((time.perf_counter() - step) * 1000)
            out[f"hybrid_{name}"] = ms(times)
        engine.keywords, engine.index = None, exact  # the old path: FTS5 and an exact scan
        times = []
        for q in queries[:OLD_PATH_QUERIES]:
            step = time.perf_counter()
            searcher.search(q, 10)
            times.append((time.perf_counter() - step) * 1000)
        out["hybrid_old_path"] = ms(times)
    return out


def collection_bench(folder: Path, data: Path, work: Path) -> dict:
    """nDCG@10 and hybrid latency at the base's own size: old path, new path, HNSW forced."""
    from searchcore import ann, keywords
    from searchcore.config import Config
    from searchcore.evaluate import evaluate, load_beir
    from searchcore.search import Searcher
    from searchcore.store import Store
    from searchcore.vectors import VectorIndex

    name = folder.name.removeprefix("base-")
    copy = work / f"collection-{name}"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(folder, copy)
    with Store.open(copy) as store:
        keywords.rebuild(store, copy)
    queries, qrels = load_beir(data / name, "test")
    out: dict = {"collection": name}
    with Searcher(Config(index_dir=copy)) as searcher:
        engine = searcher.engine
        cache, exact = engine.keywords, engine.index
        with Store.open(copy, reader=True) as store:
            ids, matrix = store.all_vectors(exact.dim)
        hnsw = VectorIndex.build(ids, matrix, ann.factory_for("hnsw", len(ids), None))
        for way, (words, vectors) in {"old_path": (None, exact), "new_path": (cache, exact),
                                      "hnsw_forced": (cache, hnsw)}.items():  # fmt: skip
            engine.keywords, engine.index = words, vectors
            searcher.search("warm up", 10)
            ndcg = evaluate(searcher, queries, qrels).metrics["ndcg@10"]
            times = []
            for text in queries.values():
                step = time.perf_counter()
                searcher.search(text, 10)
                times.append((time.perf_counter() - step) * 1000)
            out[way] = {"ndcg@10": round(ndcg, 4), **ms(times)}
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_bench(target: Path, queries: list[str]) -> dict:
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "searchctl", "serve", "--index", str(target), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    out: dict = {}
    try:
        path = "/search?" + urllib.parse.urlencode({"q": queries[0], "k": 10})
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", path)
                answer = conn.getresponse()
                answer.read()
                if answer.status == 200:
                    break
            except OSError:
                time.sleep(0.05)
            if time.perf_counter() - started > 300:
                raise SystemExit("searchctl serve did not answer within 300 s")
        out["serve_first_answer_s"] = round(time.perf_counter() - started, 2)
        times = []
        for q in queries:
            step = time.perf_counter()
            conn.request("GET", "/search?" + urllib.parse.urlencode({"q": q, "k": 10}))
            conn.getresponse().read()
            times.append((time.perf_counter() - step) * 1000)
        out["http_hybrid"] = ms(times)
        with open(f"/proc/{proc.pid}/status") as fh:
            rss = next(int(line.split()[1]) for line in fh if line.startswith("VmRSS"))
        out["serve_rss_mb"] = round(rss / 1024)
    finally:
        proc.terminate()
        proc.wait(30)
    return out


def add_bench(target: Path, docs: list[dict], work: Path, seed: int = 1) -> dict:
    from searchcore.config import Config
    from searchcore.search import Searcher

    rng = np.random.default_rng(seed)
    folder = work / f"add-{target.name}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    texts = [t for d in docs for t in d["texts"]]
    for i, j in enumerate(rng.choice(len(texts), 1000, replace=False)):
        (folder / f"new{i:04d}.txt").write_text(texts[j] + "\n")
    seconds, done = searchctl("index", str(folder), "--index", str(target), "--no-progress", "--json")
    summary = json.loads(done.stdout)
    victim = folder / "new0000.txt"
    text = victim.read_text()
    victim.unlink()
    removed_s, _ = searchctl("index", str(folder), "--index", str(target), "--no-progress")
    with Searcher(Config(index_dir=target)) as searcher:
        still = any(h.path == str(victim) for h in searcher.search(text, 10))
    return {"add_1000_s": round(seconds, 1), "chunks_added": summary.get("chunks_embedded"),
            "delete_one_s": round(removed_s, 1), "deleted_still_found": still}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="the folder holding scifact/ and cranfield/ (BEIR layout)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/searchctl-scale"))
    parser.add_argument("--reuse", action="store_true", help="measure an index of that size left by an earlier run")
    parser.add_argument("--no-collections", action="store_true", help="skip the step at the data sets' own size")
    parser.add_argument("--json", action="store_true")
    opts = parser.parse_args()
    opts.workdir.mkdir(parents=True, exist_ok=True)
    folders = bases(opts.data, opts.workdir)
    docs, meta = base_documents(folders)
    queries = queries_of(opts.data)
    report: list = []
    if not opts.no_collections:
        for folder in folders:
            found = collection_bench(folder, opts.data, opts.workdir)
            print(json.dumps(found), flush=True)
            report.append(found)
    for size in opts.sizes:
        target = opts.workdir / f"scale-{size}"
        row: dict = {"size": size}
        if opts.reuse and (target / "index.db").exists():
            row["build"] = "reused"
        else:
            row["build"] = build(target, size, docs, meta)
        print(f"{size:,} chunks: build {row['build']}", flush=True)
        row["disk"] = disk(target, int(meta.dim or 0))
        found = queries_bench(target, queries, docs[0]["path"])
        print(f"  {found}", flush=True)
        row.update(found)
        found = serve_bench(target, queries)
        print(f"  {found}", flush=True)
        row.update(found)
        seconds, done = searchctl("check", "--index", str(target))
        row["check_s"] = round(seconds, 1)
        row["check_recall"] = [line for line in done.stdout.splitlines() if "recall@10" in line]
        row.update(add_bench(target, docs, opts.workdir))
        print(json.dumps(row, indent=None if not opts.json else 2), flush=True)
        report.append(row)
    if opts.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
