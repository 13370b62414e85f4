"""Commands that write an index: index, label, reindex."""

from __future__ import annotations

import json
from pathlib import Path

import click

from searchcore.config import Config

from .common import (
    backend_option,
    cache_dir,
    device_option,
    display_path,
    engine_options,
    engine_settings,
    index_option,
    milvus_token_option,
    model_option,
    notice,
    progress_mode,
    progress_option,
    show_progress,
    wait_option,
)

__all__ = ["index_cmd", "label_cmd", "reindex_cmd", "watch_cmd", "run_line"]


@click.command("index")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="PATH...")
@index_option
@engine_options
@model_option
@click.option(
    "--chunk-size",
    type=int,
    default=None,
    metavar="TOKENS",
    help="Largest chunk in the model's tokens. Default: as large as the model takes (256 for the default).",
)
@click.option(
    "--chunk-overlap",
    type=int,
    default=32,
    show_default=True,
    metavar="TOKENS",
    help="Tokens shared by consecutive chunks of one section.",
)
@click.option("--batch-size", type=int, default=32, show_default=True, help="Texts per forward pass of the model.")
@progress_option
@backend_option
@device_option
@wait_option
@click.option(
    "--max-file-size",
    "max_file_mb",
    type=click.FloatRange(min=0, min_open=True),
    default=20.0,
    show_default=True,
    metavar="MB",
    help="Skip larger files (counted in the summary) instead of reading them.",
)
@click.option(
    "--classifier",
    "classifier_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Also label each document with this classifier (a facet `query --label` filters on); "
    "the index keeps labelling new documents with it.",
)
@click.option(
    "--ocr",
    type=click.Choice(["rapidocr", "tesseract", "none"]),
    default=None,
    help="How text is read from images and scanned PDF pages. Default: the index's own, else rapidocr.",
)
@click.option(
    "--caption-model",
    metavar="NAME_OR_PATH",
    default=None,
    help="An image-to-text model (a local folder or a cached hub name) that describes each image; "
    "'none' for no captions. The index remembers it; changing it reads only images again.",
)
@click.option(
    "--ann",
    type=click.Choice(["auto", "flat", "hnsw", "ivf"]),
    default=None,
    help="Vector search: exact (flat), approximate (ivf, hnsw), or auto: exact below 50,000 chunks, "
    "IVF above. Default: the index's own, else auto. A change rebuilds the vector file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run's summary as JSON.")
def index_cmd(
    paths,
    index_dir,
    model,
    chunk_size,
    chunk_overlap,
    batch_size,
    progress,
    backend,
    device,
    wait,
    max_file_mb,
    classifier_dir,
    ocr,
    caption_model,
    ann,
    as_json,
    **engine,
):
    """Index folders or files (text, Markdown, reStructuredText, HTML, PDF, Word, PowerPoint,
    OpenDocument, EPUB, notebooks, RTF, gettext, SVG, JSON/JSONL records, images).

    Images and scanned PDF pages are read by OCR; with --caption-model, images are also
    described in words.

    Re-running embeds only new or changed files, removes what was deleted, and re-links a
    moved or copied file without embedding it again; a run with nothing changed never loads
    the model. Prints one summary line and names the files it skipped, with the reason.
    """
    from indexer.build import build_index

    for path in paths:
        if not path.exists():
            raise click.UsageError(f"no such file or folder: {path}")
    config = Config(
        index_dir=index_dir,
        model=model,
        chunk_tokens=chunk_size,
        chunk_overlap=chunk_overlap,
        batch_size=batch_size,
        backend=backend,
        device=device,
        cache_dir=cache_dir(),
        max_file_mb=max_file_mb,
        ocr=ocr,
        caption_model=caption_model,
        ann=ann,
        **engine_settings(engine),
    )
    summary = build_index(config, list(paths), progress=progress_mode(progress), wait=wait, classifier=classifier_dir)
    notice(summary.notice)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), indent=2))
        return
    click.echo(f"indexed {', '.join(str(p) for p in paths)} into {index_dir}: {summary.line()}")
    _name_some("skipped", summary.skipped_files, "searchctl files --skipped")
    _name_some("warning", summary.notes, "searchctl index --json")


# How many skipped files (and warnings) the terminal names; --json and `files` have all.
SHOWN = 5


def _name_some(label: str, items: list[tuple[str, str]], more: str) -> None:
    for path, why in items[:SHOWN]:
        click.echo(f"{label}: {display_path(path)}: {why}", err=True)
    if len(items) > SHOWN:
        click.echo(f"{label}: ... and {len(items) - SHOWN:,} more (`{more}` lists them all)", err=True)


