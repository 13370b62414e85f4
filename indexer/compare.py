"""Compare embedding models on one collection: dimension, encode speed and quality.

Each model gets its own index beside the main one (``<index>-<model slug>``; the main
index serves the model it was built with), brought up to date incrementally, so a
second comparison only embeds what changed. Encode speed is measured in the same run
for every model on the same sample of chunk texts; quality is ``evaluate`` on the same
queries and judgements.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from searchcore.config import Config
from searchcore.embedder import canonical_model_name
from searchcore.evaluate import EvalResult, evaluate
from searchcore.search import Searcher
from searchcore.store import Store

from .build import build_index

__all__ = ["compare_models", "model_index_dir"]

_SAMPLE = 256


def model_index_dir(index_dir: Path, model: str) -> Path:
    """The index of ``model`` for a comparison next to ``index_dir``."""
    index_dir = Path(index_dir)
    canonical = canonical_model_name(model)
    if (index_dir / "index.db").exists():
        with Store.open(index_dir, reader=True) as store:
            if store.meta().model == canonical:
                return index_dir
    slug = re.sub(r"[^A-Za-z0-9]+", "-", canonical).strip("-")[-60:] or "model"
    return index_dir.with_name(f"{index_dir.name}-{slug}")


def _sample_texts(index_dir: Path) -> list[str]:
    with Store.open(index_dir, reader=True) as store:
        return store.sample_texts(_SAMPLE)


def compare_models(
    config: Config,
    models: list[str],
    corpus: Path,
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    *,
    mode: str = "hybrid",
    fusion: str = "weighted",
    feedback: bool = True,
    progress: bool = False,
) -> list[EvalResult]:
    results = []
    sample: list[str] | None = None
    for model in models:
        index_dir = model_index_dir(config.index_dir, model)
        # Each index keeps its own backend (the machine's default for a new one).
        index_config = Config(
            index_dir=index_dir, model=model, batch_size=config.batch_size, cache_dir=config.cache_dir
        )
        build_index(index_config, corpus, progress=progress)
        if sample is None:
            sample = _sample_texts(index_dir)
        with Searcher(index_config) as searcher:
            embedder = searcher.embedder
            embedder.embed(sample[:1] or ["warm-up"])  # load outside the timing
            started = time.perf_counter()
            embedder.embed(sample, config.batch_size)
            speed = len(sample) / (time.perf_counter() - started) if sample else 0.0
            result = evaluate(
                searcher, queries, qrels, mode=mode, fusion=fusion, feedback=feedback, label=embedder.name
            )
        result.extra = {
            "dimension": embedder.dim,
            "backend": embedder.backend,
            "chunks_per_second": round(speed, 1),
            "index": str(index_dir),
        }
        results.append(result)
    return results
