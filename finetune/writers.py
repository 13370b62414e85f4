"""Who writes the training queries of ``adapt``: the chunks themselves, or the generator.

``spans`` (the default; no model): sentences drawn from the chunk, each one a query for
the chunk it came from (the inverse cloze task: the chunk stays whole, so a query's exact
words are in its positive, which is why the teacher's graded margins, not a yes/no label,
carry what there is to learn). A chunk without usable sentences gives a span of its words.
Measured on SciFact train queries under the same hybrid teacher, these taught the dense
model more than queries SmolLM2-135M wrote, at no cost in time (README, "Adapting without
labels").

``generated``: the generator samples ``per_chunk`` queries per chunk (temperature 1,
top-p 0.95) from one pass over the prompt (``Generator.sample_many``), cleaned as
``finetune.queries`` cleans them; ``round_trip`` keeps only a query whose document the
index ranks in that many first hits (off by default: GPL and Promptagator found filtering
costs more than the few bad queries it removes once labels are graded).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

from searchcore.engine import Records
from searchcore.generator import SAMPLE_BATCH

from .grading import Written

__all__ = ["WRITERS", "chunk_sample", "span_queries", "generated_queries"]

WRITERS = ("spans", "generated")
MIN_WORDS, MAX_WORDS = 5, 40  # a sentence shorter or longer is no query
_SENTENCE = re.compile(r"[^.!?]+[.!?]+(?:\s+|$)")


def chunk_sample(records: Records, chunks: int, seed: int) -> list[tuple[int, int, str]]:
    """(chunk id, document id, text) of every chunk, or of ``chunks`` of them drawn at
    random (0: all), in a seeded random order."""
    documents = records.document_list()
    found = records.document_chunks([d.doc_id for d in documents])
    items = [(chunk_id, doc_id, text) for doc_id, rows in sorted(found.items()) for chunk_id, text in rows]
    random.Random(seed).shuffle(items)
    return items[:chunks] if chunks else items


def _sentences(text: str) -> list[str]:
    flat = " ".join(text.split())
    return [s.strip() for s in _SENTENCE.findall(flat) if MIN_WORDS <= len(s.split()) <= MAX_WORDS]


def span_queries(items: list[tuple[int, int, str]], per_chunk: int, seed: int) -> list[Written]:
    """Up to ``per_chunk`` of each chunk's sentences (a word span where it has none)."""
    rng = random.Random(seed)
    out: list[Written] = []
    for chunk_id, doc_id, text in items:
        sentences = _sentences(text)
        if sentences:
            picked = rng.sample(sentences, min(per_chunk, len(sentences)))
        else:
            words = text.split()
            if len(words) < 2 * MIN_WORDS:
                continue
            picked = []
            for _ in range(per_chunk):
                n = rng.randint(MIN_WORDS + 1, min(20, len(words)))
                start = rng.randint(0, len(words) - n)
                picked.append(" ".join(words[start : start + n]))
        out.extend(Written(q, chunk_id, doc_id) for q in dict.fromkeys(picked))
    return out


def generated_queries(
    searcher,
    generator,
    items: list[tuple[int, int, str]],
    per_chunk: int,
    seed: int,
    *,
    round_trip: int = 0,
    batch_size: int = SAMPLE_BATCH,
    on_progress: Callable[[int], None] | None = None,
) -> tuple[list[Written], dict]:
    """``per_chunk`` sampled queries for each chunk, cleaned; and what it cost and dropped."""
    import time

    from .queries import _normal, _prompt, _why_dropped, clean_query

    started = time.perf_counter()
    prompts = [_prompt(generator, text, []) for _, _, text in items]
    outputs, tokens = generator.sample_many(
        prompts, per_chunk, max_new_tokens=40, batch_size=batch_size, seed=seed, on_batch=on_progress
    )
    seconds = time.perf_counter() - started
    seen: set[str] = set()
    dropped: dict[str, int] = {}
    out: list[Written] = []
    for (chunk_id, doc_id, text), texts in zip(items, outputs):
        for raw in texts:
            query = clean_query(raw)
            reason = _why_dropped(query, text, seen)
            if reason is None:
                seen.add(_normal(query))
                out.append(Written(query, chunk_id, doc_id))
            else:
                dropped[reason] = dropped.get(reason, 0) + 1
    if round_trip:
        kept = []
        for start in range(0, len(out), 64):
            part = out[start : start + 64]
            hits = searcher.search_many([w.query for w in part], round_trip, per_doc=True, mode="hybrid")
            for item, found in zip(part, hits):
                if item.doc_id in {h.doc_id for h in found}:
                    kept.append(item)
                else:
                    dropped["not found by the index"] = dropped.get("not found by the index", 0) + 1
        out = kept
    written = sum(len(t) for t in outputs)
    cost = {
        "written": written,
        "kept": len(out),
        "dropped": dropped,
        "tokens": tokens,
        "seconds": round(seconds, 1),
        "queries_per_s": round(written / seconds, 2) if seconds else 0.0,
        "tokens_per_s": round(tokens / seconds, 1) if seconds else 0.0,
    }
    return out, cost