@click.command("label")
@index_option
@click.option(
    "--classifier",
    "classifier_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Classifier folder to label with. Default: relabel with the index's own classifiers (what is stale).",
)
@click.option("--remove", "remove_facet", metavar="FACET", default=None, help="Forget one classifier's labels.")
@wait_option
@progress_option
@milvus_token_option
def label_cmd(index_dir, classifier_dir, remove_facet, wait, progress, milvus_token):
    """Label the documents of an existing index with a classifier; `query --label` then filters by it.

    Each classifier is a facet named after its folder; the index remembers it, and later
    `searchctl index` runs label new and changed documents with it."""
    from indexer.labels import label_index

    if classifier_dir is not None and remove_facet is not None:
        raise click.UsageError("give --classifier or --remove, not both")
    config = Config(index_dir=index_dir, cache_dir=cache_dir(), milvus_token=milvus_token)
    summaries = label_index(config, classifier_dir, progress=show_progress(progress), wait=wait, remove=remove_facet)
    for summary in summaries:
        notice(summary.notice)
        if remove_facet is not None:
            click.echo(f"removed facet {summary.facet}: {-summary.labelled:,} labels")
        elif summary.facet != "?":
            click.echo(f"labelled {index_dir}: {summary.line()} ({summary.seconds:.1f} s)")


@click.command("reindex")
@index_option
@milvus_token_option
@click.option(
    "--model", metavar="NAME_OR_PATH", default=None, help="Model to re-embed every chunk with (e.g. a fine-tuned one)."
)
@backend_option
@device_option
@click.option("--rollback", is_flag=True, help="Return to the model and vectors the last reindex replaced.")
@wait_option
@progress_option
def reindex_cmd(index_dir, model, backend, device, rollback, wait, progress, milvus_token):
    """Re-embed every stored chunk with another model and swap it in at once (no file is read).

    Queries, and a running daemon, go on with the old vectors until the swap; --rollback
    returns to the previous ones, which are kept until the next reindex. On Milvus the new
    vectors go into a new collection and the alias moves to it; --rollback moves it back."""
    from indexer.reindex import reindex
    from indexer.reindex import rollback as roll_back

    config = Config(index_dir=index_dir, cache_dir=cache_dir(), milvus_token=milvus_token, device=device)
    if rollback:
        if model is not None or backend is not None:
            raise click.UsageError("--rollback returns to the previous model; it takes no --model or --backend")
        summary = roll_back(config, progress=show_progress(progress), wait=wait)
        click.echo(f"rolled back {index_dir}: {summary.line()}")
        return
    if model is None:
        raise click.UsageError("give --model NAME_OR_PATH (or --rollback)")
    summary = reindex(config, model, backend=backend, progress=show_progress(progress), wait=wait)
    click.echo(f"reindexed {index_dir}: {summary.line()}")


def run_line(run) -> str:
    """One line for a run the watcher made."""
    from datetime import datetime

    stamp = datetime.fromtimestamp(run.started).strftime("%H:%M:%S")
    cause = "up to date" if run.events == 0 else f"{run.events:,} change{'s' if run.events != 1 else ''}"
    return f"{stamp} {cause}: {run.summary.line()}"


@click.command("watch")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path, exists=True), metavar="PATH...")
@index_option
@model_option
@backend_option
@device_option
@click.option(
    "--quiet-ms",
    type=click.IntRange(min=10, max=60_000),
    default=50,
    show_default=True,
    help="Start a run once the folders have had no new event for this long.",
)
@click.option(
    "--max-wait-ms",
    type=click.IntRange(min=10, max=600_000),
    default=1600,
    show_default=True,
    help="Gather a continuous burst of events for at most this long before a run.",
)
@milvus_token_option
def watch_cmd(paths, index_dir, model, backend, device, quiet_ms, max_wait_ms, milvus_token):
    """Keep the index current: index PATH... now, then again after every burst of changes.

    File-system events are debounced and coalesced (an editor's save, a git checkout of a
    thousand files become one run); each run is an incremental `searchctl index`. Prints one
    line per run; stop it with Ctrl-C."""
    from indexer.watch import watch

    config = Config(
        index_dir=index_dir,
        model=model,
        backend=backend,
        device=device,
        cache_dir=cache_dir(),
        milvus_token=milvus_token,
    )
    click.echo(f"watching {', '.join(str(p) for p in paths)} for {index_dir} (Ctrl-C stops)", err=True)
    runs = watch(
        config,
        list(paths),
        on_run=lambda run: click.echo(run_line(run)),
        quiet_ms=quiet_ms,
        max_wait_ms=max_wait_ms,
    )
    click.echo(f"stopped after {runs:,} runs", err=True)
