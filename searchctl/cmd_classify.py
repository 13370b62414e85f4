"""``searchctl classify``: label texts with a trained classifier."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from .common import (
    backend_option,
    cache_dir,
    snippet,
)

__all__ = ["classify_cmd"]


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
    "--classifier",
    "--model",
    "model_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="A classifier folder from `searchctl finetune classifier` (--model is the older spelling).",
)
@backend_option
@click.option("--json", "as_json", is_flag=True, help="Print label and score per input as JSON.")
def classify_cmd(text, text_file, model_dir, backend, as_json):
    """Label texts with a trained classifier: label and score per input."""
    from searchcore.classifier import load_classifier

    if (text is None) == (text_file is None):
        raise click.UsageError("give a TEXT or --file FILE, not both or neither")
    texts = [text] if text is not None else _read_texts(text_file)
    if not texts or any(not t.strip() for t in texts):
        raise click.UsageError("nothing to classify; give non-empty text")
    classifier = load_classifier(model_dir)
    predictions = classifier.predict(texts, backend=backend, cache_dir=cache_dir())
    rows: list[dict[str, Any]] = [
        {"text": t, "label": label, "score": round(score, 4)} for t, (label, score) in zip(texts, predictions)
    ]
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
