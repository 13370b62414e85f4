"""Adapt the embedder to an index's corpus without labels, in one call.

The loop (``searchctl adapt``): optionally fine-tune the generator on a sample of the
corpus's chunks (it learns the field's words) -> the generator writes a query for each of
a sample of chunks (``finetune.queries``: cleaned, then kept only if the current index
finds the query's own document, round-trip consistency) -> the embedder is fine-tuned on
the kept pairs (``finetune.embedder``; in-batch negatives, mined ones on request) -> before
and after are scored (on a BEIR split when one is given, else on held-out generated
queries) -> only a better model is swapped into the index by re-embedding it
(``searchctl reindex``; ``reindex --rollback`` returns to the old vectors).

Without real judgements the held-out generated queries are the only judge, and they are
a misleading one: they are the kind of query the model was trained on. Measured on
SciFact and Cranfield, they called the adapted model better by 0.03 and 0.06 nDCG@10
while real queries found it no better or worse (hybrid -0.004 and -0.009). So a model
judged on them alone is kept in the output folder but not swapped in unless the caller
says so (``swap_unjudged``).

Everything a run made (the generator, the queries, the embedder, a JSON report) stays in
its output folder. This package never imports the indexer: the caller hands in the
function that re-embeds a copy (for scoring) and the one that swaps the index.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from searchcore.config import Config
from searchcore.errors import SearchctlError
from searchcore.generator import DEFAULT_GENERATOR, Generator

from .embedder import EmbedderResult, train_embedder
from .generator import GeneratorResult, train_generator
from .pairs import Pair, write_pairs
from .queries import DEPTH, QueryRun, sample_chunks, write_queries
from .scoring import Reembed

__all__ = ["AdaptResult", "AdaptSettings", "adapt"]

MIN_KEPT = 20  # fewer kept queries than this teach nothing worth a re-embedding


@dataclass(frozen=True)
class AdaptSettings:
    """What ``adapt`` does; the defaults were chosen on SciFact train queries and Cranfield."""

    sample: int = 1500
    depth: int = DEPTH
    generator: str = DEFAULT_GENERATOR
    tune_generator: bool = False
    epochs: float = 1.0
    lr: float = 2e-5
    batch_size: int = 32
    # Off: on SciFact train queries, mined negatives cost 0.002 dense and 0.002 hybrid
    # nDCG@10 against in-batch negatives alone (generated queries of one field often have
    # several right answers, so a mined "negative" is often one of them).
    hard_negatives: bool = False
    seed: int = 42


@dataclass
class AdaptResult:
    index: str
    out: str
    settings: dict
    queries: QueryRun | None = None
    generator: GeneratorResult | None = None
    embedder: EmbedderResult | None = None
    reindexed: bool = False
    stages: dict[str, float] = field(default_factory=dict)

    judged: bool = False  # on real queries (a BEIR split), not on generated ones

    @property
    def improved(self) -> bool:
        return self.embedder is not None and self.embedder.improved

    def not_better(self) -> str:
        return (
            f"the adapted embedder is not better than the index's model; the index is untouched "
            f"(the run's queries and model are in {self.out})"
        )

    def line(self) -> str:
        assert self.embedder is not None and self.queries is not None
        name = self.embedder.primary
        before, after = self.embedder.before.get(name, 0.0), self.embedder.after.get(name, 0.0)
        verdict = "index re-embedded" if self.reindexed else "index untouched"
        if self.improved and not self.judged and not self.reindexed:
            verdict += " (judged on generated queries only)"
        return (
            f"adapted on {self.queries.kept:,} generated queries ({self.queries.generated:,} written): "
            f"{name} {before:.4f} -> {after:.4f} ({after - before:+.4f}) on {self.embedder.evaluation}; "
            f"{verdict}; {sum(self.stages.values()):.0f} s"
        )

    def to_dict(self) -> dict:
        return {
            "index": self.index,
            "out": self.out,
            "settings": self.settings,
            "queries": self.queries.to_dict() if self.queries else None,
            "generator": self.generator.to_dict() if self.generator else None,
            "embedder": self.embedder.to_dict() if self.embedder else None,
            "improved": self.improved,
            "judged on real queries": self.judged,
            "reindexed": self.reindexed,
            "seconds": {k: round(v, 1) for k, v in self.stages.items()},
        }


def _tuned_generator(searcher, settings: AdaptSettings, out: Path, cache_dir, progress) -> GeneratorResult:
    texts = [text for _, _, text in sample_chunks(searcher.records, settings.sample, settings.seed + 1)]
    return train_generator(
        texts,
        out / "generator",
        source=f"{len(texts):,} chunks of the index",
        base=settings.generator,
        epochs=1.0,
        seed=settings.seed,
        cache_dir=cache_dir,
        progress=progress,
    )


def adapt(
    index_dir: Path,
    out: Path,
    *,
    settings: AdaptSettings = AdaptSettings(),
    examples: list[Pair] | None = None,
    eval_beir: tuple[Path, str] | None = None,
    reembed: Reembed,
    swap: Callable[..., object] | None,
    swap_unjudged: bool = False,
    cache_dir: Path | None = None,
    progress: bool = False,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> AdaptResult:
    """Run the loop of the module docstring on the index at ``index_dir``, keeping what it
    makes in ``out``; ``swap(config, model, progress=...)`` re-embeds the index with a
    better model (None: score only), and does so on the generated queries' verdict alone
    only with ``swap_unjudged``. ``on_stage`` hears each stage as it starts."""
    from searchcore.search import Searcher

    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise SearchctlError(f"{out} is not empty; give adapt a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    config = Config(index_dir=Path(index_dir), cache_dir=cache_dir)
    recorded = vars(settings) | {"examples": len(examples or [])}
    result = AdaptResult(index=str(index_dir), out=str(out), settings=recorded, judged=eval_beir is not None)

    def report() -> None:
        (out / "adapt.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")

    started = time.perf_counter()
    with Searcher(config) as searcher:
        base = searcher.embedder.name  # the index's own model is the one to adapt
        generator_model = settings.generator
        if settings.tune_generator:
            on_stage(f"fine-tuning the generator {settings.generator} on {settings.sample:,} chunks")
            result.generator = _tuned_generator(searcher, settings, out, cache_dir, progress)
            if result.generator.improved:
                generator_model = str(out / "generator")
            result.stages["generator fine-tuning"] = time.perf_counter() - started
        started = time.perf_counter()
        on_stage(f"writing queries for {settings.sample:,} chunks with {generator_model}")
        generator = Generator(generator_model, cache_dir=cache_dir)
        result.queries = write_queries(
            searcher,
            generator,
            sample=settings.sample,
            depth=settings.depth,
            examples=examples,
            seed=settings.seed,
            progress=progress,
        )
        del generator
        gc.collect()
        result.stages["query generation"] = time.perf_counter() - started
    write_pairs(result.queries.pairs, out / "queries.jsonl")
    report()
    if result.queries.kept < MIN_KEPT:
        raise SearchctlError(
            f"only {result.queries.kept} of {result.queries.generated} generated queries were kept "
            f"({result.queries.line()}); too few to train on: try a larger --sample or a deeper --depth"
        )
    started = time.perf_counter()
    on_stage(f"{result.queries.line()}; fine-tuning the embedder on them")
    result.embedder = train_embedder(
        result.queries.pairs,
        out / "embedder",
        base=base,
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        lr=settings.lr,
        seed=settings.seed,
        hard_negatives=settings.hard_negatives,
        chunk_positives=False,  # each positive already is the chunk its query was written for
        index_dir=Path(index_dir),
        eval_beir=eval_beir,
        reembed=reembed,
        cache_dir=cache_dir,
        progress=progress,
    )
    result.stages["embedder fine-tuning and scoring"] = time.perf_counter() - started
    report()
    if result.improved and swap is not None and (result.judged or swap_unjudged):
        started = time.perf_counter()
        on_stage("the model is better: re-embedding the index with it")
        swap(config, str((out / "embedder").resolve()), progress=progress)
        result.reindexed = True
        result.stages["re-embedding the index"] = time.perf_counter() - started
        report()
    return result
