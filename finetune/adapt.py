"""Adapt the query encoder to an index's corpus without labels (GPL with a hybrid teacher).

The loop (``searchctl adapt``), each stage leaving its result in the run's folder so a
run that stops (killed, or out of ``--hours``) goes on from there when started again:

1. ``queries.jsonl``: queries written for the index's chunks, several per chunk
   (``finetune.writers``: sentences of the chunk by default, or the generator's samples);
2. ``graded.jsonl``: each query's candidates (its chunk, and the chunks the dense model
   and BM25 rank first) scored by the index's own hybrid search (``finetune.grading``);
3. ``training/`` then ``query-encoder/``: the query side of the embedder distilled from
   those scores' margins against the index's stored passage vectors, in checkpointed
   steps (``finetune.distill``);
4. the judge: with real judged queries (``eval_beir``), dense and hybrid nDCG@10 with the
   index's query encoder and with the new one, over the index as it is (no copy, nothing
   re-embedded); better means hybrid (the default mode) higher and dense not lower.
   Without them there is no judge: the model stays in the run's folder and the index is
   untouched unless the caller says ``swap_unjudged``;
5. the swap: a better query encoder is recorded as the index's (``swap(config, folder)``,
   handed in by the caller so this package never imports the indexer); the passages
   keep their vectors, so the swap is instant and ``searchctl adapt --undo`` takes it back.

``adapt.json`` in the run's folder holds the settings, what each stage made and cost,
and the verdict.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from searchcore.config import Config
from searchcore.devices import resolve_device
from searchcore.errors import SearchctlError, UsageError
from searchcore.generator import DEFAULT_GENERATOR

from .distill import DistillSettings, distill
from .grading import TEACHERS, Written, grade, read_graded, write_graded
from .writers import WRITERS, chunk_sample, generated_queries, span_queries

__all__ = ["AdaptResult", "AdaptSettings", "QUICK", "adapt", "judge"]

MIN_GRADED = 20  # fewer graded queries than this teach nothing
MODES = ("dense", "hybrid")


@dataclass(frozen=True)
class AdaptSettings:
    """What ``adapt`` does; the defaults were chosen on SciFact train queries (README)."""

    queries: str = "spans"
    per_chunk: int = 2
    chunks: int = 0  # chunks to write queries for (0: every chunk)
    teacher: str = "hybrid"
    # Chosen on SciFact train, two seeds: 3,000 steps of at most 5 passes gained more
    # hybrid nDCG@10 than 1,000 of at most 2 in both (README, "Adapting without labels").
    steps: int = 3000
    # Steps stop at this many passes over the graded queries: on the small collections
    # (MED, Cranfield: 2,761 and 3,683 queries) 1,000 steps were 9-12 passes, and dense
    # gained while hybrid lost; at 5 neither loses more than 0.001 hybrid.
    max_epochs: float = 5.0
    batch_size: int = 32
    lr: float = 2e-5
    negatives: int = 8
    generator: str = DEFAULT_GENERATOR
    round_trip: int = 0  # generated queries: keep those whose document the index ranks this high (0: all)
    seed: int = 42

    def check(self) -> None:
        if self.queries not in WRITERS:
            raise UsageError(f"--queries {self.queries}: use one of {', '.join(WRITERS)}")
        if self.teacher not in TEACHERS:
            raise UsageError(f"--teacher {self.teacher}: use one of {', '.join(TEACHERS)}")

    def planned_steps(self, graded: int) -> int:
        """``steps``, or fewer where they would pass over the ``graded`` queries more than ``max_epochs`` times."""
        return max(1, min(self.steps, math.ceil(self.max_epochs * graded / self.batch_size)))

    def name(self) -> str:
        """The run's folder name: the same settings find the same run (and resume it)."""
        return f"{self.queries}{self.per_chunk}-{self.teacher}-{self.steps}steps-seed{self.seed}"


# ``--quick``: the defaults with a fifth of the steps (README, "Adapting without labels").
# A collection small enough to reach the defaults' 5 passes within them (MED, Cranfield)
# trains exactly as the defaults do; one query a chunk, 300 steps and 2 passes, the first
# quick setting, lost MED dense and Cranfield hybrid there.
QUICK = {"steps": 600}


@dataclass
class AdaptResult:
    index: str
    out: str
    settings: dict
    written: dict = field(default_factory=dict)
    graded: int = 0
    training: dict = field(default_factory=dict)
    judge: str = "none"  # what judged the model: "BEIR <folder> <split>", or none
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    swapped: bool = False
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def judged(self) -> bool:
        return bool(self.before)

    @property
    def improved(self) -> bool:
        if not self.judged:
            return False
        return self.after["hybrid"] > self.before["hybrid"] and self.after["dense"] >= self.before["dense"]

    def changes(self) -> str:
        return ", ".join(
            f"{m} {self.before[m]:.4f} -> {self.after[m]:.4f} ({self.after[m] - self.before[m]:+.4f})" for m in MODES
        )

    def not_better(self) -> str:
        if not self.judged:
            return (
                f"no judged queries to tell whether the adapted query encoder is better (give --eval-beir); the "
                f"index is untouched and the model is in {self.out}/query-encoder"
            )
        return (
            f"the adapted query encoder is not better on {self.judge} ({self.changes()}); the index is untouched "
            f"(the run is in {self.out})"
        )

    def line(self) -> str:
        verdict = "swapped in as the index's query encoder" if self.swapped else "index untouched"
        measured = self.changes() if self.judged else "not measured"
        return (
            f"adapted on {self.graded:,} graded queries ({self.settings['queries']}, teacher "
            f"{self.settings['teacher']}, {self.training.get('steps_done', 0):,} steps); judge: {self.judge}: "
            f"{measured}; {verdict}; {sum(self.seconds.values()):.0f} s"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "improved": self.improved, "judged": self.judged}


