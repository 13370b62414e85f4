"""Images: the text in them (OCR) and, with a caption model, what they show.

One document per image file (png, jpeg, webp, gif's first frame, bmp, tiff): a
``# Caption`` section when a caption model is configured, then a ``# Text in the image``
section with what OCR read, so a hit's lines say which part matched. Metadata: pixel
width and height, format, and the EXIF date taken and camera where present (filters:
``--where camera=...``). Decoding is bounded before any pixel is read
(``searchcore.images``): a decompression bomb, a truncated or corrupt image and a file
that is not an image at all are skipped with that reason.

``Vision`` carries the engines (made by the indexing run, so nothing loads unless an
image or a scanned page needs them) and counts what they did for the summary line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from searchcore.images import NotAnImage, image_metadata, open_image

from .errors import Document, Skip
from .text import tidy

__all__ = ["IMAGE_SUFFIXES", "Vision", "read_image"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"})
CAPTION_HEADING = "# Caption"
TEXT_HEADING = "# Text in the image"


@dataclass
class Vision:
    """What reads images: an OCR engine and a captioner, each made on first use (or None
    when not configured), and counts of what they did this run."""

    make_ocr: Callable[[], object] | None = None
    make_captioner: Callable[[], object] | None = None
    # Worker processes for the pages of a long scanned PDF (searchcore.ocr_pool.OcrPool).
    make_pool: Callable[[], object] | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"images_ocr": 0, "captioned": 0, "pages_ocr": 0})
    on_page: Callable[[int, int], None] | None = None  # (pages read, of how many) inside one file
    _ocr: object = None
    _captioner: object = None
    _pool: object = None

    @property
    def ocr(self):
        if self._ocr is None and self.make_ocr is not None:
            self._ocr = self.make_ocr()
        return self._ocr

    @property
    def pool(self):
        """The OCR pool (made on first use), or None: none configured, or it broke."""
        if self._pool is None and self.make_pool is not None:
            self._pool = self.make_pool()
        if self._pool is not None and getattr(self._pool, "broken", False):
            return None
        return self._pool

    def close(self) -> None:
        """Stop the pool's workers (the end of a run)."""
        if self._pool is not None:
            self._pool.close()  # type: ignore[attr-defined]
            self._pool = None

    @property
    def captioner(self):
        if self._captioner is None and self.make_captioner is not None:
            self._captioner = self.make_captioner()
        return self._captioner


def read_image(data: bytes, notes: list[str], vision: Vision | None) -> list[Document]:
    try:
        original, image = open_image(data)
    except NotAnImage as exc:
        raise Skip(str(exc)) from None
    meta = image_metadata(original)
    parts = []
    captioner = vision.captioner if vision else None
    if captioner is not None:
        caption = tidy(captioner.caption([image])[0])
        if caption:
            parts.append(f"{CAPTION_HEADING}\n\n{caption}")
            vision.counts["captioned"] += 1  # type: ignore[union-attr]
    ocr = vision.ocr if vision else None
    if ocr is not None:
        text = tidy(ocr.read(image))
        vision.counts["images_ocr"] += 1  # type: ignore[union-attr]
        if text:
            parts.append(f"{TEXT_HEADING}\n\n{text}")
    if not parts:
        raise Skip("no text in the image" if captioner is not None else "no text in the image (no caption model)")
    return [Document("", "\n\n".join(parts), metadata=meta)]
