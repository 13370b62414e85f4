"""Commands around text classifiers: ``finetune classifier``, ``classify`` and ``label``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from searchcore.config import Config

from .common import backend_option, cache_dir, index_option, notice, progress_option, show_progress, snippet

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
    from searchcore.errors import UsageError

    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None
    if path.suffix.lower() in (".jsonl", ".json"):
        texts = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
                raise UsageError(f"{path}:{number}: needs a non-empty 'text' field")
            texts.append(row["text"])
        return texts
    return [line for line in lines if line.strip()]


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
@click.option("--wait", is_flag=True, help="If another process is writing the index, wait for it instead of failing.")
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


def register(cli: click.Group) -> None:
    cli.add_command(finetune_group)
    cli.add_command(classify_cmd)
    cli.add_command(label_cmd)
