"""Fine-tuning commands: finetune classifier|embedder, and the training pairs they read."""

from __future__ import annotations

import json
from pathlib import Path

import click

from searchcore.errors import SearchctlError

from .cmd_generate import finetune_generator_cmd, generator_option
from .common import (
    backend_option,
    cache_dir,
    device_option,
    index_option,
    notice,
    progress_option,
    show_progress,
)

__all__ = ["finetune_group", "pairs_group", "echo_before_after"]


@click.group("finetune")
def finetune_group() -> None:
    """Adapt models to your data: the embedder, the generator, and text classifiers whose labels become filters."""


finetune_group.add_command(finetune_generator_cmd)


@finetune_group.command("classifier")
@click.option(
    "--train",
    "train_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Training data: JSONL or CSV with 'text' and 'label' (names or integers).",
)
@click.option(
    "--eval",
    "eval_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Evaluation data in the same form. Default: a stratified 10% held out of --train.",
)
@click.option(
    "--test",
    "test_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Test data, scored once at the end by the model kept (never used to choose it).",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder to write the classifier to.")
@click.option(
    "--method",
    type=click.Choice(["full", "head"]),
    default="full",
    show_default=True,
    help="full: fine-tune the whole transformer; head: logistic regression on frozen sentence embeddings.",
)
@click.option(
    "--base",
    metavar="NAME_OR_PATH",
    default=None,
    help="Model to start from (a sentence-transformers or transformers folder). Default: all-MiniLM-L6-v2.",
)
@click.option("--epochs", type=click.FloatRange(min=0.01), default=None, help="Epochs of full training [default: 3].")
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Peak learning rate [default: 1e-4]."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Examples per step.")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed (data order, held-out split, head).")
@click.option(
    "--label-names",
    metavar="NAME,NAME,...",
    default=None,
    help="Names for integer labels, in label order (e.g. negative,positive for 0 and 1).",
)
@backend_option
@progress_option
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the confusion matrix (of --test when given, else of --eval) to this PNG file.",
)
@device_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def finetune_classifier_cmd(
    train_file,
    eval_file,
    test_file,
    out,
    method,
    base,
    epochs,
    lr,
    batch_size,
    seed,
    label_names,
    backend,
    progress,
    plot,
    device,
    as_json,
):
    """Train a text classifier; print accuracy, macro-F1 and seconds (on --test when given, else on --eval).

    The folder works with `searchctl classify`, `searchctl index --classifier` and, for the
    full method, transformers.pipeline("text-classification", model=DIR)."""
    from finetune.classifier import train_classifier
    from finetune.data import load_examples

    if method == "head" and (epochs is not None or lr is not None):
        raise click.UsageError("--epochs and --lr apply to --method full; the head is fitted in one go")
    train = load_examples(train_file)
    evaluation = load_examples(eval_file) if eval_file else None
    test = load_examples(test_file) if test_file else None
    names = [n.strip() for n in label_names.split(",")] if label_names else None
    result = train_classifier(
        train,
        out,
        evaluation=evaluation,
        test=test,
        method=method,
        base=base,
        names=names,
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        seed=seed,
        backend=backend,
        device=device,
        cache_dir=cache_dir(),
        progress=show_progress(progress),
    )
    if plot:
        from .plots import confusion_chart

        scored = result.test or {"confusion": result.confusion, "source": result.eval_source}
        confusion_chart(scored["confusion"], result.labels, plot, title=f"{out.name}: {scored['source']}")
    if as_json:
        click.echo(json.dumps({"out": str(out), **result.to_dict()}, indent=2))
        return
    for epoch in result.epochs:
        click.echo(f"epoch {epoch['epoch']:g}: accuracy {epoch['accuracy']:.4f}, macro-F1 {epoch['macro_f1']:.4f}")
    click.echo(f"trained {out} ({method}): {result.line()}")


