"""Label the documents of an index with text classifiers; the labels become filters.

Each classifier is a *facet* named after its folder (``sentiment``, ``topic``...): every
document gets one label and a score per facet, stored in ``index.db`` with the
document's hash and the classifier's id, so a later run labels only what is new, changed
or labelled by an older version of the classifier. The index remembers its classifiers:
``searchctl index`` labels new documents with them without being told again.

A document's label comes from its chunks' class probabilities, averaged with weights
proportional to each chunk's length. A ``head`` classifier trained on the index's own
embedder reads the stored chunk vectors, so labelling re-embeds nothing.

Labels are written in the same kind of transaction as chunks, and the last batch bumps
the generation, so a daemon reloads and filters with the new labels.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from searchcore.classifier import Classifier, load_classifier
from searchcore.config import Config
from searchcore.engines import writer_for
from searchcore.errors import UsageError
from searchcore.lock import writing
from searchcore.store import Store

__all__ = ["LabelSummary", "label_documents", "label_index", "label_with"]

BATCH_DOCUMENTS = 256


@dataclass
class LabelSummary:
    facet: str
    labelled: int = 0
    current: int = 0
    seconds: float = 0.0
    notice: str | None = None

    def line(self) -> str:
        return f"{self.facet}: {self.labelled:,} documents labelled, {self.current:,} already current"


def _probabilities(
    classifier: Classifier, store: Store, chunks: dict[int, list[tuple[int, str]]], index_model: str | None, config
):
    """Class probabilities per chunk, in one batch for all the documents given."""
    flat = [(doc, cid, text) for doc, rows in chunks.items() for cid, text in rows]
    if not flat:
        return flat, np.zeros((0, len(classifier.labels)), dtype=np.float32)
    if classifier.method == "head" and classifier.embedder_model == index_model:
        stored = store.vectors_of([cid for _, cid, _ in flat])
        if len(stored) == len(flat):
            matrix = np.stack([stored[cid] for _, cid, _ in flat])
            return flat, classifier.probabilities_of_vectors(matrix)
    texts = [text for _, _, text in flat]
    return flat, classifier.probabilities(texts, cache_dir=config.cache_dir if config else None)


def label_documents(
    store: Store, classifier: Classifier, *, config: Config | None = None, progress: bool = False
) -> LabelSummary:
    """Inside the writer lock: give every document without a current label of this
    classifier's facet one; records the classifier in the index's meta."""
    started = time.perf_counter()
    facet = classifier.name
    summary = LabelSummary(facet)
    known = store.classifiers()
    if known.get(facet, {}).get("path") not in (None, str(classifier.folder.resolve())):
        summary.notice = f"facet {facet!r} was labelled by {known[facet]['path']}; relabelling with {classifier.folder}"
    with store.snapshot():
        todo = store.documents_to_label(facet, classifier.id)
        total = store.counts()["documents"]
    summary.current = total - len(todo)
    index_model = store.meta().model
    record = {**known, facet: {"path": str(classifier.folder.resolve()), "id": classifier.id}}
    with tqdm(total=len(todo), desc=f"labelling ({facet})", unit="doc", disable=not progress, leave=False) as bar:
        for start in range(0, len(todo), BATCH_DOCUMENTS):
            batch = todo[start : start + BATCH_DOCUMENTS]
            hashes = dict(batch)
            with store.snapshot():
                chunks = store.document_chunks([d for d, _ in batch])
            flat, probabilities = _probabilities(classifier, store, chunks, index_model, config)
            weights: dict[int, np.ndarray] = {}
            totals: dict[int, float] = {}
            for (doc, _, text), row in zip(flat, probabilities):
                w = float(max(len(text), 1))
                weights[doc] = weights.get(doc, 0.0) + w * row
                totals[doc] = totals.get(doc, 0.0) + w
            rows = []
            for doc, summed in weights.items():
                mean = summed / totals[doc]
                best = int(mean.argmax())
                rows.append((doc, classifier.labels[best], float(mean[best]), hashes[doc]))
            with store.write():
                store.put_labels(facet, classifier.id, rows)
                store.set_classifiers(record)
                store.bump_generation()
            summary.labelled += len(rows)
            bar.update(len(batch))
    if not todo and known.get(facet) != record[facet]:
        with store.write():
            store.set_classifiers(record)
    summary.seconds = time.perf_counter() - started
    return summary


def recorded_classifiers(store: Store) -> tuple[list[Classifier], list[str]]:
    """The classifiers this index already labels with, loaded; plus a notice per one
    whose folder is gone (its labels stay, new documents go unlabelled)."""
    loaded: list[Classifier] = []
    notices: list[str] = []
    for facet, entry in sorted(store.classifiers().items()):
        try:
            loaded.append(load_classifier(Path(entry["path"])))
        except Exception as exc:  # a moved or damaged folder must not stop indexing
            notices.append(f"classifier {facet!r} cannot be loaded ({exc}); new documents get no {facet} label")
    return loaded, notices


def label_with(
    store: Store, config: Config, given: Classifier | None, progress: bool
) -> tuple[dict[str, int], list[str]]:
    """Inside the writer lock, after an indexing run's commits: label new and changed
    documents with ``given`` and the index's own classifiers; (facet -> documents
    labelled, notices)."""
    if given is None and not store.classifiers():
        return {}, []
    classifiers, notices = recorded_classifiers(store)
    if given is not None:
        classifiers = [c for c in classifiers if c.name != given.name] + [given]
    out = {}
    for item in classifiers:
        result = label_documents(store, item, config=config, progress=progress)
        out[result.facet] = result.labelled
        if result.notice:
            notices.append(result.notice)
    return out, notices


def label_index(
    config: Config,
    classifier_dir: Path | None,
    *,
    progress: bool = False,
    wait: bool = False,
    remove: str | None = None,
) -> list[LabelSummary]:
    """``searchctl label``: label an existing index with a classifier (or with the ones it
    already has, relabelling what is stale), or ``remove`` a facet."""
    with writing(Path(config.index_dir), wait=wait) as store:
        engine = writer_for(store, Path(config.index_dir), config.milvus_token)
        if remove is not None:
            if remove not in store.classifiers():
                raise UsageError(f"the index has no facet {remove!r}; `searchctl info` lists its classifiers")
            with store.write():
                n = store.drop_facet(remove)
                store.bump_generation()
            engine.commit()
            return [LabelSummary(remove, labelled=-n)]
        notices: list[str] = []
        if classifier_dir is not None:
            classifiers = [load_classifier(classifier_dir)]
        else:
            classifiers, notices = recorded_classifiers(store)
            if not classifiers and not notices:
                raise UsageError("the index has no classifiers yet; give --classifier DIR")
        summaries = [label_documents(store, c, config=config, progress=progress) for c in classifiers]
        for notice in notices:
            summaries.append(LabelSummary("?", notice=notice))
        engine.commit()
        return summaries
