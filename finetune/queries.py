"""Training queries written by the generator for a corpus without labels (doc2query).

For a sample of the index's chunks, the generator writes a short statement of one fact
of the chunk (a prompt built from the chunk itself; with ``examples``, labelled pairs the
user gives become earlier turns of the conversation, so the model imitates them). Each
line is cleaned (first line only, quotes and lead-ins such as "The text highlights that"
cut) and then has to pass, in order:

- ``empty or too short`` (fewer than MIN_WORDS words) and ``too long`` (over MAX_WORDS);
- ``talks about the text`` (it is about "the passage" or "the text", not its content);
- ``copies the chunk`` (a span of the chunk copied whole: it would teach string matching);
- ``duplicate`` (the same query for another chunk);
- ``not found by the index``: round-trip consistency. The current index is searched for
  the query (hybrid, one hit per document) and the query is kept only if its own
  document is among the first ``depth``. A small model often writes something true of
  the field but not of this passage; such a query would teach the embedder noise.

Each kept query becomes a pair (query, the chunk as the index embeds it, title first,
its document's id) that ``finetune embedder`` takes as it is.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field

from searchcore.embedder import embedded_text, short_title
from searchcore.engine import Records
from searchcore.generator import SAMPLE_BATCH, Generator, Sampling

from .pairs import Pair

__all__ = ["QueryRun", "QUERY_PROMPT", "write_queries", "sample_chunks"]

QUERY_PROMPT = "{passage}\n\nState one key fact from the text above in one short sentence."
MIN_WORDS, MAX_WORDS = 4, 40
MIN_CHUNK_WORDS = 20
PASSAGE_WORDS = 120  # the chunk as the prompt shows it, cut to this many words
DEPTH = 5

_TEXT = r"(?:text|passage|paragraph|study|article|abstract|research|researchers|authors)(?: above)?"
_LEAD_IN = re.compile(
    # "One key fact from the text above is that ...", "A critical point in the text is ..."
    rf"^(?:(?:one|a|the) )?(?:key |main |important |critical |central )?(?:fact|finding|point|takeaway|aspect)s?"
    rf"(?: (?:of|from|in|about) the {_TEXT})? (?:is|was)(?: that)?[:,]?\s+"
    # "The text highlights that ...", "This study shows ..."
    rf"|^(?:the|this) {_TEXT} (?:highlights|states|shows|found|finds|reports|suggests|indicates|mentions|says"
    r"|notes|explains|describes|discusses|reveals|demonstrates|examines|investigates|emphasizes|emphasises)"
    r"(?: that)?[:,]?\s+"
    # "The text provides a detailed explanation of ...", "The passage gives evidence for ..."
    rf"|^(?:the|this) {_TEXT} (?:provides|gives|offers|presents)(?: \w+){{0,4}}? (?:of|on|about|into|for|that) ",
    re.IGNORECASE,
)
_ABOUT_TEXT = re.compile(r"\b(?:the|this) (?:text|passage|paragraph|above)\b|\bsearch query\b", re.IGNORECASE)


@dataclass
class QueryRun:
    """What generation made: the pairs kept, what was dropped and why, and throughput."""

    pairs: list[Pair] = field(default_factory=list)
    chunks: int = 0
    generated: int = 0
    dropped: Counter = field(default_factory=Counter)
    samples: list[dict] = field(default_factory=list)  # {query, passage, kept, reason}
    tokens: int = 0
    seconds: float = 0.0
    depth: int = DEPTH

    @property
    def kept(self) -> int:
        return len(self.pairs)

    def line(self) -> str:
        reasons = ", ".join(f"{n:,} {why}" for why, n in self.dropped.most_common()) or "none"
        rate = self.generated / self.seconds if self.seconds else 0.0
        tokens = self.tokens / self.seconds if self.seconds else 0.0
        return (
            f"{self.generated:,} queries generated for {self.chunks:,} chunks, {self.kept:,} kept; dropped: {reasons}; "
            f"{rate:.2f} queries/s, {tokens:.0f} tokens/s"
        )

    def to_dict(self) -> dict:
        return {
            "chunks": self.chunks,
            "generated": self.generated,
            "kept": self.kept,
            "dropped": dict(self.dropped),
            "depth": self.depth,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 1),
            "samples": self.samples,
        }


def sample_chunks(records: Records, sample: int, seed: int) -> list[tuple[str, str | None, str]]:
    """(document key, title, chunk text) for up to ``sample`` chunks of at least
    MIN_CHUNK_WORDS words, spread over as many documents as possible, from an index's
    pinned ``records`` (a Searcher's, or ``searchcore.snapshot.open_snapshot``'s)."""
    rng = random.Random(seed)
    documents = records.document_list()
    chunks = records.document_chunks([d.doc_id for d in documents])
    rounds: list[list[tuple[str, str | None, str]]] = []
    for doc_id, key, title, path, _kind in documents:
        usable = [text for _, text in chunks.get(doc_id, []) if len(text.split()) >= MIN_CHUNK_WORDS]
        rng.shuffle(usable)
        for depth, text in enumerate(usable):
            if depth == len(rounds):
                rounds.append([])
            rounds[depth].append((key or path, title, text))
    picked: list[tuple[str, str | None, str]] = []
    for layer in rounds:  # one chunk of every document before a second of any
        rng.shuffle(layer)
        picked.extend(layer[: sample - len(picked)])
        if len(picked) >= sample:
            break
    return picked


def _prompt(generator: Generator, passage: str, examples: list[Pair]) -> str:
    def shown(text: str) -> str:
        return " ".join(text.split()[:PASSAGE_WORDS])

    if not generator.has_chat_template:  # a plain LM continues the examples' pattern
        shots = "".join(f"{QUERY_PROMPT.format(passage=shown(e.positive))}\n{e.query}\n\n" for e in examples)
        return f"{shots}{QUERY_PROMPT.format(passage=shown(passage))}\n"
    messages = []
    for example in examples:
        messages.append({"role": "user", "content": QUERY_PROMPT.format(passage=shown(example.positive))})
        messages.append({"role": "assistant", "content": example.query})
    messages.append({"role": "user", "content": QUERY_PROMPT.format(passage=shown(passage))})
    return generator.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def clean_query(text: str) -> str:
    """The first line, without quotes, list marks or a lead-in about the text."""
    line = next((part for part in text.strip().splitlines() if part.strip()), "")
    line = re.sub(r"^\s*(?:\d+[.)]|[-*•])\s+", "", line).strip().strip("\"'“”‘’ ")
    for _ in range(2):
        line = _LEAD_IN.sub("", line).strip().strip("\"'“”‘’ ")
    return line[:1].upper() + line[1:] if line else line


def _normal(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def _why_dropped(query: str, passage: str, seen: set[str]) -> str | None:
    words = len(query.split())
    if words < MIN_WORDS:
        return "empty or too short"
    if words > MAX_WORDS:
        return "too long"
    if _ABOUT_TEXT.search(query):
        return "talks about the text"
    normal = _normal(query)
    if normal in _normal(passage):
        return "copies the chunk"
    if normal in seen:
        return "duplicate"
    return None


def write_queries(
    searcher,
    generator: Generator,
    *,
    sample: int = 2000,
    depth: int = DEPTH,
    examples: list[Pair] | None = None,
    seed: int = 42,
    batch_size: int | None = None,
    sampling: Sampling | None = None,
    keep_samples: int = 10,
    progress: bool = False,
) -> QueryRun:
    """Generate, clean and filter queries for ``sample`` chunks of ``searcher``'s index."""
    started = time.perf_counter()
    run = QueryRun(depth=depth)
    picked = sample_chunks(searcher.records, sample, seed)
    run.chunks = len(picked)
    if not picked:
        return run
    shots = list(examples or [])[:3]
    prompts = [_prompt(generator, text, shots) for _, _, text in picked]
    if sampling is None:  # one sample a chunk, finished rows leaving the batch (``Generator.sample_many``)
        from tqdm import tqdm

        with tqdm(total=len(prompts), desc="generating", unit="prompt", disable=not progress) as bar:
            outputs, run.tokens = generator.sample_many(
                prompts, 1, max_new_tokens=48, temperature=0.7, top_p=0.9, batch_size=batch_size or SAMPLE_BATCH,
                seed=seed,
                on_batch=bar.update,
            )  # fmt: skip
    else:
        outputs, run.tokens = generator.generate(
            prompts, sampling, batch_size=batch_size or 16, stop="\n", progress=progress
        )
    seen: set[str] = set()
    candidates: list[tuple[str, int]] = []
    verdicts: list[tuple[str, int, str | None]] = []
    for index, texts in enumerate(outputs):
        for raw in texts:
            run.generated += 1
            query = clean_query(raw)
            reason = _why_dropped(query, picked[index][2], seen)
            verdicts.append((query or raw.strip(), index, reason))
            if reason is None:
                seen.add(_normal(query))
                candidates.append((query, index))
    found: dict[int, bool] = {}
    for start in range(0, len(candidates), 64):
        batch = candidates[start : start + 64]
        results = searcher.search_many([q for q, _ in batch], depth, per_doc=True, mode="hybrid")
        for offset, ((_query, index), hits) in enumerate(zip(batch, results)):
            found[start + offset] = picked[index][0] in {hit.key or hit.path for hit in hits}
    titles: dict[str | None, str | None] = {}
    position = 0
    for query, index, reason in verdicts:
        key, title, text = picked[index]
        if reason is None:
            if found[position]:
                if title not in titles:
                    titles[title] = short_title(searcher.embedder, title)
                shown = embedded_text(titles[title], text)
                run.pairs.append(Pair(query, shown, positive_id=key, kind="generated"))
            else:
                reason = "not found by the index"
            position += 1
        if reason is not None:
            run.dropped[reason] += 1
        run.samples.append({"query": query, "passage": text[:200], "kept": reason is None, "reason": reason})
    rng = random.Random(seed)
    kept = [s for s in run.samples if s["kept"]]
    dropped = [s for s in run.samples if not s["kept"]]
    half = keep_samples // 2
    run.samples = rng.sample(kept, min(half, len(kept))) + rng.sample(dropped, min(keep_samples - half, len(dropped)))
    run.seconds = time.perf_counter() - started
    return run
