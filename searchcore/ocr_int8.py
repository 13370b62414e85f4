"""PP-OCR's text detector, orientation classifier and recogniser in int8, made once per
machine into the model cache.

The models rapidocr-onnxruntime ships are fp32, and they are what OCR costs (15 SROIE
receipts on one thread: detection 9.9 s, orientation 0.8 s, recognition 27.8 s). Their
convolutions and matrix products are quantised here to int8 with fixed activation scales
(static QDQ, per-channel weights), which ONNX Runtime runs as integer convolutions. On
the 60 SROIE receipts, one thread, raw PP-OCR (no retries), two alternating rounds each:
shipped models 2.61 / 2.64 s a receipt, word recall 0.742; int8 recogniser 2.05 / 2.13 s,
0.820; int8 detector and recogniser 1.77 / 1.72 s, 0.822. (Recall rises because fewer
lines fall under PP-OCR's confidence cut-off.) The orientation classifier (2 % of the
time) is quantised too, calibrated on the same lines, a quarter of them upside down.

The activation scales come from a calibration pass of each fp32 model over text rendered
here (fixed words, fonts and sizes, a fixed seed: the same files on every machine for
one onnxruntime): lines for the recogniser and the classifier, pages of lines for the
detector, fed through the models' own preprocessing, so no user's document shapes them.
The files are keyed by the shipped models' checksums and the onnxruntime version, kept
with a manifest and rebuilt when they no longer match. Where the build fails (an onnx or
onnxruntime without these tools), OCR uses the fp32 models and says nothing more: the
text read is of the same kind.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .model_cache import new_cache_folder, quiet_tools, sha256_file

__all__ = ["Int8Models", "int8_models", "shipped_models"]

# Bumped when the recipe changes, so older files are rebuilt.
_FORMAT = 2
_CALIBRATION_LINES = 96
_CALIBRATION_PAGES = 12
_WORDS = """invoice total amount cash change receipt tax date time qty price item discount
rounding subtotal member card visa thank you please come again store address road street
jalan taman kuala lumpur selangor tel fax gst reg no table server order bill paid balance
harbour lighthouse keeper lantern signal channel tide anchor vessel cargo island report
committee minutes budget engine repair schedule meeting survey coast ferry ticket station
""".split()
_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
)
_SHIPPED = {
    "det": "ch_PP-OCRv4_det_infer.onnx",
    "cls": "ch_ppocr_mobile_v2.0_cls_infer.onnx",
    "rec": "ch_PP-OCRv4_rec_infer.onnx",
}


@dataclass(frozen=True)
class Int8Models:
    """The int8 detector, orientation classifier and recogniser files (what a worker
    process is handed)."""

    det: Path
    cls: Path
    rec: Path


def shipped_models() -> dict[str, Path]:
    """The fp32 models rapidocr-onnxruntime ships (the ones its config names)."""
    import rapidocr_onnxruntime

    folder = Path(rapidocr_onnxruntime.__file__).parent / "models"
    return {kind: folder / name for kind, name in _SHIPPED.items()}


def _text_lines(rng: random.Random, count: int):
    """``count`` rendered lines (PIL images): dark text on light paper, 14 to 44 pixel
    fonts, 1 to 8 words, some in capitals, some with a price."""
    from PIL import Image, ImageDraw, ImageFont

    faces = [face for face in _FONTS if Path(face).exists()]
    for _ in range(count):
        size = rng.randint(14, 44)
        font = ImageFont.truetype(rng.choice(faces), size) if faces else ImageFont.load_default(size)
        text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 8)))
        if rng.random() < 0.3:
            text += f" {rng.randint(1, 999)}.{rng.randint(0, 99):02d}"
        if rng.random() < 0.3:
            text = text.upper()
        left, top, right, bottom = (int(v) for v in font.getbbox(text))
        paper, ink = rng.randint(200, 255), rng.randint(0, 80)
        image = Image.new("RGB", (right - left + 12, bottom - top + 10), (paper,) * 3)
        ImageDraw.Draw(image).text((6 - left, 5 - top), text, fill=(ink,) * 3, font=font)
        yield image


def _as_bgr(image, rng: random.Random) -> np.ndarray:
    """A PIL image as the BGR array OpenCV reads, with some sensor noise."""
    pixels = np.asarray(image, dtype=np.float32)
    pixels += np.random.default_rng(rng.randint(0, 2**31)).normal(0, rng.uniform(0, 12), pixels.shape)
    return np.clip(pixels, 0, 255).astype(np.uint8)[:, :, ::-1].copy()


def _pages(rng: random.Random, count: int) -> list[np.ndarray]:
    """Pages of rendered lines, 600 to 1,400 pixels wide, as a scan or a receipt is."""
    from PIL import Image

    pages = []
    for _ in range(count):
        width, height = rng.randint(600, 1400), rng.randint(500, 1600)
        page = Image.new("RGB", (width, height), (rng.randint(215, 255),) * 3)
        top = rng.randint(10, 60)
        for line in _text_lines(rng, 60):
            if top + line.height > height - 10:
                break
            page.paste(line.crop((0, 0, min(line.width, width - 20), line.height)), (rng.randint(5, 60), top))
            top += line.height + rng.randint(2, 30)
        pages.append(_as_bgr(page, rng))
    return pages


class _Recording:
    """Stands in for a model's session: keeps each input it is given, then runs it."""

    def __init__(self, session) -> None:
        self.session = session
        self.inputs: list[np.ndarray] = []

    def __call__(self, batch: np.ndarray):
        self.inputs.append(np.array(batch, copy=True))
        return self.session(batch)

    def __getattr__(self, name: str):
        return getattr(self.session, name)


