"""PP-OCR's int8 models: built once into the model cache, kept whole, read with."""

from __future__ import annotations

import json

import pytest

from searchcore.embedder import default_cache_dir
from searchcore.ocr import RapidOcr
from searchcore.ocr_int8 import int8_models
from tests.test_real_folders import _rendered_line


def test_the_int8_models_are_built_once_and_read_a_line():
    import onnx

    cache = default_cache_dir()  # the test session's cache: runs that OCR share the files
    models = int8_models(cache)
    assert models is not None and models.det.exists() and models.rec.exists()
    recorded = json.loads((models.rec.parent / "manifest.json").read_text())["sha256"]
    assert set(recorded) == {"det", "cls", "rec"}
    built = models.rec.stat().st_mtime_ns
    assert int8_models(cache) == models and models.rec.stat().st_mtime_ns == built  # kept, not rebuilt

    for path in (models.det, models.cls, models.rec):
        kinds = {node.op_type for node in onnx.load(str(path)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= kinds  # int8 convolutions
    assert any(p.key == "character" for p in onnx.load(str(models.rec)).metadata_props)  # the alphabet travels

    line = "The harbour office opens at nine every morning"
    assert RapidOcr(int8=models).read(_rendered_line(line)).split() == line.split()
    # The int8 orientation classifier still turns an upside-down line the right way up.
    assert RapidOcr(int8=models).read(_rendered_line(line).rotate(180)).split() == line.split()


@pytest.mark.slow
def test_a_damaged_int8_model_is_built_again():
    cache = default_cache_dir()
    models = int8_models(cache)
    assert models is not None
    models.det.write_bytes(models.det.read_bytes()[:1000])  # a crash mid-write, a bad disk
    assert int8_models(cache) == models and models.det.stat().st_size > 1_000_000
