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
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from searchcore.classifier import quiet_transformers
from searchcore.config import Config
from searchcore.devices import resolve_device
from searchcore.embedder import (
    DEFAULT_MODEL,
    canonical_model_name,
    model_location,
)
from searchcore.errors import UsageError

from .mining import MARGIN, indexed_positives, mine_hard_negatives
from .pairs import Pair
from .scoring import Reembed, evaluation_for, score_index, score_reembedded
from .verdict import NotBetterError

__all__ = ["EmbedderResult", "mine_hard_negatives", "train_embedder", "NotBetterError", "publish_model"]


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

    def not_better(self) -> str:
        return (
            f"the fine-tuned model is not better than {self.base} ({self.primary} "
            f"{self.before.get(self.primary, 0):.4f} -> {self.after.get(self.primary, 0):.4f}); "
            f"it is in {self.out} anyway"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "improved": self.improved}


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


def publish_model(staging: Path, out: Path, card: str, report: dict) -> None:
    """Write the model card and the JSON report into ``staging``, then move it to ``out``
    (replacing an older model there), so ``out`` is never a half-written model."""
    (staging / "README.md").write_text(card)
    (staging / "searchctl-finetune.json").write_text(json.dumps(report, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(out)


def _check_inputs(pairs: list[Pair], out: Path, index_dir: Path | None, needs_index: bool) -> bool:
    """Refuse what cannot work before anything is loaded; whether the index exists."""
    if out.exists() and any(out.iterdir()) and not (out / "modules.json").exists():
        raise UsageError(f"{out} exists and is not a model folder; pick a new --out")
    if len({p.query for p in pairs}) < 2:
        raise UsageError("fine-tuning needs pairs with at least two different queries")
    have_index = index_dir is not None and (Path(index_dir) / "index.db").exists()
    if needs_index and not have_index:
        raise UsageError(
            "hard negatives and --eval-beir need the index of the corpus (--index DIR; build it with "
            "`searchctl index`), or pass --no-hard-negatives"
        )
    return have_index


def _fit(model, columns: dict[str, list[str]], out: Path, settings: dict, progress: bool) -> tuple[Path, float]:
    """Train ``model`` on ``columns`` into a staging folder next to ``out``; (folder, seconds)."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments

    try:
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    except ImportError:  # sentence-transformers before 6
        from sentence_transformers.losses import MultipleNegativesRankingLoss
        from sentence_transformers.training_args import BatchSamplers

    dataset = Dataset.from_dict(columns)
    staging = out.with_name(f".{out.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    steps = -(-len(dataset) // settings["batch_size"]) * settings["epochs"]
    args = SentenceTransformerTrainingArguments(
        output_dir=str(staging / "checkpoints"),
        num_train_epochs=settings["epochs"],
        per_device_train_batch_size=settings["batch_size"],
        learning_rate=settings["lr"],
        warmup_steps=max(1, int(0.1 * steps)),
        weight_decay=0.01,
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        seed=settings["seed"],
        data_seed=settings["seed"],
        save_strategy="no",
        logging_strategy="no",
        report_to=[],
        use_cpu=settings["device"] == "cpu",
        bf16=settings["precision"] == "bf16",
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    loss = MultipleNegativesRankingLoss(model)
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss)
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    shutil.rmtree(staging / "checkpoints", ignore_errors=True)
    model.save(str(staging))
    return staging, seconds


def _columns(train_pairs: list[Pair], hard_negatives: bool, seed: int) -> dict[str, list[str]]:
    columns = {"anchor": [p.query for p in train_pairs], "positive": [p.positive for p in train_pairs]}
    if hard_negatives:
        # Every row needs a negative column; the few queries without a qualifying hard
        # negative get a random other query's positive (an easy negative) instead.
        rng = random.Random(seed)
        columns["negative"] = [
            p.negative or rng.choice([q.positive for q in train_pairs if q.query != p.query]) for p in train_pairs
        ]
    return columns


def _prepare(pairs, base, have_index, hard_negatives, chunk_positives, eval_beir, seed, config, progress):
    """Everything before training that reads the index: the base model, the pairs with
    their indexed positives and mined negatives, and the base model's scores.
    Returns (base, train pairs, evaluation, scores before, (positives replaced, negatives mined))."""
    import torch

    # FAISS cuts the OpenMP pool it shares with torch to one thread (see searchcore.vectors);
    # training gets every core back once the searcher is done.
    threads = torch.get_num_threads()
    searcher = None
    if have_index and (hard_negatives or eval_beir or chunk_positives):
        from searchcore.search import Searcher

        searcher = Searcher(config)
        base = base or searcher.embedder.name
    base = canonical_model_name(base) if base else DEFAULT_MODEL
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    train_pairs, evaluation = evaluation_for(pairs, seed, eval_beir, config.index_dir)
    chunked = mined = 0
    if chunk_positives and searcher is not None:
        train_pairs, chunked = indexed_positives(train_pairs, searcher)
    if hard_negatives:
        train_pairs, mined = mine_hard_negatives(train_pairs, searcher, progress=progress)
    if evaluation.beir is None:
        before = evaluation.score_model(base)
    else:
        before = score_index(Path(config.index_dir), *evaluation.beir, config)
    if searcher is not None:
        searcher.close()
    torch.set_num_threads(threads)
    return base, train_pairs, evaluation, before, (chunked, mined)


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
    device: str = "auto",
    index_dir: Path | None = None,
    eval_beir: tuple[Path, str] | None = None,
    reembed: Reembed | None = None,
    cache_dir: Path | None = None,
    progress: bool = False,
) -> EmbedderResult:
    """Fine-tune ``base`` on ``pairs`` and save a sentence-transformers folder to ``out``.

    ``index_dir`` is where hard negatives are mined (and, with ``eval_beir``, the index of
    that BEIR corpus to score before and after, through a copy that ``reembed`` makes)."""
    from sentence_transformers import SentenceTransformer

    from .precision import resolve_precision

    quiet_transformers()
    started = time.perf_counter()
    out = Path(out)
    have_index = _check_inputs(pairs, out, index_dir, needs_index=hard_negatives or eval_beir is not None)
    if eval_beir is not None and reembed is None:
        raise UsageError("scoring on --eval-beir needs a way to re-embed the index (reembed)")
    settings: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed}
    settings["precision"] = resolve_precision(precision)
    settings["device"] = resolve_device(device)  # a --device cuda this machine lacks fails before any work
    config = Config(index_dir=index_dir or Path(".searchctl"), cache_dir=cache_dir)
    base, train_pairs, evaluation, before, counts = _prepare(
        pairs, base, have_index, hard_negatives, chunk_positives, eval_beir, seed, config, progress
    )
    chunked, mined = counts

    model = SentenceTransformer(model_location(base), device="cpu")
    # The folder gets our own model card; skip the trainer's widget examples (and their bar).
    model.model_card_data.set_widget_examples = lambda dataset: None
    _no_attention_dropout(model)
    staging, seconds_training = _fit(model, _columns(train_pairs, hard_negatives, seed), out, settings, progress)
    if evaluation.beir is None:
        after = evaluation.score_model(str(staging))
    else:
        after = score_reembedded(Path(index_dir), staging, evaluation, reembed, config, progress)  # type: ignore[arg-type]

    result = EmbedderResult(
        out=str(out),
        base=base,
        pairs=len(train_pairs),
        hard_negatives=mined if hard_negatives else 0,
        seconds_training=seconds_training,
        seconds_total=0.0,
        evaluation=evaluation.description,
        before=before,
        after=after,
        settings={
            **settings,
            "hard_negatives": hard_negatives,
            "positives replaced by their closest indexed chunk": chunked,
            "margin": MARGIN if hard_negatives else None,
            "loss": "MultipleNegativesRankingLoss (in-batch and hard negatives)",
            "attention dropout": 0.0,
            "batch_sampler": "no duplicates",
        },
    )
    result.seconds_total = time.perf_counter() - started
    publish_model(staging, out, _model_card(result), result.to_dict())
    return result
