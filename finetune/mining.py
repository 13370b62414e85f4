"""Training pairs made harder and closer to what search sees, from the current index.

Hard negatives: for each query, the best-ranked passages (hybrid search, one per
document) that are not among its positives and score clearly below its positive (a
relative margin, so an unjudged but relevant passage is not taught as irrelevant).
Indexed positives: a positive that is a document of the index becomes its chunk the query
is closest to, the text search will rank.
"""

from __future__ import annotations

from dataclasses import asdict

from searchcore.embedder import embedded_text, short_title

from .pairs import Pair

__all__ = ["MARGIN", "MINING_DEPTH", "mine_hard_negatives", "indexed_positives"]

MARGIN = 0.05  # a hard negative scores below (1 - MARGIN) x its query's positive
MINING_DEPTH = 30


def _same_text(a: str, b: str) -> bool:
    a, b = " ".join(a.split()), " ".join(b.split())
    return a in b or b in a


def mine_hard_negatives(
    pairs: list[Pair], searcher, *, depth: int = MINING_DEPTH, margin: float = MARGIN, progress: bool = False
) -> tuple[list[Pair], int]:
    """Each pair with a hard negative from ``searcher``'s index where one qualifies."""
    from tqdm import tqdm

    positives: dict[str, list[Pair]] = {}
    for pair in pairs:
        positives.setdefault(pair.query, []).append(pair)
    queries = list(positives)
    embedder = searcher.embedder
    positive_texts = list(dict.fromkeys(p.positive for p in pairs))
    positive_vectors = dict(zip(positive_texts, embedder.embed(positive_texts)))
    negative_of: dict[tuple[str, str], str] = {}
    with tqdm(total=len(queries), desc="mining hard negatives", unit="query", disable=not progress) as bar:
        for start in range(0, len(queries), 64):
            batch = queries[start : start + 64]
            vectors = embedder.embed(batch)
            results = searcher.search_many(batch, depth, per_doc=True, mode="hybrid")
            for query, vector, hits in zip(batch, vectors, results):
                mine = positives[query]
                ids = {p.positive_id for p in mine if p.positive_id}
                candidates = [
                    hit
                    for hit in hits
                    if (hit.key or hit.path) not in ids and not any(_same_text(hit.text, p.positive) for p in mine)
                ]
                for pair in mine:
                    # Below the pair's own positive by the margin: closer may be relevant, unjudged.
                    floor = float(positive_vectors[pair.positive] @ vector) * (1 - margin)
                    hit = next((h for h in candidates if h.scores.get("dense", h.score) < floor), None)
                    if hit is not None:
                        negative_of[(query, pair.positive)] = embedded_text(hit.title, hit.text)
            bar.update(len(batch))
    out = [
        p
        if p.negative or (p.query, p.positive) not in negative_of
        else Pair(**{**asdict(p), "negative": negative_of[(p.query, p.positive)]})
        for p in pairs
    ]
    return out, sum(1 for p in out if p.negative)


def indexed_positives(pairs: list[Pair], searcher) -> tuple[list[Pair], int]:
    """Each pair whose positive is a document of the index, by id, gets as its positive the
    chunk of that document its query is closest to, as the index embeds it (title first).

    Search ranks chunks, and a long document's evidence is often past the first chunk,
    which is all of it the model would see if trained on the whole text (it truncates).
    Documents in one chunk, ids found in several files and pairs without an id keep their
    text. Returns the pairs and how many positives became chunks."""
    records, embedder = searcher.records, searcher.embedder
    by_key = records.documents_by_key(p.positive_id for p in pairs)
    docs = {key: found[0] for key, found in by_key.items() if len(found) == 1}
    chunks = records.document_chunks([doc_id for doc_id, _ in docs.values()])
    several = {key: chunks[doc_id] for key, (doc_id, _) in docs.items() if len(chunks[doc_id]) > 1}
    if not several:
        return pairs, 0
    vectors = records.vectors_of([chunk_id for found in several.values() for chunk_id, _ in found])
    wanted = [p for p in pairs if p.positive_id in several]
    queries = list(dict.fromkeys(p.query for p in wanted))
    query_vectors = dict(zip(queries, embedder.embed(queries)))
    titles = {key: short_title(embedder, docs[key][1]) for key in several}
    out, changed = [], 0
    for pair in pairs:
        found = several.get(pair.positive_id)
        usable = [(chunk_id, text) for chunk_id, text in found or [] if chunk_id in vectors]
        if not usable:
            out.append(pair)
            continue
        query_vector = query_vectors[pair.query]
        _, text = max(usable, key=lambda item: float(vectors[item[0]] @ query_vector))
        out.append(Pair(**{**asdict(pair), "positive": embedded_text(titles[pair.positive_id], text)}))
        changed += 1
    return out, changed
