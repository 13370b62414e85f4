"""OCR: the text in an image, offline.

Two engines, both without any download: ``rapidocr`` (PP-OCR's ONNX models, which the
``rapidocr-onnxruntime`` 1.4 wheel ships; the default, chosen by ``bench/ocr.py``) and
``tesseract`` (Debian's ``tesseract-ocr``, run as a program). ``none`` reads no text from
images. An engine reads one PIL image and returns its lines in reading order.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from typing import Protocol

from .errors import SearchctlError, UsageError

__all__ = ["OCR_ENGINES", "DEFAULT_OCR", "Ocr", "make_ocr", "MAX_OCR_SIDE"]

OCR_ENGINES = ("rapidocr", "tesseract", "none")
DEFAULT_OCR = "rapidocr"
# Longer sides are scaled down first: past this, OCR only gets slower, not better.
MAX_OCR_SIDE = 2400
# Text lines the recogniser is less sure of are left out (noise, texture read as letters).
_MIN_CONFIDENCE = 0.5
# PP-OCR's recogniser (trained mostly on Chinese) sometimes drops the spaces of a line of
# English ("Fuelcostsroseinwinter"); a run of at least this many letters that is no word
# is split into words by their frequencies (wordninja). Measured by bench/ocr.py.
_RESPACE_LETTERS = 10
_RUN = re.compile(rf"[A-Za-z]{{{_RESPACE_LETTERS},}}")


def respace(line: str) -> str:
    """``line`` with each long run of letters that is no word split into words."""
    import wordninja

    known = wordninja.DEFAULT_LANGUAGE_MODEL._wordcost

    def split(match: re.Match) -> str:
        run = match.group(0)
        if run.lower() in known:
            return run
        parts = wordninja.split(run)
        return " ".join(parts) if len(parts) > 1 and all(len(p) > 1 or p.lower() in "ai" for p in parts) else run

    return _RUN.sub(split, line)


class Ocr(Protocol):
    name: str

    def read(self, image) -> str: ...


def _fit(image):
    """``image`` as RGB, scaled so that its longer side is at most MAX_OCR_SIDE."""
    image = image.convert("RGB")
    longest = max(image.size)
    if longest > MAX_OCR_SIDE:
        scale = MAX_OCR_SIDE / longest
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    return image


class RapidOcr:
    """PP-OCR detection and recognition on ONNX Runtime (rapidocr-onnxruntime 1.4)."""

    name = "rapidocr"

    def __init__(self, respace_words: bool = True) -> None:
        self.respace_words = respace_words
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise SearchctlError(
                "OCR needs rapidocr-onnxruntime 1.4: pip install 'rapidocr-onnxruntime>=1.4,<1.5' "
                "(or index with --ocr tesseract or --ocr none)"
            ) from exc
        self._engine = RapidOCR()

    def read(self, image) -> str:
        import numpy as np

        found, _ = self._engine(np.asarray(_fit(image)))
        if not found:
            return ""
        # Boxes come roughly in reading order; sort lines top to bottom, then left to right.
        lines = []
        for box, text, confidence in found:
            if float(confidence) < _MIN_CONFIDENCE or not str(text).strip():
                continue
            top = min(point[1] for point in box)
            left = min(point[0] for point in box)
            height = max(point[1] for point in box) - top
            lines.append((top, left, height, str(text).strip()))
        rows: list[tuple[float, float, list[tuple[float, str]]]] = []  # (top, height, [(left, text)])
        for top, left, height, text in sorted(lines):
            if rows and abs(top - rows[-1][0]) < max(rows[-1][1], height, 1) * 0.5:
                rows[-1][2].append((left, text))  # the same baseline: one line
            else:
                rows.append((top, height, [(left, text)]))
        text = "\n".join(" ".join(text for _, text in sorted(words)) for _, _, words in rows)
        return respace(text) if self.respace_words else text


class TesseractOcr:
    """Tesseract 5 (Debian's tesseract-ocr), English, automatic page segmentation."""

    name = "tesseract"

    def __init__(self, language: str = "eng") -> None:
        program = shutil.which("tesseract")
        if program is None:
            raise SearchctlError("--ocr tesseract needs the tesseract program: apt-get install tesseract-ocr")
        self.program: str = program
        self.language = language

    def read(self, image) -> str:
        buffer = io.BytesIO()
        _fit(image).save(buffer, format="PNG")
        done = subprocess.run(
            [self.program, "stdin", "stdout", "-l", self.language, "--psm", "3"],
            input=buffer.getvalue(),
            capture_output=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise SearchctlError(f"tesseract failed: {done.stderr.decode(errors='replace').strip()[:200]}")
        return "\n".join(line.strip() for line in done.stdout.decode(errors="replace").splitlines() if line.strip())


def make_ocr(name: str) -> Ocr | None:
    """The OCR engine called ``name``; None for ``none``."""
    if name == "none":
        return None
    if name == "rapidocr":
        return RapidOcr()
    if name == "tesseract":
        return TesseractOcr()
    raise UsageError(f"unknown OCR engine {name!r}; use one of {', '.join(OCR_ENGINES)}")
