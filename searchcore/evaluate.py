"""Retrieval quality of an index against relevance judgements.

Reads queries and qrels (BEIR layout: ``queries.jsonl`` with ``_id``/``text``,
``qrels/<split>.tsv`` with ``query-id``, ``corpus-id``, ``score``), runs every judged
query through a Searcher at document level (best chunk per document; a document is a
record id, or a file path for whole files), and scores the run with trec_eval (through
pytrec_eval): nDCG@10, MRR@10, Recall@10, Recall@100 and MAP. The fine-tuning commands
reuse ``evaluate`` for their before/after figures.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import UsageError
from .search import Searcher

__all__ = ["EvalResult", "evaluate", "resolve_judged", "load_beir", "load_queries", "load_qrels", "METRICS"]

METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100", "map")


@dataclass
class EvalResult:
    label: str
    metrics: dict[str, float]
    queries: int
    ms_per_query: float
    extra: dict = field(default_factory=dict)  # e.g. a model's dimension and encode speed
    warnings: list[str] = field(default_factory=list)  # e.g. judged ids that match no document

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            **self.metrics,
            "queries": self.queries,
            "ms_per_query": self.ms_per_query,
            **self.extra,
        }


def load_queries(path: Path) -> dict[str, str]:
    queries = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"no queries file at {path}") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            queries[str(record.get("_id", record.get("id")))] = record["text"]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{path} line {lineno}: not a query record with _id and text ({exc})") from None
    return queries


def load_qrels(path: Path) -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = csv.reader(fh, delimiter="\t")
            for lineno, row in enumerate(rows, 1):
                if not row or (lineno == 1 and row[0] == "query-id"):
                    continue
                if len(row) < 3:
                    raise UsageError(f"{path} line {lineno}: expected query-id, corpus-id, score")
                try:
                    qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
                except ValueError:
                    raise UsageError(f"{path} line {lineno}: the score {row[2]!r} is not a number") from None
    except FileNotFoundError:
        raise UsageError(f"no qrels file at {path}") from None
    return qrels


def load_beir(folder: Path, split: str) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        splits = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        raise UsageError(f"no split {split!r} in {folder} (have: {', '.join(splits) or 'none'})")
    return load_queries(folder / "queries.jsonl"), load_qrels(qrels_path)


def resolve_judged(searcher: Searcher, qrels: dict[str, dict[str, int]]) -> tuple[dict, list[str]]:
    """The qrels with each judged id as the index names it, and warnings. A judged id is a
    record id or a file path: absolute, or relative to the current folder or to a folder
    the index was built from (as `searchctl query` prints it)."""
    import os

    keys, paths = searcher.records.document_ids()
    roots = searcher.records.meta().roots

    def resolve(doc_id: str) -> str | None:
        if doc_id in keys or doc_id in paths:
            return doc_id
        for base in (os.getcwd(), *roots):
            candidate = os.path.normpath(os.path.join(base, doc_id))
            if candidate in paths:
                return candidate
        return None

    out: dict[str, dict[str, int]] = {}
    unmatched: list[str] = []
    for qid, docs in qrels.items():
        out[qid] = {}
        for doc_id, grade in docs.items():
            found = resolve(doc_id)
            if found is None:
                unmatched.append(doc_id)
                found = doc_id
            out[qid][found] = grade
    warnings = []
    if unmatched:
        total = sum(len(d) for d in qrels.values())
        example = ", ".join(repr(u) for u in list(dict.fromkeys(unmatched))[:3])
        warnings.append(
            f"{len(unmatched):,} of {total:,} judged ids match no document in the index (e.g. {example}); "
            "a judged id is a record id or a file path, absolute or relative to the current folder or an indexed folder"
        )
    return out, warnings


def evaluate(
    searcher: Searcher,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    *,
    mode: str = "hybrid",
    fusion: str = "weighted",
    feedback: bool = True,
    depth: int = 100,
    label: str | None = None,
) -> EvalResult:
    import pytrec_eval

    qrels, warnings = resolve_judged(searcher, qrels)
    judged = {qid: text for qid, text in queries.items() if qid in qrels and text.strip()}
    if not judged:
        raise UsageError("none of the queries has a judgement in the qrels; check that their ids match")
    run: dict[str, dict[str, float]] = {}
    started = time.perf_counter()
    for qid, text in judged.items():
        hits = searcher.search(text, depth, per_doc=True, mode=mode, fusion=fusion, feedback=feedback)
        # trec_eval ranks by score: give it the searcher's order, whatever the scores are.
        run[qid] = {(h.key or h.path): float(depth - rank) for rank, h in enumerate(hits)}
    elapsed = time.perf_counter() - started
    judged_qrels = {qid: qrels[qid] for qid in judged}
    measures = {"ndcg_cut.10", "recall.10", "recall.100", "map"}
    full = pytrec_eval.RelevanceEvaluator(judged_qrels, measures).evaluate(run)
    top10 = {qid: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:10]) for qid, docs in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(judged_qrels, {"recip_rank"}).evaluate(top10)

    def mean(table: dict, key: str) -> float:
        return float(np.mean([table[qid][key] if qid in table else 0.0 for qid in judged]))

    metrics = {
        "ndcg@10": mean(full, "ndcg_cut_10"),
        "mrr@10": mean(rr, "recip_rank"),
        "recall@10": mean(full, "recall_10"),
        "recall@100": mean(full, "recall_100"),
        "map": mean(full, "map"),
    }
    return EvalResult(label or mode, metrics, len(judged), elapsed * 1000 / len(judged), warnings=warnings)
