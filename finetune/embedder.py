"""Fine-tune the embedder on query/passage pairs, with hard negatives from the index.

Training is sentence-transformers' own trainer with MultipleNegativesRankingLoss: every
other passage of a batch is a negative for a query, and no batch holds the same text
twice (a duplicate would be a false negative). Hard negatives come from the current
index: for each query, the best-ranked passages (hybrid search, one per document) that
are not among its positives and score clearly below its positive (a relative margin, so
an unjudged but relevant passage is not taught as irrelevant). A positive that is a
document of the index becomes its chunk the query is closest to, the text search will
rank. Training autocasts to bfloat16 where the CPU has it natively. A fixed seed makes
a run repeatable.

Quality is measured before and after with the same library function as
``searchctl eval``: on a BEIR split over an index of its corpus (the index is copied and
re-embedded with the new model, the original is untouched), or else on a held-out 10 %
of the queries, ranked against every passage of the pairs. A model that is not better
than its base is reported as such, and the command fails unless forced.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from searchcore.config import Config
from searchcore.embedder import (
    DEFAULT_MODEL,
    Embedder,
    canonical_model_name,
    embedded_text,
    model_location,
    short_title,
)
from searchcore.errors import SearchctlError, UsageError

from .pairs import Pair

__all__ = ["EmbedderResult", "mine_hard_negatives", "train_embedder", "NotBetterError"]

MARGIN = 0.05  # a hard negative scores below (1 - MARGIN) x its query's positive
MINING_DEPTH = 30


class NotBetterError(SearchctlError):
    """The fine-tuned model does not beat its base; the folder is still written."""


@dataclass
class EmbedderResult:
    out: str
    base: str
    pairs: int
    hard_negatives: int
    seconds_training: float
    seconds_total: float
    evaluation: str
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def primary(self) -> str:
        return "dense nDCG@10"

    @property
    def improved(self) -> bool:
        return self.after.get(self.primary, 0.0) > self.before.get(self.primary, 0.0)

    def to_dict(self) -> dict:
        return {**asdict(self), "improved": self.improved}


# -- hard negatives -----------------------------------------------------------------------


def _same_text(a: str, b: str) -> bool:
    a, b = " ".join(a.split()), " ".join(b.split())
    return a in b or b in a


def mine_hard_negatives(
    pairs: list[Pair], searcher, *, depth: int = MINING_DEPTH, margin: float = MARGIN, progress: bool = False
) -> tuple[list[Pair], int]:
    """Each pair with a hard negative from ``searcher``'s index where one qualifies."""
    from tqdm import tqdm

    positives: dict[str, list[Pair]] = {}
    for pair in pairs:
        positives.setdefault(pair.query, []).append(pair)
    queries = list(positives)
    embedder = searcher.embedder
    positive_texts = list(dict.fromkeys(p.positive for p in pairs))
    positive_vectors = dict(zip(positive_texts, embedder.embed(positive_texts)))
    negative_of: dict[tuple[str, str], str] = {}
    with tqdm(total=len(queries), desc="mining hard negatives", unit="query", disable=not progress) as bar:
        for start in range(0, len(queries), 64):
            batch = queries[start : start + 64]
            vectors = embedder.embed(batch)
            results = searcher.search_many(batch, depth, per_doc=True, mode="hybrid")
            for query, vector, hits in zip(batch, vectors, results):
                mine = positives[query]
                ids = {p.positive_id for p in mine if p.positive_id}
                candidates = [
                    hit
                    for hit in hits
                    if (hit.key or hit.path) not in ids and not any(_same_text(hit.text, p.positive) for p in mine)
                ]
                for pair in mine:
                    # Below the pair's own positive by the margin: closer may be relevant, unjudged.
                    floor = float(positive_vectors[pair.positive] @ vector) * (1 - margin)
                    hit = next((h for h in candidates if h.score < floor), None)
                    if hit is not None:
                        negative_of[(query, pair.positive)] = embedded_text(hit.title, hit.text)
            bar.update(len(batch))
    out = [
        p
        if p.negative or (p.query, p.positive) not in negative_of
        else Pair(**{**asdict(p), "negative": negative_of[(p.query, p.positive)]})
        for p in pairs
    ]
    return out, sum(1 for p in out if p.negative)


