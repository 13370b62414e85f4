"""--device auto|cpu|cuda: the CPU stays the default build, a GPU is taken when there is one,
and asking for a GPU that is not there is one clear line before anything is written."""

from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from searchcore.devices import cuda_available, gpu_batch_size, resolve_device
from searchcore.errors import UsageError
from searchcore.meta import IndexMeta
from searchcore.models import index_backend
from searchctl.cli import cli

no_gpu = pytest.mark.skipif(cuda_available(), reason="this machine has a GPU: --device cuda is not refused")


def test_auto_takes_the_gpu_only_when_torch_sees_one():
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == resolve_device(None) == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(UsageError, match="unknown device 'gpu'; use one of auto, cpu, cuda"):
        resolve_device("gpu")


@no_gpu
def test_cuda_where_there_is_none_names_the_fix():
    with pytest.raises(UsageError, match=r"--device cuda: no CUDA GPU is visible .*use --device cpu or auto"):
        resolve_device("cuda")


def test_gpu_batches_fit_half_the_free_memory_within_bounds():
    # all-MiniLM-L6-v2: 384 wide, 12 heads, 256 tokens -> 4 * 256 * (12 * 384 + 12 * 256) bytes a sequence
    per_sequence = 4 * 256 * (12 * 384 + 12 * 256)
    assert gpu_batch_size(2**30, 256, 384, 12) == (2**30 // 2) // per_sequence == 68
    assert gpu_batch_size(139 * 2**30, 256, 384, 12) == 1024  # an H200: capped
    assert gpu_batch_size(100 * 2**20, 256, 384, 12) == 32  # a nearly full GPU: the CPU's batch
    # A longer model input costs quadratically in its attention maps.
    assert gpu_batch_size(8 * 2**30, 512, 768, 12) < gpu_batch_size(8 * 2**30, 256, 768, 12) // 2


def test_a_new_index_on_a_gpu_embeds_with_torch_and_an_int8_one_says_it_stays_on_the_cpu():
    assert index_backend(IndexMeta(), None, writing=True, device="cuda") == ("torch", None)
    backend, notice = index_backend(IndexMeta(backend="onnx-int8"), None, writing=True, device="cuda")
    assert backend == "onnx-int8"
    assert "embeds on the CPU, not the GPU" in notice and "searchctl reindex --backend torch" in notice
    assert index_backend(IndexMeta(backend="onnx-int8"), None, writing=True, device="cpu") == ("onnx-int8", None)


def test_an_embedder_refuses_int8_on_a_gpu():
    from searchcore.embedder import Embedder

    with pytest.raises(UsageError, match="the onnx-int8 backend runs on the CPU; use --backend torch"):
        Embedder(backend="onnx-int8", device="cuda")


@no_gpu
@pytest.mark.parametrize(
    "args",
    [
        ["index", "DOCS", "--index", "IDX", "--device", "cuda"],
        ["reindex", "--index", "IDX", "--model", "hash:16", "--device", "cuda"],
        ["adapt", "--index", "IDX", "--out", "OUT", "--device", "cuda"],
        ["finetune", "classifier", "--train", "TRAIN", "--out", "OUT", "--device", "cuda"],
    ],
    ids=["index", "reindex", "adapt", "finetune-classifier"],
)
def test_device_cuda_without_a_gpu_is_one_line_exit_2_and_writes_nothing(tmp_path, args):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("A lighthouse keeper's log of storms.")
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"text": f"text {i}", "label": "ab"[i % 2]}) + "\n" for i in range(8)))
    index = tmp_path / "idx"
    if args[0] in ("reindex", "adapt"):
        built = CliRunner().invoke(cli, ["index", str(docs), "--index", str(index), "--model", "hash:32"])
        assert built.exit_code == 0, built.output
    before = sorted(os.listdir(index)) if index.exists() else None
    paths = {"DOCS": str(docs), "IDX": str(index), "OUT": str(tmp_path / "out"), "TRAIN": str(train)}
    result = CliRunner().invoke(cli, [paths.get(a, a) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "--device cuda: no CUDA GPU is visible" in lines[0], result.output
    assert "Traceback" not in result.output
    assert (sorted(os.listdir(index)) if index.exists() else None) == before
    assert not (tmp_path / "out").exists()


def test_device_cpu_indexes_as_before_and_a_bad_device_is_a_usage_error(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("A lighthouse keeper's log of storms.")
    index = tmp_path / "idx"
    done = CliRunner().invoke(
        cli, ["index", str(docs), "--index", str(index), "--model", "hash:32", "--device", "cpu", "--json"]
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.output[done.output.index("{") :])["device"] == "cpu"
    bad = CliRunner().invoke(cli, ["index", str(docs), "--index", str(index), "--device", "gpu"])
    assert bad.exit_code == 2 and "'gpu' is not one of 'auto', 'cpu', 'cuda'" in bad.output


def test_pp_ocr_asked_for_the_gpu_still_reads_where_there_is_none():
    """The GPU flags reach rapidocr-onnxruntime's sessions, which fall back to the CPU
    where onnxruntime has no CUDA provider: the page is read either way."""
    from searchcore.ocr import make_ocr
    from tests.test_real_folders import _rendered_line

    line = "The harbour office opens at nine every morning"
    assert make_ocr("rapidocr", cuda=True).read(_rendered_line(line)).split() == line.split()
