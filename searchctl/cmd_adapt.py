"""``searchctl adapt``: fit the embedder to an index's corpus without labels, in one command."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from .cmd_finetune import echo_before_after
from .cmd_generate import generator_option
from .common import cache_dir, index_option, notice, progress_option, show_progress

__all__ = ["adapt_cmd"]


@click.command("adapt")
@index_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for what the run makes (queries, models, report). Default: INDEX/adapted/<date-time>.",
)
@click.option(
    "--sample", type=click.IntRange(min=10), default=1500, show_default=True, help="Chunks to write a query for."
)
@click.option(
    "--depth",
    type=click.IntRange(min=1, max=100),
    default=5,
    show_default=True,
    help="Keep a query whose chunk's document the index ranks in this many first hits.",
)
@generator_option
@click.option(
    "--tune-generator/--no-tune-generator",
    default=False,
    show_default=True,
    help="First fine-tune the generator on a sample of the corpus's chunks.",
)
@click.option(
    "--examples",
    "examples_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="A few labelled pairs (JSONL/TSV) that show the generator the queries you expect.",
)
@click.option("--epochs", type=click.FloatRange(min=0.01), default=1.0, show_default=True, help="Embedder epochs.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-5, show_default=True, help="Peak rate.")
@click.option("--batch-size", type=click.IntRange(min=2), default=32, show_default=True, help="Pairs per step.")
@click.option(
    "--hard-negatives/--no-hard-negatives",
    default=False,
    show_default=True,
    help="Also mine a hard negative per query from the index (else the batch's other passages only).",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed (sample, sampling, training).")
@click.option(
    "--eval-beir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Judge before and after on this BEIR folder's --eval-split (else on held-out generated queries).",
)
@click.option("--eval-split", default="test", show_default=True, help="Split of --eval-beir to score on.")
@click.option(
    "--swap-unjudged",
    is_flag=True,
    help="Without --eval-beir, re-embed the index when the held-out generated queries alone call the model "
    "better (a misleading judge: see the README).",
)
@click.option("--dry-run", is_flag=True, help="Train and score, but leave the index as it is even if better.")
@progress_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def adapt_cmd(
    index_dir,
    out,
    sample,
    depth,
    model,
    tune_generator,
    examples_file,
    epochs,
    lr,
    batch_size,
    hard_negatives,
    seed,
    eval_beir,
    eval_split,
    swap_unjudged,
    dry_run,
    progress,
    as_json,
):
    """Adapt the embedder to the indexed corpus, no labels needed: the generator writes
    queries for sampled chunks, the index keeps those it can answer, the embedder is
    fine-tuned on them, and a better model re-embeds the index
    (`reindex --rollback` undoes it). Better means better on --eval-beir's real queries;
    judged on held-out generated queries alone, the model is kept in --out and the index
    untouched unless --swap-unjudged. Exits 1, leaving the index untouched, when the
    model did not get better."""
    from finetune.adapt import AdaptSettings, adapt
    from finetune.pairs import load_pairs
    from finetune.verdict import require_better
    from indexer.reindex import reembedded_copy, reindex

    if not (Path(index_dir) / "index.db").exists():
        raise click.UsageError(f"no index at {index_dir}; build one with `searchctl index`")
    examples = load_pairs(examples_file) if examples_file else None
    if out is None:
        out = Path(index_dir) / "adapted" / time.strftime("%Y%m%d-%H%M%S")
    settings = AdaptSettings(
        sample=sample,
        depth=depth,
        generator=model,
        tune_generator=tune_generator,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        hard_negatives=hard_negatives,
        seed=seed,
    )

    result = adapt(
        index_dir,
        out,
        settings=settings,
        examples=examples,
        eval_beir=(eval_beir, eval_split) if eval_beir else None,
        reembed=reembedded_copy,
        swap=None if dry_run else reindex,
        swap_unjudged=swap_unjudged,
        cache_dir=cache_dir(),
        progress=show_progress(progress),
        on_stage=lambda stage: click.echo(f"adapt: {stage}", err=True),
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        assert result.queries is not None and result.embedder is not None
        if result.generator is not None:
            click.echo(f"generator: {result.generator.line()}")
        click.echo(f"queries: {result.queries.line()}")
        for item in result.queries.samples:
            verdict = "kept" if item["kept"] else f"dropped ({item['reason']})"
            click.echo(f"  {verdict}: {item['query']}")
        click.echo(f"evaluated on {result.embedder.evaluation}")
        echo_before_after(result.embedder)
        click.echo(result.line())
    if result.improved and not result.judged and not result.reindexed and not dry_run:
        notice(
            f"the model was judged on generated queries only, which call a model better that real queries may not; "
            f"the index is untouched. Judge it with --eval-beir, or `searchctl reindex --model {out}/embedder` "
            "(or pass --swap-unjudged) to use it"
        )
    require_better(result, forced_by=None)