def indexed_positives(pairs: list[Pair], searcher) -> tuple[list[Pair], int]:
    """Each pair whose positive is a document of the index, by id, gets as its positive the
    chunk of that document its query is closest to, as the index embeds it (title first).

    Search ranks chunks, and a long document's evidence is often past the first chunk,
    which is all of it the model would see if trained on the whole text (it truncates).
    Documents in one chunk, ids found in several files and pairs without an id keep their
    text. Returns the pairs and how many positives became chunks."""
    store, embedder = searcher.store, searcher.embedder
    by_key = store.documents_by_key(p.positive_id for p in pairs)
    docs = {key: found[0] for key, found in by_key.items() if len(found) == 1}
    chunks = store.document_chunks([doc_id for doc_id, _ in docs.values()])
    several = {key: chunks[doc_id] for key, (doc_id, _) in docs.items() if len(chunks[doc_id]) > 1}
    if not several:
        return pairs, 0
    vectors = store.vectors_of([chunk_id for found in several.values() for chunk_id, _ in found])
    wanted = [p for p in pairs if p.positive_id in several]
    queries = list(dict.fromkeys(p.query for p in wanted))
    query_vectors = dict(zip(queries, embedder.embed(queries)))
    titles = {key: short_title(embedder, docs[key][1]) for key in several}
    out, changed = [], 0
    for pair in pairs:
        found = several.get(pair.positive_id)
        usable = [(chunk_id, text) for chunk_id, text in found or [] if chunk_id in vectors]
        if not usable:
            out.append(pair)
            continue
        query_vector = query_vectors[pair.query]
        _, text = max(usable, key=lambda item: float(vectors[item[0]] @ query_vector))
        out.append(Pair(**{**asdict(pair), "positive": embedded_text(titles[pair.positive_id], text)}))
        changed += 1
    return out, changed


# -- evaluation ---------------------------------------------------------------------------


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


def _score_index(index_dir: Path, queries, qrels, config: Config) -> dict[str, float]:
    from searchcore.evaluate import evaluate
    from searchcore.search import Searcher

    out = {}
    with Searcher(Config(index_dir=index_dir, cache_dir=config.cache_dir)) as searcher:
        for mode in ("dense", "hybrid"):
            metrics = evaluate(searcher, queries, qrels, mode=mode).metrics
            out[f"{mode} nDCG@10"] = metrics["ndcg@10"]
            out[f"{mode} R@100"] = metrics["recall@100"]
    return out


# -- training -----------------------------------------------------------------------------


def _no_attention_dropout(model) -> None:
    """Turn off dropout on the attention probabilities (hidden-state dropout stays).

    On a CPU it halves the time of a training step: with it, every layer draws a random
    mask over the whole batch x heads x tokens x tokens attention map, and attention
    cannot use the fused kernel that never builds that map (measured on SciFact pairs
    with hard negatives, batch 32: 20.1 s a step with it, 10.2 s without)."""
    import torch

    for module in model.modules():
        if hasattr(module, "config") and hasattr(module.config, "attention_probs_dropout_prob"):
            module.config.attention_probs_dropout_prob = 0.0
        if "Attention" in type(module).__name__:
            if isinstance(getattr(module, "dropout", None), torch.nn.Dropout):
                module.dropout.p = 0.0
            if isinstance(getattr(module, "dropout_prob", None), float):
                module.dropout_prob = 0.0


def _model_card(result: EmbedderResult) -> str:
    rows = "\n".join(
        f"| {name} | {result.before.get(name, float('nan')):.4f} | {result.after.get(name, float('nan')):.4f} |"
        for name in sorted(set(result.before) | set(result.after))
    )
    settings = "\n".join(f"- {k}: {v}" for k, v in result.settings.items())
    return f"""---
library_name: sentence-transformers
base_model: {result.base}
pipeline_tag: sentence-similarity
---

# Fine-tuned embedder

Fine-tuned from `{result.base}` with `searchctl finetune embedder` on {result.pairs:,} query/passage pairs
({result.hard_negatives:,} with a hard negative mined from the index), MultipleNegativesRankingLoss.

## Settings

{settings}

## Quality before and after

Evaluated on {result.evaluation}.

| metric | base | fine-tuned |
|---|---|---|
{rows}

Training took {result.seconds_training:.0f} s.
"""