def judge(
    config: Config, candidate: Path, eval_beir: tuple[Path, str], query_backend: str | None = None
) -> tuple[dict, dict]:
    """nDCG@10 (dense and hybrid) of the index's real judged queries with its own query
    encoder and with ``candidate``, over the index as it is. ``query_backend`` runs both
    query encoders on another backend than the index's (e.g. ``onnx``, fp32: the change
    the weights make, without the noise of quantising each encoder on its own)."""
    from searchcore.evaluate import evaluate, load_beir
    from searchcore.models import make_embedder
    from searchcore.search import Searcher

    queries, qrels = load_beir(*eval_beir)
    with Searcher(config) as searcher:
        backend = query_backend or searcher.embedder.backend
        if query_backend:  # the index's own query encoder, made again on that backend
            searcher.query_embedder = make_embedder(searcher.query_embedder.name, backend, config.cache_dir)
        before = {m: evaluate(searcher, queries, qrels, mode=m).metrics["ndcg@10"] for m in MODES}
    adapted = make_embedder(str(candidate), backend, config.cache_dir)
    with Searcher(config, query_embedder=adapted) as searcher:
        after = {m: evaluate(searcher, queries, qrels, mode=m).metrics["ndcg@10"] for m in MODES}
    return {m: round(v, 4) for m, v in before.items()}, {m: round(v, 4) for m, v in after.items()}


class _Progress:
    """A stage's progress: a bar with ETA on a terminal, else a line every tenth of it."""

    def __init__(self, total: int, label: str, unit: str, progress: bool, on_stage: Callable[[str], None]):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc=label, unit=unit, disable=not progress, leave=False)
        self.total, self.label, self.unit, self.lines, self.on_stage = total, label, unit, not progress, on_stage
        self.started, self.first, self.done = time.perf_counter(), 0, 0
        self.units = unit[:-1] + "ies" if unit.endswith("y") else unit + "s"

    def skip_to(self, done: int) -> None:
        """A resumed stage starts at ``done``."""
        self.bar.update(done - self.done)
        self.first = self.done = done

    def update(self, n: int = 1, note: str = "") -> None:
        before, self.done = self.done, self.done + n
        self.bar.update(n)
        if note:
            self.bar.set_postfix_str(note)
        every = max(1, self.total // 10)
        if self.lines and self.done // every > before // every:
            rate = (time.perf_counter() - self.started) / max(1, self.done - self.first)
            left = rate * (self.total - self.done)
            self.on_stage(f"{self.label}: {self.done:,}/{self.total:,} {self.units}{', ' + note if note else ''}, "
                          f"about {left / 60:.0f} min left")  # fmt: skip

    def close(self) -> None:
        self.bar.close()


def _write_jsonl(rows: list[Written], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(asdict(w)) + "\n" for w in rows), encoding="utf-8")
    tmp.replace(path)


