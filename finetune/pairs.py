"""Query/passage pairs for fine-tuning the embedder: read, validate, generate.

Read: JSONL (``{"query", "positive"[, "negative"]}`` per line), TSV (query, positive
[, negative] columns, an optional header), or a BEIR folder (``--beir DIR --split train``:
each judged query with each relevant document, title and text, as its positive; the
document id is kept so hard-negative mining never picks a positive). Every problem names
the file and line.

Generate (``searchctl pairs generate``), for a corpus without labelled pairs, from the
documents already in an index: title -> body for records and documents with titles,
heading -> section for Markdown sections, and inverse cloze (one sentence -> the rest of
its chunk) for any chunk of a few sentences.
"""

from __future__ import annotations

import csv
import json
import random
import re
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from searchcore.engine import Records
from searchcore.errors import UsageError

from .data import jsonl_rows

__all__ = ["Pair", "load_pairs", "load_beir_pairs", "generate_pairs", "write_pairs"]


@dataclass(frozen=True)
class Pair:
    query: str
    positive: str
    negative: str | None = None
    positive_id: str | None = None  # the positive's document id (BEIR), to keep it out of negatives
    kind: str = "given"

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and k != "kind"} | {"kind": self.kind}


def _optional_text(value: object, field: str, where: str) -> str | None:
    return None if value is None else _text(value, field, where)


def _text(value: object, field: str, where: str) -> str:
    if value is None:
        raise UsageError(f"{where}: missing field {field!r}")
    if not isinstance(value, str):
        raise UsageError(f"{where}: {field!r} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise UsageError(f"{where}: {field!r} is empty")
    return value


def load_pairs(path: Path) -> list[Pair]:
    """Pairs from a JSONL or TSV file."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no pairs file at {path}")
    pairs: list[Pair] = []
    try:
        if path.suffix.lower() in (".tsv", ".tab"):
            with path.open(newline="", encoding="utf-8-sig") as handle:
                for number, row in enumerate(csv.reader(handle, delimiter="\t"), 1):
                    if not row or (number == 1 and [c.strip().lower() for c in row[:2]] == ["query", "positive"]):
                        continue
                    where = f"{path}:{number}"
                    if len(row) not in (2, 3):
                        raise UsageError(f"{where}: expected 2 or 3 tab-separated columns, found {len(row)}")
                    negative = _optional_text(row[2], "negative", where) if len(row) == 3 else None
                    pairs.append(Pair(_text(row[0], "query", where), _text(row[1], "positive", where), negative))
        else:
            for where, row in jsonl_rows(path):
                if not isinstance(row, dict):
                    raise UsageError(f"{where}: expected an object with 'query' and 'positive'")
                pairs.append(
                    Pair(
                        _text(row.get("query"), "query", where),
                        _text(row.get("positive"), "positive", where),
                        _optional_text(row.get("negative"), "negative", where),
                        # The positive's document id (written by `pairs generate`), so mining
                        # never picks another chunk of the same document as its negative.
                        positive_id=str(row["positive_id"]) if row.get("positive_id") is not None else None,
                        kind=str(row.get("kind") or "given"),
                    )
                )
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if not pairs:
        raise UsageError(f"{path} holds no pairs")
    return pairs


def load_beir_pairs(folder: Path, split: str) -> list[Pair]:
    """One pair per (query, relevant document) of a BEIR split; unknown ids name their line."""
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.exists():
        have = sorted(p.stem for p in (folder / "qrels").glob("*.tsv")) if (folder / "qrels").is_dir() else []
        raise UsageError(f"no split {split!r} in {folder} (have: {', '.join(have) or 'none'})")
    queries: dict[str, str] = {}
    for number, line in enumerate((folder / "queries.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                queries[str(row["_id"])] = row["text"]
            except (ValueError, KeyError, TypeError):
                raise UsageError(f"{folder / 'queries.jsonl'}:{number}: not a query with _id and text") from None
    corpus: dict[str, str] = {}
    for number, line in enumerate((folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                row = json.loads(line)
                title = (row.get("title") or "").strip()
                corpus[str(row["_id"])] = f"{title}\n{row['text']}" if title else row["text"]
            except (ValueError, KeyError, TypeError):
                raise UsageError(f"{folder / 'corpus.jsonl'}:{number}: not a document with _id and text") from None
    pairs = []
    with qrels_path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter="\t"), 1):
            if not row or (number == 1 and row[0] == "query-id"):
                continue
            where = f"{qrels_path}:{number}"
            if len(row) < 3:
                raise UsageError(f"{where}: expected query-id, corpus-id, score")
            qid, did, score = row[0], row[1], row[2]
            if qid not in queries:
                raise UsageError(f"{where}: unknown query id {qid!r} (not in queries.jsonl)")
            if did not in corpus:
                raise UsageError(f"{where}: unknown document id {did!r} (not in corpus.jsonl)")
            try:
                relevant = float(score) > 0
            except ValueError:
                raise UsageError(f"{where}: the score {score!r} is not a number") from None
            if relevant and queries[qid].strip() and corpus[did].strip():
                pairs.append(Pair(queries[qid], corpus[did], positive_id=did))
    if not pairs:
        raise UsageError(f"{qrels_path} judges no document relevant")
    return pairs


def write_pairs(pairs: list[Pair], path: Path) -> None:
    with Path(path).open("w", encoding="utf-8") as handle:
        for pair in pairs:
            handle.write(json.dumps(pair.to_dict(), ensure_ascii=False) + "\n")


# -- generation ---------------------------------------------------------------------------

_SENTENCE = re.compile(r"[^.!?]+[.!?]+(?:\s+|$)")
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.+?)\s*#*\s*$", re.MULTILINE)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.findall(" ".join(text.split())) if len(s.split()) >= 4]


def generate_pairs(records: Records, *, seed: int = 42, max_per_document: int = 3) -> tuple[list[Pair], Counter]:
    """Pairs from the documents of an index, read from its pinned ``records`` (see the
    module docstring); (pairs, counts by kind)."""
    rng = random.Random(seed)
    pairs: list[Pair] = []
    documents = records.document_list()
    chunks = records.document_chunks([d.doc_id for d in documents])
    for doc_id, key, title, path, kind in documents:
        texts = [text for _, text in chunks.get(doc_id, [])]
        if not texts:
            continue
        doc_key = key or path
        made = 0
        if title and title.strip() and kind != "markdown" and len(texts[0].split()) >= 8:
            pairs.append(Pair(title.strip(), texts[0], positive_id=doc_key, kind="title"))
            made += 1
        if kind == "markdown":
            for text in texts:
                match = _HEADING.match(text)
                body = text[match.end() :].strip() if match else ""
                if match and len(body.split()) >= 8 and made < max_per_document:
                    pairs.append(Pair(match.group(2), body, positive_id=doc_key, kind="heading"))
                    made += 1
        for text in rng.sample(texts, len(texts)):
            if made >= max_per_document:
                break
            sentences = _sentences(text)
            if len(sentences) < 3:
                continue
            pick = rng.randrange(len(sentences))
            rest = " ".join(s for i, s in enumerate(sentences) if i != pick)
            pairs.append(Pair(sentences[pick], rest, positive_id=doc_key, kind="inverse-cloze"))
            made += 1
    return pairs, Counter(p.kind for p in pairs)
