"""``ask``: the sentences of the best passages that answer a question, each cited.

No generator is needed. The question is searched (hybrid by default, one hit per
document with its next best passages); every sentence of those passages is scored against
the question by meaning (the index's own embedder: the question as a query, the sentence
as a passage) and by words (the share of the question's terms it holds, each weighted by
how rare it is among the candidate sentences), plus a prior for its document's rank. The
best sentences are kept up to a cap (``max_sentences``, ``max_chars``, ``per_document``),
neighbours of one passage are merged into one quote, and each quote is cited
``[n] path:lines``.

With a generator (``write_answer``), a short answer is written from those quotes alone,
the model asked to keep their ``[n]`` marks; citations that point at no quote are dropped.
How far the default 135M-parameter model can be trusted with it is measured in the README.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from .options import SearchOptions
from .search import Hit, Searcher
from .snippets import query_terms, stems

__all__ = ["Quote", "Answer", "ask", "write_answer", "ASK_K", "MAX_SENTENCES", "MAX_CHARS", "PER_DOCUMENT"]

# Documents searched for sentences, sentences quoted, characters quoted, and sentences
# quoted from one document: one by default, so that the quotes come from as many places
# as they can (on SciFact's train claims, 1 quoted a judged document for 165 of 200
# claims, 2 for 154, 3 for 153; hybrid search's top 3 documents for 158: bench/ask.py).
ASK_K = 5
MAX_SENTENCES = 4
MAX_CHARS = 900
PER_DOCUMENT = 1
# Weights of a sentence's score: cosine to the question + WORDS * share of the question's
# terms + RANK / (document rank + 1). Chosen with PER_DOCUMENT on SciFact's train claims
# (bench/ask.py --tune 200), never on the test claims the README reports.
WORDS = 0.6
RANK = 0.05
# A sentence scoring below FLOOR times the best one is not quoted (no filler to reach the
# caps): the highest floor that still quoted a judged document for as many of SciFact's
# train claims as hybrid search's top 3 documents do (bench/ask.py --tune).
FLOOR = 0.7
# A sentence shorter than this (characters) is a heading or a fragment: never quoted alone.
_SHORTEST = 20

_SENTENCE = re.compile(r"(?<=[.!?。！？])[\"')\]]*\s+|\n\s*\n|\n(?=\s*(?:[-*+•]|\d+[.)]|#)\s)")


_ENDS = re.compile(r"[.!?:;。！？][\"')\]]*$")


@dataclass(frozen=True)
class Quote:
    n: int  # the citation's number
    text: str
    path: str
    relpath: str
    handle: str
    lines: tuple[int, int]
    title: str | None
    chunk_id: int
    score: float

    @property
    def citation(self) -> str:
        return f"[{self.n}] {self.relpath}:{self.lines[0]}-{self.lines[1]}"

    def to_dict(self) -> dict:
        out = asdict(self)
        out["lines"] = list(self.lines)
        out["citation"] = self.citation
        return out


@dataclass
class Answer:
    question: str
    quotes: list[Quote]
    generation: int
    took_ms: float
    answer: str | None = None  # written by a generator from the quotes, with --generate
    generator: str | None = None

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.answer,
            "generator": self.generator,
            "quotes": [q.to_dict() for q in self.quotes],
            "generation": self.generation,
            "took_ms": round(self.took_ms, 3),
        }


@dataclass
class _Sentence:
    text: str
    hit: Hit
    doc_rank: int
    position: int  # order inside its chunk
    lines: tuple[int, int]
    score: float = 0.0


def _heading(text: str, position: int, title: str | None) -> bool:
    """A title or heading line: no answer in itself, and never quoted."""
    if text.startswith("#") or (title and text.casefold() == title.strip().casefold()):
        return True
    return position == 0 and "\n" not in text and len(text) < 80 and not _ENDS.search(text)


def _sentences(hit: Hit, doc_rank: int) -> list[_Sentence]:
    out, position = [], 0
    text = hit.text
    breaks = list(_SENTENCE.finditer(text))
    starts = [0, *(m.end() for m in breaks)]
    bounds = [*(m.start() for m in breaks), len(text)]
    for start, end in zip(starts, bounds):
        piece = text[start:end]
        stripped = piece.strip()
        if stripped and not _heading(stripped, position, hit.title):
            lead = len(piece) - len(piece.lstrip())
            first = hit.lines[0] + text[: start + lead].count("\n")
            last = first + stripped.count("\n")
            out.append(_Sentence(" ".join(stripped.split()), hit, doc_rank, position, (first, last)))
        position += 1 if stripped else 0
    return out


def _word_scores(question: str, sentences: list[_Sentence]) -> np.ndarray:
    """The idf-weighted share of the question's terms each sentence holds."""
    terms = query_terms(question)
    if not terms:
        return np.zeros(len(sentences), np.float32)
    held = [stems(s.text) & terms for s in sentences]
    n = len(sentences)
    weight = {t: math.log(1 + n / (1 + sum(t in h for h in held))) for t in terms}
    total = sum(weight.values())
    return np.array([sum(weight[t] for t in h) / total for h in held], np.float32)


