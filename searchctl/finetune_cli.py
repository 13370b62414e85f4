"""Commands around fine-tuned models: finetune classifier|embedder, classify, label, pairs, reindex."""

from __future__ import annotations

import json
from pathlib import Path

import click

from searchcore.config import Config
from searchcore.errors import SearchctlError

from .common import (
    backend_option,
    cache_dir,
    index_option,
    notice,
    progress_option,
    show_progress,
    snippet,
    wait_option,
)

__all__ = ["register"]


@click.group("finetune")
def finetune_group() -> None:
    """Adapt models to your data: text classifiers whose labels become search filters."""


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


@click.command("classify")
@click.argument("text", required=False)
@click.option(
    "--file",
    "text_file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Classify every line of a text file, or every 'text' of a JSONL file.",
)
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="A classifier folder from `searchctl finetune classifier`.",
)
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print label and score per input as JSON.")
def classify_cmd(text, text_file, model_dir, backend, as_json):
    """Label texts with a trained classifier: label and score per input."""
    from finetune.classifier import load_classifier

    if (text is None) == (text_file is None):
        raise click.UsageError("give a TEXT or --file FILE, not both or neither")
    texts = [text] if text is not None else _read_texts(text_file)
    if not texts or any(not t.strip() for t in texts):
        raise click.UsageError("nothing to classify; give non-empty text")
    classifier = load_classifier(model_dir)
    predictions = classifier.predict(texts, backend=backend, cache_dir=cache_dir())
    rows = [{"text": t, "label": label, "score": round(score, 4)} for t, (label, score) in zip(texts, predictions)]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    width = max(len(r["label"]) for r in rows)
    for row in rows:
        click.echo(f"{row['label']:<{width}}  {row['score']:.4f}  {snippet(row['text'], 100)}")


def _read_texts(path: Path) -> list[str]:
    from finetune.data import jsonl_rows
    from searchcore.errors import UsageError

    try:
        if path.suffix.lower() in (".jsonl", ".json"):
            texts = []
            for where, row in jsonl_rows(path):
                if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
                    raise UsageError(f"{where}: needs a non-empty 'text' field")
                texts.append(row["text"])
            return texts
        return [line for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None


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
def label_cmd(index_dir, classifier_dir, remove_facet, wait, progress):
    """Label the documents of an existing index with a classifier; `query --label` then filters by it.

    Each classifier is a facet named after its folder; the index remembers it, and later
    `searchctl index` runs label new and changed documents with it."""
    from indexer.labels import label_index

    if classifier_dir is not None and remove_facet is not None:
        raise click.UsageError("give --classifier or --remove, not both")
    config = Config(index_dir=index_dir, cache_dir=cache_dir())
    summaries = label_index(config, classifier_dir, progress=show_progress(progress), wait=wait, remove=remove_facet)
    for summary in summaries:
        notice(summary.notice)
        if remove_facet is not None:
            click.echo(f"removed facet {summary.facet}: {-summary.labelled:,} labels")
        elif summary.facet != "?":
            click.echo(f"labelled {index_dir}: {summary.line()} ({summary.seconds:.1f} s)")


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
    force,
    progress,
    as_json,
):
    """Fine-tune the embedder on query/passage pairs; print quality before and after.

    Hard negatives come from the index; the output is a sentence-transformers folder with
    a model card. Use it with `searchctl reindex --model DIR`."""
    from finetune.embedder import train_embedder
    from finetune.pairs import load_beir_pairs, load_pairs

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
        index_dir=index_dir,
        eval_beir=(eval_beir, eval_split) if eval_beir else None,
        cache_dir=cache_dir(),
        progress=show_progress(progress),
    )
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        click.echo(f"evaluated on {result.evaluation}")
        for name in sorted(set(result.before) | set(result.after)):
            before, after = result.before.get(name, float("nan")), result.after.get(name, float("nan"))
            click.echo(f"{name:<16} {before:.4f} -> {after:.4f} ({after - before:+.4f})")
        click.echo(
            f"trained {out} on {result.pairs:,} pairs ({result.hard_negatives:,} hard negatives) "
            f"in {result.seconds_training:.0f} s ({result.seconds_total:.0f} s in all)"
        )
    if not result.improved:
        message = (
            f"the fine-tuned model is not better than {result.base} ({result.primary} "
            f"{result.before.get(result.primary, 0):.4f} -> {result.after.get(result.primary, 0):.4f})"
        )
        if not force:
            raise SearchctlError(f"{message}; it is in {out} anyway, --force accepts it")
        notice(message)


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
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed (which sentences).")
def pairs_generate_cmd(index_dir, out, per_document, seed):
    """Make query/passage pairs from the indexed documents: title -> body, heading -> section,
    and sentence -> rest of its chunk (inverse cloze). Prints how many of each kind."""
    from finetune.pairs import generate_pairs, write_pairs
    from searchcore.store import Store

    with Store.open(index_dir) as store:
        pairs, counts = generate_pairs(store, seed=seed, max_per_document=per_document)
    if not pairs:
        raise SearchctlError(f"no pairs could be made from {index_dir}: its documents are too short")
    write_pairs(pairs, out)
    kinds = ", ".join(f"{counts.get(kind, 0):,} {kind}" for kind in ("title", "heading", "inverse-cloze"))
    click.echo(f"wrote {len(pairs):,} pairs to {out}: {kinds}")


@click.command("reindex")
@index_option
@click.option(
    "--model", metavar="NAME_OR_PATH", default=None, help="Model to re-embed every chunk with (e.g. a fine-tuned one)."
)
@backend_option
@click.option("--rollback", is_flag=True, help="Return to the model and vectors the last reindex replaced.")
@wait_option
@progress_option
def reindex_cmd(index_dir, model, backend, rollback, wait, progress):
    """Re-embed every stored chunk with another model and swap it in at once (no file is read).

    Queries, and a running daemon, go on with the old vectors until the swap; --rollback
    returns to the previous ones, which are kept until the next reindex."""
    from indexer.reindex import reindex
    from indexer.reindex import rollback as roll_back

    config = Config(index_dir=index_dir, cache_dir=cache_dir())
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


def register(cli: click.Group) -> None:
    cli.add_command(finetune_group)
    cli.add_command(classify_cmd)
    cli.add_command(label_cmd)
    cli.add_command(pairs_group)
    cli.add_command(reindex_cmd)