def train_embedder(
    pairs: list[Pair],
    out: Path,
    *,
    base: str | None = None,
    epochs: float = 3.0,
    batch_size: int = 32,
    lr: float = 1e-4,
    seed: int = 42,
    hard_negatives: bool = True,
    chunk_positives: bool = True,
    precision: str = "auto",
    index_dir: Path | None = None,
    eval_beir: tuple[Path, str] | None = None,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> EmbedderResult:
    """Fine-tune ``base`` on ``pairs`` and save a sentence-transformers folder to ``out``.

    ``index_dir`` is where hard negatives are mined (and, with ``eval_beir``, the index of
    that BEIR corpus to score before and after)."""
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    try:
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers.losses import MultipleNegativesRankingLoss
        from sentence_transformers.training_args import BatchSamplers

    from .classifier import quiet_transformers
    from .precision import resolve_precision

    quiet_transformers()
    precision = resolve_precision(precision)
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / "modules.json").exists():
        raise UsageError(f"{out} exists and is not a model folder; pick a new --out")
    if len({p.query for p in pairs}) < 2:
        raise UsageError("fine-tuning needs pairs with at least two different queries")
    config = Config(index_dir=index_dir or Path(".searchctl"), cache_dir=cache_dir)
    # FAISS cuts the OpenMP pool it shares with torch to one thread (see searchcore.vectors);
    # training gets every core back once the searcher is done.
    threads = torch.get_num_threads()
    searcher = None
    have_index = index_dir is not None and (Path(index_dir) / "index.db").exists()
    if (hard_negatives or eval_beir) and not have_index:
        raise UsageError(
            "hard negatives and --eval-beir need the index of the corpus (--index DIR; build it with "
            "`searchctl index`), or pass --no-hard-negatives"
        )
    if have_index and (hard_negatives or eval_beir or chunk_positives):
        from searchcore.search import Searcher

        searcher = Searcher(config)
        base = base or searcher.embedder.name
    base = canonical_model_name(base) if base else DEFAULT_MODEL
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    if eval_beir is None:
        train_pairs, held = _held_out(pairs, seed)
        pool = list(dict.fromkeys([p.positive for p in pairs] + [p.negative for p in pairs if p.negative]))
        evaluation = f"{len({p.query for p in held})} held-out queries ranked against {len(pool):,} passages"
    else:
        from searchcore.evaluate import load_beir

        train_pairs, held, pool = pairs, [], []
        beir_queries, beir_qrels = load_beir(*eval_beir)
        evaluation = f"{eval_beir[0]} split {eval_beir[1]} ({len(beir_qrels)} queries), index {index_dir}"

    chunked = 0
    if chunk_positives and searcher is not None:
        train_pairs, chunked = indexed_positives(train_pairs, searcher)
    mined = 0
    if hard_negatives:
        train_pairs, mined = mine_hard_negatives(train_pairs, searcher, progress=progress)
    base_embedder = Embedder(base, backend="torch")
    if eval_beir is None:
        before = _score_in_memory(base_embedder, held, pool)
    else:
        before = _score_index(Path(index_dir), beir_queries, beir_qrels, config)
    if searcher is not None:
        searcher.close()
    torch.set_num_threads(threads)

    columns = {"anchor": [p.query for p in train_pairs], "positive": [p.positive for p in train_pairs]}
    if hard_negatives:
        # Every row needs a negative column; the few queries without a qualifying hard
        # negative get a random other query's positive (an easy negative) instead.
        rng = random.Random(seed)
        columns["negative"] = [
            p.negative or rng.choice([q.positive for q in train_pairs if q.query != p.query]) for p in train_pairs
        ]
    dataset = Dataset.from_dict(columns)
    model = SentenceTransformer(model_location(base), device="cpu")
    # The folder gets our own model card; skip the trainer's widget examples (and their bar).
    model.model_card_data.set_widget_examples = lambda dataset: None
    _no_attention_dropout(model)
    loss = MultipleNegativesRankingLoss(model)
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    steps = -(-len(dataset) // batch_size) * epochs
    args = SentenceTransformerTrainingArguments(
        output_dir=str(staging / "checkpoints"),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        warmup_steps=max(1, int(0.1 * steps)),
        weight_decay=0.01,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        seed=seed,
        data_seed=seed,
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        bf16=precision == "bf16",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    train_started = time.perf_counter()
    trainer.train()
    seconds_training = time.perf_counter() - train_started
    shutil.rmtree(staging / "checkpoints", ignore_errors=True)
    model.save(str(staging))

    if eval_beir is None:
        after = _score_in_memory(Embedder(str(staging), backend="torch"), held, pool)
    else:
        from indexer.reindex import reembedded_copy

        scratch = Path(tempfile.mkdtemp(prefix="searchctl-eval-"))
        try:
            reembedded_copy(
                Path(index_dir), scratch / "idx", str(staging.resolve()), cache_dir=cache_dir, progress=progress
            )
            after = _score_index(scratch / "idx", beir_queries, beir_qrels, config)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    result = EmbedderResult(
        out=str(out),
        base=base,
        pairs=len(train_pairs),
        hard_negatives=mined if hard_negatives else 0,
        seconds_training=seconds_training,
        seconds_total=0.0,
        evaluation=evaluation,
        before=before,
        after=after,
        settings={
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            "hard_negatives": hard_negatives,
            "positives replaced by their closest indexed chunk": chunked,
            "precision": precision,
            "margin": MARGIN if hard_negatives else None,
            "loss": "MultipleNegativesRankingLoss (in-batch and hard negatives)",
            "attention dropout": 0.0,
            "batch_sampler": "no duplicates",
        },
    )
    result.seconds_total = time.perf_counter() - started
    (staging / "README.md").write_text(_model_card(result))
    (staging / "searchctl-finetune.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(out)
    return result