def _calibration_inputs() -> dict[str, list[np.ndarray]]:
    """Each fp32 model's own inputs for the rendered text, through its own preprocessing."""
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)
    detector, classifier = _Recording(engine.text_det.infer), _Recording(engine.text_cls.infer)
    recogniser = _Recording(engine.text_rec.session)
    engine.text_det.infer, engine.text_cls.infer, engine.text_rec.session = detector, classifier, recogniser
    rng = random.Random(20261204)
    lines = [_as_bgr(line, rng) for line in _text_lines(rng, _CALIBRATION_LINES)]
    engine.text_rec(lines)
    engine.text_cls(lines + [np.ascontiguousarray(line[::-1, ::-1]) for line in lines[::4]])  # some upside down
    for page in _pages(rng, _CALIBRATION_PAGES):
        engine.text_det(page)
    return {"det": detector.inputs, "cls": classifier.inputs, "rec": recogniser.inputs}


def _quantise(source: Path, inputs: list[np.ndarray], work: Path, out: Path) -> None:
    import onnx
    from onnx import version_converter
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    # Constants folded into initializers first (the quantiser only sees initializer
    # weights), then opset 13, where per-channel DequantizeLinear has its axis.
    folded, upgraded = work / f"folded-{out.name}", work / f"opset13-{out.name}"
    quant_pre_process(str(source), str(folded), skip_symbolic_shape=True)
    model = onnx.load(str(folded))
    onnx.save(version_converter.convert_version(model, 13), str(upgraded))
    name = model.graph.input[0].name
    feed = iter(inputs)

    class Reader(CalibrationDataReader):
        def get_next(self):
            batch = next(feed, None)
            return None if batch is None else {name: batch}

    quantize_static(
        str(upgraded),
        str(out),
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["Conv", "MatMul"],
    )
    for scratch in (folded, upgraded, *work.glob("*.data")):
        scratch.unlink(missing_ok=True)


def int8_models(cache_dir: Path) -> Int8Models | None:
    """The int8 models in ``cache_dir``, built on first use; None where they cannot be."""
    try:
        import onnxruntime

        sources = shipped_models()
        fingerprint = "".join(sha256_file(path)[:6] for path in sources.values())
        folder = Path(cache_dir) / f"ppocr-{fingerprint}-int8-ort{onnxruntime.__version__}-q{_FORMAT}"
        files, manifest = {kind: folder / f"{kind}-int8.onnx" for kind in _SHIPPED}, folder / "manifest.json"

        def whole() -> bool:
            try:
                recorded = json.loads(manifest.read_text())["sha256"]
                return all(recorded[kind] == sha256_file(path) for kind, path in files.items())
            except (OSError, ValueError, KeyError, TypeError):
                return False

        if not whole():
            with quiet_tools(), new_cache_folder(folder, whole) as work:  # the quantiser logs advice at WARNING
                inputs = _calibration_inputs()
                for kind, source in sources.items():
                    _quantise(source, inputs[kind], work, work / files[kind].name)
                sums = {kind: sha256_file(work / path.name) for kind, path in files.items()}
                (work / "manifest.json").write_text(json.dumps({"sha256": sums}))
        return Int8Models(**files) if whole() else None
    except Exception:  # noqa: BLE001 - no int8 models: OCR reads with the fp32 ones
        logging.getLogger(__name__).debug("int8 OCR models not built", exc_info=True)
        return None