def _read_jsonl(path: Path) -> list[Written]:
    return [Written(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]


def _start(out: Path, settings: AdaptSettings) -> None:
    """A new run's folder, or the same settings' unfinished one (resumed)."""
    recorded = out / "settings.json"
    wanted = asdict(settings)
    if recorded.exists():
        if json.loads(recorded.read_text()) != wanted:
            raise UsageError(f"{out} holds a run with other settings; give the same options or a new --out")
        return
    if out.exists() and any(out.iterdir()):
        raise UsageError(f"{out} is not empty and holds no adapt run; give adapt a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    recorded.write_text(json.dumps(wanted, indent=2) + "\n")


def adapt(
    index_dir: Path,
    out: Path,
    *,
    settings: AdaptSettings = AdaptSettings(),
    eval_beir: tuple[Path, str] | None = None,
    swap: Callable[[Config, Path], object] | None = None,
    swap_unjudged: bool = False,
    hours: float | None = None,
    device: str = "auto",
    cache_dir: Path | None = None,
    progress: bool = False,
    on_stage: Callable[[str], None] = lambda stage: None,
) -> AdaptResult:
    """Run (or resume) the loop of the module docstring on the index at ``index_dir``,
    keeping what it makes in ``out``. ``hours`` bounds the training (run again to go
    on); ``on_stage`` hears each stage as it starts and the training's progress."""
    from searchcore.search import Searcher

    settings.check()
    resolve_device(device)  # a --device this machine lacks fails now, not after an hour of grading
    out = Path(out)
    _start(out, settings)
    config = Config(index_dir=Path(index_dir), cache_dir=cache_dir)
    result = AdaptResult(index=str(index_dir), out=str(out), settings=asdict(settings))

    def report() -> None:
        (out / "adapt.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")

    def timed(stage: str, began: float) -> None:
        result.seconds[stage] = result.seconds.get(stage, 0.0) + time.perf_counter() - began

    queries_file, graded_file, model_dir = out / "queries.jsonl", out / "graded.jsonl", out / "query-encoder"
    written_file = out / "written.json"
    with Searcher(config) as searcher:
        base = searcher.embedder.name
        began = time.perf_counter()
        if not queries_file.exists():
            items = chunk_sample(searcher.records, settings.chunks, settings.seed)
            written = _write(searcher, items, settings, cache_dir, progress, on_stage)
            _write_jsonl(written[0], queries_file)
            written_file.write_text(json.dumps(written[1]))
            timed("writing queries", began)
        else:
            on_stage(f"queries already written in {queries_file}")
        result.written = json.loads(written_file.read_text())
        began = time.perf_counter()
        if not graded_file.exists():
            todo = _read_jsonl(queries_file)
            on_stage(f"grading {len(todo):,} queries with the index's {settings.teacher} search")
            ticker = _Progress(len(todo), "grading", "query", progress, on_stage)
            graded = grade(searcher, todo, teacher=settings.teacher, on_progress=ticker.update)
            ticker.close()
            write_graded(graded, graded_file)
            timed("grading", began)
        graded = read_graded(graded_file)
        result.graded = len(graded)
        report()
        if len(graded) < MIN_GRADED:
            raise SearchctlError(
                f"only {len(graded)} queries could be graded (at least {MIN_GRADED} are needed); the index holds "
                "too little text to adapt to"
            )
        vectors = searcher.records.vectors_of(sorted({c for g in graded for c, _ in g.candidates}))
    began = time.perf_counter()
    trained = _trained(model_dir)
    settings = replace(settings, steps=settings.planned_steps(len(graded)))
    if trained is None or trained["steps_done"] < settings.steps:
        trained = _train(graded, vectors, base, out, settings, hours, device, progress, on_stage)
        timed("training", began)
    result.training = trained
    report()
    if trained["steps_done"] < settings.steps:
        on_stage(f"stopped at step {trained['steps_done']:,} of {settings.steps:,} (--hours); run again to go on")
        return result
    if eval_beir is not None:
        began = time.perf_counter()
        result.judge = f"BEIR {eval_beir[0]} {eval_beir[1]}"
        on_stage(f"judging on {result.judge}: the index's query encoder against the adapted one")
        result.before, result.after = judge(config, model_dir, eval_beir)
        timed("judging", began)
    report()
    if swap is not None and (result.improved or (not result.judged and swap_unjudged)):
        on_stage("recording the adapted query encoder as the index's")
        swap(config, model_dir)
        result.swapped = True
        report()
    return result


def _write(searcher, items, settings: AdaptSettings, cache_dir, progress: bool, on_stage) -> tuple[list, dict]:
    if settings.queries == "spans":
        on_stage(f"writing {settings.per_chunk} queries per chunk for {len(items):,} chunks from their sentences")
        written = span_queries(items, settings.per_chunk, settings.seed)
        return written, {"written": len(written), "kept": len(written), "chunks": len(items)}
    from searchcore.generator import Generator

    on_stage(f"writing {settings.per_chunk} queries per chunk for {len(items):,} chunks with {settings.generator}")
    generator = Generator(settings.generator, cache_dir=cache_dir)
    ticker = _Progress(len(items), "writing queries", "chunk", progress, on_stage)
    written, cost = generated_queries(
        searcher, generator, items, settings.per_chunk, settings.seed,
        round_trip=settings.round_trip, on_progress=ticker.update,
    )  # fmt: skip
    ticker.close()
    return written, {**cost, "chunks": len(items)}


def _trained(model_dir: Path) -> dict | None:
    try:
        return json.loads((model_dir / "searchctl-distill.json").read_text())
    except (OSError, ValueError):
        return None


def _train(graded, vectors, base, out: Path, settings: AdaptSettings, hours, device, progress, on_stage) -> dict:
    plan = DistillSettings(
        steps=settings.steps,
        batch_size=settings.batch_size,
        lr=settings.lr,
        negatives=settings.negatives,
        seed=settings.seed,
        checkpoint_every=max(1, min(100, settings.steps // 10)),
        hours=hours,
        device=device,
    )
    on_stage(f"training the query encoder: {settings.steps:,} steps of {settings.batch_size} queries")

    ticker = _Progress(settings.steps, "training", "step", progress, on_stage)

    def resumed(step: int) -> None:
        ticker.skip_to(step)
        on_stage(f"resuming from the checkpoint at step {step:,}")

    def stepped(done: int, total: int, loss: float) -> None:
        ticker.update(1, f"loss {loss:.4f}")

    result = distill(graded, vectors, base, out / "query-encoder", out / "training", plan,
                     on_step=stepped, on_resume=resumed)  # fmt: skip
    ticker.close()
    return result.to_dict()
