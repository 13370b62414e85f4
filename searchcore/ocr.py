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
from typing import TYPE_CHECKING, Protocol

from .errors import SearchctlError, UsageError

if TYPE_CHECKING:
    from .ocr_int8 import Int8Models

__all__ = ["OCR_ENGINES", "DEFAULT_OCR", "Ocr", "make_ocr", "MAX_OCR_SIDE"]

OCR_ENGINES = ("rapidocr", "tesseract", "none")
DEFAULT_OCR = "rapidocr"
# Longer sides are scaled down first: past this, OCR only gets slower, not better.
MAX_OCR_SIDE = 2400
# Text lines the recogniser is less sure of are left out (noise, texture read as letters).
_MIN_CONFIDENCE = 0.5
# A reading with fewer letters than this, from a plain page of at least _RETRY_SIDE pixels
# a side, is tried again (RapidOcr); a smaller picture enlarged reads confident nonsense.
_LITTLE = 10
_RETRY_SIDE = 200
# PP-OCR's recogniser (trained mostly on Chinese) sometimes drops the spaces of a line of
# English ("Fuelcostsroseinwinter"); a run of at least this many letters that is no word
# is split into words by their frequencies (wordninja). Measured by bench/ocr.py.
_RESPACE_LETTERS = 10
_RUN = re.compile(rf"[A-Za-z]{{{_RESPACE_LETTERS},}}")
# Text lines the recogniser reads at once on a CPU. A batch is padded to its widest line,
# so small batches waste less; measured by bench/ocr.py (rapidocr's own default is 6).
REC_BATCH = 1


def respace(line: str, strays: bool = True) -> str:
    """``line`` with each long run of letters that is no word split into words; a stray
    letter of the split joins its neighbour (``strays=False``: the run is then left whole)."""
    import wordninja

    known = wordninja.DEFAULT_LANGUAGE_MODEL._wordcost

    def split(match: re.Match) -> str:
        run = match.group(0)
        if run.lower() in known:
            return run
        parts: list[str] = []
        for part in wordninja.split(run):
            if len(part) == 1 and part.lower() not in "ai" and not strays:
                return run
            if len(part) == 1 and part.lower() not in "ai" and parts:
                parts[-1] += part  # a stray letter belongs to the word before it ("PL" "T": "PLT")
            else:
                parts.append(part)
        if len(parts) > 1 and len(parts[0]) == 1 and parts[0].lower() not in "ai":
            parts[:2] = [parts[0] + parts[1]]
        return " ".join(parts) if len(parts) > 1 else run

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


def _letters(text: str) -> int:
    return sum(ch.isalpha() for ch in text)


def _plain_background(image) -> bool:
    """Whether most of ``image`` is one plain tone (a page, a receipt, a screenshot), where
    reading almost nothing means OCR missed the text rather than that there is none."""
    import numpy as np

    small = np.asarray(image.convert("L").resize((128, 128)), dtype=np.int16)
    return float(np.mean(np.abs(small - np.median(small)) < 24)) >= 0.5


