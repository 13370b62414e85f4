"""``searchctl adapt``: fit the query encoder to an index's corpus without labels, in one command."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .cmd_generate import generator_option
from .common import cache_dir, device_option, index_option, notice, progress_option, show_progress

__all__ = ["adapt_cmd"]


@click.command("adapt")
@index_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder for the run (queries, grades, checkpoints, model, report). Default: INDEX/adapted/<settings>; "
    "the same command run again resumes it.",
)
@click.option(
    "--queries",
    "writer",
    type=click.Choice(["spans", "generated"]),
    default="spans",
    show_default=True,
    help="Who writes the training queries: sentences of the chunks (no model), or the generator.",
)
@click.option("--per-chunk", type=click.IntRange(1, 50), default=2, show_default=True, help="Queries per chunk.")
@click.option(
    "--chunks", type=click.IntRange(min=0), default=0, show_default=True, help="Chunks to write for (0: all)."
)
@click.option(
    "--teacher",
    type=click.Choice(["hybrid", "bm25", "dense"]),
    default="hybrid",
    show_default=True,
    help="The index's search whose scores grade each query's candidates.",
)
@click.option("--steps", type=click.IntRange(min=1), default=3000, show_default=True, help="Training steps, at most.")
@click.option(
    "--max-epochs",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Fewer steps where --steps would pass over the graded queries more often than this.",
)
@click.option(
    "--hours",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop training after this long (checkpointed; run again to go on).",
)
@click.option("--quick", is_flag=True, help="The defaults with 600 steps at most (minutes, not half an hour).")
@click.option("--batch-size", type=click.IntRange(min=2), default=32, show_default=True, help="Queries per step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-5, show_default=True, help="Peak rate.")
@generator_option
@click.option(
    "--round-trip",
    type=click.IntRange(min=0, max=100),
    default=0,
    show_default=True,
    help="Generated queries: keep only those whose document the index ranks this high (0: keep all).",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed (sample, writing, training).")
@device_option
@click.option(
    "--eval-beir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Judge the index's query encoder against the adapted one on this BEIR folder's --eval-split.",
)
@click.option("--eval-split", default="test", show_default=True, help="Split of --eval-beir to judge on.")
@click.option(
    "--swap-unjudged",
    is_flag=True,
    help="Without --eval-beir, make the adapted query encoder the index's anyway.",
)
@click.option("--dry-run", is_flag=True, help="Train and judge, but leave the index as it is even if better.")
@click.option("--undo", is_flag=True, help="Go back to the index's own model for queries, and stop.")
@progress_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def adapt_cmd(ctx, index_dir, out, writer, per_chunk, chunks, teacher, steps, max_epochs, hours, quick, batch_size,
              lr, model, round_trip, seed, device, eval_beir, eval_split, swap_unjudged, dry_run, undo, progress,
              as_json):  # fmt: skip
    """Adapt the index's query encoder to its corpus, no labels needed: queries are
    written for its chunks (their own sentences by default), graded by the index's own
    hybrid search, and the query side of the embedder learns those grades (MarginMSE;
    the stored passage vectors stay as they are). Training is checkpointed: the same
    command run again resumes it. A model better on --eval-beir's real queries becomes
    the index's query encoder (`adapt --undo` takes it back); without judged queries it
    stays in --out unless --swap-unjudged. Exits 1, leaving the index untouched, when
    the model is not better or there is no judge."""
    from finetune.adapt import QUICK, AdaptSettings, adapt
    from finetune.verdict import require_better
    from indexer.reindex import use_query_model
    from searchcore.config import Config

    if not (Path(index_dir) / "index.db").exists():
        raise click.UsageError(f"no index at {index_dir}; build one with `searchctl index`")
    if undo:
        generation = use_query_model(Config(index_dir=Path(index_dir)), None)
        click.echo(f"queries use the index's own model again; generation {generation}")
        return
    if quick and ctx.get_parameter_source("steps") != click.core.ParameterSource.COMMANDLINE:
        steps = QUICK["steps"]  # --steps given beside --quick wins
    settings = AdaptSettings(
        queries=writer, per_chunk=per_chunk, chunks=chunks, teacher=teacher, steps=steps, max_epochs=max_epochs,
        batch_size=batch_size,
        lr=lr, generator=model, round_trip=round_trip, seed=seed,
    )  # fmt: skip
    if out is None:
        out = Path(index_dir) / "adapted" / settings.name()
    result = adapt(
        index_dir,
        out,
        settings=settings,
        eval_beir=(eval_beir, eval_split) if eval_beir else None,
        swap=None if dry_run else lambda config, folder: use_query_model(config, folder),
        swap_unjudged=swap_unjudged,
        hours=hours,
        device=device,
        cache_dir=cache_dir(),
        progress=show_progress(progress),
        on_stage=lambda stage: click.echo(f"adapt: {stage}", err=True),
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(result.line())
    if result.training.get("stopped_by_budget"):
        notice(f"training stopped by --hours; run the same command again to go on from its checkpoint in {out}")
        return
    if dry_run and result.improved:
        notice(f"--dry-run: the index is untouched; the model is in {out}/query-encoder")
        return
    if swap_unjudged and result.swapped:
        notice(
            "the query encoder was swapped in without a judge (--swap-unjudged); `searchctl adapt --undo` takes it back"
        )
        return
    require_better(result, forced_by=None if result.judged else "--swap-unjudged")