def ask(
    searcher: Searcher,
    question: str,
    *,
    k: int = ASK_K,
    max_sentences: int = MAX_SENTENCES,
    max_chars: int = MAX_CHARS,
    options: SearchOptions | None = None,
    per_document: int = PER_DOCUMENT,
    words: float = WORDS,
    rank: float = RANK,
    floor: float = FLOOR,
) -> Answer:
    """The quotes that answer ``question`` (see the module's docstring)."""
    started = time.perf_counter()
    options = replace(options or SearchOptions(), k=k, per_doc=True, offset=0)
    found = searcher.run([question], options)[0]
    candidates: list[_Sentence] = []
    for doc_rank, hit in enumerate(found):
        for chunk in (hit, *hit.passages):
            candidates += _sentences(chunk, doc_rank)
    quotes: list[Quote] = []
    if candidates:
        question_vector = searcher.query_embedder.embed([question])[0]
        vectors = searcher.embedder.embed([s.text for s in candidates])
        cosine = vectors @ question_vector
        shares = _word_scores(question, candidates)
        for s, cos, share in zip(candidates, cosine, shares):
            s.score = float(cos) + words * float(share) + rank / (s.doc_rank + 1) - (len(s.text) < _SHORTEST)
        best = max(s.score for s in candidates)
        kept = [s for s in candidates if best <= 0 or s.score >= floor * best]
        quotes = _quotes(kept, candidates, searcher, max_sentences, max_chars, per_document)
    took = (time.perf_counter() - started) * 1000
    return Answer(question, quotes, searcher.generation, took)


def _quotes(
    candidates: list[_Sentence],
    context: list[_Sentence],
    searcher: Searcher,
    max_sentences: int,
    max_chars: int,
    per_document: int,
) -> list[Quote]:
    """The best of ``candidates`` within the caps, each sentence once; a neighbour of a chosen
    sentence (from ``context``: every sentence scored) joins it, and neighbours of one chunk
    are merged into one quote."""
    chosen: list[_Sentence] = []
    seen: set[tuple[int, str]] = set()
    taken: dict[int, int] = {}  # doc id -> sentences chosen from it
    size = 0
    for s in sorted(candidates, key=lambda s: -s.score):
        if len(chosen) >= max_sentences:
            break
        if (s.hit.doc_id, s.text) in seen or taken.get(s.hit.doc_id, 0) >= per_document:
            continue
        if chosen and size + len(s.text) > max_chars:
            continue
        seen.add((s.hit.doc_id, s.text))
        taken[s.hit.doc_id] = taken.get(s.hit.doc_id, 0) + 1
        chosen.append(s)
        size += len(s.text)
    # then, within the characters left, a chosen sentence's neighbours join its quote, the
    # better scored first (the documents quoted stay the ones chosen above)
    primary = list(chosen)
    for s in sorted(context, key=lambda s: -s.score):
        beside = any(p.hit.chunk_id == s.hit.chunk_id and abs(p.position - s.position) == 1 for p in primary)
        if beside and (s.hit.doc_id, s.text) not in seen and size + len(s.text) <= max_chars:
            seen.add((s.hit.doc_id, s.text))
            chosen.append(s)
            size += len(s.text)
    groups: list[list[_Sentence]] = []  # in the order of each group's best sentence
    for s in chosen:
        for group in groups:
            if group[0].hit.chunk_id == s.hit.chunk_id and any(abs(g.position - s.position) == 1 for g in group):
                group.append(s)
                break
        else:
            groups.append([s])
    out = []
    for n, group in enumerate(groups, 1):
        group.sort(key=lambda s: s.position)
        hit = group[0].hit
        shown = searcher.places.shown(hit.path)
        out.append(
            Quote(
                n=n,
                text=" ".join(s.text for s in group),
                path=hit.path,
                relpath=shown,
                handle=f"{shown}#{hit.key}" if hit.key else shown,
                lines=(group[0].lines[0], group[-1].lines[1]),
                title=hit.title,
                chunk_id=hit.chunk_id,
                score=max(s.score for s in group),
            )
        )
    return out


_PROMPT = (
    "Answer the question in one or two sentences, using only the numbered sources below. "
    "After each fact, write the number of its source in brackets, like [1].\n\n{sources}\n\nQuestion: {question}"
)
_CITED = re.compile(r"\[(\d+)\]")


def write_answer(answer: Answer, generator, max_new_tokens: int = 120) -> Answer:
    """``answer`` with a short text written by ``generator`` (a ``searchcore.generator.
    Generator``) from its quotes alone; a citation of no quote is taken out."""
    from .generator import Sampling

    if not answer.quotes:
        return replace(answer, answer="", generator=generator.name)
    sources = "\n".join(f"[{q.n}] {q.text}" for q in answer.quotes)
    prompt = generator.chat_prompt(_PROMPT.format(sources=sources, question=answer.question))
    sampling = Sampling(max_length=None, max_new_tokens=max_new_tokens, do_sample=False, no_repeat_ngram_size=4)
    started = time.perf_counter()
    written = generator.generate([prompt], sampling, batch_size=1)[0][0][0]
    known = {str(q.n) for q in answer.quotes}
    text = _CITED.sub(lambda m: m.group(0) if m.group(1) in known else "", " ".join(written.split()))
    took = answer.took_ms + (time.perf_counter() - started) * 1000
    return replace(answer, answer=text.strip(), generator=generator.name, took_ms=took)