def _variants(image):
    """Other views of ``image`` for a reading that found little: with a white border, larger, smaller."""
    from PIL import ImageOps

    yield ImageOps.expand(image, border=max(16, min(image.size) // 10), fill="white")
    for scale in (1.5, 0.5):
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        if max(size) <= MAX_OCR_SIDE * 1.5 and min(size) >= 32:
            yield image.resize(size)


class RapidOcr:
    """PP-OCR detection and recognition on ONNX Runtime (rapidocr-onnxruntime 1.4).

    A reading of fewer than ``_LITTLE`` letters from an image with a plain background (and
    at least ``_RETRY_SIDE`` pixels a side) is tried again on other views of it (a white
    border, 1.5x, 0.5x: PP-OCR's detector misses some clear lines at one scale and finds
    them at another), and, where Tesseract is installed, by Tesseract too; the reading
    with the most confident letters is kept."""

    name = "rapidocr"

    def __init__(
        self,
        respace_words: bool = True,
        retry: bool = True,
        strays: bool = True,
        threads: int | None = None,
        cuda: bool = False,
        int8: Int8Models | None = None,
        rec_batch: int | None = None,
    ) -> None:
        self.respace_words = respace_words
        self.retry = retry
        self.strays = strays
        self._second: TesseractOcr | None = None  # made on first need
        self._looked_for_second = False
        try:
            from rapidocr_onnxruntime import RapidOCR
        except ImportError as exc:
            raise SearchctlError(
                "OCR needs rapidocr-onnxruntime 1.4: pip install 'rapidocr-onnxruntime>=1.4,<1.5' "
                "(or index with --ocr tesseract or --ocr none)"
            ) from exc
        given: dict = {} if threads is None else {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
        if cuda:  # detection, orientation and recognition on the GPU (onnxruntime-gpu)
            given.update(det_use_cuda=True, cls_use_cuda=True, rec_use_cuda=True)
        if int8 is not None:  # the int8 models (searchcore.ocr_int8)
            given.update(det_model_path=str(int8.det), cls_model_path=str(int8.cls), rec_model_path=str(int8.rec))
        self._engine = RapidOCR(**given)
        if not cuda:  # on a GPU: rapidocr's own batches of 6 lines
            self._engine.text_rec.rec_batch_num = REC_BATCH
        if rec_batch is not None:
            self._engine.text_rec.rec_batch_num = rec_batch

    def read(self, image) -> str:
        image = _fit(image)
        text, score = self.read_scored(image)
        if self.retry and _letters(text) < _LITTLE and min(image.size) >= _RETRY_SIDE and _plain_background(image):
            for view in _variants(image):  # every view: a wrong one can read confident nonsense
                again, again_score = self.read_scored(view)
                if again_score > score:
                    text, score = again, again_score
            second = self._tesseract()
            if _letters(text) < _LITTLE and second is not None:
                again, again_score = second.read_scored(image)
                if again_score > score:
                    text, score = again, again_score
        return text

    def _tesseract(self) -> TesseractOcr | None:
        if not self._looked_for_second:
            self._looked_for_second = True
            self._second = TesseractOcr() if shutil.which("tesseract") else None
        return self._second

    def read_scored(self, image) -> tuple[str, float]:
        """The text of ``image`` and its score: the letters read, each weighted by its line's confidence."""
        import numpy as np

        found, _ = self._engine(np.asarray(image.convert("RGB")))
        if not found:
            return "", 0.0
        # Boxes come roughly in reading order; sort lines top to bottom, then left to right.
        lines = []
        score = 0.0
        for box, text, confidence in found:
            if float(confidence) < _MIN_CONFIDENCE or not str(text).strip():
                continue
            score += float(confidence) * _letters(str(text))
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
        return (respace(text, self.strays) if self.respace_words else text), score


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

    def read_scored(self, image) -> tuple[str, float]:
        """The text of ``image`` and its score (letters weighted by word confidence), from
        Tesseract's TSV output: what a second opinion is compared by."""
        buffer = io.BytesIO()
        _fit(image).save(buffer, format="PNG")
        done = subprocess.run(
            [self.program, "stdin", "stdout", "-l", self.language, "--psm", "3", "tsv"],
            input=buffer.getvalue(),
            capture_output=True,
            timeout=300,
        )
        if done.returncode != 0:
            return "", 0.0
        lines: dict[tuple[str, ...], list[str]] = {}
        score = 0.0
        for row in done.stdout.decode(errors="replace").splitlines()[1:]:
            cells = row.split("\t")
            if len(cells) < 12 or cells[0] != "5" or not cells[11].strip():
                continue
            confidence = float(cells[10]) / 100
            if confidence < _MIN_CONFIDENCE:
                continue
            score += confidence * _letters(cells[11])
            lines.setdefault(tuple(cells[1:5]), []).append(cells[11].strip())
        return "\n".join(" ".join(words) for words in lines.values()), score


def make_ocr(name: str, threads: int | None = None, cuda: bool = False, int8: Int8Models | None = None) -> Ocr | None:
    """The OCR engine called ``name``; None for ``none``. ``threads``: ONNX Runtime's
    threads for PP-OCR (default: its own choice, one per core); ``cuda``: PP-OCR on the
    GPU (Tesseract has no GPU path); ``int8``: PP-OCR's int8 models
    (default: the fp32 ones rapidocr-onnxruntime ships)."""
    if name == "none":
        return None
    if name == "rapidocr":
        return RapidOcr(threads=threads, cuda=cuda, int8=int8)
    if name == "tesseract":
        return TesseractOcr()
    raise UsageError(f"unknown OCR engine {name!r}; use one of {', '.join(OCR_ENGINES)}")
