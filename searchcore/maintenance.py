"""Checking and repairing an index, and reclaiming space.

``check`` verifies everything that must hold between index.db and the FAISS file: SQLite's
own integrity check, one vector per chunk and one chunk per vector, one full-text row per
chunk, no file left half-indexed by an interrupted run, and a FAISS file that belongs to
the committed generation and holds exactly the stored vectors. ``repair=True`` rebuilds
what is derived (the FAISS file, the full-text table) and drops orphans; it never
re-embeds and never touches the documents themselves. ``compact`` reclaims the space of
deleted rows (VACUUM, FTS5 optimise), rewrites the FAISS file and removes older ones.
Both take the writer lock, so they never run beside an indexing run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import keywords
from .engines import writer_for
from .errors import IndexNotFoundError
from .lock import writing
from .snapshot import recorded_target
from .store import DB_NAME, Store
from .vector_files import load_current, partial_files, remove_stale_files, vectors_path, verify

__all__ = ["CheckReport", "check", "compact", "index_bytes"]


@dataclass
class CheckReport:
    ok: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # states an interrupted run leaves; harmless
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def index_bytes(index_dir: Path) -> int:
    """The index's files, the keyword cache's included."""
    files = [*Path(index_dir).iterdir(), *(Path(index_dir) / keywords.KEYWORDS_DIR).glob("*")]
    return sum(p.stat().st_size for p in files if p.is_file())


def _check_rows(store: Store, report: CheckReport, repair: bool) -> None:
    """Orphans, the full-text table and half-indexed files."""
    for label, n in store.orphans().items():
        if n:
            report.problems.append(f"{n} {label}")
            if repair:
                with store.write():
                    store.drop_orphans(label)
                    store.bump_generation()
                report.repaired.append(f"removed {n} {label}")
    if not any("without" in p for p in report.problems):
        report.ok.append("every chunk has a vector and every vector a chunk")
    chunks, text_rows = store.counts()["chunks"], store.text_rows()
    if text_rows == chunks:
        report.ok.append(f"full-text index holds all {chunks} chunks")
    else:
        report.problems.append(f"full-text index holds {text_rows} rows for {chunks} chunks")
        if repair:
            with store.write():
                store.rebuild_text_index()
            report.repaired.append("rebuilt the full-text index from the chunks")
    unfinished = store.unfinished_files()
    if unfinished:
        # Their committed documents are whole and searchable; the next run finishes them.
        report.notes.append(
            f"{unfinished} files were left part-indexed by an interrupted run; the next `searchctl index` finishes them"
        )
    else:
        report.ok.append("no file is half-indexed")


def _check_images(store: Store, report: CheckReport) -> None:
    """Image files: one document each, read the way the index records."""
    images, odd = store.image_files()
    if not images:
        return
    if odd:
        report.problems.append(f"{odd} of {images} image files do not have exactly one document (re-run index)")
    else:
        meta = store.meta()
        how = f"OCR {meta.ocr or 'rapidocr'}, captions {meta.caption_model or 'none'}"
        report.ok.append(f"{images} image files, one document each ({how})")


def recall(store: Store, index_dir: Path, sample: int = 200, k: int = 10, seed: int = 0) -> tuple[str, float] | None:
    """(kind, recall@k) of the committed vector file against exact search; None for an
    exact file (or none). Queries: the stored vectors of ``sample`` chunks drawn at
    random, each looking for its k nearest other chunks (itself left out of both lists);
    exact search scores every vector stored in index.db."""
    with store.snapshot():
        index, rebuilt = load_current(store, index_dir)
        if index is None or rebuilt or index.kind == "flat" or index.live <= k + 1:
            return None
        ids, matrix = store.all_vectors(index.dim)
    rows = np.random.default_rng(seed).choice(len(ids), min(sample, len(ids)), replace=False)
    exact = matrix @ matrix[rows].T  # (n, sample)
    exact[rows, np.arange(len(rows))] = -np.inf
    truth = np.argpartition(-exact, k, axis=0)[:k].T
    _, approx = index.search(matrix[rows], k + 1)
    found = 0
    for j, row in enumerate(rows):
        got = [int(i) for i in approx[j] if i != ids[row] and i >= 0][:k]
        found += len(set(ids[truth[j]].tolist()) & set(got))
    return index.kind, found / (k * len(rows))


def _check_vectors(store: Store, index_dir: Path, report: CheckReport, repair: bool) -> None:
    """The FAISS file of the committed generation, older ones, partial ones."""
    generation = store.generation
    path = vectors_path(index_dir, generation)
    state = verify(store, index_dir)
    if state == "none":
        report.ok.append("no vectors yet")
    elif state == "ok":
        report.ok.append(f"{path.name} matches generation {generation} ({store.counts()['vectors']} vectors)")
        measured = recall(store, index_dir)
        if measured is not None:
            kind, value = measured
            line = f"recall@10 of the {kind} index against exact search: {value:.3f} (200 sampled chunks)"
            (report.ok if value >= 0.9 else report.notes).append(line)
    elif state == "missing" and not repair:
        # A run stopped between its last commit and the FAISS write: the file is derived,
        # and a reader rebuilds it in memory until the next writer writes it.
        report.notes.append(
            f"{path.name} is not written yet; queries rebuild it from index.db until the next "
            "`searchctl index` or `searchctl check --repair` writes it"
        )
    else:
        why = "is missing" if state == "missing" else "does not match index.db"
        report.problems.append(f"{path.name} {why} (it is rebuilt from index.db on open)")
        if repair:
            writer_for(store, index_dir).rebuild()  # the local engine: no token
            report.repaired.append(f"rebuilt {path.name} from index.db")
    stale = [p.name for p in index_dir.glob("vectors-*.faiss") if p != path]
    if stale and repair:
        remove_stale_files(index_dir, generation)
        report.repaired.append(f"removed {len(stale)} FAISS files of older generations")
    leftovers = partial_files(index_dir)
    if leftovers:
        if repair:
            for leftover in leftovers:
                leftover.unlink(missing_ok=True)
            report.repaired.append(f"removed {len(leftovers)} partial FAISS files of an interrupted run")
        else:
            report.notes.append(
                f"{len(leftovers)} partial FAISS files of an interrupted run "
                "(the next run, compact or --repair removes them)"
            )


def _check_keywords(store: Store, index_dir: Path, report: CheckReport, repair: bool) -> None:
    """The keyword cache (tantivy) of the committed generation."""
    state = keywords.verify(store, index_dir)
    name = keywords.KEYWORDS_DIR + "/"
    if state == "ok":
        report.ok.append(f"{name} matches generation {store.generation} ({store.counts()['chunks']} chunks)")
        return
    why = {
        "missing": "is not written yet",
        "stale": "belongs to another generation (a run was stopped before it was written)",
        "damaged": "is damaged or does not hold every chunk",
    }[state]
    fallback = "; keyword queries use index.db's full-text table until the next `searchctl index` or `check --repair`"
    if state == "damaged":
        report.problems.append(f"{name} {why}{fallback}")
    elif not repair:
        report.notes.append(f"{name} {why}{fallback}")
    if repair:
        keywords.rebuild(store, index_dir)
        report.repaired.append(f"rebuilt {name} from index.db")


def _check_milvus(store: Store, index_dir: Path, report: CheckReport, repair: bool, token: str) -> None:
    """The Milvus collection the index publishes to: its generation and chunk ids."""
    from .milvus.writer import verify as verify_collection

    target = recorded_target(store.meta(), token)
    assert target is not None
    found = verify_collection(store, index_dir, target, repair)
    report.ok += found["ok"]
    report.notes += found["notes"]
    report.problems += found["problems"]
    report.repaired += found["repaired"]


def check(index_dir: Path, *, repair: bool = False, milvus_token: str = "") -> CheckReport:
    report = CheckReport()
    index_dir = Path(index_dir)
    if not (index_dir / DB_NAME).exists():
        raise IndexNotFoundError(index_dir)
    # A read-only check of a folder this user cannot write goes without the lock.
    with writing(index_dir, unlocked_if_read_only=not repair) as store:
        damage = store.integrity_problems()
        if damage:
            report.problems.append(f"SQLite integrity check failed: {'; '.join(damage[:3])}")
            return report  # nothing derived can be trusted to rebuild from a damaged database
        report.ok.append("SQLite integrity check passed")
        _check_rows(store, report, repair)
        _check_images(store, report)
        if store.meta().on_milvus:
            _check_milvus(store, index_dir, report, repair, milvus_token)
        else:
            _check_keywords(store, index_dir, report, repair)
            _check_vectors(store, index_dir, report, repair)
    if repair and report.problems:
        # What is left after the repairs, checked afresh.
        again = check(index_dir, repair=False, milvus_token=milvus_token)
        again.repaired = report.repaired
        again.notes = [n for n in again.notes if n not in report.notes] + report.notes
        return again
    return report


def compact(index_dir: Path, *, milvus_token: str = "") -> tuple[int, int]:
    """(bytes before, bytes after)."""
    index_dir = Path(index_dir)
    before = index_bytes(index_dir)
    with writing(index_dir) as store:
        store.reclaim_space()
        writer_for(store, index_dir, milvus_token).rebuild()  # (with the partial files of killed writers)
    return before, index_bytes(index_dir)
