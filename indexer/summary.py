"""IndexSummary: the figures of one indexing run, as a line, a dict or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["IndexSummary"]


@dataclass
class IndexSummary:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    moved: int = 0  # files found at a new path with content already indexed: re-linked, not embedded
    copied: int = 0  # files whose content another indexed file has: copied, not embedded
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> how many
    skipped_files: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, what was read with a warning)
    files: int = 0  # files the walk found (not passed over by a rule)
    chunks_embedded: int = 0
    chunks_kept: int = 0  # chunks of changed documents whose text did not change: their vectors kept
    documents: int = 0
    chunks: int = 0
    seconds: float = 0.0
    generation: int = 0
    model: str = ""
    backend: str = ""
    device: str = "cpu"  # where the embedder ran: cpu, or the GPU named ("cuda (NVIDIA H200, 139 GiB)")
    notice: str | None = None  # e.g. why the backend fell back to torch
    labels: dict[str, int] = field(default_factory=dict)  # facet -> documents labelled this run
    images_ocr: int = 0  # images whose text OCR read this run
    captioned: int = 0  # images captioned this run
    pages_ocr: int = 0  # scanned PDF pages OCR read this run
    languages: dict[str, int] = field(default_factory=dict)  # language -> documents added or updated ("?": not told)
    model_languages: tuple[str, ...] | None = None  # what the embedder was trained on, if its card says

    def skip(self, reason: str, n: int = 1, path: str | None = None) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + n
        if path is not None:
            self.skipped_files.append((path, reason))

    @property
    def docs_per_second(self) -> float:
        return (self.added + self.updated) / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])))
        moves = "".join(f", {n} {what}" for what, n in (("moved", self.moved), ("copied", self.copied)) if n)
        warned = f", {len(self.notes)} read with warnings" if self.notes else ""
        return (
            f"{self.added} added, {self.updated} updated, {self.removed} removed, {self.unchanged} unchanged{moves}, "
            f"{skipped} skipped{f' ({reasons})' if reasons else ''}{warned}; "
            f"{self.chunks_embedded} chunks embedded"
            + (f" ({self.chunks_kept} unchanged kept)" if self.chunks_kept else "")
            + f", {self.documents} documents / {self.chunks} chunks in index; "
            f"{self.seconds:.1f} s, {self.docs_per_second:.1f} docs/s"
            + (f" on {self.device}" if self.device != "cpu" else "")
            + "".join(f"; {n:,} documents labelled ({facet})" for facet, n in sorted(self.labels.items()))
            + self._vision()
            + self._languages()
        )

    def _languages(self) -> str:
        """The languages of the documents read, when some are not the embedder's (or, the
        embedder's unknown, not English), with the way to search those by meaning."""
        found = {lang: n for lang, n in self.languages.items() if lang != "?"}
        known = self.model_languages or ("en",)
        foreign = sorted(lang for lang in found if lang not in known)
        if not foreign:
            return ""
        counts = ", ".join(f"{lang} {n:,}" for lang, n in sorted(found.items(), key=lambda kv: (-kv[1], kv[0])))
        line = f"; languages: {counts}"
        if self.model_languages:
            others = sum(found[lang] for lang in foreign)
            line += (
                f" ({others:,} {'document' if others == 1 else 'documents'} in {', '.join(foreign)}, which "
                f"{self.model} was not trained on: a multilingual --model such as "
                "paraphrase-multilingual-MiniLM-L12-v2 finds them by meaning)"
            )
        return line

    def _vision(self) -> str:
        done = [
            f"{n:,} {what if n == 1 else plural}"
            for what, plural, n in (
                ("image OCR'd", "images OCR'd", self.images_ocr),
                ("image captioned", "images captioned", self.captioned),
                ("PDF page OCR'd", "PDF pages OCR'd", self.pages_ocr),
            )
            if n
        ]
        return f"; {', '.join(done)}" if done else ""

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        out["skipped_files"] = [{"path": p, "reason": r} for p, r in self.skipped_files]
        out["notes"] = [{"path": p, "note": n} for p, n in self.notes]
        out["docs_per_second"] = round(self.docs_per_second, 2)
        return out