@finetune_group.command("embedder")
@click.option(
    "--pairs",
    "pairs_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Pairs: JSONL with query, positive[, negative], or TSV with those columns.",
)
@click.option(
    "--beir",
    "beir_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Or a BEIR folder: each judged query with each relevant document (--split).",
)
@click.option("--split", default="train", show_default=True, help="Which qrels/SPLIT.tsv of --beir to train on.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder to write the model to.")
@index_option
@click.option(
    "--base",
    metavar="NAME_OR_PATH",
    default=None,
    help="Model to start from. Default: the index's model (all-MiniLM-L6-v2 without an index).",
)
@click.option(
    "--epochs", type=click.FloatRange(min=0.01), default=3.0, show_default=True, help="Passes over the pairs."
)
@click.option("--batch-size", type=click.IntRange(min=2), default=32, show_default=True, help="Pairs per step.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True, help="Peak rate.")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed (order, held-out split).")
@click.option(
    "--hard-negatives/--no-hard-negatives",
    default=True,
    show_default=True,
    help="Mine a hard negative per query from the index (--index).",
)
@click.option(
    "--eval-beir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Score before and after on this BEIR folder's --eval-split over --index (instead of held-out pairs).",
)
@click.option("--eval-split", default="test", show_default=True, help="Split of --eval-beir to score on.")
@click.option(
    "--max-pairs",
    type=click.IntRange(min=2),
    default=None,
    help="Train on a random sample of this many pairs (by --seed), e.g. of a large generated set.",
)
@click.option(
    "--chunk-positives/--whole-positives",
    default=True,
    show_default=True,
    help="Train on the chunk of each positive document (by id in --index) that its query is closest to.",
)
@click.option(
    "--precision",
    type=click.Choice(["auto", "bf16", "fp32"]),
    default="auto",
    show_default=True,
    help="Number format of training; auto is bf16 where the CPU has native bfloat16 (about 1.5x faster).",
)
@device_option
@click.option("--force", is_flag=True, help="Keep a model that is not better than its base and exit 0.")
@progress_option
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def finetune_embedder_cmd(
    pairs_file,
    beir_dir,
    split,
    out,
    index_dir,
    base,
    epochs,
    batch_size,
    lr,
    seed,
    hard_negatives,
    eval_beir,
    eval_split,
    max_pairs,
    chunk_positives,
    precision,
    device,
    force,
    progress,
    as_json,
):
    """Fine-tune the embedder on query/passage pairs; print quality before and after.

    Hard negatives come from the index; the output is a sentence-transformers folder with
    a model card. Use it with `searchctl reindex --model DIR`."""
    from finetune.embedder import train_embedder
    from finetune.pairs import load_beir_pairs, load_pairs
    from finetune.verdict import require_better
    from indexer.reindex import reembedded_copy

    if (pairs_file is None) == (beir_dir is None):
        raise click.UsageError("give --pairs FILE or --beir DIR, not both or neither")
    pairs = load_pairs(pairs_file) if pairs_file else load_beir_pairs(beir_dir, split)
    if max_pairs is not None and len(pairs) > max_pairs:
        import random

        pairs = random.Random(seed).sample(pairs, max_pairs)
    result = train_embedder(
        pairs,
        out,
        base=base,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        hard_negatives=hard_negatives,
        chunk_positives=chunk_positives,
        precision=precision,
        device=device,
        index_dir=index_dir,
        eval_beir=(eval_beir, eval_split) if eval_beir else None,
        reembed=reembedded_copy,
        cache_dir=cache_dir(),
        progress=show_progress(progress),
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(f"evaluated on {result.evaluation}")
        echo_before_after(result)
        click.echo(
            f"trained {out} on {result.pairs:,} pairs ({result.hard_negatives:,} hard negatives) "
            f"in {result.seconds_training:.0f} s ({result.seconds_total:.0f} s in all)"
        )
    notice(require_better(result, force=force))


def echo_before_after(result) -> None:
    """One line per metric of a fine-tuned embedder: before -> after (change)."""
    for name in sorted(set(result.before) | set(result.after)):
        before, after = result.before.get(name, float("nan")), result.after.get(name, float("nan"))
        click.echo(f"{name:<16} {before:.4f} -> {after:.4f} ({after - before:+.4f})")


@click.group("pairs")
def pairs_group() -> None:
    """Training pairs for `searchctl finetune embedder`."""


@pairs_group.command("generate")
@index_option
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("pairs.jsonl"),
    show_default=True,
    help="JSONL file to write the pairs to.",
)
@click.option(
    "--per-document", type=click.IntRange(min=1), default=3, show_default=True, help="Most pairs per document."
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed (which sentences or chunks).")
@click.option(
    "--queries",
    is_flag=True,
    help="Have the generator write a query for each of --sample chunks, kept only if the index finds "
    "its chunk's document in its top --depth (doc2query with round-trip filtering).",
)
@click.option(
    "--sample", type=click.IntRange(min=1), default=1500, show_default=True, help="With --queries: chunks to write for."
)
@click.option(
    "--depth",
    type=click.IntRange(min=1, max=100),
    default=5,
    show_default=True,
    help="With --queries: keep a query whose document the index ranks in this many first hits.",
)
@click.option(
    "--examples",
    "examples_file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="With --queries: labelled pairs (JSONL/TSV, as --pairs) whose first three show the generator the style.",
)
@generator_option
@progress_option
@click.option("--json", "as_json", is_flag=True, help="With --queries: print the report as JSON.")
def pairs_generate_cmd(
    index_dir, out, per_document, seed, queries, sample, depth, examples_file, model, progress, as_json
):
    """Make query/passage pairs from the indexed documents: title -> body, heading -> section,
    and sentence -> rest of its chunk (inverse cloze). Prints how many of each kind.

    With --queries, the generator writes the queries instead, filtered by round-trip
    consistency; the report says how many were written, kept and why the rest were dropped."""
    from finetune.pairs import generate_pairs, load_pairs, write_pairs
    from searchcore.config import Config
    from searchcore.snapshot import open_snapshot

    if queries:
        from finetune.queries import write_queries
        from searchcore.generator import Generator
        from searchcore.search import Searcher

        examples = load_pairs(examples_file) if examples_file else None
        if not (Path(index_dir) / "index.db").exists():
            raise click.UsageError(f"no index at {index_dir}; build one with `searchctl index`")
        with Searcher(Config(index_dir=index_dir, cache_dir=cache_dir())) as searcher:
            generator = Generator(model, cache_dir=cache_dir())
            run = write_queries(
                searcher,
                generator,
                sample=sample,
                depth=depth,
                examples=examples,
                seed=seed,
                progress=show_progress(progress),
            )
        if not run.pairs:
            raise SearchctlError(f"no generated query was kept: {run.line()}")
        write_pairs(run.pairs, out)
        if as_json:
            click.echo(json.dumps({"out": str(out), **run.to_dict()}, indent=2))
            return
        for item in run.samples:
            verdict = "kept" if item["kept"] else f"dropped ({item['reason']})"
            click.echo(f"{verdict}: {item['query']}")
        click.echo(f"wrote {run.kept:,} pairs to {out}: {run.line()}")
        return
    if examples_file is not None:
        raise click.UsageError("--examples goes with --queries")
    with open_snapshot(Config(index_dir=index_dir)) as snapshot:
        pairs, counts = generate_pairs(snapshot.records, seed=seed, max_per_document=per_document)
    if not pairs:
        raise SearchctlError(f"no pairs could be made from {index_dir}: its documents are too short")
    write_pairs(pairs, out)
    kinds = ", ".join(f"{counts.get(kind, 0):,} {kind}" for kind in ("title", "heading", "inverse-cloze"))
    click.echo(f"wrote {len(pairs):,} pairs to {out}: {kinds}")
