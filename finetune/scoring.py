"""How a fine-tuned embedder is scored against its base, before and after training.

Either on a held-out 10 % of the pairs' queries, ranked against every passage of the
pairs (in memory), or on a BEIR split over an index of its corpus with the same library
function as ``searchctl eval``; the "after" side then scores a copy of the index
re-embedded with the new model, made by a function the caller hands in, so the original
index is untouched and this package never imports the indexer.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from searchcore.config import Config
from searchcore.embedder import Embedder
from searchcore.errors import UsageError

from .pairs import Pair

__all__ = ["Evaluation", "Reembed", "evaluation_for", "score_index", "score_reembedded"]

# What re-embeds a copy of an index with another model: ``(source, target, model, *,
# cache_dir, progress)``; the caller hands it in (``indexer.reindex.reembedded_copy``),
# so the trainer never imports the indexer.
Reembed = Callable[..., object]


def _held_out(pairs: list[Pair], seed: int, fraction: float = 0.1) -> tuple[list[Pair], list[Pair]]:
    queries = sorted({p.query for p in pairs})
    random.Random(seed).shuffle(queries)
    n = max(1, int(round(len(queries) * fraction)))
    if len(queries) - n < 2:
        raise UsageError(f"{len(queries)} distinct queries are too few to hold some out; give more pairs")
    held = set(queries[:n])
    return [p for p in pairs if p.query not in held], [p for p in pairs if p.query in held]


def _score_in_memory(embedder: Embedder, held: list[Pair], pool: list[str]) -> dict[str, float]:
    """Held-out queries ranked against every passage of the pairs: nDCG@10, MRR@10, R@10."""
    import pytrec_eval

    pool_ids = {text: f"p{i}" for i, text in enumerate(pool)}
    queries = sorted({p.query for p in held})
    qrels: dict[str, dict[str, int]] = {}
    for p in held:
        qrels.setdefault(f"q{queries.index(p.query)}", {})[pool_ids[p.positive]] = 1
    passages = embedder.embed(pool)
    scores = embedder.embed(queries) @ passages.T
    run = {}
    for i, row in enumerate(scores):
        top = np.argsort(-row)[:100]
        run[f"q{i}"] = {f"p{j}": float(100 - rank) for rank, j in enumerate(top)}
    table = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10"}).evaluate(run)
    top10 = {q: dict(sorted(d.items(), key=lambda kv: -kv[1])[:10]) for q, d in run.items()}
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    return {
        "dense nDCG@10": float(np.mean([t["ndcg_cut_10"] for t in table.values()])),
        "dense MRR@10": float(np.mean([t["recip_rank"] for t in rr.values()])),
        "dense R@10": float(np.mean([t["recall_10"] for t in table.values()])),
    }


def score_index(index_dir: Path, queries, qrels, config: Config) -> dict[str, float]:
    from searchcore.evaluate import evaluate
    from searchcore.search import Searcher

    out = {}
    with Searcher(Config(index_dir=index_dir, cache_dir=config.cache_dir)) as searcher:
        for mode in ("dense", "hybrid"):
            metrics = evaluate(searcher, queries, qrels, mode=mode).metrics
            out[f"{mode} nDCG@10"] = metrics["ndcg@10"]
            out[f"{mode} R@100"] = metrics["recall@100"]
    return out


@dataclass
class Evaluation:
    """How before and after are scored: held-out pairs, or a BEIR split over an index."""

    description: str
    held: list[Pair] = field(default_factory=list)
    pool: list[str] = field(default_factory=list)
    beir: tuple[dict[str, str], dict[str, dict[str, int]]] | None = None

    def score_model(self, model: str) -> dict[str, float]:
        return _score_in_memory(Embedder(model, backend="torch"), self.held, self.pool)


def evaluation_for(pairs: list[Pair], seed: int, eval_beir, index_dir) -> tuple[list[Pair], Evaluation]:
    """(the pairs to train on, how to score)."""
    if eval_beir is None:
        train_pairs, held = _held_out(pairs, seed)
        pool = list(dict.fromkeys([p.positive for p in pairs] + [p.negative for p in pairs if p.negative]))
        description = f"{len({p.query for p in held})} held-out queries ranked against {len(pool):,} passages"
        return train_pairs, Evaluation(description, held, pool)
    from searchcore.evaluate import load_beir

    beir_queries, beir_qrels = load_beir(*eval_beir)
    description = f"{eval_beir[0]} split {eval_beir[1]} ({len(beir_qrels)} queries), index {index_dir}"
    return pairs, Evaluation(description, beir=(beir_queries, beir_qrels))


def score_reembedded(index_dir: Path, model: Path, evaluation: Evaluation, reembed: Reembed, config, progress):
    """Scores of ``model`` on a copy of the index re-embedded with it (the index is untouched)."""
    assert evaluation.beir is not None
    scratch = Path(tempfile.mkdtemp(prefix="searchctl-eval-"))
    try:
        reembed(index_dir, scratch / "idx", str(model.resolve()), cache_dir=config.cache_dir, progress=progress)
        return score_index(scratch / "idx", *evaluation.beir, config)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
