"""A new index's encoder is chosen by measuring this machine once, then remembered."""

from __future__ import annotations

import json

from searchcore.embedder import DEFAULT_MODEL, _fingerprint, default_cache_dir, model_location
from searchcore.meta import IndexMeta
from searchcore.models import index_backend
from searchcore.probe import cpu_signature, default_backend, probe_backend, probe_file


def test_the_probe_times_both_graphs_here_and_is_remembered():
    location = model_location(DEFAULT_MODEL)
    revision = _fingerprint(location)
    cache = default_cache_dir()  # the test session's cache: the exports are shared with other tests
    target = probe_file(cache, DEFAULT_MODEL, revision)
    target.unlink(missing_ok=True)
    report = probe_backend(location, DEFAULT_MODEL, revision, cache)
    speeds = report["tokens_per_second"]
    assert speeds["onnx-int8"] > 0 and speeds["onnx"] > 0
    assert report["backend"] == ("onnx-int8" if speeds["onnx-int8"] >= 1.15 * speeds["onnx"] else "onnx")
    assert report["cpu"] == cpu_signature() and json.loads(target.read_text()) == report
    # Remembered: a second call reads the file and measures nothing.
    recorded = {**report, "tokens_per_second": {"onnx-int8": 1, "onnx": 2}}
    target.write_text(json.dumps(recorded))
    assert probe_backend(location, DEFAULT_MODEL, revision, cache) == recorded
    # A damaged file (a crash, a hand edit) is measured again and rewritten whole.
    target.write_text("{not json")
    again = probe_backend(location, DEFAULT_MODEL, revision, cache)
    assert again["backend"] in ("onnx-int8", "onnx") and json.loads(target.read_text()) == again


def _recorded_choice(cache, backend: str, speeds: dict) -> None:
    location = model_location(DEFAULT_MODEL)
    target = probe_file(cache, DEFAULT_MODEL, _fingerprint(location))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"backend": backend, "tokens_per_second": speeds, "cpu": cpu_signature()}))


def test_a_new_index_takes_what_the_probe_chose_and_says_why_when_it_is_fp32(tmp_path):
    _recorded_choice(tmp_path, "onnx", {"onnx-int8": 9000, "onnx": 8500})
    backend, notice = index_backend(IndexMeta(), None, writing=True, model=DEFAULT_MODEL, cache_dir=tmp_path)
    assert backend == "onnx"
    assert notice == ("int8 encoded 9,000 tokens/s against fp32's 8,500 on this CPU; using the onnx backend (fp32)")
    assert default_backend(DEFAULT_MODEL, tmp_path)[0] == "onnx"
    # An index that has a backend keeps it; a reader never runs the probe.
    assert (
        index_backend(IndexMeta(backend="onnx-int8"), None, writing=True, model=DEFAULT_MODEL, cache_dir=tmp_path)[0]
        == "onnx-int8"
    )
    assert (
        index_backend(IndexMeta(), None, writing=False, model=DEFAULT_MODEL, cache_dir=tmp_path)[0]
        == (default_backend()[0])
    )
