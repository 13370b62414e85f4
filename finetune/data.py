"""Labelled text for classifier training: JSONL or CSV rows with ``text`` and ``label``.

Every problem is reported as one line naming the file and line number, so a user can fix
the data rather than guess: a missing field, an empty text, a label that is neither a
string nor an integer, an eval label the training data never had, a single class.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from searchcore.errors import UsageError

__all__ = ["Examples", "load_examples", "label_names", "jsonl_rows"]


def jsonl_rows(path: Path):
    """(``file:line``, parsed object) for each non-blank line of a JSONL file; a line
    that is not JSON is a UsageError naming it."""
    with Path(path).open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{number}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}:{number}: not valid JSON ({exc.msg})") from None


@dataclass(frozen=True)
class Examples:
    texts: list[str]
    labels: list[str | int]
    source: str

    def __len__(self) -> int:
        return len(self.texts)


def _check_row(row: object, where: str) -> tuple[str, str | int]:
    if not isinstance(row, dict):
        raise UsageError(f"{where}: expected an object with 'text' and 'label'")
    missing = [name for name in ("text", "label") if name not in row or row[name] is None]
    if missing:
        raise UsageError(f"{where}: missing field {' and '.join(repr(m) for m in missing)}")
    text, label = row["text"], row["label"]
    if not isinstance(text, str):
        raise UsageError(f"{where}: 'text' must be a string, not {type(text).__name__}")
    if not text.strip():
        raise UsageError(f"{where}: 'text' is empty")
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        raise UsageError(f"{where}: 'label' must be a string or an integer, not {json.dumps(label)}")
    if isinstance(label, str):
        label = label.strip()
        if not label:
            raise UsageError(f"{where}: 'label' is empty")
    return text, label


def _csv_label(value: str) -> str | int:
    value = value.strip()
    try:
        return int(value)
    except ValueError:
        return value


def load_examples(path: Path) -> Examples:
    """Rows of a ``.jsonl``/``.json`` (one object per line) or ``.csv``/``.tsv`` file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such data file: {path}")
    texts: list[str] = []
    labels: list[str | int] = []
    try:
        if path.suffix.lower() in (".csv", ".tsv"):
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.DictReader(handle, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
                if reader.fieldnames is None or not {"text", "label"} <= set(reader.fieldnames):
                    raise UsageError(f"{path}: the header must name the columns 'text' and 'label'")
                for row in reader:
                    row = {k: v for k, v in row.items() if k is not None}
                    if row.get("label") is not None:
                        row["label"] = _csv_label(row["label"])
                    text, label = _check_row(row, f"{path}:{reader.line_num}")
                    texts.append(text)
                    labels.append(label)
        else:
            for where, row in jsonl_rows(path):
                text, label = _check_row(row, where)
                texts.append(text)
                labels.append(label)
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not texts:
        raise UsageError(f"{path} holds no examples; each line needs 'text' and 'label'")
    kinds = {type(label) for label in labels}
    if len(kinds) > 1:
        raise UsageError(f"{path}: labels mix integers and names; use one or the other")
    return Examples(texts, labels, str(path))


def label_names(train: Examples, evaluation: Examples | None = None, names: list[str] | None = None) -> list[str]:
    """The classes, in id order: sorted integer labels (named by ``names`` when given) or
    sorted label strings. Fails on one class, and on eval labels unseen in training."""
    classes = sorted(set(train.labels))
    if len(classes) < 2:
        only = classes[0] if classes else "none"
        raise UsageError(f"{train.source} has only one class ({only}); a classifier needs at least two")
    if evaluation is not None:
        unknown = sorted({str(label) for label in evaluation.labels} - {str(c) for c in classes})
        if unknown:
            raise UsageError(
                f"{evaluation.source} has label(s) {', '.join(unknown)} that {train.source} never has; "
                "fix the data or add training examples for them"
            )
        if {type(label) for label in evaluation.labels} != {type(classes[0])}:
            raise UsageError(f"{evaluation.source}: its labels are not of the same kind as {train.source}'s")
    if names is not None:
        if not all(isinstance(c, int) for c in classes):
            raise UsageError("--label-names names integer labels; these labels already have names")
        if len(names) != len(classes) or len(set(names)) != len(names) or not all(n.strip() for n in names):
            raise UsageError(
                f"--label-names needs {len(classes)} distinct names (for labels {', '.join(map(str, classes))}), "
                f"got {len(names)}"
            )
        return [n.strip() for n in names]
    return [str(c) for c in classes]
